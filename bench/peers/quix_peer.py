"""Peer 1: Quix Streams' PostgreSQL sink, fed plain JSON documents.

Runs in its own virtualenv (``.warp/bench-peers/quix-venv``, made by ``bench/run.py``:
quixstreams pins pydantic below the version the sink uses, so it cannot share ``.venv``):

    quix-venv/bin/python bench/peers/quix_peer.py --bootstrap H:P --topic T --group G \
        --table peer_quix_a --dsn postgresql://user:pw@host:port/db

Settings: ``PostgreSQLSink(primary_key_columns="_id", upsert_on_primary_key=True,
include_metadata=False)``, everything else (commit interval 5 s, batching per checkpoint,
schema auto-update) at Quix's defaults; ``auto_offset_reset="earliest"``. A null value (a
delete's tombstone in the plain copy) is filtered out: the sink has no delete operation and
refuses values that are not mappings. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
from urllib.parse import urlsplit

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--dsn", required=True)
    args = ap.parse_args()
    dsn = urlsplit(args.dsn)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                      auto_offset_reset="earliest", loglevel=logging.WARNING)
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    sink = PostgreSQLSink(host=dsn.hostname or "127.0.0.1", port=dsn.port or 5432,
                          dbname=dsn.path.lstrip("/"), user=dsn.username or "",
                          password=dsn.password or "", table_name=args.table,
                          primary_key_columns="_id", upsert_on_primary_key=True,
                          include_metadata=False)
    sdf = app.dataframe(topic)
    sdf = sdf.filter(lambda value: value is not None)
    sdf.sink(sink)
    app.run()


if __name__ == "__main__":
    main()
