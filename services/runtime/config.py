"""Typed configuration from environment variables.

A service declares a frozen dataclass whose fields carry their variable name in metadata;
``load`` parses it inside ``main()`` and reports every bad variable at once.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    pass


def env(name: str, default: Any = dataclasses.MISSING, *, doc: str = "") -> Any:
    """Declare a config field read from the environment variable ``name``."""
    meta = {"env": name, "doc": doc}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _parse(raw: str, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw == "":
            return None
        return _parse(raw, args[0])
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(typ) or (str,)
        items = [_parse(part.strip(), inner) for part in raw.split(",") if part.strip()]
        return items if origin is list else tuple(items)
    if typ is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {raw!r}")
    if typ is int:
        return int(raw)
    if typ is float:
        return float(raw)
    if typ is str:
        return raw
    raise TypeError(f"unsupported config type {typ!r}")


def load(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from ``environ`` (default: ``os.environ``)."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f.metadata.get("env")
        if name is None or name not in environ:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{name or f.name}: required but not set")
            continue
        try:
            values[f.name] = _parse(environ[name], hints[f.name])
        except (ValueError, TypeError) as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ConfigError(f"{cls.__name__}: " + "; ".join(problems))
    return cls(**values)


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(variable, default, doc) rows, for the README's configuration table."""
    rows = []
    for f in dataclasses.fields(cls):
        if "env" not in f.metadata:
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((f.metadata["env"], default, f.metadata.get("doc", "")))
    return rows
