"""The MariaDB source of the real-connector suite: every column type a MySQL/MariaDB user
meets in ``app.all_types`` (signed and UNSIGNED integers to 2^64-1, decimals, floats, bits,
utf8mb4 text, binaries, every date/time type with its extremes, year, enum, set, json), keys
(composite, keyless), and a workload of updates, key updates, deletes, re-inserts, TRUNCATE
and ADD/DROP COLUMN.

``all_types`` gets the same rows twice: ids 1.. through the snapshot (read with SELECT) and
ids 101.. streamed (read from the binlog), so both renderings of identical values are
compared.
"""

from __future__ import annotations

# ruff: noqa: E501 - SQL literals read best on one line
SCHEMA_SQL: list[str] = [
    # The server's default sql_mode has no NO_ZERO_DATE/NO_ZERO_IN_DATE: zero dates are
    # storable, as on many long-lived MySQL databases (streamed only: see WORKLOAD).
    """CREATE TABLE app.all_types (
    id              bigint PRIMARY KEY,
    c_tinyint       tinyint,
    c_tinyint_u     tinyint unsigned,
    c_bool          bool,
    c_smallint      smallint,
    c_smallint_u    smallint unsigned,
    c_mediumint     mediumint,
    c_mediumint_u   mediumint unsigned,
    c_int           int,
    c_int_u         int unsigned,
    c_bigint        bigint,
    c_bigint_u      bigint unsigned,
    c_decimal       decimal(10,2),
    c_decimal_65    decimal(65,30),
    c_decimal_0     decimal(20,0),
    c_float         float,
    c_double        double,
    c_bit1          bit(1),
    c_bit           bit(12),
    c_bit64         bit(64),
    c_char          char(5),
    c_varchar       varchar(20),
    c_text          text,
    c_longtext      longtext,
    c_binary        binary(4),
    c_varbinary     varbinary(16),
    c_blob          blob,
    c_date          date,
    c_datetime      datetime,
    c_datetime3     datetime(3),
    c_datetime6     datetime(6),
    c_timestamp     timestamp NULL DEFAULT NULL,
    c_timestamp6    timestamp(6) NULL DEFAULT NULL,
    c_time          time,
    c_time6         time(6),
    c_year          year,
    c_enum          enum('sad', 'ok', 'happy', 'so-so ''quoted'''),
    c_set           set('a', 'b', 'c d'),
    c_json          json
) CHARACTER SET utf8mb4""",
    "CREATE TABLE app.comp_pk (tenant int NOT NULL, region varchar(8), id int NOT NULL, val text, PRIMARY KEY (id, tenant))",
    "CREATE TABLE app.keyless (a int, b varchar(10))",
    "CREATE TABLE app.trunc_me (id int PRIMARY KEY, v text)",
    "CREATE TABLE app.evolve (id int PRIMARY KEY, n int, note text)",
    "CREATE TABLE app.e2e_marker (id int PRIMARY KEY, note text)",
]

ALL_COLS = ("id, c_tinyint, c_tinyint_u, c_bool, c_smallint, c_smallint_u, c_mediumint, "
            "c_mediumint_u, c_int, c_int_u, c_bigint, c_bigint_u, c_decimal, c_decimal_65, "
            "c_decimal_0, c_float, c_double, c_bit1, c_bit, c_bit64, c_char, c_varchar, c_text, "
            "c_longtext, c_binary, c_varbinary, c_blob, c_date, c_datetime, c_datetime3, "
            "c_datetime6, c_timestamp, c_timestamp6, c_time, c_time6, c_year, c_enum, c_set, "
            "c_json")

ALL_ROWS: list[tuple[str, str]] = [
    ("typical", r"""42, 200, true, 1234, 60000, 1234567, 16000000, 123456789, 4000000000,
      1234567890123, 12345678901234567890, 12345.67, 3.141592653589793238462643383279502884,
      12345678901234567890, 0.1, 2.718281828459045, b'1', b'101010101010', b'1101',
      'ab', 'héllo ☃ 😀', 'héllo "q" \\ back\nslash 😀', REPEAT('long😀', 2000),
      x'dead', x'deadbeef00', x'00ff00ff', '2024-02-29', '2024-02-29 13:45:30',
      '2024-02-29 13:45:30.123', '2024-02-29 13:45:30.123456', '2024-02-29 13:45:30',
      '2024-02-29 13:45:30.123456', '13:45:30', '13:45:30.123456', 2024, 'happy', 'a,c d',
      '{"a": 2.500, "big": 123456789012345678901234567890, "f": 1.0e2, "s": "é😀"}'"""),
    ("minimum", r"""-128, 0, false, -32768, 0, -8388608, 0, -2147483648, 0,
      -9223372036854775808, 0, -99999999.99, -99999999999999999999999999999999999.999999999999999999999999999999,
      -99999999999999999999, -3.40282e38, -1.7976931348623157e308, b'0', b'000000000000', b'0',
      '', '', '', '', x'', x'', x'', '1000-01-01', '1000-01-01 00:00:00',
      '1000-01-01 00:00:00.000', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01',
      '1970-01-01 00:00:01.000000', '-838:59:59', '-838:59:59.000000', 1901, 'sad', '',
      'null'"""),
    ("maximum", r"""127, 255, true, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
      9223372036854775807, 18446744073709551615, 99999999.99,
      99999999999999999999999999999999999.999999999999999999999999999999,
      99999999999999999999, 3.40282e38, 1.7976931348623157e308, b'1', b'111111111111',
      b'1111111111111111111111111111111111111111111111111111111111111111',
      'abcde', REPEAT('v', 20), REPEAT('x', 300), REPEAT('y', 70000), x'ffffffff',
      x'ffffffffffffffffffffffffffffffff', REPEAT(x'ff', 1000), '9999-12-31',
      '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999',
      '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', '838:59:59', '838:59:59.000000',
      2155, 'so-so ''quoted''', 'a,b,c d', '[1, 2.50, null, true, {"k": []}]'"""),
    ("special", r"""0, 0, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.000000000000000000000000000001, 0, 1e-7,
      5e-324, NULL, NULL, NULL, 'x ', ' x ', 'trailing space ', 'x', x'00', x'00', x'00',
      '0000-00-00', '0000-00-00 00:00:00', '2024-01-01 00:00:00.5', '2024-01-01 00:00:00.000001',
      NULL, NULL, '24:00:00', '-00:00:00.000001', 2000, 'ok', 'b', '"just a string"'"""),
    ("all-null", ", ".join(["NULL"] * 38)),
]


def all_types_insert(first_id: int) -> list[str]:
    return [f"INSERT INTO app.all_types ({ALL_COLS}) VALUES ({first_id + i}, {vals})"
            for i, (_name, vals) in enumerate(ALL_ROWS)]


SNAPSHOT_SQL: list[str] = [
    *all_types_insert(1),
    "INSERT INTO app.comp_pk VALUES (1, 'eu', 1, 'one'), (1, 'eu', 2, 'two'), (2, 'us', 1, 'x')",
    "INSERT INTO app.keyless VALUES (1, 'a'), (1, 'a'), (2, 'b')",
    "INSERT INTO app.trunc_me VALUES (1, 'row 1'), (2, 'row 2'), (3, 'row 3')",
    "INSERT INTO app.evolve VALUES (1, 10, 'first')",
    # so the marker topic exists before the drain check (creating a topic costs ~1 s)
    "INSERT INTO app.e2e_marker VALUES (0, 'snapshot')",
]

# (label, statements run in ONE transaction)
WORKLOAD: list[tuple[str, list[str]]] = [
    ("stream inserts of the same all_types rows", all_types_insert(101)),
    ("update non-key columns", ["UPDATE app.all_types SET c_text = 'updated', c_int = c_int + 1,"
                                " c_json = '{\"v\": 2.50}' WHERE id = 1"]),
    ("update to NULLs", ["UPDATE app.all_types SET c_json = NULL, c_datetime = NULL WHERE id = 2"]),
    ("pk update, composite key", ["UPDATE app.comp_pk SET id = 99 WHERE tenant = 1 AND id = 1"]),
    ("pk update, all_types", ["UPDATE app.all_types SET id = 200 WHERE id = 103"]),
    ("delete + re-insert (separate tx)", ["DELETE FROM app.comp_pk WHERE tenant = 1 AND id = 2"]),
    ("re-insert", ["INSERT INTO app.comp_pk VALUES (1, 'eu', 2, 'reborn')"]),
    ("delete + re-insert (same tx)", ["DELETE FROM app.comp_pk WHERE tenant = 2",
                                      "INSERT INTO app.comp_pk VALUES (2, 'us', 1, 'again')"]),
    ("keyless: insert/update/delete", [
        "INSERT INTO app.keyless VALUES (3, 'c')",
        "UPDATE app.keyless SET b = 'B' WHERE a = 2",
        "DELETE FROM app.keyless WHERE a = 1 LIMIT 1"]),
    ("multi-statement transaction", [
        "INSERT INTO app.trunc_me VALUES (10, 'ten')",
        "UPDATE app.trunc_me SET v = 'ten!' WHERE id = 10",
        "DELETE FROM app.trunc_me WHERE id = 1"]),
    ("TRUNCATE", ["TRUNCATE TABLE app.trunc_me"]),
    ("insert after truncate", ["INSERT INTO app.trunc_me VALUES (1, 'after truncate')"]),
    ("ADD COLUMN with default", ["ALTER TABLE app.evolve ADD COLUMN extra varchar(10) DEFAULT 'dflt'"]),
    ("insert after ADD COLUMN", ["INSERT INTO app.evolve VALUES (2, 20, 'second', 'e2')"]),
    ("update old row after ADD COLUMN", ["UPDATE app.evolve SET n = 11 WHERE id = 1"]),
    ("DROP COLUMN", ["ALTER TABLE app.evolve DROP COLUMN note"]),
    ("insert after DROP COLUMN", ["INSERT INTO app.evolve VALUES (3, 30, 'e3')"]),
    ("new table created while streaming", [
        "CREATE TABLE app.late (id int PRIMARY KEY, v text)",
        "INSERT INTO app.late VALUES (1, 'late row')"]),
    ("delete from all_types", ["DELETE FROM app.all_types WHERE id = 5"]),
    # Zero dates and YEAR 0000, streamed only: a snapshot that reads YEAR 0000 kills the
    # connector's task (the MariaDB JDBC driver's YearColumn calls java.sql.Date.valueOf,
    # which throws IllegalArgumentException).
    ("zero dates", ["INSERT INTO app.all_types (id, c_date, c_datetime, c_datetime3, c_year)"
                    " VALUES (300, '0000-00-00', '0000-00-00 00:00:00', '2024-00-00 00:00:00', 0)"]),
]
