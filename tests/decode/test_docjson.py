"""`docjson.loads_document`: a row image's sub-documents as `DocText`, whose text must be
exactly what the writer renders for the typed value `extjson.loads` gives (jsonb cannot
tell them apart), and every document it does not render itself goes through the typed walk
with the same values and the same errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import json_util
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.decode import docjson, extjson
from sink.decode.envelope import decode_json
from sink.errors import DecodeError
from sink.postgres.reduce import apply_patch_to_document
from sink.postgres.types import adapt_column, natural_type, overflow_text, to_json_text
from sink.records import DocText, Patch
from tests.decode.support import OID, mkey, mongo_event, record
from tests.decode.test_extjson import _MODES, _bson, _documents, _options


def _same_as_typed(text: str, max_depth: int = 200) -> dict[str, Any]:
    """Assert ``loads_document(text)`` is ``extjson.loads(text)`` as the writer stores it."""
    try:
        typed = extjson.loads(text, max_depth=max_depth)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as got:
            docjson.loads_document(text, max_depth=max_depth)
        assert (got.value.code, str(got.value)) == (exc.code, str(exc))
        return {}
    ours = docjson.loads_document(text, max_depth=max_depth)
    assert list(ours) == list(typed)
    for k, v in ours.items():
        if type(v) is DocText:
            assert type(typed[k]) in (dict, list), k
            assert v.text == to_json_text(typed[k]), k
            assert natural_type(v) == natural_type(typed[k]) == "jsonb"
        else:
            assert type(v) is type(typed[k]) and to_json_text(v) == to_json_text(typed[k]), k
    return ours


@pytest.mark.parametrize("mode", list(_MODES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_documents)
def test_every_document_stores_as_the_typed_walk_does(mode: str, doc: dict[str, Any]) -> None:
    text = json_util.dumps({"_id": 1, **_bson(doc)}, json_options=_options(_MODES[mode]))
    _same_as_typed(text)
    _same_as_typed(text, max_depth=3)  # near the depth limit: the typed walk decides


_EDGES = [
    # what Debezium writes (STRICT): rendered here
    {"a": {"o": {"$oid": OID}, "d": {"$date": 1783101585729}, "z": {"$date": 0},
           "l": {"$numberLong": "-9223372036854775808"}, "i": {"$numberInt": "7"},
           "m": {"$numberDecimal": "1.10"}, "e": {"$numberDecimal": "1E+3"},
           "n": {"$numberDouble": "NaN"}, "f": {"$numberDouble": "-0.0"}, "x": [[], {}]}},
    {"a": [{"$date": 1783101585000}, {"$date": 253402300799999}, 1.5, 2**63 - 1, None, True]},
    # rendered by the typed walk, every one
    {"a": {"o": {"$oid": OID.upper()}}}, {"a": [{"$date": -1}]}, {"a": [{"$date": 2**62}]},
    {"a": [{"$date": "2024-01-15T10:30:00Z"}]}, {"a": [{"$date": {"$numberLong": "5"}}]},
    {"a": [{"$numberLong": 5}]}, {"a": [{"$numberLong": "9223372036854775808"}]},
    {"a": [{"$numberDecimal": "NaN"}]}, {"a": [{"$numberDecimal": "x"}]},
    {"a": [{"$numberDouble": "1e999"}]}, {"a": [{"$binary": "a2Fma2E=", "$type": "00"}]},
    {"a": [{"$uuid": "140ed813-35e0-4174-97f4-ec66ce5947db"}]}, {"a": {"$date": 5, "t": 1}},
    {"a": [{"$oid": OID, "name": "x"}]}, {"a": [{"x": 1, "$oid": OID}]},
    {"a": [{"$ref": "c", "$id": {"$oid": OID}}]}, {"a": [{"$set": {"b": 1}}]},
    {"a": [{"$x": 1}, {"$y": {"z": {"$date": 5}}}, {"$a": 1, "$b": 2, "$c": 3}]},
    {"a": {"$oid": OID}, "b": {"$date": 5}, "c": {"$x": {"$date": 5}}},  # top-level wrappers
    {"a": [2**63]}, {"a": {"b": -(2**63) - 1}}, {"a": [1e20]}, {"a": [-1e20]}, {"a": 2**64},
    {"a": [10**30]}, {"a": ["nul\x00"], "b": {"c": "\x00"}}, {"a": {"b\x00": 1}},
    {"a": {"b": [{"c": [{"d": [1]}]}]}},
]


@pytest.mark.parametrize("doc", _EDGES, ids=lambda d: json.dumps(d)[:60])
def test_edges(doc: dict[str, Any]) -> None:
    text = json.dumps({"_id": {"$oid": OID}, **doc})
    for depth in (200, 6, 5, 4, 3, 2, 1):
        _same_as_typed(text, max_depth=depth)
    _same_as_typed(text.replace("[1e20]", "[NaN, -Infinity]"))  # bare NaN, as 0.x wrote


def test_debezium_documents_are_rendered_and_odd_ones_are_not() -> None:
    both = {"_id": {"$oid": OID}, "a": _EDGES[0]["a"], "b": _EDGES[1]["a"]}
    ours = _same_as_typed(json.dumps(both))
    assert type(ours["a"]) is DocText and '{"$date":"2026-07-03T17:59:45.729Z"}' in ours["a"].text
    assert type(ours["b"]) is DocText and ours["b"].text.startswith('[{"$date":"2026-07-03T')
    odd = _same_as_typed(json.dumps({"_id": 1, "a": {"o": {"$oid": OID.upper()}}}))
    assert odd["a"] == {"o": OID}  # the typed walk's value
    nul = _same_as_typed(json.dumps({"_id": 1, "a": {"s": "x\x00"}}))
    assert nul["a"] == {"s": "x\x00"}  # the writer keeps the exact value aside


def test_id_stays_typed() -> None:
    ours = _same_as_typed(f'{{"_id": {{"a": {{"$oid": "{OID}"}}}}, "b": [1]}}')
    assert ours["_id"] == {"a": OID} and type(ours["b"]) is DocText
    # No Kafka key: the record's key comes from the document's own _id.
    rec = decode_json(None, mongo_event("c", after='{"_id": {"a": 1}, "b": {"c": 2}}'), "t")
    assert rec.key == {"_id": extjson.canonical_key_text({"a": 1})}


def test_writer_reads_a_doc_text_as_the_document() -> None:
    after = json.dumps({"_id": {"$oid": OID}, "a": {"n": 1.50, "d": {"$numberDecimal": "2.50"},
                                                    "t": [3, 2, 1], "o": {"$oid": OID}}})
    rec = record(mongo_event("c", after=after), mkey(json.dumps({"$oid": OID})))
    assert rec.values is not None and type(rec.values["a"]) is DocText
    typed = extjson.loads(after)
    doc, want = dict(rec.values), {**typed, "_id": rec.values["_id"]}
    patch = Patch(set={("a", "t", "1"): 9, ("a", "x"): {"y": 1}}, truncate={("a", "t"): 2},
                  unset=[("a", "n")])
    apply_patch_to_document(doc, patch)
    apply_patch_to_document(want, patch)
    assert to_json_text(doc["a"]) == to_json_text(want["a"]) == (
        f'{{"d":2.50,"t":[3,9],"o":{{"$oid":"{OID}"}},"x":{{"y":1}}}}')
    # In a column of another type: kept in overflow, rendered as it is.
    stored, over = adapt_column([rec.values["a"]], "text")
    assert stored == [None] and overflow_text({"a": over[0]}) == (
        '{"a":' + to_json_text(extjson.loads(after)["a"]) + "}")
    assert adapt_column([DocText("[1,2]")], "integer[]")[0] == ["{1,2}"]


@given(st.integers(0, 253402300799999))
def test_date_text_is_the_writers(ms: int) -> None:
    text = f'{{"_id": 1, "a": [{{"$date": {ms}}}]}}'
    _same_as_typed(text)
