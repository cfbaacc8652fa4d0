"""A target shipped by a third party as its own pip package is found and gated end to end.

The package is written here and installed with pip (``--target``, on ``PYTHONPATH``, by
``tests/integration/plugin_package.py``), as a team would ship one: an entry point in the
group ``edgeproof.targets`` names its ``SPEC``.
Its runtime is real: ONNX Runtime with graph optimizations switched off for the baseline
and on for its one recipe. ``edgeproof run`` (a fresh process, measurement workers
included) finds it with no registration in code, gates it and records it in MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run
from tests.integration.plugin_package import install_plugin, mlp_project

pytestmark = pytest.mark.slow
NAME = "ort-levels"

PLUGIN_MODULE = '''\
"""ONNX Runtime at two graph optimization levels: a third-party edgeproof target."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edgeproof.config import RecipeTargetConfig, StrictModel
from edgeproof.data.dataset import Dataset
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec
from edgeproof.targets.base import Availability, RecipeTarget, TargetSpec, fresh_dir

LEVELS = {"none": "ORT_DISABLE_ALL", "all": "ORT_ENABLE_ALL"}


class LevelRecipe(StrictModel):
    name: str
    level: Literal["none", "all"] = "all"


class LevelsConfig(RecipeTargetConfig):
    recipes: list[LevelRecipe] = Field(default_factory=list)


class LevelSession:
    def __init__(self, path: Path, level: str, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [
            InputSpec(i.name, np.dtype(np.float32), tuple(d if isinstance(d, int) else None
                                                           for d in i.shape))
            for i in self.session.get_inputs()
        ]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.info: dict[str, Any] = {"runtime": "onnxruntime", "level": level, "threads": threads}

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(feeds))


class OrtLevels(RecipeTarget[LevelsConfig]):
    name = "ort-levels"

    def available(self) -> Availability:
        import onnxruntime as ort

        return Availability(True, runtime_version=ort.__version__)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        out = shutil.copyfile(model, fresh_dir(workdir / "fp32") / "model.onnx")
        return Candidate(target=self.name, name="fp32", files=(out,), recipe={"level": "none"},
                         precision="fp32", is_baseline=True)

    def optimize(self, recipe: str, baseline: Candidate, calibration: Dataset,
                 workdir: Path) -> Candidate:
        (spec,) = [r for r in self.config.recipes if r.name == recipe]
        out = shutil.copyfile(baseline.model_file, fresh_dir(workdir / recipe) / "model.onnx")
        return Candidate(target=self.name, name=recipe, files=(out,),
                         recipe={"level": spec.level}, precision="fp32")

    def open_session(self, candidate: Candidate, threads: int) -> LevelSession:
        return LevelSession(candidate.model_file, candidate.recipe["level"], threads)


SPEC = TargetSpec("ort-levels", LevelsConfig, OrtLevels, model_format="onnx")
'''


def test_a_target_from_another_package_is_discovered_and_gated(tmp_path: Path) -> None:
    env = install_plugin(
        tmp_path, "edgeproof.targets", NAME, "edgeproof_ort_levels", "SPEC", PLUGIN_MODULE
    )
    project = mlp_project(
        tmp_path,
        {
            "model": {"name": "plugged"},
            "targets": {NAME: {"threads": 1, "recipes": [{"name": "all-opt", "level": "all"}]}},
            "measure": {"min_samples": 64, "max_samples": 128, "max_seconds": 5},
        },
    )
    listed = run(["edgeproof", "run", "--params", "params.yaml", "--target", "nope"], project,
                 env=env)  # fmt: skip
    assert listed.returncode == 2 and f"{NAME}" in listed.stderr, listed.stderr

    done = run(["edgeproof", "run", "--params", "params.yaml"], project, env=env, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    (verdict_file,) = (project / "reports").glob("*/verdict.json")
    verdict = json.loads(verdict_file.read_text())
    (target,) = verdict["targets"]
    assert target["target"] == NAME
    names = {o["candidate"]["name"]: o for o in target["outcomes"]}
    assert set(names) == {"fp32", "all-opt"}
    assert names["all-opt"]["summary"]["speedup"]["value"] > 0  # measured in the workers
    assert names["all-opt"]["candidate"]["recipe"]["level"] == "all"

    # without the package, the same params name a target nobody provides
    missing = run(["edgeproof", "run", "--params", "params.yaml"], project)
    assert missing.returncode == 2
    assert f"targets.{NAME}: unknown key" in missing.stderr, missing.stderr
