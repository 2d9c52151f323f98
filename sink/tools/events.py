"""Debezium MongoDB change events as the connector writes them (3.x, change streams,
JsonConverter), for the demo, the tests and the load generator.

Documents are given as Python values; `to_extjson` renders them the way Debezium's
writer does (STRICT for ``after``, RELAXED for ``updatedFields`` and keys).
"""

from __future__ import annotations

import base64
import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson


class Oid(str):
    """An ObjectId given as 24 hex digits."""


def to_extjson(value: Any, *, relaxed: bool = False) -> Any:
    if isinstance(value, Oid):
        return {"$oid": str(value)}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not relaxed and not -(2**31) <= value < 2**31:
            return {"$numberLong": str(value)}
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        return {"$numberDecimal": str(value)}
    if isinstance(value, datetime):
        ms = int(value.timestamp() * 1000)
        if relaxed:
            return {"$date": value.astimezone(UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z")}
        return {"$date": ms}
    if isinstance(value, uuid.UUID):
        b64 = base64.b64encode(value.bytes).decode()
        return ({"$binary": {"base64": b64, "subType": "04"}} if relaxed
                else {"$binary": b64, "$type": "04"})
    if isinstance(value, bytes):
        b64 = base64.b64encode(value).decode()
        return ({"$binary": {"base64": b64, "subType": "00"}} if relaxed
                else {"$binary": b64, "$type": "00"})
    if isinstance(value, dict):
        return {k: to_extjson(v, relaxed=relaxed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_extjson(v, relaxed=relaxed) for v in value]
    raise TypeError(f"no extended JSON for {type(value).__name__}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class MongoEvents:
    """Builds key/value bytes for one collection; positions increase with every event."""

    def __init__(self, db: str, collection: str, *, prefix: str = "mongo",
                 schemas: bool = False, start_ms: int = 1_700_000_000_000) -> None:
        self.db, self.collection, self.prefix = db, collection, prefix
        self.topic = f"{prefix}.{db}.{collection}"
        self.schemas = schemas
        self._clock = itertools.count()
        self._start_ms = start_ms

    def key(self, _id: Any) -> bytes:
        payload = {"id": _dumps(to_extjson(_id, relaxed=True))}
        if self.schemas:
            schema = {"type": "struct", "name": f"{self.topic}.Key", "optional": False,
                      "fields": [{"field": "id", "type": "string", "optional": False}]}
            return orjson.dumps({"schema": schema, "payload": payload})
        return orjson.dumps(payload)

    def _source(self) -> dict[str, Any]:
        tick = next(self._clock)
        ts = self._start_ms + (tick // 4) * 1000  # clusterTime seconds, like Debezium < 3.4
        return {"version": "3.0.0.Final", "connector": "mongodb", "name": self.prefix,
                "ts_ms": ts, "snapshot": "false", "db": self.db, "sequence": None,
                "collection": self.collection, "ord": tick % 4 + 1, "lsid": None,
                "txnNumber": None, "wallTime": ts}

    def _value(self, op: str, *, after: Any = None, update: Any = None) -> bytes:
        source = self._source()
        payload = {"before": None, "after": after, "updateDescription": update,
                   "source": source, "op": op, "ts_ms": source["ts_ms"] + 7,
                   "transaction": None}
        if self.schemas:
            return orjson.dumps({"schema": _ENVELOPE_SCHEMA, "payload": payload})
        return orjson.dumps(payload)

    def insert(self, doc: dict[str, Any], *, op: str = "c") -> tuple[bytes, bytes]:
        return self.key(doc["_id"]), self._value(op, after=_dumps(to_extjson(doc)))

    def replace(self, doc: dict[str, Any]) -> tuple[bytes, bytes]:
        return self.key(doc["_id"]), self._value("u", after=_dumps(to_extjson(doc)))

    def update(self, _id: Any, set_: dict[str, Any], unset: list[str] | None = None,
               *, full: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
        desc = {"removedFields": unset or None,
                "updatedFields": _dumps(to_extjson(set_, relaxed=True)),
                "truncatedArrays": None}
        after = _dumps(to_extjson(full)) if full is not None else None
        return self.key(_id), self._value("u", after=after, update=desc)

    def delete(self, _id: Any) -> tuple[bytes, bytes]:
        return self.key(_id), self._value("d")

    def tombstone(self, _id: Any) -> tuple[bytes, None]:
        return self.key(_id), None


_JSON = {"type": "string", "optional": True, "name": "io.debezium.data.Json", "version": 1}
_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "struct", "optional": False, "name": "mongo.Envelope",
    "fields": [
        {**_JSON, "field": "before"}, {**_JSON, "field": "after"},
        {"field": "updateDescription", "type": "struct", "optional": True,
         "name": "io.debezium.connector.mongodb.changestream.updatedescription",
         "fields": [
             {"field": "removedFields", "type": "array", "optional": True,
              "items": {"type": "string", "optional": False}},
             {**_JSON, "field": "updatedFields"},
             {"field": "truncatedArrays", "type": "array", "optional": True,
              "items": {"type": "struct", "optional": False, "fields": [
                  {"field": "field", "type": "string", "optional": False},
                  {"field": "size", "type": "int32", "optional": False}]}}]},
        {"field": "source", "type": "struct", "optional": False,
         "name": "io.debezium.connector.mongo.Source", "fields": [
             {"field": "version", "type": "string", "optional": False},
             {"field": "connector", "type": "string", "optional": False},
             {"field": "name", "type": "string", "optional": False},
             {"field": "ts_ms", "type": "int64", "optional": False},
             {"field": "snapshot", "type": "string", "optional": True},
             {"field": "db", "type": "string", "optional": False},
             {"field": "sequence", "type": "string", "optional": True},
             {"field": "collection", "type": "string", "optional": False},
             {"field": "ord", "type": "int32", "optional": False},
             {"field": "lsid", "type": "string", "optional": True},
             {"field": "txnNumber", "type": "int64", "optional": True},
             {"field": "wallTime", "type": "int64", "optional": True}]},
        {"field": "op", "type": "string", "optional": True},
        {"field": "ts_ms", "type": "int64", "optional": True},
        {"field": "transaction", "type": "struct", "optional": True, "name": "event.block",
         "fields": [{"field": "id", "type": "string", "optional": False},
                    {"field": "total_order", "type": "int64", "optional": False},
                    {"field": "data_collection_order", "type": "int64", "optional": False}]},
    ],
}
