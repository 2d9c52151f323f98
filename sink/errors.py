"""Every exception the sink raises, in one place.

Each error says whether retrying can help (``retriable``). The pipeline retries
retriable errors with backoff and never dead-letters them; a non-retriable error
on a record isolates that record and sends it to the dead-letter topic.

    WarpError
    ├── ConfigError            bad configuration or usage (exit 2)
    ├── DecodeError            a message that cannot be read (permanent, per record)
    ├── TransientError         retry: lost connection, broker or registry down, deadlock
    └── PermanentError         do not retry
        ├── RecordError        one record cannot be stored (constraint, bad value)
        └── FatalError         the service cannot go on (retry deadline passed, tolerance none)
"""

from __future__ import annotations


class WarpError(Exception):
    """Base of every error the sink raises."""

    retriable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(WarpError):
    """Bad configuration or command-line usage; the CLI exits 2 with this message."""

    code = "config"


class DecodeError(WarpError):
    """A Kafka message that cannot be decoded. ``code`` is a stable reason code
    (``bad_json``, ``bad_envelope``, ``bad_key``, ``bad_extjson``, ``unknown_schema_id``,
    ``bad_magic_byte``, ``bad_avro``, ...)."""

    code = "decode"
    # The source schema/db and table/collection when the envelope names them (the dead
    # letter's warp.schema / warp.table), set by the decoder.
    schema: str | None = None
    table: str | None = None


class TransientError(WarpError):
    """A failure that retrying can cure (connection lost, broker or registry down)."""

    retriable = True
    code = "transient"


class PermanentError(WarpError):
    """A failure that retrying cannot cure."""

    code = "permanent"


class RecordError(PermanentError):
    """One record cannot be stored (constraint violation, value the column refuses)."""

    code = "record"


class FatalError(PermanentError):
    """The service must stop: retry deadline passed, ``errors.tolerance: none`` hit."""

    code = "fatal"


def tls_refusal(exc: BaseException, peer: str) -> str | None:
    """Why a TLS handshake with ``peer`` ("broker", "server") failed, when only a person can
    fix it: its certificate is untrusted, expired or names another host, or it refused our
    client certificate (or its absence). None for anything else, e.g. a reset connection,
    which the retry policy owns."""
    import ssl  # here: the rest of this module is plain exception classes

    if isinstance(exc, ssl.SSLCertVerificationError):
        msg = exc.verify_message or str(exc)
        if "mismatch" in msg:
            return (f"TLS: the {peer}'s certificate is not valid for the host name used to "
                    f"reach it ({msg})")
        if "expired" in msg:
            return f"TLS: the {peer}'s certificate has expired ({msg})"
        return f"TLS: the {peer}'s certificate is not trusted ({msg})"
    reason = getattr(exc, "reason", None) or ""
    if not isinstance(exc, ssl.SSLError) or "ALERT" not in reason or "CLOSE_NOTIFY" in reason:
        return None
    if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        return f"TLS: the {peer} refused the client certificate or its absence ({reason})"
    return f"TLS: the {peer} refused the handshake ({reason})"
