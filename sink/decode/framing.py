"""Kafka message bytes → ``Record`` / ``Skip``, whatever the converters on the Connect side.

Key and value formats are independent:

* ``json`` — JsonConverter, with or without the ``{"schema", "payload"}`` wrapper
  (detected per message; see :func:`sink.decode.envelope.decode_json`).
* ``avro`` — the Confluent wire format: magic byte ``0``, the 4-byte big-endian schema id,
  then Avro binary written with that (writer) schema. The schema comes from the
  :class:`~sink.decode.registry.SchemaRegistry` (cached by id) and the datum is read by
  the reader generated for that schema (:mod:`sink.decode.avro_reader`; fastavro's
  ``schemaless_reader`` for the schemas it does not handle); the envelope then goes through
  :func:`~sink.decode.envelope.decode_envelope` with the cached
  :class:`~sink.decode.schema.SchemaNode`.
* ``string`` (keys only) — StringConverter text. Connect renders a one-field key struct as
  ``Struct{id=<text>}``, which becomes ``{"id": "<text>"}``; any other text is taken as the
  id itself (``{"id": text}``).

A null or empty value is a tombstone (a delete for the key), in every format.

:meth:`MessageDecoder.decode_cached` is synchronous: it returns ``None`` when a schema id
the message needs is not cached yet, so a consumer loop can decode without an ``await``
per message and fall back to :meth:`MessageDecoder.decode` (which fetches) on a miss.
Both raise only :class:`~sink.errors.DecodeError` (permanent, per record) —
``decode`` also :class:`~sink.errors.TransientError` when the registry cannot be reached.
"""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader

from sink.decode.common import DecoderOptions, decode_guarded, fail, parse_message, unframe
from sink.decode.envelope import decode_envelope, decode_json
from sink.decode.registry import SchemaRegistry, WriterSchema
from sink.errors import ConfigError, DecodeError
from sink.records import Record, Skip

__all__ = ["KEY_FORMATS", "VALUE_FORMATS", "MessageDecoder", "schema_id"]

KEY_FORMATS = frozenset({"json", "avro", "string"})
VALUE_FORMATS = frozenset({"json", "avro"})
_MAGIC = 0
_HEADER = 5  # magic byte + int32 schema id
_STRUCT_TEXT = re.compile(r"Struct\{([A-Za-z_][A-Za-z0-9_]*)=(.*)\}", re.DOTALL)


def schema_id(data: bytes, what: str = "value") -> int:
    """The registry schema id of a Confluent-framed message (``DecodeError`` if not framed)."""
    if len(data) < _HEADER:
        if data and data[0] != _MAGIC:
            raise _bad_magic(data, what)
        raise fail("bad_avro", f"{what}: {len(data)} bytes, too short for the Confluent header")
    if data[0] != _MAGIC:
        raise _bad_magic(data, what)
    return int.from_bytes(data[1:_HEADER], "big", signed=True)


def _bad_magic(data: bytes, what: str) -> DecodeError:
    first = data[0]
    hint = ""
    if first in b"{[\"":
        hint = " (looks like JSON: is the format json?)"
    return fail("bad_magic_byte", f"{what}: first byte is 0x{first:02x}, not the Avro "
                                  f"magic byte 0x00{hint}")  # fmt: skip


class MessageDecoder:
    """Decodes Kafka messages in the configured key/value formats (see the module doc)."""

    __slots__ = ("_all_json", "_key_avro", "_value_avro", "key_format", "options", "registry",
                 "value_format")  # fmt: skip

    def __init__(
        self,
        options: DecoderOptions | None = None,
        key_format: str = "json",
        value_format: str = "json",
        registry: SchemaRegistry | None = None,
    ) -> None:
        if key_format not in KEY_FORMATS:
            raise ConfigError(f"key format must be one of {sorted(KEY_FORMATS)}, "
                              f"not {key_format!r}")  # fmt: skip
        if value_format not in VALUE_FORMATS:
            raise ConfigError(f"value format must be one of {sorted(VALUE_FORMATS)}, "
                              f"not {value_format!r}")  # fmt: skip
        self.options = options or DecoderOptions()
        self.key_format = key_format
        self.value_format = value_format
        self.registry = registry
        self._key_avro = key_format == "avro"
        self._value_avro = value_format == "avro"
        self._all_json = key_format == "json" and value_format == "json"
        if (self._key_avro or self._value_avro) and registry is None:
            raise ConfigError(
                "the avro format needs a schema registry (source.schema_registry_url)"
            )

    # ------------------------------------------------------------------ entry points

    def decode_cached(
        self, key: bytes | None, value: bytes | None, topic: str
    ) -> Record | Skip | None:
        """Decode without I/O; ``None`` when a schema the message needs is not cached."""
        if self._all_json:
            return decode_json(key, value, topic, self.options)
        key_ws = value_ws = None
        if key and self._key_avro:
            key_ws = self._cached(key, "key")
            if key_ws is None:
                return None
        if value and self._value_avro:
            value_ws = self._cached(value, "value")
            if value_ws is None:
                return None
        return self._decode(key, value, topic, key_ws, value_ws)

    async def decode(self, key: bytes | None, value: bytes | None, topic: str) -> Record | Skip:
        """Decode one message, fetching unknown schema ids from the registry."""
        out = self.decode_cached(key, value, topic)
        if out is not None:
            return out
        registry = self.registry
        assert registry is not None  # decode_cached returned None: an Avro id is missing
        key_ws = value_ws = None
        if key and self._key_avro:
            key_ws = await registry.get(schema_id(key, "key"))
        if value and self._value_avro:
            value_ws = await registry.get(schema_id(value, "value"))
        return self._decode(key, value, topic, key_ws, value_ws)

    def schema_ids(self, key: bytes | None, value: bytes | None) -> list[int]:
        """The registry ids a message refers to (raises DecodeError on a framing error)."""
        ids = []
        if key and self._key_avro:
            ids.append(schema_id(key, "key"))
        if value and self._value_avro:
            ids.append(schema_id(value, "value"))
        return ids

    # ------------------------------------------------------------------ internals

    def _cached(self, data: bytes, what: str) -> WriterSchema | None:
        registry = self.registry
        assert registry is not None
        try:
            return registry.cached(schema_id(data, what))
        except DecodeError as exc:
            if exc.code == "bad_schema" or exc.code.startswith("unsupported"):
                raise fail(exc.code, f"{what}: {exc}") from None
            raise

    def _decode(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        key_ws: WriterSchema | None,
        value_ws: WriterSchema | None,
    ) -> Record | Skip:
        return decode_guarded(self._decode_once, key, value, topic, key_ws, value_ws)

    def _decode_once(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        key_ws: WriterSchema | None,
        value_ws: WriterSchema | None,
        *,
        exact: bool,
    ) -> Record | Skip:
        key_payload: Any = None
        key_schema: Any = None
        if key:
            if key_ws is not None:
                key_payload, key_schema = _read_avro(key, key_ws, "key"), key_ws.node
            elif self.key_format == "string":
                key_payload = _string_key(key)
            else:
                try:
                    key_payload, key_schema = unframe(parse_message(key, exact))
                except DecodeError as exc:
                    code = "bad_key" if exc.code == "bad_json" else exc.code
                    raise fail(code, f"key: {exc}") from None
        if not value:
            return decode_envelope(key_payload, None, None, topic, self.options,
                                   key_schema=key_schema)  # fmt: skip
        if value_ws is not None:
            payload = _read_avro(value, value_ws, "value")
            return decode_envelope(key_payload, payload, value_ws.node, topic, self.options,
                                   key_schema=key_schema)  # fmt: skip
        if self._value_avro:  # pragma: no cover - decode()/decode_cached() always pass one
            raise fail("unknown_schema_id", "value schema not resolved")
        payload, value_schema = unframe(parse_message(value, exact))
        return decode_envelope(key_payload, payload, value_schema, topic, self.options,
                               key_schema=key_schema)  # fmt: skip


def _read_avro(data: bytes, ws: WriterSchema, what: str) -> Any:
    """The Avro datum after the 5-byte header, read with the writer schema."""
    reader = ws.reader
    try:
        if reader is not None:
            obj, end = reader(data, _HEADER)
        else:
            fo = BytesIO(data)
            fo.seek(_HEADER)
            obj = schemaless_reader(fo, ws.parsed, None)
            end = fo.tell()
    except RecursionError:
        raise fail("too_deep", f"{what}: Avro datum nested too deeply") from None
    except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, ValueError...
        detail = str(exc)[:120] or "unexpected end of data"
        raise fail("bad_avro", f"{what}: cannot read Avro with schema id {ws.schema_id}: "
                               f"{type(exc).__name__}: {detail}") from None  # fmt: skip
    if end != len(data):
        left = len(data) - end
        raise fail("bad_avro", f"{what}: {left} bytes left after the Avro datum "
                               f"(is schema id {ws.schema_id} the writer schema?)")  # fmt: skip
    return obj


def _string_key(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail("bad_key", f"key: not valid UTF-8 at byte {exc.start}") from None
    m = _STRUCT_TEXT.fullmatch(text)
    if m is not None:
        return {m.group(1): m.group(2)}
    return {"id": text}
