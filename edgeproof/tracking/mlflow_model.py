"""Each logged candidate as an MLflow Model: an ``MLmodel`` file beside its files.

``mlflow.pyfunc.load_model("models:/<model>.<target>@champion")`` then loads the champion:
- an ONNX file gets MLflow's own ``onnx`` flavor (pyfunc through ``mlflow.onnx``), with a
  signature read from the graph's inputs and outputs and an input example (the first eval
  item, ``input_example.json``);
- another format (OpenVINO IR, LiteRT; a language model's GGUF, or its MLX folder) gets a
  pyfunc flavor whose loader (``edgeproof.device.serving``) rebuilds the target from the
  ``edgeproof`` flavor's references and runs the candidate in the target's own runtime
  session, the one the gate measured. A signature is written when the serving context
  gives one (a language model: ``tokens`` (n, ctx + 1) ids in, float32 ``logits`` out).
The ``MLmodel`` and the example are model files like the others: hashed into the evidence,
so a signed evidence also covers which code loads the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.onnx.model import graph_signature
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec

MLMODEL_FILE = "MLmodel"
EXAMPLE_FILE = "input_example.json"
# MLflow writes this into a model folder when a version of it is registered (after the
# evidence was signed): it names the registered model and version, and holds no code
REGISTRATION_FILE = "registered_model_meta"
MLFLOW_MODEL_FILES = frozenset({MLMODEL_FILE, EXAMPLE_FILE, REGISTRATION_FILE})  # not the model
SERVING_LOADER = "edgeproof.device.serving"
EDGEPROOF_FLAVOR = "edgeproof"


@dataclass(frozen=True)
class ServingContext:
    """What a loader needs to run a target's candidate: the target's references (as in a
    measurement job) and one eval item per input, for the example; ``signature``: the
    tensors in and out when the task knows them without the model file (a language
    model), else None (an ONNX graph's are read from it; other formats get none)."""

    backend: str
    config_model: str
    target_config: dict[str, Any]
    example: Mapping[str, np.ndarray]
    signature: tuple[Sequence[InputSpec], Sequence[InputSpec]] | None = None
    # outputs as the model really returned them at resolve (``FeedLayout.observed``)
    observed: Mapping[str, Mapping[str, Any]] | None = None


def write_mlmodel(candidate: Candidate, context: ServingContext, dest: Path) -> list[Path]:
    """Write ``MLmodel`` (and the input example) for ``candidate`` into ``dest``; the files."""
    from mlflow.models import Model
    from mlflow.models.signature import ModelSignature

    model = Model()
    data = candidate.model_file.name
    example = {name: np.asarray(value) for name, value in context.example.items()}
    signature = context.signature
    if candidate.model_file.suffix == ".onnx":
        import onnx

        signature = graph_signature(candidate.model_file, context.observed)
        model.add_flavor("python_function", loader_module="mlflow.onnx", data=data)
        model.add_flavor(
            "onnx",
            onnx_version=onnx.__version__,
            data=data,
            providers=["CPUExecutionProvider"],
            code=None,
        )
    else:
        model.add_flavor("python_function", loader_module=SERVING_LOADER, data=data)
    if signature is not None:
        inputs, outputs = signature
        model.signature = ModelSignature(inputs=_schema(inputs), outputs=_schema(outputs))
        dtypes = {spec.name: spec.dtype for spec in inputs}
        example = {k: v.astype(dtypes[k]) for k, v in example.items()}
    model.add_flavor(
        EDGEPROOF_FLAVOR,
        target=candidate.target,
        candidate=candidate.name,
        precision=candidate.precision,
        files=[f.name for f in candidate.files],
        backend=context.backend,
        config_model=context.config_model,
        target_config=context.target_config,
    )
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    if example:
        path = dest / EXAMPLE_FILE
        path.write_text(json.dumps({"inputs": {k: v.tolist() for k, v in example.items()}}))
        model.saved_input_example_info = {
            "artifact_path": EXAMPLE_FILE,
            "type": "ndarray",
            "format": "tf-serving",
        }
        written.append(path)
    model.save(str(dest / MLMODEL_FILE))
    return [dest / MLMODEL_FILE, *written]


def _schema(specs: Sequence[InputSpec]) -> Any:
    """An MLflow tensor schema of a graph's inputs or outputs (-1 where a dim is dynamic)."""
    from mlflow.types import Schema, TensorSpec

    return Schema(
        [
            TensorSpec(spec.dtype, tuple(-1 if d is None else d for d in spec.shape), spec.name)
            for spec in specs
        ]
    )
