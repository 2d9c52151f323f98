"""Pure unit tests of sink.postgres.reduce: folding a key's records into segments, composing
patches, MongoDB path semantics on documents, and a property test checking that writing
the reduced segments is the same as applying every record one by one."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sink.postgres.reduce import (
    Change,
    apply_patch_to_document,
    compose_patches,
    encode_position,
    reduce_records,
)
from sink.records import Kind, Patch, Record


def rec(kind: Kind, op: str, key: Any = "k", values: dict[str, Any] | None = None,
        patch: Patch | None = None, pos: int | None = None, off: int | None = None) -> Record:
    return Record("db", "t", {"_id": key}, kind, op, values=values, patch=patch,
                  position=(pos, 0) if pos is not None else (), offset=off)


def ins(key: Any, pos: int, **values: Any) -> Record:
    return rec(Kind.UPSERT, "c", key, values={"_id": key, **values}, pos=pos)


def dele(key: Any, pos: int) -> Record:
    return rec(Kind.DELETE, "d", key, pos=pos)


def tomb(key: Any, off: int | None = None) -> Record:
    return rec(Kind.DELETE, "tombstone", key, off=off)


def pat(key: Any, pos: int, set: dict[str, Any] | None = None,
        unset: list[str] | None = None, truncate: dict[str, int] | None = None) -> Record:
    return rec(Kind.PATCH, "u", key, patch=P(set, unset, truncate), pos=pos)


def P(set: dict[str, Any] | None = None, unset: list[str] | None = None,
      truncate: dict[str, int] | None = None) -> Patch:
    return Patch({tuple(k.split(".")): v for k, v in (set or {}).items()},
                 [tuple(k.split(".")) for k in unset or []],
                 {tuple(k.split(".")): v for k, v in (truncate or {}).items()})


def test_positions_order_by_source_then_offset() -> None:
    assert encode_position((), 5) is None
    a = encode_position((10, 1), 7)
    b = encode_position((10, 2), 0)
    c = encode_position((11, 0), 0)
    assert a is not None and b is not None and c is not None and a < b < c
    assert encode_position((10, 1), 8) == (a or 0) + 1


def test_same_key_three_times_folds_into_one_change() -> None:
    [[ch]] = reduce_records([ins("k", 1, x=1), ins("k", 2, x=2), ins("k", 3, x=3)])
    assert (ch.kind, ch.values, ch.count) == (Kind.UPSERT, {"_id": "k", "x": 3}, 3)
    assert ch.pos == encode_position((3, 0), None)


def test_keys_keep_first_seen_order_and_explicit_key_tuples() -> None:
    segs = reduce_records([ins("b", 1), ins("a", 2), ins("b", 3)], keys=[2, 1, 2])
    assert [s[0].kt for s in segs] == [2, 1] and segs[0][0].count == 2


def test_insert_then_delete_is_one_deleted_upsert() -> None:
    [[ch]] = reduce_records([ins("k", 1, x=1), dele("k", 2), tomb("k", 9)])
    assert ch.kind is Kind.UPSERT and ch.deleted and ch.count == 2


def test_insert_after_a_delete_is_a_new_segment() -> None:
    [segs] = reduce_records([ins("k", 1), dele("k", 2), ins("k", 3, x=1)])
    assert [(s.kind, s.deleted, s.count) for s in segs] == [
        (Kind.UPSERT, True, 2), (Kind.UPSERT, False, 1)]
    [segs] = reduce_records([dele("k", 1), ins("k", 2)])
    assert [s.kind for s in segs] == [Kind.DELETE, Kind.UPSERT]


def test_tombstones() -> None:
    [[ch]] = reduce_records([tomb("k", off=4)])
    assert ch.kind is Kind.DELETE and ch.tombstone_only and ch.pos is None
    assert ch.tomb_offset == 4 and ch.count == 1
    [[ch]] = reduce_records([dele("k", 1), tomb("k", off=5), tomb("k", off=6)])
    assert not ch.tombstone_only and ch.count == 1
    [segs] = reduce_records([tomb("k"), ins("k", 2)])
    assert [s.kind for s in segs] == [Kind.DELETE, Kind.UPSERT]


def test_patch_folds_into_a_copy_of_the_document() -> None:
    first = ins("k", 1, m={"a": [1, 2, 3]}, n=1)
    kept = copy.deepcopy(first.values)
    [[ch]] = reduce_records([first, pat("k", 2, set={"m.b": 1, "m.a.5": 9}, unset=["n"],
                                         truncate={"m.a": 1})])
    assert ch.values == {"_id": "k", "m": {"a": [1, None, None, None, None, 9], "b": 1}}
    assert first.values == kept and ch.count == 2


def test_patches_compose_or_split() -> None:
    [[ch]] = reduce_records([pat("k", 1, set={"a": 1, "m.x": 1}), pat("k", 2, set={"a": 2},
                                                                     unset=["b"])])
    assert ch.patch == P({"a": 2, "m.x": 1}, ["b"]) and ch.count == 2
    [segs] = reduce_records([pat("k", 1, set={"m.x": 1}), pat("k", 2, set={"m": {}})])
    assert len(segs) == 2
    [segs] = reduce_records([pat("k", 1), dele("k", 2), pat("k", 3, set={"a": 1})])
    assert [s.kind for s in segs] == [Kind.PATCH, Kind.DELETE, Kind.PATCH]


def test_compose_patches_rules() -> None:
    first = P({"a": 1}, ["b"], {"arr": 2})
    assert compose_patches(first, P({"b": 2}, ["a"]))
    assert first == P({"b": 2}, ["a"], {"arr": 2})
    first = P(truncate={"arr": 2})
    assert compose_patches(first, P({"arr": [1]}))
    assert first == P({"arr": [1]})  # the set replaces the truncated array
    for second in (P({"a.b": 1}), P(unset=["a.c"]), P(truncate={"a": 0}), P(truncate={"x": 1})):
        first = P({"a": 1}, truncate={"x": 3})
        before = copy.deepcopy(first)
        assert not compose_patches(first, second)
        assert first == before
    assert not compose_patches(P({"m.x": 1}), P(unset=["m.x"]))  # $set made m: keep both
    top = P({"x": 1})
    assert compose_patches(top, P(unset=["x"])) and top == P(unset=["x"])


def test_document_paths_follow_mongodb() -> None:
    doc: dict[str, Any] = {"s": 5, "l": [1, {"q": 1}], "d": {"x": 1}}
    apply_patch_to_document(doc, P({"s.a": 1, "l.3": "x", "l.1.r": 2, "n.0.k": 1, "l.k": 0,
                                    "d.y.z": [1, 2]}, ["d.x", "l.0", "nothing.here"]))
    assert doc == {"s": {"a": 1}, "l": [None, {"q": 1, "r": 2}, None, "x"],
                   "d": {"y": {"z": [1, 2]}}, "n": {"0": {"k": 1}}}
    apply_patch_to_document(doc, P(truncate={"l": 2, "d.y.z": 1, "s": 0, "missing": 1}))
    assert doc["l"] == [None, {"q": 1, "r": 2}] and doc["d"] == {"y": {"z": [1]}}
    assert doc["s"] == {"a": 1}


# --- property: segments written in rounds == records applied one by one ---------------

KEYS = ["a", "b"]
PATHS = ["f", "g", "m.x", "m.y", "m.l.1"]
patches = st.builds(
    lambda sets, unsets: P({p: v for p, v in sets.items()},
                           [u for u in unsets if u not in sets and all(
                               not (u.startswith(s + ".") or s.startswith(u + "."))
                               for s in sets)]),
    st.dictionaries(st.sampled_from(PATHS[:2] + PATHS[3:4]), st.integers(0, 3), max_size=2),
    st.lists(st.sampled_from(PATHS), max_size=2, unique=True),
)
history = st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(
    st.tuples(st.just("upsert"), st.dictionaries(st.sampled_from(["f", "g"]),
                                                 st.integers(0, 3))),
    st.tuples(st.just("patch"), patches),
    st.tuples(st.sampled_from(["delete", "tombstone"]), st.none()),
)), max_size=12)


def _apply_record(state: dict[str, Any], r: Record, hard: bool) -> None:
    row = state.get(r.key["_id"])
    if r.kind is Kind.UPSERT:
        state[r.key["_id"]] = {"doc": dict(r.values or {}), "del": False,
                               "v": row["v"] + 1 if row else 1}
    elif r.kind is Kind.PATCH:
        if row is None:
            row = state[r.key["_id"]] = {"doc": {}, "del": False, "v": 0}
        apply_patch_to_document(row["doc"], r.patch or Patch())
        row["v"] += 1
    elif row is not None and (r.op == "d" or not row["del"]):
        if hard:
            del state[r.key["_id"]]
        else:
            row["del"], row["v"] = True, row["v"] + 1


def _apply_change(state: dict[str, Any], ch: Change, hard: bool) -> None:
    key = ch.key["_id"]
    row = state.get(key)
    if ch.kind is Kind.UPSERT:
        if hard and ch.deleted:
            state.pop(key, None)
        else:
            state[key] = {"doc": copy.deepcopy(ch.values), "del": ch.deleted,
                          "v": (row["v"] if row else 0) + ch.count}
    elif ch.kind is Kind.PATCH:
        if row is None:
            row = state[key] = {"doc": {}, "del": False, "v": 0}
        apply_patch_to_document(row["doc"], ch.patch or Patch())
        row["v"] += ch.count
    elif row is not None and (not ch.tombstone_only or not row["del"]):
        if hard:
            del state[key]
        else:
            row["del"], row["v"] = True, row["v"] + ch.count


@settings(max_examples=300, deadline=None)
@given(history=history, hard=st.booleans())
def test_rounds_of_segments_equal_record_by_record(history: list[Any], hard: bool) -> None:
    records = []
    for i, (key, (what, arg)) in enumerate(history):
        if what == "upsert":
            records.append(ins(key, i, **arg))
        elif what == "patch":
            records.append(rec(Kind.PATCH, "u", key, patch=arg, pos=i))
        elif what == "delete":
            records.append(dele(key, i))
        else:
            records.append(tomb(key))
    expected: dict[str, Any] = {}
    for r in records:
        _apply_record(expected, r, hard)
    got: dict[str, Any] = {}
    segments = reduce_records(copy.deepcopy(records))
    for i in range(max((len(s) for s in segments), default=0)):
        for segs in segments:
            if i < len(segs):
                _apply_change(got, segs[i], hard)
    assert got == expected
