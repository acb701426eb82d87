"""Command-line flags derived from the typed option models in core.settings.

Each field of a model is one flag, with the field's default, description and
validation; its variable is ``SHOPSTREAM_<GROUP>_<FLAG>``. A flag, its variable and
its field therefore cannot drift apart, and the command receives the whole validated
model. A child process gets the whole model as JSON (``SHOPSTREAM_<GROUP>_OPTIONS_JSON``),
never a re-parsed subset.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from core.exceptions import ConfigError
from core.settings import json_variable


def flag_name(name: str, info: FieldInfo) -> str:
    """The flag of a field: its ``flag`` extra, else its name less a unit suffix (``trigger_s`` -> ``trigger``)."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "flag" in extra:
        return str(extra["flag"])
    for suffix in ("_s", "_path"):
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    return name.replace("_", "-")


def _sentence(text: str | None) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def variable(group: str, flag: str) -> str:
    return f"SHOPSTREAM_{group}_{flag}".upper().replace("-", "_")


@dataclass(frozen=True)
class Options:
    """A model whose fields become a command's flags; ``param`` names the argument that receives it."""

    param: str
    model: type[BaseModel]
    group: str  # the variables' SHOPSTREAM_<GROUP>_ prefix
    panel: str | None = None  # the --help section
    exclude: tuple[str, ...] = ()  # fields this command sets itself
    defaults: dict[str, Any] = field(default_factory=dict)  # this command's own default for a field

    def fields(self) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
        """(path, field) of every flag, nested models flattened."""

        def walk(model: type[BaseModel], path: tuple[str, ...]):
            for name, info in model.model_fields.items():
                if name in self.exclude:
                    continue
                sub = info.annotation
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    yield from walk(sub, (*path, name))
                else:
                    yield (*path, name), info

        return walk(self.model, ())

    def parameters(self) -> list[tuple[str, tuple[str, ...], inspect.Parameter]]:
        out = []
        for path, info in self.fields():
            flag = flag_name(path[-1], info)
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            decl = f"--{flag}/--no-{flag}" if info.annotation is bool else f"--{flag}"
            option = typer.Option(
                decl,
                help=_sentence(info.description),
                envvar=variable(self.group, flag),
                show_envvar=True,
                rich_help_panel=self.panel,
                hidden=bool(extra.get("hidden")),
            )
            default = self.defaults.get(path[-1], info.get_default(call_default_factory=True))
            annotation = info.annotation
            if typing.get_origin(annotation) is list:  # a comma-separated flag; the model splits it
                annotation, default = str, ",".join(map(str, default or ()))
            pname = "__".join((self.param, *path))
            out.append(
                (
                    pname,
                    path,
                    inspect.Parameter(
                        pname, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
                    ),
                )
            )
        return out

    def build(self, values: dict[tuple[str, ...], Any]) -> BaseModel:
        """The validated model from flag values; an invalid value is one line naming the flag and its variable."""
        carried = os.environ.get(json_variable(self.group))
        if carried:
            return self.model.model_validate_json(carried)
        data: dict[str, Any] = {}
        for path, value in values.items():
            target = data
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(self._explain(exc)) from None

    def _explain(self, exc: ValidationError) -> str:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        flags = {path: flag_name(path[-1], info) for path, info in self.fields()}
        flag = next((f for path, f in flags.items() if list(path) == loc[: len(path)]), None)
        message = first["msg"].removeprefix("Value error, ")
        if flag is None:
            return f"invalid {self.group} options: {message}"
        given = first.get("input")
        shown = f" ({given!r} given)" if isinstance(given, (str, int, float)) and not isinstance(given, bool) else ""
        return f"invalid --{flag}: {message}{shown} (flag --{flag} or {variable(self.group, flag)})"


DRY_RUN = "dry_run"


def with_options(*groups: Options):
    """Decorate a command whose ``param`` arguments are models: their fields become its flags."""

    def decorate(func):
        signature = inspect.signature(func, eval_str=True)  # the CLI modules use postponed annotations
        taken = {g.param for g in groups}
        own = [p for p in signature.parameters.values() if p.name not in taken]
        generated = {g.param: g.parameters() for g in groups}

        @functools.wraps(func)
        def command(**kwargs):
            dry_run = kwargs.pop(DRY_RUN)
            for g in groups:
                values = {path: kwargs.pop(pname) for pname, path, _ in generated[g.param]}
                kwargs[g.param] = g.build(values)
            if dry_run:  # what the command would run with, after flags, variables and defaults
                print(json.dumps({g.param: json.loads(kwargs[g.param].model_dump_json()) for g in groups}, indent=2))
                return None
            return func(**kwargs)

        dry = inspect.Parameter(
            DRY_RUN,
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool, typer.Option("--dry-run", help="Print the options it would run with, as JSON, and exit.")
            ],
        )
        params = own + [dry] + [p for g in groups for _, _, p in generated[g.param]]
        command.__signature__ = signature.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}  # Typer reads the type hints too
        del command.__wrapped__  # Typer must read the new signature, not the function's own
        return command

    return decorate
