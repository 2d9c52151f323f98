"""Kafka Connect schemas, as JsonConverter JSON or as the Avro a registry derived from them.

JsonConverter: ``{"type": "int64", "name": "io.debezium.time.MicroTimestamp",
"parameters": {..}, "fields": [{"field": ..}]}``. Avro (Confluent/Apicurio converters):
``{"type": "long", "connect.name": "io.debezium.time.MicroTimestamp",
"connect.parameters": {..}}``, records with ``"fields": [{"name", "type"}]``,
``["null", T]`` unions, named references, Avro ``logicalType``s. :class:`SchemaNode`
hides the difference, so a lookup by field name works for both. Build it once per
registry schema id (:func:`schema_node`) and pass it instead of the raw schema to skip
re-reading; nodes read their fields lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sink.decode.common import fail, show

__all__ = ["SchemaNode", "schema_node"]

_KINDS = {
    "int8": "int", "int16": "int", "int32": "int", "int64": "int", "int": "int", "long": "int",
    "float32": "float", "float64": "float", "float": "float", "double": "float",
    "boolean": "bool", "string": "string", "enum": "string", "bytes": "bytes", "fixed": "bytes",
    "struct": "struct", "record": "struct", "array": "array", "map": "map", "null": "null",
}  # fmt: skip
_AVRO_LOGICAL = {
    "decimal": "org.apache.kafka.connect.data.Decimal",
    "date": "org.apache.kafka.connect.data.Date",
    "time-millis": "org.apache.kafka.connect.data.Time",
    "time-micros": "io.debezium.time.MicroTime",
    "timestamp-millis": "org.apache.kafka.connect.data.Timestamp",
    "timestamp-micros": "io.debezium.time.MicroTimestamp",
    "uuid": "io.debezium.data.Uuid",
}


class SchemaNode:
    """One node of a Connect (or Avro) schema: its kind, logical name and parameters."""

    __slots__ = ("_fields", "_names", "_raw", "kind", "name", "params")

    def __init__(self, raw: Any, names: dict[str, Any]) -> None:
        self._names = names
        self._fields: dict[str, SchemaNode] | None = None
        for _ in range(8):  # resolve unions, named references and nested {"type": {..}}
            if isinstance(raw, list):
                raw = next((b for b in raw if b != "null" and b != {"type": "null"}), "null")
            elif isinstance(raw, str):
                raw = names.get(raw, {"type": raw})
            elif isinstance(raw, dict) and isinstance(raw.get("type"), list | dict):
                raw = raw["type"]
            elif isinstance(raw, dict) and raw.get("type") in names and "fields" not in raw:
                raw = names[raw["type"]]
            else:
                break
        self._raw: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        r = self._raw
        t = r.get("type")
        self.kind: str = _KINDS.get(t.lower(), "any") if isinstance(t, str) else "any"
        params = r.get("parameters") or r.get("connect.parameters") or {}
        self.params: Mapping[str, Any] = params if isinstance(params, dict) else {}
        name = r.get("connect.name")
        if name is None and isinstance(r.get("logicalType"), str):
            name = _AVRO_LOGICAL.get(r["logicalType"])
            if "scale" in r and "scale" not in self.params:
                self.params = {**self.params, "scale": r["scale"]}
        if name is None and t not in ("record", "enum", "fixed"):
            name = r.get("name")
        self.name: str | None = name if isinstance(name, str) else None

    @property
    def type_name(self) -> str | None:
        """The Connect type (``int16``...; Avro: its ``connect.type``, else the Avro type)."""
        t = self._raw.get("connect.type") or self._raw.get("type")
        return t if isinstance(t, str) else None

    @property
    def full_name(self) -> str | None:
        """The schema's name: Connect ``name``, Avro ``connect.name`` or namespace.name."""
        r = self._raw
        name = r.get("connect.name") or r.get("name")
        if isinstance(name, str) and "." not in name and isinstance(r.get("namespace"), str):
            return f"{r['namespace']}.{name}"
        return name if isinstance(name, str) else None

    def field(self, name: str) -> SchemaNode | None:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._read_fields()
        return fields.get(name)

    def _read_fields(self) -> dict[str, SchemaNode]:
        out: dict[str, SchemaNode] = {}
        raw_fields = self._raw.get("fields")
        if not isinstance(raw_fields, list):
            return out
        for f in raw_fields:
            if not isinstance(f, dict):
                continue
            if isinstance(f.get("field"), str):  # Connect JSON: the field node is the schema
                out[f["field"]] = SchemaNode(f, self._names)
            elif isinstance(f.get("name"), str):  # Avro: {"name", "type"}
                out[f["name"]] = SchemaNode(f.get("type"), self._names)
        return out

    def child(self, key: str) -> SchemaNode | None:
        sub = self._raw.get(key)
        return None if sub is None else SchemaNode(sub, self._names)

    @property
    def scale(self) -> int:
        s = self.params.get("scale", 0)
        try:
            n = int(s)
        except (TypeError, ValueError):
            raise fail(
                "bad_value", f"Decimal scale parameter is not an integer: {show(s)}"
            ) from None
        if not -10000 <= n <= 10000:
            raise fail("bad_value", f"Decimal scale {n} out of range")
        return n


def schema_node(raw: Any) -> SchemaNode | None:
    """Wrap a raw schema (Connect JSON or Avro) — or return an existing node unchanged."""
    if raw is None or isinstance(raw, SchemaNode):
        return raw
    names: dict[str, Any] = {}
    if isinstance(raw, dict) and raw.get("type") == "record":
        _collect_avro_names(raw, None, names, 0)
    return SchemaNode(raw, names)


def _collect_avro_names(raw: Any, ns: str | None, names: dict[str, Any], depth: int) -> None:
    if depth > 64:
        return
    if isinstance(raw, list):
        for branch in raw:
            _collect_avro_names(branch, ns, names, depth + 1)
        return
    if not isinstance(raw, dict):
        return
    t = raw.get("type")
    if t in ("record", "enum", "fixed") and isinstance(raw.get("name"), str):
        name = raw["name"]
        ns = raw["namespace"] if isinstance(raw.get("namespace"), str) else ns
        if "." in name:
            ns = name.rsplit(".", 1)[0]
        names[name if "." in name or not ns else f"{ns}.{name}"] = raw
        names.setdefault(name.rsplit(".", 1)[-1], raw)
    for f in raw.get("fields") or ():
        if isinstance(f, dict):
            _collect_avro_names(f.get("type"), ns, names, depth + 1)
    for key in ("items", "values"):
        _collect_avro_names(raw.get(key), ns, names, depth + 1)
    if isinstance(t, dict | list):
        _collect_avro_names(t, ns, names, depth + 1)
