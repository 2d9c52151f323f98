"""The real ``warp-sink run`` against the secured stack, one run per security style: each
checks the exact fold in PostgreSQL, the dead letter on a topic the principal may only
write, and the group's commit in Kafka."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sink.stack.secure import SecureStackInfo
from tests.secure.cases import Case, assert_delivered, config, prepare
from tests.support import run_sink

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
