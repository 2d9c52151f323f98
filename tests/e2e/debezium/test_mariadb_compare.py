"""The MariaDB suite's own rules, without servers: which PostgreSQL type each MariaDB type
must land as, how a source value is written for PostgreSQL to cast it, and when a missing
``mariadbd`` skips the suite."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.debezium import mariadb_server
from tests.e2e.debezium.conftest import unavailable
from tests.e2e.debezium.mariadb_compare import _literal, expected_type
from tests.e2e.debezium.mariadb_server import MariaDBServer, MariaDBUnavailable


@pytest.mark.parametrize(("data_type", "column_type", "precision", "want"), [
    ("tinyint", "tinyint(1)", None, "smallint"),
    ("tinyint", "tinyint(3) unsigned", None, "smallint"),
    ("smallint", "smallint(5) unsigned", None, "integer"),
    ("mediumint", "mediumint(8) unsigned", None, "integer"),
    ("int", "int(10) unsigned", None, "bigint"),
    ("bigint", "bigint(20)", None, "bigint"),
    ("bigint", "bigint(20) unsigned", None, "numeric(20,0)"),
    ("decimal", "decimal(65,30)", None, "numeric(65,30)"),
    ("float", "float", None, "real"),
    ("bit", "bit(1)", None, "boolean"),
    ("bit", "bit(64)", None, "bit(64)"),
    ("char", "char(5)", None, "character(5)"),
    ("varchar", "varchar(20)", None, "character varying(20)"),
    ("longtext", "longtext", None, "text"),  # MariaDB's JSON too
    ("enum", "enum('a','b')", None, "text"),
    ("varbinary", "varbinary(16)", None, "bytea"),
    ("datetime", "datetime", 0, "timestamp(0) without time zone"),
    ("datetime", "datetime(3)", 3, "timestamp(3) without time zone"),
    ("datetime", "datetime(6)", 6, "timestamp without time zone"),
    ("timestamp", "timestamp", 0, "timestamp(0) with time zone"),
    ("time", "time(6)", 6, "time without time zone"),
    ("year", "year(4)", None, "integer"),
])
def test_expected_type(data_type: str, column_type: str, precision: int | None,
                       want: str) -> None:
    assert expected_type(data_type, column_type, precision) == want


@pytest.mark.parametrize(("value", "pg_type", "want"), [
    (b"\x01", "boolean", "true"),
    (b"\x0a\xaa", "bit(12)", "101010101010"),  # PyMySQL gives BIT big-endian
    (b"\xde\xad", "bytea", "\\xdead"),
    (Decimal("0E-10"), "numeric(20,10)", "0.0000000000"),
    (dt.timedelta(hours=-838, minutes=-59, seconds=-59), "time(0) without time zone",
     "-838:59:59.000000"),
    (dt.timedelta(microseconds=-1), "time without time zone", "-00:00:00.000001"),
    (dt.timedelta(hours=24), "time without time zone", "24:00:00.000000"),
    (dt.datetime(2038, 1, 19, 3, 14, 7), "timestamp(0) with time zone",
     "2038-01-19 03:14:07+00"),
    (dt.datetime(1000, 1, 1), "timestamp(0) without time zone", "1000-01-01 00:00:00"),
    ("0000-00-00", "date", "0000-00-00"),  # PyMySQL's zero date: PostgreSQL refuses it
    (None, "date", None),
])
def test_literal(value: object, pg_type: str, want: str | None) -> None:
    assert _literal(value, pg_type) == want


def test_missing_mariadbd_skips_outside_ci_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def absent(*names: str) -> str:
        raise MariaDBUnavailable(f"{names[0]} not found")

    monkeypatch.setattr(mariadb_server, "_binary", absent)
    with pytest.raises(MariaDBUnavailable) as missing:
        MariaDBServer(tmp_path).start()
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="mariadbd not found"):
        unavailable(missing.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="CI=true and the MariaDB-source suite cannot run"):
        unavailable(missing.value)
