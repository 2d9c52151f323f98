"""Where configuration values come from: the YAML file, ``WARP__SECTION__KEY`` environment
variables and ``--set section.key=value`` flags, gathered per load, layered as
pydantic-settings sources (:class:`GivenSource`), and which of them set a given key
(:func:`origin`, for error messages)."""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from sink.errors import ConfigError

ENV_PREFIX = "WARP__"


@dataclass
class Inputs:
    """What the sources of one ``load_settings`` call hold, and where each key came from."""

    yaml: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    file: str = "the config file"
    env_names: dict[tuple[str, ...], str] = field(default_factory=dict)


_ACTIVE: ContextVar[Inputs | None] = ContextVar("warp_config_inputs", default=None)


class GivenSource(PydanticBaseSettingsSource):
    """One of the prepared inputs (YAML file or environment) as a settings source."""

    def __init__(self, settings_cls: type[BaseSettings], which: str) -> None:
        super().__init__(settings_cls)
        self.which = which

    def _data(self) -> dict[str, Any]:
        inputs = _ACTIVE.get()
        data: dict[str, Any] = getattr(inputs, self.which) if inputs is not None else {}
        return data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data())


def gather(
    path: str | Path | None,
    overrides: dict[str, Any] | None,
    environ: typing.Mapping[str, str] | None,
) -> Inputs:
    """Read the YAML file (if any), the ``WARP__`` variables of ``environ`` (default
    ``os.environ``) and the ``--set`` overrides, each into a nested mapping."""
    inputs = Inputs()
    if path is not None:
        inputs.yaml = _read_yaml(Path(path))
        inputs.file = str(path)
    inputs.env, inputs.env_names = _from_env(os.environ if environ is None else environ)
    inputs.flags = _from_flags(overrides or {})
    return inputs


@contextmanager
def layered(inputs: Inputs) -> Iterator[None]:
    """While inside, :class:`GivenSource` sources read ``inputs``."""
    token = _ACTIVE.set(inputs)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _set_path(out: dict[str, Any], parts: list[str], value: Any, name: str) -> None:
    node = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{name}: {'.'.join(parts[:-1])} is given both as a whole value "
                              "and key by key")
        node = child
    if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
        raise ConfigError(f"{name}: {'.'.join(parts)} is given both as a whole value and "
                          "key by key")
    node[parts[-1]] = value


def _from_env(environ: typing.Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...],
                                                                                  str]]:
    data: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(parts):
            raise ConfigError(f"{name}: not a WARP__SECTION__KEY name")
        _set_path(data, parts, environ[name], name)
        names[tuple(parts)] = name
    return data, names


def _from_flags(overrides: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = [p.strip().lower() for p in key.split(".")]
        if not all(parts):
            raise ConfigError(f"--set {key}=...: not a section.key name")
        _set_path(data, parts, value, f"--set {key}")
    return data


def _given(data: Any, loc: tuple[str, ...]) -> bool:
    """True when ``data`` sets ``loc``, itself or as part of a whole value (JSON text)."""
    for part in loc:
        if not isinstance(data, dict):
            return True  # a whole value (e.g. WARP__SOURCE='{...}') covers what is below
        if part not in data:
            return False
        data = data[part]
    return True


def origin(inputs: Inputs, loc: tuple[str, ...]) -> str:
    if not loc:
        return ""
    if _given(inputs.flags, loc):
        return f"--set {'.'.join(loc)}"
    if _given(inputs.env, loc):
        for n in range(len(loc), 0, -1):
            if loc[:n] in inputs.env_names:
                return inputs.env_names[loc[:n]]
        return "the environment"
    if _given(inputs.yaml, loc):
        return inputs.file
    return ""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not str(exc): PyYAML quotes the offending line, which may hold a secret.
        problem = getattr(exc, "problem", None) or "cannot parse"
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{at}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections "
                          f"(source, destination, ...), not a {type(loaded).__name__}")
    return {str(k).lower() if isinstance(k, str) else k: v for k, v in loaded.items()}
