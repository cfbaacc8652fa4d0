"""The ``openvino-cpu`` target with the real OpenVINO runtime and NNCF.

Each recipe end to end (convert, quantize, measure in worker subprocesses, score), the
precision each session really ran at, and the missing-runtime path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeproof.config import OpenVinoRecipe, OpenVinoTargetConfig
from edgeproof.data import load_dataset
from edgeproof.errors import InputError
from edgeproof.evaluate import score_classifier
from edgeproof.measure.harness import measure_target
from edgeproof.targets.openvino_cpu import OpenVinoCpu
from tests.example_project import ROOT
from tests.test_harness import MEASURE, _job

CONFIG = OpenVinoTargetConfig(
    threads=1,
    recipes=[
        OpenVinoRecipe(name="bf16", method="precision", precision="bf16"),
        OpenVinoRecipe(name="nncf-int8", method="nncf-ptq", calibration_samples=16),
    ],
)


def test_each_recipe_end_to_end(
    tiny_model: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    target = OpenVinoCpu(CONFIG)
    assert target.available().ok
    base = target.baseline(tiny_model, tmp_path)
    assert [f.suffix for f in base.files] == [".xml", ".bin"] and base.precision == "fp32"
    calibration = load_dataset(tiny_data["calibration"])
    bf16 = target.optimize("bf16", base, calibration, tmp_path)
    int8 = target.optimize("nncf-int8", base, calibration, tmp_path)
    assert int8.size_bytes() < base.size_bytes() / 2  # int8 weights
    assert bf16.recipe == {"method": "precision", "precision": "bf16"}

    job = _job(tiny_data, tmp_path, "openvino-cpu", CONFIG)
    got = measure_target(base, [bf16, int8], job, MEASURE)
    assert got.errors == {}
    sessions = {name: raw.environment["session"] for name, raw in got.raw.items()}
    assert sessions["fp32"]["inference_precision"] == "f32"  # not the CPU's bf16 default
    assert sessions["nncf-int8"]["precision"] == "int8"
    assert {s["runtime"] for s in sessions.values()} == {"openvino"}
    base_logits = np.load(got.outputs["fp32"])
    labels = load_dataset(tiny_data["eval"]).labels
    for name in ("bf16", "nncf-int8"):
        scores = score_classifier(name, np.load(got.outputs[name]), base_logits, labels)
        assert scores.agree.mean() > 0.8  # a random tiny CNN: near-ties may flip


def test_a_model_openvino_cannot_read_is_a_clear_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a valid ONNX file"):
        OpenVinoCpu(CONFIG).baseline(bad, tmp_path)


def test_without_openvino_the_target_says_why(tmp_path: Path) -> None:
    """A runner without the [openvino] extra: unavailable with a reason, nothing raised."""
    shim = tmp_path / "shim" / "openvino"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named openvino (shim)')\n")
    code = (
        "from edgeproof.config import OpenVinoTargetConfig;"
        "from edgeproof.targets.openvino_cpu import OpenVinoCpu;"
        "print(OpenVinoCpu(OpenVinoTargetConfig()).available())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{shim.parent}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ok=False" in done.stdout and "openvino is not installed" in done.stdout
