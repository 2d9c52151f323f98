"""Column types that come from an event's schema (``Record.column_types``, see
``sink.decode.column_types``) rather than from values: ``smallint``, ``real``,
``numeric(p,s)``, ``time(p)``/``timestamp(p)``, ``time with time zone``.

A column of such a type takes the values of its *base* type (the type the value rules in
``types`` know): ``smallint`` those of ``integer``, ``numeric(10,2)`` those of
``numeric``, ``timestamp(3) without time zone`` those of ``timestamp without time zone``
(``real``: floats that are float32 values, see `fits_real`). PostgreSQL applies the
declared precision itself; the values came through the same schema, so they fit it.
"""

from __future__ import annotations

import math
import re
import struct
from datetime import timedelta
from typing import Any

_BASE = {"smallint": "integer"}


def base_of(column: str) -> str:
    """The type whose value rules a column of type ``column`` follows."""
    base = _BASE.get(column)
    if base is not None:
        return base
    if column.startswith("numeric("):
        return "numeric"
    for stem in ("timestamp", "time"):
        if column.startswith(f"{stem}(") and ") with" in column:
            return f"{stem} with{column.split(') with', 1)[1]}"
        if column.startswith(f"{stem}(") and ") without" in column:
            return f"{stem} without{column.split(') without', 1)[1]}"
    return column


def hinted(records: Any, name_of: Any) -> dict[str, str]:
    """Column -> schema type over ``records`` (the last record naming a column wins: the
    newest schema, after a source ALTER)."""
    out: dict[str, str] = {}
    for rec in records:
        types = rec.column_types
        if types:
            for field, t in types.items():
                out[name_of(field)] = t
    return out


def use_hint(hint: str | None, natural: str) -> str:
    """The type to create a column with: the schema's, unless the values need jsonb (a
    nested path; a list is an array the schema types) or the schema says nothing."""
    if hint is None or (natural == "jsonb" and hint != "jsonb" and not hint.endswith("[]")):
        return natural
    return hint


def fits_real(values: list[Any]) -> bool:
    """True when every float of ``values`` is a float32 value (the decoder rounds a schema's
    float32 to one), so a ``real`` column holds it exactly."""
    for v in values:
        if type(v) is not float:
            if v is not None:
                return False
            continue
        if math.isnan(v) or math.isinf(v):
            continue
        try:
            if struct.unpack("f", struct.pack("f", v))[0] != v:
                return False
        except OverflowError:
            return False
    return True


def _element(v: Any) -> str | None:
    """One element of an array literal; None when it is not a primitive."""
    if v is None:
        return "NULL"
    if v is True or v is False:
        return "t" if v else "f"
    if type(v) is int:
        return str(v)
    if type(v) is float:
        return repr(v) if math.isfinite(v) else ("NaN" if math.isnan(v) else
                                                 ("Infinity" if v > 0 else "-Infinity"))
    if type(v) is str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def adapt_array(values: list[Any]) -> tuple[list[Any], dict[int, Any]]:
    """One-dimensional lists of primitives as PostgreSQL array literals (``{1,NULL,"a b"}``);
    anything else is kept in overflow, as a value a column cannot hold."""
    out: list[Any] = []
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        items = [_element(x) for x in v] if type(v) is list else [None]
        if any(x is None for x in items) or any(type(x) is str and "\x00" in x for x in v):
            overflow[i] = v
            out.append(None)
            continue
        out.append("{" + ",".join(items) + "}")  # type: ignore[arg-type]
    return out, overflow


def travels_as_text(column: str) -> bool:
    """Columns whose values are sent as text and cast in the statement: arrays (literals)
    and intervals (see `adapt_interval`)."""
    return column.endswith("[]") or column == "interval"


def adapt_interval(values: list[Any]) -> tuple[list[Any], dict[int, Any]]:
    """Interval values as text PostgreSQL reads exactly: a duration as its microseconds
    (``-7200000000 microseconds`` is ``-02:00:00``, not ``-1 days +22:00:00``), an ISO 8601
    string (Debezium's ``interval.handling.mode=string``: ``P1Y2M3DT4H5M6.789S``, months
    and days kept) as it is; anything else is kept in overflow."""
    out: list[Any] = []
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, timedelta):
            out.append(f"{v // timedelta(microseconds=1)} microseconds")
        elif type(v) is str and _ISO_DURATION.fullmatch(v):
            out.append(v)
        else:
            overflow[i] = v
            out.append(None)
    return out, overflow


_ISO_DURATION = re.compile(r"-?P(-?\d+Y)?(-?\d+M)?(-?\d+W)?(-?\d+D)?"
                           r"(T(-?\d+H)?(-?\d+M)?(-?\d+(\.\d+)?S)?)?")
