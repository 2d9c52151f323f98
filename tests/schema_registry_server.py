"""An in-process Confluent Schema Registry for the tests (the REST subset the sink uses).

Endpoints: ``POST /subjects/{subject}/versions`` → ``{"id": n}`` (the same schema text
under any subject gets the same id, as in Confluent's registry), ``GET /schemas/ids/{id}``
→ ``{"schema": ...}`` (+ ``schemaType`` when not AVRO), 404 ``error_code`` 40403 for an
unknown id, ``GET /subjects``, ``GET /subjects/{subject}/versions`` and
``GET /subjects/{subject}/versions/{n|latest}``.

Switches for failure tests: :meth:`RegistryServer.fail_next` (answer N requests with an
HTTP error, default 500), :meth:`RegistryServer.delay_next` (hold N answers), basic-auth
or bearer-token enforcement (``RegistryServer(username=..., password=...)`` /
``token=...``; 401 ``error_code`` 40101 otherwise), and TLS (``certfile``/``keyfile``).
Every request is recorded (method, path, headers) in ``server.requests``.

Use the ``schema_registry`` fixture (a fresh server per test)::

    from tests.schema_registry_server import schema_registry  # noqa: F401

(ruff then reports F811 on each test parameter of that name; binding the fixture by
assignment avoids it: ``schema_registry = schema_registry_server.schema_registry``, or add
``"tests.schema_registry_server"`` to ``pytest_plugins`` in ``tests/conftest.py``.)
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["RegistryServer", "Request", "schema_registry"]

_JSON = "application/vnd.schemaregistry.v1+json"
_VERSIONS = re.compile(r"/subjects/([^/]+)/versions(?:/([^/]+))?")
_BY_ID = re.compile(r"/schemas/ids/(-?[0-9]+)")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


class RegistryServer:
    """A thread-backed HTTP server; ``url`` is ``http(s)://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.username, self.password, self.token = username, password, token
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._schemas: dict[int, tuple[str, str]] = {}  # id -> (schema text, type)
        self._ids: dict[tuple[str, str], int] = {}  # (canonical text, type) -> id
        self._subjects: dict[str, list[int]] = {}
        self._next_id = 1
        self._fail: list[tuple[int, int]] = []  # (status, error_code) for the next requests
        self._delay: list[float] = []
        handler = _make_handler(self)
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        scheme = "http"
        if certfile is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        host, port = self._httpd.server_address[:2]
        self.url = f"{scheme}://{host!s}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="registry",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ control

    def register(self, subject: str, schema: Any, schema_type: str = "AVRO") -> int:
        """Register directly (no HTTP); same result as the POST endpoint."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        with self._lock:
            return self._register(subject, text, schema_type.upper())

    def fail_next(self, n: int, status: int = 500, error_code: int | None = None) -> None:
        """Answer the next ``n`` requests with HTTP ``status`` and a Confluent error body
        (``error_code`` defaults to 50001 for 5xx, 40403 for 404, 40101 for 401, else
        status * 100; ``error_code=0`` sends a body without one, as a proxy would).
        Replaces what an earlier call left pending (``fail_next(0)`` clears)."""
        if error_code is None:
            error_code = {404: 40403, 401: 40101}.get(status, status * 100 + (status >= 500))
        with self._lock:
            self._fail = [(status, error_code)] * n

    def delay_next(self, n: int, seconds: float) -> None:
        """Hold the next ``n`` answers for ``seconds`` (client timeout tests); replaces
        what an earlier call left pending."""
        with self._lock:
            self._delay = [seconds] * n

    def count(self, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    # ------------------------------------------------------------------ internals

    def _register(self, subject: str, text: str, schema_type: str) -> int:
        try:
            canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except ValueError:
            canonical = text
        key = (canonical, schema_type)
        schema_id = self._ids.get(key)
        if schema_id is None:
            schema_id = self._next_id
            self._next_id += 1
            self._ids[key] = schema_id
            self._schemas[schema_id] = (text, schema_type)
        versions = self._subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def _authorised(self, headers: dict[str, str]) -> bool:
        got = headers.get("authorization")
        if self.token is not None:
            return got == f"Bearer {self.token}"
        if self.username is not None or self.password is not None:
            pair = f"{self.username or ''}:{self.password or ''}".encode()
            return got == "Basic " + base64.b64encode(pair).decode()
        return True

    def handle(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Request(method, path, headers))
            fail = self._fail.pop(0) if self._fail else None
            delay = self._delay.pop(0) if self._delay else 0.0
        if delay:
            time.sleep(delay)
        if fail is not None:
            status, code = fail
            if not code:
                return status, {"message": "injected failure"}
            return status, {"error_code": code, "message": "injected failure"}
        if not self._authorised(headers):
            return 401, {"error_code": 40101, "message": "Unauthorized"}
        path = urllib.parse.urlsplit(path).path.rstrip("/")
        with self._lock:
            return self._route(method, path, body)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        m = _BY_ID.fullmatch(path)
        if m is not None and method == "GET":
            found = self._schemas.get(int(m.group(1)))
            if found is None:
                return 404, {"error_code": 40403, "message": f"Schema {m.group(1)} not found"}
            text, schema_type = found
            out: dict[str, Any] = {"schema": text}
            if schema_type != "AVRO":
                out["schemaType"] = schema_type
            return 200, out
        if path == "/subjects" and method == "GET":
            return 200, sorted(self._subjects)
        m = _VERSIONS.fullmatch(path)
        if m is not None:
            subject = urllib.parse.unquote(m.group(1))
            version = m.group(2)
            if method == "POST" and version is None:
                try:
                    req = json.loads(body)
                    text = req["schema"]
                    assert isinstance(text, str)
                    json.loads(text)
                except (ValueError, KeyError, TypeError, AssertionError):
                    return 422, {"error_code": 42201, "message": "Invalid schema"}
                return 200, {"id": self._register(subject, text,
                                                  str(req.get("schemaType") or "AVRO").upper())}
            if method == "GET":
                versions = self._subjects.get(subject)
                if versions is None:
                    return 404, {"error_code": 40401, "message": f"Subject '{subject}' not found."}
                if version is None:
                    return 200, list(range(1, len(versions) + 1))
                n = len(versions) if version == "latest" else int(version)
                if not 1 <= n <= len(versions):
                    return 404, {"error_code": 40402, "message": "Version not found."}
                text, _ = self._schemas[versions[n - 1]]
                return 200, {"subject": subject, "version": n, "id": versions[n - 1],
                             "schema": text}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up: nothing to report


def _make_handler(server: RegistryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = server.handle(method, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", _JSON)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def schema_registry() -> Iterator[RegistryServer]:
    """A fresh in-process schema registry (no auth) for one test."""
    server = RegistryServer()
    try:
        yield server
    finally:
        server.close()
