"""Reduce a table's records to their net effect per key, keeping order semantics.

Applying the reduced changes gives exactly what applying every record one by one
would, versions included: a later full document replaces earlier state, partial
updates compose, a delete after an insert leaves a (soft-)deleted row. Where two
changes cannot be folded into one — an insert after a delete (with hard deletes the
row is gone, and a delete of a row the table never had changes nothing), a patch or a
delete after a delete, patches whose paths overlap — the key gets a second *segment*;
segments are written in rounds, so each key's changes still apply in order.

Records are never modified: documents are copied before a patch is folded into them.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sink.records import DocText, Kind, Patch, Path, Record

KeyTuple = tuple[Any, ...]
_MASK = 0xFFFFFFFFFFFFFFFF


@dataclass(slots=True)
class Change:
    """The net effect of one or more consecutive records on one key."""

    kt: Hashable  # the key as the writer matches it (values in primary-key order)
    key: dict[str, Any]
    kind: Kind  # UPSERT, PATCH or DELETE
    values: dict[str, Any] | None = None  # UPSERT: the full document
    patch: Patch | None = None  # PATCH
    deleted: bool = False  # UPSERT that was deleted afterwards (soft deletes keep the row)
    tombstone_only: bool = False  # DELETE from a tombstone alone: no source position
    tomb_offset: int | None = None  # its Kafka offset (guards replays, see statements.delete)
    pos: int | None = None  # the last known source position (encode_position)
    count: int = 0  # source changes folded in (a tombstone after a delete counts 0)
    source_ts: datetime | None = None
    owned: bool = False  # ``values`` is this change's own copy

    @property
    def position(self) -> int | None:
        return self.pos


def encode_position(source: tuple[int, ...], offset: int | None) -> int | None:
    """One comparable integer from the source position and the Kafka offset; None when
    the source position is unknown (tombstones, records without one).

    Each source element gets 64 bits, the Kafka offset the lowest 64 (it breaks
    ties between changes the source stamped alike, e.g. one transaction).
    """
    if not source:
        return None
    value = 0
    for part in source:
        value = (value << 64) | (part & _MASK)
    return (value << 64) | ((offset or 0) & _MASK)


def _encode(source: tuple[int, ...], offset: int | None) -> int | None:
    """`encode_position`, unrolled for the usual lengths (it runs once per record)."""
    n = len(source)
    if n == 0:
        return None
    if n == 2:
        return ((source[0] & _MASK) << 128) | ((source[1] & _MASK) << 64) | ((offset or 0) & _MASK)
    if n == 3:
        return (((source[0] & _MASK) << 192) | ((source[1] & _MASK) << 128)
                | ((source[2] & _MASK) << 64) | ((offset or 0) & _MASK))
    return encode_position(source, offset)


def position_of(rec: Record) -> int | None:
    return _encode(rec.position, rec.offset) if rec.position else None


def start_change(rec: Record, kt: Hashable) -> Change:
    """The change of one record alone."""
    return _start(rec, kt, _encode(rec.position, rec.offset) if rec.position else None)


def key_tuple(key: dict[str, Any]) -> KeyTuple:
    return tuple(key.values())


def reduce_records(
    records: list[Record], keys: list[Hashable] | None = None
) -> list[list[Change]]:
    """Group by key (first-seen order) and fold; returns each key's list of segments.
    ``keys`` (aligned with ``records``) names each record's key; default: its values."""
    kts: list[Hashable] = keys if keys is not None else [key_tuple(r.key) for r in records]
    if len(set(kts)) == len(kts):  # every key once: nothing to fold (the common case)
        return [[start_change(r, kt)] for r, kt in zip(records, kts, strict=True)]
    by_key: dict[Hashable, list[Change]] = {}
    for rec, kt in zip(records, kts, strict=True):
        pos = _encode(rec.position, rec.offset) if rec.position else None
        segments = by_key.get(kt)
        if segments is None:
            by_key[kt] = [_start(rec, kt, pos)]
        elif not _fold(segments[-1], rec, pos):
            segments.append(_start(rec, kt, pos))
    return list(by_key.values())


def _start(rec: Record, kt: Hashable, pos: int | None) -> Change:
    kind = rec.kind
    if kind is Kind.UPSERT:  # positional: this runs once per record
        return Change(kt, rec.key, kind, rec.values or {}, None, False, False, None, pos, 1,
                      rec.source_ts)
    if kind is Kind.PATCH:
        p = rec.patch or Patch()
        return Change(kt, rec.key, kind, patch=Patch(dict(p.set), list(p.unset),
                      dict(p.truncate)), pos=pos, count=1, source_ts=rec.source_ts)
    tomb = rec.op == "tombstone"
    return Change(kt, rec.key, Kind.DELETE, tombstone_only=tomb and pos is None,
                  tomb_offset=rec.offset if tomb else None, pos=pos, count=1,
                  source_ts=rec.source_ts)


def _advance(ch: Change, rec: Record, pos: int | None) -> None:
    ch.count += 1
    if pos is not None:
        ch.pos = pos
    if rec.source_ts is not None:
        ch.source_ts = rec.source_ts


def _fold(ch: Change, rec: Record, pos: int | None) -> bool:
    """Fold ``rec`` into ``ch`` in place; False when it needs a new segment."""
    gone = ch.kind is Kind.DELETE or ch.deleted
    if rec.kind is Kind.UPSERT:
        if gone:
            return False  # the row may be absent (hard deletes, unknown key): write in order
        ch.kind, ch.values, ch.patch, ch.owned = Kind.UPSERT, rec.values or {}, None, False
        _advance(ch, rec, pos)
        return True
    if rec.kind is Kind.DELETE:
        if rec.op == "tombstone" and pos is None and gone:
            return True  # the delete already happened: a tombstone after it changes nothing
        if ch.kind is Kind.UPSERT and not ch.deleted:
            ch.deleted = True
            _advance(ch, rec, pos)
            return True
        return False
    if rec.kind is Kind.PATCH and not gone:
        patch = rec.patch or Patch()
        if ch.kind is Kind.UPSERT and ch.values is not None:
            if not ch.owned:
                ch.values, ch.owned = copy.deepcopy(ch.values), True
            apply_patch_to_document(ch.values, patch)
            _advance(ch, rec, pos)
            return True
        if ch.kind is Kind.PATCH and ch.patch is not None and compose_patches(ch.patch, patch):
            _advance(ch, rec, pos)
            return True
    return False


# --- documents (MongoDB's semantics) ------------------------------------------------


def _index(seg: str) -> int | None:
    return int(seg) if seg.isdigit() and seg.isascii() else None


def _walk(doc: Any, path: Path, create: bool) -> tuple[Any, str] | None:
    """The container holding the last segment of ``path`` (created on the way if asked:
    a missing or scalar step becomes an object, an array is padded with nulls)."""
    node = doc
    for seg in path[:-1]:
        idx = _index(seg)
        if isinstance(node, list):
            if idx is None:
                return None
            if idx >= len(node):
                if not create:
                    return None
                node.extend([None] * (idx + 1 - len(node)))
            if not isinstance(node[idx], (dict, list)):
                if not create:
                    return None
                node[idx] = {}
            node = node[idx]
        elif isinstance(node, dict):
            if not isinstance(node.get(seg), (dict, list)):
                if not create:
                    return None
                node[seg] = {}
            node = node[seg]
        else:
            return None
    return node, path[-1]


def set_path(doc: dict[str, Any], path: Path, value: Any) -> None:
    found = _walk(doc, path, create=True)
    if found is None:
        return
    node, last = found
    idx = _index(last)
    if isinstance(node, list):
        if idx is None:
            return
        if idx >= len(node):
            node.extend([None] * (idx + 1 - len(node)))
        node[idx] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)


def unset_path(doc: dict[str, Any], path: Path) -> None:
    found = _walk(doc, path, create=False)
    if found is None:
        return
    node, last = found
    idx = _index(last)
    if isinstance(node, list):
        if idx is not None and idx < len(node):
            node[idx] = None  # MongoDB's $unset on an array element leaves null
    elif isinstance(node, dict):
        node.pop(last, None)


def truncate_path(doc: dict[str, Any], path: Path, size: int) -> None:
    found = _walk(doc, path, create=False)
    if found is None:
        return
    node, last = found
    idx = _index(last)
    target: Any = None
    if isinstance(node, list):
        target = node[idx] if idx is not None and idx < len(node) else None
    elif isinstance(node, dict):
        target = node.get(last)
    if isinstance(target, list):
        del target[size:]


def apply_patch_to_document(doc: dict[str, Any], patch: Patch) -> None:
    """Apply a patch to a full document, in MongoDB's order: truncate, set, unset."""
    inside = [*patch.truncate, *(p for p in (*patch.set, *patch.unset) if len(p) > 1)]
    for path in inside:  # a sub-document the decoder rendered: edit it as plain JSON
        if type(doc.get(path[0])) is DocText:
            doc[path[0]] = doc[path[0]].value()
    for path, size in patch.truncate.items():
        truncate_path(doc, path, size)
    for path, value in patch.set.items():
        set_path(doc, path, value)
    for path in patch.unset:
        unset_path(doc, path)


# --- composing patches -----------------------------------------------------------


def _related(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def compose_patches(first: Patch, second: Patch) -> bool:
    """Fold ``second`` into ``first`` (in place) when the result is one patch with the
    same effect; False (and ``first`` untouched) when the paths interact in ways a
    single truncate/set/unset patch cannot express (a path inside or around another,
    a truncate of a path already touched, the $unset of a nested path set before)."""
    touched = [*first.set, *first.unset, *first.truncate]
    for path in second.truncate:
        if any(_related(path, p) for p in touched):
            return False
    for path in [*second.set, *second.unset]:
        if any(p != path and _related(path, p) for p in touched):
            return False
    if any(len(path) > 1 and path in first.set for path in second.unset):
        return False  # the $set created the parent objects; a lone $unset would not
    for path, size in second.truncate.items():
        first.truncate[path] = size
    for path, value in second.set.items():
        if path in first.unset:
            first.unset.remove(path)
        first.truncate.pop(path, None)  # the new value replaces the truncated array
        first.set[path] = value
    for path in second.unset:
        first.set.pop(path, None)
        first.truncate.pop(path, None)
        if path not in first.unset:
            first.unset.append(path)
    return True
