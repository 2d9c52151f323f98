"""Model-based property test: random per-key histories of inserts, replacements, partial
updates (set / unset / truncate on top-level and nested paths, array indexes included),
deletes and tombstones, cut into random batches and written through `write_batch`, must
leave the table equal to a pure-Python model that applies the events one by one.

The model is written here from MongoDB's semantics, independently of sink.postgres.reduce."""

from __future__ import annotations

import copy
import itertools
import os
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.records import Kind, Patch, Record
from tests.postgres.support import Maker, table_rows

pytestmark = pytest.mark.integration

KEYS = ["k0", "k1", "k2"]
FIELDS = ["a", "b", "d"]
PATHS = [("a",), ("b",), ("d",), ("d", "x"), ("d", "y", "z"), ("d", "l"), ("d", "l", "0"),
         ("d", "l", "2"), ("d", "l", "1", "q"), ("b", "w")]
SYSTEM = {"_id", "_cartridge_version", "_cartridge_created_at", "_cartridge_updated_at",
          "_cartridge_source_ts", "_cartridge_source_pos", "is_deleted", "deleted_at",
          "_cartridge_overflow", "_cartridge_partial"}

values = st.recursive(
    st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["s", "t", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["x", "y", "l", "q"]), inner,
                                            max_size=3)),
    max_leaves=4,
)
documents = st.dictionaries(st.sampled_from(FIELDS), values, max_size=3)


def _unrelated(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for p in paths:
        if all(p[:len(q)] != q and q[:len(p)] != p for q in out):
            out.append(p)
    return out


@st.composite
def patches(draw: st.DrawFn) -> Patch:
    paths = _unrelated(draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)))
    p = Patch()
    for path in paths:
        op = draw(st.sampled_from(["set", "set", "unset", "truncate"]))
        if op == "set":
            p.set[path] = draw(values)
        elif op == "unset":
            p.unset.append(path)
        else:
            p.truncate[path] = draw(st.integers(0, 2))
    return p


events = st.lists(st.tuples(
    st.sampled_from(KEYS),
    st.one_of(
        st.tuples(st.just("upsert"), documents),
        st.tuples(st.just("patch"), patches()),
        st.tuples(st.sampled_from(["delete", "delete+tombstone", "tombstone"]), st.none()),
    ),
), min_size=1, max_size=25)


# --- the model -----------------------------------------------------------------------


def _idx(seg: str) -> int | None:
    return int(seg) if seg.isdigit() else None


def m_set(node: Any, path: tuple[str, ...], value: Any) -> Any:
    """``node`` with ``value`` set at ``path`` (MongoDB's $set); returns the new node."""
    if not path:
        return copy.deepcopy(value)
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        i = _idx(head)
        if i is None:
            return node  # a field name inside an array: MongoDB refuses, nothing changes
        node = node + [None] * (i + 1 - len(node))
        child = node[i]
        node[i] = m_set(child if rest and isinstance(child, (dict, list)) else {}, rest, value) \
            if rest else copy.deepcopy(value)
        return node
    node = dict(node) if isinstance(node, dict) else {}
    child = node.get(head)
    node[head] = m_set(child if isinstance(child, (dict, list)) else {}, rest, value) \
        if rest else copy.deepcopy(value)
    return node


def m_unset(node: Any, path: tuple[str, ...]) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        i = _idx(head)
        if i is None or i >= len(node):
            return node
        node = list(node)
        node[i] = m_unset(node[i], rest) if rest else None
        return node
    if not isinstance(node, dict) or head not in node:
        return node
    node = dict(node)
    if rest:
        node[head] = m_unset(node[head], rest)
    else:
        del node[head]
    return node


def m_truncate(node: Any, path: tuple[str, ...], size: int) -> Any:
    if not path:
        return node[:size] if isinstance(node, list) else node
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        i = _idx(head)
        if i is None or i >= len(node):
            return node
        node = list(node)
        node[i] = m_truncate(node[i], rest, size)
        return node
    if not isinstance(node, dict) or head not in node:
        return node
    node = dict(node)
    node[head] = m_truncate(node[head], rest, size)
    return node


@dataclass
class Row:
    doc: dict[str, Any]
    deleted: bool = False
    version: int = 1
    partial: bool = False


def m_patch(doc: dict[str, Any], p: Patch) -> dict[str, Any]:
    for path, size in p.truncate.items():
        doc = m_truncate(doc, path, size)
    for path, value in p.set.items():
        doc = m_set(doc, path, value)
    for path in p.unset:
        doc = m_unset(doc, path)
    return doc


def model(history: list[tuple[str, str, Any]], hard: bool) -> dict[str, Row]:
    state: dict[str, Row] = {}
    for key, what, arg in history:
        row = state.get(key)
        if what == "upsert":
            state[key] = Row(dict(arg), version=row.version + 1 if row else 1)
        elif what == "patch":
            if row is None:
                state[key] = Row(m_patch({}, arg), partial=True)
            else:
                row.doc, row.version = m_patch(row.doc, arg), row.version + 1
        elif row is not None and (what == "delete" or (what == "tombstone" and not row.deleted)):
            if hard:
                del state[key]
            else:
                row.deleted, row.version = True, row.version + 1
    return state


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


# --- the test ------------------------------------------------------------------------

_tables: list[int] = []
_state: dict[str, Any] = {}  # connectors and schema, made once per test run (fixtures)


@settings(max_examples=int(os.environ.get("WARP_MODEL_EXAMPLES", "40")), deadline=None,
          derandomize=os.environ.get("WARP_MODEL_EXAMPLES") is None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=events, cuts=st.lists(st.integers(1, 25), max_size=4),
       hard=st.booleans(), merge=st.booleans())
async def test_batches_equal_the_model(make_dest: Maker, pg_schema_factory, pg,
                                       history: list[Any], cuts: list[int], hard: bool,
                                       merge: bool) -> None:
    if _state.get("maker") is not make_dest:  # the first example of this test run
        _state["maker"] = make_dest
        _state["dests"] = {(h, m): await make_dest(
            deletion_strategy="hard" if h else "soft", metadata_schema="warp_dest_model_meta",
            upsert_mode="merge" if m else "on_conflict") for h in (False, True)
            for m in (False, True)}
        _state["db"] = await pg_schema_factory()
    dests, db = _state["dests"], _state["db"]
    _tables.append(len(_tables))
    table = f"m{len(_tables)}"  # a fresh table per example
    steps: list[tuple[str, str, Any]] = []
    records: list[Record] = []
    for key, (what, arg) in history:
        pos, off = (len(records) + 1, 1), len(records)
        if what == "upsert":
            records.append(Record(db, table, {"_id": key}, Kind.UPSERT, "u",
                                  values={"_id": key, **arg}, position=pos, offset=off))
            steps.append((key, "upsert", arg))
        elif what == "patch":
            records.append(Record(db, table, {"_id": key}, Kind.PATCH, "u", patch=arg,
                                  position=pos, offset=off))
            steps.append((key, "patch", arg))
        if what.startswith("delete"):
            records.append(Record(db, table, {"_id": key}, Kind.DELETE, "d", position=pos,
                                  offset=off))
            steps.append((key, "delete", None))
        if what.endswith("tombstone"):
            records.append(Record(db, table, {"_id": key}, Kind.DELETE, "tombstone",
                                  offset=len(records)))
            steps.append((key, "tombstone", None))
    bounds = sorted({min(c, len(records)) for c in cuts} | {0, len(records)})
    for lo, hi in itertools.pairwise(bounds):
        await dests[(hard, merge)].write_batch(db, records[lo:hi])
    expected = model(steps, hard)
    got: dict[str, dict[str, Any]] = {}
    if await pg.fetchval("SELECT to_regclass(format('%I.%I', $1::text, $2::text))", db, table):
        got = await table_rows(pg, db, table)
        await pg.execute(f'DROP TABLE "{db}"."{table}"')
    assert set(got) == set(expected), (got, expected)
    for key, exp in expected.items():
        row = got[key]
        overflow = row["_cartridge_overflow"] or {}
        doc = {c: overflow.get(c, v) for c, v in row.items() if c not in SYSTEM}
        doc.update({c: v for c, v in overflow.items() if c not in doc})
        assert _clean(doc) == _clean(exp.doc), (key, row, exp)
        assert (row["is_deleted"], row["_cartridge_version"], row["_cartridge_partial"]) == (
            exp.deleted, exp.version, exp.partial), (key, row, exp)
