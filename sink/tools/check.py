"""``warp-sink check``: can this configuration run? One line per check, ``OK`` with what
was found or ``FAIL`` with the exact problem and a hint; exit 0 only when every check
passes. Secrets never appear: the DSN is shown masked and every message is scrubbed.

* kafka: TLS files readable, brokers reachable (and SASL/TLS accepted), the subscription
  matches existing topics, the consumer group's state, members and committed offsets,
  whether the dead-letter topic exists;
* schema registry: ``GET /subjects`` with the configured authentication;
* postgresql: connects, server version (``merge`` needs 15+), and the rights the sink
  needs: creating schemas and tables, proven in a transaction that is rolled back.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import errors as kafka_errors
from aiokafka.protocol.metadata import MetadataRequest

from sink.config import (
    DestinationConfig,
    Settings,
    SourceConfig,
    mask_dsn,
    postgres_connect_args,
    show_dsn,
)
from sink.decode import SchemaRegistry
from sink.errors import ConfigError, DecodeError, TransientError
from sink.logs import quiet, restore, scrub
from sink.postgres import connect_refusal
from sink.service import kafka_access_probe as probe
from sink.service import kafka_admin
from sink.service import kafka_principal as principal
from sink.service import kafka_refused as refused

Check = tuple[str, Callable[[], Awaitable[str]]]
KAFKA_TIMEOUT = 15.0
REGISTRY_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check found a problem; the message says what and how to fix it."""


# --- kafka -----------------------------------------------------------------------------


def _tls_files(src: SourceConfig) -> None:
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "schema_registry_cafile"):
        path = getattr(src, key)
        if path and not os.access(path, os.R_OK):
            raise CheckFailed(f"source.{key} {path} is missing or not readable "
                              "(hint: mount the certificate or fix the path)")


def _kafka_hint(exc: BaseException, src: SourceConfig) -> str:
    if isinstance(exc, kafka_errors.KafkaConnectionError | TimeoutError | OSError):
        return (f"cannot reach the brokers at {src.bootstrap_servers} "
                "(hint: check source.bootstrap_servers, that the broker is up, its "
                "advertised.listeners, and source.security_protocol)")
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed
                  | kafka_errors.AuthenticationFailedError
                  | kafka_errors.UnsupportedSaslMechanismError
                  | kafka_errors.IllegalSaslStateError):
        return (f"the brokers refused the SASL login: {exc} (hint: check source.sasl_mechanism, "
                "source.sasl_username and source.sasl_password)")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS handshake failed: {exc} (hint: check source.ssl_cafile and the "
                "broker's certificate)")
    if isinstance(exc, kafka_errors.TopicAuthorizationFailedError
                  | kafka_errors.GroupAuthorizationFailedError
                  | kafka_errors.ClusterAuthorizationFailedError):
        return (f"not authorised: {type(exc).__name__} (hint: grant the sink's principal "
                "Describe/Read on the topics and the group)")
    return f"{type(exc).__name__}: {exc}"


async def _kafka(settings: Settings) -> str:
    src = settings.source
    _tls_files(src)
    # TLS, SASL and OAuth refusals first, in the words `warp-sink run` stops with (aiokafka
    # would report most of them as an unreachable cluster, a refused OAuth token not at all)
    if fatal := await probe(src):
        raise CheckFailed(str(fatal))
    client = kafka_admin(src)
    try:
        try:
            await asyncio.wait_for(client.start(), timeout=KAFKA_TIMEOUT)
            topics = set(await asyncio.wait_for(client.list_topics(), timeout=KAFKA_TIMEOUT))
        except Exception as exc:
            # the same diagnosis as `warp-sink run`: aiokafka hides TLS and SASL refusals
            fatal = refused(exc, src) or await probe(src)
            raise CheckFailed(str(fatal) if fatal else _kafka_hint(exc, src)) from None
        if src.topic_pattern:
            subscribed = sorted(t for t in topics if re.fullmatch(src.topic_pattern, t))
            if not subscribed:
                raise CheckFailed(f"no topic matches source.topic_pattern {src.topic_pattern!r} "
                                  "(hint: is the Debezium connector running? Debezium names "
                                  "topics <topic.prefix>.<db>.<collection>)")
            found = f"{len(subscribed)} topics match the pattern"
        else:
            missing = sorted(set(src.topics) - topics)
            if missing and src.security_protocol == "PLAINTEXT":
                raise CheckFailed(f"topics not found: {', '.join(missing)} (hint: check "
                                  "source.topics; Debezium creates a topic on the first "
                                  "change of a collection)")
            if missing:  # the brokers hide a topic the principal may not Describe
                raise CheckFailed(f"topics not found or not authorised: {', '.join(missing)} "
                                  "(hint: check source.topics; Debezium creates a topic on "
                                  f"the first change of a collection; grant {principal(src)} "
                                  "Read and Describe on them)")
            subscribed = list(src.topics)
            found = f"{len(subscribed)} topics found"
        try:
            group = await asyncio.wait_for(_group(client, src.group_id, set(subscribed)),
                                           timeout=KAFKA_TIMEOUT)
        except Exception as exc:
            fatal = refused(exc, src)
            raise CheckFailed(str(fatal) if fatal else
                              f"group {src.group_id}: {_kafka_hint(exc, src)}") from None
        dlq = settings.dlq_topic
        dlq_note = (f"dead-letter topic {dlq} exists" if dlq in topics else
                    await _dlq_unlisted(client, src, dlq))
        return f"{found}; {group}; {dlq_note}"
    finally:
        await client.close()


async def _dlq_unlisted(client: Any, src: SourceConfig, dlq: str) -> str:
    """A dead-letter topic list_topics did not show: missing, or hidden from the principal.
    Asking by name (without auto-creation: check changes nothing) tells them apart. Write
    itself cannot be checked without writing."""
    # what describe_topics sends, but with auto-creation off
    meta = await asyncio.wait_for(
        client._send_request(MetadataRequest([dlq], allow_auto_topic_creation=False)),
        timeout=KAFKA_TIMEOUT)
    described = meta.to_object()["topics"]
    code = described[0].get("error_code", 0) if described else 0
    if code == kafka_errors.TopicAuthorizationFailedError.errno:
        raise CheckFailed(f"not authorised to describe the dead-letter topic {dlq} (hint: "
                          f"grant {principal(src)} Write and Describe on it, or set "
                          "errors.dlq_topic)")
    if code == 0:
        return f"dead-letter topic {dlq} exists"
    return (f"dead-letter topic {dlq} does not exist yet (created on the first dead letter if "
            "the broker auto-creates topics and the principal may Create it)")


async def _group(client: Any, group_id: str, topics: set[str]) -> str:
    described = await client.describe_consumer_groups([group_id])
    groups = described[0].to_object()["groups"] if described else []
    state = groups[0]["state"] if groups else "Dead"
    members = len(groups[0]["members"]) if groups else 0
    committed = await client.list_consumer_group_offsets(group_id)
    ours = [tp for tp, meta in committed.items() if tp.topic in topics and meta.offset >= 0]
    if state in ("Dead", "") and not committed:
        return f"group {group_id}: new (no commits yet; starts per source.auto_offset_reset)"
    live = f", {members} live members (other instances are running)" if members else ""
    return f"group {group_id}: {state}{live}, {len(ours)} partitions committed"


# --- schema registry -----------------------------------------------------------------


async def _registry(settings: Settings) -> str:
    src = settings.source
    url = src.schema_registry_url
    if not url:
        return (f"not configured (key_format {src.key_format}, value_format "
                f"{src.value_format})")
    shown = ",".join(mask_dsn(u) for u in url.split(","))
    try:
        registry = SchemaRegistry.from_config(
            src, timeout=REGISTRY_TIMEOUT, attempts=len(url.split(",")), initial_backoff=0.05)
        subjects = await registry.subjects()
    except ConfigError as exc:
        raise CheckFailed(f"{exc} (hint: check source.schema_registry_*)") from None
    except TransientError as exc:
        if exc.code == "registry_unauthorized":
            raise CheckFailed(f"{shown} refused the credentials (hint: check "
                              "source.schema_registry_username/_password or _token)") from None
        raise CheckFailed(f"cannot use {shown}: {exc} (hint: check source.schema_registry_url "
                          "and that the registry is up)") from None
    except DecodeError as exc:
        raise CheckFailed(f"{shown} rejected GET /subjects: {exc} (hint: is this a "
                          "Confluent-compatible schema registry URL?)") from None
    return f"{shown} answers ({len(subjects)} subjects)"


# --- postgresql ----------------------------------------------------------------------


def _pg_hint(exc: BaseException, d: DestinationConfig) -> str:
    params = d.dsn.params
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    if why := connect_refusal(exc):  # the words `warp-sink run` stops with
        return why.removeprefix("postgresql: ")
    if isinstance(exc, asyncpg.InvalidPasswordError
                  | asyncpg.InvalidAuthorizationSpecificationError):
        return (f"{exc} (hint: check the user and password: destination.connection_string, "
                "destination.password or destination.password_file)")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{exc} (hint: create the database or fix its name in the DSN)"
    if isinstance(exc, TimeoutError):
        return (f"no answer from {where} within destination.connection_timeout (hint: check "
                "the host, port and firewalls)")
    if isinstance(exc, OSError):
        return (f"cannot connect to {where}: {exc.strerror or exc} (hint: check the host and "
                "port in destination.connection_string and that PostgreSQL is up)")
    return f"{type(exc).__name__}: {exc}"


async def _postgres(settings: Settings) -> str:
    d = settings.destination
    for key in ("sslrootcert", "sslcert", "sslkey"):
        path = getattr(d, key)
        if path and not os.access(path, os.R_OK):
            raise CheckFailed(f"destination.{key} {path} is missing or not readable "
                              "(hint: mount the certificate or fix the path)")
    try:
        conn = await asyncpg.connect(**postgres_connect_args(d), timeout=d.connection_timeout)
    except Exception as exc:
        raise CheckFailed(_pg_hint(exc, d)) from None
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        number = int(await conn.fetchval("SHOW server_version_num"))
        user = await conn.fetchval("SELECT current_user")
        if d.upsert_mode == "merge" and number < 150000:
            raise CheckFailed(f"destination.upsert_mode merge needs PostgreSQL 15+, the server "
                              f"is {version} (hint: use upsert_mode on_conflict)")
        meta = d.metadata_schema
        meta_exists = bool(await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", meta))
        can_create_schema = bool(await conn.fetchval(
            "SELECT has_database_privilege(current_user, current_database(), 'CREATE')"))
        if not can_create_schema:
            raise CheckFailed(f"user {user} may not create schemas in this database (hint: "
                              f"GRANT CREATE ON DATABASE <db> TO {user})")
        if meta_exists and not await conn.fetchval(
            "SELECT has_schema_privilege(current_user, $1, 'CREATE') "
            "AND has_schema_privilege(current_user, $1, 'USAGE')", meta):
            raise CheckFailed(f"user {user} may not create tables in the metadata schema "
                              f"{meta} (hint: GRANT USAGE, CREATE ON SCHEMA {meta} TO {user})")
        # Prove it: create a schema and a table, then roll back.
        probe = f"warp_check_{uuid.uuid4().hex[:12]}"
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute(f'CREATE SCHEMA "{probe}"')
            await conn.execute(f'CREATE TABLE "{probe}".t (id text PRIMARY KEY, doc jsonb)')
        except asyncpg.PostgresError as exc:
            raise CheckFailed(f"user {user} could not create a schema and a table: {exc} (hint: "
                              "GRANT CREATE ON DATABASE to the sink's user)") from None
        finally:
            await tr.rollback()
    finally:
        await conn.close()
    meta_note = "exists" if meta_exists else "will be created"
    return (f"PostgreSQL {version}, user {user} may create schemas and tables; metadata "
            f"schema {meta} {meta_note}")


# --- running -------------------------------------------------------------------------


async def run_checks(settings: Settings) -> int:
    """Run every check, print one line each, return 0 when all passed, else 1."""
    levels = quiet(["aiokafka", "kafka"])  # the checks report connection problems themselves
    try:
        return await _run(settings)
    finally:
        restore(levels)


async def _run(settings: Settings) -> int:
    dsn = settings.destination.connection_string.get_secret_value()
    checks: list[Check] = [
        (f"kafka {settings.source.bootstrap_servers}", lambda: _kafka(settings)),
        ("schema registry", lambda: _registry(settings)),
        (f"postgresql {show_dsn(dsn)}", lambda: _postgres(settings)),
    ]
    failed = 0
    for name, fn in checks:
        try:
            print(f"OK    {scrub(name)}: {scrub(await fn())}", flush=True)
        except CheckFailed as exc:
            failed += 1
            print(f"FAIL  {scrub(name)}: {scrub(str(exc))}", flush=True)
        except Exception as exc:
            failed += 1
            print(f"FAIL  {scrub(name)}: {scrub(f'{type(exc).__name__}: {exc}')}", flush=True)
    print("all checks passed" if not failed else f"{failed} of {len(checks)} checks failed",
          flush=True)
    return 1 if failed else 0
