"""The real ``warp-sink`` against the real Kafka and PostgreSQL, logging in as a role whose
password holds every character a URL reserves (``@ : / ? #``, and ``% & = +`` and a
space), given the way Kubernetes mounts a Secret: ``destination.password_file``, the value
as written, with the trailing newline ``echo`` leaves. Also: the same password written raw
in the DSN, and the ``@`` then ``:`` password of issue 12 item 15 (asyncpg's parser made
``int('…@127.0.0.1:…')`` of it and printed a piece), are refused at start-up with exit 2 and
no piece of the password anywhere."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from sink import logs
from sink.tools.events import MongoEvents, Oid
from tests.config.runs import cli, free_port, run_and_scrape
from tests.support import produce, table_rows, unique

pytestmark = pytest.mark.integration

PASSWORD = "Kx7@Jq4:/Vb2?Lm5#Np8%Rt3&Hd6= +Wc9"
# Each piece between reserved characters: none may appear in any output.
PIECES = [p for p in re.split(r"[@:/?#%&= +]", PASSWORD) if p]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Any:
    yield
    logs.clear_secrets()


@pytest.fixture
async def role(stack: Any) -> AsyncIterator[dict[str, Any]]:
    """A login role with PASSWORD and the right to create schemas, checked to need its
    password (on the local stack, whose pg_hba trusts other roles on 127.0.0.1, a
    scram-sha-256 line for this role is added first)."""
    parts = urlsplit(stack.pg_dsn)
    name = unique("warp_pw")
    admin = await asyncpg.connect(stack.pg_dsn)
    hba: Path | None = None
    line = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
    try:
        ddl = await admin.fetchval("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, "
                                   "$2::text)", name, PASSWORD)
        await admin.execute(ddl)
        await admin.execute(f'GRANT CREATE ON DATABASE "{parts.path.lstrip("/")}" TO "{name}"')
        if stack.local is not None:
            hba = Path(await admin.fetchval("SHOW hba_file"))
            hba.write_text(line + hba.read_text(encoding="utf-8"), encoding="utf-8")
            await admin.execute("SELECT pg_reload_conf()")
        info = {"name": name, "host": parts.hostname, "port": parts.port,
                "db": parts.path.lstrip("/")}
        try:
            await (await asyncpg.connect(host=info["host"], port=info["port"], user=name,
                                         database=info["db"], password="not-it")).close()
        except asyncpg.InvalidPasswordError:
            pass
        else:
            pytest.skip("the server lets this role in without its password")
        yield info
    finally:
        if hba is not None:
            hba.write_text(hba.read_text(encoding="utf-8").replace(line, ""), encoding="utf-8")
            await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f'DROP OWNED BY "{name}" CASCADE')
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


def write_config(path: Path, stack: Any, role: dict[str, Any], topic: str, group: str,
                 port: int, meta: str, destination: str) -> Path:
    path.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{topic}"]
  group_id: "{group}"
destination:
  metadata_schema: "{meta}"
  min_connections: 1
  max_connections: 2
{destination}
batch:
  max_records: 10
  max_age_ms: 200
errors:
  retry_deadline_seconds: 5
observability:
  metrics_port: {port}
  metrics_host: "127.0.0.1"
  log_format: "json"
  log_level: "debug"
""", encoding="utf-8")
    return path


def assert_no_piece(outputs: dict[str, str]) -> None:
    for where, text in outputs.items():
        for piece in PIECES:
            assert piece not in text, f"{piece!r} (a piece of the password) is in {where}"


async def test_run_logs_in_with_a_password_file(
    stack: Any, role: dict[str, Any], topic_factory: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "destination-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")  # as `echo` or a Secret leave it
    topic = await topic_factory(partitions=2)
    db, group, meta, port = unique("pf"), unique("g"), unique("meta"), free_port()
    ev = MongoEvents(db, "users")
    await produce(stack.bootstrap_servers, topic,
                  [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(1, 31)])
    dsn = f"postgresql://{role['name']}@{role['host']}:{role['port']}/{role['db']}"
    config = write_config(tmp_path / "c.yaml", stack, role, topic, group, port, meta,
                          f'  connection_string: "{dsn}"\n  password_file: "{secret}"')

    code, out, err, scrapes = await run_and_scrape(config, port, "--until-caught-up")
    assert code == 0, err[-3000:]
    # (the PostgreSQL line only: the other checks are about Kafka and the registry)
    _, checked, check_err = await cli("check", "--config", str(config))
    assert f"OK    postgresql {dsn}: PostgreSQL" in checked, checked + check_err
    assert f"user {role['name']} may create schemas and tables" in checked
    rows = await table_rows(stack.pg_dsn, db, "users")
    assert sorted(rows) == [f"{i:024x}" for i in range(1, 31)]
    admin = await asyncpg.connect(stack.pg_dsn)
    try:
        owner = await admin.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'users'", db)
        offsets = await admin.fetch(
            f'SELECT partition, next_offset FROM "{meta}".kafka_offsets WHERE group_id = $1',
            group)
    finally:
        await admin.close()
    assert owner == role["name"]  # the sink logged in as the role, with the file's password
    assert sum(r["next_offset"] for r in offsets) == 30
    assert any(f'cartridge_warp_connection_pool_size{{database="{role["db"]}"}}' in s
               for s in scrapes)
    code, shown, _ = await cli("config", "show", "--config", str(config))
    data = json.loads(shown)["destination"]
    assert (data["password"], data["password_file"]) == ("***", str(secret))
    assert_no_piece({"check": checked + check_err, "run stdout": out, "run stderr": err,
                     "metrics": "\n".join(scrapes), "config show": shown})


@pytest.mark.parametrize("password", [PASSWORD, "Kx7@Jq4:Vb2"])
async def test_a_raw_password_in_the_dsn_is_refused_without_a_piece_of_it(
    stack: Any, role: dict[str, Any], topic_factory: Any, tmp_path: Path, password: str
) -> None:
    topic = await topic_factory(partitions=1)
    dsn = f"postgresql://{role['name']}:{password}@{role['host']}:{role['port']}/{role['db']}"
    config = write_config(tmp_path / "c.yaml", stack, role, topic, unique("g"), 0,
                          unique("meta"), f"  connection_string: '{dsn}'")
    code, out, err = await cli("run", "--config", str(config), "--until-caught-up")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "destination.connection_string: holds a raw '@' after the user part" in lines[0]
    assert "destination.password_file" in lines[0]
    assert_no_piece({"stdout": out, "stderr": err})
