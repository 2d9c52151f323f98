"""Refusals a person must fix stop the sink fast with one line that names the component
and the cause, and ``warp-sink check`` names the same piece; retrying them would look like
an outage forever. No secret appears in any output. Plus ``check`` passing against the
secured stack with the right configuration."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sink.stack.pki import Pki
from sink.stack.secure import SecureStackInfo
from tests.secure.cases import Case, config, prepare
from tests.support import run_sink

pytestmark = pytest.mark.integration

WRONG = f"wrong-pw-{uuid.uuid4().hex[:12]}"
FAST_S = 15.0


@dataclass
class Refusal:
    component: str  # "kafka" or "postgresql"
    run_says: str  # in the sink's last stderr line
    check_says: str  # in check's FAIL line for the component
    override: Callable[[SecureStackInfo, Case], dict[str, Any]] = field(
        default=lambda info, case: {})


REFUSALS = {
    "kafka-wrong-password": Refusal(
        "kafka", "refused the SASL login of user warp", "refused the SASL login of user warp",
        lambda i, c: {"source": {"sasl_password": WRONG}}),
    "kafka-unknown-scram-user": Refusal(
        "kafka", "refused the SASL login of user ghost", "refused the SASL login of user ghost",
        lambda i, c: {"source": {"sasl_username": "ghost"}}),
    "kafka-untrusted-certificate": Refusal(
        "kafka", "broker's certificate is not trusted", "broker's certificate is not trusted",
        lambda i, c: {"source": {"ssl_cafile": i.rogue_ca}}),
    "kafka-hostname-mismatch": Refusal(
        "kafka", "not valid for the host name", "not valid for the host name",
        lambda i, c: {"source": {"bootstrap_servers":
                                 i.sasl_ssl.replace("127.0.0.1", "localhost")}}),
    "kafka-missing-client-certificate": Refusal(
        "kafka", "refused the client certificate or its absence (SSLV3_ALERT_BAD_CERTIFICATE) "
        "(hint: set source.ssl_certfile", "refused the client certificate",
        lambda i, c: {"kafka": "mtls", "source": {"ssl_certfile": None, "ssl_keyfile": None}}),
    "kafka-acl-read": Refusal(
        "kafka", "not authorised to read topic other.", "not found or not authorised: other.",
        lambda i, c: {"source": {"topics": [c.topic.replace("secure.", "other.")]}}),
    "kafka-acl-group": Refusal(
        "kafka", "not authorised to use the consumer group other-",
        "not authorised to use the consumer group other-",
        lambda i, c: {"source": {"group_id": c.group.replace("warp-secure", "other")}}),
    "kafka-acl-dlq": Refusal(
        "kafka", "not authorised to write the dead-letter topic other-dlq.",
        "not authorised to describe the dead-letter topic other-dlq.",
        lambda i, c: {"dlq": c.dlq.replace("secure-dlq.", "other-dlq.")}),
    "postgresql-pg-hba": Refusal(
        "postgresql", 'no pg_hba.conf entry for host "127.0.0.1", user "warp"',
        "no pg_hba.conf entry", lambda i, c: {"destination": {"sslmode": "disable"}}),
    "postgresql-wrong-password": Refusal(
        "postgresql", 'password authentication failed for user "warp"',
        'password authentication failed for user "warp"',
        lambda i, c: {"destination": {"connection_string": i.pg_dsn(password=WRONG)}}),
    "postgresql-untrusted-certificate": Refusal(
        "postgresql", "server's certificate is not trusted", "server's certificate is not trusted",
        lambda i, c: {"destination": {"sslrootcert": i.rogue_ca}}),
    "postgresql-hostname-mismatch": Refusal(
        "postgresql", "server's certificate is not valid for the host name",
        "server's certificate is not valid for the host name",
        lambda i, c: {"destination": {"connection_string":
                                      i.pg_dsn().replace("127.0.0.1", "localhost")}}),
    "postgresql-missing-client-certificate": Refusal(
        "postgresql", "requires a valid client certificate (hint: set destination.sslcert",
        "requires a valid client certificate",
        lambda i, c: {"pg": "cert", "destination": {"sslcert": None, "sslkey": None}}),
}


def _secrets(info: SecureStackInfo) -> list[str]:
    return [WRONG, info.sink_password, info.admin_password, info.pg_password]


def _check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sink", "check", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", list(REFUSALS))
async def test_refusal_stops_fast_and_says_what(secure_stack: SecureStackInfo,
                                                tmp_path: Path, name: str) -> None:
    refusal = REFUSALS[name]
    case = Case.new()
    over = refusal.override(secure_stack, case)
    if dlq := over.pop("dlq", None):
        case.dlq = dlq  # exists (the admin made it) but User:warp may not write it
    await prepare(secure_stack, case, n_events=6)
    await asyncio.gather(*(secure_stack.create_topic(t) for t in
                           over.get("source", {}).get("topics", [])))
    cfg = config(tmp_path / "c.yaml", secure_stack, case, **over)

    started = time.monotonic()
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert took < FAST_S, f"{took:.1f}s: {done.stderr[-2000:]}"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"warp-sink: {refusal.component}: "), last
    assert refusal.run_says in last, last
    output = done.stdout + done.stderr
    for secret in _secrets(secure_stack):
        assert secret not in output
    if refusal.component == "postgresql":  # nothing was read before the refusal
        assert "transient failure" not in output

    checked = await asyncio.to_thread(_check, cfg)
    assert checked.returncode == 1, checked.stdout
    lines = checked.stdout.splitlines()
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    assert len(failed) == 1, lines
    assert failed[0].startswith(f"FAIL  {refusal.component} "), lines
    assert refusal.check_says in failed[0], failed[0]
    for secret in _secrets(secure_stack):
        assert secret not in checked.stdout + checked.stderr


@pytest.mark.parametrize(("kafka", "pg"), [("scram-sha-512", "password"), ("mtls", "cert")])
async def test_check_passes_with_the_right_configuration(
        secure_stack: SecureStackInfo, tmp_path: Path, kafka: str, pg: str) -> None:
    case = Case.new()
    await prepare(secure_stack, case, n_events=2)
    cfg = config(tmp_path / "c.yaml", secure_stack, case, kafka=kafka, pg=pg)
    checked = await asyncio.to_thread(_check, cfg)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all checks passed" in checked.stdout
    assert f"dead-letter topic {case.dlq} exists" in checked.stdout
    user = "warp_cert" if pg == "cert" else "warp"
    assert f"user {user} may create schemas and tables" in checked.stdout


async def test_expired_broker_certificate_stops_fast(secure_stack: SecureStackInfo,
                                                     tmp_path: Path) -> None:
    """A TLS listener whose certificate (from the stack's CA) expired yesterday: the sink
    names the expiry instead of retrying. The listener is a bare TLS server: the handshake
    is all that happens."""
    pair = Pki(secure_stack.root / "pki").issue("expired-server", "127.0.0.1", server=True,
                                               expired=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pair.cert), str(pair.key))

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        case = Case.new()
        cfg = config(tmp_path / "c.yaml", secure_stack, case, kafka="mtls",
                     source={"bootstrap_servers": f"127.0.0.1:{port}"})
        started = time.monotonic()
        done = await asyncio.to_thread(run_sink, cfg, timeout=60)
        took = time.monotonic() - started
        checked = await asyncio.to_thread(_check, cfg)
    finally:
        server.close()
    assert done.returncode == 1 and took < FAST_S, (took, done.stderr[-2000:])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("warp-sink: kafka: TLS: the broker's certificate has expired"), last
    failed = [ln for ln in checked.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(failed) == 1 and "broker's certificate has expired" in failed[0], checked.stdout
