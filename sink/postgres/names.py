"""PostgreSQL identifiers: quoting, length limits, reserved column names.

Every identifier that reaches SQL goes through `quote`. Names come from events
(user data), so they are never interpolated raw.
"""

from __future__ import annotations

import hashlib

MAX_IDENT_BYTES = 63

VERSION = "_cartridge_version"
CREATED_AT = "_cartridge_created_at"
UPDATED_AT = "_cartridge_updated_at"
SOURCE_TS = "_cartridge_source_ts"
SOURCE_POS = "_cartridge_source_pos"
IS_DELETED = "is_deleted"
DELETED_AT = "deleted_at"
OVERFLOW = "_cartridge_overflow"
PARTIAL = "_cartridge_partial"

# Columns the sink owns, with their types, in table order after the data columns.
RESERVED: dict[str, str] = {
    VERSION: "bigint NOT NULL DEFAULT 0",
    CREATED_AT: "timestamptz NOT NULL DEFAULT now()",
    UPDATED_AT: "timestamptz NOT NULL DEFAULT now()",
    SOURCE_TS: "timestamptz",
    SOURCE_POS: "numeric",
    IS_DELETED: "boolean NOT NULL DEFAULT false",
    DELETED_AT: "timestamptz",
    OVERFLOW: "jsonb",
    PARTIAL: "boolean NOT NULL DEFAULT false",
}

RESERVED_PREFIX = "_src_"

# PostgreSQL's system columns: every table has them, so no user column may take the name.
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})


def quote(name: str) -> str:
    """Quote an identifier: always, whatever it contains."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote(schema)}.{quote(table)}"


def shorten(name: str) -> str:
    """Fit ``name`` into PostgreSQL's 63-byte limit with a stable hash suffix.

    Names that fit are kept as they are. Longer names keep a prefix (cut on a
    character boundary) plus ``_`` and 10 hex digits of the SHA-1 of the whole
    name, so two names that share their first 63 bytes still differ.
    """
    raw = name.encode("utf-8")
    if len(raw) <= MAX_IDENT_BYTES:
        return name
    suffix = "_" + hashlib.sha1(raw).hexdigest()[:10]
    budget = MAX_IDENT_BYTES - len(suffix)
    prefix = raw[:budget].decode("utf-8", errors="ignore")
    return prefix + suffix


def column_name(field: str) -> str:
    """The column a source field is stored in: reserved names, PostgreSQL's system column
    names (``xmin``...) and the empty name (not an identifier PostgreSQL accepts) get a
    prefix; so does a name that already has it, so two fields never share a column. A
    NUL character (which no PostgreSQL identifier can hold) is dropped, and the name gets
    the prefix and a hash of the original, so it still names its own column."""
    if "\x00" in field:
        digest = hashlib.sha1(field.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        field = f"{field.replace(chr(0), '')}_{digest}"
        return shorten(RESERVED_PREFIX + field)
    if (
        not field
        or field in RESERVED
        or field in SYSTEM_COLUMNS
        or field.startswith(RESERVED_PREFIX)
    ):
        field = RESERVED_PREFIX + field
    return shorten(field)


def table_name(name: str) -> str:
    return shorten(name) if name else RESERVED_PREFIX


def schema_name(name: str) -> str:
    """The schema a source database (or schema) is written to. PostgreSQL refuses schema
    names starting ``pg_`` (reserved for its own): those get the prefix. Every other name is
    kept as it is (existing schemas do not move), and the mapping is idempotent: the
    service maps a record's names once and the destination again for library callers."""
    if name.startswith("pg_"):
        name = RESERVED_PREFIX + name
    return table_name(name)
