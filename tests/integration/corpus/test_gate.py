"""Real third-party models gated end to end by ``edgeproof run``, on every ONNX target that
takes them: each candidate gets a verdict with numbers (never an error), and the baseline's
preparation says which step it had to skip and why.

The OCR classifier (0.6 MB) runs in ``make test``; the larger models carry the ``corpus``
marker (``make test-corpus``). ``benchmarks/real_models.py`` runs the same projects and
writes docs/real-models.md.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgeproof.targets.onnxruntime_cpu.target import NOTHING_QUANTIZED
from tests.helpers import BIN, tool_env
from tests.integration.corpus.models import (
    MINILM_L3,
    MINILM_L6_INT8,
    PPOCR_CLS,
    PPOCR_DET,
    PPOCR_REC,
    SILERO_VAD,
    CorpusModel,
)
from tests.integration.corpus.project import write_project
from tests.integration.corpus.runtime import corpus_model

ONNX_TARGETS = ("onnxruntime-cpu", "openvino-cpu", "olive")
ALL_ONNX_TARGETS = (*ONNX_TARGETS, "tflite-cpu")  # onnx2tf takes the OCR models only


def gate(
    model: CorpusModel,
    folder: Path,
    exits: tuple[int, ...] = (0, 1),
    targets: tuple[str, ...] = ONNX_TARGETS,
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``edgeproof run --json`` on the model's project; (process, verdict.json)."""
    params = write_project(model, folder)
    command = [str(BIN / "edgeproof"), "run", "--params", str(params), "--json"]
    for target in targets:
        command += ["--target", target]
    done = subprocess.run(
        command, cwd=folder, env=tool_env(folder), capture_output=True, text=True, timeout=1800
    )
    assert done.returncode in exits, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(done.stdout)


def check_gated(verdict: dict[str, Any], targets: tuple[str, ...] = ONNX_TARGETS) -> None:
    """Every target ran; every candidate of ``targets`` has a verdict with its numbers."""
    assert [t["target"] for t in verdict["targets"]][: len(ONNX_TARGETS)] == list(ONNX_TARGETS)
    for target in (t for t in verdict["targets"] if t["target"] in targets):
        assert target["status"] in ("pass", "blocked"), (target["target"], target["reason"])
        assert len(target["outcomes"]) >= 2, target["target"]
        for outcome in target["outcomes"]:
            where = f"{target['target']}/{outcome['candidate']['name']}"
            assert outcome["error"] is None, (where, outcome["error"])
            assert outcome["verdict"]["status"] in ("pass", "fail", "inconclusive"), where
            summary = outcome["summary"]
            assert summary["median_ms"]["value"] > 0, where
            if not outcome["candidate"]["is_baseline"]:
                assert summary["speedup"]["value"] > 0, where


def test_the_paddle_ocr_classifier_is_gated_on_every_onnx_target(tmp_path: Path) -> None:
    corpus_model(PPOCR_CLS)
    done, verdict = gate(PPOCR_CLS, tmp_path / PPOCR_CLS.name, targets=ALL_ONNX_TARGETS)
    check_gated(verdict, ALL_ONNX_TARGETS)
    tflite = next(t for t in verdict["targets"] if t["target"] == "tflite-cpu")
    converted = next(o for o in tflite["outcomes"] if o["candidate"]["is_baseline"])
    assert converted["summary"]["accuracy"]["value"] >= 0.9  # LiteRT reads the text too
    pinned = converted["candidate"]["recipe"]["pinned_shapes"]  # what onnx2tf needed
    assert pinned == [
        "x: (?, 3, ?, ?) -> (batch, 3, 48, 192)",
        "258 node names made valid TensorFlow scope names",  # Paddle's 'Softmax@0' and co.
    ]
    ort = next(t for t in verdict["targets"] if t["target"] == "onnxruntime-cpu")
    baseline = next(o for o in ort["outcomes"] if o["candidate"]["is_baseline"])
    assert baseline["summary"]["accuracy"]["value"] >= 0.9  # the FP32 model reads the text
    skipped = json.dumps(baseline["candidate"]["recipe"])
    assert "AssertionError" in skipped and "_infer_Concat" in skipped, skipped
    assert "_infer_Concat" in done.stderr  # the summary shows what was skipped and why


@pytest.mark.corpus
@pytest.mark.parametrize("model", [PPOCR_DET, MINILM_L3, MINILM_L6_INT8], ids=lambda m: m.name)
def test_the_larger_corpus_models_are_gated_on_every_onnx_target(
    model: CorpusModel, tmp_path: Path
) -> None:
    corpus_model(model)
    _, verdict = gate(model, tmp_path / model.name)
    check_gated(verdict)


@pytest.mark.corpus
def test_the_ocr_recognizer_is_gated_on_its_character_error_rate(tmp_path: Path) -> None:
    """PP-OCRv4's recognizer on the team's own metric (examples/metrics/ocr_cer.py): every
    candidate's verdict carries CER, its paired increase and the worst font's; the FP32
    CER is what plain ONNX Runtime and the same function give on the same lines."""
    import numpy as np
    import onnxruntime as ort

    from tests.integration.corpus.project import METRICS

    corpus_model(PPOCR_REC)
    folder = tmp_path / PPOCR_REC.name
    done, verdict = gate(PPOCR_REC, folder)
    check_gated(verdict)
    with np.load(folder / "data" / "eval.npz") as data:
        lines, labels = data["x"], data["labels"]
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {"x": lines})[0]
    namespace: dict[str, Any] = {}
    exec((METRICS / "ocr_cer.py").read_text(encoding="utf-8"), namespace)  # the team's file
    reference = namespace["character_error_rate"]({"p": probabilities}, {}, labels).mean()
    assert reference < 0.05  # the recognizer reads the rendered lines
    for target in verdict["targets"]:
        for outcome in target["outcomes"]:
            metric = outcome["summary"]["metric"]
            assert metric["name"] == "cer" and metric["higher_is_better"] is False
            assert metric["baseline"] == pytest.approx(reference, abs=0.02), target["target"]
            assert metric["slices"] == 4  # one per font
            if not outcome["candidate"]["is_baseline"]:
                names = {c["name"] for c in outcome["verdict"]["checks"]}
                assert {"metric.max_drop_abs", "metric.max_worst_slice_drop_abs"} <= names
    assert "The team's metric, cer (lower is better)" in done.stderr


def test_the_streaming_vad_is_gated_with_its_state_carried(tmp_path: Path) -> None:
    """silero-vad (If on the sample rate, state ``[2, batch, 128]`` carried from call to
    call, a 0-d sample rate from params): every ONNX Runtime candidate has a verdict on its
    speech decisions, and the FP32 figure is what plain ONNX Runtime streaming the same
    clips gives (without the carried state it would differ). OpenVINO 2026.4 cannot convert
    this graph: that target alone fails, exit 2, with the ops and OpenVINO's reason."""
    import numpy as np
    import onnxruntime as ort

    from tests.integration.corpus import data

    corpus_model(SILERO_VAD)
    folder = tmp_path / SILERO_VAD.name
    done, verdict = gate(SILERO_VAD, folder, exits=(2,))
    check_gated(verdict, ("onnxruntime-cpu", "olive"))
    openvino = next(t for t in verdict["targets"] if t["target"] == "openvino-cpu")
    assert openvino["status"] == "error"
    assert (
        "ops Conv-16, ReduceMean-16 did not convert: The input data tensor's rank"
        in (openvino["reason"])
    )
    with np.load(folder / "data" / "eval.npz") as npz:
        windows, labels, streams = npz["input"], npz["labels"], npz["stream"]
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    carried = np.concatenate(
        [data.vad_stream(session, windows[streams == s]) for s in np.unique(streams)]
    )
    reference = float(((carried > 0.5) == (labels > 0)).mean())
    assert reference >= 0.85  # the FP32 detector hears the clips
    sr = np.array(data.SAMPLE_RATE, np.int64)
    zeros = np.zeros((2, len(windows), 128), np.float32)
    fresh = session.run(None, {"input": windows, "state": zeros, "sr": sr})[0][:, 0]
    assert np.abs(fresh - carried).max() > 0.1  # a stateless harness would gate other numbers
    for target in (t for t in verdict["targets"] if t["target"] != "openvino-cpu"):
        for outcome in target["outcomes"]:
            metric = outcome["summary"]["metric"]
            assert metric["name"] == "vad-accuracy", target["target"]
            same_runtime = target["target"] in ("onnxruntime-cpu", "olive")  # OpenVINO: its own
            tolerance = 1e-9 if same_runtime else 0.02
            assert metric["baseline"] == pytest.approx(reference, abs=tolerance), target["target"]
    assert "vad-accuracy" in done.stderr
    ort_outcomes = {
        o["candidate"]["name"]: o
        for t in verdict["targets"]
        if t["target"] == "onnxruntime-cpu"
        for o in t["outcomes"]
    }
    for name in ("dynamic-int8", "static-qdq"):  # ONNX Runtime leaves If bodies alone
        assert ort_outcomes[name]["candidate"]["recipe"]["warnings"] == [NOTHING_QUANTIZED]
    subgraphs = ort_outcomes["dynamic-int8-subgraphs"]
    assert "warnings" not in subgraphs["candidate"]["recipe"]
    sizes = {n: o["summary"]["size_mb"] for n, o in ort_outcomes.items()}
    assert sizes["dynamic-int8-subgraphs"] < 0.5 * sizes["fp32"], sizes
    assert "ONNX Runtime quantized no op" in done.stderr  # the report says why
