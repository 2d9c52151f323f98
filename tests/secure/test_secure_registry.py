"""Avro through the secured stack with the schema registry behind TLS (the stack's CA) and
basic auth or a bearer token: the real ``warp-sink run`` over SASL_SSL folds the events,
dead-letters an undecodable one, commits; every registry request carried the credentials."""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink.stack.pki import Pki
from sink.stack.secure import SecureStackInfo
from sink.tools.events import MongoEvents
from tests.e2e.test_avro import MONGO_ENV, MONGO_KEY, A, B, C, Framer, mongo_messages
from tests.schema_registry_server import RegistryServer
from tests.secure.cases import Case, config
from tests.support import (
    committed_offsets,
    end_offsets,
    produce,
    read_topic,
    run_sink,
    table_rows,
)

pytestmark = pytest.mark.integration
REGISTRY_PASSWORD = f"reg-{secrets.token_hex(8)}"
REGISTRY_TOKEN = f"tok-{secrets.token_hex(8)}"


@pytest.fixture(params=["basic", "bearer"])
def secure_registry(request: pytest.FixtureRequest,
                    secure_stack: SecureStackInfo) -> Iterator[tuple[RegistryServer, dict]]:
    """An https registry with a certificate from the stack's CA, and the sink's keys for it."""
    pair = Pki(secure_stack.root / "pki").issue("registry-server", "127.0.0.1", server=True)
    if request.param == "basic":
        auth = {"username": "warp-registry", "password": REGISTRY_PASSWORD}
        keys = {"schema_registry_username": "warp-registry",
                "schema_registry_password": REGISTRY_PASSWORD}
    else:
        auth = {"token": REGISTRY_TOKEN}
        keys = {"schema_registry_token": REGISTRY_TOKEN}
    with RegistryServer(certfile=str(pair.cert), keyfile=str(pair.key), **auth) as server:
        yield server, {"schema_registry_url": server.url,
                       "schema_registry_cafile": secure_stack.ca, **keys}


async def test_avro_over_sasl_ssl_with_tls_registry(
        secure_stack: SecureStackInfo, secure_registry: tuple[RegistryServer, dict],
        tmp_path: Path) -> None:
    registry, keys = secure_registry
    assert registry.url.startswith("https://")
    case = Case.new()
    messages = mongo_messages(Framer(registry, case.topic, MONGO_KEY, MONGO_ENV),
                              MongoEvents(case.db, "users", prefix="dbserver1"))
    key, value = messages[0]
    assert value is not None
    unknown_id = (key, value[:1] + struct.pack(">I", 9999) + value[5:])
    messages = [*messages[:2], unknown_id, *messages[2:]]
    await asyncio.gather(secure_stack.create_topic(case.topic),
                         secure_stack.create_topic(case.dlq))
    admin = secure_stack.admin()
    bootstrap = admin.pop("bootstrap_servers")
    await produce(bootstrap, case.topic, messages, **admin)
    cfg = config(tmp_path / "c.yaml", secure_stack, case,
                 source={"key_format": "avro", "value_format": "avro", **keys})

    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = await table_rows(secure_stack.pg_dsn(), case.db, "users", ssl=secure_stack.pg_ssl())
    assert set(rows) == {A, B, C}
    assert rows[A]["age"] == 23 and rows[B]["age"] == 99 and rows[C]["is_deleted"] is True
    letters = await read_topic(bootstrap, case.dlq, **admin)
    assert [(m.key, m.value) for m in letters] == [unknown_id]
    assert dict(letters[0].headers)["warp.error.code"] == b"unknown_schema_id"
    ends = await end_offsets(bootstrap, case.topic, **admin)
    assert ends == {0: len(messages)}
    assert await committed_offsets(bootstrap, case.group, case.topic, **admin) == ends
    fetched = [r for r in registry.requests if r.path.startswith("/schemas/ids/")]
    assert fetched, "the sink fetched its schemas from the registry"
    assert all(r.headers.get("authorization") for r in fetched)
    out = done.stdout + done.stderr
    for secret in (REGISTRY_PASSWORD, REGISTRY_TOKEN, secure_stack.sink_password):
        assert secret not in out
        for m in letters:
            assert all(secret.encode() not in v for _, v in m.headers)
