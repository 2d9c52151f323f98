"""The source side of the real-connector suite: the schema, the rows the snapshot reads, and
the workload streamed after it (taken from the Debezium rig whose captures ENCODINGS.md
describes). Every PostgreSQL type a user meets is a column of ``app.all_types``; the other
tables exercise keys (composite, uuid, numeric), keyless tables, TOAST, TRUNCATE and DDL.

``all_types`` gets the same rows twice: ids 1.. through the snapshot, ids 101.. streamed,
so snapshot and streaming renderings of identical values are both compared.
"""

from __future__ import annotations

# ruff: noqa: E501 - SQL literals read best on one line
SCHEMA_SQL = r"""
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'so-so ''quoted''');

CREATE TABLE app.all_types (
    id              bigint PRIMARY KEY,
    c_smallint      smallint,
    c_int           integer,
    c_bigint        bigint,
    c_serial        serial,
    c_numeric       numeric,
    c_numeric_10_2  numeric(10,2),
    c_numeric_38    numeric(38,0),
    c_real          real,
    c_double        double precision,
    c_bool          boolean,
    c_text          text,
    c_varchar       varchar(20),
    c_char          char(5),
    c_citext        citext,
    c_bytea         bytea,
    c_uuid          uuid,
    c_json          json,
    c_jsonb         jsonb,
    c_date          date,
    c_time          time,
    c_time3         time(3),
    c_timetz        timetz,
    c_ts3           timestamp(3),
    c_ts            timestamp,
    c_tstz          timestamptz,
    c_interval      interval,
    c_int_arr       integer[],
    c_text_arr      text[],
    c_enum          app.mood,
    c_bit1          bit(1),
    c_bit           bit(12),
    c_varbit        varbit(64),
    c_money         money,
    c_inet          inet,
    c_cidr          cidr,
    c_macaddr       macaddr,
    c_point         point,
    c_int4range     int4range,
    c_tstzrange     tstzrange,
    c_hstore        hstore,
    c_xml           xml
);

-- composite key declared in an order that differs from the column order
CREATE TABLE app.comp_pk (tenant int NOT NULL, region text, id int NOT NULL, val text,
                          PRIMARY KEY (id, tenant));
CREATE TABLE app.uuid_pk (id uuid PRIMARY KEY, val text);
CREATE TABLE app.num_pk (id numeric(12,3) PRIMARY KEY, val text);
CREATE TABLE app.keyless_full (a int, b text);
ALTER TABLE app.keyless_full REPLICA IDENTITY FULL;
CREATE TABLE app.keyless_default (a int, b text);
CREATE TABLE app.toasty (id int PRIMARY KEY, small int, big text, big_bytea bytea,
                         big_jsonb jsonb, big_arr text[]);
CREATE TABLE app.trunc_me (id int PRIMARY KEY, v text);
CREATE TABLE app.evolve (id int PRIMARY KEY, n int, note text);
CREATE TABLE app.e2e_marker (id int PRIMARY KEY, note text);
"""

ALL_COLS = ("id, c_smallint, c_int, c_bigint, c_numeric, c_numeric_10_2, c_numeric_38, "
            "c_real, c_double, c_bool, c_text, c_varchar, c_char, c_citext, c_bytea, c_uuid, "
            "c_json, c_jsonb, c_date, c_time, c_time3, c_timetz, c_ts3, c_ts, c_tstz, "
            "c_interval, c_int_arr, c_text_arr, c_enum, c_bit1, c_bit, c_varbit, c_money, "
            "c_inet, c_cidr, c_macaddr, c_point, c_int4range, c_tstzrange, c_hstore, c_xml")

# Rows of all_types (without id). The same rows are inserted once before the connector starts
# (read by the snapshot, ids 1..) and once during streaming (ids 101..), so snapshot and
# pgoutput-streaming encodings of identical values can be compared.
ALL_ROWS: list[tuple[str, str]] = [
    ("typical", r"""1, 42, 1234567890123, 2.500, 12345.67, 12345678901234567890123456789012345678,
      0.1, 2.718281828459045, true, E'h\u00e9llo \u2603 "q" \\ back\nslash', 'varchar', 'ab',
      'MiXeD', '\xdeadbeef00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '{"a": 2.500,  "b": [1, 2], "a": 3}', '{"a": 2.500, "big": 123456789012345678901234567890, "f": 1.0e2}',
      '2024-02-29', '13:45:30.123456', '13:45:30.123', '13:45:30.123456+05:30',
      '2024-02-29 13:45:30.123', '2024-02-29 13:45:30.123456', '2024-02-29 13:45:30.123456+01',
      '1 year 2 mons 3 days 04:05:06.789', '{1,2,NULL,4}', '{"a","b c",NULL,"\"q\"","NULL"}',
      'happy', B'1', B'101010101010', B'1101', 12.34, '192.168.1.5/24', '10.0.0.0/8',
      '08:00:2b:01:02:03', '(1.5,-2.25)', '[1,10)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)',
      'a=>1, "b c"=>NULL', '<r a="1">x</r>'"""),
    ("minimum", r"""-32768, -2147483648, -9223372036854775808, -0.000001, -99999999.99,
      -99999999999999999999999999999999999999, '-Infinity', '-Infinity', false, '', '', '',
      '', '\x', '00000000-0000-0000-0000-000000000000', 'null', 'null',
      '0001-01-01', '00:00:00', '00:00:00', '00:00:00+15:59',
      '0001-01-01 00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00',
      '-178000000 years', '{}', '{}', 'sad', B'0', B'000000000000', B'', '-92233720368547758.08',
      '0.0.0.0/0', '0.0.0.0/0', '00:00:00:00:00:00', '(0,0)', 'empty', 'empty', '', '<a/>'"""),
    ("maximum", r"""32767, 2147483647, 9223372036854775807,
      123456789012345678901234567890.123456789012345678901234567890, 99999999.99,
      99999999999999999999999999999999999999, 3.4028235e38, 1.7976931348623157e308, true,
      repeat('x', 300), repeat('v', 20), 'abcde', 'Z', '\x00ff00ff',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '{"big": 123456789012345678901234567890, "neg": -1e400, "s": "\u00e9\ud83d\ude00"}',
      '{"big": 123456789012345678901234567890, "neg": -1e400, "s": "\u00e9\ud83d\ude00"}',
      '9999-12-31', '24:00:00', '23:59:59.999', '24:00:00-15:59',
      '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00',
      '178000000 years', '{{1,2},{3,4}}', '{{"a","b"},{"c","d"}}', 'so-so ''quoted''',
      B'1', B'111111111111', B'1111111111111111111111111111111111111111111111111111111111111111',
      '92233720368547758.07', '::1/128', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
      '(1e300,-1e-300)', '(,5]', '[2024-01-01 00:00+00,)', 'k=>v', '<big>é</big>'"""),
    ("special", r"""0, 0, 0, 'NaN', 'NaN', 0, 'NaN', 'NaN', NULL, 'x', 'x', 'x', 'x', '\x00',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[]', '"just a string"',
      'infinity', '23:59:59.999999', '00:00:00.0005', '12:00:00-00:30',
      '-infinity', 'infinity', '-infinity',
      '1 mon -1 day -00:00:00.000001', '{NULL}', '{""}', 'ok', NULL, NULL, NULL, 0,
      '::ffff:1.2.3.4', '::/0', '01:02:03:04:05:06', '(-0,-0)', NULL, '(,)', NULL, NULL"""),
    ("bc-and-infinity", r"""NULL, NULL, NULL, 'Infinity', NULL, NULL, '-0', '-0', NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, '0', '1e-7',
      '0044-03-15 BC', NULL, NULL, NULL, '4713-01-01 00:00:00 BC', '0044-03-15 12:00:00 BC',
      '0001-12-31 23:59:59+00 BC', '-1 mon', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"""),
    # the other sign of each infinity, and the latest values PostgreSQL holds (a timestamp
    # in µs past 294276 AD is beyond Debezium's int64: year 10000 stands for "beyond Python")
    ("other-infinities", ", ".join(["NULL"] * 6 + ["'Infinity'", "'Infinity'"] + ["NULL"] * 9
                                   + ["'-infinity'", "NULL", "NULL", "'24:00:00+00'",
                                      "'infinity'", "'-infinity'", "'infinity'"]
                                   + ["NULL"] * 16)),
    ("far-future", ", ".join(["NULL"] * 17 + ["'5874897-12-31'", "NULL", "NULL", "NULL",
                                              "'294276-12-31 23:59:59.999'",
                                              "'10000-01-01 00:00:00'",
                                              "'294276-12-31 23:59:59.999999+00'"]
                             + ["NULL"] * 16)),
    ("all-null", ", ".join(["NULL"] * 40)),
]

# big values that TOAST stores out of line (random md5 text does not compress)
BIG_TEXT = "(SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, 1200) i)"
BIG_BYTEA = "(SELECT decode(string_agg(md5(i::text || random()::text), ''), 'hex') FROM generate_series(1, 1200) i)"
BIG_JSONB = "(SELECT jsonb_agg(md5(i::text || random()::text)) FROM generate_series(1, 1200) i)"
BIG_ARR = "(SELECT array_agg(md5(i::text || random()::text)) FROM generate_series(1, 1200) i)"


def all_types_insert(first_id: int) -> list[str]:
    return [f"INSERT INTO app.all_types ({ALL_COLS}) VALUES ({first_id + i}, {vals})"
            for i, (_name, vals) in enumerate(ALL_ROWS)]


SNAPSHOT_SQL: list[str] = [
    *all_types_insert(1),
    "INSERT INTO app.comp_pk VALUES (1, 'eu', 1, 'one'), (1, 'eu', 2, 'two'), (2, 'us', 1, 'x')",
    "INSERT INTO app.uuid_pk VALUES ('11111111-1111-1111-1111-111111111111', 'u1'),"
    " ('22222222-2222-2222-2222-222222222222', 'u2')",
    "INSERT INTO app.num_pk VALUES (1.500, 'a'), (-0.001, 'b')",
    "INSERT INTO app.keyless_full VALUES (1, 'a'), (1, 'a'), (2, 'b')",
    "INSERT INTO app.keyless_default VALUES (1, 'a'), (2, 'b')",
    f"INSERT INTO app.toasty VALUES (1, 1, {BIG_TEXT}, {BIG_BYTEA}, {BIG_JSONB}, {BIG_ARR}),"
    f" (2, 1, {BIG_TEXT}, {BIG_BYTEA}, {BIG_JSONB}, {BIG_ARR})",
    "INSERT INTO app.trunc_me SELECT i, 'row ' || i FROM generate_series(1, 3) i",
    "INSERT INTO app.evolve VALUES (1, 10, 'first')",
    # so the marker topic exists before the drain check (creating a topic costs ~1 s)
    "INSERT INTO app.e2e_marker VALUES (0, 'snapshot')",
]

# (label, statements run in ONE transaction, whether an error is expected)
WORKLOAD: list[tuple[str, list[str], bool]] = [
    ("stream inserts of the same all_types rows", all_types_insert(101), False),
    ("update non-key columns", ["UPDATE app.all_types SET c_text = 'updated', c_int = c_int + 1,"
                                " c_jsonb = '{\"v\": 2.50}' WHERE id = 1"], False),
    ("update to NULLs", ["UPDATE app.all_types SET c_json = NULL, c_jsonb = NULL, c_ts = NULL"
                         " WHERE id = 2"], False),
    ("no-op update (same values)", ["UPDATE app.all_types SET c_int = c_int WHERE id = 3"], False),
    ("pk update, composite key", ["UPDATE app.comp_pk SET id = 99 WHERE tenant = 1 AND id = 1"],
     False),
    ("pk update, uuid key", ["UPDATE app.uuid_pk SET id = '33333333-3333-3333-3333-333333333333'"
                             " WHERE id = '11111111-1111-1111-1111-111111111111'"], False),
    ("pk update, numeric key", ["UPDATE app.num_pk SET id = 2.000 WHERE id = 1.5"], False),
    ("delete + re-insert (separate tx)", ["DELETE FROM app.comp_pk WHERE tenant = 1 AND id = 2"],
     False),
    ("re-insert", ["INSERT INTO app.comp_pk VALUES (1, 'eu', 2, 'reborn')"], False),
    ("delete + re-insert (same tx)", ["DELETE FROM app.uuid_pk WHERE val = 'u2'",
                                      "INSERT INTO app.uuid_pk VALUES "
                                      "('22222222-2222-2222-2222-222222222222', 'u2 again')"],
     False),
    ("TOAST: update a small column, big ones unchanged",
     ["UPDATE app.toasty SET small = small + 1 WHERE id = 1"], False),
    ("TOAST: change the big text", ["UPDATE app.toasty SET big = big || 'x' WHERE id = 2"], False),
    ("TOAST: delete (default identity)", ["DELETE FROM app.toasty WHERE id = 2"], False),
    ("keyless FULL: insert/update/delete", [
        "INSERT INTO app.keyless_full VALUES (3, 'c')",
        "UPDATE app.keyless_full SET b = 'B' WHERE a = 2",
        "DELETE FROM app.keyless_full WHERE a = 1"], False),
    ("keyless default identity: insert", ["INSERT INTO app.keyless_default VALUES (3, 'c')"],
     False),
    ("keyless default identity: update (fails: no replica identity)",
     ["UPDATE app.keyless_default SET b = 'B' WHERE a = 2"], True),
    ("keyless default identity: delete (fails: no replica identity)",
     ["DELETE FROM app.keyless_default WHERE a = 1"], True),
    ("multi-statement transaction", [
        "INSERT INTO app.trunc_me VALUES (10, 'ten')",
        "UPDATE app.trunc_me SET v = 'ten!' WHERE id = 10",
        "DELETE FROM app.trunc_me WHERE id = 1"], False),
    ("TRUNCATE", ["TRUNCATE app.trunc_me"], False),
    ("insert after truncate", ["INSERT INTO app.trunc_me VALUES (1, 'after truncate')"], False),
    ("ADD COLUMN with default", ["ALTER TABLE app.evolve ADD COLUMN extra text DEFAULT 'dflt'"],
     False),
    ("insert after ADD COLUMN", ["INSERT INTO app.evolve VALUES (2, 20, 'second', 'e2')"], False),
    ("update old row after ADD COLUMN", ["UPDATE app.evolve SET n = 11 WHERE id = 1"], False),
    ("DROP COLUMN", ["ALTER TABLE app.evolve DROP COLUMN note"], False),
    ("insert after DROP COLUMN", ["INSERT INTO app.evolve VALUES (3, 30, 'e3')"], False),
    ("ALTER COLUMN TYPE int -> bigint", ["ALTER TABLE app.evolve ALTER COLUMN n TYPE bigint"],
     False),
    ("insert after ALTER TYPE", ["INSERT INTO app.evolve VALUES (4, 9000000000, 'e4')"], False),
    ("DDL + DML in one tx", ["ALTER TABLE app.evolve ADD COLUMN tx_col numeric(6,2)",
                             "INSERT INTO app.evolve VALUES (5, 5, 'e5', 5.25)"], False),
    ("new table created while streaming", [
        "CREATE TABLE app.late (id int PRIMARY KEY, v text)",
        "INSERT INTO app.late VALUES (1, 'late row')"], False),
    ("delete from all_types", ["DELETE FROM app.all_types WHERE id = 6"], False),
]

