"""The writer's passes over a table's records, one loop each: what it gathers per record
before any statement (operation counts, the kinds present, each upsert's columns).

Pure: no I/O. Compiled with mypyc with the rest of the hot path (setup.py): in these loops
a record's fields are read straight from the compiled `Record`, which a Python loop (the
writer, as it was) pays an attribute lookup and a bytecode dispatch for, per record.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sink.postgres.reduce import Change, position_of, start_change
from sink.records import Kind, Record


@dataclass(slots=True)
class Upserts:
    """One round's full documents, column-wise (no object per row on the common path)."""

    kts: list[Hashable]
    docs: list[dict[str, Any]]
    counts: list[int]
    ts: list[Any]
    pos: list[str | None]
    deleted: list[bool]

    @classmethod
    def of_changes(cls, chs: list[Change]) -> Upserts:
        return cls([c.kt for c in chs], [c.values or {} for c in chs], [c.count for c in chs],
                   [c.source_ts for c in chs], [change_pos(c) for c in chs],
                   [c.deleted for c in chs])


def change_pos(ch: Change) -> str | None:
    """A change's position as the text the statements cast to numeric (asyncpg's binary
    numeric encoding of a 192-bit integer costs more than its text)."""
    # An object, not `int | None`: compiled, str() of an unboxed int past 2**62 keeps a
    # reference to it for ever (mypyc 2.4.1's CPyTagged_Str), one position per change.
    p: object = ch.pos
    return None if p is None else str(p)


def op_counts(records: list[Record]) -> dict[str, int]:
    """How many records carry each source operation (``c``, ``u``, ``tombstone``...)."""
    counts: dict[str, int] = {}
    for rec in records:
        op = rec.op
        counts[op] = counts.get(op, 0) + 1
    return counts


def has_kind(records: list[Record], kind: Kind) -> bool:
    return any(rec.kind is kind for rec in records)


def split_unique(records: list[Record], kts: list[Hashable]) -> tuple[Upserts, list[Change]]:
    """Records whose keys (``kts``, aligned) are all distinct: their full documents as one
    round's upserts, column-wise, and every other record as its own change, in order."""
    ukts: list[Hashable] = []
    docs: list[dict[str, Any]] = []
    ts: list[Any] = []
    pos: list[str | None] = []
    rest: list[Change] = []
    for i, rec in enumerate(records):
        if rec.kind is Kind.UPSERT:
            ukts.append(kts[i])
            docs.append(rec.values or {})
            ts.append(rec.source_ts)
            # Held as an object, not `int | None`: mypyc 2.4.1 leaked the (192-bit) int
            # when it narrowed one to int for the str() (about 60 bytes a row: see
            # `change_pos`).
            p: object = position_of(rec)
            pos.append(None if p is None else str(p))
        else:
            rest.append(start_change(rec, kts[i]))
    n = len(ukts)
    return Upserts(ukts, docs, [1] * n, ts, pos, [False] * n), rest
