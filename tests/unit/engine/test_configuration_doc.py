"""docs/configuration.md is the params reference rendered from the models, and complete.

The page is generated (``make docs-config``); these tests fail when it is out of date, when a
key that the shipped params files use is missing from it, or when a key has no meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from edgeproof.params.reference import COMMAND, Row, main, model_tables, render
from tests.helpers import ROOT

DOC = ROOT / "docs" / "configuration.md"
PARAMS_FILES = ("params.yaml", "examples/tiny-llama/params.yaml")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def doc_rows(text: str) -> dict[str, Row]:
    """Every key row of the page's tables, by dotted key."""
    rows: dict[str, Row] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in CELL_SPLIT.split(line)[1:-1]]
        if len(cells) == 4:
            rows[cells[0].strip("`")] = Row(*cells)
    return rows


def yaml_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted key of every mapping key in ``node``; list items as ``[]``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from yaml_keys(value, path)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_keys(item, f"{prefix}[]")


def documented(key: str, rows: dict[str, Row]) -> bool:
    """``key`` has a row (``<name>`` matches any one name), or lies inside a free-form
    mapping (values of any type, e.g. an Olive pass's ``config``)."""
    patterns = {
        re.compile(re.escape(k).replace(re.escape("<name>"), r"[^.]+") + r"\Z"): row
        for k, row in rows.items()
    }
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        row = next((r for p, r in patterns.items() if p.match(prefix)), None)
        if row is not None:
            return end == len(parts) or row.type.endswith("to any")
    return False


@pytest.fixture(scope="module")
def page() -> str:
    return render()


def test_the_page_is_up_to_date(page: str) -> None:
    assert DOC.is_file(), f"docs/configuration.md is missing: run `make docs-config` ({COMMAND})"
    assert DOC.read_text(encoding="utf-8") == page, (
        f"docs/configuration.md is out of date: run `make docs-config` ({COMMAND})"
    )


def test_check_fails_on_a_stale_page_with_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "configuration.md"
    path.write_text("# stale\n", encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "out of date" in said and "make docs-config" in said
    assert main(["--write", str(path)]) == 0
    assert main(["--check", str(path)]) == 0
    assert main(["--check", str(tmp_path / "absent.md")]) == 1


def test_rendering_is_deterministic(page: str) -> None:
    assert render() == page


@pytest.mark.parametrize("params_file", PARAMS_FILES)
def test_every_key_of_the_shipped_params_is_documented(page: str, params_file: str) -> None:
    rows = doc_rows(page)
    raw = yaml.safe_load((ROOT / params_file).read_text(encoding="utf-8"))
    missing = sorted({k for k in yaml_keys(raw) if not documented(k, rows)})
    assert not missing, f"{params_file}: keys missing from docs/configuration.md: {missing}"


def test_every_key_has_a_type_default_and_meaning(page: str) -> None:
    rows = doc_rows(page)
    assert len(rows) > 150
    empty = [key for key, row in rows.items() if not (row.type and row.default and row.meaning)]
    assert not empty, f"rows without a type, default or meaning: {empty}"


@pytest.mark.parametrize(
    "key",
    [
        "measure.head_to_head",
        "gates.metric",
        "gates.latency.on_inconclusive",
        "model.inputs",
        "model.inputs.<name>.carried_from",
        "targets.onnxruntime-cpu.recipes[].per_channel",
        "targets.onnxruntime-cpu.allow_spinning",
        "targets.openvino-cpu.recipes[].fast_bias_correction",
        "targets.tflite-cpu.convert_timeout_seconds",
        "targets.edgetpu.convert_timeout_seconds",
    ],
)
def test_named_keys_are_explained(page: str, key: str) -> None:
    row = doc_rows(page).get(key)
    assert row is not None, f"{key} is not in docs/configuration.md"
    assert len(row.meaning) > 20, f"{key}: no meaning ({row.meaning!r})"


def test_each_section_has_its_heading(page: str) -> None:
    headings = set(re.findall(r"^#+ `([^`]+)`", page, flags=re.MULTILINE))
    for key in ("model", "data", "measure", "gates", "gates.latency", "model.inputs.<name>"):
        assert key in headings
    for target in ("onnxruntime-cpu", "openvino-cpu", "olive", "tflite-cpu", "edgetpu"):
        assert f"targets.{target}" in headings and f"targets.{target}" in doc_rows(page)


def test_recipe_keys_are_listed_per_method(page: str) -> None:
    section = page.split("### `targets.onnxruntime-cpu.recipes[]`")[1].split("\n### ")[0]
    assert "| `dynamic` | `name`, `method`, `weight_type`, `per_channel`," in section
    static = next(line for line in section.splitlines() if line.startswith("| `static` |"))
    assert "`calibrate_method`" in static and "`subgraphs`" not in static


class _Fast(BaseModel):
    """Fast variant."""

    kind: Literal["fast"] = Field(description="The variant.")
    level: int = Field(1, ge=0, description="How fast.")


class _Exact(BaseModel):
    """Exact variant."""

    kind: Literal["exact"] = Field(description="The variant.")
    tolerance: float = Field(0.1, gt=0, lt=1, description="How exact.")


class _Section(BaseModel):
    """A section."""

    mode: _Fast | _Exact = Field(discriminator="kind", description="One of two variants.")
    by_name: dict[str, _Fast] = Field(default_factory=dict, description="Named ones.")


def test_union_variants_and_named_mappings_get_their_own_tables() -> None:
    found = {t.title: t for t in model_tables(_Section, "demo", "A section.", level=2)}
    assert list(found) == [
        "`demo`",
        "`demo.mode` (`kind: fast`)",
        "`demo.mode` (`kind: exact`)",
        "`demo.by_name.<name>`",
    ]
    exact = {r.key: r for r in found["`demo.mode` (`kind: exact`)"].rows}
    assert exact["demo.mode.tolerance"].type == "number in (0, 1)"
    assert exact["demo.mode.tolerance"].default == "`0.1`"
    assert [r.key for r in found["`demo.by_name.<name>`"].rows] == [
        "demo.by_name.<name>.kind",
        "demo.by_name.<name>.level",
    ]
