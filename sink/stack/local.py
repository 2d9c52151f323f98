"""A local stack for development, the demo and the tests: one Apache Kafka broker (KRaft,
broker and controller in one JVM) and one PostgreSQL server, on free loopback ports, all
under one directory. ``warp-sink stack up|down|env|status`` drives it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from sink.stack.kafka import (
    JVM_OPTS,
    KAFKA_READY_S,
    LOG4J2,
    POM,
    KafkaServer,
    create_topic,
    kafka_answers,
    kafka_classpath,
    require_pom,
)
from sink.stack.postgres import (
    PG_DATABASE,
    PG_PASSWORD,
    PG_ROLE,
    PostgresServer,
    pg_answers,
    pg_dsn,
)
from sink.stack.process import STOP_TIMEOUT_S, StackError, pid_alive, run_async

__all__ = [
    "JVM_OPTS",
    "KAFKA_READY_S",
    "LOG4J2",
    "PG_DATABASE",
    "PG_PASSWORD",
    "PG_ROLE",
    "POM",
    "STOP_TIMEOUT_S",
    "LocalStack",
    "StackError",
    "StackInfo",
    "create_topic",
    "kafka_classpath",
    "main",
    "pid_alive",
]


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


class LocalStack:
    """Kafka + PostgreSQL under ``root``: ``root/kafka`` (:class:`KafkaServer`), ``root/pg``
    (:class:`PostgresServer`) and ``root/stack.json`` (the last :class:`StackInfo`).
    ``kafka_proxy_listener``: see :class:`KafkaServer` (the test harness asks for it, for
    the chaos tests; it takes effect when the broker's storage is first created)."""

    def __init__(self, root: Path, kafka_proxy_listener: bool = False) -> None:
        self.root = Path(root).resolve()
        self.state_file = self.root / "stack.json"
        self.kafka = KafkaServer(self.root / "kafka", proxy_listener=kafka_proxy_listener)
        self.postgres = PostgresServer(self.root / "pg")
        self.kafka_dir = self.kafka.dir
        self.kafka_props = self.kafka.props
        self.kafka_log = self.kafka.log
        self.pg_dir = self.postgres.dir
        self.pg_data = self.postgres.data
        self.pg_log = self.postgres.log

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
        kport, cport = self.kafka.ports()
        pg_port = self.postgres.port()
        return StackInfo(self.root, f"127.0.0.1:{kport}", pg_dsn(pg_port),
                         self.kafka.pid() or 0, pg_port, self.postgres.pid() or 0, kport, cport)

    def up(self) -> StackInfo:
        """Start whatever is not running and return the stack's addresses (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        known = self.info()
        if known is not None and all(run_async(self._probe(known))):
            # A server restarted outside this object (pg_ctl by hand) has a new pid.
            current = self._current()
            return known if current == known else self._save(current)
        require_pom()
        self.postgres.init()
        self.kafka.init()
        if self.postgres.pid() is None:
            self.postgres.ctl("start")
        if self.kafka.pid() is None:
            self.kafka.spawn()
        info = self._save(self._current())
        run_async(self.postgres.setup(info.pg_port))
        self.kafka.wait(info.bootstrap_servers)
        return self._save(self._current())

    def down(self, purge: bool = False) -> None:
        """Stop both servers (nothing is left running) and forget the state file; ``purge``
        also deletes the data."""
        self.postgres.stop()
        self.stop_kafka()
        self.state_file.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)

    async def _probe(self, info: StackInfo) -> tuple[bool, bool]:
        pg, kafka = await asyncio.gather(pg_answers(info.pg_dsn),
                                         kafka_answers(info.bootstrap_servers))
        return pg, kafka

    def status(self) -> tuple[bool, bool]:
        """(PostgreSQL answers, Kafka answers) for the recorded stack."""
        info = self.info()
        return (False, False) if info is None else run_async(self._probe(info))

    def restart_postgres(self, immediate: bool = True) -> StackInfo:
        """Stop PostgreSQL (``-m immediate``: a crash, or ``-m fast``) and start it again on
        the same port and data."""
        self.postgres.ctl("stop", "-m", "immediate" if immediate else "fast")
        self.postgres.ctl("start")
        return self._save(self._current())

    def stop_kafka(self, kill: bool = False) -> None:
        """SIGTERM the broker (SIGKILL with ``kill`` or after a timeout) and wait for it."""
        self.kafka.stop(kill)

    def start_kafka(self) -> StackInfo:
        """Start the broker again (same ports and data) and wait until it answers."""
        if self.kafka.pid() is None:
            self.kafka.spawn()
        info = self._save(self._current())
        self.kafka.wait(info.bootstrap_servers)
        # Saved again: right after spawning, the JVM may not show in /proc yet (pid 0).
        return self._save(self._current())

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
    parser.add_argument("--secure", action="store_true", help="the secured stack (TLS, SASL, "
                        "ACLs; default dir $WARP_SECURE_STACK_DIR or ./.warp/secure-stack)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    if args.secure:
        from sink.stack.secure_cli import secure_main

        return secure_main(args.command, None if "--dir" not in argv else args.dir, args.purge)
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
