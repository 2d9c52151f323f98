"""The fault injector itself (tests/chaos/toxiproxy.py): a real toxiproxy-server between a
socket and a local TCP echo server. These pin the behaviours the chaos campaign counts on
(docs/chaos.md): what reset_peer does to open and new connections, that a black hole holds
until removed, that limit_data cuts at exactly n bytes, that disable() refuses and enable()
binds the same port again, that a second server on a taken port is detected."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.toxiproxy import (
    Client,
    NoGoToolchain,
    Proxy,
    Server,
    ToxiproxyError,
    ensure_binary,
    free_port,
)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # reset_peer and friends cut us off on purpose


@pytest.fixture(scope="session")
def echo_addr() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def toxi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    try:
        binary = ensure_binary()
    except NoGoToolchain as exc:
        pytest.skip(f"toxiproxy cannot be built: {exc}")
    with Server(binary, log_path=tmp_path_factory.mktemp("toxi") / "server.log") as client:
        yield client


@pytest.fixture
def proxy(toxi: Client, echo_addr: str) -> Iterator[Proxy]:
    made = toxi.create_proxy(f"echo-{uuid.uuid4().hex[:8]}", upstream=echo_addr)
    yield made
    toxi.reset()
    made.delete()


def connect(p: Proxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection((p.host, p.port), timeout=timeout)


def round_trip(p: Proxy, payload: bytes = b"ping") -> tuple[bytes, float]:
    with connect(p) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload) and (chunk := sock.recv(65536)):
            got += chunk
        return got, time.monotonic() - started


def test_pass_through(toxi: Client, proxy: Proxy) -> None:
    assert toxi.version() == "git"  # a `go install` build carries no release version
    assert proxy.host == "127.0.0.1" and proxy.port > 0
    got, took = round_trip(proxy, b"hello" * 1000)
    assert got == b"hello" * 1000
    assert took < 0.5


def test_latency_adds_delay_and_goes_away(proxy: Proxy) -> None:
    name = proxy.latency(300, jitter_ms=10)
    assert name == "latency_downstream"
    assert round_trip(proxy)[1] >= 0.28
    proxy.remove_toxic(name)
    assert round_trip(proxy)[1] < 0.2
    proxy.latency(200, stream="upstream")
    assert round_trip(proxy)[1] >= 0.19


def test_toxicity_zero_spares_every_connection(proxy: Proxy) -> None:
    proxy.latency(500, toxicity=0.0)
    assert round_trip(proxy)[1] < 0.3


def test_bandwidth_throttles(proxy: Proxy) -> None:
    proxy.bandwidth(20)  # KB/s
    got, took = round_trip(proxy, b"x" * 10_000)
    assert got == b"x" * 10_000
    assert took >= 0.35  # 10 KB at 20 KB/s is ~0.5 s


def test_reset_peer_sends_rst_to_new_connections(proxy: Proxy) -> None:
    proxy.reset_peer(0)
    with connect(proxy) as sock:
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_reset_peer_on_an_open_connection_is_only_a_fin(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"a")
        assert sock.recv(10) == b"a"
        proxy.reset_peer(0)
        sock.sendall(b"b")
        assert sock.recv(10) == b""  # SO_LINGER 0 is set when a link starts, not later


def test_timeout_zero_is_a_black_hole_until_removed(proxy: Proxy) -> None:
    with connect(proxy, timeout=0.5) as sock:
        name = proxy.timeout(0)
        sock.sendall(b"into the void")
        with pytest.raises(TimeoutError):
            sock.recv(10)  # connection stays open, nothing comes back
        proxy.remove_toxic(name)
        sock.settimeout(2)
        assert sock.recv(10) == b""  # removing a timeout toxic closes what it held


def test_timeout_closes_after_delay(proxy: Proxy) -> None:
    proxy.timeout(300)
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(10) == b""
        assert time.monotonic() - started >= 0.25


def test_disable_drops_open_and_refuses_new_connections(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"a")
        assert sock.recv(10) == b"a"
        proxy.disable()
        assert sock.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.enable()  # same port again
    assert round_trip(proxy)[0] == b"ping"


def test_limit_data_closes_after_n_bytes(proxy: Proxy) -> None:
    proxy.limit_data(10)
    with connect(proxy) as sock:
        sock.sendall(b"0123456789abcdef")
        got = b""
        while chunk := sock.recv(100):
            got += chunk
    assert got == b"0123456789"


def test_slow_close_delays_the_fin(proxy: Proxy) -> None:
    proxy.slow_close(400)
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)  # echo server closes, the FIN back is held
        assert sock.recv(10) == b""
        assert time.monotonic() - started >= 0.35


def test_api_errors_are_raised(proxy: Proxy) -> None:
    proxy.latency(10)
    with pytest.raises(ToxiproxyError, match="409"):
        proxy.latency(20)  # same default name latency_downstream
    with pytest.raises(ToxiproxyError, match="400"):
        proxy.add_toxic("no_such_toxic", {})
    with pytest.raises(ToxiproxyError, match="404"):
        proxy.remove_toxic("missing")


def test_fixed_proxy_port(toxi: Client, echo_addr: str) -> None:
    port = free_port()
    fixed = toxi.create_proxy("fixed", upstream=echo_addr, listen=f"127.0.0.1:{port}")
    try:
        assert fixed.port == port and round_trip(fixed)[0] == b"ping"
    finally:
        fixed.delete()


def test_server_refuses_a_port_owned_by_another_toxiproxy(toxi: Client, tmp_path: Path) -> None:
    taken = int(toxi.url.rsplit(":", 1)[1])
    with pytest.raises(ToxiproxyError, match="did not come up"):
        Server(port=taken, log_path=tmp_path / "clash.log").start(wait_s=3)
    assert toxi.version() == "git"  # the first one is unharmed


@pytest.mark.usefixtures("toxi")  # skips without Go
def test_stop_is_idempotent_and_frees_the_port(tmp_path: Path) -> None:
    server = Server(log_path=tmp_path / "server.log")
    client = server.start()
    server.stop()
    server.stop()
    with pytest.raises(OSError):
        client.version()


@pytest.mark.usefixtures("toxi")  # skips without Go
def test_ensure_binary_rejects_a_non_executable(tmp_path: Path) -> None:
    with pytest.raises(ToxiproxyError, match="not an executable"):
        ensure_binary(tmp_path / "nope")
    assert os.access(ensure_binary(), os.X_OK)
