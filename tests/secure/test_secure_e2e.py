"""The real ``warp-sink run`` against the secured stack, one run per security style: each
checks the exact fold in PostgreSQL, the dead letter on a topic the principal may only
write, and the group's commit in Kafka."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sink.stack.secure import SecureStackInfo
from tests.config.runs import free_port
from tests.secure.cases import Case, assert_delivered, config, prepare
from tests.support import run_sink, start_sink, stored_offsets

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("kafka", "pg"), [
    ("scram-sha-512", "password"),
    ("scram-sha-256", "password"),
    ("plain", "password"),
    ("mtls", "password"),
    ("scram-sha-512", "cert"),
])
async def test_secured_run_folds_dead_letters_and_commits(
        secure_stack: SecureStackInfo, tmp_path: Path, kafka: str, pg: str) -> None:
    case = Case.new()
    w = await prepare(secure_stack, case)
    cfg = config(tmp_path / "c.yaml", secure_stack, case, kafka=kafka, pg=pg)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    await assert_delivered(secure_stack, case, w, pg)
    out = done.stdout + done.stderr
    for secret in (secure_stack.sink_password, secure_stack.pg_password):
        assert secret not in out


async def test_stack_env_secure_configures_the_sink(secure_stack: SecureStackInfo,
                                                    tmp_path: Path) -> None:
    """``warp-sink stack env --secure`` prints variables with which ``check`` passes against
    the stack (SASL_SSL SCRAM-SHA-512 and the password role, verify-full)."""
    env = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sink", "stack", "env", "--secure", "--dir",
                         str(secure_stack.root)], capture_output=True, text=True, timeout=60,
        check=False)
    assert env.returncode == 0, env.stderr
    exported = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                    for line in env.stdout.splitlines() if line.startswith("export "))
    assert exported["WARP__SOURCE__BOOTSTRAP_SERVERS"] == secure_stack.sasl_ssl
    assert exported["WARP__SOURCE__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exported["WARP__DESTINATION__SSLMODE"] == "verify-full"
    case = Case.new()
    await prepare(secure_stack, case, n_events=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source:\n  topics: [{case.topic}]\ndestination:\n  type: postgresql\n"
                   f"  metadata_schema: {case.meta}\n")
    checked = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sink", "check", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **exported})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all checks passed" in checked.stdout


async def test_no_secret_in_the_metrics_of_a_secured_run(secure_stack: SecureStackInfo,
                                                         tmp_path: Path) -> None:
    """/metrics of a sink that logged in with SCRAM and a PostgreSQL password, scraped
    after it applied everything: no password, DSN or credential anywhere in it."""
    case = Case.new()
    w = await prepare(secure_stack, case)
    port = free_port()
    cfg = config(tmp_path / "c.yaml", secure_stack, case)
    cfg.write_text(cfg.read_text().replace("metrics_port: 0", f"metrics_port: {port}"))
    proc = await start_sink(cfg, log=tmp_path / "sink.log")
    try:
        dsn, ssl = secure_stack.pg_dsn("warp"), secure_stack.pg_ssl("password")
        deadline = asyncio.get_running_loop().time() + 120
        while (await stored_offsets(dsn, case.group, ssl=ssl, schema=case.meta)).get(
                (case.topic, 0), 0) < len(w.events) + 1:
            assert proc.returncode is None, (tmp_path / "sink.log").read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
            .read().decode())
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)
    assert "cartridge_warp_records_processed_total" in body
    for secret in (secure_stack.sink_password, secure_stack.pg_password,
                   secure_stack.admin_password):
        assert secret not in body
    assert "password" not in body.lower() and "postgresql://" not in body
