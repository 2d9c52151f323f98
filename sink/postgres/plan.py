"""The DDL a round of writes needs, decided from the values before any statement runs.

Pure: no I/O. A new column takes the type of its first value in the order the changes
came; an existing column widens when a value needs it (`types.target_type`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from functools import lru_cache
from typing import Any

from sink.postgres import schema_types
from sink.postgres import types as pgtypes
from sink.postgres.catalog import MAX_COLUMNS, TableInfo
from sink.postgres.dates import key_as_text, key_texts
from sink.postgres.names import column_name
from sink.postgres.reduce import Change
from sink.postgres.types import JSONB, natural_type, target_type
from sink.records import Kind, Record

Plan = dict[str, tuple[str | None, str]]  # column -> (current type or None to add, new type)


@lru_cache(maxsize=65536)
def column_of(field_name: str) -> str:
    """The column a field is stored in (cached: it runs once per field per document)."""
    return column_name(field_name)


def key_arrays(info: TableInfo, kts: list[Hashable]) -> list[list[Any]]:
    if len(info.primary_key) == 1:
        return [kts]
    return [list(c) for c in zip(*kts, strict=True)]


def key_params(info: TableInfo, kts: list[Hashable]) -> list[list[Any]]:
    """The key arrays as statement parameters: a key column of a type that travels as text
    (interval, inet...) is passed as its text, as its data values are, and so is a date or
    time key (asyncpg's codec makes 0001-01-01 -infinity and cannot carry a BC date); the
    statements cast them back (`statements.key_cast`)."""
    arrays = key_arrays(info, kts)
    return [key_param(info.columns[k], a) for k, a in zip(info.primary_key, arrays, strict=True)]


def key_param(column: str, values: list[Any]) -> list[Any]:
    """One key column's values as the parameter (`key_params`)."""
    if key_as_text(column):  # dates and times: exactly, in any year (dates.key_texts)
        return key_texts(values)
    if column.endswith("[]"):  # an array key, grouped as a tuple (writer._open)
        values = [list(v) if type(v) is tuple else v for v in values]
    if not schema_types.travels_as_text(column) or all(type(v) is str for v in values):
        return values
    stored, over = pgtypes.adapt_column(values, column)
    return values if over else stored  # not representable: PostgreSQL refuses the record


def columnar(info: TableInfo, docs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column name -> one value per document (None where the document lacks the field)."""
    out: dict[str, list[Any]] = {}
    pk = info.primary_key
    for f in set().union(*docs) if docs else ():
        c = column_of(f)
        if c not in pk:
            out[c] = [d.get(f) for d in docs]
    return out


def ddl_plan(
    info: TableInfo, docs: list[dict[str, Any]], kts: list[Hashable],
    cols: dict[str, list[Any]], rest: list[Change], *, varchar: bool,
) -> Plan:
    """The DDL a round needs: column -> (current type or None to add, new type).
    ``docs``/``kts``: the round's full documents and their keys; ``cols`` the documents
    column-wise (`columnar`); ``rest`` its deletes and patches."""
    plan: Plan = {}

    def want(col: str, values: list[Any]) -> None:
        cur = plan[col][1] if col in plan else info.columns.get(col)
        new = target_type(cur, values, varchar=varchar)
        if new is not None:
            plan[col] = (plan[col][0] if col in plan else info.columns.get(col), new)

    kts = kts + [c.kt for c in rest] if rest else kts
    for col, values in zip(info.primary_key, key_arrays(info, kts), strict=True):
        want(col, values)  # a key column widens too (integer -> bigint -> numeric)
    new = [c for c in cols if c not in info.columns]
    if new:
        new.sort(key=first_seen(docs))
    for col in [*(c for c in cols if c in info.columns), *new]:
        want(col, cols[col])
    top: dict[str, list[Any]] = defaultdict(list)
    roots: dict[str, None] = {}
    for ch in rest:
        if ch.patch is None:
            continue
        for path, value in ch.patch.set.items():
            if len(path) == 1 and (c := column_of(path[0])) not in info.primary_key:
                top[c].append(value)
        for path in [*ch.patch.set, *ch.patch.unset, *ch.patch.truncate]:
            if len(path) > 1 or path in ch.patch.truncate:
                roots[column_of(path[0])] = None
    for col, values in top.items():
        want(col, values)
    _jsonb_roots(info, plan, roots)
    return _capped(info, plan)


def _capped(info: TableInfo, plan: Plan) -> Plan:
    """Near PostgreSQL's 1,600-column limit only the first new columns (in the order their
    fields came) are added; the others' values are kept in ``_cartridge_overflow``."""
    room = MAX_COLUMNS - info.slots
    if sum(old is None for old, _ in plan.values()) <= room:
        return plan
    out: Plan = {}
    for col, (old, new) in plan.items():
        if old is None:
            if room <= 0:
                continue
            room -= 1
        out[col] = (old, new)
    return out


def _jsonb_roots(info: TableInfo, plan: Plan, roots: Iterable[str]) -> None:
    """A dotted path needs a jsonb column (or goes to overflow)."""
    for root in roots:
        old = info.columns.get(root)
        if old is None or pgtypes.is_textual(plan[root][1] if root in plan else old):
            plan[root] = (old, JSONB)


def run_plan(
    info: TableInfo, records: list[Record], kts: list[Hashable], *, varchar: bool
) -> Plan:
    """The DDL for a table's records, every value taken in the order the records came
    (partition order), intermediate values included: the same as applying the records one
    by one, whatever the flush folds (a key changed several times in one flush keeps only
    its last document, which would otherwise decide a new column's type)."""
    docs: list[dict[str, Any]] = []
    for rec in records:
        if rec.kind is Kind.UPSERT:
            docs.append(rec.values or {})
        elif rec.kind is Kind.PATCH and rec.patch is not None:
            p = rec.patch
            top = {path[0]: v for path, v in p.set.items() if len(path) == 1}
            for path in [*p.set, *p.unset, *p.truncate]:
                if len(path) > 1 or path in p.truncate:
                    # A dotted path wants a jsonb root, in its place in the sequence: as a
                    # document value would (a new or text column becomes jsonb).
                    top.setdefault(path[0], {})
            if top:
                docs.append(top)
    plan = ddl_plan(info, docs, kts, columnar(info, docs), [], varchar=varchar)
    return _capped(info, plan)


def first_seen(docs: list[dict[str, Any]]) -> Any:
    """Sort key: new columns are added in the order their fields first get a value that
    decides a type. A null (or a date beyond PostgreSQL's range) adds no column when
    applied alone, so it must not place one here either: the order would depend on the
    batching."""
    order: dict[str, int] = {}
    for doc in docs:
        for f, v in doc.items():
            if v is not None and (c := column_of(f)) not in order \
                    and natural_type(v) is not None:
                order[c] = len(order)
    return lambda c: order.get(c, len(order))
