"""An asyncio client for the Confluent Schema Registry REST API (the subset the sink uses).

* ``GET /schemas/ids/{id}`` → the writer schema of a Confluent-framed message
  (``schemaType`` absent means AVRO). Each id is fetched once: the parsed fastavro schema
  the decoder's :class:`~sink.decode.schema.SchemaNode` and the reader generated for the
  schema (:mod:`sink.decode.avro_reader`) are cached by id (ids are
  immutable in a registry). :meth:`SchemaRegistry.cached` is the synchronous lookup the
  decoder's fast path uses; :meth:`SchemaRegistry.get` fetches on a miss (concurrent misses
  of one id share one request).
* ``GET /subjects`` (``warp-sink check``) and ``POST /subjects/{subject}/versions``
  (tools and tests that produce Avro).

Authentication: HTTP basic (``username``/``password``, or ``user:password@`` in the URL)
or a bearer ``token``; TLS verified against ``cafile`` when given, else the system CAs.
Several URLs may be given comma-separated; a failing one hands over to the next.
Environment proxies are not used. Credentials are sent only with the first request (never
forwarded on redirects) and never appear in logs, exception messages or ``repr``.

Errors:

* 5xx, timeouts, refused/reset connections → retried with exponential backoff and jitter,
  ``attempts`` times in all, then :class:`~sink.errors.TransientError` (code
  ``registry_unavailable``). 401/403 also raise ``TransientError`` (code
  ``registry_unauthorized``): a credentials problem is not the record's fault, so it must
  never dead-letter records.
* 404 with ``error_code`` 40403 (schema not found) → asked again until
  ``not_found_attempts`` such answers (a registry follower may lag behind its leader),
  then :class:`~sink.errors.DecodeError` with code ``unknown_schema_id`` (permanent: the
  record goes to the dead-letter topic). The answer is remembered for ``not_found_ttl``
  seconds so a burst of such records costs one lookup. A 404 *without* that error code
  (a proxy, a wrong base path) is treated like a 5xx: a misconfigured URL must not
  dead-letter every record.
* A schema that is not AVRO (``unsupported_schema_type``) or that fastavro cannot parse
  (``bad_schema``) → ``DecodeError``, cached for good (an id's schema never changes).

Length: one HTTP client, kept whole: its retry, failover, caching and credential rules
interact (a 404 is retried differently from a 5xx, a cached miss expires), and splitting
them would spread one state machine over several files.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from fastavro import parse_schema

from sink.decode.avro_reader import AvroReader, compile_reader, enabled
from sink.decode.common import UNREAD_SOURCE_FIELDS
from sink.decode.schema import SchemaNode, schema_node
from sink.errors import ConfigError, DecodeError, TransientError

if TYPE_CHECKING:
    from sink.config import SourceConfig

__all__ = ["SchemaRegistry", "WriterSchema"]

log = structlog.get_logger("sink.registry")

_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_MAX_BODY = 16 * 1024 * 1024  # a schema document larger than this is refused
_INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """One registry schema, ready for decoding: parse once, use for every message."""

    schema_id: int
    schema_type: str  # "AVRO"
    text: str  # the schema as the registry returned it
    parsed: Any  # fastavro's parsed form (pass to schemaless_reader)
    node: SchemaNode | None  # the decoder's view (connect.name, logical types)
    reader: AvroReader | None = None  # generated for this schema; None: use fastavro


class _HttpStatus(Exception):
    def __init__(self, status: int, error_code: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class _Unreachable(Exception):
    """A transport failure worth retrying (timeout, refused, reset, bad gateway...)."""


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)  # pydantic SecretStr
    text = get() if callable(get) else value
    return None if text in (None, "") else str(text)


def _split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``https://u:p@host/`` → (``https://host/``, "u", "p"); the URL must be http(s)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("schema registry URL must be http:// or https:// with a host name")
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, user, password


class SchemaRegistry:
    """Confluent Schema Registry client with a cache by schema id (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: Any = None,
        token: Any = None,
        cafile: str | None = None,
        timeout: float = 10.0,
        attempts: int = 6,
        not_found_attempts: int = 3,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        not_found_ttl: float = 30.0,
    ) -> None:
        urls: list[str] = []
        for raw in url.split(","):
            if not raw.strip():
                continue
            clean, user, pw = _split_userinfo(raw)
            urls.append(clean)
            if user is not None and username is None:
                username = user
            if pw is not None and _secret(password) is None:
                password = pw
        if not urls:
            raise ConfigError("schema registry URL is empty")
        self._urls = urls
        self._current = 0
        secret = _secret(password)
        bearer = _secret(token)
        if bearer is not None and (secret is not None or username):
            raise ConfigError("schema registry: set either username/password or a token, not both")
        self._auth: str | None = None
        if bearer is not None:
            self._auth = f"Bearer {bearer}"
        elif username or secret is not None:
            pair = f"{username or ''}:{secret or ''}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode("ascii")
        self._ssl: ssl.SSLContext | None = None
        if any(u.startswith("https:") for u in urls):
            try:
                self._ssl = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"schema registry cafile {cafile!r} cannot be loaded: {exc}"
                ) from None
        elif cafile is not None:
            self._ssl = None  # plain http: a CA file has nothing to verify
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self._ssl),
        )
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.not_found_attempts = max(1, not_found_attempts)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.not_found_ttl = not_found_ttl
        self._cache: dict[int, WriterSchema] = {}
        self._bad: dict[int, DecodeError] = {}  # permanent per-id failures
        self._missing: dict[int, float] = {}  # id -> monotonic time a 404 expires
        self._inflight: dict[int, asyncio.Task[WriterSchema]] = {}
        self.requests = 0  # HTTP requests sent (for tests and metrics)

    @classmethod
    def from_config(cls, source: SourceConfig, **kw: Any) -> SchemaRegistry:
        """Build the client from ``source.schema_registry_*`` settings."""
        if not source.schema_registry_url:
            raise ConfigError("source.schema_registry_url is not set")
        return cls(
            source.schema_registry_url,
            username=source.schema_registry_username,
            password=source.schema_registry_password,
            token=source.schema_registry_token,
            cafile=source.schema_registry_cafile,
            **kw,
        )

    def __repr__(self) -> str:
        auth = "none" if self._auth is None else self._auth.split(" ", 1)[0].lower()
        return f"SchemaRegistry({','.join(self._urls)!r}, auth={auth}, cached={len(self._cache)})"

    @property
    def url(self) -> str:
        """The registry URL in use, without credentials."""
        return self._urls[self._current]

    # ----------------------------------------------------------------- schemas by id

    def cached(self, schema_id: int) -> WriterSchema | None:
        """The schema if it is cached (no I/O); raises the id's permanent DecodeError."""
        found = self._cache.get(schema_id)
        if found is None and schema_id in self._bad:
            raise self._copy(self._bad[schema_id])
        return found

    async def get(self, schema_id: int) -> WriterSchema:
        """The writer schema for ``schema_id``: from the cache, else from the registry."""
        found = self.cached(schema_id)
        if found is not None:
            return found
        expires = self._missing.get(schema_id)
        if expires is not None:
            if time.monotonic() < expires:
                raise self._not_found(schema_id)
            del self._missing[schema_id]
        task = self._inflight.get(schema_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch(schema_id))
            self._inflight[schema_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(schema_id, None))
        return await asyncio.shield(task)

    def add(self, schema_id: int, schema: Any, schema_type: str = "AVRO") -> WriterSchema:
        """Put a schema (JSON text or parsed JSON) into the cache by hand (tools, benches)."""
        text = schema if isinstance(schema, str) else orjson.dumps(schema).decode()
        ws = self._build(schema_id, text, schema_type)
        self._cache[schema_id] = ws
        return ws

    async def _fetch(self, schema_id: int) -> WriterSchema:
        if not _INT32[0] <= schema_id <= _INT32[1]:
            raise self._not_found(schema_id)
        body = await self._request_json(
            "GET", f"/schemas/ids/{schema_id}", what=f"schema id {schema_id}",
            not_found_attempts=self.not_found_attempts,
            on_not_found=lambda: self._remember_missing(schema_id),
        )  # fmt: skip
        try:
            if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
                raise DecodeError(
                    f"schema registry answered schema id {schema_id} without a schema",
                    code="bad_schema",
                )
            schema_type = body.get("schemaType") or "AVRO"
            if body.get("references"):
                raise DecodeError(
                    f"schema id {schema_id} uses schema references (not supported)",
                    code="unsupported_schema",
                )
            ws = self._build(schema_id, body["schema"], str(schema_type))
        except DecodeError as exc:
            self._bad[schema_id] = exc
            raise
        self._cache[schema_id] = ws
        return ws

    def _build(self, schema_id: int, text: str, schema_type: str) -> WriterSchema:
        if schema_type.upper() != "AVRO":
            raise DecodeError(
                f"schema id {schema_id} is a {schema_type} schema; only AVRO is supported",
                code="unsupported_schema_type",
            )
        try:
            raw = orjson.loads(text)
            parsed = parse_schema(orjson.loads(text))
            node = schema_node(raw)
        except Exception as exc:
            raise DecodeError(
                f"schema id {schema_id} is not a valid Avro schema: {type(exc).__name__}: "
                f"{str(exc)[:200]}",
                code="bad_schema",
            ) from None
        reader = compile_reader(parsed, UNREAD_SOURCE_FIELDS) if enabled() else None
        return WriterSchema(schema_id, "AVRO", text, parsed, node, reader)

    def _remember_missing(self, schema_id: int) -> None:
        self._missing[schema_id] = time.monotonic() + self.not_found_ttl
        if len(self._missing) > 10_000:  # garbage ids: keep the table small
            now = time.monotonic()
            self._missing = {k: v for k, v in self._missing.items() if v > now}

    def _not_found(self, schema_id: int) -> DecodeError:
        return DecodeError(
            f"schema id {schema_id} is not in the schema registry", code="unknown_schema_id"
        )

    @staticmethod
    def _copy(exc: DecodeError) -> DecodeError:
        return DecodeError(str(exc), code=exc.code)

    # ----------------------------------------------------------------- other endpoints

    async def subjects(self) -> list[str]:
        """``GET /subjects`` (used by ``warp-sink check``)."""
        body = await self._request_json("GET", "/subjects", what="subjects")
        if not isinstance(body, list):
            raise TransientError("schema registry: /subjects did not answer a list",
                                 code="registry_unavailable")
        return [str(s) for s in body]

    async def register(self, subject: str, schema: Any, schema_type: str = "AVRO") -> int:
        """``POST /subjects/{subject}/versions``: register (or find) a schema, return its id."""
        text = schema if isinstance(schema, str) else orjson.dumps(schema).decode()
        payload: dict[str, Any] = {"schema": text}
        if schema_type.upper() != "AVRO":
            payload["schemaType"] = schema_type.upper()
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        body = await self._request_json(
            "POST", path, what=f"subject {subject!r}", data=orjson.dumps(payload)
        )
        if not isinstance(body, dict) or type(body.get("id")) is not int:
            raise TransientError("schema registry: registration answered no id",
                                 code="registry_unavailable")
        schema_id: int = body["id"]
        if schema_id not in self._cache and schema_type.upper() == "AVRO":
            self._cache[schema_id] = self._build(schema_id, text, "AVRO")
        return schema_id

    # ----------------------------------------------------------------- HTTP

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        data: bytes | None = None,
        not_found_attempts: int = 0,
        on_not_found: Callable[[], None] | None = None,
    ) -> Any:
        """One REST call with retries. ``not_found_attempts`` > 0: a Confluent
        "schema not found" (``error_code`` 40403) is a permanent ``unknown_schema_id`` after
        that many answers; otherwise it is retried like a 5xx."""
        delay = self.initial_backoff
        last = "no attempt made"
        not_found = 0
        for attempt in range(1, self.attempts + 1):
            url = self._urls[self._current] + path
            try:
                self.requests += 1
                return await asyncio.to_thread(self._send, method, url, data)
            except _HttpStatus as exc:
                last = str(exc)
                if exc.error_code == 40403 and not_found_attempts > 0:
                    not_found += 1
                    if not_found >= not_found_attempts:
                        if on_not_found is not None:
                            on_not_found()
                        raise DecodeError(
                            f"{what} is not in the schema registry ({exc})",
                            code="unknown_schema_id",
                        ) from None
                elif exc.status in (401, 403, 407):
                    raise TransientError(
                        f"schema registry {self.url} refused the credentials for {what} "
                        f"(HTTP {exc.status}); check source.schema_registry_username/"
                        "password/token",
                        code="registry_unauthorized",
                    ) from None
                elif exc.status == 404:  # not the registry's "not found": a wrong URL?
                    last = f"{exc} (is {self.url} the schema registry's base URL?)"
                    self._next_url()
                elif exc.status >= 500 or exc.status in (408, 429):
                    self._next_url()
                else:
                    raise DecodeError(
                        f"schema registry rejected the request for {what}: {exc}",
                        code="registry_rejected",
                    ) from None
            except _Unreachable as exc:
                last = str(exc)
                self._next_url()
            if attempt < self.attempts:
                sleep = min(delay, self.max_backoff) * random.uniform(0.8, 1.2)
                log.warning(
                    "schema registry request failed; retrying", what=what, registry=self.url,
                    attempt=attempt, error=last, retry_in=round(sleep, 3),
                )  # fmt: skip
                await asyncio.sleep(sleep)
                delay *= 2
        raise TransientError(
            f"schema registry {self.url} unavailable for {what} after {self.attempts} "
            f"attempts: {last}",
            code="registry_unavailable",
        )

    def _next_url(self) -> None:
        self._current = (self._current + 1) % len(self._urls)

    def _send(self, method: str, url: str, data: bytes | None) -> Any:
        """One blocking HTTP request (run in a worker thread)."""
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", _ACCEPT)
        req.add_header("User-Agent", "cartridge-warp-sink")
        if data is not None:
            req.add_header("Content-Type", _CONTENT_TYPE)
        if self._auth is not None:
            req.add_unredirected_header("Authorization", self._auth)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                body = resp.read(_MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read(64 * 1024) if exc.fp is not None else b""
            raise _status_error(exc.code, raw) from None
        except (TimeoutError, urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _Unreachable(f"{type(reason).__name__}: {reason}") from None
        if len(body) > _MAX_BODY:
            raise _Unreachable("response too large")
        try:
            return orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            raise _Unreachable("response is not JSON") from None


def _status_error(status: int, raw: bytes) -> _HttpStatus:
    code: int | None = None
    message = ""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        if type(body.get("error_code")) is int:
            code = body["error_code"]
        if isinstance(body.get("message"), str):
            message = body["message"][:200]
    text = f"HTTP {status}" + (f" error_code {code}" if code is not None else "")
    return _HttpStatus(status, code, f"{text}: {message}" if message else text)

