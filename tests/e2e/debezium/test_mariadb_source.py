"""The real Debezium MySQL connector on a MariaDB source feeds the real
`warp-sink run --until-caught-up`; every source table is compared with its target table,
types and values (mariadb_compare.py: the target must have the natural exact PostgreSQL
type of each MariaDB type and the same values).

What the sink does not yet land exactly is listed in :data:`MARIADB_KNOWN_GAPS`, one
reviewed entry per (table, column, problem) and converter set-up; the test fails on a new
gap (a regression) and on a listed gap that went away (a fix: take it off the list).
``WARP_TYPE_MAPPING_JSON=<file>`` also writes the comparison under ``mariadb-<set-up>``,
from which ``scripts/type_mapping.py`` renders the MariaDB sections of
``docs/type-mapping.md``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.debezium import compare, mariadb_rig, rig
from tests.e2e.debezium.known_gaps import MARIADB_KNOWN_GAPS
from tests.e2e.debezium.mariadb_compare import compare_mariadb
from tests.e2e.debezium.test_postgres_source import (
    _dead_letters,
    _dump,
    _record,
    _target_db,
    _topics,
)
from tests.harness import Stack
from tests.support import read_topic, run_sink, warp, write_config

pytestmark = pytest.mark.integration


async def _overflow(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch('SELECT id::text, "_cartridge_overflow"::text AS o '
                                'FROM app.all_types WHERE "_cartridge_overflow" IS NOT NULL')
        return {r["id"]: json.loads(r["o"]) for r in rows}
    finally:
        await conn.close()


def _values_exact(rep: compare.TableReport) -> bool:
    return rep.target_rows is not None and not rep.row_problem and not any(
        "values" in c.problems for c in rep.columns)


@pytest.mark.parametrize("setup", list(mariadb_rig.SETUPS))
async def test_debezium_mariadb_source_lands_exactly(
    setup: str, debezium_mariadb: rig.Capture, stack: Stack, tmp_path: Path
) -> None:
    cap = debezium_mariadb
    target = await _target_db(stack, f"m{setup}")
    topics = await _topics(cap, setup)
    assert len(topics) >= 6, topics
    group = f"g-m{setup}-{uuid.uuid4().hex[:6]}"
    cfg = write_config(tmp_path / "sink.yaml", bootstrap=cap.bootstrap, dsn=target,
                       topic=topics[0], group=group, extra="mapping:\n  truncate: apply\n")
    text = cfg.read_text().replace(f'topics: ["{topics[0]}"]', f"topics: {json.dumps(topics)}")
    cfg.write_text(text)
    proc = run_sink(cfg, "--until-caught-up", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    reports = await compare_mariadb(int(cap.source_dsn), target)
    schemas = {}
    for t in topics:
        msgs = await read_topic(cap.bootstrap, t)
        schemas[t.rsplit(".", 1)[-1]] = compare.connect_schemas([m.value for m in msgs])
    dead = await _dead_letters(cap.bootstrap, f"{group}.dlq")
    _record(f"mariadb-{setup}", reports, schemas, cap, dead, mariadb_rig.SETUPS[setup])
    assert all(d["warp_table"] == f"app.{d['table']}" for d in dead), dead

    found = set().union(*(r.gaps() for r in reports))
    found |= {(d["table"], d["column"], f"dead letter {d['code']}") for d in dead}
    known = MARIADB_KNOWN_GAPS[setup]
    why = {(r.table, c.column): c.detail for r in reports for c in r.columns}
    why |= {(d["table"], d["column"]): d["message"] for d in dead}
    rows = {r.table: r.row_problem for r in reports}
    new = sorted(found - known)
    fixed = sorted(known - found)
    assert not new and not fixed, (
        f"{setup}: gaps not on the list (regressions): "
        + "; ".join(f"{g} {why.get(g[:2]) or rows.get(g[0], '')}" for g in new)
        + f" | listed gaps that went away (fixed: take them off MARIADB_KNOWN_GAPS): {fixed}"
    )
    by_table = {r.table: r for r in reports}
    assert set(by_table) >= {"all_types", "comp_pk", "keyless", "trunc_me", "evolve", "late"}
    # the binlog's full before image finds the one of two identical rows a DELETE removed
    # (the table's varchar column is text: a listed type gap, its values are exact)
    assert _values_exact(by_table["keyless"]) and by_table["keyless"].source_rows == 3
    assert by_table["trunc_me"].exact and by_table["trunc_me"].source_rows == 1
    assert by_table["evolve"].kept == ["note"]  # DROP COLUMN: the sink never drops columns

    if setup != "noschemas":
        # TIME is a duration in MariaDB: one beyond a day has no PostgreSQL time, and the
        # sink keeps it in the overflow column (as seconds) rather than dropping it
        overflow = await _overflow(target)
        beyond = {("2", "c_time"): -3020399.0, ("102", "c_time6"): -3020399.0,
                  ("3", "c_time"): 3020399.0, ("200", "c_time6"): 3020399.0,
                  ("4", "c_time6"): -1e-06, ("104", "c_time6"): -1e-06}
        assert {k: overflow.get(k[0], {}).get(k[1]) for k in beyond} == beyond, overflow
    if setup == "schemas":  # a replay over everything, TRUNCATE included, changes nothing
        before = await _dump(target)
        assert await warp("offsets", "reset", "--config", str(cfg), "--to", "earliest") == 0
        again = run_sink(cfg, "--until-caught-up", timeout=180)
        assert again.returncode == 0, again.stderr[-3000:]
        after = await _dump(target)
        assert after == before, [t for t in before if before[t] != after.get(t)]
