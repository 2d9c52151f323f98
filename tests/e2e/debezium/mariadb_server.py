"""A throwaway MariaDB server for the MariaDB-source suite: Debian's ``mariadb-server``
binaries, our own data directory, port and socket (never the system service), the binary
log in the format Debezium reads (``ROW``, full row images), stopped at session end.

Tests skip when the binaries are absent, except under ``CI=true``: there a missing
``mariadbd`` is a broken machine set-up (scripts/bootstrap.sh installs it) and must fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sink.stack.process import free_ports, pid_alive, stop_process, tail

USER, PASSWORD, DATABASE = "warp", "warp-secret", "app"


class MariaDBUnavailable(RuntimeError):
    """The MariaDB server binaries are not installed here."""


def _binary(*names: str) -> str:
    for name in names:
        for d in ("", "/usr/sbin/", "/usr/bin/"):
            exe = shutil.which(name) if not d else d + name
            if exe and Path(exe).is_file() and os.access(exe, os.X_OK):
                return exe
    raise MariaDBUnavailable(f"{names[0]} not found (Debian: apt-get install -y mariadb-server)")


class MariaDBServer:
    """``mariadbd`` on 127.0.0.1 with a fresh data directory under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sock = root / "mysqld.sock"
        self.log = root / "mariadbd.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 60) -> None:
        mariadbd = _binary("mariadbd", "mysqld")
        install = _binary("mariadb-install-db", "mysql_install_db")
        self.root.mkdir(parents=True, exist_ok=True)
        # root may run mariadbd only with --user=root; a non-root user runs it as itself
        user = ["--user=root"] if os.geteuid() == 0 else []
        proc = subprocess.run(
            [install, "--no-defaults", f"--datadir={self.data}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *user],
            capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {(proc.stdout + proc.stderr)[-1500:]}")
        self.port = free_ports(1)[0]
        cmd = [mariadbd, "--no-defaults", f"--datadir={self.data}", f"--socket={self.sock}",
               f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.root}/pid",
               f"--log-error={self.log}", *user,
               # What Debezium's binlog connectors need: row events with full images.
               f"--log-bin={self.root}/binlog", "--binlog-format=ROW",
               "--binlog-row-image=FULL", "--server-id=1", "--binlog-row-metadata=FULL",
               "--default-time-zone=+00:00", "--character-set-server=utf8mb4",
               "--collation-server=utf8mb4_unicode_ci", "--skip-name-resolve",
               # small and fast: a test server holding a few hundred rows
               "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
               "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--performance-schema=OFF"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + within
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited ({self.proc.returncode}):\n{tail(self.log)}")
            try:
                conn = self.connect(user="root", password="", database=None, socket=True)
                break
            except Exception:  # not up yet; the deadline bounds the wait
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd not answering after {within:.0f} s:\n"
                                       f"{tail(self.log)}") from None
                time.sleep(0.2)
        try:
            with conn.cursor() as cur:
                # Debezium reads the binlog as a replica and the catalog for the snapshot.
                for sql in (f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'",
                            f"CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'",
                            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'",
                            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'localhost'",
                            f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4"):
                    cur.execute(sql)
        finally:
            conn.close()

    def connect(self, user: str = USER, password: str = PASSWORD,
                database: str | None = DATABASE, socket: bool = False) -> Any:
        import pymysql

        where: dict[str, Any] = ({"unix_socket": str(self.sock)} if socket
                                 else {"host": "127.0.0.1", "port": self.port})
        return pymysql.connect(user=user, password=password, database=database,
                               charset="utf8mb4", autocommit=True, connect_timeout=5,
                               init_command="SET time_zone = '+00:00'", **where)

    def stop(self) -> None:
        if self.proc is not None and pid_alive(self.proc.pid):
            stop_process(self.proc.pid, signal.SIGTERM)
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(5)
