"""``source.topic_pattern`` takes the topics the pattern matches as a whole, in the running
consumer as in check, status, offsets and the catch-up target (the real sink process,
the real Kafka)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sink.stack import create_topic
from sink.tools.events import MongoEvents
from tests.support import produce, run_sink, stored_offsets, unique, workload, write_config

pytestmark = pytest.mark.integration


async def test_a_pattern_is_matched_whole_not_as_a_prefix(
    stack: Any, tmp_path: Path
) -> None:
    """aiokafka tests a subscription pattern with re.match: the pattern "<db>.users" also
    took "<db>.users-archive", which `check`, `status` and the catch-up target (re.fullmatch)
    never listed: `run --until-caught-up` then saw a target of 0 partitions and stopped
    at once, and a plain `run` consumed the archive topic."""
    db = unique("pat")
    ev = MongoEvents(db, "users")
    archive = f"{ev.topic}-archive"
    await create_topic(stack.bootstrap_servers, ev.topic, 1)
    await create_topic(stack.bootstrap_servers, archive, 1)
    w = workload(ev, 40, 10)
    await produce(stack.bootstrap_servers, ev.topic, w.events)
    await produce(stack.bootstrap_servers, archive, [(b'{"id": "x"}', b"not json")] * 5)
    group = unique("pat-group")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=ev.topic, group=group)
    text = cfg.read_text().replace(f'topics: ["{ev.topic}"]',
                                   f'topic_pattern: "{ev.topic.replace(".", "[.]")}"')
    cfg.write_text(text)
    done = run_sink(cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assigned = [e["partitions"] for e in events if e["event"] == "partitions assigned"]
    assert assigned == [[f"{ev.topic}[0]"]]
    target = next(e for e in events if e["event"] == "caught-up target")
    assert (target["partitions"], target["messages"]) == (1, 40)
    assert await stored_offsets(stack.pg_dsn, group) == {(ev.topic, 0): 40}
