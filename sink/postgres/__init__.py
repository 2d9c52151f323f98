"""The PostgreSQL destination: records in, one transaction per flush out.

:class:`PostgreSQLDestinationConnector` is the seed's connector and the service's writer:
``apply`` runs DDL, every table's changes and the partitions' next offsets in one
transaction. Inside: ``connector`` (the transaction), ``writer`` (a table's rows),
``statements`` (the SQL text), ``catalog`` (what tables look like, schema evolution),
``metadata`` (the sink's own tables: offsets, topic memory, schema changes), ``topics``
(the tables a topic fed; where a tombstone applies), ``types``
(value → PostgreSQL type and encoding), ``names`` (identifiers, always quoted),
``reduce`` (collapsing a key's changes inside one flush), ``mapping`` (event → table
name), ``errors`` (which PostgreSQL errors are the record's fault).
Other layers import from this module only.
"""

from sink.postgres.connector import ApplyResult, BadRecords, PostgreSQLDestinationConnector
from sink.postgres.errors import refusal as connect_refusal
from sink.postgres.mapping import Router
from sink.postgres.metadata import OffsetConflict, load_offset_ages, load_offsets, set_offsets
from sink.postgres.metadata import migrate as migrate_metadata
from sink.postgres.names import quote
from sink.postgres.topics import Target
from sink.postgres.types import natural_type

__all__ = [
    "ApplyResult",
    "BadRecords",
    "OffsetConflict",
    "PostgreSQLDestinationConnector",
    "Router",
    "Target",
    "connect_refusal",
    "load_offset_ages",
    "load_offsets",
    "migrate_metadata",
    "natural_type",
    "quote",
    "set_offsets",
]
