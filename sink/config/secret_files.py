"""Secrets given as files: every secret key ``x`` has a twin ``x_file`` naming a file that
holds the value, the way Kubernetes mounts a Secret (or Docker Compose a ``secrets:``
entry). The file is read once, when the configuration is loaded. Trailing newlines are
dropped (``echo pw > file`` leaves one; no password ends with one). A file that cannot be
read is a configuration error naming the key and the path, never any of the content."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, SecretStr

from sink.config.text import rule


def load_secret_files(section: BaseModel, secrets: Iterable[str]) -> None:
    """For each secret key of ``section`` whose ``<key>_file`` is set, read the file into
    the key (setting both is an error: which one wins would be a guess)."""
    for key in secrets:
        file_key = f"{key}_file"
        path = getattr(section, file_key)
        if path is None:
            continue
        if getattr(section, key) is not None:
            raise rule(file_key, f"set {key} or {file_key}, not both")
        setattr(section, key, SecretStr(read_secret_file(file_key, path)))


def read_secret_file(key: str, path: str) -> str:
    where = f"the file {path}"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise rule(key, f"{where} does not exist") from None
    except IsADirectoryError:
        raise rule(key, f"{where} is a directory (name the file inside it)") from None
    except PermissionError:
        raise rule(key, f"{where} is not readable by this user (permission denied)") from None
    except OSError as exc:
        raise rule(key, f"{where} cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise rule(key, f"{where} is not UTF-8 text") from None
    text = text.rstrip("\r\n")
    if not text:
        raise rule(key, f"{where} is empty")
    if "\x00" in text:
        raise rule(key, f"{where} holds a NUL character")
    return text
