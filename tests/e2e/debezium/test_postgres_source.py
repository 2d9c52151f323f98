"""The real Debezium PostgreSQL connector feeds the real `warp-sink run --until-caught-up`;
every source table is compared with its target table, types and values (compare.py).

What the sink does not yet land exactly is listed in :data:`KNOWN_GAPS`, one reviewed entry
per (table, column, problem) and converter set-up. The test asserts the found gaps equal
that set: a new gap (a regression) fails it, and so does a gap that went away (a fix: take
it off the list). ``WARP_TYPE_MAPPING_JSON=<file>`` also writes the full comparison, from
which ``scripts/type_mapping.py`` renders ``docs/type-mapping.md``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.debezium import compare, rig
from tests.e2e.debezium.known_gaps import KNOWN_GAPS
from tests.harness import Stack
from tests.support import read_topic, run_sink, topic_exists, warp, write_config

pytestmark = pytest.mark.integration


async def _target_db(stack: Stack, setup: str) -> str:
    name = f"dbz_{setup}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = stack.pg_dsn.rpartition("/")
    if setup in EXTENSIONS_IN_TARGET:
        # The propagated citext/hstore types are used when the target has them.
        conn = await asyncpg.connect(f"{base}/{name}")
        try:
            await conn.execute("CREATE EXTENSION citext; CREATE EXTENSION hstore")
        finally:
            await conn.close()
    return f"{base}/{name}"


EXTENSIONS_IN_TARGET = {"propagate"}


async def _topics(cap: rig.Capture, setup: str) -> list[str]:
    ends = await rig.end_offsets(cap.bootstrap, [cap.prefixes[setup]])
    return sorted({t for t, _ in ends})


_COLUMN = re.compile(r"column '([^']+)'")


async def _dead_letters(bootstrap: str, dlq: str) -> list[dict[str, str]]:
    """Each dead letter as {table, column, code, message} (column "*" when none is named)."""
    if not await topic_exists(bootstrap, dlq):
        return []
    out = []
    for m in await read_topic(bootstrap, dlq):
        h = {k: v.decode() for k, v in m.headers}
        msg = h.get("__connect.errors.exception.message", "")
        col = _COLUMN.search(msg)
        out.append({"table": h["__connect.errors.topic"].rsplit(".", 1)[-1],
                    "column": col.group(1) if col else "*",
                    "code": h.get("warp.error.code", "?"), "message": msg[:300],
                    "warp_table": f"{h.get('warp.schema')}.{h.get('warp.table')}"})
    return out


def _record(setup: str, reports: list[compare.TableReport], schemas: dict[str, dict[str, str]],
            cap: rig.Capture, dead: list[dict[str, str]],
            options: dict[str, str] | None = None) -> None:
    path = os.environ.get("WARP_TYPE_MAPPING_JSON")
    if not path:
        return
    out = Path(path)
    data: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    data[setup] = {"options": rig.SETUPS[setup] if options is None else options,
                   "tables": [r.as_dict() for r in reports],
                   "connect_schemas": schemas, "workload": cap.workload,
                   "dead_letters": dead}
    out.write_text(json.dumps(data, indent=1, sort_keys=True))


@pytest.mark.parametrize("setup", list(rig.SETUPS))
async def test_debezium_postgres_source_lands_exactly(
    setup: str, debezium_pg: rig.Capture, stack: Stack, tmp_path: Path
) -> None:
    cap = debezium_pg
    target = await _target_db(stack, setup)
    topics = await _topics(cap, setup)
    assert len(topics) >= 10, topics
    group = f"g-{setup}-{uuid.uuid4().hex[:6]}"
    cfg = write_config(tmp_path / "sink.yaml", bootstrap=cap.bootstrap, dsn=target,
                       topic=topics[0], group=group,
                       extra="mapping:\n  truncate: apply\n  keyless_tables:\n"
                             "    app.keyless_default: append\n")
    text = cfg.read_text().replace(f'topics: ["{topics[0]}"]', f"topics: {json.dumps(topics)}")
    cfg.write_text(text)
    proc = run_sink(cfg, "--until-caught-up", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Schemas off: one warning per table naming the ambiguous columns; schemas on: none.
    warned = [x for x in (json.loads(ln) for ln in proc.stderr.splitlines() if ln[:1] == "{")
              if "without a schema" in x.get("event", "")]
    tables = [w["table"] for w in warned]
    if setup == "noschemas":
        assert len(tables) == len(set(tables)) and len(tables) >= 10, tables
        amb = next(w["ambiguous"] for w in warned if w["table"] == "all_types")
        assert {"c_date", "c_time", "c_ts"} <= set(amb["integers"]), amb
        assert "c_bytea" in amb["base64"] and amb["decimal_structs"] == ["c_numeric"], amb
    else:
        assert tables == []

    reports = await compare.compare(cap.source_dsn, target)
    schemas = {}
    for t in topics:
        msgs = await read_topic(cap.bootstrap, t)
        schemas[t.rsplit(".", 1)[-1]] = compare.connect_schemas([m.value for m in msgs])
    dead = await _dead_letters(cap.bootstrap, f"{group}.dlq")
    _record(setup, reports, schemas, cap, dead)
    # Decode-stage dead letters name the table their envelope names (issue 13 item 9).
    assert all(d["warp_table"] == f"app.{d['table']}" for d in dead), dead

    found = set().union(*(r.gaps() for r in reports))
    found |= {(d["table"], d["column"], f"dead letter {d['code']}") for d in dead}
    known = KNOWN_GAPS[setup]
    why = {(r.table, c.column): c.detail for r in reports for c in r.columns}
    why |= {(d["table"], d["column"]): d["message"] for d in dead}
    rows = {r.table: r.row_problem for r in reports}
    new = sorted(found - known)
    fixed = sorted(known - found)
    assert not new and not fixed, (
        f"{setup}: gaps not on the list (regressions): "
        + "; ".join(f"{g} {why.get(g[:2]) or rows.get(g[0], '')}" for g in new)
        + f" | listed gaps that went away (fixed: take them off KNOWN_GAPS): {fixed}"
    )
    assert len(reports) >= 11
    by_table = {r.table: r for r in reports}
    # REPLICA IDENTITY FULL: the update and the delete of one of two identical rows found
    # their rows by the before image; the default identity table is a change log.
    assert by_table["keyless_full"].exact and by_table["keyless_default"].exact
    assert by_table["keyless_default"].kept == ["_cartridge_op"]

    if setup == "schemas":  # a replay over everything, TRUNCATE included, changes nothing
        before = await _dump(target)
        assert await warp("offsets", "reset", "--config", str(cfg), "--to", "earliest") == 0
        again = run_sink(cfg, "--until-caught-up", timeout=180)
        assert again.returncode == 0, again.stderr[-3000:]
        after = await _dump(target)
        assert after == before, [t for t in before if before[t] != after.get(t)]


async def _dump(dsn: str) -> dict[str, list[str]]:
    """Every row of every table in ``app``, the sink's columns included, in a stable order
    (as PostgreSQL's text: asyncpg cannot read BC dates or years past 9999 back)."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'app' ORDER BY 1")]
        return {t: sorted(r[0] for r in await conn.fetch(
            f'SELECT x::text FROM "app"."{t}" AS x')) for t in tables}
    finally:
        await conn.close()
