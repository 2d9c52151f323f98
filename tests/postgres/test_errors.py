"""The classification of PostgreSQL errors: only the record's own data dead-letters it."""

from __future__ import annotations

import asyncpg.exceptions as pgx
import pytest

from sink.errors import FatalError, RecordError, TransientError
from sink.postgres.errors import Operational, StaleCatalog, classify


@pytest.mark.parametrize(("exc", "code"), [
    (pgx.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
     "read_only"),
    (pgx.InsufficientPrivilegeError("permission denied for table users"), "privilege"),
    (pgx.AdminShutdownError("terminating connection"), "server_shutdown"),
    (pgx.CrashShutdownError("crash"), "server_shutdown"),
    (pgx.CannotConnectNowError("starting up"), "server_shutdown"),
    (pgx.DiskFullError("no space"), "resources"),
    (pgx.TooManyConnectionsError("too many"), "resources"),
    (pgx.LockNotAvailableError("lock"), "lock_timeout"),
    (pgx.QueryCanceledError("canceling statement due to statement timeout"),
     "statement_timeout"),
    (pgx.SerializationError("could not serialize"), "connection"),
    (pgx.DeadlockDetectedError("deadlock"), "connection"),
    (pgx.ConnectionDoesNotExistError("gone"), "connection"),
])
def test_operational_errors_are_retried(exc: Exception, code: str) -> None:
    err = classify(exc)
    assert isinstance(err, Operational) and err.retriable and err.code == code


@pytest.mark.parametrize(("exc", "code"), [
    (pgx.CheckViolationError("check"), "constraint_violation"),
    (pgx.NotNullViolationError("null"), "constraint_violation"),
    (pgx.UniqueViolationError("dup"), "constraint_violation"),
    (pgx.NumericValueOutOfRangeError("out of range"), "bad_value"),
    (pgx.CharacterNotInRepertoireError("bad utf8"), "bad_value"),
    (pgx.ProgramLimitExceededError("row is too big"), "bad_value"),
    (pgx.RaiseError("refused by a trigger"), "bad_value"),
])
def test_errors_about_the_row_dead_letter_it(exc: Exception, code: str) -> None:
    err = classify(exc)
    assert type(err) is RecordError and err.code == code


def test_shape_drift_reloads_and_unknown_errors_stop() -> None:
    assert isinstance(classify(pgx.UndefinedColumnError("no column")), StaleCatalog)
    for exc in (pgx.PostgresSyntaxError("syntax"), pgx.UndefinedFunctionError("no fn"),
                RuntimeError("bug")):
        err = classify(exc)
        assert isinstance(err, FatalError) and not isinstance(err, TransientError)
