"""The security keys issue 14 added: OAUTHBEARER's client-credentials keys and the
PostgreSQL client certificate (``destination.sslcert``/``sslkey``): their rules, the ssl
context they make, and the client secret kept out of text."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from sink.config import load_settings, postgres_ssl
from sink.config.secrets import secret_values
from sink.errors import ConfigError
from sink.stack.pki import Pki

BASE = """\
source:
  topics: ["t"]
destination:
  connection_string: "postgresql://warp@db.example:5432/warehouse"
"""
OAUTH = {"source.security_protocol": "SASL_SSL", "source.sasl_mechanism": "OAUTHBEARER",
         "source.sasl_oauth_token_url": "https://idp.example/oauth2/token",
         "source.sasl_oauth_client_id": "warp-sink",
         "source.sasl_oauth_client_secret": "cl1ent-s3cret"}


def _load(tmp_path: Path, **over: Any) -> Any:
    path = tmp_path / "c.yaml"
    path.write_text(BASE)
    return load_settings(path, {k: v for k, v in over.items() if v is not None}, environ={})


def test_oauthbearer_needs_no_username_or_password(tmp_path: Path) -> None:
    s = _load(tmp_path, **OAUTH, **{"source.sasl_oauth_scope": "kafka"})
    assert s.source.sasl_mechanism == "OAUTHBEARER" and s.source.sasl_username is None
    assert "cl1ent-s3cret" in secret_values(s)  # hence scrubbed from logs and errors


@pytest.mark.parametrize(("over", "says"), [
    ({"source.sasl_oauth_token_url": None}, "source.sasl_oauth_token_url: required with "
                                            "sasl_mechanism OAUTHBEARER"),
    ({"source.sasl_oauth_client_secret": None}, "source.sasl_oauth_client_secret: required"),
    ({"source.sasl_oauth_token_url": "idp.example/token"},
     "source.sasl_oauth_token_url: must be an http:// or https:// URL"),
    ({"source.sasl_mechanism": "PLAIN", "source.sasl_username": "u",
      "source.sasl_password": "p"}, "source.sasl_oauth_token_url: needs sasl_mechanism "
                                    "OAUTHBEARER"),
])
def test_oauthbearer_rules(tmp_path: Path, over: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, **{**OAUTH, **over})
    assert says in str(caught.value)
    assert "cl1ent-s3cret" not in str(caught.value)


@pytest.mark.parametrize(("over", "says"), [
    ({"destination.sslkey": "/k.pem"}, "destination.sslkey: needs sslcert"),
    ({"destination.sslcert": "/c.pem", "destination.sslkey": "/k.pem"},
     "destination.sslcert: needs sslmode require, verify-ca or verify-full"),
    ({"destination.sslcert": "/c.pem", "destination.sslmode": "prefer"},
     "destination.sslcert: needs sslmode require"),
])
def test_client_certificate_rules(tmp_path: Path, over: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, **over)
    assert says in str(caught.value)


@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_client_certificate_goes_into_the_ssl_context(tmp_path: Path, mode: str) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init()
    pair = pki.issue("client", "warp_cert", server=False)
    s = _load(tmp_path, **{"destination.sslmode": mode, "destination.sslrootcert": str(pki.ca),
                           "destination.sslcert": str(pair.cert),
                           "destination.sslkey": str(pair.key)})
    ctx = postgres_ssl(s.destination)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.check_hostname is (mode == "verify-full")
    assert ctx.verify_mode == (ssl.CERT_REQUIRED if mode == "verify-full" else ssl.CERT_NONE)
    # that the certificate is presented is proven against the server: tests/secure (cert)
