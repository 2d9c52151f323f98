"""Render docs/type-mapping.md from the real-connector comparison (tests/e2e/debezium).

    python scripts/type_mapping.py              # runs the suite, then writes the page
    python scripts/type_mapping.py --json FILE  # renders a comparison written before
                                                # (WARP_TYPE_MAPPING_JSON=FILE pytest ...)

The page says, per converter set-up, for every source column: its PostgreSQL type, the
Connect schema the connector sent, the type the sink created, and whether every value landed
exactly (or why not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "type-mapping.md"
SETUP_TEXT = {
    "schemas": "JsonConverter, `schemas.enable=true`, Debezium defaults "
               "(`decimal.handling.mode=precise`, `interval.handling.mode=numeric`)",
    "noschemas": "JsonConverter, `schemas.enable=false`, Debezium defaults",
    "strings": "JsonConverter, `schemas.enable=true`, `decimal.handling.mode=string`, "
               "`interval.handling.mode=string`",
    "propagate": "JsonConverter, `schemas.enable=true`, `column.propagate.source.type=.*` "
                 "(the source type after `←` in the schema column), `citext` and `hstore` "
                 "installed in the target",
    "mariadb-schemas": "MariaDB source, JsonConverter, `schemas.enable=true`, "
                       "`bigint.unsigned.handling.mode=precise`, otherwise Debezium defaults",
    "mariadb-noschemas": "MariaDB source, JsonConverter, `schemas.enable=false`, "
                         "`bigint.unsigned.handling.mode=precise`",
    "mariadb-strings": "MariaDB source, JsonConverter, `schemas.enable=true`, "
                       "`decimal.handling.mode=string`, `bigint.unsigned.handling.mode=precise`",
    "mariadb-propagate": "MariaDB source, JsonConverter, `schemas.enable=true`, "
                         "`column.propagate.source.type=.*`, "
                         "`bigint.unsigned.handling.mode=precise`",
}
MARIADB_TEXT = [
    "## MariaDB source", "",
    "The Debezium MariaDB connector 3.5.0.Final (the last on Maven Central; the MySQL "
    "connector 3.6.1 refuses MariaDB 10.x: it takes any server version above 8 for a MySQL "
    "with `SHOW BINARY LOG STATUS`) in Kafka Connect 4.1.1 reads a MariaDB 10.11 source "
    "(Debian's `mariadb-server`, row binlog with full images): snapshot, then inserts, "
    "updates, key updates, delete and re-insert, a keyless table, TRUNCATE, ADD/DROP COLUMN. "
    "Each target column must have the natural exact PostgreSQL type of its MariaDB type "
    "(the *expected* column: unsigned types one size up, `bigint unsigned` → "
    "`numeric(20,0)`, `tinyint(1)` → `smallint` as the connector's schema says, `bit(1)` → "
    "`boolean`, `datetime(p)` → `timestamp(p)`, `timestamp(p)` → `timestamptz(p)`, "
    "enum/set/json → `text`: MariaDB's JSON is LONGTEXT, kept byte for byte); each source "
    "value is cast to that type by PostgreSQL and compared as text. A source value no "
    "PostgreSQL type of that kind can hold shows as `unrepresentable: …`.", "",
    "What the connector does, not the sink (the Kafka messages already differ):", "",
    "- zero dates (`0000-00-00`, `2024-00-00 …`) arrive as null; a snapshot that reads "
    "`YEAR` 0000 kills the task (the MariaDB JDBC driver's `YearColumn` calls "
    "`java.sql.Date.valueOf`), so the suite streams that row only, and streamed `YEAR` 0000 "
    "arrives as 1900;",
    "- no length for `char(n)`/`varchar(n)`, no precision for `datetime(0..3)` (all "
    "`Timestamp`, milliseconds), `time(p)` (`MicroTime`) or `timestamp(p)` "
    "(`ZonedTimestamp` strings): the sink creates `text`, `timestamp(3)`, `time`, "
    "`timestamptz`; the values are exact;",
    "- `TIME` is a duration in MariaDB (-838:59:59 to 838:59:59): a value below 0 or of 24 h "
    "and more (`MicroTime`) has no PostgreSQL `time`; the sink writes NULL and keeps the "
    "value in `_cartridge_overflow` as seconds (`24:00:00` too for now, although "
    "PostgreSQL's `time` holds it; its exact type would be `interval`);",
    "- `bit(n>1)` is `Bits`, little-endian bytes: the sink writes `bytea`.",
]


def _cell(text: str) -> str:
    # Java's Object.toString() in the connector's multi-dimensional array output differs
    # per run: keep the page stable.
    text = re.sub(r"@[0-9a-f]{5,8}\b", "@…", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(col: dict[str, Any], dead: list[dict[str, str]]) -> str:
    problems = [p for p in col["problems"] if not p.startswith("type ")]
    parts = []
    if any(p.startswith("type ") for p in col["problems"]):
        want = col.get("expected_type") or col["source_type"]
        parts.append(f"type differs ({'expected' if col.get('expected_type') else 'source'}"
                     f" `{want}`)")
    if "values" in problems:
        parts.append(f"values differ: {col['detail']}")
    if "missing column" in problems:
        parts.append("column not created")
    for d in dead:
        parts.append(f"dead letter `{d['code']}`: {d['message'][:160]}")
    return "exact" if not parts else "; ".join(parts)


def render(data: dict[str, Any]) -> str:
    lines = ["# Type mapping: Debezium PostgreSQL and MariaDB sources → warp-sink → PostgreSQL",
             "",
             "Generated by `scripts/type_mapping.py` from the comparison the real-connector "
             "suite (`tests/e2e/debezium`) makes: the Debezium PostgreSQL connector "
             "3.6.1.Final in Kafka Connect 4.1.1 captures a PostgreSQL 15 source (snapshot and "
             "streamed workload: updates, primary-key updates, delete and re-insert, TOAST, "
             "TRUNCATE, ADD/DROP COLUMN, ALTER TYPE); `warp-sink run --until-caught-up` "
             "writes it; each target table is compared with its source, column types "
             "(`format_type`) and values (their PostgreSQL text, in UTC). Do not edit by hand.",
             "", "The suite asserts the list of differences below exactly "
             "(`tests/e2e/debezium/known_gaps.py`).", "", "## Summary", "",
             "| set-up | tables exact | columns exact | dead letters |", "|---|---|---|---|"]
    for setup, res in data.items():
        tables = res["tables"]
        cols = [c for t in tables for c in t["columns"]]
        dead_cols = {(d["table"], d["column"]) for d in res["dead_letters"]}
        ok_cols = [c for t in tables for c in t["columns"]
                   if not c["problems"] and (t["table"], c["column"]) not in dead_cols]
        lines.append(f"| {setup} | {sum(t['exact'] for t in tables)} / {len(tables)} | "
                     f"{len(ok_cols)} / {len(cols)} | {len(res['dead_letters'])} |")
    maria_intro = False
    for setup, res in data.items():
        maria = setup.startswith("mariadb-")
        if maria and not maria_intro:
            lines += ["", *MARIADB_TEXT]
            maria_intro = True
        lines += ["", f"{'###' if maria else '##'} {setup}: {SETUP_TEXT.get(setup, setup)}", ""]
        lines += (["| column | MariaDB type | Connect schema | expected type | PostgreSQL type "
                   "| exact? |", "|---|---|---|---|---|---|"] if maria else
                  ["| column | source type | Connect schema | PostgreSQL type | exact? |",
                   "|---|---|---|---|---|"])
        notes: list[str] = []
        for t in res["tables"]:
            name = t["table"]
            schemas = res["connect_schemas"].get(name, {})
            dead = [d for d in res["dead_letters"] if d["table"] == name]
            if t["target_rows"] is None:
                notes.append(f"- `{name}`: no target table"
                             + (f" (dead letters: {sorted({d['code'] for d in dead})})"
                                if dead else ""))
                continue
            if t["row_problem"]:
                notes.append(f"- `{name}`: {t['row_problem']}")
            if t["kept"]:
                notes.append(f"- `{name}`: kept column(s) the source dropped: {t['kept']}")
            for c in t["columns"]:
                mine = [d for d in dead if d["column"] == c["column"]]
                cells = [f"{name}.{c['column']}", f"`{c['source_type']}`",
                         schemas.get(c["column"], "(schemas off)" if not schemas else "—"),
                         f"`{c['target_type']}`" if c["target_type"] else "—",
                         _verdict(c, mine)]
                if maria:
                    cells.insert(3, f"`{c.get('expected_type')}`")
                lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
            for d in dead:
                if d["column"] == "*":
                    notes.append(f"- `{name}`: dead letter `{d['code']}`: {d['message'][:200]}")
        if notes:
            lines += ["", "Rows and tables:", "", *notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="a comparison written by the suite")
    args = ap.parse_args()
    path = args.json
    if path is None:
        path = Path(tempfile.mkdtemp()) / "type-mapping.json"
        env = {**os.environ, "WARP_TYPE_MAPPING_JSON": str(path), "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/e2e/debezium"], cwd=ROOT,
                       env=env, check=False)
    data = json.loads(path.read_text())
    order = [s for s in SETUP_TEXT if s in data] + [s for s in data if s not in SETUP_TEXT]
    OUT.write_text(render({s: data[s] for s in order}))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
