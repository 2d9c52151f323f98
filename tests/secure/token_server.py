"""A small OIDC token endpoint for the OAUTHBEARER tests: ``POST /token`` with
``grant_type=client_credentials`` and HTTP basic client credentials answers a JWT signed by
the secured stack's issuer (``Pki.jwt``), whose ``sub`` is the Kafka principal. Served over
TLS with a certificate of the stack's CA. ``audience`` makes tokens the broker refuses."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sink.stack.pki import Pki
from sink.stack.secure_kafka import OAUTH_AUDIENCE, OAUTH_ISSUER

CLIENT_ID = "warp-sink"


class TokenServer:
    def __init__(self, root: Path, secret: str, *, subject: str = "warp",
                 audience: str = OAUTH_AUDIENCE, lifetime: int = 300) -> None:
        self.pki = Pki(root / "pki")
        self.secret, self.subject, self.audience, self.lifetime = (secret, subject, audience,
                                                                   lifetime)
        self.grants: list[dict[str, Any]] = []  # one per token answered
        pair = self.pki.issue("oauth-server", "127.0.0.1", server=True)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, auth: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(f"{CLIENT_ID}:{self.secret}".encode()).decode()
        if auth != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        now = int(time.time())
        claims = {"sub": self.subject, "aud": self.audience, "iss": OAUTH_ISSUER, "iat": now,
                  "exp": now + self.lifetime, "scope": form.get("scope", "")}
        self.grants.append(claims)
        return 200, {"access_token": self.pki.jwt(claims), "token_type": "Bearer",
                     "expires_in": self.lifetime}


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            status, body = server.answer(self.headers.get("Authorization", ""), form)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
