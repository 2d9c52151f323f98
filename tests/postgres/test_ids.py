"""`sink.postgres.ids` on the canonical key texts the decoder really makes: which column
type a first ``_id`` gives a new table, what each text becomes in a bigint or uuid column,
and the BSON type a dead letter names. Pure: no server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sink.decode.extjson_key import canonical_key_text
from sink.postgres import ids
from sink.records import Binary, BsonUuid, Int64, ObjectId

U = uuid.UUID("8c1b6d0e-5f3a-4c3e-9d2a-1e0f7a6b5c4d")
OID = "596e275826f08b2730779e1f"

CASES: list[tuple[str, Any, str, str, Any, Any]] = [
    # (id, decoded _id, auto column type, BSON type, as bigint, as uuid)
    ("int32", 10000, "bigint", "integer", 10000, None),
    ("int64 max", Int64(2**63 - 1), "bigint", "integer", 2**63 - 1, None),
    ("int64 min", Int64(-(2**63)), "bigint", "integer", -(2**63), None),
    ("integral double", 7.0, "bigint", "integer", 7, None),
    ("beyond int64", 2**64, "text", "integer", None, None),
    ("fractional double", 2.5, "text", "double", None, None),
    ("huge double", 1e300, "text", "double", None, None),
    ("decimal", Decimal("3"), "text", "decimal", None, None),
    ("uuid", BsonUuid(bytes=U.bytes), "uuid", "uuid", None, U),
    ("legacy uuid", Binary(U.bytes, 3), "text", "binary", None, None),
    ("short subtype 4", Binary(b"abc", 4), "text", "binary", None, None),
    ("objectId", ObjectId(OID), "text", "objectId", None, None),
    ("oid-like string", OID, "text", "string", None, None),
    ("long-like string", '{"$numberLong":"5"}', "text", "string", None, None),
    ("digits string", "10", "text", "string", None, None),
    ("date", datetime(2024, 1, 1, tzinfo=UTC), "text", "date", None, None),
    ("document", {"a": 1}, "text", "object", None, None),
    ("array", [1], "text", "array", None, None),
    ("bool", True, "text", "bool", None, None),
]


@pytest.mark.parametrize(("value", "column", "bson", "as_bigint", "as_uuid"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_key_texts(value: Any, column: str, bson: str, as_bigint: Any, as_uuid: Any) -> None:
    text = canonical_key_text(value)
    assert ids.is_id(text)
    assert ids.column_type(text, "auto") == column
    assert ids.column_type(text, "text") == "text"
    assert ids.bson_type(text) == bson
    for col in ("bigint", "integer", "numeric(20,0)"):
        convert = ids.converter(col)
        assert convert is not None and convert(text) == as_bigint
    to_uuid = ids.converter("uuid")
    assert to_uuid is not None and to_uuid(text) == as_uuid


def test_text_columns_hold_every_id_as_it_is() -> None:
    assert [ids.converter(c) for c in ("text", "character varying(255)", "jsonb")] == [
        None, None, None]
    assert not ids.is_id("plain text from a relational key")


def test_the_mismatch_names_table_column_type_and_bson_type() -> None:
    err = ids.mismatch("shop.orders", "_id", "bigint", canonical_key_text(ObjectId(OID)))
    assert err.code == "id_type_mismatch"
    assert "BSON type objectId" in err.message and "shop.orders's bigint column _id" in \
        err.message and OID not in err.message
