"""The one configuration model: a YAML file, then ``WARP__SECTION__KEY`` environment
variables, then command-line overrides (``--set section.key=value``, highest).

* The seed's ``destination:`` block is accepted exactly as the seed writes it, keys and
  all. A file holding only that block (the seed's two examples) loads as soon as a
  ``source`` subscription is given some other way, e.g.
  ``WARP__SOURCE__TOPICS='["t"]'`` or ``--set source.topics=["t"]``: ``source`` has no
  usable default (there is no sensible default topic), everything else has defaults.
* Environment variables and flags carry strings. They are read the same way: numbers and
  booleans are coerced by the model; lists and mappings are JSON (``'["a","b"]'``; a list
  of names may also be written ``a,b``); ``null`` or an empty value clears an optional
  key (``--set source.topic_pattern=null`` when switching to ``topics``); enum values are
  matched case-insensitively (``log_level: INFO``).
* Every problem raises :class:`ConfigError` naming the key, what is wrong with the value,
  the allowed values and where the value came from. Secret values are never echoed.

Inside: ``model`` (the sections and their rules), ``sources`` (file, environment and flags,
layered), ``load`` (reading and validating them into :class:`Settings`), ``secrets``
(masking, the effective configuration), ``text`` (messages and rule text), ``dsn``
(PostgreSQL connection strings read the way libpq reads them), ``secret_files`` (the
``*_file`` twin of every secret key).
"""

from __future__ import annotations

from sink.config.dsn import Dsn, DsnError, parse_dsn
from sink.config.load import load_settings
from sink.config.model import (
    BatchConfig,
    DestinationConfig,
    ErrorsConfig,
    MappingConfig,
    ObservabilityConfig,
    Settings,
    SourceConfig,
    SslMode,
    postgres_connect_args,
    postgres_ssl,
)
from sink.config.secrets import MASK, effective_config, mask_dsn, secret_values, show_dsn
from sink.config.sources import ENV_PREFIX
from sink.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "MASK",
    "BatchConfig",
    "ConfigError",
    "DestinationConfig",
    "Dsn",
    "DsnError",
    "ErrorsConfig",
    "MappingConfig",
    "ObservabilityConfig",
    "Settings",
    "SourceConfig",
    "SslMode",
    "effective_config",
    "load_settings",
    "mask_dsn",
    "parse_dsn",
    "postgres_connect_args",
    "postgres_ssl",
    "secret_values",
    "show_dsn",
]
