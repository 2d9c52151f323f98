"""MongoDB Extended JSON decoding and the canonical key text.

pymongo's ``bson.json_util`` is used as a test oracle only (never in ``sink/``).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from bson import Binary as BsonBinary
from bson import Code, Decimal128, Int64, MaxKey, MinKey, Regex, Timestamp, json_util
from bson import ObjectId as BsonObjectId
from bson.binary import UuidRepresentation
from bson.codec_options import DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.json_util import JSONMode, JSONOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.decode import extjson
from sink.decode.extjson import Binary, ObjectId, canonical_key_text
from sink.errors import DecodeError
from sink.records import BSON_UTC, BsonUuid, is_bson_date
from sink.records import Int64 as Int64Marker
from tests import paths

FIXTURES = paths.FIXTURES
OID = "596e275826f08b2730779e1f"


def load(text: str | bytes) -> Any:
    return extjson.loads(text)


# --------------------------------------------------------------------------- every type


@pytest.mark.parametrize(
    "text",
    [f'{{"$oid": "{OID}"}}', f'{{ "$oid" : "{OID.upper()}"}}', f'{{"$oid":"{OID}"}}'],
)
def test_object_id_is_marked_lowercase_hex(text: str) -> None:
    value = load(text)
    assert type(value) is ObjectId
    assert value == OID


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ('{"$numberInt": "-2147483648"}', -(2**31)),
        ('{"$numberLong": "9223372036854775807"}', 2**63 - 1),
        ('{"$numberLong": "-9223372036854775808"}', -(2**63)),
        ("9223372036854775807", 2**63 - 1),  # relaxed int64: bare, exact beyond 2**53
        ("9007199254740993", 2**53 + 1),
        ('{"$numberLong": 12}', 12),  # lenient: number instead of string
    ],
)
def test_integers_exact(text: str, expected: int) -> None:
    value = load(text)
    # An int64 the event states ($numberLong) is marked, so it becomes bigint (item 12).
    assert type(value) is (Int64Marker if "$numberLong" in text else int)
    assert value == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        ("10.0", 10.0),
        ("1.0E+10", 1e10),
        ('{"$numberDouble": "1.5"}', 1.5),
        ('{"$numberDouble": "-0.0"}', -0.0),
        ('{"$numberDouble": "1.0E-5"}', 1e-05),
        ('{"$numberDouble": "Infinity"}', math.inf),
        ('{"$numberDouble": "-Infinity"}', -math.inf),
        ("Infinity", math.inf),  # strict: bare tokens
        ("-Infinity", -math.inf),
        ("[1.5, -Infinity]", [1.5, -math.inf]),
    ],
)
def test_doubles(text: str, expected: Any) -> None:
    assert load(text) == expected


def test_nan_in_every_form_and_strings_untouched() -> None:
    doc = load('{"a": NaN, "b": {"$numberDouble": "NaN"}, "s": "NaN Infinity \\" NaN", "c": [NaN]}')
    assert math.isnan(doc["a"]) and math.isnan(doc["b"]) and math.isnan(doc["c"][0])
    assert doc["s"] == 'NaN Infinity " NaN'


def test_decimal128() -> None:
    for text in (
        "123.45678",
        "-0.00",
        "1E+6144",
        "NaN",
        "-Infinity",
        "1.000000000000000000000000000000001",
    ):
        value = load(f'{{"$numberDecimal": "{text}"}}')
        assert type(value) is Decimal
        assert str(value) == str(Decimal(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"$date": 1783101585729}',  # strict (v1)
        '{"$date": "2026-07-03T17:59:45.729Z"}',  # relaxed
        '{"$date": {"$numberLong": "1783101585729"}}',  # canonical
        '{"$date": "2026-07-03T19:59:45.729+02:00"}',  # offsets
        '{"$date": "2026-07-03T17:59:45.729+0000"}',
        '{ "$date" : 1783101585729}',  # pre-1.4 spacing
    ],
)
def test_dates_every_form(text: str) -> None:
    value = load(text)
    assert value == datetime(2026, 7, 3, 17, 59, 45, 729000, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0) and is_bson_date(value)  # UTC, marked BSON


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"$date": "2026-07-03T17:59:45Z"}', datetime(2026, 7, 3, 17, 59, 45, tzinfo=UTC)),
        (
            '{"$date": "2026-07-03T17:59:45.7Z"}',
            datetime(2026, 7, 3, 17, 59, 45, 700000, tzinfo=UTC),
        ),
        ('{"$date": -1000}', datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ('{"$date": {"$numberLong": "0"}}', datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_dates_fractions_and_pre_epoch(text: str, expected: datetime) -> None:
    assert load(text) == expected


def test_date_outside_python_range_is_kept() -> None:
    for ms in (-62135596800001, 253402300800000, -(2**63), 2**63 - 1):
        assert load(f'{{"$date": {{"$numberLong": "{ms}"}}}}') == {
            "$date": {"$numberLong": str(ms)}
        }
        assert load(f'{{"$date": {ms}}}') == {"$date": {"$numberLong": str(ms)}}


def test_binary_both_shapes_and_subtypes() -> None:
    u = uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db")
    assert load('{"$binary": "FA7YEzXgQXSX9OxmzllH2w==", "$type": "04"}') == u
    assert load('{"$binary": {"base64": "FA7YEzXgQXSX9OxmzllH2w==", "subType": "04"}}') == u
    assert load('{"$type": "00", "$binary": "a2Fma2E="}') == b"kafka"
    plain = load('{"$binary": {"base64": "a2Fma2E=", "subType": "00"}}')
    assert type(plain) is Binary and plain == b"kafka" and plain.subtype == 0
    other = load('{"$binary": {"base64": "a2Fma2E=", "subType": "80"}}')
    assert type(other) is Binary and other == b"kafka" and other.subtype == 0x80
    assert load('{"$uuid": "140ed813-35e0-4174-97f4-ec66ce5947db"}') == u
    assert load('{"$uuid": "140ed81335e0417497f4ec66ce5947db"}') == u


def test_passthrough_types_in_canonical_form() -> None:
    doc = load(
        '{"ts": {"$timestamp": {"i": 2, "t": 1}}, "r1": {"$regex": "^a", "$options": "mi"},'
        ' "r2": {"$regularExpression": {"pattern": "^a", "options": "im"}},'
        ' "lo": {"$minKey": 1}, "hi": {"$maxKey": 1}, "sym": {"$symbol": "s"},'
        ' "js": {"$code": "f()"}, "jss": {"$code": "f()", "$scope": {"x": {"$numberInt": "1"}}},'
        f' "ptr": {{"$ref": "db.c", "$id": {{"$oid": "{OID}"}}}},'
        f' "ptr2": {{"$dbPointer": {{"$ref": "db.c", "$id": {{"$oid": "{OID}"}}}}}},'
        ' "u": {"$undefined": true}}'
    )
    regex = {"$regularExpression": {"pattern": "^a", "options": "im"}}
    pointer = {"$dbPointer": {"$ref": "db.c", "$id": {"$oid": OID}}}
    assert doc == {
        "ts": {"$timestamp": {"t": 1, "i": 2}},
        "r1": regex,
        "r2": regex,
        "lo": {"$minKey": 1},
        "hi": {"$maxKey": 1},
        "sym": {"$symbol": "s"},
        "js": {"$code": "f()"},
        "jss": {"$code": "f()", "$scope": {"x": 1}},
        "ptr": {"$ref": "db.c", "$id": ObjectId(OID)},  # a DBRef, not a DBPointer
        "ptr2": pointer,
        "u": None,
    }


def test_ordinary_dollar_documents_stay_documents() -> None:
    doc = load(
        '{"$set": {"a": 1}, "$unset": {"b": true}, "f": {"$in": [1, 2]},'
        ' "q": {"$regex": "^a"}, "dbref": {"$ref": "c", "$id": 5, "$db": "d"},'
        ' "t": {"$type": "string"}}'
    )
    assert doc == {
        "$set": {"a": 1},
        "$unset": {"b": True},
        "f": {"$in": [1, 2]},
        "q": {"$regex": "^a"},
        "dbref": {"$ref": "c", "$id": 5, "$db": "d"},
        "t": {"$type": "string"},
    }


def test_key_order_preserved() -> None:
    doc = load('{"z": 1, "_id": 2, "a": {"y": 1, "b": 2}, "m": 3}')
    assert list(doc) == ["z", "_id", "a", "m"]
    assert list(doc["a"]) == ["y", "b"]


@pytest.mark.parametrize(
    "text",
    [
        '{"$oid": 5}',
        '{"$oid": "xyz"}',
        '{"$oid": "596e275826f08b2730779e1"}',
        f'{{"$oid": "{OID}", "x": 1}}',
        f'{{"$oid": "{OID}", "x": 1, "y": 2}}',
        '{"$numberInt": "2147483648"}',
        '{"$numberInt": 5}',
        '{"$numberLong": "1.5"}',
        '{"$numberDouble": 1.5}',
        '{"$numberDouble": "nan"}',
        '{"$numberDouble": "1_0"}',
        '{"$numberDecimal": "1_0"}',
        '{"$numberDecimal": 1.5}',
        '{"$date": "yesterday"}',
        '{"$date": true}',
        '{"$date": 1.5}',
        '{"$date": {"$numberLong": "1", "x": 1}}',
        '{"$binary": "!!!", "$type": "00"}',
        '{"$binary": "a2Fma2E="}',
        '{"$binary": {"base64": "a2Fma2E="}}',
        '{"$binary": {"base64": "a2Fma2E=", "subType": "zz"}}',
        '{"$uuid": "not-a-uuid"}',
        '{"$timestamp": {"t": -1, "i": 0}}',
        '{"$timestamp": 5}',
        '{"$regularExpression": {"pattern": 1, "options": ""}}',
        '{"$minKey": 2}',
        '{"$symbol": 1}',
        '{"$code": 1}',
        '{"$code": "x", "$scope": 1}',
        '{"$dbPointer": {"$ref": "c"}}',
        '{"$undefined": false}',
        '{"$numberLong": "9223372036854775808"}',
        '{"$numberDouble": "1e400"}',
        '{"$numberDecimal": "1E+9999"}',
        '{"$code": "f()", "lang": "js"}',
        '{"_id": 1, "$date": "2020-01-01T00:00:00Z"}',
    ],
)
def test_malformed_wrappers_are_plain_documents(text: str) -> None:
    """Field names may start with "$" (MongoDB 5+): a "wrapper" that does not parse as its
    type is user data, a sub-document as written (issue 17, item 10)."""
    assert load(text) == json.loads(text)
    assert load(f'{{"a": [{text}]}}') == {"a": [json.loads(text)]}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"{", "bad_json"),
        (b'{"a": 1,}', "bad_json"),
        (b'{"a": "\xff"}', "bad_utf8"),
        (b"[" * 2000 + b"]" * 2000, "too_deep"),
        (b"[" * 300 + b"]" * 300, "too_deep"),
        (b'{"a": 1e400}', "bad_json"),
        (b"123456789012345678901234567890", "number_out_of_range"),
        (b'{"a": [18446744073709551616]}', "number_out_of_range"),
        (b'{"$date": 18446744073709551617}', "number_out_of_range"),
        (b'{"$oid": "x", "n": [18446744073709551616]}', "number_out_of_range"),
    ],
)
def test_unreadable_text(text: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as err:
        load(text)
    assert err.value.code == code


def test_depth_limit_is_configurable() -> None:
    text = '{"a":' * 10 + "1" + "}" * 10
    assert extjson.loads(text, max_depth=11)
    with pytest.raises(DecodeError):
        extjson.loads(text, max_depth=9)


def test_json_serialization_mode_fixture() -> None:
    """Every json.serialization.mode renders the same instant in after and updatedFields."""
    rows = json.loads(
        (
            FIXTURES / "debezium-mongodb/v3x-docs/json_serialization_mode_date_examples.json"
        ).read_text()
    )
    expected = datetime(2026, 7, 3, 17, 59, 45, 729000, tzinfo=UTC)
    assert len(rows) == 4
    for row in rows:
        for cell in ("after_and_before", "updateDescription.updatedFields"):
            assert load(json.dumps(row[cell])) == {"timestamp": expected}, (row, cell)


# --------------------------------------------------------------------------- key text


def test_key_text_basic_rules() -> None:
    assert canonical_key_text(ObjectId(OID)) == OID
    assert canonical_key_text("1234") == "1234"
    assert canonical_key_text(1234) == '{"$numberLong":"1234"}'
    assert canonical_key_text(1234) != canonical_key_text("1234")
    assert (
        canonical_key_text(1234) == canonical_key_text(1234.0) == canonical_key_text(load("1234"))
    )
    assert canonical_key_text(12.34) == '{"$numberDouble":"12.34"}'
    assert canonical_key_text(Decimal("123.45678")) == '{"$numberDecimal":"123.45678"}'
    assert (
        canonical_key_text(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
        == '{"$date":{"$numberLong":"1000"}}'
    )
    assert canonical_key_text(b"kafka") == '{"$binary":{"base64":"a2Fma2E=","subType":"00"}}'
    assert canonical_key_text({"a": 1, "b": "x", "c": ObjectId(OID)}) == (
        '{"a":{"$numberLong":"1"},"b":"x","c":{"$oid":"' + OID + '"}}'
    )
    assert canonical_key_text(True) == "true"
    assert canonical_key_text(None) == "null"
    assert canonical_key_text(math.nan) == '{"$numberDouble":"NaN"}'


def test_key_representation_table_fixture() -> None:
    """Each docs-table key canonicalises as expected; the 1.4+ rendering of the same _id agrees."""
    rows = json.loads(
        (FIXTURES / "debezium-mongodb/v3x-docs/key_id_representations_table.json").read_text()
    )
    relaxed = {
        "Integer": "1234",
        "Float": "12.34",
        "String": '"1234"',
        "Document": '{"hi": "kafka","nums": [10.0,100.0,1000.0]}',
        "ObjectId": '{"$oid": "596e275826f08b2730779e1f"}',
        "Binary": '{"$binary": {"base64": "a2Fma2E=", "subType": "00"}}',
    }
    expected = {
        "Integer": '{"$numberLong":"1234"}',
        "Float": '{"$numberDouble":"12.34"}',
        "String": "1234",
        "Document": '{"hi":"kafka","nums":[{"$numberLong":"10"},{"$numberLong":"100"},'
        '{"$numberLong":"1000"}]}',
        "ObjectId": "596e275826f08b2730779e1f",
        "Binary": '{"$binary":{"base64":"a2Fma2E=","subType":"00"}}',
    }
    assert {r["type"] for r in rows} == set(expected)
    for row in rows:
        legacy_text = canonical_key_text(load(row["key_payload"]["id"]))
        assert legacy_text == expected[row["type"]], row
        assert canonical_key_text(load(relaxed[row["type"]])) == legacy_text, row
    integer = next(r for r in rows if r["type"] == "Integer")
    string = next(r for r in rows if r["type"] == "String")
    assert canonical_key_text(load(integer["key_payload"]["id"])) != canonical_key_text(
        load(string["key_payload"]["id"])
    )


def test_connector_test_key_expectations_fixture() -> None:
    """Pre-1.4 (legacy serializer) and 1.4+ (relaxed writer) keys of the same _id agree."""
    data = json.loads(
        (
            FIXTURES
            / "debezium-mongodb/test-assertions/mongodb_connector_test_expected_values.json"
        ).read_text()
    )
    new = data[
        "key_id_serialization__MongoDbConnectorIT.shouldGenerateRecordsWithCorrectlySerializedId"
    ]["cases"]
    old = data["key_id_serialization_BEFORE_1.4__MongoDbConnectorIT_at_v1.3.1.Final"]["cases"]
    new_literal = [c["key_payload"]["id"] for c in new if "key_payload" in c]
    old_literal = [c["key_payload"]["id"] for c in old if "key_payload" in c]
    assert len(new_literal) == len(old_literal) == 4
    texts = [canonical_key_text(load(t)) for t in new_literal]
    assert texts == [canonical_key_text(load(t)) for t in old_literal]
    assert texts == [
        '{"$numberLong":"2147483657"}',
        "123",
        '{"company":{"$numberLong":"32"},"dept":"home improvement"}',
        '{"$numberDecimal":"123.45678"}',
    ]
    # The patterned cases, instantiated: ObjectId and date, both renderings.
    assert canonical_key_text(load(f'{{ "$oid" : "{OID}"}}')) == canonical_key_text(
        load(f'{{"$oid": "{OID}"}}')
    )
    ms = 1508371200000  # 2017-10-19T00:00:00Z
    legacy = canonical_key_text(load(f'{{ "$date" : {ms}}}'))
    assert legacy == canonical_key_text(load('{"$date": "2017-10-19T00:00:00Z"}'))
    assert legacy == f'{{"$date":{{"$numberLong":"{ms}"}}}}'
    composite = data["composite_documentKey__JsonSerializationTest"]["key_payload"]["id"]
    assert canonical_key_text(load(composite)) == '{"$numberLong":"42"}'


def test_connector_test_serialization_modes_fixture() -> None:
    """JsonSerializationModeIT: every mode's after/updatedFields fragments decode alike."""
    data = json.loads(
        (
            FIXTURES
            / "debezium-mongodb/test-assertions/mongodb_connector_test_expected_values.json"
        ).read_text()
    )
    modes = data["json_serialization_mode__JsonSerializationModeIT"]["expected_substrings"]
    for mode in modes:
        after = load("{" + ",".join(s for s in mode["after"] if not s.endswith('"')) + "}")
        assert after["phone"] == 123 and isinstance(after["phone"], int)
        if "created" in after:
            assert after["created"] == datetime(2026, 7, 3, 11, 35, 53, 473000, tzinfo=UTC)
        fields = load("{" + ",".join(s for s in mode["updatedFields"] if not s.endswith('"')) + "}")
        assert fields["phone"] == 456
        if "created" in fields:
            assert fields["created"] == datetime(2026, 7, 3, 11, 40, 51, 680000, tzinfo=UTC)
    legacy_fields = data["legacy_updatedFields_formatting__JsonSerializationTest"]["updatedFields"]
    assert load(legacy_fields) == {"name": "Mary", "zipcode": "11111"}


# --------------------------------------------------------------------------- property tests

_MODES = {
    "legacy": JSONMode.LEGACY,
    "relaxed": JSONMode.RELAXED,
    "canonical": JSONMode.CANONICAL,
}
_MS_MIN, _MS_MAX = -62135596800000, 253402300799999


def _options(mode: int) -> JSONOptions:
    return JSONOptions(
        json_mode=mode,
        tz_aware=True,
        tzinfo=UTC,
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
        uuid_representation=UuidRepresentation.STANDARD,
    )


# Hypothesis cannot shrink str/int/bytes subclasses drawn directly (Code, Int64, Binary),
# so the strategies draw tagged tuples and _bson() builds the BSON values from them.
_text = st.text(max_size=12)
_keys = st.text(max_size=8).filter(lambda k: not k.startswith("$"))
_decimals = st.one_of(
    st.builds(
        lambda i, e: Decimal128(f"{i}E{e}"), st.integers(-(10**30), 10**30), st.integers(-200, 200)
    ),
    st.sampled_from(
        [Decimal128("NaN"), Decimal128("Infinity"), Decimal128("-Infinity"), Decimal128("-0")]
    ),
)
_dates = st.one_of(
    st.integers(_MS_MIN, _MS_MAX).map(
        lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    ),
    st.one_of(st.integers(-(2**63), _MS_MIN - 1), st.integers(_MS_MAX + 1, 2**63 - 1)).map(
        DatetimeMS
    ),
)
_binaries = st.one_of(
    st.tuples(
        st.just("bin"), st.binary(max_size=20), st.sampled_from([0, 1, 2, 5, 6, 7, 0x80, 0xFF])
    ),
    st.tuples(st.just("uuidbin"), st.uuids()),
    st.uuids(),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    _text,
    st.integers(-(2**31), 2**31 - 1),
    st.tuples(st.just("int64"), st.integers(-(2**63), 2**63 - 1)),
    st.floats(allow_nan=True, allow_infinity=True),
    _decimals,
    _dates,
    st.binary(min_size=12, max_size=12).map(BsonObjectId),
    _binaries,
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(Regex, _text, st.sets(st.sampled_from("imsux")).map("".join)),
    st.just(MinKey()),
    st.just(MaxKey()),
    st.tuples(st.just("code"), _text),
    st.tuples(st.just("scope"), _text, st.dictionaries(_keys, st.integers(-5, 5), max_size=2)),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)
_documents = st.dictionaries(_keys, _values, max_size=6)


def _bson(v: Any) -> Any:
    """Build the BSON values the strategies describe as tagged tuples."""
    if isinstance(v, tuple):
        tag = v[0]
        if tag == "int64":
            return Int64(v[1])
        if tag == "bin":
            return BsonBinary(v[1], v[2])
        if tag == "uuidbin":
            return BsonBinary.from_uuid(v[1])
        if tag == "code":
            return Code(v[1])
        return Code(v[1], v[2])
    if isinstance(v, dict):
        return {k: _bson(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_bson(x) for x in v]
    return v


_FLAG_LETTERS = [
    (re.IGNORECASE, "i"),
    (re.LOCALE, "l"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.UNICODE, "u"),
    (re.VERBOSE, "x"),
]


def _ours(v: Any, long: bool = False) -> Any:
    """A json_util.loads value mapped to the sink's Python types (the BSON value types of
    :mod:`sink.records`). ``long``: the text was canonical, an int64 said it was one."""
    if isinstance(v, BsonObjectId):
        return ObjectId(str(v))
    if isinstance(v, Code):  # a str subclass: before str
        if v.scope is None:
            return {"$code": str(v)}
        return {"$code": str(v), "$scope": _ours(v.scope, long)}
    if isinstance(v, bool | str | None.__class__):
        return v
    if isinstance(v, Int64):
        return Int64Marker(v) if long else int(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v
    if isinstance(v, Decimal128):
        return v.to_decimal()
    if isinstance(v, datetime):
        return v.astimezone(BSON_UTC)
    if isinstance(v, DatetimeMS):
        return {"$date": {"$numberLong": str(int(v))}}
    if isinstance(v, uuid.UUID):
        return BsonUuid(bytes=v.bytes)
    if isinstance(v, BsonBinary):
        if v.subtype == 4 and len(v) == 16:
            return BsonUuid(bytes=bytes(v))
        return Binary(bytes(v), v.subtype)
    if isinstance(v, bytes):
        return Binary(v, 0)
    if isinstance(v, Timestamp):
        return {"$timestamp": {"t": v.time, "i": v.inc}}
    if isinstance(v, Regex):
        flags = v.flags if isinstance(v.flags, int) else 0
        options = "".join(sorted(letter for flag, letter in _FLAG_LETTERS if flags & flag))
        return {"$regularExpression": {"pattern": v.pattern, "options": options}}
    if isinstance(v, MinKey):
        return {"$minKey": 1}
    if isinstance(v, MaxKey):
        return {"$maxKey": 1}
    if isinstance(v, dict):
        return {k: _ours(x, long) for k, x in v.items()}
    if isinstance(v, list):
        return [_ours(x, long) for x in v]
    raise AssertionError(f"unmapped oracle type {type(v)}")


def _same(a: Any, b: Any, path: str = "$") -> None:
    if isinstance(b, float) and math.isnan(b):
        assert isinstance(a, float) and math.isnan(a), path
        return
    if isinstance(b, Decimal):
        assert type(a) is Decimal and str(a) == str(b), (path, a, b)
        return
    assert type(a) is type(b), (path, a, b)
    if isinstance(b, dict):
        assert list(a) == list(b), path
        for k in b:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(b, Binary):
        assert a == b and a.subtype == b.subtype, path
    elif isinstance(b, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), (path, a, b)
    elif isinstance(b, datetime):
        assert a == b and is_bson_date(a) == is_bson_date(b), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("mode", list(_MODES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_documents)
def test_every_bson_type_round_trips_through_json_util(mode: str, doc: dict[str, Any]) -> None:
    doc = _bson(doc)
    options = _options(_MODES[mode])
    text = json_util.dumps(doc, json_options=options)
    oracle = json_util.loads(text, json_options=options)
    long = _MODES[mode] == JSONMode.CANONICAL
    _same(extjson.loads(text), _ours(oracle, long))
    _same(extjson.loads(text.encode()), _ours(doc, long))


_ids = st.one_of(
    _text,
    st.integers(-(2**31), 2**31 - 1),
    st.tuples(st.just("int64"), st.integers(-(2**63), 2**63 - 1)),
    st.floats(allow_nan=False),
    _decimals,
    _dates.filter(lambda d: isinstance(d, datetime)),
    st.binary(min_size=12, max_size=12).map(BsonObjectId),
    _binaries,
    st.dictionaries(_keys, st.one_of(_text, st.integers(-(2**40), 2**40)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(_id=_ids)
def test_key_text_is_the_same_for_every_rendering(_id: Any) -> None:
    _id = _bson(_id)
    texts = set()
    for mode in _MODES.values():
        rendered = json_util.dumps(_id, json_options=_options(mode))
        texts.add(canonical_key_text(extjson.loads(rendered)))
    # The pre-1.4 legacy serializer's spacing and the compact writer's spacing too.
    legacy = json.loads(json_util.dumps(_id, json_options=_options(JSONMode.LEGACY)))
    spaced = json.dumps(legacy, separators=(" , ", " : "))
    texts.add(canonical_key_text(extjson.loads(spaced)))
    assert len(texts) == 1, texts


@given(n=st.integers(-(2**53), 2**53))
def test_numbers_mongodb_considers_equal_share_a_key(n: int) -> None:
    texts = {
        canonical_key_text(extjson.loads(json.dumps(n))),
        canonical_key_text(extjson.loads(f'{{"$numberLong": "{n}"}}')),
        canonical_key_text(extjson.loads(f'{{"$numberDouble": "{float(n)!r}"}}')),
    }
    if -(2**31) <= n < 2**31:
        texts.add(canonical_key_text(extjson.loads(f'{{"$numberInt": "{n}"}}')))
    assert texts == {f'{{"$numberLong":"{n}"}}'}
    assert canonical_key_text(str(n)) == str(n)
