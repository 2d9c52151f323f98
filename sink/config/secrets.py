"""The secrets a configuration holds: every form they may take in text (so that logs and
errors can hide them), and the configuration with them masked (``config show``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from sink.config.dsn import DsnError, parse_dsn
from sink.config.model import Settings

MASK = "***"


def secret_values(settings: Settings) -> list[str]:
    """Every secret the configuration holds, as it may appear in text (raw and URL-decoded)."""
    src, dest = settings.source, settings.destination
    out: list[str] = []
    for secret in (src.sasl_password, src.schema_registry_password, src.schema_registry_token,
                   src.sasl_oauth_client_secret, dest.password):
        if secret is not None:
            out.append(secret.get_secret_value())
    dsn = dest.connection_string.get_secret_value()
    out.extend(dest.dsn.secrets)  # as libpq reads them: decoded, wherever they were
    urls = [dsn, *(src.schema_registry_url or "").split(",")]
    for url in urls:
        out.extend(_url_passwords(url.strip()))
    return [s for s in {*out, *(unquote(s) for s in out)} if s]


def _url_passwords(url: str) -> list[str]:
    found = [m.group(2) for m in [_DSN_PASSWORD.search(url)] if m is not None]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    found.extend(m.group(1) for m in re.finditer(r"(?i)[?&]password=([^&#]*)", url))
    return found


_DSN_PASSWORD = re.compile(r"(://[^:/@\s]*:)(.*)(@[^@]*)$")


def show_dsn(dsn: str) -> str:
    """A PostgreSQL connection string (either form) for people to read: as libpq reads it,
    as a URI, the password masked; nothing of it when it cannot be read."""
    try:
        return parse_dsn(dsn).shown(MASK)
    except DsnError:
        return "(a connection string that cannot be read)"


def mask_dsn(dsn: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db`` (and ``password=``
    params): any URL with credentials; PostgreSQL's are shown with :func:`show_dsn`."""
    masked = _DSN_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", dsn)
    return re.sub(r"(?i)([?&]password=)[^&#]*", rf"\g<1>{MASK}", masked)


def effective_config(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for ``config show``)."""
    data = settings.model_dump(mode="json")
    for section_name, section in settings:
        if not isinstance(section, BaseModel):
            continue
        for key, value in section:
            if isinstance(value, SecretStr):
                data[section_name][key] = MASK
    data["destination"]["connection_string"] = show_dsn(
        settings.destination.connection_string.get_secret_value()
    )
    if settings.source.schema_registry_url:
        data["source"]["schema_registry_url"] = ",".join(
            mask_dsn(u) for u in settings.source.schema_registry_url.split(","))
    data["errors"]["dlq_topic"] = settings.dlq_topic
    data["batch"]["max_records"] = settings.max_batch_records
    return data
