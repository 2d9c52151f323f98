"""The model behind the MongoDB property test (`test_mongo_property.py`): hypothesis
strategies for BSON documents and change sequences, the events Debezium's MongoDB connector
writes for them (pymongo's ``bson.json_util``), and the reference fold.

The reference fold reads the events back with ``json_util.loads`` and applies them with
MongoDB's update semantics, written here from MongoDB's rules, not taken from the sink.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import DBRef, Decimal128, json_util
from bson import ObjectId as BsonObjectId
from bson.binary import UuidRepresentation
from bson.datetime_ms import DatetimeMS
from bson.json_util import JSONMode, JSONOptions
from hypothesis import strategies as st

from tests.decode.test_extjson import _binaries, _bson, _decimals, _keys, _leaves, _options, _text

RELAXED, CANONICAL = _options(JSONMode.RELAXED), _options(JSONMode.CANONICAL)
MODES = {"relaxed": RELAXED, "canonical": CANONICAL}
# The reference reads binaries as they are: under the standard representation json_util
# reads a legacy UUID (subtype 3) as a UUID (the sink keeps it binary, subtype 3) and
# cannot read a subtype-4 binary that is not 16 bytes.
READ = {mode: JSONOptions(json_mode=o.json_mode, tz_aware=True, tzinfo=UTC,
                          datetime_conversion=o.datetime_conversion,
                          uuid_representation=UuidRepresentation.UNSPECIFIED)
        for mode, o in MODES.items()}

# Field names from a hostile alphabet: the sink's own SQL aliases (ts, pos, cnt, del, ovf),
# its own columns, PostgreSQL's system columns, names PostgreSQL shortens (63+ bytes, two
# alike up to 63 bytes), names differing only in case, unicode (non-BMP too), `$` names.
_PATCHABLE = [
    "ts", "pos", "cnt", "del", "ovf", "xmin", "ctid", "tableoid", "Ts", "TS", "price",
    "Price", "_cartridge_version", "is_deleted", "_src_ts", "ü", "Ü", "日本", "\U0001d4b3",
    "n" * 63, "n" * 70 + "a", "n" * 70 + "b", "é" * 32, "0", "u",
]  # fmt: skip
# Only in full documents: a path cannot name them ("" and "a.b"; `$` names need $setField).
_WHOLE_ONLY = ["", "a.b", "$x", "$ts", "a\x00b"]
# A few names come back often, so one field meets values of many types across documents.
_COMMON = st.sampled_from(["ts", "pos", "xmin", "Ts", "price"])
TOP_NAMES = st.one_of(_COMMON, st.sampled_from(_PATCHABLE + _WHOLE_ONLY))
NESTED_NAMES = st.sampled_from(_PATCHABLE + _WHOLE_ONLY + ["_id"])
PATCH_NAMES = st.one_of(_COMMON, st.sampled_from(_PATCHABLE))
PATCH_NESTED = st.sampled_from([*_PATCHABLE, "_id"])

_MS_MIN, _MS_MAX = -62135596800000, 253402300799999  # years 1 and 9999 in epoch ms
_EDGES: list[Any] = [
    math.nan, math.inf, -math.inf, -0.0, 2.0**53 + 2, 5e-324,
    "a\x00b", "\x00", "\U0001d4b3 non-BMP", "", "596e275826f08b2730779e1f", '{"$numberLong":"5"}',
    datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), datetime(1969, 12, 31, tzinfo=UTC),
    DatetimeMS(_MS_MIN - 1), DatetimeMS(_MS_MAX + 1), DatetimeMS(-(2**62)), DatetimeMS(2**62),
    ("int64", 2**53 + 1), ("int64", -(2**63)), ("int64", 5), 2**31, -(2**31) - 1,
    Decimal128("NaN"), Decimal128("1.50"), Decimal128("-0"), Decimal128("-Infinity"),
    Decimal128("1E+6111"), Decimal128("0E-6176"),
    ("bin", b"k", 0x80), ("bin", b"\x01" * 16, 4), ("bin", b"x", 4), ("bin", b"\x00" * 16, 3),
    ("dbref", "c", BsonObjectId("596e275826f08b2730779e1f"), None), ("dbref", "c", 5, "db"),
    ("dbref", "c", "s", None),
]  # fmt: skip
LEAVES = st.one_of(_leaves, st.sampled_from(_EDGES))
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(NESTED_NAMES, inner, max_size=3)),
    max_leaves=6,
)
DOCUMENTS = st.dictionaries(TOP_NAMES, st.one_of(LEAVES, VALUES), max_size=5)


def to_bson(v: Any) -> Any:
    """Build the BSON values the strategies describe as tagged tuples."""
    if isinstance(v, tuple) and v[0] == "dbref":
        return DBRef(v[1], to_bson(v[2]), v[3])
    if isinstance(v, tuple):
        return _bson(v)
    if isinstance(v, dict):
        return {k: to_bson(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_bson(x) for x in v]
    return v


def id_identity(tagged: Any) -> Any:
    """What makes two ``_id``s one to MongoDB: numbers compare by value (1, 1.0, Int64(1)
    and Decimal128("1") are one _id); every other value by type and value."""
    v = to_bson(tagged)
    if isinstance(v, Decimal128):
        v = v.to_decimal()
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        d = Decimal(v)
        return ("num", "nan" if d.is_nan() else d)
    return ("other", json_util.dumps(v, json_options=CANONICAL))


# _id of several types: as test_extjson's, without its dates drawn beyond years 1-9999
# and filtered out (a third of the examples were given up).
_ID_VALUES = st.one_of(
    _text, st.integers(-(2**31), 2**31 - 1),
    st.tuples(st.just("int64"), st.integers(-(2**63), 2**63 - 1)),
    st.floats(allow_nan=False), _decimals,
    st.integers(_MS_MIN, _MS_MAX).map(
        lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)),
    st.binary(min_size=12, max_size=12).map(BsonObjectId), _binaries,
    st.dictionaries(_keys, st.one_of(_text, st.integers(-(2**40), 2**40)), max_size=3),
)
IDS = st.lists(_ID_VALUES, min_size=1, max_size=3, unique_by=id_identity)


# --------------------------------------------------------------------------- MongoDB's rules


def _index(seg: str) -> int | None:
    return int(seg) if seg.isascii() and seg.isdigit() else None


def _parent(doc: Any, path: list[str], create: bool) -> tuple[Any, str] | None:
    node = doc
    for seg in path[:-1]:
        if isinstance(node, list):
            i = _index(seg)
            if i is None or i >= len(node):
                return None  # the generator never writes through a missing array element
            node = node[i]
        elif isinstance(node, dict):
            if seg not in node:
                if not create:
                    return None
                node[seg] = {}  # $set creates the missing parents as documents
            node = node[seg]
        else:
            return None
    return node, path[-1]


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    found = _parent(doc, dotted.split("."), create=True)
    assert found is not None, dotted
    node, last = found
    if isinstance(node, list):
        i = _index(last)
        assert i is not None, dotted
        node.extend([None] * (i + 1 - len(node)))  # $set past the end pads with nulls
        node[i] = value
    else:
        node[last] = value


def unset_path(doc: dict[str, Any], dotted: str) -> None:
    found = _parent(doc, dotted.split("."), create=False)
    if found is None:
        return
    node, last = found
    if isinstance(node, list):
        i = _index(last)
        if i is not None and i < len(node):
            node[i] = None  # $unset of an array element leaves null in its place
    elif isinstance(node, dict):
        node.pop(last, None)


def truncate_path(doc: dict[str, Any], dotted: str, size: int) -> None:
    found = _parent(doc, dotted.split("."), create=False)
    assert found is not None, dotted
    node, last = found
    target = node[_index(last) or 0] if isinstance(node, list) else node[last]
    del target[size:]


# --------------------------------------------------------------------------- events


@dataclass
class Change:
    """One source change: ``op`` c/r/u/d; ``doc`` for a full document; the patch parts
    for an update without one; ``tombstone``: Debezium's tombstone follows the delete."""

    key: int  # index into the example's ids
    op: str
    doc: dict[str, Any] | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    unsets: list[str] = field(default_factory=list)
    truncates: dict[str, int] = field(default_factory=dict)
    tombstone: bool = False


def _containers(value: Any, path: str) -> list[tuple[str, Any]]:
    """(dotted path, value) of every document and array inside ``value`` at ``path``."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        out.append((path, value))
        for k, v in value.items():
            if k and "." not in k and not k.startswith("$") and "\x00" not in k:
                out += _containers(v, f"{path}.{k}")
    elif isinstance(value, list):
        out.append((path, value))
        for i, v in enumerate(value):
            out += _containers(v, f"{path}.{i}")
    return out


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def draw_patch(data: st.DataObject, doc: dict[str, Any]) -> Change | None:
    """A partial update MongoDB could report for ``doc`` (paths never overlap), or None."""
    inside: list[tuple[str, Any]] = []
    for k, v in doc.items():
        if k in _PATCHABLE:
            inside += _containers(v, k)
    change = Change(-1, "u")
    used: list[str] = []
    for _ in range(data.draw(st.integers(1, 3), label="patch ops")):
        what = data.draw(st.sampled_from(["top", "top", "nested", "unset", "truncate"]))
        path, action = None, what
        if what == "top":
            path = data.draw(PATCH_NAMES)
        elif what == "unset":
            names = [k for k in doc if k in _PATCHABLE] + [p for p, _ in inside]
            if names:
                path = data.draw(st.sampled_from(names))
        elif inside:
            where, node = data.draw(st.sampled_from(inside))
            if what == "truncate" and isinstance(node, list) and node:
                path = where
            elif isinstance(node, list):
                path = f"{where}.{data.draw(st.integers(0, len(node) + 1))}"
                action = "top"
            elif isinstance(node, dict):
                path, action = f"{where}.{data.draw(PATCH_NESTED)}", "top"
        if path is None or any(_related(path, u) for u in used):
            continue
        used.append(path)
        if action == "top":
            change.sets[path] = to_bson(data.draw(st.one_of(LEAVES, VALUES), label=path))
        elif action == "unset":
            change.unsets.append(path)
        else:
            target = next(n for p, n in inside if p == path)
            change.truncates[path] = data.draw(st.integers(0, len(target) - 1))
    return change if used else None


def apply(doc: dict[str, Any], change: Change) -> None:
    """A partial update in MongoDB's order: truncate, set, unset."""
    for path, size in change.truncates.items():
        truncate_path(doc, path, size)
    for path, value in change.sets.items():
        set_path(doc, path, value)
    for path in change.unsets:
        unset_path(doc, path)


def draw_changes(data: st.DataObject, nkeys: int) -> list[Change]:
    """Insert, full replace, partial update, delete (with or without its tombstone) and
    re-insert, on ``nkeys`` documents."""
    live: dict[int, dict[str, Any]] = {}
    out: list[Change] = []
    for _ in range(data.draw(st.integers(1, 12), label="changes")):
        k = data.draw(st.integers(0, nkeys - 1), label="key")
        if k not in live:
            doc = to_bson(data.draw(DOCUMENTS, label="insert"))
            out.append(Change(k, data.draw(st.sampled_from("ccr")), doc=doc))
            live[k] = doc
            continue
        roll = data.draw(st.sampled_from(["replace", "patch", "patch", "delete"]))
        if roll == "patch" and (patch := draw_patch(data, live[k])) is not None:
            patch.key = k
            out.append(patch)
            live[k] = copy.deepcopy(live[k])
            apply(live[k], patch)
        elif roll == "delete":
            out.append(Change(k, "d", tombstone=data.draw(st.booleans(), label="tombstone")))
            del live[k]
        else:
            doc = to_bson(data.draw(DOCUMENTS, label="replace"))
            out.append(Change(k, "u", doc=doc))
            live[k] = doc
    return out


def render(db: str, ids: list[Any], changes: list[Change],
           mode: JSONOptions) -> list[tuple[bytes, bytes | None]]:
    """The (key, value) messages Debezium's MongoDB connector writes for ``changes``."""
    out: list[tuple[bytes, bytes | None]] = []
    for n, ch in enumerate(changes):
        _id = ids[ch.key]
        key = json.dumps({"id": json_util.dumps(_id, json_options=mode)}).encode()
        ts = 1700000000000 + 1000 * (n // 2)  # pairs share a ts_ms: ord orders them
        value: dict[str, Any] = {
            "op": ch.op, "ts_ms": ts + 5, "transaction": None,
            "source": {"connector": "mongodb", "name": "srv", "ts_ms": ts, "db": db,
                       "collection": "t", "ord": n % 2 + 1, "snapshot": "false"},
        }  # fmt: skip
        if ch.doc is not None:
            value["after"] = json_util.dumps({"_id": _id, **ch.doc}, json_options=mode)
        elif ch.op == "u":
            value["after"] = None
            value["updateDescription"] = {
                "updatedFields": json_util.dumps(ch.sets, json_options=mode) if ch.sets
                else None,
                "removedFields": ch.unsets or None,
                "truncatedArrays": [{"field": p, "size": s} for p, s in ch.truncates.items()]
                or None,
            }
        out.append((key, json.dumps(value).encode()))
        if ch.tombstone:
            out.append((key, None))
    return out


@dataclass
class Folded:
    """A key's reference state: its document (None once deleted), the changes applied, and
    the top-level fields a nested path (a.b) changed since their value was last written
    whole. The README: a NUL in such a field is stored without an exact copy in overflow
    (jsonb cannot hold the copy, so SQL cannot apply the path to it)."""

    doc: dict[str, Any] | None = None
    count: int = 0
    nul_by_path: set[str] = field(default_factory=set)


def reference(messages: list[tuple[bytes, bytes | None]],
              mode: JSONOptions) -> dict[str, Folded]:
    """Fold the messages as MongoDB applies them, reading them with ``json_util``, by the
    Kafka key's ``id`` text."""
    out: dict[str, Folded] = {}
    for key, value in messages:
        if value is None:
            continue  # a tombstone after its delete changes nothing
        event = json.loads(value)
        state = out.setdefault(json.loads(key)["id"], Folded())
        state.count += 1
        if event.get("after") is not None:
            state.doc = json_util.loads(event["after"], json_options=mode)
            state.doc.pop("_id")
            state.nul_by_path.clear()
        elif event["op"] == "d":
            state.doc = None
        else:
            assert state.doc is not None
            desc = event["updateDescription"]
            sets = json_util.loads(desc["updatedFields"] or "{}", json_options=mode)
            apply(state.doc, Change(-1, "u", sets=sets, unsets=desc["removedFields"] or [],
                                    truncates={t["field"]: t["size"]
                                               for t in desc["truncatedArrays"] or []}))
            paths = [*sets, *(desc["removedFields"] or []),
                     *(t["field"] for t in desc["truncatedArrays"] or [])]
            state.nul_by_path |= {p.split(".")[0] for p in paths if "." in p}
            state.nul_by_path -= {p for p in paths if "." not in p}
    return out
