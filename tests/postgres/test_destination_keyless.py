"""Tables without a primary key (issue 13 item 4) and TRUNCATE under the ordering guard
(item 5), against the real server."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import pytest

from sink.postgres.names import qualified
from sink.records import Kind, Record
from tests.postgres.support import TS, Maker, table_rows, up

pytestmark = pytest.mark.integration


def kl(db: str, op: str, pos: int, *, after: dict[str, Any] | None = None,
       before: dict[str, Any] | None = None, mode: str = "match_before") -> Record:
    kind = Kind.DELETE if op == "d" else Kind.UPSERT
    return Record(db, "k", {}, kind, op, values=after, position=(pos,), offset=pos,
                  source_ts=TS, keyless=mode, before=before)


async def live(pg: asyncpg.Connection[Any], db: str) -> Counter[tuple[Any, ...]]:
    rows = await pg.fetch(f"SELECT a, b FROM {qualified(db, 'k')} WHERE NOT is_deleted")
    return Counter(tuple(r) for r in rows)


async def test_full_identity_updates_and_deletes_match_the_before_image(
        make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    batch = [
        kl(db, "r", 1, after={"a": 1, "b": "a"}), kl(db, "r", 2, after={"a": 1, "b": "a"}),
        kl(db, "r", 3, after={"a": 2, "b": "b"}), kl(db, "c", 4, after={"a": 3, "b": None}),
        kl(db, "u", 5, before={"a": 2, "b": "b"}, after={"a": 2, "b": "B"}),
        # NULL-safe: the before image's NULL matches the row's NULL
        kl(db, "u", 6, before={"a": 3, "b": None}, after={"a": 3, "b": "c"}),
        # one DELETE of two identical rows: one is left, as at the source
        kl(db, "d", 7, before={"a": 1, "b": "a"}),
    ]
    await dest.write_batch(db, batch)
    want = Counter({(1, "a"): 1, (2, "B"): 1, (3, "c"): 1})
    assert await live(pg, db) == want
    assert await pg.fetchval(f"SELECT count(*) FROM {qualified(db, 'k')}") == 4  # 1 soft-deleted
    pk = await pg.fetchval("SELECT count(*) FROM pg_index WHERE indisprimary AND "
                           "indrelid = to_regclass($1)", f'"{db}"."k"')
    assert pk == 0
    before = await pg.fetch(f"SELECT * FROM {qualified(db, 'k')} ORDER BY ctid")
    await dest.write_batch(db, batch)  # a replay: the ordering guard skips every change
    assert await pg.fetch(f"SELECT * FROM {qualified(db, 'k')} ORDER BY ctid") == before


async def test_hard_deletes_remove_one_matching_row(make_dest: Maker, pg_schema_factory,
                                                    pg) -> None:
    dest = await make_dest(deletion_strategy="hard")
    db = await pg_schema_factory()
    await dest.write_batch(db, [kl(db, "c", 1, after={"a": 1, "b": "x"}),
                                kl(db, "c", 2, after={"a": 1, "b": "x"}),
                                kl(db, "d", 3, before={"a": 1, "b": "x"})])
    assert await pg.fetchval(f"SELECT count(*) FROM {qualified(db, 'k')}") == 1


async def test_append_mode_keeps_every_event_as_a_row(make_dest: Maker, pg_schema_factory,
                                                      pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [
        kl(db, "c", 1, after={"a": 1, "b": "x"}, mode="append"),
        kl(db, "u", 2, after={"a": 1, "b": "y"}, mode="append"),  # default identity: no before
        kl(db, "d", 3, before={"a": 1, "b": "y"}, mode="append"),
    ])
    rows = await pg.fetch(f"SELECT a, b, _cartridge_op, _cartridge_source_pos "
                          f"FROM {qualified(db, 'k')} ORDER BY _cartridge_source_pos")
    assert [(r["a"], r["b"], r["_cartridge_op"]) for r in rows] == [
        (1, "x", "c"), (1, "y", "u"), (1, "y", "d")]
    assert len({r["_cartridge_source_pos"] for r in rows}) == 3


def trunc(db: str, pos: int) -> Record:
    return Record(db, "t", {}, Kind.TRUNCATE, "t", position=(pos, 1), offset=pos, source_ts=TS)


@pytest.mark.parametrize("strategy", ["hard", "soft"])
async def test_a_replayed_truncate_is_a_no_op(make_dest: Maker, pg_schema_factory, pg,
                                              strategy: str) -> None:
    dest = await make_dest(deletion_strategy=strategy)
    db = await pg_schema_factory()
    batch = [up(db, "a", {"x": 1}, 1, off=1), up(db, "b", {"x": 1}, 2, off=2), trunc(db, 3),
             up(db, "a", {"x": 2}, 4, off=4)]
    await dest.write_batch(db, batch)
    first = await table_rows(pg, db)
    live_keys = {k for k, r in first.items() if not r["is_deleted"]}
    assert live_keys == {"a"} and first["a"]["x"] == 2
    if strategy == "soft":  # the truncate soft-deleted b (and the first a) at its position
        assert first["b"]["is_deleted"] and first["b"]["deleted_at"] is not None
    else:
        assert set(first) == {"a"}
    # The replay (offsets reset to earliest), in one batch and record by record: the row
    # written after the truncate is not deleted and re-inserted (its version and creation
    # time stay), b (re-inserted by the replay, older than the truncate) is removed again.
    await dest.write_batch(db, batch)
    for rec in batch:
        await dest.write_batch(db, [rec])
    assert await table_rows(pg, db) == first
