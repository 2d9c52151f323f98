"""Refusals a person must fix, told apart from outages: an untrusted or wrong TLS
certificate, a SASL login the brokers reject, an ACL that denies a topic, the group or the
dead-letter topic. Retrying those only hides them (a wrong password retried forever looks
like an outage), so they become one :class:`FatalError` line naming the component, the
cause and the setting to fix; never a secret.

aiokafka reports a refused bootstrap as "Unable to bootstrap", whatever the reason:
:func:`probe` then opens one connection itself (TLS, then the SASL login) to find out."""

from __future__ import annotations

import asyncio
import ssl
import struct
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.admin import SaslAuthenticateRequest, SaslHandShakeRequest

from sink.config import SourceConfig
from sink.errors import FatalError, tls_refusal
from sink.service.kafka import security_kwargs

PROBE_TIMEOUT = 10.0
AUTHORIZATION = (TopicAuthorizationFailedError, GroupAuthorizationFailedError,
                 ClusterAuthorizationFailedError, TransactionalIdAuthorizationFailed)
AUTHENTICATION = (SaslAuthenticationFailed, AuthenticationFailedError,
                  UnsupportedSaslMechanismError, IllegalSaslStateError,
                  AuthenticationMethodNotSupported)
# ApiVersions v0, the one request every listener answers before any login.
_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"


def principal(src: SourceConfig) -> str:
    if src.sasl_username and src.security_protocol.startswith("SASL"):
        return f"User:{src.sasl_username}"
    if src.ssl_certfile:
        return "the principal of source.ssl_certfile"
    return "User:ANONYMOUS"


def _subscription(src: SourceConfig) -> str:
    return (f"topics matching {src.topic_pattern!r}" if src.topic_pattern
            else f"topic {', '.join(src.topics)}")


def refused(exc: BaseException, src: SourceConfig, *, dlq: str | None = None) -> FatalError | None:
    """The FatalError for an authorization or authentication failure (``dlq``: met while
    writing that dead-letter topic), else None."""
    who = principal(src)
    if isinstance(exc, TopicAuthorizationFailedError) and dlq is not None:
        return FatalError(f"kafka: not authorised to write the dead-letter topic {dlq} "
                          f"(hint: create it if missing, grant {who} Write and Describe on "
                          "it, or set errors.dlq_topic)", code="kafka_acl")
    if isinstance(exc, TopicAuthorizationFailedError):
        return FatalError(f"kafka: not authorised to read {_subscription(src)} (hint: grant "
                          f"{who} Read and Describe on them)", code="kafka_acl")
    if isinstance(exc, GroupAuthorizationFailedError):
        return FatalError(f"kafka: not authorised to use the consumer group {src.group_id} "
                          f"(hint: grant {who} Read and Describe on the group)",
                          code="kafka_acl")
    if isinstance(exc, AUTHORIZATION):
        return FatalError(f"kafka: not authorised: {type(exc).__name__} (hint: grant {who} "
                          "the ACLs listed in the README's Security section)", code="kafka_acl")
    if isinstance(exc, AUTHENTICATION) and src.sasl_mechanism == "OAUTHBEARER":
        return FatalError(f"kafka: the brokers refused the OAuth token of client "
                          f"{src.sasl_oauth_client_id} (hint: the broker's OAuth settings — "
                          "issuer, audience, signing keys — must accept the tokens of "
                          "source.sasl_oauth_token_url)", code="kafka_auth")
    if isinstance(exc, AUTHENTICATION):
        return FatalError(f"kafka: the brokers refused the SASL login of user "
                          f"{src.sasl_username} with {src.sasl_mechanism or 'PLAIN'}: wrong "
                          "password, unknown user or mechanism not enabled (hint: check "
                          "source.sasl_username, source.sasl_password and "
                          "source.sasl_mechanism)", code="kafka_auth")
    return None


def _tls_fatal(exc: BaseException, src: SourceConfig) -> FatalError | None:
    why = tls_refusal(exc, "broker")
    if why is None:
        return None
    if "client certificate" in why:
        hint = ("set source.ssl_certfile and source.ssl_keyfile" if not src.ssl_certfile else
                "is source.ssl_certfile signed by a CA the broker trusts, and valid?")
    elif "refused the handshake" in why:
        hint = "the TLS versions and ciphers of client and broker must overlap"
    elif "host name" in why:
        hint = "use a broker address the certificate names in source.bootstrap_servers"
    else:
        hint = "source.ssl_cafile must hold the CA that signed the broker's certificate"
    return FatalError(f"kafka: {why} (hint: {hint})", code="kafka_tls")


async def _probe_one(host: str, port: int, src: SourceConfig) -> None:
    kw = security_kwargs(src)
    if src.security_protocol in ("SSL", "SASL_SSL"):
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=kw["ssl_context"],
                                                           server_hostname=host)
            try:
                # A broker that wants a client certificate says so right after the handshake.
                writer.write(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
                await writer.drain()
                await reader.readexactly(4)
            finally:
                writer.close()
        except ssl.SSLError as exc:
            raise _tls_fatal(exc, src) or exc from None
    if src.sasl_mechanism == "OAUTHBEARER":
        await _probe_oauth(host, port, src, kw)
    elif src.security_protocol.startswith("SASL"):
        try:
            conn = await create_conn(host, port, client_id=f"{src.client_id}-probe",
                                     request_timeout_ms=int(PROBE_TIMEOUT * 1000), **kw)
        except KafkaError as exc:
            raise refused(exc, src) or exc from None
        conn.close()


async def _probe_oauth(host: str, port: int, src: SourceConfig, kw: dict[str, Any]) -> None:
    """The OAUTHBEARER exchange by hand: aiokafka takes the broker's refusal (an error
    challenge, RFC 7628 §3.2.2) for success and only fails on the next request."""
    provider = kw["sasl_oauth_token_provider"]
    conn = await create_conn(host, port, client_id=f"{src.client_id}-probe",
                             request_timeout_ms=int(PROBE_TIMEOUT * 1000),
                             ssl_context=kw.get("ssl_context"),
                             security_protocol="SSL" if "ssl_context" in kw else "PLAINTEXT")
    try:
        shake = await conn.send(SaslHandShakeRequest("OAUTHBEARER"))
        if shake.error_code or "OAUTHBEARER" not in shake.enabled_mechanisms:
            raise refused(UnsupportedSaslMechanismError(), src) or KafkaError()
        token = await provider.token()
        resp = await conn.send(SaslAuthenticateRequest(
            f"n,,\x01auth=Bearer {token}\x01\x01".encode()))
        if resp.error_code or resp.sasl_auth_bytes:
            raise refused(SaslAuthenticationFailed(), src) or KafkaError()
    finally:
        conn.close()


async def probe(src: SourceConfig) -> FatalError | None:
    """Connect to the bootstrap brokers as the sink does; the FatalError a person must fix,
    or None when one broker accepted us or none answered (an outage: retried)."""
    for address in src.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            await asyncio.wait_for(_probe_one(host.strip("[]"), int(port), src), PROBE_TIMEOUT)
        except FatalError as exc:
            return exc
        except (OSError, TimeoutError, KafkaError, ValueError, asyncio.IncompleteReadError):
            continue
        return None
    return None


async def raise_if_refused(exc: BaseException, src: SourceConfig, *,
                           dlq: str | None = None) -> None:
    """Raise the FatalError behind ``exc`` when a person must fix it; return otherwise (the
    caller re-raises ``exc`` for the retry policy)."""
    fatal = refused(exc, src, dlq=dlq)
    # a refused OAuth token surfaces as whatever the next request meets (NodeNotReadyError)
    if fatal is None and isinstance(exc, KafkaError | OSError):
        fatal = _tls_fatal(exc, src) or await probe(src)
    if fatal is not None:
        raise fatal from None


async def start_consumer(consumer: Any, src: SourceConfig) -> None:
    """Start the group's consumer; a refusal a person must fix raises its FatalError,
    anything else goes to the caller's retries."""
    if src.sasl_mechanism == "OAUTHBEARER" and (fatal := await probe(src)):
        raise fatal  # aiokafka takes a refused token for success (see probe)
    try:
        await consumer.start()
    except Exception as exc:
        await raise_if_refused(exc, src)
        raise
