"""An Avro binary reader generated per writer schema: fastavro's result, without its dispatch.

fastavro's ``schemaless_reader`` walks the schema for every datum: one generic call per
field, each looking the type up again. :func:`compile_reader` does that walk once per
writer schema (the registry caches the result with the schema id) and generates
straight-line Python for it: fields in order, union branches chosen by comparing the raw
index byte, varints decoded inline, logical types applied with fastavro's own converters;
a record referenced by name is read by a function of its own, any other in place. The
result is the same value fastavro returns (the decoder's property test compares them on
random schemas and values) in a half to a quarter of the time (bench/README.md).

Safety, because schemas come from a registry: nothing from the schema is ever written into
the generated source except ``repr()`` of ``str`` field names (a ``repr`` of a ``str`` is
always a plain literal) and ``int`` fixed sizes; symbols and logical-type schemas are
passed in as globals with generated names. Every length and count is checked against the bytes that
are left, a varint may be at most 10 bytes and 64 bits, and an array or map of zero-width
items may hold at most ``_MAX_EMPTY_ITEMS``: truncated or hostile input raises (the caller
turns any exception into a ``bad_avro`` dead letter), it never hangs or allocates without
bound. Input fastavro would read into a garbage value (an enum or union index out of
range, a varint past 64 bits) raises here instead.

With ``drop_source``, the fields of those names in the envelope's ``source`` struct (read
in place) are stepped over and left out of the value: a string or bytes field costs one
varint then, not a slice, a UTF-8 decode and a dict entry. The decoder passes the ones it
never reads (:data:`sink.decode.common.UNREAD_SOURCE_FIELDS`).

What this does not handle returns ``None`` and the caller keeps fastavro for that schema:
recursive named types, unions of more than 63 branches, schemas nested deeper than
``_MAX_DEPTH`` or generating more than ``_MAX_SOURCE`` characters. Setting the environment
variable ``WARP_AVRO_READER=fastavro`` turns the generated readers off altogether.

Length: one code generator, kept whole: every kind of Avro type emits code that must agree
with the others on the same locals (``b``, ``p``, ``L``) and on the same checks; split, the
safety rules above would be spread over modules that each look harmless.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from typing import Any

from fastavro.read import LOGICAL_READERS

__all__ = ["AvroReader", "compile_reader", "enabled"]

AvroReader = Callable[[bytes, int], tuple[Any, int]]

_MAX_DEPTH = 200  # generator steps into a schema (a few per level) before fastavro takes it
_MAX_SOURCE = 4_000_000  # characters of generated code
_MAX_EMPTY_ITEMS = 1_000_000  # items of an array/map whose items take no bytes
_SPLIT = 5  # nesting inside one generated function before the rest moves to its own
_KINDS = frozenset({"record", "error", "enum", "fixed", "array", "map", "null", "boolean",
                    "int", "long", "float", "double", "bytes", "string"})  # fmt: skip
_USES_L = re.compile(r"\bL\b")
_PRIMITIVE = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                        "string"})  # fmt: skip


def enabled() -> bool:
    """Whether generated readers are used (``WARP_AVRO_READER=fastavro`` turns them off)."""
    return os.environ.get("WARP_AVRO_READER", "").strip().lower() != "fastavro"


class AvroDataError(ValueError):
    """The bytes do not fit the writer schema (the caller reports ``bad_avro``)."""


class _Unsupported(Exception):
    pass


def _bad(what: str) -> AvroDataError:
    return AvroDataError(what)


_BASE_GLOBALS: dict[str, Any] = {
    "__builtins__": {"range": range, "len": len, "str": str},
    "_bad": _bad,
    "_f32": struct.Struct("<f").unpack_from,
    "_f64": struct.Struct("<d").unpack_from,
}


def compile_reader(parsed: Any, drop_source: frozenset[str] = frozenset()) -> AvroReader | None:
    """A reader for fastavro-parsed ``parsed``, or ``None`` when fastavro must be used;
    ``drop_source``: fields of the top-level ``source`` record to skip (module doc)."""
    try:
        gen = _Gen(parsed, drop_source)
        source = gen.build()
        if len(source) > _MAX_SOURCE:
            return None
        namespace = dict(_BASE_GLOBALS)
        namespace.update(gen.consts)
        code = compile(source, "<avro reader>", "exec")
        exec(code, namespace)  # the source holds generated names and repr() literals only
        reader: AvroReader = namespace["_r0"]
    except Exception:  # _Unsupported, RecursionError, SyntaxError...: fastavro reads it
        return None
    return reader


class _Gen:
    """Generates the reader's source; ``consts`` are the globals it refers to."""

    def __init__(self, parsed: Any, drop_source: frozenset[str] = frozenset()) -> None:
        self.root = parsed
        self.drop_source = drop_source
        self.drop_next: frozenset[str] = frozenset()  # for the record read in place next
        self.root_record: Any = None
        named = parsed.get("__named_schemas") if isinstance(parsed, dict) else None
        self.named: dict[str, Any] = dict(named) if isinstance(named, dict) else {}
        self.consts: dict[str, Any] = {}
        self.functions: list[list[str]] = []
        self.by_name: dict[str, str] = {}  # named type -> its function
        self.active: set[str] = set()  # named types being generated (recursion check)
        self.counter = 0
        self.refs: dict[str, int] = {}  # named type -> references to it by name
        _count_refs(parsed, self.refs, 0)

    def build(self) -> str:
        root = self._resolve(self.root)
        if isinstance(root, dict) and root.get("type") in ("record", "error"):
            name = root.get("name")
            if not isinstance(name, str):
                raise _Unsupported("record without a name")
            self.active.add(name)
            self.root_record = root
            self.by_name[name] = self._record_function(root, 0)  # the first: _r0
            self.active.discard(name)
        else:
            self._function(self.root, 0)
        return "\n".join("\n".join(lines) for lines in self.functions) + "\n"

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _const(self, value: Any) -> str:
        name = self._fresh("_c")
        self.consts[name] = value
        return name

    def _function(self, schema: Any, depth: int) -> str:
        """Generate ``def _rN(b, p)`` returning ``(value, p)``; its name."""
        name = f"_r{len(self.functions)}"
        lines: list[str] = []
        self.functions.append(lines)
        lines.append(f"def {name}(b, p):")
        body: list[str] = []
        self._emit(schema, "v", body, 0, depth)
        body.append("return v, p")
        lines.extend("    " + line for line in _with_length(body))
        return name

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVE:
            found = self.named.get(schema)
            if found is None:
                raise _Unsupported(schema)
            return found
        return schema

    def _emit(self, schema: Any, out: str, lines: list[str], nest: int, depth: int) -> None:
        """Append code that reads ``schema`` into the local ``out`` and advances ``p``."""
        if depth > _MAX_DEPTH:
            raise _Unsupported("too deep")
        schema = self._resolve(schema)
        if isinstance(schema, list):
            self._union(schema, out, lines, nest, depth)
            return
        kind = schema if isinstance(schema, str) else schema.get("type")
        if isinstance(kind, (list, dict)):  # {"type": [...]} or {"type": {...}}
            self._emit(kind, out, lines, nest, depth + 1)
            return
        if not isinstance(kind, str):
            raise _Unsupported(repr(kind))
        if kind not in _PRIMITIVE and kind not in ("record", "error", "enum", "fixed",
                                                    "array", "map"):  # fmt: skip
            self._emit(kind, out, lines, nest, depth + 1)  # {"type": "ns.Name"}
            return
        if kind in ("record", "error"):
            self._record_call(schema, out, lines, nest, depth)
        elif kind in _PRIMITIVE:
            self._primitive(kind, out, lines)
        elif kind == "enum":
            self._enum(schema, out, lines)
        elif kind == "fixed":
            self._fixed(schema, out, lines)
        else:
            self._container(kind, schema, out, lines, nest, depth)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if logical:
            fn = LOGICAL_READERS.get(f"{kind}-{logical}")
            if fn is not None:
                lines.append(f"{out} = {self._const(fn)}({out}, {self._const(schema)}, None)")

    # ------------------------------------------------------------------ leaves

    def _raw(self, out: str, lines: list[str]) -> None:
        """Read a varint, not zigzag-decoded, into ``out`` (its loop inline: no call)."""
        shift, c = self._fresh("s"), self._fresh("c")
        lines.append(f"{out} = b[p]; p += 1")
        lines.append(f"if {out} & 128:")
        lines.append(f"    {out} &= 127; {shift} = 7")
        lines.append("    while True:")
        lines.append(f"        {c} = b[p]; p += 1; {out} |= ({c} & 127) << {shift}")
        lines.append(f"        if {c} < 128: break")
        lines.append(f"        {shift} += 7")
        lines.append(f"        if {shift} > 63: raise _bad('varint longer than 10 bytes')")
        lines.append(f"    if {out} >> 64: raise _bad('varint larger than 64 bits')")

    def _long(self, out: str, lines: list[str]) -> None:
        self._raw(out, lines)
        lines.append(f"{out} = ({out} >> 1) ^ -({out} & 1)")

    def _span(self, raw: str, lines: list[str]) -> str:
        """The end of ``raw`` (a length before zigzag) bytes from ``p``, checked."""
        end = self._fresh("e")
        lines.append(f"{end} = p + ({raw} >> 1)")  # an odd raw length is negative
        lines.append(f"if {raw} & 1 or {end} > L: raise _bad('length past the end')")
        return end

    def _primitive(self, kind: str, out: str, lines: list[str]) -> None:
        if kind == "null":
            lines.append(f"{out} = None")
        elif kind == "boolean":
            lines.append(f"{out} = b[p] != 0; p += 1")
        elif kind in ("int", "long"):
            self._long(out, lines)
        elif kind == "float":
            lines.append(f"{out} = _f32(b, p)[0]; p += 4")
        elif kind == "double":
            lines.append(f"{out} = _f64(b, p)[0]; p += 8")
        else:  # bytes, string
            n = self._fresh("n")
            self._raw(n, lines)
            end = self._span(n, lines)
            decode = ".decode()" if kind == "string" else ""
            lines.append(f"{out} = b[p:{end}]{decode}; p = {end}")

    def _enum(self, schema: dict[str, Any], out: str, lines: list[str]) -> None:
        symbols = schema.get("symbols")
        if not isinstance(symbols, list) or not symbols:
            raise _Unsupported("enum")
        table = self._const(tuple(symbols))
        self._long(out, lines)
        lines.append(f"if not 0 <= {out} < {len(symbols)}: raise _bad('enum index')")
        lines.append(f"{out} = {table}[{out}]")

    def _fixed(self, schema: dict[str, Any], out: str, lines: list[str]) -> None:
        size = schema.get("size")
        if type(size) is not int or size < 0:
            raise _Unsupported("fixed")
        end = self._fresh("e")
        lines.append(f"{end} = p + {size}")
        lines.append(f"if {end} > L: raise _bad('fixed past the end')")
        lines.append(f"{out} = b[p:{end}]; p = {end}")

    # ------------------------------------------------------------------ composites

    def _record_call(
        self, schema: dict[str, Any], out: str, lines: list[str], nest: int, depth: int
    ) -> None:
        name = schema.get("name")
        if not isinstance(name, str):
            raise _Unsupported("record without a name")
        fn = self.by_name.get(name)
        if fn is None and self.refs.get(name, 0) == 0 and name not in self.active:
            # defined here and never referenced by name: read in place, no call
            self.active.add(name)
            drop, self.drop_next = self.drop_next, frozenset()
            lines.append(f"{out} = " + self._fields(schema, lines, nest, depth + 1, drop))
            self.active.discard(name)
            return
        if fn is None:
            if name in self.active:
                raise _Unsupported("recursive type")
            self.active.add(name)
            fn = self._record_function(schema, depth + 1)
            self.active.discard(name)
            self.by_name[name] = fn
        lines.append(f"{out}, p = {fn}(b, p)")

    def _record_function(self, schema: dict[str, Any], depth: int) -> str:
        name = f"_r{len(self.functions)}"
        head: list[str] = [f"def {name}(b, p):"]
        self.functions.append(head)
        body: list[str] = []
        body.append("return " + self._fields(schema, body, 0, depth) + ", p")
        head.extend("    " + line for line in _with_length(body))
        return name

    def _fields(self, schema: dict[str, Any], lines: list[str], nest: int, depth: int,
                drop: frozenset[str] = frozenset()) -> str:  # fmt: skip
        """Append the code reading a record's fields; the dict display that holds them.
        Fields named in ``drop`` are stepped over and left out."""
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise _Unsupported("record fields")
        items = []
        for field in fields:
            fname = field.get("name") if isinstance(field, dict) else None
            if type(fname) is not str:
                raise _Unsupported("field name")
            var = self._fresh("f")
            if fname in drop:
                self._skip(field.get("type"), var, lines, nest, depth + 1)
                continue
            if fname == "source" and schema is self.root_record:
                self.drop_next = self.drop_source  # the envelope's source, if read in place
            self._emit(field.get("type"), var, lines, nest, depth + 1)
            self.drop_next = frozenset()
            items.append(f"{fname!r}: {var}")
        return "{" + ", ".join(items) + "}"

    def _skip(self, schema: Any, out: str, lines: list[str], nest: int, depth: int) -> None:
        """Step over a datum of ``schema``: strings and bytes (also as union branches) by
        their checked length only; anything else is read into ``out`` and left unused."""
        schema = self._resolve(schema)
        if schema in ("string", "bytes") or (
                isinstance(schema, dict) and schema.get("type") in ("string", "bytes")
                and not schema.get("logicalType")):
            n = self._fresh("n")
            self._raw(n, lines)
            lines.append(f"p = {self._span(n, lines)}")
        elif isinstance(schema, list) and 0 < len(schema) <= 63:
            idx = self._fresh("u")
            lines.append(f"{idx} = b[p]; p += 1")
            for i, branch in enumerate(schema):
                lines.append(f"{'if' if i == 0 else 'elif'} {idx} == {2 * i}:")
                inner: list[str] = ["pass"]
                self._skip(branch, out, inner, nest + 1, depth + 1)
                lines.extend("    " + line for line in inner)
            lines.append("else:")
            lines.append("    raise _bad('union index out of range')")
        else:
            self._emit(schema, out, lines, nest, depth)

    def _union(self, branches: list[Any], out: str, lines: list[str], nest: int,
               depth: int) -> None:  # fmt: skip
        if not branches or len(branches) > 63:
            raise _Unsupported("union size")
        idx = self._fresh("u")
        lines.append(f"{idx} = b[p]; p += 1")
        for i, branch in enumerate(branches):
            lines.append(f"{'if' if i == 0 else 'elif'} {idx} == {2 * i}:")
            inner: list[str] = []
            self._nested(branch, out, inner, nest, depth)
            lines.extend("    " + line for line in inner)
        lines.append("else:")
        lines.append("    raise _bad('union index out of range')")

    def _nested(self, schema: Any, out: str, lines: list[str], nest: int, depth: int) -> None:
        """Read ``schema`` one level further in: in place, or through its own function
        when the generated code would nest too deeply for Python's compiler."""
        if nest + 1 >= _SPLIT:
            fn = self._function(schema, depth + 1)
            lines.append(f"{out}, p = {fn}(b, p)")
        else:
            self._emit(schema, out, lines, nest + 1, depth + 1)

    def _container(self, kind: str, schema: dict[str, Any], out: str, lines: list[str],
                   nest: int, depth: int) -> None:  # fmt: skip
        inner_schema = schema.get("items" if kind == "array" else "values")
        n, item, total = self._fresh("n"), self._fresh("i"), self._fresh("t")
        lines.append(f"{out} = {'[]' if kind == 'array' else '{}'}; {total} = 0")
        lines.append("while True:")
        loop: list[str] = []
        self._long(n, loop)
        loop.append(f"if {n} == 0: break")
        loop.append(f"if {n} < 0:")
        loop.append(f"    {n} = -{n}")
        skip = self._fresh("s")
        block: list[str] = []
        self._long(skip, block)  # the block's byte size: not needed to read it
        loop.extend("    " + line for line in block)
        if _may_be_empty(self, inner_schema, set()):
            loop.append(f"{total} += {n}")
            loop.append(f"if {total} > {_MAX_EMPTY_ITEMS}: raise _bad('too many items')")
        else:  # each item takes a byte at least
            loop.append(f"if {n} > L - p: raise _bad('more items than bytes')")
        loop.append(f"for _ in range({n}):")
        body: list[str] = []
        if kind == "map":
            key = self._fresh("k")
            self._primitive("string", key, body)
        self._nested(inner_schema, item, body, nest + 1, depth)
        body.append(f"{out}.append({item})" if kind == "array" else f"{out}[{key}] = {item}")
        loop.extend("    " + line for line in body)
        lines.extend("    " + line for line in loop)


def _count_refs(schema: Any, refs: dict[str, int], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Unsupported("too deep")
    if isinstance(schema, str):
        refs[schema] = refs.get(schema, 0) + 1
    elif isinstance(schema, list):
        for branch in schema:
            _count_refs(branch, refs, depth + 1)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, (list, dict)) or kind not in _KINDS:
            _count_refs(kind, refs, depth + 1)
        for field in schema.get("fields") or ():
            _count_refs(field.get("type") if isinstance(field, dict) else None, refs, depth + 1)
        for key in ("items", "values"):
            if key in schema:
                _count_refs(schema[key], refs, depth + 1)


def _with_length(body: list[str]) -> list[str]:
    """``body`` preceded by ``L = len(b)`` if it compares against the length."""
    if any(_USES_L.search(line) for line in body):
        return ["L = len(b)", *body]
    return body


def _may_be_empty(gen: _Gen, schema: Any, seen: set[str]) -> bool:
    """Whether a datum of ``schema`` can take no bytes at all."""
    if isinstance(schema, str) and schema not in _PRIMITIVE:
        if schema in seen:
            return False
        seen.add(schema)
    schema = gen._resolve(schema)
    if isinstance(schema, list):
        return False  # the branch index takes a byte
    kind = schema if isinstance(schema, str) else schema.get("type")
    if isinstance(kind, (list, dict)) or (isinstance(kind, str) and kind not in _PRIMITIVE
                                          and kind not in ("record", "error", "enum", "fixed",
                                                           "array", "map")):  # fmt: skip
        return _may_be_empty(gen, kind, seen)
    if kind == "null":
        return True
    if kind in ("record", "error"):
        return all(_may_be_empty(gen, f.get("type"), seen) for f in schema.get("fields") or [])
    if kind == "fixed":
        return bool(schema.get("size") == 0)
    return False  # every other type takes at least one byte
