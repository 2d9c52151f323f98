"""Sort PostgreSQL and asyncpg failures into the sink's error kinds."""

from __future__ import annotations

import asyncio

import asyncpg

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
_TRANSIENT = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,  # statement timeout
    asyncpg.exceptions.InternalClientError,
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
)


class StaleCatalog(TransientError):
    """The destination's shape changed under a cached plan: reload and retry."""

    code = "stale_catalog"


def classify(exc: BaseException) -> WarpError:
    """Map a failure to TransientError (retry), StaleCatalog (reload, retry),
    RecordError (the data cannot be stored: isolate it and dead-letter it) or
    FatalError (a fault in the sink itself: stop, commit nothing, dead-letter nothing —
    a bug must not send good records to the DLQ)."""
    if isinstance(exc, WarpError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, asyncpg.exceptions.FeatureNotSupportedError) and "cached plan" in str(exc):
        return StaleCatalog(f"{name}: {exc}")
    if isinstance(exc, _STALE):
        return StaleCatalog(f"{name}: {exc}")
    if isinstance(exc, asyncpg.exceptions.DataError) and not isinstance(
        exc, asyncpg.exceptions.PostgresError
    ):
        return RecordError(f"{name}: {exc}", code="bad_value")  # client-side encoding
    if why := refusal(exc):
        return FatalError(why, code="postgres_auth")
    if isinstance(exc, _TRANSIENT):
        return TransientError(f"{name}: {exc}", code="connection")
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return RecordError(f"{name}: {exc}", code="constraint_violation")
    if isinstance(exc, asyncpg.exceptions.DataError):
        return RecordError(f"{name}: {exc}", code="bad_value")
    if isinstance(exc, asyncpg.exceptions.PostgresError):
        return RecordError(f"{name}: {exc}", code="rejected")
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
        return (f"postgresql: {exc} (hint: check the user and password in "
                "destination.connection_string, e.g. WARP__DESTINATION__CONNECTION_STRING)")
    if isinstance(exc, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        hint = ("set destination.sslcert and destination.sslkey: a certificate whose CN is "
                "the user, signed by a CA the server trusts" if "certificate" in str(exc) else
                "pg_hba.conf must allow this user, database and address with this sslmode")
        return f"postgresql: the server refused the login: {exc} (hint: {hint})"
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return f"postgresql: {exc} (hint: create the database or fix its name in the DSN)"
    return None
