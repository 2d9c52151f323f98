"""Secrets are never printed: not in log lines, `config show`, `/metrics`, dead-letter
headers, `check` output or error messages. The real `warp-sink` process runs against the
real Kafka and PostgreSQL with a DSN password and a registry password, a poison message
makes a dead letter, and everything the process emits is searched for both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from sink import logs
from sink.tools.events import MongoEvents, Oid
from tests.config.runs import cli, free_port, run_and_scrape
from tests.support import produce, read_topic, unique

pytestmark = pytest.mark.integration

REGISTRY_PASSWORD = "Reg-Canary-5150"  # in the config file, never used for a connection
WRONG_PASSWORD = "Wrong-Canary-99"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Any:
    yield
    logs.clear_secrets()


def dsn_password(dsn: str) -> str:
    password = urlsplit(dsn).password  # the test stack's DSN is a plain one
    assert password is not None
    return unquote(password)


def write_config(path: Path, stack: Any, topic: str, group: str, port: int,
                 dsn: str | None = None) -> Path:
    path.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{topic}"]
  group_id: "{group}"
  schema_registry_url: "http://127.0.0.1:9"
  schema_registry_username: "reg-user"
  schema_registry_password: "{REGISTRY_PASSWORD}"
destination:
  connection_string: "{dsn or stack.pg_dsn}"
  min_connections: 1
  max_connections: 2
batch:
  max_records: 10
  max_age_ms: 1000
observability:
  metrics_port: {port}
  metrics_host: "127.0.0.1"
  log_format: "json"
  log_level: "debug"
""", encoding="utf-8")
    return path


async def test_no_secret_in_logs_metrics_config_or_dead_letters(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    db_password = dsn_password(stack.pg_dsn)
    assert db_password, "the test stack's DSN carries a password"
    secrets = (db_password, REGISTRY_PASSWORD)
    topic = await topic_factory(partitions=1)
    db, group, port = unique("sec"), unique("g"), free_port()
    ev = MongoEvents(db, "users")
    events = [ev.insert({"_id": Oid(f"{i:024x}"), "name": f"n{i}", "age": i})
              for i in range(1, 21)]
    poison = (b'{"id": "x"}', b'{"payload": {"op": "c", "after": 12')
    await produce(stack.bootstrap_servers, topic, [*events[:10], poison, *events[10:]])
    config = write_config(tmp_path / "c.yaml", stack, topic, group, port)
    group2 = unique("g2")

    # 1. --until-caught-up: scraped while it runs.
    code, out, err, scrapes = await run_and_scrape(config, port, "--until-caught-up")
    assert code == 0, err[-3000:]
    assert scrapes, "no /metrics scrape succeeded during the run"
    # 2. the service mode, stopped by SIGTERM once /metrics shows the dead letter and the
    #    pool (the label the DSN's database name feeds).
    code2, out2, err2, scrapes2 = await run_and_scrape(
        config, port, "--group-id", group2, stop_when="cartridge_warp_dlq_records_total{")
    assert code2 == 0, err2[-3000:]
    assert any("cartridge_warp_connection_pool_size{" in s for s in scrapes2)

    # 3. config show, and check with a wrong password in the DSN.
    code3, shown, err3 = await cli("config", "show", "--config", str(config))
    assert code3 == 0, err3
    assert json.loads(shown)["source"]["schema_registry_password"] == "***"
    wrong = stack.pg_dsn.replace(f":{db_password}@", f":{WRONG_PASSWORD}@")
    code4, checked, err4 = await cli("check", "--config", str(config), "--set",
                                     f"destination.connection_string={wrong}")
    assert code4 == 1
    masked = wrong.replace(WRONG_PASSWORD, "***")
    assert f"FAIL  postgresql {masked}: password authentication failed" in checked
    # ... and the same DSN through the environment, for `run` (exit 1, one line, masked)
    code5, out5, err5 = await cli("run", "--config", str(config), "--until-caught-up",
                                  env={"WARP__DESTINATION__CONNECTION_STRING": wrong,
                                       "WARP__OBSERVABILITY__METRICS_PORT": "0",
                                       "WARP__ERRORS__RETRY_DEADLINE_SECONDS": "3"})
    assert code5 == 1
    assert "password authentication failed" in err5

    dead = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert dead[0].value == poison[1]

    # The logs are JSON lines, and the seed's batch line is among them.
    lines = [json.loads(line) for line in (out + err).splitlines() if line.strip()]
    batch = [e for e in lines if e.get("event") == "batch processed"]
    assert batch, "no batch line"
    assert {"schema", "table", "records", "duration", "operations"} <= set(batch[0])
    assert (batch[0]["schema"], batch[0]["table"]) == (db, "users")
    assert sum(e["records"] for e in batch) == 20
    assert sum(e["operations"].get("insert", 0) for e in batch) == 20
    assert any(e.get("event") == "record dead-lettered" for e in lines)

    everything = {
        "run stdout": out, "run stderr": err, "service stdout": out2, "service stderr": err2,
        "config show": shown, "config show stderr": err3, "check": checked, "check stderr": err4,
        "wrong-password run": out5 + err5,
        "metrics": "\n".join(scrapes + scrapes2),
        "dlq headers": json.dumps(headers), "dlq key": repr(dead[0].key),
    }
    for where, text in everything.items():
        assert text or where.endswith(("stderr", "stdout", "key")), where
        for secret in (*secrets, WRONG_PASSWORD):
            assert secret not in text, f"{secret!r} printed in {where}"
    assert "***" in checked and "***" in shown


async def test_password_in_the_dsn_query_never_reaches_metrics(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    """Issue 12 item 14: ``…/warp?sslrootcert=…/ca.crt&password=secret`` made the pool
    metric's label ``database="ca.crt&password=secret"`` on /metrics (bound to 0.0.0.0,
    unauthenticated). The label is the parsed database name; the password, given in the
    query string, logs in (sslmode prefer ignores the root certificate here) and is found
    nowhere the process writes."""
    parts = urlsplit(stack.pg_dsn)
    base = {"user": parts.username, "host": parts.hostname, "port": parts.port,
            "dbname": parts.path.lstrip("/")}
    password = dsn_password(stack.pg_dsn)
    dsn = (f"postgresql://{base['user']}@{base['host']}:{base['port']}/{base['dbname']}"
           f"?sslrootcert=/etc/ssl/certs/ca.crt&password={quote(password, safe='')}")
    topic = await topic_factory(partitions=1)
    db, group, port = unique("q"), unique("g"), free_port()
    ev = MongoEvents(db, "users")
    await produce(stack.bootstrap_servers, topic,
                  [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(1, 6)])
    config = write_config(tmp_path / "c.yaml", stack, topic, group, port, dsn=dsn)
    code, out, err, scrapes = await run_and_scrape(
        config, port, stop_when="cartridge_warp_records_processed_total{")
    assert code == 0, err[-3000:]
    pool = [line for s in scrapes for line in s.splitlines()
            if line.startswith("cartridge_warp_connection_pool_size{")]
    assert pool, "no pool metric scraped"
    assert all(f'database="{base["dbname"]}"' in line for line in pool), pool[:3]
    assert sum(e.get("records", 0) for e in map(json.loads, filter(None, (
        line.strip() for line in (out + err).splitlines())))
        if e.get("event") == "batch processed") == 5
    code2, shown, _ = await cli("config", "show", "--config", str(config))
    assert code2 == 0 and json.loads(shown)["destination"]["connection_string"] == (
        f"postgresql://{base['user']}:***@{base['host']}:{base['port']}/{base['dbname']}"
        "?sslrootcert=/etc/ssl/certs/ca.crt")
    for where, text in {"metrics": "\n".join(scrapes), "stdout": out, "stderr": err,
                        "config show": shown}.items():
        assert password not in text, f"the password is in {where}"
        assert quote(password, safe="") not in text, f"the encoded password is in {where}"
