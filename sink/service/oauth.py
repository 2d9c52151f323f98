"""OAUTHBEARER tokens for Kafka from the OIDC client-credentials flow (RFC 6749 §4.4):
``POST sasl_oauth_token_url`` with the client id and secret (HTTP basic, form-encoded as
the RFC asks), ``grant_type=client_credentials`` and the optional scope; the answer's
``access_token`` is reused until 80% of its ``expires_in``. The endpoint's certificate is
checked against the system CAs and ``source.ssl_cafile``.

A refusal of the credentials (HTTP 400/401/403) or an untrusted endpoint certificate is a
:class:`FatalError`; an endpoint that does not answer is a :class:`TransientError`."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson
from aiokafka.abc import AbstractTokenProvider

from sink.config import SourceConfig
from sink.errors import FatalError, TransientError, tls_refusal

TOKEN_TIMEOUT = 10.0
DEFAULT_LIFETIME = 300.0  # when the answer gives no expires_in


class ClientCredentials(AbstractTokenProvider):  # type: ignore[misc]
    def __init__(self, src: SourceConfig) -> None:
        assert src.sasl_oauth_token_url and src.sasl_oauth_client_id
        assert src.sasl_oauth_client_secret is not None
        self.url = src.sasl_oauth_token_url
        self.client_id = src.sasl_oauth_client_id
        self._secret = src.sasl_oauth_client_secret
        self.scope = src.sasl_oauth_scope
        self.cafile = src.ssl_cafile
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetched = 0  # tokens fetched, for tests

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        token, lifetime = await asyncio.to_thread(self._fetch)
        self._token, self._renew_at = token, time.monotonic() + 0.8 * lifetime
        self.fetched += 1
        return token

    def _request(self) -> urllib.request.Request:
        quote = urllib.parse.quote_plus
        pair = f"{quote(self.client_id)}:{quote(self._secret.get_secret_value())}"
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope
                                                       else {})}
        return urllib.request.Request(
            self.url, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
                     "Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"})

    def _fetch(self) -> tuple[str, float]:
        ctx = ssl.create_default_context()
        if self.cafile:
            ctx.load_verify_locations(self.cafile)
        where = f"the OAuth token endpoint {self.url}"
        try:
            with urllib.request.urlopen(self._request(), timeout=TOKEN_TIMEOUT,
                                        context=ctx) as resp:
                body: Any = orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 401, 403):
                raise FatalError(
                    f"kafka: {where} refused the client credentials of {self.client_id}: HTTP "
                    f"{exc.code} {_oauth_error(exc)} (hint: check source.sasl_oauth_client_id, "
                    "sasl_oauth_client_secret and sasl_oauth_scope)", code="kafka_auth") from None
            raise TransientError(f"kafka: {where} answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, BaseException) and (why := tls_refusal(reason,
                                                                         "token endpoint")):
                raise FatalError(f"kafka: {why} (hint: source.ssl_cafile or the system CAs "
                                 "must hold the CA of the token endpoint)",
                                 code="kafka_tls") from None
            raise TransientError(f"kafka: cannot reach {where}: {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise TransientError(f"kafka: {where}: {type(exc).__name__}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalError(f"kafka: {where} answered without an access_token (hint: is "
                             "source.sasl_oauth_token_url the token endpoint?)",
                             code="kafka_auth")
        lifetime = body.get("expires_in")
        return token, float(lifetime) if isinstance(lifetime, int | float) else DEFAULT_LIFETIME


def _oauth_error(exc: urllib.error.HTTPError) -> str:
    """The endpoint's ``error`` code (RFC 6749 §5.2), never its free text."""
    try:
        body = orjson.loads(exc.read())
    except (OSError, ValueError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:60] if isinstance(error, str) else ""


_PROVIDERS: dict[tuple[str | None, ...], ClientCredentials] = {}


def token_provider(src: SourceConfig) -> ClientCredentials:
    """One provider per set of credentials in this process: the consumer, the dead-letter
    producer and the admin client share its token."""
    secret = src.sasl_oauth_client_secret
    key = (src.sasl_oauth_token_url, src.sasl_oauth_client_id,
           secret.get_secret_value() if secret else None, src.sasl_oauth_scope, src.ssl_cafile)
    if key not in _PROVIDERS:
        _PROVIDERS[key] = ClientCredentials(src)
    return _PROVIDERS[key]
