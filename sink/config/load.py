"""Loading the configuration: gather the YAML file, ``WARP__`` variables and ``--set``
flags, validate them as :class:`~sink.config.model.Settings`, and turn every validation
problem into one clause of a :class:`~sink.errors.ConfigError` naming the key, what is
wrong, the allowed values and where the value came from (secret values never echoed)."""

from __future__ import annotations

import typing
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sink import logs
from sink.config.model import Settings
from sink.config.secrets import secret_values
from sink.config.sources import Inputs, gather, layered, origin
from sink.config.text import strip_optional
from sink.errors import ConfigError


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration: ``path`` (YAML) < ``WARP__`` variables in
    ``environ`` (default ``os.environ``) < ``overrides`` (``{"section.key": value}``,
    values may be strings as the command line gives them).

    Raises ConfigError naming the key, the problem and the allowed values. The secrets of
    the loaded configuration are registered with :func:`sink.logs.register_secrets`, so
    that no log line or printed error shows them.
    """
    inputs = gather(path, overrides, environ)
    with layered(inputs):
        try:
            settings = Settings(**inputs.flags)
        except ValidationError as exc:
            problems = "; ".join(_describe(e, inputs) for e in exc.errors())
            raise ConfigError(f"invalid configuration: {problems}") from None
    logs.register_secrets(*secret_values(settings))
    return settings


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        fields = getattr(model, "model_fields", {})
        info = fields.get(part) if isinstance(fields, dict) else None
        if info is None:
            return []
        model = strip_optional(info.annotation)[0]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _is_secret(key: str) -> bool:
    return any(s in key for s in ("password", "token", "connection_string", "secret"))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_MISSING_HINTS = {
    "source": " (at least a subscription: source.topics, e.g. WARP__SOURCE__TOPICS='[\"t\"]' "
    "or --set source.topics=[\"t\"], or source.topic_pattern)",
    "destination": " (at least destination.connection_string, a postgresql:// URL)",
    "destination.connection_string": " (a postgresql:// URL, e.g. from "
    "WARP__DESTINATION__CONNECTION_STRING)",
}


def _describe(err: Any, inputs: Inputs) -> str:
    loc = tuple(str(p) for p in err["loc"] if not isinstance(p, int))
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "config_rule":
        loc = (*loc, str(ctx["field"]))
    key = ".".join(loc) or "(top level)"
    value = err.get("input")
    scalar = isinstance(value, (str, int, float, bool)) and not _is_secret(key)
    got = f" (got {_shown(value)})" if scalar else ""
    where = origin(inputs, loc)
    where = f" [from {where}]" if where else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        near = get_close_matches(loc[-1], allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return (f"{key}: unknown key{where}{hint} (allowed: {', '.join(allowed)})")
    if kind == "missing":
        return f"{key}: required but not set{where}{_MISSING_HINTS.get(key, '')}"
    if kind == "config_rule":
        return f"{key}: {ctx['problem']}{where}"
    if kind == "literal_error":
        return (f"{key}: {_shown(value) if scalar else 'value'} is not an allowed value{where} "
                f"(allowed: {ctx.get('expected', '')})")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}[kind]
        limit = next(iter(ctx.values()), "")
        return f"{key}: {_shown(value) if scalar else 'value'} is out of range{where} " \
               f"(allowed: {op} {limit})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    expected = {
        "int_parsing": "a whole number", "int_type": "a whole number",
        "int_from_float": "a whole number", "float_parsing": "a number",
        "float_type": "a number", "bool_parsing": "true or false", "bool_type": "true or false",
        "list_type": 'a list, e.g. ["a", "b"]', "dict_type": "a mapping",
        "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys",
        "string_type": "a string", "time_delta_parsing": "a duration: seconds or ISO 8601 "
        "(P7D)", "string_too_short": "a non-empty string", "string_too_long": "a shorter "
        "string",
    }.get(kind)
    tail = f" (expected {expected})" if expected else ""
    return f"{key}: {msg}{got}{where}{tail}"
