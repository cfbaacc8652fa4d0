"""The ONNX Runtime pre-processing ladder on real models: each corpus model fails the
full ``quant_pre_process`` and is prepared one rung down, with its cause on record; the
prepared model computes what the original does, and the OCR classifier then quantizes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeproof.onnx.prep import (
    Preparation,
    first_meaningful_line,
    prepare_for_ort,
    root_cause,
)
from tests.integration.corpus import data
from tests.integration.corpus.models import CORPUS, PPOCR_CLS, PPOCR_DET, SILERO_VAD, CorpusModel
from tests.integration.corpus.runtime import corpus_model, session

# What symbolic shape inference says on each model (ONNX Runtime 1.31).
EXPECTED_CAUSE = {
    "ppocr-cls": "AssertionError in onnxruntime symbolic shape inference (no message) at "
    "_infer_Concat:",
    "ppocr-det": "Exception in onnxruntime symbolic shape inference: Incomplete symbolic "
    "shape inference",
    "silero-vad": "AssertionError in onnxruntime symbolic shape inference (no message) at ",
    "minilm-l3": "Exception in onnxruntime symbolic shape inference: Incomplete symbolic "
    "shape inference",
    "minilm-l6-int8": "Exception in onnxruntime symbolic shape inference: Incomplete "
    "symbolic shape inference",
}


_PREPARED: dict[str, Preparation] = {}


@pytest.fixture(scope="module")
def prepare(tmp_path_factory: pytest.TempPathFactory) -> Callable[[CorpusModel], Preparation]:
    """Prepares each corpus model once for this module (each rung is a child process)."""

    def get(model: CorpusModel) -> Preparation:
        if model.name not in _PREPARED:
            out = tmp_path_factory.mktemp(model.name) / "model.onnx"
            _PREPARED[model.name] = prepare_for_ort(corpus_model(model), out)
        return _PREPARED[model.name]

    return get


@pytest.mark.parametrize("model", CORPUS, ids=lambda m: m.name)
def test_each_corpus_model_is_prepared_without_symbolic_shape_inference(
    model: CorpusModel, prepare: Callable[[CorpusModel], Preparation], tmp_path: Path
):
    prepared = prepare(model)
    assert prepared.level == "no-symbolic-shape"
    assert [s.step for s in prepared.skipped] == ["symbolic shape inference"]
    reason = prepared.skipped[0].reason
    assert reason.startswith(EXPECTED_CAUSE[model.name]), reason
    assert "\n" not in reason
    assert prepared.record()["preprocess_skipped"] == [f"symbolic shape inference: {reason}"]
    onnx.checker.check_model(str(prepared.path))


def test_silero_cause_names_the_if_node(prepare: Callable[[CorpusModel], Preparation]):
    prepared = prepare(SILERO_VAD)
    assert " on If node " in prepared.skipped[0].reason


def test_prepared_classifier_answers_as_the_original_and_quantizes(
    prepare: Callable[[CorpusModel], Preparation], tmp_path: Path
):
    from onnxruntime.quantization import QuantFormat, quantize_static

    original = corpus_model(PPOCR_CLS)
    prepared = prepare(PPOCR_CLS)
    inputs, labels = data.ocr_cls_set(64, seed=5)
    before = session(original).run(None, {"x": inputs})[0]
    after = session(prepared.path).run(None, {"x": inputs})[0]
    np.testing.assert_allclose(after, before, atol=1e-4)

    class Reader:
        def __init__(self) -> None:
            self._items = iter(inputs[i : i + 1] for i in range(0, 32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._items, None)
            return None if item is None else {"x": item}

    int8 = tmp_path / "int8.onnx"
    quantize_static(str(prepared.path), str(int8), Reader(), quant_format=QuantFormat.QDQ)
    predicted = session(int8).run(None, {"x": inputs})[0].argmax(axis=1)
    assert float(np.mean(predicted == labels)) >= 0.9


def test_prepared_vad_streams_as_the_original(prepare: Callable[[CorpusModel], Preparation]):
    original = corpus_model(SILERO_VAD)
    prepared = prepare(SILERO_VAD)
    windows = data.vad_windows(data.speech_like(0.5, np.random.default_rng(6)))
    np.testing.assert_allclose(
        data.vad_stream(session(prepared.path), windows),
        data.vad_stream(session(original), windows),
        atol=1e-4,
    )


def test_a_model_onnx_runtime_cannot_run_falls_to_the_raw_rung(tmp_path: Path):
    """An op of an unknown domain: the optimizer fails, ONNX shape inference writes a
    model ONNX Runtime cannot open; the model as given is what is left."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(
        [helper.make_node("Foo", ["x"], ["y"], domain="com.acme")], "g", [x], [y]
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)],
        ir_version=9,
    )
    source = tmp_path / "in.onnx"
    onnx.save(model, str(source))
    prepared = prepare_for_ort(source, tmp_path / "out" / "model.onnx")
    assert prepared.level == "raw"
    assert [s.step for s in prepared.skipped] == [
        "symbolic shape inference",
        "graph optimization",
        "onnx shape inference",
    ]
    assert all(s.reason for s in prepared.skipped)
    assert "com.acme:Foo" in prepared.skipped[1].reason
    assert prepared.path.read_bytes() == source.read_bytes()
    assert prepared.record()["preprocess"] == "none"
    assert list(prepared.path.parent.iterdir()) == [prepared.path]


def test_nothing_is_left_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ONNX Runtime saves sym_shape_infer_temp.onnx and the weights into the current
    directory when symbolic shape inference is incomplete: the rungs run elsewhere."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    prepared = prepare_for_ort(corpus_model(PPOCR_DET), tmp_path / "out" / "model.onnx")
    assert "Incomplete symbolic shape inference" in prepared.skipped[0].reason
    assert list(project.iterdir()) == []
    assert sorted(p.name for p in prepared.path.parent.iterdir()) == ["model.onnx"]


def _bare_assert() -> None:
    raise AssertionError


def test_root_cause_of_a_bare_assertion_names_type_and_place():
    try:
        _bare_assert()
    except AssertionError as exc:
        cause = root_cause(exc, default_tool="symbolic shape inference")
    assert cause.startswith("AssertionError in symbolic shape inference (no message) at ")
    assert "_bare_assert:" in cause


def test_first_meaningful_line_drops_onnx_runtime_prefixes():
    text = (
        "[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/onnxruntime/core/graph/"
        "model_load_utils.h:46 void onnxruntime::f(const std::string&, int) ONNX Runtime "
        "only *guarantees* support for models stamped with official released onnx opsets."
    )
    assert first_meaningful_line(text).startswith("ONNX Runtime only *guarantees* support")
    assert first_meaningful_line("\n  \n---\nsecond line\nthird") == "second line"
    assert first_meaningful_line("") == ""
