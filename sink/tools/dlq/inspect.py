"""``warp-sink dlq inspect``: print the dead letters, one line each (source, stage, error
code, table, message) or one JSON document each (headers decoded, key and value as base64
with a preview), filtered by source topic and error code."""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from contextlib import aclosing

from aiokafka import TopicPartition

from sink.errors import ConfigError
from sink.tools.clients import admin_client, reader, topic_partitions
from sink.tools.common import settings_from
from sink.tools.dlq.letters import Letter, scan

MESSAGE_WIDTH = 160
PREVIEW_CHARS = 200


def _one_line(text: str | None, width: int = MESSAGE_WIDTH) -> str:
    flat = re.sub(r"\s+", " ", text or "").strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _preview(data: bytes | None) -> str | None:
    if data is None:
        return None
    text = data[: PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def as_text(dl: Letter) -> str:
    src = (f"{dl.source_topic}[{dl.header('__connect.errors.partition')}]"
           f"@{dl.header('__connect.errors.offset')}") if dl.source_topic else "-"
    schema, table = dl.header("warp.schema") or "", dl.header("warp.table") or ""
    where = f"{schema}.{table}" if schema or table else "-"
    return (f"{dl.topic}[{dl.partition}]@{dl.offset}  source={src}  "
            f"stage={dl.header('__connect.errors.stage') or '-'}  "
            f"code={dl.error_code or '-'}  table={where}  "
            + ("(value truncated)  " if dl.truncated else "")
            + _one_line(dl.header("__connect.errors.exception.message")))


def as_json(dl: Letter) -> str:
    headers: dict[str, str | None] = {}
    for k, v in dl.headers:
        headers[k] = None if v is None else v.decode("utf-8", errors="replace")
    return json.dumps({
        "dlq": {"topic": dl.topic, "partition": dl.partition, "offset": dl.offset,
                "timestamp": dl.timestamp},
        "source": {"topic": dl.source_topic,
                   "partition": dl.header_int("__connect.errors.partition"),
                   "offset": dl.header_int("__connect.errors.offset")},
        "stage": dl.header("__connect.errors.stage"),
        "error_code": dl.error_code,
        "error_class": dl.header("__connect.errors.exception.class.name"),
        "message": dl.header("__connect.errors.exception.message"),
        "schema": dl.header("warp.schema") or None,
        "table": dl.header("warp.table") or None,
        "headers": headers,
        "value_truncated": dl.truncated,
        "key_b64": _b64(dl.key),
        "value_b64": _b64(dl.value),
        "key_preview": _preview(dl.key),
        "value_preview": _preview(dl.value),
    }, ensure_ascii=False)


async def inspect(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be 0 or more")
    settings = settings_from(args)
    src = settings.source
    dlq = str(args.dlq_topic or settings.dlq_topic)
    shown = scanned = 0
    async with admin_client(src) as admin, reader(src) as consumer:
        cluster = await topic_partitions(admin)
        if dlq not in cluster:
            print(f"DLQ topic {dlq} does not exist: no dead letters yet", file=sys.stderr)
            return 0
        tps = [TopicPartition(dlq, p) for p in cluster[dlq]]
        if args.limit != 0:
            async with aclosing(scan(consumer, tps)) as records:
                async for rec in records:
                    scanned += 1
                    dl = Letter.of(rec)
                    if not dl.matches(args.topic, args.error_code):
                        continue
                    print(as_json(dl) if args.json else as_text(dl))
                    shown += 1
                    if args.limit is not None and shown >= args.limit:
                        break
    print(f"{shown} dead letters shown ({scanned} read from {dlq})", file=sys.stderr)
    return 0
