"""Outputs and item axes as the model really runs (``edgeproof.onnx.observe``), real ONNX
Runtime at resolve: a fixed-batch OCR-like model whose declared output contradicts the
real one, and an skl2onnx-like classifier whose int64 label output comes first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeproof.config import FidelityGate
from edgeproof.errors import ConfigError, MeasurementError
from edgeproof.evaluate.scores import score_candidate, score_classifier
from edgeproof.onnx.model import graph_signature
from edgeproof.pipeline.resolve import ResolvedInputs, resolve_inputs
from tests.helpers import make_tiny_cnn, write_npz, write_params

WIDTH, CLASSES = 40, 5


def recognizer(path: Path) -> Path:
    """A CTC-like recognizer: input ``x`` [1, 1, 8, width] (batch fixed at 1, width
    dynamic), output ``y`` declared [1, seqlen] while it returns (width, 1, classes): each
    column of the image scored on its own."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(0, 1, (8, CLASSES)).astype(np.float32)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[3, 0, 1, 2]),  # (W, 1, 1, 8)
        helper.make_node("Reshape", ["t", "shape"], ["r"]),  # (W, 1, 8)
        helper.make_node("MatMul", ["r", "w"], ["y"]),  # (W, 1, classes)
    ]
    graph = helper.make_graph(
        nodes,
        "recognizer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, "width"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seqlen"])],
        [
            numpy_helper.from_array(np.array([-1, 1, 8], np.int64), "shape"),
            numpy_helper.from_array(weights, "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def label_first(path: Path) -> Path:
    """The tiny CNN with skl2onnx's ``zipmap=False`` outputs: ``output_label`` (int64 [N])
    first, then ``output_probability`` (float [N, 10])."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(make_tiny_cnn(path)))
    model.graph.node.extend(
        [
            helper.make_node("Softmax", ["logits"], ["output_probability"], axis=1),
            helper.make_node(
                "ArgMax", ["output_probability"], ["output_label"], axis=1, keepdims=0
            ),
        ]
    )
    del model.graph.output[:]
    model.graph.output.extend(
        [
            helper.make_tensor_value_info("output_label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("output_probability", TensorProto.FLOAT, ["N", 10]),
        ]
    )
    onnx.save(model, str(path))
    return path


def project(folder: Path, model: Path, eval_arrays: dict[str, np.ndarray], **model_keys: Any):
    (folder / "data").mkdir(parents=True, exist_ok=True)
    write_npz(folder / "data" / "eval.npz", **eval_arrays)
    write_npz(folder / "data" / "calibration.npz", **eval_arrays)
    params = {
        "model": {"name": "m", "path": model.name, **model_keys},
        "data": {"eval": "data/eval.npz", "calibration": "data/calibration.npz"},
        "targets": {"onnxruntime-cpu": {"recipes": [{"name": "dyn", "method": "dynamic"}]}},
    }
    write_params(folder / "params.yaml", params)
    return folder / "params.yaml"


def outputs_as_the_worker_writes(inputs: ResolvedInputs, batch: int) -> dict[str, np.ndarray]:
    """The FP32 model's eval outputs, items first, as ``measure.worker`` writes them."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(inputs.model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    data = inputs.load_eval()
    layout = data.layout
    size = min(batch, layout.max_batch or batch)
    chunks = [session.run(names, feeds) for feeds in data.batches(size)]
    return {
        name: layout.output_items(
            name, np.concatenate([c[i] for c in chunks], axis=layout.output_axis(name))
        )
        for i, name in enumerate(names)
    }


@pytest.fixture
def ocr(tmp_path: Path) -> Path:
    return recognizer(tmp_path / "model.onnx")


def test_a_fixed_batch_with_a_dynamic_width_is_refused_when_the_data_fits_both(
    ocr: Path, tmp_path: Path
):
    one_image = np.random.default_rng(1).random((1, 1, 8, WIDTH), dtype=np.float32)
    params = project(tmp_path, ocr, {"x": one_image}, task="raw")
    with pytest.raises(ConfigError) as refused:
        resolve_inputs(params)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: model.inputs.x.item_axis: input 'x' (1, 1, 8, ?)")
    assert "axis 0 (batch fixed at 1) or on axis 3 (dynamic 'width')" in message


def test_item_axis_set_in_params_feeds_columns_and_the_output_axis_is_observed(
    ocr: Path, tmp_path: Path
):
    image = np.random.default_rng(1).random((1, 1, 8, WIDTH), dtype=np.float32)
    params = project(tmp_path, ocr, {"x": image}, task="raw", inputs={"x": {"item_axis": 3}})
    inputs = resolve_inputs(params)
    assert inputs.feed.item_axes == {"x": 3}
    assert inputs.feed.output_axis("y") == 0  # declared [1, seqlen]; observed (W, 1, C)
    assert inputs.feed.observed == {"y": {"dtype": "float32", "shape": [None, 1, CLASSES]}}
    assert any(
        "declared float32 (1, ?) and returns float32 (?, 1, 5)" in w for w in inputs.warnings
    )
    outputs = outputs_as_the_worker_writes(inputs, batch=16)
    assert outputs["y"].shape == (WIDTH, 1, CLASSES)  # one row per column, items first
    _, (signature,) = graph_signature(inputs.model, inputs.feed.observed)
    assert signature.shape == (None, 1, CLASSES)  # what the MLflow signature can say


def test_the_data_decides_a_fixed_batch_and_the_output_axis_is_observed(ocr: Path, tmp_path: Path):
    """The real OCR case: N images of the same width; items on axis 0, one per call; the
    output (T, 1, classes) holds its item on axis 1, whatever the graph declares."""
    images = np.random.default_rng(1).random((6, 1, 8, WIDTH), dtype=np.float32)
    inputs = resolve_inputs(project(tmp_path, ocr, {"x": images}, task="raw"))
    assert inputs.feed.item_axis("x") == 0 and inputs.feed.max_batch == 1
    assert inputs.feed.output_axis("y") == 1
    outputs = outputs_as_the_worker_writes(inputs, batch=4)
    assert outputs["y"].shape == (6, WIDTH, CLASSES)


def test_an_output_item_axis_out_of_range_names_the_key(ocr: Path, tmp_path: Path):
    images = np.random.default_rng(1).random((6, 1, 8, WIDTH), dtype=np.float32)
    params = project(
        tmp_path, ocr, {"x": images}, task="raw", outputs=[{"name": "y", "item_axis": 3}]
    )
    with pytest.raises(ConfigError, match=r"^params.yaml: model.outputs: 'y': item_axis 3 is"):
        resolve_inputs(params)


@pytest.fixture
def classifier_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 16, 16), dtype=np.float32)
    return {"input": x, "labels": rng.integers(0, 10, 40).astype(np.int64)}


def test_a_label_output_first_is_refused_naming_model_outputs(tmp_path: Path, classifier_data):
    params = project(tmp_path, label_first(tmp_path / "model.onnx"), classifier_data)
    with pytest.raises(ConfigError) as refused:
        resolve_inputs(params)
    assert str(refused.value) == (
        "params.yaml: model.outputs: the first output 'output_label' is int64 labels; name "
        "the class-score output to gate (model.outputs: [{name: <output>, kind: probabilities}])"
    )


@pytest.mark.parametrize(
    "outputs",
    [
        [{"name": "output_probability", "kind": "probabilities"}],
        {"output_probability": {"kind": "probabilities"}},
        ["output_probability"],  # the kind observed: rows that sum to 1
    ],
)
def test_the_named_probability_output_is_gated(tmp_path: Path, classifier_data, outputs):
    params = project(
        tmp_path, label_first(tmp_path / "model.onnx"), classifier_data, outputs=outputs
    )
    inputs = resolve_inputs(params)
    feed = inputs.feed
    assert feed.outputs == ("output_probability",)
    assert feed.output_kind("output_probability") == "probabilities"
    written = outputs_as_the_worker_writes(inputs, batch=8)
    gated = feed.gated(written)
    assert list(gated) == ["output_probability"] and gated["output_probability"].shape == (40, 10)
    # the layout travels to the workers as JSON
    assert type(feed).from_json(feed.to_json()) == feed
    scores = score_candidate(
        "classification",
        "fp32",
        gated,
        gated,
        classifier_data["labels"],
        FidelityGate(),
        kind=feed.output_kind("output_probability"),
    )
    assert scores.agree.all() and np.allclose(scores.kl, 0.0)


def test_the_label_output_named_alone_gives_agreement_without_kl(tmp_path: Path, classifier_data):
    params = project(
        tmp_path, label_first(tmp_path / "model.onnx"), classifier_data, outputs=["output_label"]
    )
    feed = resolve_inputs(params).feed
    assert feed.outputs == ("output_label",) and feed.output_kind("output_label") == "labels"


# --- scores on the right quantity ----------------------------------------------------------

BASE = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
CAND = np.array([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]])


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * np.log(p / q)).sum(axis=1)


def test_kl_of_probabilities_is_taken_on_the_probabilities_not_their_softmax():
    scores = score_classifier("c", CAND, BASE, None, kind="probabilities")
    np.testing.assert_allclose(scores.kl, kl(BASE, CAND), rtol=1e-12)
    softmaxed = score_classifier("c", CAND, BASE, None)  # as logits: another, smaller number
    assert not np.allclose(softmaxed.kl, kl(BASE, CAND))


def test_kl_of_logits_is_taken_on_their_softmax():
    logits_base, logits_cand = np.log(BASE) + 3.0, np.log(CAND) - 1.0  # any shift
    scores = score_classifier("c", logits_cand, logits_base, None, kind="logits")
    np.testing.assert_allclose(scores.kl, kl(BASE, CAND), rtol=1e-9)


def test_a_probability_of_zero_costs_a_finite_kl():
    scores = score_classifier(
        "c", np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]), None, "probabilities"
    )
    assert np.isfinite(scores.kl).all() and scores.kl[0] > 10


def test_labels_give_agreement_and_accuracy_but_no_kl():
    base, cand = np.array([0, 2, 1, 1]), np.array([0, 2, 2, 1])
    scores = score_classifier("c", cand.astype(np.float32), base, np.array([0, 2, 2, 0]), "labels")
    assert scores.kl is None
    assert scores.agree.tolist() == [True, True, False, True]
    assert scores.correct.tolist() == [True, True, True, False]
    assert scores.baseline_correct.tolist() == [True, True, False, False]
    with pytest.raises(MeasurementError, match=r"expected \(items,\) class ids, got \(2, 3\)"):
        score_classifier("c", CAND, BASE, None, "labels")
