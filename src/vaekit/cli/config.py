"""vaekit config"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

import typer
from pydantic import BaseModel

from vaekit.cli.common import example
from vaekit.sections import Section


@dataclass(frozen=True)
class Option:
    """One configuration key as ``vaekit config --list`` shows it."""

    key: str  # e.g. "train.lr", as --set takes it
    type: str
    value: Any  # the default, or the preset's choice
    description: str


def options(config: BaseModel, prefix: str = "") -> list[Option]:
    """Every key of ``config`` (a :class:`~vaekit.config.RunConfig` or a section of it), read from
    the pydantic models: its type, its value there, and its field description in one line."""
    found, written = [], config.model_dump(mode="json")
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        if isinstance(value, Section):
            found += options(value, f"{prefix}{name}.")
        else:  # a typed value (model.corruption) as a config file writes it
            found.append(Option(f"{prefix}{name}", type_name(field.annotation), written[name],
                                " ".join((field.description or "").split())))
    return found


def type_name(annotation: Any) -> str:
    """A type as a user writes its values: ``int``, ``float or null``, ``auto|mlp|conv``,
    ``list[int]``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:  # a bounded type (sections.Width) reads as its base type
        return type_name(args[0])
    if origin is typing.Literal:
        return "|".join(str(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else type_name(arg) for arg in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(arg) for arg in args)}]"
    return getattr(annotation, "written", None) or getattr(annotation, "__name__", str(annotation))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@example("vaekit config --list --preset beta-vae")
def config(
    list_keys: bool = typer.Option(False, "--list", help="List every key with its type, default and meaning."),
    preset: str = typer.Option(None, "--preset", help="Show the values of this preset (see `vaekit presets`)."),
    overrides: list[str] = typer.Option([], "--set", help="Override one option, e.g. --set train.lr=3e-4; "
                                        "repeatable."),
) -> None:
    """The configuration keys that `vaekit train --set KEY=VALUE` and config files take: with --list
    each key's type, default and meaning; without, the resolved configuration as JSON."""
    from vaekit.config import dumps, resolve_config

    resolved = resolve_config(preset=preset, overrides=overrides)
    if not list_keys:
        typer.echo(dumps(resolved))
        return
    for option in options(resolved):
        typer.echo(f"{option.key} ({option.type}) = {_shown(option.value)}\n    {option.description}")
