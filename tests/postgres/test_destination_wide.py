"""Wide documents never dead-letter (issue 12 item 10, issue 17 item 8): past PostgreSQL's
1,600-column limit the fields that cannot get a column are kept in
``_cartridge_overflow`` with a warning; a row wider than a page keeps what does not fit
there; and isolating a refused record decides the flush's DDL once, not at every
bisection step."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from structlog.testing import capture_logs

from sink.records import Record
from tests.postgres.support import Maker, column_types, patch, table_rows, up

pytestmark = pytest.mark.integration

MAX_COLUMNS = 1600  # PostgreSQL's MaxHeapAttributeNumber


async def _apply(dest: Any, records: list[Record]) -> list[Any]:
    """``apply`` as the service calls it; returns what it would dead-letter."""
    failed: list[Any] = []

    async def on_bad(bad: list[Any]) -> None:
        failed.extend(bad)

    await dest.apply(records, {}, "g", on_bad=on_bad)
    return failed


def _field(row: dict[str, Any], name: str) -> Any:
    """A field's value, from its column or from overflow."""
    if row.get(name) is not None:
        return row[name]
    return (row["_cartridge_overflow"] or {}).get(name)


async def _slots(pg: Any, db: str) -> int:
    return int(await pg.fetchval(
        "SELECT max(attnum) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0",
        f'"{db}".t'))


async def test_fields_past_the_column_limit_go_to_overflow(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    # 4 documents of 450 new fields each: 1,800 fields for about 1,590 free columns.
    docs = {f"k{d}": {f"f{d * 450 + i}": d * 450 + i for i in range(450)} for d in range(4)}
    with capture_logs() as logs:
        failed = await _apply(dest, [up(db, k, v, n, op="c") for n, (k, v) in
                                     enumerate(docs.items(), 1)])
    assert failed == []
    assert await _slots(pg, db) == MAX_COLUMNS
    # Later: a document with another new field, a partial update of new fields (top-level
    # and dotted), one dropping a field kept in overflow.
    failed = await _apply(dest, [
        up(db, "k9", {"f0": 1, "late": "x"}, 10, op="c"),
        patch(db, "k3", 11, set={"new_top": 5, "new_root.deep": 6}, unset=["f1799"]),
    ])
    assert failed == []
    got = await table_rows(pg, db)
    for k, doc in docs.items():
        want = dict(doc)
        if k == "k3":
            want |= {"new_top": 5, "new_root": {"deep": 6}}
            want.pop("f1799")
            assert "f1799" not in (got[k]["_cartridge_overflow"] or {})
        assert {f: _field(got[k], f) for f in want} == want, k
    assert got["k9"]["f0"] == 1 and got["k9"]["_cartridge_overflow"] == {"late": "x"}
    in_overflow = sum(len(r["_cartridge_overflow"] or {}) for r in got.values())
    assert in_overflow > 200  # what had no column: kept, not dropped
    warned = {e["column"] for e in logs if e["event"].startswith("no column left")}
    assert len(warned) == 1800 - len(await column_types(pg, db)) + 10  # each field without one


async def test_a_row_wider_than_a_page_keeps_the_rest_in_overflow(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    wide = {f"w{i}": f"value-{i:06d}" for i in range(900)}  # about 14 kB inline
    failed = await _apply(dest, [up(db, "small", {"w1": "s"}, 1, op="c"),
                                 up(db, "wide", wide, 2, op="c")])
    assert failed == []
    got = await table_rows(pg, db)
    assert {f: _field(got["wide"], f) for f in wide} == wide
    kept_aside = got["wide"]["_cartridge_overflow"]
    assert kept_aside and 0 < len(kept_aside) < len(wide)
    assert all(got["wide"][f] is None for f in kept_aside)
    assert got["small"]["w1"] == "s" and got["small"]["_cartridge_overflow"] is None
    # A partial update that would make an existing row too wide: kept in overflow too.
    more = {f"w{i}": f"patched-{i:06d}" for i in range(900)}
    failed = await _apply(dest, [patch(db, "small", 3, set=more)])
    assert failed == []
    got = await table_rows(pg, db)
    assert {f: _field(got["small"], f) for f in more} == more


async def test_isolating_a_refused_record_adds_each_column_once(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "seed", {"age": 1}, 1, op="c")])
    await pg.execute(f'ALTER TABLE "{db}".t ADD CONSTRAINT sane CHECK (age < 1000)')
    added: list[str] = []
    real = dest.catalog.add_column

    async def counting(conn: Any, info: Any, column: str, pg_type: str) -> None:
        added.append(column)
        await real(conn, info, column, pg_type)

    dest.catalog.add_column = counting
    records = [up(db, f"k{i}", {"age": 5000 if i == 17 else i,
                                **{f"r{i}_{j}": j for j in range(20)}}, 10 + i, op="c")
               for i in range(24)]
    failed = await _apply(dest, records)
    assert [(r.key["_id"], e.code) for r, e in failed] == [("k17", "constraint_violation")]
    # Once in the first try of the whole flush (rolled back with its savepoint), then once
    # for the unit before bisecting: never again at each bisection step.
    assert set(added) == {f"r{i}_{j}" for i in range(24) for j in range(20)}
    assert max(Counter(added).values()) <= 2
    got = await table_rows(pg, db)
    assert set(got) == {"seed"} | {f"k{i}" for i in range(24) if i != 17}
    assert all(got[f"k{i}"][f"r{i}_3"] == 3 for i in range(24) if i != 17)
