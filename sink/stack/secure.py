"""The secured local stack (``warp-sink stack up --secure``): the same Kafka jars and
PostgreSQL binaries as the plain stack, with a throwaway CA, TLS everywhere, SASL
(SCRAM-SHA-512/256, PLAIN), mutual TLS, ACLs, and a hostssl-only PostgreSQL with a password
role and a certificate role. Everything lives under one directory (default
``./.warp/secure-stack``); ``secrets.json`` there holds the generated passwords (mode 0600).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from sink.stack.kafka import create_topic, kafka_answers
from sink.stack.pki import Pair, Pki
from sink.stack.postgres import PG_DATABASE
from sink.stack.process import run_async
from sink.stack.secure_kafka import (
    DLQ_PREFIX,
    GROUP_PREFIX,
    SINK_USER,
    TOPIC_PREFIX,
    KafkaSecrets,
    SecureKafkaServer,
    admin_client_kwargs,
)
from sink.stack.secure_postgres import (
    PG_CERT_ROLE,
    PG_PASSWORD_ROLE,
    SecurePostgresServer,
    client_context,
)

KAFKA_STYLES = ("scram-sha-512", "scram-sha-256", "plain", "mtls", "sasl-plaintext")
PG_STYLES = ("password", "cert")
DEFAULT_DLQ = f"{DLQ_PREFIX}{GROUP_PREFIX}"


@dataclass
class SecureStackInfo:
    """Where the secured stack answers and what a client needs to log in."""

    root: Path
    sasl_ssl: str
    ssl: str
    sasl_plaintext: str
    kafka_pid: int
    pg_port: int
    pg_pid: int
    ca: str
    rogue_ca: str
    client_cert: str
    client_key: str
    pg_cert: str
    pg_key: str
    sink_password: str
    admin_password: str
    pg_password: str

    def source(self, style: str = "scram-sha-512") -> dict[str, Any]:
        """The ``source`` security keys of the sink for a Kafka ``style`` (KAFKA_STYLES)."""
        if style == "mtls":
            return {"bootstrap_servers": self.ssl, "security_protocol": "SSL",
                    "ssl_cafile": self.ca, "ssl_certfile": self.client_cert,
                    "ssl_keyfile": self.client_key}
        sasl = {"sasl_mechanism": "PLAIN" if style in ("plain", "sasl-plaintext")
                else style.upper(),
                "sasl_username": SINK_USER, "sasl_password": self.sink_password}
        if style == "sasl-plaintext":
            return {"bootstrap_servers": self.sasl_plaintext,
                    "security_protocol": "SASL_PLAINTEXT", **sasl}
        return {"bootstrap_servers": self.sasl_ssl, "security_protocol": "SASL_SSL",
                "ssl_cafile": self.ca, **sasl}

    def destination(self, style: str = "password") -> dict[str, Any]:
        """The ``destination`` keys: the SCRAM password role or the certificate role, both
        ``verify-full`` against the stack's CA."""
        tls = {"sslmode": "verify-full", "sslrootcert": self.ca}
        if style == "cert":
            return {"connection_string": self.pg_dsn(PG_CERT_ROLE), **tls,
                    "sslcert": self.pg_cert, "sslkey": self.pg_key}
        return {"connection_string": self.pg_dsn(PG_PASSWORD_ROLE), **tls}

    def pg_dsn(self, role: str = PG_PASSWORD_ROLE, password: str | None = None) -> str:
        if role == PG_PASSWORD_ROLE:
            password = self.pg_password if password is None else password
        auth = f"{role}:{password}" if password else role
        return f"postgresql://{auth}@127.0.0.1:{self.pg_port}/{PG_DATABASE}"

    def pg_ssl(self, style: str = "password") -> Any:
        """An asyncpg ``ssl`` argument (verify-full) for the password role, or for the
        certificate role with its certificate (``style`` "cert")."""
        pair = Pair(Path(self.pg_cert), Path(self.pg_key)) if style == "cert" else None
        return client_context(Path(self.ca), pair)

    def admin(self) -> dict[str, Any]:
        """aiokafka arguments (bootstrap included) for the super user."""
        return {"bootstrap_servers": self.sasl_plaintext,
                **admin_client_kwargs(KafkaSecrets(self.sink_password, self.admin_password, ""))}

    async def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` as the super user (the sink's principal may not create topics)."""
        kw = self.admin()
        await create_topic(kw.pop("bootstrap_servers"), name, partitions, **kw)

    def env(self, kafka: str = "scram-sha-512", pg: str = "password") -> dict[str, str]:
        out = {}
        for section, values in (("SOURCE", self.source(kafka)),
                                ("DESTINATION", self.destination(pg))):
            for key, value in values.items():
                out[f"WARP__{section}__{key.upper()}"] = str(value)
        return out


class SecureStack:
    """The secured Kafka + PostgreSQL under ``root``: ``pki/``, ``kafka/``, ``pg/``,
    ``secrets.json`` and ``stack.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.state_file = self.root / "stack.json"
        self.pki = Pki(self.root / "pki")
        s = self._secrets()
        self.kafka = SecureKafkaServer(self.root / "kafka", self.pki,
                                       KafkaSecrets(s["sink"], s["admin"], s["keystore"]))
        self.postgres = SecurePostgresServer(self.root / "pg", self.pki, s["pg"])

    def _secrets(self) -> dict[str, str]:
        path = self.root / "secrets.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass
        made = {k: f"{k}-{secrets.token_hex(12)}" for k in ("sink", "admin", "keystore", "pg")}
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(made, f)
        return made

    def info(self) -> SecureStackInfo | None:
        try:
            raw = json.loads(self.state_file.read_text())
            raw["root"] = Path(raw["root"])
            return SecureStackInfo(**raw)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _current(self) -> SecureStackInfo:
        ports = self.kafka.listener_ports()
        client = self.pki.issue("kafka-client", SINK_USER, server=False)
        pg_cert = self.postgres.cert_pair()
        s = self.kafka.secrets
        info = SecureStackInfo(
            self.root, f"127.0.0.1:{ports['SASL_SSL']}", f"127.0.0.1:{ports['SSL']}",
            f"127.0.0.1:{ports['SASL_PLAINTEXT']}", self.kafka.pid() or 0,
            self.postgres.port(), self.postgres.pid() or 0, str(self.pki.ca),
            str(self.pki.rogue_ca), str(client.cert), str(client.key), str(pg_cert.cert),
            str(pg_cert.key), s.sink_password, s.admin_password, self.postgres.password)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**asdict(info), "root": str(info.root)}, f, indent=2)
        os.replace(tmp, self.state_file)
        return info

    async def _probe(self, info: SecureStackInfo) -> tuple[bool, bool]:
        kw = info.admin()
        pg_ok, kafka_ok = await asyncio.gather(
            _pg_answers(info), kafka_answers(kw.pop("bootstrap_servers"), 3000, **kw))
        return pg_ok, kafka_ok

    def status(self) -> tuple[bool, bool]:
        info = self.info()
        return (False, False) if info is None else run_async(self._probe(info))

    def up(self) -> SecureStackInfo:
        """Make the certificates, start whatever is not running, grant the ACLs
        (idempotent)."""
        known = self.info()
        if known is not None and all(run_async(self._probe(known))):
            return known
        info = self._start()
        # the dead-letter topic `stack env --secure` names: the sink may not create topics
        run_async(info.create_topic(DEFAULT_DLQ))
        return info

    def _start(self) -> SecureStackInfo:
        self.pki.init()
        self.postgres.init()
        self.kafka.init()
        if self.postgres.pid() is None:
            self.postgres.ctl("start")
        if self.kafka.pid() is None:
            self.kafka.spawn()
        run_async(self.postgres.setup(self.postgres.port()))
        self.kafka.wait()
        self.kafka.grant()
        return self._current()

    def down(self, purge: bool = False) -> None:
        self.postgres.stop()
        self.kafka.stop()
        self.state_file.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)


async def _pg_answers(info: SecureStackInfo) -> bool:
    try:
        conn = await asyncpg.connect(info.pg_dsn(), timeout=5, ssl=info.pg_ssl())
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


__all__ = ["DEFAULT_DLQ", "DLQ_PREFIX", "GROUP_PREFIX", "KAFKA_STYLES", "PG_STYLES", "TOPIC_PREFIX",
           "SecureStack", "SecureStackInfo"]
