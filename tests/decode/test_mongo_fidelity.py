"""Issue 17, MongoDB decode fidelity: key texts, DBRef, `$`-key documents, int64, and the
rendering of every BSON type inside jsonb. pymongo's ``bson.json_util`` is the oracle: it
renders the events exactly as Debezium's connector does (relaxed, canonical, legacy)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from bson import DBRef, Decimal128, Int64, json_util
from bson import ObjectId as BsonObjectId
from bson.json_util import JSONMode
from hypothesis import given, settings
from hypothesis import strategies as st

from sink.decode import extjson
from sink.decode.extjson import canonical_key_text
from tests.decode.support import OID, dumps, mkey, mongo_event, record
from tests.decode.test_extjson import _MODES, _bson, _ids, _options, _ours, _same

# --------------------------------------------------------------------------- item 5: _id


def _renderings(_id: Any) -> list[str]:
    """Every key string Debezium can write for one _id (1.4+ modes and the pre-1.4 spacing)."""
    out = [json_util.dumps(_id, json_options=_options(mode)) for mode in _MODES.values()]
    legacy = json.loads(json_util.dumps(_id, json_options=_options(JSONMode.LEGACY)))
    out.append(json.dumps(legacy, separators=(" , ", " : ")))
    return out


def _key_text(_id: Any) -> str:
    texts = {record(mongo_event("d"), mkey(r)).key["_id"] for r in _renderings(_id)}
    assert len(texts) == 1, (_id, texts)
    return texts.pop()


# Pairs that were one row before issue 17: an ObjectId and the string of its hex, an
# int64 and the string of its canonical text, and the JSON literals.
_LOOKALIKES: list[Any] = [
    BsonObjectId(OID), OID, OID.upper(), f'"{OID}"',
    1005, Int64(1005), 1005.5, Decimal128("1005"), '{"$numberLong":"1005"}', "1005",
    '{"$numberDouble":"1005.5"}', '{"$numberDecimal":"1005"}',
    True, "true", False, "false", None, "null", '"null"',
    {"a": 1}, '{"a":{"$numberLong":"1"}}', '{"a": 1}', "[1]", "", " ", "abc", '"abc"',
    {"a": "x"}, {"a": BsonObjectId(OID)}, {"a": OID},
]  # fmt: skip


def test_distinct_ids_get_distinct_key_texts() -> None:
    texts = [_key_text(i) for i in _LOOKALIKES]
    # 1005 and Int64(1005) are one _id to MongoDB (numbers compare by value): one text.
    assert texts[4] == texts[5] == '{"$numberLong":"1005"}'
    unique = {t for i, t in enumerate(texts) if i != 5}
    assert len(unique) == len(_LOOKALIKES) - 1, texts


def test_key_texts_of_existing_tables_are_unchanged() -> None:
    assert _key_text(BsonObjectId(OID)) == OID  # 24 hex digits, as ever
    assert _key_text("abc") == "abc" and _key_text(OID.upper()) == OID.upper()
    assert _key_text(1005) == '{"$numberLong":"1005"}'
    assert _key_text({"a": 1}) == '{"a":{"$numberLong":"1"}}'
    # A string that reads like another type's text gets its JSON literal.
    assert _key_text(OID) == f'"{OID}"'
    assert _key_text('{"$numberLong":"1005"}') == '"{\\"$numberLong\\":\\"1005\\"}"'
    assert _key_text("true") == '"true"' and _key_text('"abc"') == '"\\"abc\\""'


def _norm(v: Any) -> Any:
    """What makes two _ids one document to MongoDB, for the types of the strategy (numbers
    by value across int32/int64/double; Decimal128 by its text, as the key does)."""
    if isinstance(v, BsonObjectId):
        return ("oid", str(v))
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, bool) or v is None:
        return ("lit", v)
    if isinstance(v, int | float) and float(v).is_integer() and -(2**63) <= v < 2**63:
        return ("num", int(v))
    if isinstance(v, float):
        return ("num", v)
    if isinstance(v, dict):
        return ("doc", tuple((k, _norm(x)) for k, x in v.items()))
    return ("other", json_util.dumps(v, json_options=_options(JSONMode.CANONICAL)))


def _text_of(v: Any) -> str:
    return canonical_key_text(extjson.loads(json_util.dumps(_bson(v), json_options=_options(
        JSONMode.CANONICAL))))


# Strings built to collide: the key text of another _id, used as a string _id.
_hostile_ids = st.one_of(_ids, _ids.map(_text_of), st.sampled_from(_LOOKALIKES[:12]))


@settings(max_examples=400, deadline=None)
@given(a=_hostile_ids, b=_hostile_ids)
def test_key_texts_are_equal_exactly_when_the_ids_are(a: Any, b: Any) -> None:
    a, b = _bson(a), _bson(b)
    ta = canonical_key_text(extjson.loads(json_util.dumps(a, json_options=_options(
        JSONMode.RELAXED))))
    tb = canonical_key_text(extjson.loads(json_util.dumps(b, json_options=_options(
        JSONMode.CANONICAL))))
    if isinstance(a, float) and a != a:
        return  # NaN: equal to itself as an _id, not as a Python value
    assert (ta == tb) == (_norm(a) == _norm(b)), (a, b, ta, tb)


def test_flattened_ids_keep_hex_strings_as_object_ids() -> None:
    """ExtractNewDocumentState writes an ObjectId as its hex string: it cannot be told from a
    string there, so 24 hex digits stay bare (an ObjectId's text); other look-alikes are
    still quoted, and agree with the envelope's texts."""
    def flat(_id: Any) -> str:
        row = {"_id": _id, "x": 1, "__db": "shop", "__collection": "users"}
        return str(record(dumps(row), dumps({"id": _id})).key["_id"])

    assert flat(OID) == OID == _key_text(BsonObjectId(OID))
    assert flat(1005) == _key_text(1005)
    assert flat('{"$numberLong":"1005"}') == _key_text('{"$numberLong":"1005"}') != flat(1005)
    assert flat("true") == _key_text("true") != _key_text(True)
    assert flat("abc") == "abc"


# --------------------------------------------------------------------------- item 4: DBRef

_DBREF_IDS: list[Any] = [BsonObjectId(OID), 5, Int64(2**40), "x", {"a": 1}, 1.5,
                         uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db")]


@pytest.mark.parametrize("mode", list(_MODES))
@pytest.mark.parametrize("db", [None, "other"])
def test_dbref_stays_a_dbref_for_every_id_type(mode: str, db: str | None) -> None:
    for ref_id in _DBREF_IDS:
        text = json_util.dumps({"r": DBRef("c", ref_id, db)}, json_options=_options(_MODES[mode]))
        got = extjson.loads(text)["r"]
        expected = _ours(json_util.loads(text, json_options=_options(_MODES[mode]))["r"].as_doc())
        assert list(got) == ["$ref", "$id"] + (["$db"] if db else []), (text, got)
        _same(got, expected)
        assert "$dbPointer" not in json.dumps(got, default=str)


# --------------------------------------------------------------------------- item 10: $ keys

_USER_DOLLAR_DOCS = [
    {"$date": "x"}, {"$oid": "zzz"}, {"$code": "f()", "lang": "js"}, {"$numberLong": "1.5"},
    {"$binary": "!!", "$type": "00"}, {"$date": "2020-01-01", "tz": "UTC"},
    {"$oid": OID, "name": "x"}, {"$regularExpression": "^a"}, {"$minKey": 0},
    {"$uuid": 5}, {"$timestamp": {"t": -1}}, {"$undefined": "yes"},
]


@pytest.mark.parametrize("doc", _USER_DOLLAR_DOCS, ids=lambda d: json.dumps(d))
def test_dollar_documents_that_are_no_wrapper_are_data(doc: dict[str, Any]) -> None:
    after = json.dumps({"_id": {"$oid": OID}, "f": doc, "arr": [doc, {"in": doc}]})
    rec = record(mongo_event("c", after=after), mkey(json.dumps({"$oid": OID})))
    assert rec.values == {"_id": OID, "f": doc, "arr": [doc, {"in": doc}]}
    patch = record(mongo_event("u", updateDescription={"updatedFields": json.dumps(
        {"f": doc, "g.h": doc})}), mkey(json.dumps({"$oid": OID})))
    assert patch.patch is not None and patch.patch.set == {("f",): doc, ("g", "h"): doc}
