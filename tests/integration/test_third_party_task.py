"""A task kind shipped by a third party as its own pip package is found and gated end to end.

The package (one module and an entry point in the group ``edgeproof.tasks``, installed with
pip ``--target`` on ``PYTHONPATH``) adds the kind ``top3``: a classifier also held to the
share of eval items whose baseline top-1 class is among the candidate's top 3, with its own
gate section ``gates.top3``, its own check, a figure logged to MLflow and a report line.
``edgeproof run`` (a fresh process) finds it with no registration in code.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from tests.helpers import run, write_params
from tests.integration.plugin_package import install_plugin, mlp_project

pytestmark = pytest.mark.slow
KIND = "top3"

PLUGIN_MODULE = '''\
"""Task kind ``top3``: a classifier also held to top-3 agreement with its baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgeproof.config import Fraction, Params, StrictModel
from edgeproof.evaluate.scores import load_outputs
from edgeproof.records import Candidate, CandidateSummary, Check, TargetOutcome, format_estimate
from edgeproof.records.measurement import TargetMeasurements
from edgeproof.tasks.base import Summarizer
from edgeproof.tasks.tensor import TensorTask
from edgeproof.gates.checks import KindChecks, ci_check
from edgeproof.gates.stats import proportion_ci


class Top3Gate(StrictModel):
    min_top3_agreement: Fraction | None = 0.99


def _top3_check(name: str, limit: float, s: CandidateSummary) -> Check:
    est = s.figures["top3_agreement"]
    return ci_check(name, "top-3 agreement", est, limit, "min", "%")


class Top3Task(TensorTask):
    gate_section: ClassVar[type[StrictModel] | None] = Top3Gate

    def summarizer(self, baseline: Candidate, measured: TargetMeasurements, truth: Any,
                   params: Params) -> Summarizer:
        inner = super().summarizer(baseline, measured, truth, params)
        (base,) = load_outputs(measured.outputs[baseline.name]).values()

        def summarize_one(cand: Candidate) -> CandidateSummary:
            summary = inner(cand)
            (out,) = load_outputs(measured.outputs[cand.name]).values()
            top3 = np.argsort(out, axis=1)[:, -3:]
            hits = (top3 == base[: len(out)].argmax(axis=1)[:, None]).any(axis=1)
            est = proportion_ci(hits, params.measure.confidence)
            return summary.model_copy(update={"figures": {"top3_agreement": est}})

        return summarize_one

    def checks(self) -> KindChecks:
        return KindChecks(("top3.min_top3_agreement",), _top3_check, replaces=())

    def report_lines(self, outcome: TargetOutcome) -> list[str]:
        return [
            f"Top-3 agreement of {o.candidate.name}: "
            + format_estimate(o.summary.figures["top3_agreement"], 2, 100.0) + " %"
            for o in outcome.outcomes if o.summary is not None
        ] + [""]


KIND = Top3Task("top3", "classes", "classification")
'''


def test_a_task_kind_from_another_package_is_discovered_and_gated(tmp_path: Path) -> None:
    env = install_plugin(tmp_path, "edgeproof.tasks", KIND, "edgeproof_top3", "KIND", PLUGIN_MODULE)
    project = mlp_project(
        tmp_path,
        {
            "model": {"name": "topped", "task": KIND},
            "targets": {
                "onnxruntime-cpu": {
                    "threads": 1,
                    "recipes": [{"name": "dynamic-int8", "method": "dynamic"}],
                }
            },
            "measure": {"min_samples": 64, "max_samples": 128, "max_seconds": 5},
            "gates": {"top3": {"min_top3_agreement": 0.9}, "latency": {"min_speedup": None}},
        },
    )
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, env=env, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    (verdict_file,) = (project / "reports").glob("*/verdict.json")
    (target,) = json.loads(verdict_file.read_text())["targets"]
    outcomes = {o["candidate"]["name"]: o for o in target["outcomes"]}
    cand = outcomes["dynamic-int8"]
    assert cand["summary"]["task"] == KIND
    top3 = cand["summary"]["figures"]["top3_agreement"]
    assert 0.9 <= top3["value"] <= 1.0
    checks = {c["name"]: c for c in cand["verdict"]["checks"]}
    # the kind's check comes after the classifier's own, which it does not replace
    assert checks["top3.min_top3_agreement"]["limit"] == 0.9
    assert checks["top3.min_top3_agreement"]["status"] in ("pass", "inconclusive")
    assert "fidelity.min_top1_agreement" in checks
    names = [c["name"] for c in cand["verdict"]["checks"]]
    assert names.index("top3.min_top3_agreement") > names.index("fidelity.min_top1_agreement")
    (summary_md,) = (project / "reports").glob("*/summary.md")
    assert "Top-3 agreement of dynamic-int8: " in summary_md.read_text()

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    logged = [r for r in runs if r.data.tags.get("mlflow.runName", "").endswith("dynamic-int8")]
    assert logged and "top3_agreement_low" in logged[0].data.metrics

    # without the package: its gate section and its task name are refused in one line each
    missing = run(["edgeproof", "run", "--params", "params.yaml"], project)
    assert missing.returncode == 2
    assert "gates.top3: unknown key" in missing.stderr, missing.stderr
    write_params(
        project / "params.yaml",
        {
            "model": {"name": "topped", "path": "model.onnx", "task": KIND, "num_classes": 4},
            "data": {"eval": "eval.npz", "calibration": "calibration.npz"},
            "targets": {"onnxruntime-cpu": {"threads": 1}},
        },
    )
    unknown = run(["edgeproof", "run", "--params", "params.yaml"], project)
    assert unknown.returncode == 2
    assert "model.task: unknown task 'top3'" in unknown.stderr, unknown.stderr
