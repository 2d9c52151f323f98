"""Sort PostgreSQL and asyncpg failures into the sink's error kinds.

The rule: only an error about the record's own data may dead-letter it. Everything
else — the database turned read-only after a failover, a revoked grant, a restart, a
timeout, a full disk — says nothing about the record, so it is retried under the retry
policy (`errors.retry_deadline_seconds`, then exit 1 with the reason) and never moves an
offset. An error that is not known to be about the row stops the service rather than
guess: dead-lettering good records is the one outcome that cannot be undone.
"""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

from sink.errors import FatalError, RecordError, TransientError, WarpError, tls_refusal

# Catalog drift: a table or column changed under a cached shape or prepared statement.
_STALE = (
    asyncpg.exceptions.InvalidCachedStatementError,
    asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.DuplicateColumnError,
    asyncpg.exceptions.DuplicateTableError,
    asyncpg.exceptions.DuplicateObjectError,
    asyncpg.exceptions.InvalidSchemaNameError,
    asyncpg.exceptions.DatatypeMismatchError,
)
_CLIENT = (
    asyncpg.exceptions.InterfaceError,  # includes ConnectionDoesNotExistError
    asyncpg.exceptions.InternalClientError,
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
)

# SQLSTATE classes and codes about the values of the rows being written: data exceptions
# (22: out of range, bad text, ...), integrity constraints (23), a view's CHECK OPTION
# (44), program limits hit by one row's size (54: "row is too big", index row too large),
# a user trigger refusing the row (P0001), and ON CONFLICT meeting a row twice (21000,
# which bisection resolves without dead-lettering anything).
_ROW_CLASSES = ("22", "23", "44", "54")
_ROW_STATES = frozenset({"P0001", "21000"})

# Operational: nothing to do with the record. (code or class) -> what the operator sees.
_OPERATIONAL: dict[str, tuple[str, str]] = {
    "25006": ("read_only", "the database is read-only (a standby, or "
                           "default_transaction_read_only is on)"),
    "42501": ("privilege", "the sink's PostgreSQL role lacks a privilege; grant it"),
    "08": ("connection", "connection failure"),
    "40": ("connection", "transaction rolled back by the server (serialization or deadlock)"),
    "53": ("resources", "the server is out of a resource (disk, memory, connections)"),
    "55P03": ("lock_timeout", "a lock could not be taken in time"),
    "55006": ("lock_timeout", "an object the sink needs is in use"),
    "57014": ("statement_timeout", "a statement was cancelled (statement_timeout)"),
    "57P01": ("server_shutdown", "the server is shutting down"),
    "57P02": ("server_shutdown", "the server crashed"),
    "57P03": ("server_shutdown", "the server cannot take connections now"),
    "57P04": ("server_shutdown", "the database was dropped"),
    "57P05": ("server_shutdown", "the session was idle too long"),
    "58": ("server_io", "the server failed an I/O"),
    "HV": ("server_io", "a foreign data wrapper failed"),
}


class StaleCatalog(TransientError):
    """The destination's shape changed under a cached plan: reload and retry."""

    code = "stale_catalog"


class Operational(TransientError):
    """PostgreSQL cannot take writes now, for a reason outside the records (read-only,
    missing privilege, restart, timeout, resources): retried, never dead-lettered."""

    code = "operational"


def sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def classify(exc: BaseException) -> WarpError:
    """Map a failure to TransientError/Operational (retry), StaleCatalog (reload, retry),
    RecordError (the record's own data cannot be stored: isolate it and dead-letter it) or
    FatalError (a fault in the sink or an error not known to be the record's: stop,
    commit nothing, dead-letter nothing)."""
    if isinstance(exc, WarpError):
        return exc
    name = type(exc).__name__
    state = sqlstate(exc)
    if isinstance(exc, asyncpg.exceptions.FeatureNotSupportedError) and "cached plan" in str(exc):
        return StaleCatalog(f"{name}: {exc}")
    if isinstance(exc, _STALE):
        return StaleCatalog(f"{name}: {exc}")
    if why := refusal(exc):  # a person must fix it: stop, never retry or dead-letter
        return FatalError(why, code="postgres_auth")
    if isinstance(exc, asyncpg.exceptions.PostgresError):
        known = _OPERATIONAL.get(state) or _OPERATIONAL.get(state[:2])
        if known is not None:
            code, why = known
            return Operational(f"{why}: {exc} (SQLSTATE {state})", code=code)
        if state[:2] in _ROW_CLASSES or state in _ROW_STATES:
            if state.startswith("23") or state == "44000":
                return RecordError(f"{name}: {exc}", code="constraint_violation")
            return RecordError(f"{name}: {exc}", code="bad_value")
        return FatalError(f"PostgreSQL refused a statement for a reason that is not the "
                          f"record's (stopping without committing): {name}: {exc} "
                          f"(SQLSTATE {state})", code="internal")
    if isinstance(exc, ClientDataError):
        return RecordError(f"{name}: {exc}", code="bad_value")  # a value asyncpg cannot encode
    if isinstance(exc, _CLIENT):
        return TransientError(f"{name}: {exc}", code="connection")
    if isinstance(exc, (ValueError, OverflowError, UnicodeError)):
        return RecordError(f"{name}: {exc}", code="bad_value")  # a value we cannot encode
    return FatalError(f"internal error, stopping without committing: {name}: {exc}",
                      code="internal")


def refusal(exc: BaseException) -> str | None:
    """Why the server refused us for good (a person must fix it), else None. The server's
    words name the user and the client address, never the password."""
    if why := tls_refusal(exc, "server"):
        if "client certificate" in why:
            hint = "destination.sslcert/sslkey: the client certificate and its key"
        elif "refused the handshake" in why:
            hint = "the TLS versions and ciphers of client and server must overlap"
        else:
            hint = ("destination.sslrootcert must hold the CA that signed the server's "
                    "certificate, and the DSN's host must be one the certificate names")
        return f"postgresql: {why} (hint: {hint})"
    if isinstance(exc, asyncpg.exceptions.InvalidPasswordError):
        return (f"postgresql: {exc} (hint: check the user and password: "
                "destination.connection_string, destination.password or password_file)")
    if isinstance(exc, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        hint = ("set destination.sslcert and destination.sslkey: a certificate whose CN is "
                "the user, signed by a CA the server trusts" if "certificate" in str(exc) else
                "pg_hba.conf must allow this user, database and address with this sslmode")
        return f"postgresql: the server refused the login: {exc} (hint: {hint})"
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return f"postgresql: {exc} (hint: create the database or fix its name in the DSN)"
    return None
