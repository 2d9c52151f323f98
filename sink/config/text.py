"""Reading configuration values given as text (``WARP__`` variables, ``--set`` flags) for
the type of the field they set, and :class:`Section`, the base of every section model.

Numbers and booleans are left to the model's coercion; lists and mappings are JSON (a list
may also be ``a,b``); ``null`` or an empty value clears an optional key; enum values match
case-insensitively. A broken cross-field rule is reported through :func:`rule`.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError


def rule(key: str, problem: str) -> PydanticCustomError:
    """A cross-field rule broken: ``key`` is the field (relative to the section) to blame."""
    return PydanticCustomError("config_rule", "{problem}", {"field": key, "problem": problem})


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else annotation), optional
    return annotation, False


def from_text(name: str, info: FieldInfo, value: Any) -> Any:
    """Read a value given as text (environment variable, ``--set``) for the field's type."""
    annotation, optional = strip_optional(info.annotation)
    origin = typing.get_origin(annotation)
    if isinstance(value, str) and optional and value.strip().lower() in ("", "null"):
        return None
    if origin is Literal and isinstance(value, str):
        choices = [c for c in typing.get_args(annotation) if isinstance(c, str)]
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        return value
    if not isinstance(value, str):
        return value
    text = value.strip()
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if origin in (list, dict) or is_model:
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise rule(name, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if origin is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _read_text(cls, data: Any) -> Any:
        if isinstance(data, str) and data.strip().startswith("{"):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                return data
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: (from_text(k, fields[k], v) if k in fields else v) for k, v in data.items()}
