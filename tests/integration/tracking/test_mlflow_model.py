"""Candidates as MLflow Models: ``mlflow.pyfunc.load_model`` runs them in their own runtime.

ONNX through MLflow's ``onnx`` flavor (signature and input example from the graph and the
eval data); OpenVINO IR through edgeproof's serving loader. Outputs are compared with
ONNX Runtime on the source model, run here without edgeproof.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import onnxruntime as ort
import pytest

from edgeproof.targets.registry import make_target, target_spec
from edgeproof.tracking.mlflow_model import ServingContext, write_mlmodel
from tests.helpers import make_tiny_cnn


def _context(target: str, section: object, example: dict[str, np.ndarray]) -> ServingContext:
    spec = target_spec(target)
    config = section.model_dump(mode="json", by_alias=True)  # type: ignore[attr-defined]
    return ServingContext(spec.backend_ref, spec.config_ref, config, example)


def _reference(model: Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": batch})[0]


@pytest.mark.parametrize("target", ["onnxruntime-cpu", "openvino-cpu"])
def test_a_candidate_loads_and_predicts_as_an_mlflow_model(tmp_path: Path, target: str) -> None:
    source = make_tiny_cnn(tmp_path / "tiny.onnx")
    params = target_spec(target).config.model_validate({})
    backend = make_target(target, params)
    baseline = backend.baseline(source, tmp_path / "build")
    folder = tmp_path / "model"  # what the candidate run's model/ artifact folder holds
    folder.mkdir()
    for path in baseline.files:
        shutil.copy(path, folder / path.name)
    items = np.random.default_rng(0).normal(size=(5, 1, 16, 16)).astype(np.float32)
    written = write_mlmodel(baseline, _context(target, params, {"input": items[:1]}), folder)
    assert [p.name for p in written] == ["MLmodel", "input_example.json"]

    loaded = mlflow.pyfunc.load_model(str(folder))
    predicted = loaded.predict({"input": items})
    logits = predicted["logits"] if isinstance(predicted, dict) else np.asarray(predicted)
    reference = _reference(source, items)
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == reference.argmax(1)).all()
    meta = loaded.metadata
    assert meta.flavors["edgeproof"]["target"] == target
    if target == "onnxruntime-cpu":
        assert meta.get_input_schema().input_names() == ["input"]
        assert meta.get_output_schema().input_names() == ["logits"]
        assert "onnx" in meta.flavors
    else:
        assert meta.flavors["python_function"]["loader_module"] == "edgeproof.device.serving"
