"""Reduce a table's records to their net effect per key, keeping order semantics.

Applying the reduced changes gives exactly what applying every record one by one
would: a later full document replaces earlier state, partial updates compose, a
delete after an insert leaves a (soft-)deleted row, an insert after a delete
revives it. Where two changes cannot be folded into one (a patch on a deleted row,
a delete after a patch), the key gets a second *segment*; segments are written in
rounds, so each key's changes still apply in order.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .records import Kind, Patch, Path, Record

KeyTuple = tuple[Any, ...]


@dataclass(slots=True)
class Change:
    """The net effect of one or more consecutive records on one key."""

    key: dict[str, Any]
    kind: Kind  # UPSERT, PATCH or DELETE
    values: dict[str, Any] | None = None  # UPSERT: the full document
    patch: Patch | None = None  # PATCH
    deleted: bool = False  # UPSERT that was deleted afterwards (soft deletes keep the row)
    tombstone_only: bool = False  # DELETE from a tombstone alone: no position, idempotent
    positions: list[int] = field(default_factory=list)  # guard positions, in order
    count: int = 0  # source changes folded in (tombstones after a delete count 0)
    source_ts: datetime | None = None

    @property
    def position(self) -> int | None:
        return self.positions[-1] if self.positions else None


def encode_position(source: tuple[int, ...], offset: int | None) -> int | None:
    """One comparable integer from the source position and the Kafka offset.

    Each source element gets 64 bits, the Kafka offset the lowest 64 (it breaks
    ties between changes the source stamped alike, e.g. one transaction).
    """
    if not source and offset is None:
        return None
    value = 0
    for part in source:
        value = (value << 64) | (part & 0xFFFFFFFFFFFFFFFF)
    return (value << 64) | ((offset or 0) & 0xFFFFFFFFFFFFFFFF)


def key_tuple(key: dict[str, Any]) -> KeyTuple:
    return tuple(key.values())


def reduce_records(records: list[Record]) -> list[list[Change]]:
    """Group by key (first-seen order) and fold; returns each key's list of segments."""
    by_key: dict[KeyTuple, list[Change]] = {}
    for rec in records:
        kt = key_tuple(rec.key)
        segments = by_key.get(kt)
        if segments is None:
            by_key[kt] = [_start(rec)]
            continue
        last = segments[-1]
        if not _fold(last, rec):
            segments.append(_start(rec))
    return list(by_key.values())


def _pos(rec: Record) -> int | None:
    return encode_position(rec.position, rec.offset)


def _start(rec: Record) -> Change:
    ch = Change(key=rec.key, kind=rec.kind, source_ts=rec.source_ts)
    if rec.kind is Kind.UPSERT:
        ch.values = dict(rec.values or {})
    elif rec.kind is Kind.PATCH:
        ch.patch = copy.deepcopy(rec.patch) if rec.patch is not None else Patch()
    elif rec.kind is Kind.DELETE:
        ch.tombstone_only = rec.op == "tombstone"
    _count(ch, rec)
    return ch


def _count(ch: Change, rec: Record) -> None:
    pos = _pos(rec)
    if rec.op == "tombstone" and pos is None:
        if not ch.tombstone_only or ch.count == 0:
            ch.count += 0 if ch.kind is Kind.DELETE and not ch.tombstone_only else 1
        return
    ch.count += 1
    if pos is not None:
        ch.positions.append(pos)
    if rec.source_ts is not None:
        ch.source_ts = rec.source_ts


def _fold(ch: Change, rec: Record) -> bool:
    """Fold ``rec`` into ``ch`` in place; False when it needs a new segment."""
    if rec.kind is Kind.UPSERT:
        if ch.tombstone_only:
            return False
        ch.kind, ch.values, ch.patch, ch.deleted = Kind.UPSERT, dict(rec.values or {}), None, False
        _count(ch, rec)
        return True
    if rec.kind is Kind.DELETE:
        if rec.op == "tombstone" and (ch.kind is Kind.DELETE or ch.deleted):
            return True  # the delete already happened: a tombstone after it changes nothing
        if ch.kind is Kind.UPSERT and not ch.deleted:
            ch.deleted = True
            _count(ch, rec)
            return True
        return False
    if rec.kind is Kind.PATCH:
        if ch.kind is Kind.UPSERT and not ch.deleted and ch.values is not None:
            apply_patch_to_document(ch.values, rec.patch or Patch())
            _count(ch, rec)
            return True
        if (
            ch.kind is Kind.PATCH
            and ch.patch is not None
            and compose_patches(ch.patch, rec.patch or Patch())
        ):
            _count(ch, rec)
            return True
        return False
    return False


# --- documents -----------------------------------------------------------------


def _index(seg: str) -> int | None:
    return int(seg) if seg.isdigit() else None


def _walk(doc: Any, path: Path, create: bool) -> tuple[Any, str] | None:
    """The container holding the last segment of ``path`` (created on the way if asked)."""
    node = doc
    for seg in path[:-1]:
        idx = _index(seg)
        if isinstance(node, list) and idx is not None:
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
    if isinstance(node, list) and idx is not None:
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
    if isinstance(node, list) and idx is not None:
        if idx < len(node):
            node[idx] = None  # MongoDB's $unset on an array element leaves null
    elif isinstance(node, dict):
        node.pop(last, None)


def truncate_path(doc: dict[str, Any], path: Path, size: int) -> None:
    found = _walk(doc, path, create=False)
    if found is None:
        return
    node, last = found
    idx = _index(last)
    target = node[idx] if isinstance(node, list) and idx is not None and idx < len(node) else (
        node.get(last) if isinstance(node, dict) else None
    )
    if isinstance(target, list):
        del target[size:]


def apply_patch_to_document(doc: dict[str, Any], patch: Patch) -> None:
    """Apply a patch to a full document, in MongoDB's order: truncate, set, unset."""
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
    single truncate/set/unset patch cannot express."""
    touched = list(first.set) + list(first.unset) + list(first.truncate)
    for path in second.truncate:
        if any(_related(path, p) for p in touched):
            return False
    for path in list(second.set) + list(second.unset):
        for p in touched:
            if p == path:
                continue
            if _related(path, p):
                return False
    for path, size in second.truncate.items():
        first.truncate[path] = size
    for path, value in second.set.items():
        if path in first.unset:
            first.unset.remove(path)
        first.set[path] = value
    for path in second.unset:
        first.set.pop(path, None)
        if path not in first.unset:
            first.unset.append(path)
    return True
