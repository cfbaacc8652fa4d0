"""A 0-255 image set kept as ``uint8`` gates a float32 model as its float32 copy does.

The same tiny CNN is gated twice through the real CLI on onnxruntime-cpu (FP32 baseline and
a static int8 recipe, which calibrates on the calibration set): once on float32 data in
[-0.5, 0.5], once on the same images stored as ``uint8`` with ``model.inputs.input.scale``
1/255 and ``offset`` -0.5, so every eval batch and every calibration batch is cast on feed.
Both runs pass, with the same accuracies, candidate by candidate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from tests.helpers import make_tiny_cnn, run, write_npz

pytestmark = pytest.mark.slow

SCALE, OFFSET = 0.00392156862745098, -0.5
MEASURE = {"warmup_runs": 5, "max_warmup_runs": 60, "min_samples": 60, "max_samples": 60}
MEASURE |= {"block_size": 10, "throughput_batch": 8, "throughput_runs": 3, "max_seconds": 10}


def _as_fed(u8: np.ndarray) -> np.ndarray:
    return (u8.astype(np.float64) * SCALE + OFFSET).astype(np.float32)


def _project(folder: Path, model: Path, arrays: dict[str, dict[str, np.ndarray]], scaled: bool):
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model.read_bytes())
    for split, split_arrays in arrays.items():
        write_npz(folder / "data" / f"{split}.npz", **split_arrays)
    params = {
        "model": {"name": "tiny-images", "path": "model.onnx", "num_classes": 10},
        "data": {
            "eval": "data/eval.npz",
            "calibration": "data/calibration.npz",
            "checks": {"min_eval_rows": 100, "value_min": -0.5, "value_max": 0.5},
        },
        "targets": {
            "onnxruntime-cpu": {
                "threads": 1,
                "recipes": [{"name": "static-int8", "method": "static"}],
            }
        },
        "measure": MEASURE,
        "gates": {
            "accuracy": {"max_drop_abs": 1.0},
            "fidelity": {"min_top1_agreement": 0.0, "max_kl": None},
            "latency": {"min_speedup": None},
        },
    }
    if scaled:
        params["model"]["inputs"] = {"input": {"scale": SCALE, "offset": OFFSET}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return folder


def _gate(project: Path) -> dict[str, dict]:
    done = run(["edgeproof", "run", "--params", "params.yaml"], project, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (verdict_file,) = (project / "reports").glob("*/verdict.json")
    (target,) = json.loads(verdict_file.read_text(encoding="utf-8"))["targets"]
    return {o["candidate"]["name"]: o for o in target["outcomes"]}


def test_uint8_images_gate_as_their_float32_copy(tmp_path: Path) -> None:
    model = make_tiny_cnn(tmp_path / "tiny.onnx", size=16)
    rng = np.random.default_rng(3)
    u8 = {"eval": rng.integers(0, 256, (120, 1, 16, 16), dtype=np.uint8)}
    u8["calibration"] = rng.integers(0, 256, (40, 1, 16, 16), dtype=np.uint8)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    # labels: the model's own answers on what it is fed, so the FP32 accuracy is 1.0 only
    # if the uint8 run feeds exactly those values
    labels = {k: session.run(None, {"input": _as_fed(v)})[0].argmax(1) for k, v in u8.items()}

    floats = {k: {"input": _as_fed(v), "labels": labels[k]} for k, v in u8.items()}
    uint8 = {k: {"input": v, "labels": labels[k]} for k, v in u8.items()}
    float_run = _gate(_project(tmp_path / "float", model, floats, scaled=False))
    uint8_run = _gate(_project(tmp_path / "uint8", model, uint8, scaled=True))

    # the uint8 files are a quarter of the float32 ones
    float_size = (tmp_path / "float" / "data" / "eval.npz").stat().st_size
    assert (tmp_path / "uint8" / "data" / "eval.npz").stat().st_size < float_size / 3

    assert set(float_run) == set(uint8_run) == {"fp32", "static-int8"}
    for name, outcome in uint8_run.items():
        assert outcome["error"] is None and outcome["summary"] is not None, outcome["error"]
        assert outcome["verdict"]["status"] == "pass", outcome["verdict"]
        accuracy = outcome["summary"]["accuracy"]["value"]
        assert accuracy == float_run[name]["summary"]["accuracy"]["value"], name
    assert uint8_run["fp32"]["summary"]["accuracy"]["value"] == 1.0
