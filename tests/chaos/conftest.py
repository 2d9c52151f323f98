"""The chaos tests' fixture: Toxiproxy in front of the local stack's servers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sink.stack.postgres import pg_dsn
from tests import paths
from tests.chaos.campaign import Env
from tests.chaos.toxiproxy import NoGoToolchain, Server, ensure_binary
from tests.harness import Stack


@pytest.fixture(scope="session")
def chaos_env(stack: Stack) -> Iterator[Env]:
    """Toxiproxy in front of the local stack's PostgreSQL and of its broker's PROXIED
    listener (advertised at the Kafka proxy's port, so every connection the sink makes to
    the broker, not only the bootstrap, goes through the proxy)."""
    if stack.local is None:
        pytest.skip("the chaos campaign needs the local stack (external servers are in use)")
    proxied = stack.local.kafka.proxied()
    info = stack.local.info()
    if proxied is None or info is None:
        pytest.skip("the local broker has no PROXIED listener (LocalStack(..., "
                    "kafka_proxy_listener=True) when it is first created)")
    try:
        binary = ensure_binary()
    except NoGoToolchain as exc:
        pytest.skip(f"toxiproxy cannot be built: {exc}")
    # Outside pytest's temporary root, which keeps only the last few sessions' (and other
    # sessions run beside this one): the logs of a failed trial must outlive the run.
    work = Path(os.environ.get("CHAOS_WORKDIR") or
                paths.ROOT / ".warp" / "chaos" / time.strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    server = Server(binary, log_path=work / "toxiproxy.log")
    client = server.start()
    try:
        listener, advertised = proxied
        kafka = client.create_proxy("kafka", upstream=f"127.0.0.1:{listener}",
                                    listen=f"127.0.0.1:{advertised}")
        pg = client.create_proxy("pg", upstream=f"127.0.0.1:{info.pg_port}")
        yield Env(client, kafka, pg, kafka.listen, pg_dsn(pg.port), stack.bootstrap_servers,
                  stack.pg_dsn, work)
    finally:
        server.stop()


@pytest.fixture
def chaos(chaos_env: Env) -> Iterator[Env]:
    """``chaos_env`` with every toxic removed and both proxies enabled after the test."""
    try:
        yield chaos_env
    finally:
        chaos_env.toxi.reset()
