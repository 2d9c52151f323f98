"""A local stack for development, the demo and the tests: one Apache Kafka broker (KRaft,
broker and controller in one JVM) and one PostgreSQL server, on free loopback ports, all
under one directory. ``warp-sink stack up|down|env|status`` drives it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

T = TypeVar("T")
PG_ROLE, PG_PASSWORD, PG_DATABASE = "warp", "warp-secret", "warp"
POM = Path(__file__).resolve().parent.parent / "deploy" / "local" / "pom.xml"
JVM_OPTS = "-Xms256m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true"
KAFKA_READY_S, STOP_TIMEOUT_S = 90.0, 30.0
LOG4J2 = ("status=warn\nappender.out.type=Console\nappender.out.name=OUT\n"
          "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=[%d] %p %m (%c)%n\n"
          "rootLogger.level=INFO\nrootLogger.appenderRef.out.ref=OUT\n"
          "logger.state.name=state.change.logger\nlogger.state.level=WARN\n")


class StackError(RuntimeError):
    """The local stack cannot be started, reached or stopped."""


@dataclass
class StackInfo:
    root: Path
    bootstrap_servers: str
    pg_dsn: str
    kafka_pid: int
    pg_port: int
    pg_pid: int
    kafka_port: int
    controller_port: int

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers, "WARP_PG_DSN": self.pg_dsn}


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh loop in a helper thread: safe whether or not a loop runs here,
    and the caller's thread keeps its own event loop."""
    with ThreadPoolExecutor(1, thread_name_prefix="warp-stack") as pool:
        return pool.submit(asyncio.run, coro).result()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as gone; our own are reaped)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
        return True
    return False


def kafka_classpath(pom: Path = POM) -> str:
    """The broker's classpath, resolved by Maven once per pom content and cached."""
    if cp := os.environ.get("WARP_KAFKA_CLASSPATH"):
        return cp
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cache = cache_home / "cartridge-warp" / f"kafka-classpath-{digest}.txt"
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
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0 or not tmp.is_file():
        raise StackError(f"mvn could not resolve the Kafka classpath: {proc.stdout[-800:]}")
    os.replace(tmp, cache)
    return cache.read_text().strip()


def _pg_bindir() -> Path:
    candidates: list[Path] = []
    if env_dir := os.environ.get("WARP_PG_BIN"):
        candidates.append(Path(env_dir))
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for d in candidates:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    raise StackError("PostgreSQL server binaries not found; install the Debian package "
                     "`postgresql` (apt-get install -y postgresql)")


def _pg_account() -> tuple[int, int] | None:
    """The unprivileged (uid, gid) to run PostgreSQL as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "postgres"], check=True, capture_output=True)
        entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


async def _pg_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


async def _kafka_answers(bootstrap: str, timeout_ms: int = 5000) -> bool:
    if not _port_open(int(bootstrap.rpartition(":")[2])):
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` with ``partitions`` partitions (replication 1) unless it exists, and wait
    until every partition has a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
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


class LocalStack:
    """Kafka + PostgreSQL under ``root``: ``root/kafka``, ``root/pg`` and ``root/stack.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.state_file = self.root / "stack.json"
        self.kafka_dir = self.root / "kafka"
        self.kafka_props = self.kafka_dir / "server.properties"
        self.kafka_log = self.kafka_dir / "kafka.log"
        self.pg_dir = self.root / "pg"
        self.pg_data = self.pg_dir / "data"
        self.pg_log = self.pg_dir / "postgres.log"

    def info(self) -> StackInfo | None:
        try:
            raw = json.loads(self.state_file.read_text())
            raw["root"] = Path(raw["root"])
            return StackInfo(**raw)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _save(self, info: StackInfo) -> StackInfo:
        data = {**asdict(info), "root": str(info.root)}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.state_file)
        return info

    def _current(self) -> StackInfo:
        kport, cport = self._kafka_ports()
        pg_port = self._pg_port()
        return StackInfo(self.root, f"127.0.0.1:{kport}",
                         f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{pg_port}/{PG_DATABASE}",
                         self._kafka_pid() or 0, pg_port, self._pg_pid() or 0, kport, cport)

    def up(self) -> StackInfo:
        """Start whatever is not running and return the stack's addresses (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        known = self.info()
        if known is not None and all(_run_async(self._probe(known))):
            return known
        self._init_pg()
        self._init_kafka()
        if self._pg_pid() is None:
            self._pg_ctl("start")
        if self._kafka_pid() is None:
            self._spawn_kafka()
        info = self._save(self._current())
        _run_async(self._pg_setup(info.pg_port))
        self._wait_kafka(info)
        return self._save(self._current())

    def down(self, purge: bool = False) -> None:
        """Stop both servers (nothing is left running) and forget the state file; ``purge``
        also deletes the data."""
        if (self.pg_data / "PG_VERSION").is_file() and self._pg_pid() is not None:
            with contextlib.suppress(StackError):
                self._pg_ctl("stop", "-m", "fast")
            if (pid := self._pg_pid()) is not None:
                self._kill(pid, signal.SIGQUIT)
        self.stop_kafka()
        self.state_file.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)

    async def _probe(self, info: StackInfo) -> tuple[bool, bool]:
        pg, kafka = await asyncio.gather(_pg_answers(info.pg_dsn),
                                         _kafka_answers(info.bootstrap_servers))
        return pg, kafka

    def status(self) -> tuple[bool, bool]:
        """(PostgreSQL answers, Kafka answers) for the recorded stack."""
        info = self.info()
        return (False, False) if info is None else _run_async(self._probe(info))

    def restart_postgres(self, immediate: bool = True) -> StackInfo:
        """Stop PostgreSQL (``-m immediate``: a crash, or ``-m fast``) and start it again on
        the same port and data."""
        self._pg_ctl("stop", "-m", "immediate" if immediate else "fast")
        self._pg_ctl("start")
        return self._save(self._current())

    def stop_kafka(self, kill: bool = False) -> None:
        """SIGTERM the broker (SIGKILL with ``kill`` or after a timeout) and wait for it."""
        pid = self._kafka_pid()
        if pid is not None:
            self._kill(pid, signal.SIGKILL if kill else signal.SIGTERM)

    def start_kafka(self) -> StackInfo:
        """Start the broker again (same ports and data) and wait until it answers."""
        if self._kafka_pid() is None:
            self._spawn_kafka()
        info = self._save(self._current())
        self._wait_kafka(info)
        return info

    def restart_kafka(self, kill: bool = False) -> StackInfo:
        self.stop_kafka(kill=kill)
        return self.start_kafka()

    async def arestart_postgres(self, immediate: bool = True) -> StackInfo:
        return await asyncio.to_thread(self.restart_postgres, immediate)

    async def astop_kafka(self, kill: bool = False) -> None:
        await asyncio.to_thread(self.stop_kafka, kill)

    async def astart_kafka(self) -> StackInfo:
        return await asyncio.to_thread(self.start_kafka)

    async def arestart_kafka(self, kill: bool = False) -> StackInfo:
        return await asyncio.to_thread(self.restart_kafka, kill)

    def _kill(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid):
            if time.monotonic() > deadline and sig != signal.SIGKILL:
                sig = signal.SIGKILL
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(0.05)

    def _kafka_pid(self) -> int | None:
        """The broker JVM running with this stack's server.properties, if any."""
        needle = str(self.kafka_props).encode()
        for entry in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                args = entry.read_bytes().split(b"\0")
                if b"kafka.Kafka" in args and needle in args and pid_alive(int(entry.parent.name)):
                    return int(entry.parent.name)
        return None

    def _pg_pid(self) -> int | None:
        try:
            pid = int((self.pg_data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def _as_pg(self, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        acct = _pg_account()
        kw: dict[str, Any] = {}
        if acct is not None:
            kw = {"user": acct[0], "group": acct[1], "extra_groups": []}
        return subprocess.run(cmd, cwd=self.pg_dir, capture_output=True, text=True, check=False,
                              timeout=timeout, start_new_session=True, stdin=subprocess.DEVNULL,
                              **kw)

    def _pg_ctl(self, *args: str) -> None:
        cmd = [str(_pg_bindir() / "pg_ctl"), "-D", str(self.pg_data), "-l", str(self.pg_log),
               "-w", "-t", "60", *args]
        proc = self._as_pg(cmd)
        if proc.returncode != 0:
            raise StackError(f"pg_ctl {args[0]} failed: {(proc.stderr or proc.stdout).strip()}\n"
                             f"{_tail(self.pg_log, 15)}")

    def _pg_port(self) -> int:
        conf = (self.pg_data / "postgresql.conf").read_text()
        return int(re.findall(r"^port = (\d+)", conf, re.M)[-1])

    def _init_pg(self) -> None:
        if (self.pg_data / "PG_VERSION").is_file():
            return
        bindir, acct = _pg_bindir(), _pg_account()
        run_dir = self.pg_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        if acct is not None:
            for d in (self.pg_dir, run_dir):
                os.chown(d, *acct)
            for parent in self.pg_dir.parents:  # the server user must be able to reach root/pg
                mode = parent.stat().st_mode
                if not mode & 0o001 and parent.stat().st_uid != acct[0]:
                    parent.chmod(mode | 0o001)
        shutil.rmtree(self.pg_data, ignore_errors=True)
        proc = self._as_pg([str(bindir / "initdb"), "-D", str(self.pg_data), "-U", "postgres",
                            "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        if proc.returncode != 0:
            raise StackError(f"initdb failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        sockets = str(run_dir) if len(str(run_dir)) < 90 else ""
        with (self.pg_data / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# cartridge-warp local stack\nlisten_addresses = '127.0.0.1'\n"
                       f"port = {_free_ports(1)[0]}\nunix_socket_directories = '{sockets}'\n"
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = on\n"
                       "max_connections = 200\npassword_encryption = 'scram-sha-256'\n")
        (self.pg_data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PG_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n")

    async def _pg_setup(self, port: int) -> None:
        """Create the password role and the database if missing, then log in with them."""
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                     database="postgres", timeout=30)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", PG_ROLE):
                await conn.execute("CREATE ROLE warp LOGIN SUPERUSER PASSWORD 'warp-secret'")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                       PG_DATABASE):
                await conn.execute("CREATE DATABASE warp OWNER warp")
        finally:
            await conn.close()
        dsn = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{port}/{PG_DATABASE}"
        if not await _pg_answers(dsn):
            raise StackError(f"PostgreSQL does not accept {dsn}\n{_tail(self.pg_log, 15)}")

    def _kafka_ports(self) -> tuple[int, int]:
        text = self.kafka_props.read_text()
        return (int(re.findall(r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+)", text, re.M)[0]),
                int(re.findall(r"^controller\.quorum\.voters=1@127\.0\.0\.1:(\d+)", text,
                               re.M)[0]))

    def _java(self) -> list[str]:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
        if not java or not Path(java).is_file():
            raise StackError("java not found; install a Java 17+ runtime "
                             "(apt-get install -y openjdk-17-jre-headless)")
        opts = shlex.split(os.environ.get("WARP_KAFKA_JVM_OPTS", JVM_OPTS))
        log_cfg = self.kafka_dir / "log4j2.properties"
        return [java, *opts, f"-Dlog4j2.configurationFile={log_cfg}", "-cp", kafka_classpath()]

    def _init_kafka(self) -> None:
        data = self.kafka_dir / "data"
        if (data / "meta.properties").is_file() and self.kafka_props.is_file():
            return
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        (self.kafka_dir / "log4j2.properties").write_text(LOG4J2)
        port, cport = _free_ports(2)
        props = {
            "process.roles": "broker,controller", "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@127.0.0.1:{cport}", "log.dirs": str(data),
            "num.partitions": "1", "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8", "transaction.state.log.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1", "min.insync.replicas": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # a broker killed with SIGKILL re-registers once its old session expires (default 9 s)
            "broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
        }
        self.kafka_props.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        shutil.rmtree(data, ignore_errors=True)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
               f"--config={self.kafka_props}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise StackError(f"kafka storage format failed: {proc.stdout[-800:]}"
                             f"{proc.stderr[-800:]}")

    def _spawn_kafka(self) -> None:
        """Start the broker detached (own session, output to kafka.log); no Popen is kept, so
        the JVM outlives this object and pid_alive() reaps it."""
        cmd = [*self._java(), "kafka.Kafka", str(self.kafka_props)]
        log = os.open(self.kafka_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.posix_spawn(cmd[0], cmd, os.environ, setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)])
        finally:
            os.close(log)

    def _wait_kafka(self, info: StackInfo) -> None:
        deadline = time.monotonic() + KAFKA_READY_S
        while not _run_async(_kafka_answers(info.bootstrap_servers, 3000)):
            if self._kafka_pid() is None:
                raise StackError(f"the Kafka broker exited; log {self.kafka_log}:\n"
                                 f"{_tail(self.kafka_log)}")
            if time.monotonic() > deadline:
                raise StackError(f"Kafka did not answer within {KAFKA_READY_S:.0f} s; log "
                                 f"{self.kafka_log}:\n{_tail(self.kafka_log)}")
            time.sleep(0.2)


def _print_env(info: StackInfo) -> None:
    for key, value in info.env().items():
        print(f"export {key}={shlex.quote(value)}")


def main(argv: list[str]) -> int:
    """``warp-sink stack {up,down,env,status} [--dir DIR]``."""
    parser = argparse.ArgumentParser(prog="warp-sink stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--dir", type=Path, help="stack directory (default: $WARP_STACK_DIR "
                        "or ./.warp/stack)",
                        default=Path(os.environ.get("WARP_STACK_DIR") or ".warp/stack"))
    parser.add_argument("--purge", action="store_true", help="down: also delete the data")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    stack = LocalStack(args.dir)
    try:
        if args.command == "up":
            info = stack.up()
            print(f"# kafka       {info.bootstrap_servers} (pid {info.kafka_pid})")
            print(f"# postgresql  127.0.0.1:{info.pg_port} (pid {info.pg_pid})")
            _print_env(info)
        elif args.command == "down":
            stack.down(purge=args.purge)
            print(f"# stack in {stack.root} stopped")
        else:
            known = stack.info()
            if known is None:
                print(f"warp-sink stack: no stack is up in {stack.root}", file=sys.stderr)
                return 1
            pg_ok, kafka_ok = stack.status()
            if args.command == "status":
                print(f"kafka       {known.bootstrap_servers} {'up' if kafka_ok else 'DOWN'}")
                print(f"postgresql  127.0.0.1:{known.pg_port} {'up' if pg_ok else 'DOWN'}")
            elif pg_ok and kafka_ok:
                _print_env(known)
            else:
                down = " and ".join(n for n, ok in (("kafka", kafka_ok), ("postgresql", pg_ok))
                                    if not ok)
                print(f"warp-sink stack: {down} in {stack.root} not answering", file=sys.stderr)
            return 0 if pg_ok and kafka_ok else 1
    except (StackError, OSError, subprocess.SubprocessError) as exc:
        print(f"warp-sink stack: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
