"""A team's own metric gated end to end: ``model.metric`` names a function in a file beside
params.yaml; every candidate's verdict carries the metric's mean, its paired drop and the
worst slice's, and the baseline's value is what the function gives on plain ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from tests.helpers import make_tiny_cnn, run, write_npz

pytestmark = pytest.mark.slow

METRIC_FILE = '''
import numpy as np

def top3_hit(outputs, baseline_outputs, labels):
    """1 when the label is among the three highest logits."""
    (logits,) = outputs.values()
    top3 = np.argsort(-logits, axis=1)[:, :3]
    return (top3 == labels[:, None]).any(axis=1).astype(float)
'''
PARAMS = {
    "model": {
        "name": "tiny",
        "path": "model.onnx",
        "metric": {"function": "team_metric.py:top3_hit", "name": "top3"},
    },
    "data": {
        "eval": "data/eval.npz",
        "calibration": "data/calibration.npz",
        "checks": {"min_eval_rows": 100},
    },
    "gates": {"metric": {"max_drop_rel": 0.05, "max_worst_slice_drop_rel": 0.10}},
    "measure": {"min_samples": 60, "max_samples": 80, "max_seconds": 3, "eval_batch": 16},
    "targets": {"onnxruntime-cpu": {"recipes": [{"name": "static-int8", "method": "static"}]}},
}


def _project(folder: Path, params: dict) -> np.ndarray:
    make_tiny_cnn(folder / "model.onnx", size=16)
    rng = np.random.default_rng(0)
    x = rng.random((260, 1, 16, 16), dtype=np.float32)
    labels = np.arange(260) % 10
    side = np.where(np.arange(260) % 2 == 0, "left", "right")
    write_npz(folder / "data/eval.npz", input=x[:200], labels=labels[:200], slice=side[:200])
    write_npz(folder / "data/calibration.npz", input=x[200:], labels=labels[200:])
    (folder / "team_metric.py").write_text(METRIC_FILE, encoding="utf-8")
    (folder / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    session = ort.InferenceSession(str(folder / "model.onnx"))
    logits = session.run(None, {"input": x[:200]})[0]
    return (np.argsort(-logits, axis=1)[:, :3] == labels[:200, None]).any(axis=1)


def test_the_teams_metric_is_gated_per_candidate_with_its_worst_slice(tmp_path: Path) -> None:
    hits = _project(tmp_path, PARAMS)
    done = run(["edgeproof", "run", "--params", "params.yaml", "--json"], tmp_path, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    (target,) = verdict["targets"]
    by_name = {o["candidate"]["name"]: o for o in target["outcomes"]}
    baseline = by_name["fp32"]["summary"]["metric"]
    assert baseline["name"] == "top3" and baseline["higher_is_better"] is True
    assert baseline["baseline"] == pytest.approx(hits.mean())  # the function on plain ORT
    assert baseline["slices"] == 2 and baseline["worst_slice"] in ("left", "right")
    checks = {c["name"]: c for c in by_name["static-int8"]["verdict"]["checks"]}
    for name in ("metric.max_drop_rel", "metric.max_worst_slice_drop_rel"):
        assert checks[name]["status"] in ("pass", "fail", "inconclusive"), checks[name]
        assert checks[name]["high"] is not None  # a CI, not a bare number
    drop = by_name["static-int8"]["summary"]["metric"]["drop"]
    assert drop["low"] <= drop["value"] <= drop["high"]
    report = next((tmp_path / "reports").glob("*/summary.md")).read_text(encoding="utf-8")
    assert "The team's metric, top3 (higher is better)" in report


def test_a_missing_metric_function_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    params = {**PARAMS, "model": {**PARAMS["model"], "metric": {"function": "team_metric.py:nope"}}}
    _project(tmp_path, params)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = run(["edgeproof", "run", "--params", "params.yaml"], tmp_path, timeout=300)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        "edgeproof: error: params.yaml: model.metric: team_metric.py:nope: "
        "team_metric.py has no function 'nope'"
    ]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # no mlflow.db, no reports/, no mlartifacts/
