"""A target is a plug-in: registered in one line, parsed from params, rebuilt in a worker.

The target here is a real (if tiny) runtime written for the test: a linear classifier in
numpy whose recipe stores its weights in float16. It goes through the same params parsing,
candidate building and subprocess measurement as every built-in target.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import Field

from edgeproof.config import MeasureConfig, RecipeTargetConfig, StrictModel
from edgeproof.data.dataset import Dataset
from edgeproof.errors import ConfigError
from edgeproof.measure.harness import measure_target
from edgeproof.params.model import parse_params
from edgeproof.pipeline.optimize import build_candidates
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec
from edgeproof.targets.base import Availability, RecipeTarget, TargetSpec, fresh_dir
from edgeproof.targets.registry import known_targets, measure_job, register, unregister
from tests.helpers import write_npz

NAME = "numpy-linear"


class HalfRecipe(StrictModel):
    name: str


class NumpyLinearConfig(RecipeTargetConfig):
    recipes: list[HalfRecipe] = Field(default_factory=list)


class NumpySession:
    """x (N, 4) @ W (4, 3): the candidate's weights, in the precision stored."""

    def __init__(self, weights: np.ndarray, threads: int) -> None:
        self.weights = weights
        self.inputs = [InputSpec("x", np.dtype(np.float32), (None, 4))]
        self.output_names = ["logits"]
        self.info: dict[str, Any] = {"runtime": "numpy", "threads": threads}

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [(feeds["x"] @ self.weights.astype(np.float32)).astype(np.float32)]


class NumpyLinear(RecipeTarget[NumpyLinearConfig]):
    name = NAME

    def available(self) -> Availability:
        return Availability(True, runtime_version=np.__version__)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        out = shutil.copyfile(model, fresh_dir(workdir / "fp32") / "weights.npy")
        return Candidate(
            target=NAME, name="fp32", files=(out,), recipe={}, precision="fp32", is_baseline=True
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        out = fresh_dir(workdir / recipe) / "weights.npy"
        np.save(out, np.load(baseline.model_file).astype(np.float16))
        return Candidate(target=NAME, name=recipe, files=(out,), recipe={}, precision="fp16")

    def open_session(self, candidate: Candidate, threads: int) -> NumpySession:
        return NumpySession(np.load(candidate.model_file), threads)


@pytest.fixture
def numpy_target() -> Iterator[TargetSpec]:
    spec = register(TargetSpec(NAME, NumpyLinearConfig, NumpyLinear, model_format="onnx"))
    yield spec
    unregister(NAME)


def _params(targets: dict) -> dict:
    return {
        "model": {"name": "m", "path": "model.npy"},
        "data": {"eval": "eval.npz", "calibration": "calib.npz"},
        "targets": targets,
    }


def test_a_registered_target_is_parsed_built_and_measured(
    numpy_target: TargetSpec, tmp_path: Path
) -> None:
    assert NAME in known_targets()
    params = parse_params(_params({NAME: {"threads": 1, "recipes": [{"name": "half"}]}}))
    section = params.targets.enabled()[NAME]
    assert isinstance(section, NumpyLinearConfig)

    rng = np.random.default_rng(0)
    np.save(tmp_path / "model.npy", rng.normal(size=(4, 3)).astype(np.float32))
    data = write_npz(tmp_path / "eval.npz", x=rng.normal(size=(64, 4)).astype(np.float32))
    calibration = Dataset({"x": np.zeros((8, 4), np.float32)}, None, data)
    target = numpy_target.backend(section)
    baseline, built, failed = build_candidates(
        target, tmp_path / "model.npy", calibration, tmp_path
    )
    assert [c.name for c in built] == ["half"] and failed == []

    job = measure_job(NAME, section, data, "labels", tmp_path / "outputs")
    settings = MeasureConfig(
        warmup_runs=5, min_samples=20, max_samples=20, block_size=10, throughput_runs=2
    )
    measured = measure_target(baseline, built, job, settings)  # workers rebuild the target
    assert measured.errors == {}
    assert set(measured.raw) == {"fp32", "half"}
    assert len(measured.raw["half"].paired_baseline_ms) == 20


def test_a_runtime_warning_while_optimizing_is_noted_in_the_candidate(
    numpy_target: TargetSpec, tmp_path: Path
) -> None:
    """The half recipe casts the weights to float16: a weight of 1e6 overflows, NumPy says
    so with a RuntimeWarning, and the candidate's recipe (its report row) keeps it."""
    params = parse_params(_params({NAME: {"threads": 1, "recipes": [{"name": "half"}]}}))
    section = params.targets.enabled()[NAME]
    weights = np.ones((4, 3), np.float32)
    weights[0, 0] = 1e6
    np.save(tmp_path / "model.npy", weights)
    data = write_npz(tmp_path / "eval.npz", x=np.ones((8, 4), np.float32))
    calibration = Dataset({"x": np.zeros((8, 4), np.float32)}, None, data)
    _, built, _ = build_candidates(
        numpy_target.backend(section), tmp_path / "model.npy", calibration, tmp_path
    )
    (half,) = built
    (note,) = half.recipe["warnings"]
    assert note.startswith("RuntimeWarning: overflow encountered in cast"), note
    np.save(tmp_path / "model.npy", np.ones((4, 3), np.float32))  # nothing to warn about
    _, built, _ = build_candidates(
        numpy_target.backend(section), tmp_path / "model.npy", calibration, tmp_path / "ok"
    )
    assert "warnings" not in built[0].recipe


def test_unknown_and_duplicate_names_are_config_errors(numpy_target: TargetSpec) -> None:
    with pytest.raises(ConfigError, match=r"targets\.numpy-linaer: unknown key"):
        parse_params(_params({"numpy-linaer": {}}))
    with pytest.raises(ConfigError, match="duplicate name 'fp32'"):
        parse_params(_params({NAME: {"recipes": [{"name": "fp32"}]}}))
    unregister(NAME)
    with pytest.raises(ConfigError, match=r"targets\.numpy-linear: unknown key"):
        parse_params(_params({NAME: {}}))
