"""A MongoDB row image's sub-documents as `DocText` (sink/decode/docjson.py) against the
typed walk they replaced (40c3e30): where a `DocText` is read back as values (an array
column, a partial update folded into it) the table must hold what it held before."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Decimal128, Int64

from sink.postgres.names import qualified
from tests.postgres.support import Maker, table_rows
from tests.postgres.test_mongo_fidelity import decoded, event

pytestmark = pytest.mark.integration


async def _array_table(make_dest: Maker, db: str, pg: Any, column: str, pg_type: str) -> Any:
    """A collection's table whose ``column`` was turned into a native array by hand (a
    table made or altered by its owner: the sink takes the columns a table has), and a
    destination that reads the table as it is now."""
    await (await make_dest()).write_batch(db, decoded([event(db, 1, {column: [0.5]})]))
    await pg.execute(f"ALTER TABLE {qualified(db, 't')} ALTER COLUMN \"{column}\" "
                     f"TYPE {pg_type} USING NULL")
    return await make_dest()


async def test_an_array_of_doubles_fills_a_double_array_column(
        make_dest: Maker, pg_schema_factory: Any, pg: Any) -> None:
    db = await pg_schema_factory()
    dest = await _array_table(make_dest, db, pg, "f", "double precision[]")
    await dest.write_batch(db, decoded([event(db, 2, {"f": [1.5, 2.25, 1e15]}),
                                        event(db, 3, {"f": [float("nan"), 1.0]})]))
    got = {str(k): (r["f"], r["_cartridge_overflow"])
           for k, r in (await table_rows(pg, db, "t")).items()}
    assert got["2"] == ([1.5, 2.25, 1e15], None)
    f3, over3 = got["3"]
    assert f3 is not None and f3[0] != f3[0] and f3[1] == 1.0 and over3 is None


async def test_an_array_of_decimals_or_int64_is_as_before(
        make_dest: Maker, pg_schema_factory: Any, pg: Any) -> None:
    """Decimal128 elements were kept in overflow (exact digits, scale) at 40c3e30 and must
    stay there: a `DocText` number that is no double's text is no double."""
    db = await pg_schema_factory()
    dest = await _array_table(make_dest, db, pg, "n", "numeric[]")
    await dest.write_batch(db, decoded([event(db, 2, {"n": [Decimal128("1.10")]}),
                                        event(db, 3, {"n": [Int64(7), 8]})]))
    rows = {str(k): r for k, r in (await table_rows(pg, db, "t")).items()}
    ovf = await pg.fetchval(f"SELECT _cartridge_overflow::text FROM {qualified(db, 't')} "
                            "WHERE _id::text = '2'")
    assert rows["2"]["n"] is None and ovf == '{"n": [1.10]}'  # the digits and the scale
    assert (rows["3"]["n"], rows["3"]["_cartridge_overflow"]) == ([7, 8], None)


async def test_a_patch_folded_into_an_array_of_doubles_keeps_the_column(
        make_dest: Maker, pg_schema_factory: Any, pg: Any) -> None:
    db = await pg_schema_factory()
    dest = await _array_table(make_dest, db, pg, "f", "double precision[]")
    patch = {"updatedFields": '{"f.2": 0.3}'}
    await dest.write_batch(db, decoded([
        event(db, 5, {"f": [0.1, 0.2]}, ts=1700000000001),
        event(db, 5, op="u", ts=1700000000002, updateDescription=patch)]))
    rows = {str(k): r for k, r in (await table_rows(pg, db, "t")).items()}
    assert (rows["5"]["f"], rows["5"]["_cartridge_overflow"]) == ([0.1, 0.2, 0.3], None)
