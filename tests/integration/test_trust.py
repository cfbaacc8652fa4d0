"""The trust benchmark's building blocks: a genuinely slower model with the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgeproof.pipeline.trust import _rates, add_slow_branch, trust_markdown, verdict
from edgeproof.records import Estimate


def _session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_slow_branch_keeps_outputs_and_survives_optimization(
    tiny_model: Path, tmp_path: Path
) -> None:
    slow = add_slow_branch(tiny_model, tmp_path / "slow.onnx", channels=8)
    x = np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32)
    want = _session(tiny_model).run(None, {"input": x})[0]
    got = _session(slow, tmp_path / "optimized.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    convs = [n for n in onnx.load(str(slow)).graph.node if n.op_type == "Conv"]
    assert len(convs) == 3  # the model's own conv + two extra
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    kept = [n for n in optimized.graph.node if n.op_type == "Conv"]
    assert len(kept) == 3  # ORT did not fold the extra work away (NCHWc Conv counts too)


def test_verdict_and_rates() -> None:
    def est(lo: float, hi: float) -> Estimate:
        return Estimate(value=(lo + hi) / 2, low=lo, high=hi, confidence=0.99)

    assert verdict(est(0.96, 1.0), 0.95) == "pass"
    assert verdict(est(0.90, 0.94), 0.95) == "fail"
    assert verdict(est(0.94, 0.96), 0.95) == "inconclusive"
    rates = _rates(["pass"] * 9 + ["fail"], [1.0] * 10, [1.0] * 10, 0.95)
    assert rates["counts"] == {"pass": 9, "fail": 1, "inconclusive": 0}
    assert rates["rates"]["fail"]["low"] < 0.1 < rates["rates"]["fail"]["high"]
    text = trust_markdown({"min_speedup": 0.95, "variants": {"A/A": rates}}, {"cpu_count": 2})
    assert "| A/A | 10 | +0.0% | 9 (90.0%" in text
