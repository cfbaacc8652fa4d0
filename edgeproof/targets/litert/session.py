"""A TFLite model loaded in LiteRT, with the ONNX model's inputs and outputs.

Facts this relies on (ai-edge-litert 2.3.0, this machine):
- ``ai_edge_litert.interpreter.Interpreter`` (``tflite-runtime`` 2.14 fails with NumPy 2);
  ``num_threads`` sets the CPU threads; XNNPACK is applied by default.
- Canonical feeds are the data files' arrays (ONNX layout, e.g. NCHW float32). Each input
  is transposed to the TFLite layout and, when the TFLite input is integer with a scale
  (full-int8 models), quantized with its (scale, zero_point); integer outputs with a scale
  are dequantized to float32 and transposed back, so every candidate's outputs compare
  with the ONNX baseline's. Tensors are found through the ``serving_default`` signature
  (``get_output_details()`` order is not the output order); a model without signatures
  (e.g. after ``edgetpu_compiler``) falls back to input order and ``...:<i>`` output names.
- A model converted with a dynamic batch resizes to any batch. One with a static batch of
  1 cannot be resized under XNNPACK ("XNNPack delegate failed to reshape runtime"), but
  recovers when resized back to 1. So loading probes a resize to batch 2: ``batching`` in
  ``info`` is ``resize`` when that works, else ``per-item`` (a batch runs item by item).
- A delegate (Edge TPU) is loaded with ``load_delegate(library)``; a missing library is an
  OSError from ctypes, a library that finds no device a ValueError.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.errors import TargetUnavailable
from edgeproof.records.measurement import InputSpec
from edgeproof.runtime.oneshot import one_line
from edgeproof.targets.litert.layout import inverse, layout_perm, match_inputs, match_outputs
from edgeproof.targets.litert.model_io import ModelIo


class _ResizeRefused(RuntimeError):
    """LiteRT would not allocate the inputs at the requested shape (restored to batch 1)."""


@dataclass(frozen=True)
class _Binding:
    """One canonical tensor and the TFLite tensor it is."""

    name: str
    index: int  # TFLite tensor index
    perm: tuple[int, ...]  # canonical -> TFLite axes
    back: tuple[int, ...]  # TFLite -> canonical axes
    dtype: np.dtype  # TFLite element type
    scale: float  # 0.0: not quantized
    zero_point: int
    limits: tuple[int, int]  # the integer type's range (quantized only)


class LiteRtSession:
    """A LiteRT interpreter behind the ``Session`` protocol (canonical ONNX inputs/outputs)."""

    def __init__(
        self,
        model: Path,
        io: ModelIo,
        threads: int,
        precision: str,
        delegate: Delegate | None = None,
    ) -> None:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        delegates = [] if delegate is None else [delegate.load()]
        self._interpreter = Interpreter(
            model_path=str(model), num_threads=threads, experimental_delegates=delegates or None
        )
        self._interpreter.allocate_tensors()
        self._shapes = {  # current input shapes (asking LiteRT on every run costs time)
            int(d["index"]): tuple(int(x) for x in d["shape"])
            for d in self._interpreter.get_input_details()
        }
        self._inputs, self._outputs = _bindings(self._interpreter, io)
        self.inputs = [InputSpec(t.name, np.dtype(t.dtype), tuple(t.shape)) for t in io.inputs]
        self.output_names = [b.name for b in self._outputs]
        self._per_item = not self._resizes()
        self.info: dict[str, Any] = {
            "runtime": "litert",
            "runtime_version": ai_edge_litert.__version__,
            "precision": precision,
            "threads": threads,
            "delegate": None if delegate is None else delegate.name,
            "batching": "per-item" if self._per_item else "resize",
            "input_types": {b.name: b.dtype.name for b in self._inputs},
            "timed": "Interpreter.invoke (inputs set before, outputs read after)",
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        arrays = {b.name: _to_tflite(b, np.asarray(feeds[b.name])) for b in self._inputs}
        count = len(next(iter(arrays.values())))
        if count > 1 and not self._per_item:
            try:
                return self._invoke(arrays)
            except _ResizeRefused:  # item by item from now on
                self._per_item = True
                self.info["batching"] = f"per-item (resize to batch {count} failed)"
        if count > 1 and self._per_item:
            parts = [
                self._invoke({k: v[i : i + 1] for k, v in arrays.items()}) for i in range(count)
            ]
            return [np.concatenate(chunk) for chunk in zip(*parts, strict=True)]
        return self._invoke(arrays)

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One item in the TFLite tensors' layout and type (a full-int8 model's: quantized)."""
        arrays = {b.name: _to_tflite(b, np.asarray(feeds[b.name])) for b in self._inputs}
        if len(next(iter(arrays.values()))) != 1:
            raise ValueError("timed runs take one item")
        return arrays

    def timed_run(self, prepared: dict[str, np.ndarray]) -> float:
        """The ``invoke()`` alone, as litert-benchmark times it: setting the inputs and
        reading the outputs are the caller's."""
        self._set_inputs(prepared)
        start = time.perf_counter_ns()
        self._interpreter.invoke()
        return (time.perf_counter_ns() - start) / 1e6

    def _invoke(self, arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._set_inputs(arrays)
        self._interpreter.invoke()
        return [_from_tflite(b, self._interpreter.get_tensor(b.index)) for b in self._outputs]

    def _set_inputs(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._shape_to({b.index: arrays[b.name].shape for b in self._inputs})
        for b in self._inputs:
            self._interpreter.set_tensor(b.index, arrays[b.name])

    def _shape_to(self, shapes: Mapping[int, tuple[int, ...]]) -> None:
        """Resize inputs whose shape differs (then re-allocate); a refusal restores batch 1."""
        changed = {i: tuple(s) for i, s in shapes.items() if self._shapes.get(i) != tuple(s)}
        if not changed:
            return
        try:
            for index, shape in changed.items():
                self._interpreter.resize_tensor_input(index, list(shape))
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            restored = {i: (1, *s[1:]) for i, s in changed.items()}
            for index, shape in restored.items():
                self._interpreter.resize_tensor_input(index, list(shape))
            self._interpreter.allocate_tensors()
            self._shapes |= restored
            shown = list(changed.values())
            raise _ResizeRefused(f"LiteRT cannot resize the inputs to {shown}") from exc
        self._shapes |= changed

    def _resizes(self) -> bool:
        """Whether a batch of 2 can be allocated (then back to batch 1)."""
        shapes = {i: s for i, s in self._shapes.items() if len(s) > 0}
        try:
            self._shape_to({i: (2, *s[1:]) for i, s in shapes.items()})
        except _ResizeRefused:
            return False
        self._shape_to({i: (1, *s[1:]) for i, s in shapes.items()})
        return True


@dataclass(frozen=True)
class Delegate:
    """A LiteRT delegate in a shared library, e.g. ``edgetpu`` in ``libedgetpu.so.1``."""

    name: str
    library: str
    options: tuple[tuple[str, str], ...] = ()

    def load(self) -> Any:
        """The loaded delegate; ``TargetUnavailable`` naming the library if it cannot load."""
        from ai_edge_litert.interpreter import load_delegate

        try:
            return load_delegate(self.library, dict(self.options) or None)
        except (OSError, ValueError, RuntimeError) as exc:
            raise TargetUnavailable(
                f"{self.name} delegate {self.library} cannot be loaded ({one_line(str(exc), 200)})"
            ) from None


def _bindings(interpreter: Any, io: ModelIo) -> tuple[list[_Binding], list[_Binding]]:
    """The canonical inputs and outputs bound to TFLite tensors (see module docstring)."""
    signatures = interpreter.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = interpreter.get_signature_runner(key)
        ins, outs = runner.get_input_details(), runner.get_output_details()
    else:
        ins = {d["name"]: d for d in interpreter.get_input_details()}
        outs = {d["name"]: d for d in interpreter.get_output_details()}
    names = match_inputs([t.name for t in io.inputs], list(ins))
    inputs = [_bind(t.name, t.shape, ins[names[t.name]]) for t in io.inputs]
    onnx_shapes = {t.name: t.shape for t in io.outputs}
    outputs = []
    for name, key in match_outputs(list(onnx_shapes), list(outs)):
        shape = onnx_shapes.get(name, tuple(int(d) for d in outs[key]["shape_signature"]))
        outputs.append(_bind(name, shape, outs[key]))
    return inputs, outputs


def _bind(name: str, onnx_shape: tuple[int | None, ...], detail: dict[str, Any]) -> _Binding:
    tflite_shape = [int(d) for d in detail["shape_signature"]]
    perm = layout_perm(onnx_shape, tflite_shape)
    if perm is None:
        raise ValueError(
            f"tensor {name!r}: ONNX shape {list(onnx_shape)} does not map to TFLite {tflite_shape}"
        )
    scales = detail["quantization_parameters"]["scales"]
    zero_points = detail["quantization_parameters"]["zero_points"]
    dtype = np.dtype(detail["dtype"])
    quantized = len(scales) == 1 and np.issubdtype(dtype, np.integer)
    limits = (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)) if quantized else (0, 0)
    return _Binding(
        name=name,
        index=int(detail["index"]),
        perm=perm,
        back=inverse(perm),
        dtype=dtype,
        scale=float(scales[0]) if quantized else 0.0,
        zero_point=int(zero_points[0]) if quantized else 0,
        limits=limits,
    )


def _to_tflite(binding: _Binding, array: np.ndarray) -> np.ndarray:
    """A canonical input array in the TFLite tensor's layout and type."""
    array = array.transpose(binding.perm)
    if not binding.scale:
        return np.ascontiguousarray(array, dtype=binding.dtype)
    q = np.array(array, dtype=np.float32, order="C")  # one working copy, in place from here
    q /= binding.scale
    np.rint(q, out=q)
    q += binding.zero_point
    np.clip(q, *binding.limits, out=q)
    return q.astype(binding.dtype)


def _from_tflite(binding: _Binding, array: np.ndarray) -> np.ndarray:
    """A TFLite output in the canonical layout, dequantized to float32 if quantized."""
    if binding.scale:
        array = (array.astype(np.float32) - binding.zero_point) * np.float32(binding.scale)
    return array.transpose(binding.back)
