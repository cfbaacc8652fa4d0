"""The ONNX model's inputs and outputs, kept next to each TFLite candidate as ``io.json``.

A TFLite model converted by onnx2tf has channel-last tensors and its own output names; the
data files and every other target use the ONNX layout and names. The sidecar records the
ONNX side (names, element types, shapes with None for dynamic dimensions), so a LiteRT
session can offer the canonical inputs and outputs (``edgeproof.targets.litert.layout`` matches the
two sides when the model is loaded). Plain JSON: no TensorFlow, no onnx needed to read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIDECAR = "io.json"


@dataclass(frozen=True)
class TensorInfo:
    """One ONNX graph input or output."""

    name: str
    dtype: str  # numpy name, e.g. "float32"
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class ModelIo:
    """The ONNX graph's inputs (initializers excluded) and outputs, in graph order."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @classmethod
    def from_onnx(cls, path: Path) -> ModelIo:
        import numpy as np
        import onnx
        from onnx import helper

        graph = onnx.load(str(path), load_external_data=False).graph
        initializers = {init.name for init in graph.initializer}

        def info(value: Any) -> TensorInfo:
            tensor = value.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
            return TensorInfo(value.name, dtype, dims)

        return cls(
            tuple(info(v) for v in graph.input if v.name not in initializers),
            tuple(info(v) for v in graph.output),
        )

    def to_json(self) -> dict[str, Any]:
        def side(items: tuple[TensorInfo, ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in items]

        return {"inputs": side(self.inputs), "outputs": side(self.outputs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelIo:
        def side(items: list[dict[str, Any]]) -> tuple[TensorInfo, ...]:
            return tuple(TensorInfo(t["name"], t["dtype"], tuple(t["shape"])) for t in items)

        return cls(side(data["inputs"]), side(data["outputs"]))

    def save(self, folder: Path) -> Path:
        path = folder / SIDECAR
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> ModelIo:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
