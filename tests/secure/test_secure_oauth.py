"""OAUTHBEARER end to end: the sink fetches a token from an OIDC token endpoint with the
client-credentials flow, the broker validates it (``OAuthBearerValidatorCallbackHandler``
with the stack's JWKS, issuer and audience) and maps its ``sub`` to ``User:warp`` with
that principal's ACLs. Refusals (credentials, token) stop the sink with one line."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sink.stack.secure import SecureStackInfo
from tests.secure.cases import Case, assert_delivered, config, prepare
from tests.secure.test_secure_failures import _check
from tests.secure.token_server import CLIENT_ID, TokenServer
from tests.support import run_sink

pytestmark = pytest.mark.integration
SECRET = f"client-secret-{secrets.token_hex(8)}"


@pytest.fixture
def token_server(secure_stack: SecureStackInfo) -> Iterator[TokenServer]:
    server = TokenServer(secure_stack.root, SECRET)
    try:
        yield server
    finally:
        server.close()


def _oauth(info: SecureStackInfo, server: TokenServer, **over: Any) -> dict[str, Any]:
    return {"bootstrap_servers": info.sasl_ssl, "security_protocol": "SASL_SSL",
            "ssl_cafile": info.ca, "sasl_mechanism": "OAUTHBEARER", "sasl_username": None,
            "sasl_password": None, "sasl_oauth_token_url": server.url,
            "sasl_oauth_client_id": CLIENT_ID, "sasl_oauth_client_secret": SECRET,
            "sasl_oauth_scope": "kafka", **over}


async def test_oauthbearer_run_folds_dead_letters_and_commits(
        secure_stack: SecureStackInfo, token_server: TokenServer, tmp_path: Path) -> None:
    case = Case.new()
    w = await prepare(secure_stack, case)
    cfg = config(tmp_path / "c.yaml", secure_stack, case,
                 source=_oauth(secure_stack, token_server))
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    await assert_delivered(secure_stack, case, w)
    assert token_server.grants and all(g["scope"] == "kafka" for g in token_server.grants)
    # one token shared by the consumer, the admin and the dead-letter producer
    assert len(token_server.grants) == 1
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(("name", "says"), [
    ("wrong-client-secret", "refused the client credentials of warp-sink: HTTP 401 "
                            "invalid_client"),
    ("token-for-another-audience", "the brokers refused the OAuth token of client warp-sink"),
])
async def test_oauthbearer_refusal_stops_fast(secure_stack: SecureStackInfo,
                                              token_server: TokenServer, tmp_path: Path,
                                              name: str, says: str) -> None:
    case = Case.new()
    await prepare(secure_stack, case, n_events=2)
    over: dict[str, Any] = {}
    if name == "wrong-client-secret":
        over["sasl_oauth_client_secret"] = "not-" + SECRET
    else:
        token_server.audience = "another-service"
    cfg = config(tmp_path / "c.yaml", secure_stack, case,
                 source=_oauth(secure_stack, token_server, **over))
    started = time.monotonic()
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    assert took < 15, f"{took:.1f}s"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("warp-sink: kafka: ") and says in last, last
    assert SECRET not in done.stdout + done.stderr
    checked = await asyncio.to_thread(_check, cfg)
    assert checked.returncode == 1
    failed = [ln for ln in checked.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  kafka ") and says in failed[0], (
        checked.stdout)
    assert SECRET not in checked.stdout + checked.stderr
