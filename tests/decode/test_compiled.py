"""Which decoder runs: the mypyc-compiled modules setup.py builds, or their pure Python.

``make test`` runs tests/decode twice: compiled (this module asserts the ``.so`` modules are
the ones imported, so the suite really exercised them) and with ``WARP_NO_MYPYC=1`` (the
pure fallback, asserted here too). A tree pip did not build (a worktree on PYTHONPATH over
another tree's install) has no compiled modules to expect.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import pickle
import shutil
import sys
import sysconfig
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import sink
from sink.decode import extjson
from sink.decode.connect import _unscaled
from sink.decode.envelope import DecoderOptions, decode_json
from sink.decode.extjson import date_from_ms
from sink.decode.extjson_key import canonical_key_text
from sink.decode.jsontext import parse_exact
from sink.errors import DecodeError
from sink.postgres.jsonb import to_json_text
from sink.postgres.reduce import Change
from sink.postgres.rows import Upserts, change_pos, split_unique
from sink.postgres.schema_types import adapt_array, adapt_interval
from sink.postgres.types import adapt_column, natural_type, target_type
from sink.records import (
    Binary,
    BitString,
    BsonUuid,
    IdText,
    Int64,
    JsonText,
    Kind,
    Micros,
    ObjectId,
    Point,
    Record,
    TemporalText,
)
from tests import paths

# setup.py's COMPILED, as module names.
HOT = (
    "sink.records", "sink.decode.common", "sink.decode.column_types",
    "sink.decode.connect", "sink.decode.docjson", "sink.decode.envelope", "sink.decode.extjson",
    "sink.decode.extjson_key", "sink.decode.flat", "sink.decode.framing", "sink.decode.jsontext",
    "sink.decode.keyless", "sink.decode.mongo", "sink.decode.schema",
    "sink.postgres.dates", "sink.postgres.jsonb", "sink.postgres.plan",
    "sink.postgres.reduce", "sink.postgres.rows", "sink.postgres.schema_types",
    "sink.postgres.types",
)  # fmt: skip
PURE = os.environ.get("WARP_NO_MYPYC", "") not in ("", "0")


def _files() -> dict[str, str]:
    return {name: str(importlib.import_module(name).__file__) for name in HOT}


def _pip_built_this_tree() -> bool:
    """True when the sink under test is the editable install pip built from this tree."""
    try:
        direct = distribution("cartridge-warp-sink").read_text("direct_url.json")
    except PackageNotFoundError:
        return False
    info = json.loads(direct or "{}")
    if not info.get("dir_info", {}).get("editable"):
        return False
    return Path(unquote(urlparse(info["url"]).path)).resolve() == paths.ROOT.resolve()


def _compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(os.environ.get("CC", cc).split()[0]) is not None and headers.exists()


def test_setup_compiles_the_modules_this_test_expects() -> None:
    text = (paths.ROOT / "setup.py").read_text()
    listed = {p.removesuffix(".py").replace("/", ".") for p in text.split('"') if
              p.startswith("sink/") and p.endswith(".py")}  # fmt: skip
    assert listed == set(HOT)


@pytest.mark.skipif(not PURE, reason="the pure run is make decode-pure (WARP_NO_MYPYC=1)")
def test_warp_no_mypyc_loads_the_pure_python_modules() -> None:
    files = _files()
    assert all(f.endswith(".py") for f in files.values()), files
    assert sink.pure_reason in (None, "WARP_NO_MYPYC is set")


@pytest.mark.skipif(PURE, reason="WARP_NO_MYPYC is set: the pure Python run")
def test_the_compiled_modules_are_the_ones_imported() -> None:
    built = list((paths.ROOT / "sink").glob("_hot__mypyc.*so"))
    if not built:
        if _pip_built_this_tree() and _compiler():
            pytest.fail("pip installed this tree (editable) and a C compiler is here, but "
                        "there is no compiled build: run `make build`; if it stays pure, "
                        "`pip install -v -e .` prints a 'warp-sink build:' line saying why")
        pytest.skip("no compiled build in this tree (not installed by pip, or no compiler)")
    assert sink.pure_reason is None, f"running pure Python: {sink.pure_reason}"
    files = _files()
    assert all(f.endswith(".so") for f in files.values()), files
    # Compiled functions are builtins, not Python functions with bytecode.
    assert not hasattr(extjson.walk, "__code__")


def _event(after: dict[str, object]) -> bytes:
    return json.dumps({"after": json.dumps(after), "op": "c",
                       "source": {"db": "d", "collection": "c", "ts_ms": 1}}).encode()


def test_decoding_gives_the_same_values_compiled_or_not() -> None:
    """The values mypyc could change (its tagged ints switch representation past 2**62, the
    builtin subclasses stay Python classes) come out of either decoder alike."""
    oid = "5f0c" * 6
    edges = {"a": 2**62 - 1, "b": 2**62, "c": 2**63 - 1, "d": -(2**63), "e": -(2**62) - 1}
    after = {"_id": {"$oid": oid}, "owner": {"$oid": oid}, "n": {"$numberLong": str(2**63 - 1)},
             **edges}
    key = json.dumps({"id": json.dumps({"$oid": oid})}).encode()
    rec = decode_json(key, _event(after), "p.d.c", DecoderOptions())
    assert isinstance(rec, Record)
    assert type(rec.values["owner"]) is ObjectId and rec.values["owner"] == oid
    assert type(rec.values["n"]) is Int64 and rec.values["n"] == 2**63 - 1
    assert {k: rec.values[k] for k in edges} == edges
    with pytest.raises(DecodeError, match="integer 1180591620717411303424 is outside the int64"):
        decode_json(key, _event({"_id": 1, "big": 2**70}), "p.d.c", DecoderOptions())


def test_the_writer_keeps_the_bson_value_types_compiled_or_not() -> None:
    """Compiled, a value mypy narrows to int is unboxed and comes back a plain int: the
    writer must still see an Int64 (the event's $numberLong) as one, wherever it meets it."""
    small, big, oid = Int64(5), Int64(2**63 - 1), ObjectId("5f0c" * 6)
    assert natural_type(small) == "bigint"
    assert target_type(None, [small], varchar=False) == "bigint"
    assert target_type("integer", [3, small], varchar=False) == "bigint"
    stored, overflow = adapt_column([small, None, big], "bigint")
    assert stored == [5, None, 2**63 - 1] and overflow == {}
    assert to_json_text({"n": big, "o": oid, "l": [small]}) == (
        '{"n":9223372036854775807,"o":{"$oid":"' + oid + '"},"l":[5]}')


def test_the_writers_row_gathering_frees_what_it_made() -> None:
    """mypyc 2.4.1 leaked each record's position (a 192-bit int) where rows.split_unique
    narrowed it from ``int | None`` to int: about 60 bytes a row, for ever, in the service."""
    recs = [Record("s", "t", {"_id": f"{i:024x}"}, Kind.UPSERT, "c", values={"a": i},
                   position=(1_700_000_000_000 + i, 1), offset=i) for i in range(2000)]
    kts: list[object] = [r.key["_id"] for r in recs]
    ups, _ = split_unique(recs, kts)  # type: ignore[arg-type]
    assert ups.pos[0] == str((1_700_000_000_000 << 128) | (1 << 64))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            split_unique(recs, kts)  # type: ignore[arg-type]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes kept after 40,000 rows"


def test_the_writers_int_texts_free_their_ints() -> None:
    """mypyc 2.4.1's ``str()`` of an int it holds unboxed (``CPyTagged_Str``) keeps a
    reference to an int of 2**62 or more for ever: each delete's and each folded change's
    position (`rows.change_pos`, 128 to 256 bits), a jsonb number past 64 bits, a bigint
    array element, a very long interval. Their texts must not hold the ints."""
    pos = (1_700_000_000_000 << 128) | (3 << 64) | 7
    chs = [Change(str(i), {}, Kind.DELETE, pos=pos, count=1) for i in range(1000)]
    big, element = 2**70 + 1, 2**63 - 1
    before = sys.getrefcount(pos), sys.getrefcount(big), sys.getrefcount(element)
    assert [change_pos(c) for c in chs[:1]] == [str(pos)]
    Upserts.of_changes(chs)
    for c in chs:
        change_pos(c)
    assert to_json_text({"n": [big] * 1000}) == '{"n":[' + ",".join([str(big)] * 1000) + "]}"
    assert adapt_array([[element] * 1000]) == (["{" + ",".join([str(element)] * 1000) + "}"], {})
    after = sys.getrefcount(pos), sys.getrefcount(big), sys.getrefcount(element)
    assert after == before, f"references kept (position, jsonb int, array element): {after}"
    long_ago = [timedelta(days=-999_999_999 + i) for i in range(1000)]
    adapt_interval(long_ago)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            adapt_interval(long_ago)
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes kept after 10,000 interval texts"


def test_the_decoders_int_texts_free_their_ints() -> None:
    """The same mypyc hazard in the decoder: a Debezium decimal's unscaled value (a
    numeric(38,18) from 4.7 up is past 2**62), a ``$date`` far out, an int64 ``_id``."""
    raw = base64.b64encode((5 * 10**18).to_bytes(9, "big", signed=True)).decode()
    assert _unscaled(raw, 18) == Decimal("5")
    ms, key = -(2**62) - 5, 2**62 + 9
    before = sys.getrefcount(ms), sys.getrefcount(key)
    for _ in range(1000):
        date_from_ms(ms)
        canonical_key_text(key)
    assert date_from_ms(ms) == {"$date": {"$numberLong": str(ms)}}
    assert canonical_key_text(key) == '{"$numberLong":"' + str(key) + '"}'
    assert (sys.getrefcount(ms), sys.getrefcount(key)) == before, "references kept"
    far = datetime(1, 1, 1, tzinfo=UTC)  # its ms are short: no leak, but the same path
    assert canonical_key_text(far) == '{"$date":{"$numberLong":"-62135596800000"}}'
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            _unscaled(raw, 18)
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"{grown} bytes kept after 10,000 decimals"


def test_the_decoders_value_types_survive_copy_and_pickle() -> None:
    """The reducer deep-copies values (postgres/reduce.py); the builtin subclasses stay Python
    classes under mypyc, and must rebuild through copy and pickle with their extra state.
    (Compiled, ``ExactFloat.__new__(cls, text: str)`` refused the float copy passes it, and
    a native ``JsonText`` ran ``__init__`` without its argument.)"""
    exact = parse_exact('{"x": 1.50}', keep_float_text=True)["x"]
    values = [exact, Binary(b"ab", 3), Int64(2**63 - 1), ObjectId("5f0c" * 6),
              Micros(hours=-2), BsonUuid(int=5), JsonText('{"a": 1.50}'), BitString("0101"),
              Point(1.5, -2.0), TemporalText("date", "0044-03-15 BC"),
              IdText('{"$numberLong":"5"}')]  # fmt: skip
    for copier in (copy.copy, copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))):
        for v in values:
            out = copier(v)
            assert type(out) is type(v) and out == v, (copier, v)
    assert copy.deepcopy(exact).text == "1.50"
    assert copy.deepcopy(Binary(b"ab", 3)).subtype == 3
