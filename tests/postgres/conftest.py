"""Fixtures of the PostgreSQL destination tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sink.postgres import PostgreSQLDestinationConnector
from tests.postgres.support import META, Maker


@pytest.fixture
async def make_dest(stack: Any) -> AsyncIterator[Maker]:
    """``await make_dest(**connector kwargs)``: a connected connector, closed after the test."""
    made: list[PostgreSQLDestinationConnector] = []

    async def make(**kw: Any) -> PostgreSQLDestinationConnector:
        kw.setdefault("metadata_schema", META)
        dest = PostgreSQLDestinationConnector(stack.pg_dsn, min_connections=1,
                                              max_connections=2, **kw)
        await dest.connect()
        made.append(dest)
        return dest

    yield make
    for d in made:
        await d.disconnect()
