"""The ``olive`` target with the real ``olive run`` (offline) and ONNX Runtime.

Each recipe end to end (Olive workflow in a subprocess, calibration through edgeproof's
data script, outputs measured in worker subprocesses and scored), a pass Olive rejects
failing only its own recipe, and the missing-runtime path.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.data.dataset import load_dataset
from edgeproof.evaluate.scores import score_classifier
from edgeproof.measure.harness import measure_target
from edgeproof.pipeline.optimize import build_candidates
from edgeproof.targets.olive.target import Olive, OliveTargetConfig
from tests.helpers import FAST_MEASURE, availability_without, first_output, measure_job_for

STATIC = {
    "type": "OnnxStaticQuantization",
    "config": {"quant_format": "QDQ", "activation_type": "uint8", "calibrate_method": "MinMax"},
}
CONFIG = OliveTargetConfig.model_validate(
    {
        "threads": 1,
        "recipes": [
            {"name": "static-qdq", "passes": [STATIC], "calibration_samples": 16},
            {"name": "dynamic-int8", "passes": [{"type": "OnnxDynamicQuantization"}]},
            {"name": "no-such-pass", "passes": [{"type": "NoSuchPass"}]},
        ],
    }
)


def test_each_recipe_end_to_end(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = Olive(CONFIG)
    assert target.available().ok
    calibration = load_dataset(tiny_data["calibration"])
    base, built, failed = build_candidates(target, tiny_model, calibration, tmp_path)
    assert base.target == "olive" and base.is_baseline and base.precision == "fp32"
    assert [c.name for c in built] == ["static-qdq", "dynamic-int8"]

    (bad,) = failed  # Olive's own error, one line, and only that recipe is lost
    assert bad.verdict.status == "error"
    assert "no-such-pass: optimization failed: olive run failed:" in bad.error
    assert "nosuchpass" in bad.error.lower() and "\n" not in bad.error

    static = built[0]
    workflow = json.loads((tmp_path / "static-qdq" / "workflow.json").read_text())
    assert workflow["search_strategy"] is False
    (step,) = workflow["passes"].values()
    assert step["data_config"] == workflow["data_configs"][0]["name"]  # calibrated on our data
    assert static.recipe["olive_resolved"]["onnxstaticquantization"]["quant_format"] == "QDQ"
    assert static.recipe["olive_pass_seconds"]["onnxstaticquantization"] > 0
    assert static.size_bytes() < base.size_bytes()

    got = measure_target(
        base, built, measure_job_for(tiny_data, tmp_path, "olive", CONFIG), FAST_MEASURE
    )
    assert got.errors == {}
    assert {raw.environment["session"]["runtime"] for raw in got.raw.values()} == {"onnxruntime"}
    base_logits = first_output(got.outputs["fp32"])
    labels = load_dataset(tiny_data["eval"]).labels
    for cand in built:
        scores = score_classifier(
            cand.name, first_output(got.outputs[cand.name]), base_logits, labels
        )
        assert scores.agree.mean() > 0.8  # a random tiny CNN: near-ties may flip


def test_without_olive_the_target_says_why(tmp_path: Path) -> None:
    """A runner without the [olive] extra: unavailable with a reason, nothing raised."""
    shown = availability_without("olive", "olive", tmp_path)
    assert "ok=False" in shown and "olive-ai is not installed" in shown
