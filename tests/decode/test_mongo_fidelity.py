"""Issue 17, MongoDB decode fidelity: key texts, DBRef, `$`-key documents, int64, and the
rendering of every BSON type inside jsonb. pymongo's ``bson.json_util`` is the oracle: it
renders the events exactly as Debezium's connector does (relaxed, canonical, legacy)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Binary as BsonBinary
from bson import Code, DBRef, Decimal128, Int64, MaxKey, MinKey, Regex, Timestamp, json_util
from bson import ObjectId as BsonObjectId
from bson.binary import UuidRepresentation
from bson.datetime_ms import DatetimeMS
from bson.json_util import RELAXED_JSON_OPTIONS, JSONMode, JSONOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.decode import extjson
from sink.decode.extjson import canonical_key_text
from sink.postgres.types import natural_type, target_type, to_json_text
from sink.records import Int64 as Int64Marker
from tests.decode.support import OID, dumps, mkey, mongo_event, record
from tests.decode.test_extjson import (
    _MODES,
    _bson,
    _documents,
    _ids,
    _options,
    _ours,
    _same,
)

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
        oracle = json_util.loads(text, json_options=_options(_MODES[mode]))["r"].as_doc()
        expected = _ours(oracle, mode == "canonical")
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


# --------------------------------------------------------------------------- item 11: jsonb

_CANON = JSONOptions(json_mode=JSONMode.CANONICAL, uuid_representation=UuidRepresentation.STANDARD)


def _wrapper_of(v: Any) -> Any:
    return json.loads(json_util.dumps(v, json_options=_CANON))


def _documented(v: Any) -> Any:
    """The README's "inside jsonb" rendering of a BSON value (json_util's value types), built
    from json_util's own canonical/relaxed wrappers where the rendering is a wrapper."""
    if isinstance(v, DBRef):  # a document: $ref, $id (rendered as any value), $db
        return _documented(v.as_doc().to_dict())
    if isinstance(v, Code):
        out = {"$code": str(v)}
        return out if v.scope is None else {**out, "$scope": _documented(v.scope)}
    if isinstance(v, bool | str | None.__class__):
        return v
    if isinstance(v, int):  # int32 and Int64: JSON numbers, exact
        return int(v)
    if isinstance(v, float):
        return Decimal(repr(v)) if math.isfinite(v) else _wrapper_of(v)
    if isinstance(v, Decimal128):
        d = v.to_decimal()
        return d if d.is_finite() else _wrapper_of(v)
    if isinstance(v, datetime):
        if v.year >= 1970:  # json_util's relaxed text, where relaxed mode writes one
            return json.loads(json_util.dumps(v, json_options=RELAXED_JSON_OPTIONS))
        utc = v.astimezone(UTC).replace(tzinfo=None)
        return {"$date": utc.isoformat(timespec="milliseconds" if utc.microsecond else
                                       "seconds") + "Z"}
    if isinstance(v, BsonObjectId | BsonBinary | bytes | uuid.UUID | DatetimeMS | Timestamp
                  | MinKey | MaxKey):
        return _wrapper_of(v)
    if isinstance(v, Regex):
        return _wrapper_of(v)
    if isinstance(v, dict):
        return {k: _documented(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_documented(x) for x in v]
    raise AssertionError(f"unmapped type {type(v)}")


def _jsonb(value: Any) -> Any:
    return json.loads(to_json_text(value), parse_float=Decimal)


@pytest.mark.parametrize("mode", list(_MODES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_documents)
def test_every_bson_type_has_one_rendering_at_every_depth(mode: str,
                                                         doc: dict[str, Any]) -> None:
    doc = _bson(doc)
    text = json_util.dumps(doc, json_options=_options(_MODES[mode]))
    ours = extjson.loads(text)
    expected = _documented(json_util.loads(text, json_options=_options(_MODES[mode])))
    assert _jsonb(ours) == expected
    # The same value one level down, in an array, and on its own (a value in overflow).
    assert _jsonb({"d": ours, "a": [ours]}) == {"d": expected, "a": [expected]}
    for k, v in ours.items():
        assert _jsonb(v) == expected[k], k


def test_renderings_the_readme_lists() -> None:
    doc = extjson.loads(json_util.dumps({
        "oid": BsonObjectId(OID), "bin": BsonBinary(b"kafka", 0), "b80": BsonBinary(b"k", 0x80),
        "uuid": uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db"),
        "nan": math.nan, "inf": -math.inf, "dnan": Decimal128("NaN"), "dinf": Decimal128("Inf"),
        "dec": Decimal128("1.50"), "long": Int64(5),
        "at": datetime(2024, 1, 15, 10, 30, 0, 123000, tzinfo=UTC),
        "old": datetime(1, 1, 1, tzinfo=UTC), "s": OID,
    }, json_options=_CANON))
    assert to_json_text(doc) == (
        '{"oid":{"$oid":"596e275826f08b2730779e1f"},'
        '"bin":{"$binary":{"base64":"a2Fma2E=","subType":"00"}},'
        '"b80":{"$binary":{"base64":"aw==","subType":"80"}},'
        '"uuid":{"$binary":{"base64":"FA7YEzXgQXSX9OxmzllH2w==","subType":"04"}},'
        '"nan":{"$numberDouble":"NaN"},"inf":{"$numberDouble":"-Infinity"},'
        '"dnan":{"$numberDecimal":"NaN"},"dinf":{"$numberDecimal":"Infinity"},'
        '"dec":1.50,"long":5,"at":{"$date":"2024-01-15T10:30:00.123Z"},'
        '"old":{"$date":"0001-01-01T00:00:00Z"},"s":"596e275826f08b2730779e1f"}'
    )
    # Relational values (plain Python types) keep their plain renderings.
    assert to_json_text([datetime(2024, 1, 15, tzinfo=UTC), b"ab",
                         uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db")]) == (
        '["2024-01-15T00:00:00+00:00","YWI=","140ed813-35e0-4174-97f4-ec66ce5947db"]')


# --------------------------------------------------------------------------- item 12: int64

_STRICT = JSONOptions(json_mode=JSONMode.LEGACY, strict_number_long=True)


@pytest.mark.parametrize(("options", "typ"), [
    (JSONOptions(json_mode=JSONMode.CANONICAL), "bigint"),
    (_STRICT, "bigint"),  # the 0.x/1.x "strict" rendering says int64 too
    (JSONOptions(json_mode=JSONMode.RELAXED), "integer"),  # a bare 5: nothing says int64
])
def test_int64_the_event_states_is_bigint(options: JSONOptions, typ: str) -> None:
    text = json_util.dumps({"_id": 1, "n": Int64(5), "m": 5}, json_options=options)
    values = record(mongo_event("c", after=text), mkey('{"$numberLong": "1"}')).values
    assert values is not None
    assert (natural_type(values["n"]), natural_type(values["m"])) == (typ, "integer")
    assert values["n"] == 5 and to_json_text(values["n"]) == "5"


def test_int64_column_type_does_not_depend_on_batching() -> None:
    long5, int5 = extjson.loads('{"$numberLong": "5"}'), extjson.loads("5")
    assert type(long5) is Int64Marker and type(int5) is int
    assert target_type(None, [long5], varchar=False) == "bigint"
    # int32 first then int64, together or one by one: bigint either way.
    assert target_type(None, [int5, long5], varchar=False) == "bigint"
    assert target_type(target_type(None, [int5], varchar=False), [long5],
                       varchar=False) == "bigint"
    assert target_type("bigint", [int5, long5], varchar=False) is None
    assert target_type("numeric", [long5], varchar=False) is None
