"""JSON text → Python values: the orjson fast path plus two rare, exact fallbacks.

* :func:`parse_json` — orjson; failures become ``DecodeError`` with a stable code
  (``bad_utf8``, ``too_deep``, ``bad_json``). With ``allow_nan`` the bare ``NaN`` /
  ``Infinity`` / ``-Infinity`` tokens of MongoDB strict doubles are rewritten (outside
  strings) to ``{"$numberDouble": ...}`` wrappers and the text is parsed again.
* :func:`parse_exact` — the standard-library parser, used only after the fast path met a
  number orjson cannot keep exactly (an integer literal beyond 64 bits, which orjson turns
  into a float, or a JSON-number decimal beyond double precision). Code that meets such a
  number raises :class:`InexactNumber`; the entry point re-parses with this function.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from mypy_extensions import mypyc_attr

from sink.errors import DecodeError

__all__ = ["ExactFloat", "InexactNumber", "parse_exact", "parse_json"]

_NAN_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|-?Infinity|NaN', re.DOTALL)
Text = bytes | bytearray | memoryview | str


class InexactNumber(Exception):
    """A number the fast parse could not keep exactly: re-parse with :func:`parse_exact`.

    Internal signal between the fast and the exact parse; never leaves the decoder."""


@mypyc_attr(native_class=False)
class ExactFloat(float):
    """A float from :func:`parse_exact` that keeps its literal text (for ``Decimal``)."""

    __slots__ = ("text",)
    text: str


def _exact_float(text: str) -> ExactFloat:
    # Not a __new__(cls, text): copy/pickle rebuild a float subclass as cls.__new__(cls,
    # float_value), and compiled with mypyc that signature refuses the float.
    obj = ExactFloat(text)
    obj.text = text
    return obj


def parse_json(data: Text, *, allow_nan: bool = False) -> Any:
    """Parse JSON text with orjson; ``DecodeError`` (bad_json / bad_utf8 / too_deep) on failure."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = exc
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not valid UTF-8: {exc.reason} at byte {exc.start}"
        raise DecodeError(msg, code="bad_utf8") from None
    if allow_nan and (b"NaN" in raw or b"Infinity" in raw):
        try:
            return orjson.loads(_NAN_TOKENS.sub(_nan_to_wrapper, raw))
        except orjson.JSONDecodeError:
            pass
    code = "too_deep" if "depth" in str(first) or "recursion" in str(first) else "bad_json"
    raise DecodeError(f"not valid JSON: {first}", code=code) from None


def _nan_to_wrapper(m: re.Match[bytes]) -> bytes:
    tok = m.group(0)
    if tok[:1] == b'"':
        return tok
    return b'{"$numberDouble":"' + tok + b'"}'


def parse_exact(data: Text, *, keep_float_text: bool = False) -> Any:
    """Parse text the fast path accepted, keeping every integer exact (and, with
    ``keep_float_text``, every float's literal as :class:`ExactFloat`)."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    try:
        return json.loads(text, parse_float=_exact_float if keep_float_text else None)
    except RecursionError:
        raise DecodeError("JSON nested too deeply", code="too_deep") from None
    except ValueError as exc:  # orjson accepted the text: only an absurdly long integer
        msg = f"number too large: {str(exc)[:80]}"
        raise DecodeError(msg, code="number_out_of_range") from None
