"""Values of the types issue 13 item 2 adds, decoded as the real PostgreSQL connector 3.6.1
sends them (tests/e2e/debezium): Bits, geometry.Point, and decimals in strings under a
propagated NUMERIC/MONEY source type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sink.decode.connect import convert_value
from sink.decode.schema import schema_node
from sink.errors import DecodeError
from sink.records import BitString, Point


def _conv(spec: dict[str, Any], raw: Any) -> Any:
    return convert_value(raw, schema_node(spec), 16)


def _bits(length: int, source: str | None = None) -> dict[str, Any]:
    params = {"length": str(length)}
    if source:
        params["__debezium.source.column.type"] = source
    return {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": params}


@pytest.mark.parametrize(("spec", "raw", "bits"), [
    # bit(12): B'101010101010' is 0xAAA, sent little-endian as aa 0a
    (_bits(12, "BIT"), "qgo=", "101010101010"),
    (_bits(12, "BIT"), "/w8=", "111111111111"),
    (_bits(12, "BIT"), "", "000000000000"),  # all zeros: no bytes at all
    (_bits(12), "AQ==", "000000000001"),  # no source type: Bits means `length` bits
    (_bits(8), b"\x0f", "00001111"),  # Avro: bytes already
    # varbit(64): the value's own length is not in the event; its leading zeros are lost
    (_bits(64, "VARBIT"), "DQ==", "1101"),
    (_bits(64, "VARBIT"), "//////////8=", "1" * 64),
    (_bits(64, "VARBIT"), "", ""),
])  # fmt: skip
def test_bits_are_the_source_bits(spec: dict[str, Any], raw: Any, bits: str) -> None:
    assert _conv(spec, raw) == BitString(bits)


def test_bits_longer_than_their_length_are_a_bad_value() -> None:
    with pytest.raises(DecodeError, match="more than its length 4") as err:
        _conv(_bits(4, "BIT"), "/w8=")
    assert err.value.code == "bad_value"


POINT = {"type": "struct", "name": "io.debezium.data.geometry.Point", "fields": [
    {"field": "x", "type": "double"}, {"field": "y", "type": "double"},
    {"field": "wkb", "type": "bytes", "optional": True},
    {"field": "srid", "type": "int32", "optional": True}]}


def test_points_keep_their_coordinates() -> None:
    raw = {"x": 1e300, "y": -1e-300, "wkb": "AQEAAACcdQCIPOQ3flnz+MIfbqWB", "srid": None}
    assert _conv(POINT, raw) == Point(1e300, -1e-300)
    assert _conv(POINT, {"x": -0.0, "y": 0, "wkb": None, "srid": None}) == Point(-0.0, 0.0)
    with pytest.raises(DecodeError, match="Point"):
        _conv(POINT, {"x": "1", "y": 2.0})


def _string(source: str) -> dict[str, Any]:
    return {"type": "string", "parameters": {"__debezium.source.column.type": source}}


@pytest.mark.parametrize(("source", "raw", "want"), [
    ("NUMERIC", "2.500", Decimal("2.500")),  # the scale kept
    ("NUMERIC", "-99999999999999999999999999999999999999",
     Decimal("-99999999999999999999999999999999999999")),
    ("NUMERIC", "NaN", Decimal("NaN")),
    ("NUMERIC", "Infinity", Decimal("Infinity")),
    ("MONEY", "-92233720368547758.08", Decimal("-92233720368547758.08")),
])  # fmt: skip
def test_string_decimals_of_a_numeric_source_are_decimals(source: str, raw: str,
                                                          want: Decimal) -> None:
    got = _conv(_string(source), raw)
    assert type(got) is Decimal and str(got) == str(want)


@pytest.mark.parametrize("raw", ["1_000", " 1", "sNaN", "0x10", "", "1e"])
def test_a_string_that_is_no_decimal_is_a_bad_value(raw: str) -> None:
    with pytest.raises(DecodeError, match="not a decimal number"):
        _conv(_string("NUMERIC"), raw)


def test_strings_of_other_source_types_stay_strings() -> None:
    assert _conv(_string("INET"), "::1") == "::1"
    assert _conv({"type": "string"}, "2.500") == "2.500"
