"""The secured local PostgreSQL server: the plain stack's cluster with ``ssl = on`` and a
``pg_hba.conf`` that accepts TCP only over TLS (``hostssl``): the role ``warp`` with a
SCRAM-SHA-256 password, the role ``warp_cert`` (and the super user ``postgres``, for the
harness) with a client certificate whose CN is the role (``clientcert=verify-full``)."""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path

import asyncpg

from sink.stack.pki import Pair, Pki
from sink.stack.postgres import PG_DATABASE, PostgresServer, _pg_account
from sink.stack.process import StackError, tail

PG_PASSWORD_ROLE, PG_CERT_ROLE = "warp", "warp_cert"

HBA = (
    "local all all trust\n"
    f"hostssl all postgres 127.0.0.1/32 cert clientcert=verify-full\n"
    f"hostssl all {PG_PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
    f"hostssl all {PG_CERT_ROLE} 127.0.0.1/32 cert clientcert=verify-full\n"
)


def client_context(ca: Path, pair: Pair | None = None) -> ssl.SSLContext:
    """verify-full against ``ca``, presenting ``pair`` when given."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


class SecurePostgresServer(PostgresServer):
    def __init__(self, root: Path, pki: Pki, password: str) -> None:
        super().__init__(root)
        self.pki = pki
        self.password = password

    def init(self) -> None:
        """The plain cluster, then TLS on and the hostssl-only pg_hba.conf (once)."""
        if self.initialized:
            return
        super().init()
        server = self.pki.issue("pg-server", "127.0.0.1", server=True)
        acct = _pg_account()
        # PostgreSQL refuses a key file others can read, or one it does not own.
        for src, name in ((server.cert, "server.crt"), (server.key, "server.key"),
                          (self.pki.ca, "root.crt")):
            dst = self.data / name
            shutil.copyfile(src, dst)
            dst.chmod(0o600)
            if acct is not None:
                os.chown(dst, *acct)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "ssl_ca_file = 'root.crt'\n")
        (self.data / "pg_hba.conf").write_text(HBA)

    def admin_pair(self) -> Pair:
        return self.pki.issue("pg-admin", "postgres", server=False)

    def cert_pair(self) -> Pair:
        return self.pki.issue(f"pg-{PG_CERT_ROLE}", PG_CERT_ROLE, server=False)

    async def setup(self, port: int) -> None:
        """The two roles and the database (owned by ``warp``; ``warp_cert`` may create
        schemas in it), then a login with each."""
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                     database="postgres", timeout=30,
                                     ssl=client_context(self.pki.ca, self.admin_pair()))
        try:
            for role in (PG_PASSWORD_ROLE, PG_CERT_ROLE):
                if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await conn.execute(f'CREATE ROLE "{role}" LOGIN')
            # set every time: the password is the stack's own (secrets.json)
            await conn.execute(f'ALTER ROLE "{PG_PASSWORD_ROLE}" PASSWORD '
                               f"{_literal(self.password)}")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                       PG_DATABASE):
                await conn.execute(f'CREATE DATABASE "{PG_DATABASE}" OWNER "{PG_PASSWORD_ROLE}"')
            await conn.execute(f'GRANT CREATE ON DATABASE "{PG_DATABASE}" TO "{PG_CERT_ROLE}"')
        finally:
            await conn.close()
        ca = self.pki.ca
        try:
            for user, password, ctx in (
                    (PG_PASSWORD_ROLE, self.password, client_context(ca)),
                    (PG_CERT_ROLE, None, client_context(ca, self.cert_pair()))):
                c = await asyncpg.connect(host="127.0.0.1", port=port, database=PG_DATABASE,
                                          user=user, password=password, ssl=ctx, timeout=30)
                await c.close()
        except (OSError, asyncpg.PostgresError) as exc:
            raise StackError(f"the secured PostgreSQL refuses its own roles: "
                             f"{type(exc).__name__}\n{tail(self.log, 15)}") from None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
