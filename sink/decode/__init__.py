"""Kafka bytes → :class:`~sink.records.Record` or :class:`~sink.records.Skip`.

The decoder is pure: a message's key and value bytes (and, for Avro, the writer schema a
:class:`SchemaRegistry` fetched) in, a record out, or a :class:`~sink.errors.DecodeError`
naming what is wrong with the record. The registry client is the one piece of I/O here.

Inside: ``framing`` (converter formats, the Confluent header), ``envelope`` (which
Debezium envelope a message is), ``mongo``, ``connect`` and ``flat`` (one envelope family
each), ``schema`` (Connect/Avro schemas as the decoder reads them), ``extjson`` and
``extjson_key`` (MongoDB extended JSON), ``docjson`` (a row image's sub-documents as jsonb
text), ``jsontext`` (JSON with exact numbers),
``common`` (options and helpers every envelope shares), ``registry`` (the HTTP client),
``avro_reader`` (an Avro reader generated per writer schema).
Other layers import from this module only.
"""

from sink.decode.common import DecoderOptions
from sink.decode.envelope import decode_envelope, decode_json
from sink.decode.framing import KEY_FORMATS, VALUE_FORMATS, MessageDecoder
from sink.decode.registry import SchemaRegistry, WriterSchema

__all__ = [
    "KEY_FORMATS",
    "VALUE_FORMATS",
    "DecoderOptions",
    "MessageDecoder",
    "SchemaRegistry",
    "WriterSchema",
    "decode_envelope",
    "decode_json",
]
