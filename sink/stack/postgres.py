"""The local stack's PostgreSQL server: a cluster made with ``initdb`` from the system's
server binaries, run with ``pg_ctl`` (as the ``postgres`` account when we are root) on a
free loopback port, with a password role and database for the sink."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from sink.stack.process import StackError, free_ports, pid_alive, stop_process, tail

PG_ROLE, PG_PASSWORD, PG_DATABASE = "warp", "warp-secret", "warp"


def pg_dsn(port: int) -> str:
    """The sink's DSN for the server on ``port``."""
    return f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{port}/{PG_DATABASE}"


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


async def pg_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


class PostgresServer:
    """The server under ``root``: ``data/`` (the cluster), ``run/`` (its socket) and
    ``postgres.log``."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.data = root / "data"
        self.log = root / "postgres.log"

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def port(self) -> int:
        conf = (self.data / "postgresql.conf").read_text()
        return int(re.findall(r"^port = (\d+)", conf, re.M)[-1])

    def _as_pg(self, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        acct = _pg_account()
        kw: dict[str, Any] = {}
        if acct is not None:
            kw = {"user": acct[0], "group": acct[1], "extra_groups": []}
        return subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, check=False,
                              timeout=timeout, start_new_session=True, stdin=subprocess.DEVNULL,
                              **kw)

    def ctl(self, *args: str) -> None:
        """``pg_ctl ARGS`` on this cluster (waiting up to 60 s)."""
        cmd = [str(_pg_bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
               "-w", "-t", "60", *args]
        proc = self._as_pg(cmd)
        if proc.returncode != 0:
            raise StackError(f"pg_ctl {args[0]} failed: {(proc.stderr or proc.stdout).strip()}\n"
                             f"{tail(self.log, 15)}")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``, then SIGQUIT if the postmaster is still there."""
        if self.initialized and self.pid() is not None:
            with contextlib.suppress(StackError):
                self.ctl("stop", "-m", "fast")
            if (pid := self.pid()) is not None:
                stop_process(pid, signal.SIGQUIT)

    def init(self) -> None:
        """``initdb`` a cluster listening on a free loopback port (once)."""
        if self.initialized:
            return
        bindir, acct = _pg_bindir(), _pg_account()
        run_dir = self.dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        if acct is not None:
            for d in (self.dir, run_dir):
                os.chown(d, *acct)
            for parent in self.dir.parents:  # the server user must be able to reach root/pg
                mode = parent.stat().st_mode
                if not mode & 0o001 and parent.stat().st_uid != acct[0]:
                    parent.chmod(mode | 0o001)
        shutil.rmtree(self.data, ignore_errors=True)
        proc = self._as_pg([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                            "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        if proc.returncode != 0:
            raise StackError(f"initdb failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        sockets = str(run_dir) if len(str(run_dir)) < 90 else ""
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# cartridge-warp local stack\nlisten_addresses = '127.0.0.1'\n"
                       f"port = {free_ports(1)[0]}\nunix_socket_directories = '{sockets}'\n"
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = on\n"
                       "max_connections = 200\npassword_encryption = 'scram-sha-256'\n")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PG_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n")

    async def setup(self, port: int) -> None:
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
        dsn = pg_dsn(port)
        if not await pg_answers(dsn):
            raise StackError(f"PostgreSQL does not accept {dsn}\n{tail(self.log, 15)}")
