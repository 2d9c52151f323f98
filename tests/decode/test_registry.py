"""The schema registry client against the in-process registry: cache, auth, TLS, retries,
unknown ids, timeouts, and secrets kept out of every message."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from sink.config import SourceConfig
from sink.decode.registry import SchemaRegistry
from sink.errors import ConfigError, DecodeError, TransientError
from tests import paths, schema_registry_server
from tests.schema_registry_server import RegistryServer

schema_registry = schema_registry_server.schema_registry  # the fixture, for this module

SCHEMAS = paths.SCHEMAS
KEY = json.loads((SCHEMAS / "debezium-mongodb/key.avsc").read_text())
ENVELOPE = json.loads((SCHEMAS / "debezium-mongodb/envelope.avsc").read_text())
PASSWORD = "s3cret-Pa55"  # a test credential
TOKEN = "tok-0123456789abcdef"


def client(url: str, **kw: Any) -> SchemaRegistry:
    """Fast retries for tests."""
    kw.setdefault("initial_backoff", 0.01)
    kw.setdefault("max_backoff", 0.02)
    kw.setdefault("timeout", 2.0)
    return SchemaRegistry(url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- fetch and cache


async def test_fetch_parses_and_caches(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-value", ENVELOPE)
    reg = client(schema_registry.url)
    assert reg.cached(sid) is None
    ws = await reg.get(sid)
    assert ws.schema_id == sid and ws.schema_type == "AVRO"
    assert ws.node is not None and ws.node.full_name == "dbserver1.inventory.customers.Envelope"
    assert ws.node.field("after") is not None
    assert ws.node.field("after").name == "io.debezium.data.Json"  # type: ignore[union-attr]
    assert isinstance(ws.parsed, dict) and "__fastavro_parsed" in ws.parsed
    assert reg.cached(sid) is ws
    assert await reg.get(sid) is ws
    assert schema_registry.count("/schemas/ids/") == 1  # fetched once
    req = schema_registry.requests[0]
    assert "application/vnd.schemaregistry.v1+json" in req.headers["accept"]
    assert "authorization" not in req.headers


async def test_concurrent_misses_share_one_request(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-key", KEY)
    schema_registry.delay_next(1, 0.1)
    reg = client(schema_registry.url)
    got = await asyncio.gather(*(reg.get(sid) for _ in range(20)))
    assert all(g is got[0] for g in got)
    assert schema_registry.count("/schemas/ids/") == 1


async def test_add_prefills_the_cache_without_io(schema_registry: RegistryServer) -> None:
    reg = client(schema_registry.url)
    ws = reg.add(42, KEY)
    assert reg.cached(42) is ws and await reg.get(42) is ws
    assert schema_registry.requests == []


async def test_register_and_subjects_over_http(schema_registry: RegistryServer) -> None:
    reg = client(schema_registry.url)
    sid = await reg.register("orders-value", ENVELOPE)
    assert sid == await reg.register("other-value", json.dumps(ENVELOPE))  # same schema, same id
    assert await reg.subjects() == ["orders-value", "other-value"]
    assert reg.cached(sid) is not None  # registering caches the schema too
    fresh = client(schema_registry.url)
    assert json.loads((await fresh.get(sid)).text) == ENVELOPE


async def test_primitive_schema(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("k-key", '"string"')
    ws = await client(schema_registry.url).get(sid)
    assert ws.parsed == "string" and ws.node is not None and ws.node.kind == "string"


# --------------------------------------------------------------------------- authentication


async def test_basic_auth() -> None:
    with RegistryServer(username="sink", password=PASSWORD) as srv:
        sid = srv.register("t-key", KEY)
        await client(srv.url, username="sink", password=PASSWORD).get(sid)
        assert srv.requests[-1].headers["authorization"].startswith("Basic ")
        for bad in (client(srv.url, username="sink", password="wrong"), client(srv.url)):
            with pytest.raises(TransientError) as err:
                await bad.get(sid)
            assert err.value.code == "registry_unauthorized"
            assert PASSWORD not in str(err.value)


async def test_basic_auth_from_secretstr_config_and_url_userinfo() -> None:
    with RegistryServer(username="sink", password=PASSWORD) as srv:
        sid = srv.register("t-key", KEY)
        src = SourceConfig(topics=["t"], value_format="avro", schema_registry_url=srv.url,
                           schema_registry_username="sink",
                           schema_registry_password=SecretStr(PASSWORD))
        reg = SchemaRegistry.from_config(src)
        assert (await reg.get(sid)).schema_id == sid
        host = srv.url.removeprefix("http://")
        via_url = client(f"http://sink:{PASSWORD}@{host}/")
        assert PASSWORD not in via_url.url and PASSWORD not in repr(via_url)
        assert (await via_url.get(sid)).schema_id == sid


async def test_bearer_token() -> None:
    with RegistryServer(token=TOKEN) as srv:
        sid = srv.register("t-key", KEY)
        reg = client(srv.url, token=SecretStr(TOKEN))
        await reg.get(sid)
        assert srv.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in repr(reg)
        with pytest.raises(TransientError) as err:
            await client(srv.url, token="nope").get(sid)
        assert err.value.code == "registry_unauthorized"


def test_password_and_token_together_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        SchemaRegistry("http://r:8081", username="u", password=PASSWORD, token=TOKEN)
    assert PASSWORD not in str(err.value) and TOKEN not in str(err.value)


@pytest.mark.parametrize("url", ["", "ftp://r/", "localhost:8081", " , "])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        SchemaRegistry(url)


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_tls_with_ca_file(tls_cert: tuple[str, str]) -> None:
    cert, key = tls_cert
    with RegistryServer(certfile=cert, keyfile=key, token=TOKEN) as srv:
        assert srv.url.startswith("https://")
        sid = srv.register("t-key", KEY)
        assert (await client(srv.url, cafile=cert, token=TOKEN).get(sid)).schema_id == sid
        untrusted = client(srv.url, token=TOKEN, attempts=1)  # system CAs: not trusted
        with pytest.raises(TransientError) as err:
            await untrusted.get(sid)
        assert "CERTIFICATE" in str(err.value).upper() and TOKEN not in str(err.value)


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SchemaRegistry("https://r:8081", cafile=str(tmp_path / "missing.pem"))


# --------------------------------------------------------------------------- failures


async def test_retries_5xx_then_succeeds(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-key", KEY)
    schema_registry.fail_next(3, 503)
    reg = client(schema_registry.url, attempts=5)
    assert (await reg.get(sid)).schema_id == sid
    assert schema_registry.count("/schemas/ids/") == 4


async def test_5xx_beyond_the_retries_is_transient() -> None:
    with RegistryServer(username="u", password=PASSWORD) as srv:
        sid = srv.register("t-key", KEY)
        srv.fail_next(10, 500)
        reg = client(srv.url, attempts=3, username="u", password=PASSWORD)
        with structlog.testing.capture_logs() as logs, pytest.raises(TransientError) as err:
            await reg.get(sid)
        assert err.value.code == "registry_unavailable" and err.value.retriable
        assert srv.count("/schemas/ids/") == 3
        assert "HTTP 500" in str(err.value) and PASSWORD not in str(err.value)
        assert len(logs) == 2 and all(e["log_level"] == "warning" for e in logs)
        assert PASSWORD not in repr(logs)
        assert reg.cached(sid) is None
        srv.fail_next(0)
        assert (await reg.get(sid)).schema_id == sid  # a transient failure is not cached


async def test_unknown_id_after_retries_is_permanent(schema_registry: RegistryServer) -> None:
    reg = client(schema_registry.url, not_found_attempts=3)
    with pytest.raises(DecodeError) as err:
        await reg.get(777)
    assert err.value.code == "unknown_schema_id" and not err.value.retriable
    assert schema_registry.count("/schemas/ids/777") == 3
    with pytest.raises(DecodeError):  # remembered for a while: no new lookups
        await reg.get(777)
    assert schema_registry.count("/schemas/ids/777") == 3


async def test_unknown_id_is_looked_up_again_after_the_ttl(
    schema_registry: RegistryServer,
) -> None:
    reg = client(schema_registry.url, not_found_attempts=1, not_found_ttl=0.0)
    with pytest.raises(DecodeError):
        await reg.get(1)
    sid = schema_registry.register("t-key", KEY)
    assert sid == 1 and (await reg.get(1)).schema_id == 1


async def test_a_lagging_follower_404_is_retried(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-key", KEY)
    schema_registry.fail_next(1, 404)
    assert (await client(schema_registry.url).get(sid)).schema_id == sid


async def test_out_of_range_ids_are_unknown(schema_registry: RegistryServer) -> None:
    with pytest.raises(DecodeError) as err:
        await client(schema_registry.url).get(2**40)
    assert err.value.code == "unknown_schema_id" and schema_registry.requests == []


async def test_timeouts_are_retried(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-key", KEY)
    schema_registry.delay_next(1, 0.6)
    reg = client(schema_registry.url, timeout=0.2, attempts=3)
    assert (await reg.get(sid)).schema_id == sid
    schema_registry.delay_next(2, 0.6)
    with pytest.raises(TransientError) as err:
        await client(schema_registry.url, timeout=0.2, attempts=2).get(sid)
    assert "timed out" in str(err.value).lower()


async def test_connection_refused_is_transient() -> None:
    reg = client(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(TransientError) as err:
        await reg.get(1)
    assert err.value.code == "registry_unavailable"


async def test_second_url_takes_over(schema_registry: RegistryServer) -> None:
    sid = schema_registry.register("t-key", KEY)
    reg = client(f"http://127.0.0.1:{free_port()},{schema_registry.url}", attempts=3)
    assert (await reg.get(sid)).schema_id == sid
    assert reg.url == schema_registry.url


async def test_non_avro_and_invalid_schemas_are_permanent(
    schema_registry: RegistryServer,
) -> None:
    proto = schema_registry.register("p-value", 'syntax = "proto3"; message M {}', "PROTOBUF")
    bad = schema_registry.register("b-value", {"type": "record", "name": "R", "fields": "x"})
    reg = client(schema_registry.url)
    with pytest.raises(DecodeError) as err:
        await reg.get(proto)
    assert err.value.code == "unsupported_schema_type"
    with pytest.raises(DecodeError) as err:
        await reg.get(bad)
    assert err.value.code == "bad_schema"
    before = len(schema_registry.requests)
    for sid, code in ((proto, "unsupported_schema_type"), (bad, "bad_schema")):
        with pytest.raises(DecodeError) as err:
            reg.cached(sid)  # cached for good: an id's schema never changes
        assert err.value.code == code
    assert len(schema_registry.requests) == before


async def test_other_4xx_is_a_decode_error(schema_registry: RegistryServer) -> None:
    schema_registry.fail_next(1, 422)
    with pytest.raises(DecodeError) as err:
        await client(schema_registry.url).get(1)
    assert err.value.code == "registry_rejected"


async def test_a_404_that_is_not_schema_not_found_is_transient(
    schema_registry: RegistryServer,
) -> None:
    sid = schema_registry.register("t-key", KEY)
    wrong_base = client(schema_registry.url + "/wrong-prefix", attempts=2)
    with pytest.raises(TransientError) as err:  # a misconfigured URL dead-letters nothing
        await wrong_base.get(sid)
    assert err.value.code == "registry_unavailable" and "base URL" in str(err.value)
    schema_registry.fail_next(1, 404, error_code=0)  # a proxy's bare 404, then the answer
    assert (await client(schema_registry.url).get(sid)).schema_id == sid
