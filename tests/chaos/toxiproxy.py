"""Toxiproxy (the Go server) as a TCP fault injector for tests, without Docker.

Why: the sink must survive what real networks do to Kafka and PostgreSQL connections: slow
links, stalls, resets, outages and half-delivered data. Toxiproxy makes those happen on
loopback on demand. ``scripts/install-toxiproxy.sh`` builds a pinned server from the Go
module proxy; this module runs it as a subprocess and drives its REST API with urllib only.
Pitfalls found while writing it (Kafka's advertised listeners, reset_peer on open
connections, port clashes) are in docs/chaos.md.

    with Server() as tp:
        pg = tp.create_proxy("pg", upstream="127.0.0.1:5432")
        dsn = f"postgresql://u@{pg.host}:{pg.port}/db"
        pg.disable()                      # outage: drops open connections, refuses new ones
        pg.enable(); pg.latency(200)      # 200 ms on every downstream chunk
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict, Unpack

from tests import paths

TOXIPROXY_VERSION = "v2.12.0"
INSTALLER = paths.ROOT / "scripts" / "install-toxiproxy.sh"
Stream = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """Install, start-up or an API call failed (the message carries the server's answer)."""


class NoGoToolchain(ToxiproxyError):
    """The server is not built and there is no Go to build it: the chaos tests skip."""


def ensure_binary(path: str | Path | None = None, version: str = TOXIPROXY_VERSION) -> Path:
    """A server binary: ``path``, ``$TOXIPROXY_SERVER``, or what ``scripts/install-toxiproxy.sh``
    gives (the cache, or a fresh ``go install`` of the pinned version: ~30-45 s once).

    The script is the one place that knows how to build it (``make toxiproxy`` runs the same);
    :class:`NoGoToolchain` when the machine cannot build it, so tests can skip with the reason.
    """
    if explicit := path or os.environ.get("TOXIPROXY_SERVER"):
        if not os.access(explicit, os.X_OK):
            raise ToxiproxyError(f"{explicit} is not an executable file")
        return Path(explicit)
    done = subprocess.run(["bash", str(INSTALLER)], env={**os.environ,
                          "TOXIPROXY_VERSION": version}, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        if "no Go toolchain" in done.stderr:
            raise NoGoToolchain(done.stderr.strip().splitlines()[-1])
        raise ToxiproxyError(f"{INSTALLER.name} failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago. Racy by nature: Server.start retries on a clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ToxicOptions(TypedDict, total=False):
    """Common toxic fields. stream: direction the toxic acts on, seen from the client
    (downstream = server->client, the server's default); toxicity: share of connections hit."""

    stream: Stream
    toxicity: float
    name: str  # default "<type>_<stream>"; adding a second one with the same name is HTTP 409


class Client:
    """Blocking REST client. Calls take about a millisecond on loopback, so async tests may
    call it directly (or through asyncio.to_thread). It ignores HTTP(S)_PROXY on purpose."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; returns the decoded JSON (None for 204) or raises ToxiproxyError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise ToxiproxyError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        return json.loads(raw) if raw.strip() else None

    def version(self) -> str:
        """The server's version: "git" for a `go install` build (no release ldflags)."""
        return str(self.request("GET", "/version")["version"])

    def reset(self) -> None:
        """Re-enable every proxy and drop every toxic: call between tests that share a server.

        Removing a toxic waits up to 5 s per connection for the data it still holds to be
        written out (a bandwidth toxic holds some), so a reset may take longer than one
        call's timeout; the server finishes it anyway, and a second reset confirms it."""
        try:
            self.request("POST", "/reset")
        except TimeoutError:
            self.request("POST", "/reset")

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                     enabled: bool = True) -> Proxy:
        """Listen on `listen` (port 0 = any; the answer carries the real one) and forward to
        `upstream` ("host:port"). Pick a fixed port (free_port) when the address must be
        known before the upstream starts, e.g. for a Kafka advertised listener."""
        got = self.request("POST", "/proxies", {"name": name, "upstream": upstream,
                                                "listen": listen, "enabled": enabled})
        return Proxy(self, str(got["name"]), str(got["listen"]), str(got["upstream"]))



@dataclass(frozen=True)
class Proxy:
    """One proxy; point the code under test at host:port instead of the real upstream."""

    client: Client
    name: str
    listen: str
    upstream: str

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def set_enabled(self, enabled: bool) -> None:
        """Disabling closes the listener and every open connection (the client sees EOF, not
        RST); new connects are refused until it is enabled again on the same port."""
        self.client.request("PATCH", f"/proxies/{self.name}", {"enabled": enabled})

    def disable(self) -> None:  # an outage
        self.set_enabled(False)

    def enable(self) -> None:  # the end of the outage
        self.set_enabled(True)

    def delete(self) -> None:
        self.client.request("DELETE", f"/proxies/{self.name}")

    def add_toxic(self, kind: str, attributes: dict[str, int],
                  **opts: Unpack[ToxicOptions]) -> str:
        """Add a toxic (also to already open connections); returns its name for remove_toxic."""
        body: dict[str, Any] = {"type": kind, "attributes": attributes,
                                "stream": opts.get("stream", "downstream"),
                                "toxicity": opts.get("toxicity", 1.0)}
        if "name" in opts:
            body["name"] = opts["name"]
        return str(self.client.request("POST", f"/proxies/{self.name}/toxics", body)["name"])

    def remove_toxic(self, name: str) -> None:
        """Note: removing a `timeout` toxic closes the connections it was holding."""
        self.client.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def latency(self, latency_ms: int, jitter_ms: int = 0, **opts: Unpack[ToxicOptions]) -> str:
        """Delay each chunk by latency +/- jitter ms: slow broker or database round trips."""
        return self.add_toxic("latency", {"latency": latency_ms, "jitter": jitter_ms}, **opts)

    def bandwidth(self, rate_kb_s: int, **opts: Unpack[ToxicOptions]) -> str:
        """Cap throughput at `rate` KB/s: large fetches and COPY batches become slow."""
        return self.add_toxic("bandwidth", {"rate": rate_kb_s}, **opts)

    def timeout(self, timeout_ms: int = 0, **opts: Unpack[ToxicOptions]) -> str:
        """Swallow all data; close after timeout ms, or never with 0 (a black hole: the
        half-open socket that only client-side timeouts and keepalives can detect)."""
        return self.add_toxic("timeout", {"timeout": timeout_ms}, **opts)

    def reset_peer(self, timeout_ms: int = 0, **opts: Unpack[ToxicOptions]) -> str:
        """On the next data, wait timeout ms and close with SO_LINGER 0 (TCP RST). The RST
        is only armed for connections opened after the toxic was added; older ones get FIN."""
        return self.add_toxic("reset_peer", {"timeout": timeout_ms}, **opts)

    def limit_data(self, n_bytes: int, **opts: Unpack[ToxicOptions]) -> str:
        """Close the connection after n bytes in total: a peer that dies mid-message."""
        return self.add_toxic("limit_data", {"bytes": n_bytes}, **opts)

    def slow_close(self, delay_ms: int, **opts: Unpack[ToxicOptions]) -> str:
        """Delay the close (FIN) by delay ms: lingering sockets on shutdown paths."""
        return self.add_toxic("slow_close", {"delay": delay_ms}, **opts)


class Server:
    """toxiproxy-server on host:<free port> as a subprocess; `with Server() as client:`."""

    def __init__(self, binary: str | Path | None = None, host: str = "127.0.0.1",
                 port: int | None = None, log_path: str | Path | None = None) -> None:
        self.binary, self.host, self.port = binary, host, port
        if log_path is None:  # JSON lines, kept for post-mortems
            fd, log_path = tempfile.mkstemp(prefix="toxiproxy-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 10.0) -> Client:
        binary = ensure_binary(self.binary)
        for _ in range(1 if self.port else 3):
            port = self.port or free_port(self.host)
            if client := self._try_start(binary, port, wait_s):
                return client
        raise ToxiproxyError(f"toxiproxy-server did not come up; see {self.log_path}")

    def _try_start(self, binary: Path, port: int, wait_s: float) -> Client | None:
        """A clashing server does not exit (it logs and waits for a signal), and another
        toxiproxy on that port would answer for it. So probe with a nonce and require it
        in *our* log: the access log line is written before the response is sent."""
        with open(self.log_path, "ab") as log:
            start = log.tell()
            self._proc = subprocess.Popen(
                [str(binary), "-host", self.host, "-port", str(port)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LOG_LEVEL": "debug"})
        client, nonce = Client(f"http://{self.host}:{port}"), uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self._proc.poll() is None:
            if b"Server finished with error" in self._log(start):
                break
            try:
                client.request("GET", f"/version?probe={nonce}")
            except (OSError, ToxiproxyError):
                time.sleep(0.02)
                continue
            for _ in range(50):
                if nonce.encode() in self._log(start):
                    self.port = port
                    return client
                time.sleep(0.01)
            break
        self.stop()
        return None

    def _log(self, start: int) -> bytes:
        with open(self.log_path, "rb") as log:
            log.seek(start)
            return log.read()

    def stop(self) -> None:
        """SIGTERM (the server shuts its API down and exits), SIGKILL after 5 s."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
