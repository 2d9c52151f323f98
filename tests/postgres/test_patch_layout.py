"""`patch_sql.Layout` builds the same row as `patch_sql.patch_row` for every patch it
accepts (a property test over random patches and table shapes), and declines the patches
whose values can change the row's shape."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sink.postgres.catalog import TableInfo
from sink.postgres.patch_sql import Layout, patch_row
from sink.postgres.plan import column_of
from sink.postgres.reduce import Change
from sink.records import Kind, Patch

TS = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
# Fields that make a Layout decline (no column, a path in a text column, two fields in
# one column) come up less often, so most examples compare rows.
FIELDS = ["a", "b", "doc", "arr", "_id", "c d"] * 4 + ["txt", "ghost", "A"]
COLUMNS = {"_id": "text", "a": "integer", "b": "text", "doc": "jsonb", "arr": "jsonb",
           "txt": "text", "c d": "double precision", "k2": "bigint"}
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4)
    | st.floats(allow_nan=True) | st.just(TS),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids,
                                                               max_size=3),
    max_leaves=6)
segments = st.lists(st.sampled_from(["x", "y", "0", "2", "é\"q"]), min_size=1, max_size=2)
paths = st.sampled_from(FIELDS).map(lambda f: (f,)) | st.tuples(
    st.sampled_from(["doc", "arr"] * 6 + ["a", "txt", "_id"]), segments).map(
    lambda t: (t[0], *t[1]))
sizes = st.dictionaries(st.sampled_from([("arr",), ("doc",), ("doc", "x"), ("arr", "0")] * 4
                                        + [("a",), ("txt", "y")]), st.integers(0, 5),
                        max_size=2)


def change(p: Patch, key: Any, pos: int | None) -> Change:
    return Change(key, {}, Kind.PATCH, patch=p, pos=pos, count=2, source_ts=TS)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(paths, values, max_size=5), st.lists(paths, max_size=3),
       sizes, st.booleans(),
       st.sampled_from([None, 7, 2**80]))
def test_layout_rows_are_patch_row_rows(set_: dict[Any, Any], unset: list[Any],
                                        truncate: dict[Any, int], two_keys: bool,
                                        pos: int | None) -> None:
    info = TableInfo("s", "t", dict(COLUMNS), ["_id", "k2"] if two_keys else ["_id"])
    info.refresh_data_columns()
    p = Patch(set_, unset, truncate)
    ch = change(p, ("k", 5) if two_keys else "k", pos)
    lay = Layout.of(info, ch, column_of)
    shape, scalars, row, narrowed = patch_row(info, ch, column_of, adapt=False)
    if lay is None:
        event("declined")
        return
    assert lay.group == (shape, *scalars)
    got = lay.row(ch)
    if got is None:  # only a nested value patch_row has to clean
        assert narrowed
        return
    assert narrowed == []
    assert len(got) == len(row)
    event(f"layout row, {len(shape.nested)} nested roots")
    for mine, theirs in zip(got, row, strict=True):
        if not same(mine, theirs):  # JSON text may differ in spelling, not in value
            assert same(orjson.loads(mine), orjson.loads(theirs)), (mine, theirs)


def test_layout_declines_what_the_values_decide() -> None:
    info = TableInfo("s", "t", dict(COLUMNS), ["_id"])
    info.refresh_data_columns()
    for p in (Patch({("ghost",): 1}), Patch({("txt", "x"): 1}), Patch({("a",): 1, ("A",): 2})):
        assert Layout.of(info, change(p, "k", 1), column_of) is None, p
    nul = change(Patch({("doc", "x"): "a\x00b", ("a",): 1}), "k", 1)
    lay = Layout.of(info, nul, column_of)
    assert lay is not None and lay.row(nul) is None
    ok = change(Patch({("doc", "x", "y"): {"z": [1]}, ("a",): 3}, [("b",)], {("arr",): 1}),
                "k", 9)
    lay = Layout.of(info, ok, column_of)
    assert lay is not None
    assert lay.row(ok) == patch_row(info, ok, column_of, adapt=False)[2]
