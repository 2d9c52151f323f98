"""Schema work of the PostgreSQL destination on a real server: hostile and long names,
reserved names, type evolution and narrowing into overflow, NUL characters, and DDL
made by another session between batches."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
import structlog

from sink.postgres.names import column_name, quote, table_name
from sink.records import ColumnSchema, Kind, Record, TableSchema
from tests.postgres.support import Maker, column_types, patch, table_rows, up

pytestmark = pytest.mark.integration

HOSTILE = [
    'quote"d', "semi;colon", "dash--dash", "with space", "ünïcödé ✓ 日本", "x" * 100,
    'x"; DROP TABLE canary; --', "Robert'); DROP TABLE canary;--", "",
]


async def changes(pg: Any, db: str, table: str = "t") -> list[tuple[str, str | None, str | None]]:
    found = await pg.fetch(
        "SELECT change_type, column_name, new_type FROM warp_dest_test_meta.schema_changes "
        "WHERE schema_name = $1 AND table_name = $2 ORDER BY id", db, table)
    return [(r[0], r[1], r[2]) for r in found]


async def test_hostile_field_table_and_schema_names(make_dest: Maker, pg_schema_factory,
                                                    pg) -> None:
    dest = await make_dest()
    canary = await pg_schema_factory()
    await pg.execute(f'CREATE TABLE "{canary}".canary (x int)')
    for name in HOSTILE:
        db = name  # a schema named like that too
        try:
            tbl = table_name(name)
            values = {f: i for i, f in enumerate(HOSTILE)}
            await dest.write_batch(db, [up(db, name, values, 1, table=tbl)])
            await dest.write_batch(db, [patch(db, name, 2, set={HOSTILE[0]: "p"}, table=tbl)])
            got = (await table_rows(pg, table_name(db), tbl))[name]
            for i, f in enumerate(HOSTILE[1:], start=1):
                assert got[column_name(f)] == i
            assert got[HOSTILE[0]] is None and got["_cartridge_overflow"] == {HOSTILE[0]: "p"}
        finally:
            await pg.execute(f"DROP SCHEMA IF EXISTS {quote(table_name(db))} CASCADE")
    assert await pg.fetchval(f'SELECT count(*) FROM "{canary}".canary') == 0
    assert len(column_name("x" * 100).encode()) <= 63


async def test_long_names_sharing_63_bytes_are_two_columns(make_dest: Maker, pg_schema_factory,
                                                           pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    prefix = "é" * 31 + "x"  # 63 bytes
    a, b = prefix + "a" * 7, prefix + "b" * 7
    assert len(a.encode()) == 70 and a.encode()[:63] == b.encode()[:63]
    await dest.write_batch(db, [up(db, "k", {a: 1, b: 2}, 1)])
    got = (await table_rows(pg, db))["k"]
    assert column_name(a) != column_name(b)
    assert got[column_name(a)] == 1 and got[column_name(b)] == 2


async def test_reserved_field_names_are_prefixed(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "k", {"is_deleted": "yes", "_cartridge_version": 99,
                                             "_src_x": 1}, 1)])
    await dest.write_batch(db, [patch(db, "k", 2, set={"is_deleted": "no"})])
    got = (await table_rows(pg, db))["k"]
    assert got["_src_is_deleted"] == "no" and got["_src__cartridge_version"] == 99
    assert got["_src__src_x"] == 1
    assert got["is_deleted"] is False and got["_cartridge_version"] == 2


async def test_int_then_string_then_document(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    dbs = [await pg_schema_factory(), await pg_schema_factory()]
    values = [7, "seven", {"n": 7, "s": ["x"]}]
    with structlog.testing.capture_logs() as logs:
        for i, v in enumerate(values):  # across batches
            await dest.write_batch(dbs[0], [up(dbs[0], f"k{i}", {"f": v}, i)])
        await dest.write_batch(dbs[1], [up(dbs[1], f"k{i}", {"f": v}, i)  # within one batch
                                        for i, v in enumerate(values)])
    for db in dbs:
        assert (await column_types(pg, db))["f"] == "integer"
        got = await table_rows(pg, db)
        assert got["k0"]["f"] == 7 and got["k0"]["_cartridge_overflow"] is None
        assert got["k1"]["f"] is None and got["k1"]["_cartridge_overflow"] == {"f": "seven"}
        assert got["k2"]["_cartridge_overflow"] == {"f": {"n": 7, "s": ["x"]}}
        assert await changes(pg, db) == [
            ("create_table", None, None), ("add_column", "f", "integer"),
            ("narrowing", "f", "text"), ("narrowing", "f", "jsonb")]
    warned = [e for e in logs if e["log_level"] == "warning" and "narrowing" in e["event"]]
    assert {e["column"] for e in warned} == {"f"} and len(warned) >= 3


async def test_widenings(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest(string_type="varchar")
    db = await pg_schema_factory()
    await dest.create_table_if_not_exists(db, TableSchema("t", [
        ColumnSchema("_id", "string"), ColumnSchema("r", "float")], ["_id"]))
    steps: list[dict[str, Any]] = [
        {"i": 1, "r": 1.5, "s": "short", "j": "text"},
        {"i": 2**40, "r": 0.1, "s": "y" * 300, "j": {"a": 1}},
        {"i": 2**70, "r": 2.5, "s": "z", "j": "again"},
        {"i": Decimal("1.25"), "r": 3.5, "s": "w", "j": [1]},
    ]
    types = []
    for n, v in enumerate(steps):
        await dest.write_batch(db, [up(db, f"k{n}", v, n)])
        types.append(await column_types(pg, db))
    assert [t["i"] for t in types] == ["integer", "bigint", "numeric", "numeric"]
    # real holds 1.5 exactly (a float32 value), and widens for 0.1 (a double's 0.1 is not)
    assert [t["r"] for t in types[:2]] == ["real", "double precision"]
    assert [t["s"] for t in types] == ["character varying(255)", "text", "text", "text"]
    assert [t["j"] for t in types] == ["character varying(255)", "jsonb", "jsonb", "jsonb"]
    got = await table_rows(pg, db)
    assert [got[f"k{n}"]["i"] for n in range(4)] == [1, 2**40, 2**70, Decimal("1.25")]
    assert [got[f"k{n}"]["j"] for n in range(4)] == ["text", {"a": 1}, "again", [1]]
    assert got["k1"]["r"] == 0.1 and got["k1"]["s"] == "y" * 300
    assert all(got[k]["_cartridge_overflow"] is None for k in got)
    assert ("widen_column", "i", "numeric") in await changes(pg, db)


async def test_nul_characters(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    doc = {"k\x00ey": ["a\x00", 1], "ok": "fine"}
    await dest.write_batch(db, [up(db, "a", {"s": "x\x00y", "d": doc, "plain": "p"}, 1)])
    await dest.write_batch(db, [patch(db, "a", 2, set={"plain": "q\x00", "d.ok": "z\x00z"})])
    got = (await table_rows(pg, db))["a"]
    assert got["s"] == "xy" and got["plain"] == "q"
    assert got["d"] == {"key": ["a", 1], "ok": "zz"}
    ovf = got["_cartridge_overflow"]
    assert orjson.loads(ovf["s"]["$json"]) == "x\x00y"
    assert orjson.loads(ovf["plain"]["$json"]) == "q\x00"
    assert "d" not in ovf  # the nested update replaced the document's exact copy


async def test_nul_characters_in_a_value_its_column_cannot_hold(make_dest: Maker,
                                                                pg_schema_factory, pg) -> None:
    # Found by the MongoDB property test: the value went to overflow as it was, and jsonb
    # refused its NUL (UntranslatableCharacterError): the document was dead-lettered.
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"n": 1, "m": 2}, 1)])
    await dest.apply([up(db, "b", {"n": "x\x00", "m": [{"k\x00": "v\x00"}]}, 2),
                      patch(db, "a", 3, set={"n": {"d\x00": 1}})], {}, "g")
    got = await table_rows(pg, db)
    assert got["b"]["n"] is None and got["b"]["m"] is None and got["a"]["n"] is None
    ovf = {k: {c: orjson.loads(v["$json"]) for c, v in got[k]["_cartridge_overflow"].items()}
           for k in ("a", "b")}
    assert ovf == {"a": {"n": {"d\x00": 1}}, "b": {"n": "x\x00", "m": [{"k\x00": "v\x00"}]}}


async def test_nested_ops_on_a_column_that_is_not_jsonb(make_dest: Maker, pg_schema_factory,
                                                        pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"n": 5}, 1)])
    await dest.write_batch(db, [patch(db, "a", 2, set={"n.x.y": 1, "n.z": [1, 2, 3]}),
                                patch(db, "b", 2, set={"m": 1}),
                                patch(db, "b", 3, set={"m.q": 2})])
    await dest.write_batch(db, [patch(db, "a", 3, unset=["n.x"], truncate={"n.z": 1})])
    got = await table_rows(pg, db)
    assert got["a"]["n"] == 5 and got["a"]["_cartridge_overflow"] == {"n": {"z": [1]}}
    assert got["b"]["m"] == 1 and got["b"]["_cartridge_overflow"] == {"m": {"q": 2}}
    assert got["b"]["_cartridge_partial"] is True and got["b"]["_cartridge_version"] == 2


async def test_ddl_by_another_session_is_picked_up(make_dest: Maker, pg_schema_factory,
                                                   pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    for i in range(3):  # prepared statements are cached on the pool's connections
        await dest.write_batch(db, [up(db, f"k{i}", {"age": i, "name": "n"}, i)])
    await pg.execute(f'ALTER TABLE "{db}".t ADD COLUMN note varchar(5), '
                     "ALTER COLUMN age TYPE text USING age::text")
    await dest.write_batch(db, [up(db, "k10", {"age": 10, "name": "n", "note": "a long note"},
                                   10)])
    await dest.apply([up(db, "k11", {"age": "11", "name": "m", "note": "tiny"}, 11)], {}, "g")
    await pg.execute(f'ALTER TABLE "{db}".t DROP COLUMN name')
    await dest.apply([up(db, "k12", {"age": "12", "name": "back"}, 12)], {}, "g")
    types = await column_types(pg, db)
    assert types["age"] == "text" and types["note"] == "text" and types["name"] == "text"
    got = await table_rows(pg, db)
    assert got["k10"]["note"] == "a long note" and got["k10"]["age"] is None
    assert got["k10"]["_cartridge_overflow"] == {"age": 10}
    assert (got["k11"]["age"], got["k11"]["note"]) == ("11", "tiny")
    assert got["k12"]["name"] == "back" and got["k2"]["age"] == "2"
    await pg.execute(f'DROP TABLE "{db}".t')
    await dest.write_batch(db, [up(db, "k13", {"age": 13}, 13)])
    assert set(await table_rows(pg, db)) == {"k13"}


async def test_record_key_mismatch_is_a_record_error(make_dest: Maker, pg_schema_factory) -> None:
    from sink.errors import RecordError

    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {}, 1)])
    with pytest.raises(RecordError):
        await dest.write_batch(db, [Record(db, "t", {"id": 1}, Kind.UPSERT, "c", values={})])


async def test_patches_of_one_shape_adapt_column_wise_and_narrow_per_row(
    make_dest: Maker, pg_schema_factory: Any, pg: Any,
) -> None:
    # Patches sharing a shape have their top-level values adapted per column in one go;
    # one value the column cannot hold sends the group row by row, into the overflow.
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, k, {"n": 1, "doc": {"a": 1}}, 1) for k in "abcd"])
    await dest.write_batch(db, [patch(db, "a", 2, set={"n": 2, "doc.a": 2}),
                                patch(db, "b", 2, set={"n": 3, "doc.a": 3})])
    await dest.write_batch(db, [patch(db, "c", 2, set={"n": 4, "doc.a": 4}),
                                patch(db, "d", 2, set={"n": "four", "doc.a": 5})])
    got = await table_rows(pg, db)
    assert [(got[k]["n"], got[k]["doc"]) for k in "abcd"] == [
        (2, {"a": 2}), (3, {"a": 3}), (4, {"a": 4}), (None, {"a": 5})]
    assert got["c"]["_cartridge_overflow"] is None
    assert got["d"]["_cartridge_overflow"] == {"n": "four"}
    assert ("narrowing", "n", "text") in await changes(pg, db)
