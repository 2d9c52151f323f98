"""The real ``warp-sink run`` against the secured stack, one run per security style: each
checks the exact fold in PostgreSQL, the dead letter on a topic the principal may only
write, and the group's commit in Kafka."""

from __future__ import annotations

import asyncio
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
