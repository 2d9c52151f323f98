"""Identifier mapping without a server: system column names and ``pg_`` schemas (issue 17,
item 6)."""

from __future__ import annotations

import pytest

from sink.config import MappingConfig
from sink.postgres.mapping import Router
from sink.postgres.names import column_name, quote, schema_name


@pytest.mark.parametrize("name", ["xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"])
def test_system_column_names_are_prefixed(name: str) -> None:
    assert column_name(name) == f"_src_{name}"
    assert column_name(f"_src_{name}") == f"_src__src_{name}"  # never the same column
    assert column_name(name.upper()) == name.upper()  # quoted "XMIN" is no system column
    assert column_name(f"{name}2") == f"{name}2"


def test_pg_schemas_are_prefixed_once() -> None:
    names = ["pg_shop", "shop", "_src_shop", "PG_shop", "pgshop", "pg", ""]
    mapped = [schema_name(n) for n in names]
    assert mapped == ["_src_pg_shop", "shop", "_src_shop", "PG_shop", "pgshop", "pg", "_src_"]
    assert [schema_name(m) for m in mapped] == mapped  # idempotent: mapped twice on the way
    assert not any(m.startswith("pg_") for m in mapped)
    router = Router(MappingConfig())
    assert router.route("pg_catalog_copy", "xmin") == ("_src_pg_catalog_copy", "xmin")


def test_a_nul_in_a_field_name_gives_a_column_of_its_own() -> None:
    # No PostgreSQL identifier holds a NUL: the name loses it, and the prefix and a hash of
    # the original keep it apart from the same name without the NUL and from each other.
    names = ["a\x00b", "a\x00\x00b", "ab", "_src_ab", "a" * 200 + "\x00"]
    columns = [column_name(n) for n in names]
    assert len(set(columns)) == len(columns)
    for col in columns:
        assert "\x00" not in col and len(col.encode()) <= 63
        quote(col)  # accepted as an identifier
    assert column_name("a\x00b").startswith("_src_ab_")
    assert column_name("a\x00b") == column_name("a\x00b")  # stable across documents
