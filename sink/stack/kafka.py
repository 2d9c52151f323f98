"""The local stack's Apache Kafka broker: one JVM in KRaft mode (broker and controller),
its classpath resolved by Maven from ``deploy/local/pom.xml``, on free loopback ports under
one directory; and the topic helper the demo and the tests use."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sink.stack.process import (
    StackError,
    free_ports,
    pid_alive,
    port_open,
    run_async,
    stop_process,
    tail,
)

POM = Path(__file__).resolve().parents[2] / "deploy" / "local" / "pom.xml"
JVM_OPTS = "-Xms256m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true"
KAFKA_READY_S = 90.0
LOG4J2 = ("status=warn\nappender.out.type=Console\nappender.out.name=OUT\n"
          "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=[%d] %p %m (%c)%n\n"
          "rootLogger.level=INFO\nrootLogger.appenderRef.out.ref=OUT\n"
          "logger.state.name=state.change.logger\nlogger.state.level=WARN\n")


def maven_classpath(pom: Path, name: str, timeout: float = 900) -> str:
    """The classpath of ``pom``'s dependencies, resolved by Maven once per pom content and
    cached under ``$XDG_CACHE_HOME/cartridge-warp/<name>-<digest>.txt``."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cache = cache_home / "cartridge-warp" / f"{name}-{digest}.txt"
    if cache.is_file():
        cp = cache.read_text().strip()
        if cp and all(Path(p).is_file() for p in cp.split(os.pathsep)):
            return cp
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) not found; install it: apt-get install -y maven")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
           "dependency:build-classpath", f"-Dmdep.outputFile={tmp}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        raise StackError(f"mvn could not resolve {pom}: {(proc.stdout + proc.stderr)[-800:]}")
    os.replace(tmp, cache)
    return cache.read_text().strip()


def kafka_classpath(pom: Path | None = None) -> str:
    """The broker's classpath (``WARP_KAFKA_CLASSPATH`` skips Maven)."""
    if cp := os.environ.get("WARP_KAFKA_CLASSPATH"):
        return cp
    pom = pom or POM
    require_pom(pom)
    return maven_classpath(pom, "kafka-classpath")


# A single broker that is also its controller: every replication factor 1, few internal
# partitions (start-up time), no rebalance delay; a broker killed with SIGKILL re-registers
# once its old session expires (default 9 s), so keep the session short.
SINGLE_NODE = {
    "num.partitions": "1", "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "8", "transaction.state.log.num.partitions": "8",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1", "min.insync.replicas": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
}


def require_pom(pom: Path | None = None) -> None:
    """The pom lives in the repository, not in the installed package: say so before any
    server is set up, rather than a bare FileNotFoundError after initdb."""
    pom = pom or POM
    if not os.environ.get("WARP_KAFKA_CLASSPATH") and not pom.is_file():
        raise StackError(
            f"the local Kafka is resolved from deploy/local/pom.xml in the cartridge-warp "
            f"repository, not installed with the package (looked for {pom}): run "
            "`warp-sink stack`/`demo` from a clone (pip install -e .), or set "
            "WARP_KAFKA_CLASSPATH to a Kafka broker's classpath")


async def kafka_answers(bootstrap: str, timeout_ms: int = 5000, **client: Any) -> bool:
    """Whether the broker lists topics; ``client``: security arguments for aiokafka."""
    if not port_open(int(bootstrap.rpartition(":")[2])):
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                                **client)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def create_topic(bootstrap: str, name: str, partitions: int, **client: Any) -> None:
    """Create ``name`` with ``partitions`` partitions (replication 1) unless it exists, and wait
    until every partition has a leader. ``client``: security arguments for aiokafka."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000, **client)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(name, partitions, 1)])
        for _topic, code, *rest in resp.topic_errors:
            if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS
                raise StackError(f"cannot create topic {name}: error {code} {rest}")
        deadline = time.monotonic() + 30
        while True:
            meta = (await admin.describe_topics([name]))[0]
            parts = meta.get("partitions") or []
            if meta["error_code"] == 0 and parts and all(p["leader"] >= 0 for p in parts):
                return
            if time.monotonic() > deadline:
                raise StackError(f"topic {name} has no leader after 30 s: {meta}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


class KafkaServer:
    """The broker under ``root``: ``server.properties``, ``data/`` and ``kafka.log``.

    ``proxy_listener``: a third listener, ``PROXIED``, advertised at a port where nothing
    listens until a TCP proxy (the chaos tests' Toxiproxy) is put there, forwarding to it.
    A Kafka client only bootstraps at the address it is given and then connects to what
    the listener advertises, so a proxy in front of the normal listener would be bypassed
    after the first metadata request. Clients of ``PLAINTEXT`` (the broker itself, the
    tests' producers and checks) never see the proxy."""

    def __init__(self, root: Path, proxy_listener: bool = False) -> None:
        self.dir = root
        self.props = root / "server.properties"
        self.log = root / "kafka.log"
        self.proxy_listener = proxy_listener

    def pid(self) -> int | None:
        """The broker JVM running with this stack's server.properties, if any."""
        needle = str(self.props).encode()
        for entry in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                args = entry.read_bytes().split(b"\0")
                if b"kafka.Kafka" in args and needle in args and pid_alive(int(entry.parent.name)):
                    return int(entry.parent.name)
        return None

    def ports(self) -> tuple[int, int]:
        """(client port, controller port)."""
        text = self.props.read_text()
        return (int(re.findall(r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+)", text, re.M)[0]),
                int(re.findall(r"^controller\.quorum\.voters=1@127\.0\.0\.1:(\d+)", text,
                               re.M)[0]))

    def proxied(self) -> tuple[int, int] | None:
        """(the ``PROXIED`` listener's port, the port it advertises), if it was configured."""
        text = self.props.read_text()
        listen = re.findall(r"^listeners=.*PROXIED://127\.0\.0\.1:(\d+)", text, re.M)
        adv = re.findall(r"^advertised\.listeners=.*PROXIED://127\.0\.0\.1:(\d+)", text, re.M)
        return (int(listen[0]), int(adv[0])) if listen and adv else None

    def _java(self) -> list[str]:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
        if not java or not Path(java).is_file():
            raise StackError("java not found; install a Java 17+ runtime "
                             "(apt-get install -y openjdk-17-jre-headless)")
        opts = shlex.split(os.environ.get("WARP_KAFKA_JVM_OPTS", JVM_OPTS))
        log_cfg = self.dir / "log4j2.properties"
        return [java, *opts, f"-Dlog4j2.configurationFile={log_cfg}", "-cp", kafka_classpath()]

    def init(self) -> None:
        """Write server.properties on two free ports and format the storage (once)."""
        data = self.dir / "data"
        if (data / "meta.properties").is_file() and self.props.is_file():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        port, cport, pport, proxy_port = free_ports(4)
        listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"
        advertised = f"PLAINTEXT://127.0.0.1:{port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.proxy_listener:
            listeners += f",PROXIED://127.0.0.1:{pport}"
            advertised += f",PROXIED://127.0.0.1:{proxy_port}"
            protocols += ",PROXIED:PLAINTEXT"
        props = {
            "process.roles": "broker,controller", "node.id": "1",
            "listeners": listeners, "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "controller.quorum.voters": f"1@127.0.0.1:{cport}", "log.dirs": str(data),
            **SINGLE_NODE,
        }
        self.props.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        shutil.rmtree(data, ignore_errors=True)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
               f"--config={self.props}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise StackError(f"kafka storage format failed: {proc.stdout[-800:]}"
                             f"{proc.stderr[-800:]}")

    def spawn(self) -> None:
        """Start the broker detached (own session, output to kafka.log); no Popen is kept, so
        the JVM outlives this object and pid_alive() reaps it."""
        cmd = [*self._java(), "kafka.Kafka", str(self.props)]
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.posix_spawn(cmd[0], cmd, os.environ, setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)])
        finally:
            os.close(log)

    def wait(self, bootstrap: str) -> None:
        """Until the broker answers at ``bootstrap``; StackError if it exits or times out."""
        deadline = time.monotonic() + KAFKA_READY_S
        while not run_async(kafka_answers(bootstrap, 3000)):
            if self.pid() is None:
                raise StackError(f"the Kafka broker exited; log {self.log}:\n"
                                 f"{tail(self.log)}")
            if time.monotonic() > deadline:
                raise StackError(f"Kafka did not answer within {KAFKA_READY_S:.0f} s; log "
                                 f"{self.log}:\n{tail(self.log)}")
            time.sleep(0.2)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM the broker (SIGKILL with ``kill`` or after a timeout) and wait for it."""
        pid = self.pid()
        if pid is not None:
            stop_process(pid, signal.SIGKILL if kill else signal.SIGTERM)
