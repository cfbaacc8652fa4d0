"""Checks on a user's ONNX file before any runtime touches it.

An ONNX file is untrusted input: it is size-capped, parsed with ``onnx.load`` (protobuf,
no code execution) and validated with ``onnx.checker`` on its path (so models over 2 GB
with external data are checked too) before any runtime loads it. Its declared inputs are
what the data files must provide: names, element types and the static dimensions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.data import Dataset
from edgeproof.errors import InputError
from edgeproof.records.measurement import InputSpec

MAX_MODEL_BYTES = 4 * 1024**3


def check_onnx(path: Path) -> list[InputSpec]:
    """Validate an ONNX file and return its graph inputs; raises InputError."""
    import onnx
    from onnx import helper

    if path.is_dir():
        raise InputError(f"model path is a directory, not a file: {path}")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise InputError(f"model file too large (> {MAX_MODEL_BYTES >> 30} GiB): {path}")
    try:
        onnx.checker.check_model(str(path), full_check=False)
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"model is not a valid ONNX file ({first}): {path}") from None
    initializers = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        specs.append(InputSpec(value.name, dtype, dims))
    if not specs:
        raise InputError(f"model declares no inputs: {path}")
    return specs


def check_data_matches(inputs: list[InputSpec], data: Dataset, what: str) -> None:
    """Raise InputError when a data file does not fit the model's declared inputs."""
    expected = {spec.name for spec in inputs}
    provided = set(data.inputs)
    if expected != provided:
        raise InputError(
            f"{what} data arrays {sorted(provided)} do not match model inputs {sorted(expected)}"
        )
    for spec in inputs:
        array = data.inputs[spec.name]
        if array.dtype != spec.dtype:
            raise InputError(
                f"{what} data {spec.name!r} has dtype {array.dtype}, model expects {spec.dtype}"
            )
        if array.ndim != len(spec.shape):
            raise InputError(
                f"{what} data {spec.name!r} has {array.ndim} dims {array.shape}, "
                f"model expects {len(spec.shape)} {_shape(spec.shape)}"
            )
        for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
            if axis > 0 and want is not None and got != want:
                raise InputError(
                    f"{what} data {spec.name!r} has shape {array.shape}, "
                    f"model expects {_shape(spec.shape)}"
                )


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
