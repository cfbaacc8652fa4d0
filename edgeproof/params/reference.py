"""The params.yaml reference (docs/configuration.md), rendered from the pydantic models.

Every section, key, type, default and meaning on the page comes from the models that
``edgeproof.params.model.load_params`` validates against (``edgeproof.config`` and each built-in
target's section), so the page cannot silently drift from what is accepted: ``--check``, and
tests/unit/engine/test_configuration_doc.py, fail when it is out of date.

    python -m edgeproof.params.reference --write docs/configuration.md   # make docs-config
    python -m edgeproof.params.reference --check docs/configuration.md
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

DOC_PATH = Path("docs/configuration.md")
COMMAND = f"python -m edgeproof.params.reference --write {DOC_PATH}"

INTRO = f"""\
# Configuration reference: params.yaml

<!-- Generated from the pydantic models by `{COMMAND}` (`make docs-config`): do not edit. -->

`params.yaml` is parsed once, when a command starts, into typed pydantic models
(`edgeproof/config.py`, and each target's own section in `edgeproof/targets/`); every part
of the gate is handed those models, never the raw file. Every section forbids keys it does
not know and checks every value's type and range: a typo such as `min_sppedup`, or
`confidence: 1.5`, stops the run with a one-line error naming the key
(`params.yaml: gates.latency.min_sppedup: unknown key`), never a silently ignored setting.
A key left out takes its default; `null` turns a gate check off. Relative paths are relative
to the folder of params.yaml, which is also DVC's params file (one section per concern).

This page is generated from those models: regenerate it with `make docs-config` (that is,
`{COMMAND}`). `tests/unit/engine/test_configuration_doc.py` fails when it is out of date.

Key paths are dotted; `[]` stands for each item of a list and `<name>` for a name you choose.
"""

TARGETS_INTRO = """\
One optional section per target, by the target's name; an unknown name is an error naming
it, and at least one target must be enabled. Every target has `enabled`, `work_pool`,
`device` and `threads`; the rest is the target's own. A recipe target's candidates are its
baseline plus one per recipe, each recipe named uniquely."""

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers", "path": "paths"}
_PLURAL |= {"boolean": "booleans", "mapping": "mappings"}
_SIGNS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


@dataclass(frozen=True)
class Row:
    """One key: its dotted path, type, default and meaning (markdown)."""

    key: str
    type: str
    default: str
    meaning: str


@dataclass(frozen=True)
class Table:
    """One section of the page: a heading, an intro, its keys, and keys per recipe method."""

    title: str
    level: int
    intro: str
    rows: tuple[Row, ...]
    methods: tuple[tuple[str, tuple[str, ...]], ...] = ()


def builtin_params_model() -> type[BaseModel]:
    """The params model with a section per built-in target (none registered at run time)
    and the built-in task kinds' own gates sections."""
    from edgeproof.config import params_model
    from edgeproof.targets.registry import load_spec, target_entry_points
    from edgeproof.tasks.registry import gate_models

    specs = [load_spec(ep) for ep in target_entry_points(own_only=True)]
    return params_model(tuple((spec.name, spec.config) for spec in specs), gate_models())


def tables(params: type[BaseModel]) -> list[Table]:
    """Every section of the page, in params order: an overview, then each section's tables."""
    overview: list[Row] = []
    found: list[Table] = []
    for name, info in _fields(params):
        row = _row(name, info)
        model = _models_in(info.annotation, name)[0][1]
        intro = _doc(model)
        if name == "targets":  # made per set of targets (``params_model``): no docstring
            intro = TARGETS_INTRO
            row = Row(row.key, row.type, row.default, TARGETS_INTRO.split("; ")[0] + ".")
        overview.append(row)
        found += model_tables(model, name, intro, level=2)
    return [Table("Sections", 2, "", tuple(overview)), *found]


def model_tables(
    model: type[BaseModel], key: str, intro: str, level: int = 3, variant: str = ""
) -> list[Table]:
    """The table of ``model`` at ``key``, then one per model nested in it (depth first)."""
    rows: list[Row] = []
    nested: list[Table] = []
    for name, info in _fields(model):
        path = f"{key}.{name}"
        rows.append(_row(path, info))
        for sub_key, sub_model, sub_variant in _models_in(info.annotation, path):
            sub_intro = _doc(sub_model) or _text(info.description)
            nested += model_tables(sub_model, sub_key, sub_intro, variant=sub_variant)
    title = f"`{key}`" + (f" ({variant})" if variant else "")
    return [Table(title, level, intro, tuple(rows), _methods(model)), *nested]


def render(params: type[BaseModel] | None = None) -> str:
    """The whole page (markdown), for ``params`` (default: the built-in targets' model)."""
    parts = [INTRO]
    for table in tables(params or builtin_params_model()):
        parts.append(_render_table(table))
    return "\n".join(parts)


def _render_table(table: Table) -> str:
    lines = [f"{'#' * table.level} {table.title}", ""]
    if table.intro:
        lines += [table.intro, ""]
    lines += ["| Key | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{r.key}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.meaning)} |"
        for r in table.rows
    ]
    lines.append("")
    if table.methods:
        lines += ["Keys per `method`:", "", "| `method` | Keys |", "| --- | --- |"]
        for method, keys in table.methods:
            lines.append(f"| `{method}` | {', '.join(f'`{k}`' for k in keys)} |")
        lines.append("")
    return "\n".join(lines)


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    """(public name, field) of each key of ``model``, in declaration order."""
    for name, info in model.model_fields.items():
        yield info.alias or name, info


def _row(path: str, info: FieldInfo) -> Row:
    meaning = _text(info.description)
    if not meaning:  # a section: its model's own summary
        models = _models_in(info.annotation, path)
        meaning = _doc(models[0][1]).split("\n\n")[0] if len(models) == 1 else ""
    return Row(path, _type(info.annotation, info.metadata), _default(info), meaning)


def _models_in(annotation: Any, key: str) -> list[tuple[str, type[BaseModel], str]]:
    """(key, model, variant) of each pydantic model the value of ``key`` holds: the value
    itself, each item of a list (``key[]``), each value of a mapping (``key.<name>``).
    Several models (a union) are variants, each named by its discriminator value or class."""
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        return [(key, annotation, "")]
    if origin is Annotated:
        return _models_in(args[0], key)
    if origin is list:
        return _models_in(args[0], f"{key}[]")
    if origin is dict:
        return _models_in(args[1], f"{key}.<name>")
    if origin in (Union, types.UnionType):
        found = [m for arg in args for m in _models_in(arg, key)]
        if len(found) < 2:
            return found
        return [(k, m, _variant(m)) for k, m, _ in found]
    return []


def _variant(model: type[BaseModel]) -> str:
    """``method: x`` for a model with a key of one literal value (a discriminator), else
    the model's name."""
    for name, info in _fields(model):
        values = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
        if len(values) == 1:
            return f"`{name}: {_value(values[0])}`"
    return f"`{model.__name__}`"


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """How a value of ``annotation`` is written, with its range (``metadata``)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0], [*args[1:], *metadata])
    text = _bare_type(annotation, origin, args)
    limits = _constraints(metadata)
    return f"{text} {limits}" if limits else text


def _bare_type(annotation: Any, origin: Any, args: tuple[Any, ...]) -> str:
    if origin in (Union, types.UnionType):
        parts = [_type(arg) for arg in args if arg is not type(None)]
        if type(None) in args:
            parts.append("null")
        if len(parts) == 1:
            return parts[0]
        last = ", or " if any("," in part for part in parts) else " or "
        return ", ".join(parts[:-1]) + last + parts[-1]
    if origin is Literal:
        return "one of " + ", ".join(f"`{_value(v)}`" for v in args)
    if origin is list:
        item = _type(args[0]) if args else "any"
        return "list" if item == "any" else f"list of {_PLURAL.get(item, item)}"
    if origin is dict:
        keys = get_args(args[0]) if get_origin(args[0]) is Literal else ()
        key = "(" + ", ".join(f"`{_value(k)}`" for k in keys) + ")" if keys else _type(args[0])
        return f"mapping from {key} to {_type(args[1])}"
    if _is_model(annotation):
        return "mapping"
    return _SIMPLE.get(annotation, "any" if annotation is Any else str(annotation))


def _constraints(metadata: Sequence[Any]) -> str:
    """``in [0, 1]``, ``≥ 1``, ``matching `^...$` ``, ``at least 1 item``: the value's range."""
    found: dict[str, Any] = {}
    for item in metadata:
        for inner in item.metadata if isinstance(item, FieldInfo) else [item]:
            for attr in ("ge", "gt", "le", "lt", "min_length", "pattern"):
                if getattr(inner, attr, None) is not None:
                    found[attr] = getattr(inner, attr)
    low = next(((k, found[k]) for k in ("ge", "gt") if k in found), None)
    high = next(((k, found[k]) for k in ("le", "lt") if k in found), None)
    parts = []
    if low and high:
        left, right = "[" if low[0] == "ge" else "(", "]" if high[0] == "le" else ")"
        parts.append(f"in {left}{low[1]:g}, {high[1]:g}{right}")
    elif bound := low or high:
        parts.append(f"{_SIGNS[bound[0]]} {bound[1]:g}")
    if "min_length" in found:
        n = found["min_length"]
        parts.append(f"(at least {n} item{'s' if n != 1 else ''})")
    if "pattern" in found:
        parts.append(f"matching `{found['pattern']}`")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "each key's default"
    return f"`{_value(value)}`"


def _value(value: Any) -> str:
    """A value as written in YAML (``true``, ``null``, ``[]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _methods(model: type[BaseModel]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The keys each value of a recipe's ``method`` uses, where some keys name their methods
    (``json_schema_extra={"methods": [...]}``); empty otherwise."""
    fields = model.model_fields
    if "method" not in fields or get_origin(fields["method"].annotation) is not Literal:
        return ()
    only = {
        name: extra["methods"]
        for name, info in fields.items()
        if isinstance(extra := info.json_schema_extra, dict) and "methods" in extra
    }
    if not only:
        return ()
    return tuple(
        (str(m), tuple(n for n in fields if n not in only or m in only[n]))
        for m in get_args(fields["method"].annotation)
    )


def _doc(model: type[BaseModel]) -> str:
    """The model's own docstring (not an inherited one) as markdown, or ""."""
    doc = model.__dict__.get("__doc__")
    return _markdown(inspect.cleandoc(doc)) if isinstance(doc, str) else ""


def _text(description: str | None) -> str:
    return _markdown(" ".join((description or "").split()))


def _markdown(text: str) -> str:
    """reST literals (````x````) as markdown code (```x```)."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page, ``--write`` it, or ``--check`` it (exit 1 when it differs)."""
    parser = argparse.ArgumentParser(
        prog="python -m edgeproof.params.reference",
        description="The params.yaml reference, rendered from the pydantic models.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", nargs="?", const=DOC_PATH, type=Path, metavar="PATH")
    mode.add_argument("--check", nargs="?", const=DOC_PATH, type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    text = render()
    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text, encoding="utf-8", newline="\n")
        return 0
    if args.check is not None:
        path: Path = args.check
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            why = "is missing" if current is None else "is out of date"
            print(f"{path} {why}: run `make docs-config` ({COMMAND})", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
