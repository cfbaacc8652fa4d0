"""The data gate's Prefect cache key: the same for the same data and checks, new whenever
anything its verdict depends on changes (so a cached verdict is never reused for other data).
The reuse itself, in real runs, is asserted end to end (tests/e2e/test_pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from edgeproof.flows.quality_gate import data_gate_key
from edgeproof.pipeline.resolve import resolve_inputs
from tests.helpers import write_npz
from tests.unit.engine.test_resolve import _project


def _key(params: Path) -> str:
    return data_gate_key(None, {"inputs": resolve_inputs(params)})  # type: ignore[arg-type]


def test_the_key_follows_the_data_contents_and_the_checks(
    tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path]
) -> None:
    for checkout in ("a", "b"):
        (tmp_path / checkout).mkdir()
    params = _project(tmp_path / "a", tiny_model, tiny_data)
    first = _key(params)
    assert _key(params) == first
    # the same files in another checkout: the same verdict applies
    assert _key(_project(tmp_path / "b", tiny_model, tiny_data)) == first

    with np.load(tiny_data["eval"]) as npz:
        x, labels = npz["input"].copy(), npz["labels"]
    x[0, 0, 0, 0] += 0.5  # one value of one item
    write_npz(tmp_path / "a" / "data" / "eval.npz", input=x, labels=labels)
    changed_data = _key(params)
    assert changed_data != first

    config = yaml.safe_load(params.read_text())
    config["data"]["checks"] = {"max_class_share": 0.9}
    params.write_text(yaml.safe_dump(config))
    assert _key(params) not in (first, changed_data)
