"""Column types that come from an event's schema (``Record.column_types``, see
``sink.decode.column_types``) rather than from values: ``smallint``, ``real``,
``numeric(p,s)``, ``time(p)``/``timestamp(p)``, ``time with time zone``.

A column of such a type takes the values of its *base* type (the type the value rules in
``types`` know): ``smallint`` those of ``integer``, ``numeric(10,2)`` those of
``numeric``, ``timestamp(3) without time zone`` those of ``timestamp without time zone``
(``real``: floats that are float32 values, see `fits_real`). PostgreSQL applies the
declared precision itself; the values came through the same schema, so they fit it.

Types that travel as text (`travels_as_text`) are cast in the statement (`text_cast`):
arrays, intervals, and the source types a propagated schema names (``inet``, ``point``,
``bit(n)``, ``money``, ranges, ``json``, ``hstore``...), whose values `adapt_text` renders
as the text PostgreSQL reads back exactly. PostgreSQL checks that text: a value it refuses
is a dead letter.
"""

from __future__ import annotations

import json
import math
import re
import struct
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sink.records import BitString, DocText, JsonText, Point

_BASE = {"smallint": "integer", "citext": "text", "character varying": "text"}
# Types whose values are sent as text and cast in the statement (see the module doc).
_FROM_TEXT = frozenset({
    "inet", "cidr", "macaddr", "macaddr8", "xml", "json", "point", "money", "int4range",
    "int8range", "numrange", "tsrange", "tstzrange", "daterange", "citext", "hstore",
    "character varying", "bit varying",
})  # fmt: skip
_FROM_TEXT_STEMS = ("bit(", "bit varying(", "character(")


def from_text(column: str) -> bool:
    """True for a column type whose values `adapt_text` renders as text."""
    return column in _FROM_TEXT or column.startswith(_FROM_TEXT_STEMS)


def base_of(column: str) -> str:
    """The type whose value rules a column of type ``column`` follows."""
    base = _BASE.get(column)
    if base is not None:
        return base
    if column.startswith(("bit(", "bit varying(")):
        return "bit varying"  # a BitString's natural type
    if column.startswith("character("):
        return "text"
    if column.startswith("numeric("):
        return "numeric"
    for stem in ("timestamp", "time"):
        if column.startswith(f"{stem}(") and ") with" in column:
            return f"{stem} with{column.split(') with', 1)[1]}"
        if column.startswith(f"{stem}(") and ") without" in column:
            return f"{stem} without{column.split(') without', 1)[1]}"
    return column


_FRACTION = re.compile(r"(time|timestamp)\(([0-5])\) (with|without) time zone")


def outgrown(column: str, values: list[Any]) -> str | None:
    """The type a column of a schema's declared size must widen to for ``values`` (the
    source altered its column), or None. The statements cast such values explicitly, and
    PostgreSQL's explicit cast cuts a char(n) or bit(n) value, pads a bit(n) one and rounds
    a numeric(p,s) or time(p) one silently (a numeric too long is refused)."""
    stem, _, rest = column.partition("(")
    if not rest.endswith(")") or not rest[:-1].replace(",", "").lstrip("-").isdigit():
        return _fraction(column, values)
    if stem == "character" and any(type(v) is str and len(v.rstrip(" ")) > int(rest[:-1])
                                   for v in values):
        return "text"
    if stem in ("bit", "bit varying"):
        n = int(rest[:-1])
        if any(type(v) is BitString and (len(v.bits) > n or (stem == "bit" and len(v.bits) != n))
               for v in values):
            return "bit varying"
    if stem == "numeric" and _numeric_misfit(rest[:-1], values):
        return "numeric"
    return None


def _numeric_misfit(spec: str, values: list[Any]) -> bool:
    p, s = (int(x) for x in spec.split(","))
    if s < 0:  # PostgreSQL 15's negative scale (a table made by hand): rounding is its point
        return False
    for v in values:
        if type(v) in (Decimal, int) and (d := Decimal(v)).is_finite():
            exp = int(d.as_tuple().exponent)
            if max(0, -exp) > s or len(d.as_tuple().digits) + exp > p - s:
                return True
    return False


def _fraction(column: str, values: list[Any]) -> str | None:
    m = _FRACTION.fullmatch(column)
    if m is None:
        return None
    step = 10 ** (6 - int(m.group(2)))
    if any(isinstance(v, datetime | time) and v.microsecond % step for v in values):
        return f"{m.group(1)} {m.group(3)} time zone"
    return None


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
    if hint is None or (natural == "jsonb" and hint not in ("jsonb", "json", "hstore")
                        and not hint.endswith("[]")):
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
        return _int_text(v)
    if type(v) is float:
        return repr(v) if math.isfinite(v) else ("NaN" if math.isnan(v) else
                                                 ("Infinity" if v > 0 else "-Infinity"))
    if type(v) is str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def _int_text(value: object) -> str:
    # Takes an object: compiled, str() of an int held unboxed (narrowed by a type test)
    # keeps a reference to an int past 2**62 for ever (mypyc 2.4.1's CPyTagged_Str).
    return str(value)


def adapt_array(values: list[Any]) -> tuple[list[Any], dict[int, Any]]:
    """One-dimensional lists of primitives as PostgreSQL array literals (``{1,NULL,"a b"}``);
    anything else is kept in overflow, as a value a column cannot hold."""
    out: list[Any] = []
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if type(v) is DocText:  # a MongoDB array the decoder rendered: its elements
            v = _doc_items(v)
        items = [_element(x) for x in v] if type(v) is list else [None]
        if any(x is None for x in items) or any(type(x) is str and "\x00" in x for x in v):
            overflow[i] = v
            out.append(None)
            continue
        out.append("{" + ",".join(items) + "}")  # type: ignore[arg-type]
    return out, overflow


def _doc_items(doc: DocText) -> Any:
    """A `DocText` array's items as the typed walk gave them: a double NaN or ±Infinity
    back from its ``{"$numberDouble"}`` wrapper (the other doubles: `DocText.value`)."""
    items = doc.value()
    if type(items) is not list:
        return items
    return [float(x["$numberDouble"]) if type(x) is dict and len(x) == 1
            and x.get("$numberDouble") in _NONFINITE else x for x in items]


_NONFINITE = frozenset({"NaN", "Infinity", "-Infinity"})


def travels_as_text(column: str) -> bool:
    """Columns whose values are sent as text and cast in the statement: arrays (literals),
    intervals (see `adapt_interval`) and the `from_text` types."""
    return column.endswith("[]") or column == "interval" or from_text(column)


def text_cast(column: str) -> str:
    """The cast that reads a `travels_as_text` value: money through numeric, so the
    decimal point is a point whatever the server's ``lc_monetary``."""
    return "::numeric::money" if column == "money" else f"::{column}"


def adapt_text(values: list[Any], column: str) -> tuple[list[Any], dict[int, Any]]:
    """Values of a `from_text` column as their PostgreSQL text; a value of a kind the
    column cannot read (or a string with a NUL) is kept in overflow."""
    out: list[Any] = []
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        text = None if v is None else _text(v, column)
        if v is not None and (text is None or "\x00" in text):
            overflow[i] = v
            text = None
        out.append(text)
    return out, overflow


def _text(v: Any, column: str) -> str | None:
    if type(v) is DocText:  # a MongoDB document the decoder rendered: as the document
        v = v.value()
    t = type(v)
    if t is str:
        return str(v)
    if isinstance(v, BitString):
        return v.bits
    if t is bool:
        return "1" if v else "0"  # bit(1)
    if t is Point:
        return f"({_float(v.x)},{_float(v.y)})"
    if isinstance(v, JsonText):
        return v.text if column != "hstore" else _hstore(json.loads(v.text))
    if t is dict and column == "hstore":
        return _hstore(v)
    if column == "money" and t in (Decimal, int, float):
        return str(v) if t is not float else repr(v)
    return None


def _float(x: float) -> str:
    return repr(x) if math.isfinite(x) else ("NaN" if math.isnan(x) else
                                            ("Infinity" if x > 0 else "-Infinity"))


def _hstore(doc: Any) -> str | None:
    """An hstore literal (``"a"=>"1", "b"=>NULL``) of a flat object of strings and nulls
    (Debezium's ``hstore.handling.mode=json`` text, or ``map``)."""
    if type(doc) is not dict:
        return None
    pairs = []
    for k, v in doc.items():
        if type(k) is not str or (v is not None and type(v) is not str):
            return None
        pairs.append(f"{_quoted(k)}=>{'NULL' if v is None else _quoted(v)}")
    return ", ".join(pairs)


def _quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
            micros: object = v // timedelta(microseconds=1)  # not an int: see `_int_text`
            out.append(f"{micros} microseconds")
        elif type(v) is str and _ISO_DURATION.fullmatch(v):
            out.append(v)
        else:
            overflow[i] = v
            out.append(None)
    return out, overflow


_ISO_DURATION = re.compile(r"-?P(-?\d+Y)?(-?\d+M)?(-?\d+W)?(-?\d+D)?"
                           r"(T(-?\d+H)?(-?\d+M)?(-?\d+(\.\d+)?S)?)?")
