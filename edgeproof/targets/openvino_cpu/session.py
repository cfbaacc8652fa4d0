"""A compiled OpenVINO model with one infer request: the ``openvino-cpu`` target's session.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine):
- OpenVINO's CPU plugin runs bf16 by default where the CPU has it: the FP32 baseline sets
  ``INFERENCE_PRECISION_HINT=f32``, and every session records the precision it really ran.
- ``PERFORMANCE_HINT=LATENCY`` and an explicit thread count for batch-1 latency.
- A model compiled with a dynamic batch axis pays ~0.03 ms more per infer than the same
  model reshaped to batch 1 (0.252-0.258 vs 0.223-0.230 ms for the example's int8 IR);
  ``benchmark_app -b 1`` reshapes. Sessions pin a dynamic first axis to 1 and run larger
  batches item by item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec

_HINTS = {"fp32": "f32", "bf16": "bf16", "f16": "f16"}  # candidate precision -> OV hint


class OpenVinoSession:
    """A compiled OpenVINO model with one infer request, latency hint, explicit threads."""

    def __init__(self, candidate: Candidate, threads: int, device: str) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if device in ("CPU", "AUTO"):
            config["INFERENCE_NUM_THREADS"] = threads
        hint = _HINTS.get(candidate.precision)
        if hint is not None:
            config["INFERENCE_PRECISION_HINT"] = hint
        model = core.read_model(str(candidate.model_file))
        self.inputs = [  # as the model declares them: ``run`` takes any batch
            InputSpec(
                port.get_any_name(),
                np.dtype(port.get_element_type().to_dtype()),
                tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape()),
            )
            for port in model.inputs
        ]
        self._pinned = _pin_batch(model)
        if self._pinned is None:  # OpenVINO refused the reshape: compiled as it is
            model, self._pinned = core.read_model(str(candidate.model_file)), set()
        compiled = core.compile_model(model, device, config)
        self._request = compiled.create_infer_request()
        self._tensor = ov.Tensor
        self._outputs = list(compiled.outputs)
        self.output_names = [_port_name(port, i) for i, port in enumerate(self._outputs)]
        ran = compiled.get_property("INFERENCE_PRECISION_HINT") if device == "CPU" else None
        self.info: dict[str, Any] = {
            "runtime": "openvino",
            "runtime_version": ov.get_version(),
            "device": device,
            "precision": candidate.precision,
            "inference_precision": _type_name(ran),
            "threads": threads,
            "timed": "InferRequest.latency (the C++ infer call, as benchmark_app times it)",
            "batch_pinned_to_1": sorted(self._pinned),
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs for a batch: item by item when the batch axis is pinned to 1."""
        count = len(feeds[next(iter(self._pinned))]) if self._pinned else 1
        if count == 1:
            return self._run_one(feeds)
        parts = [
            self._run_one({k: v[i : i + 1] if k in self._pinned else v for k, v in feeds.items()})
            for i in range(count)
        ]
        return [np.concatenate(chunk) for chunk in zip(*parts, strict=True)]

    def _run_one(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One inference as a lean Python caller makes it: inputs handed over by index as
        tensors sharing the arrays' memory, a bare ``infer()``, outputs copied out (the
        convenience ``infer(dict)`` looks up every input and output by name on each call,
        ~0.06 ms more here)."""
        self._hand_over(self.prepare(feeds))
        self._request.infer()
        return [
            self._request.get_output_tensor(index).data.copy()
            for index in range(len(self._outputs))
        ]

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, Any]]:
        """Each input as an OpenVINO tensor sharing its array's memory (array kept too)."""
        arrays = [np.ascontiguousarray(feeds[s.name], dtype=s.dtype) for s in self.inputs]
        return [(array, self._tensor(array, shared_memory=True)) for array in arrays]

    def timed_run(self, prepared: list[tuple[np.ndarray, Any]]) -> float:
        """OpenVINO's own measure of the C++ ``infer`` call (``InferRequest.latency``):
        the Python binding's ~0.03 ms around it is the caller's, as in benchmark_app."""
        self._hand_over(prepared)
        self._request.infer()
        return float(self._request.latency)

    def _hand_over(self, prepared: list[tuple[np.ndarray, Any]]) -> None:
        for index, (_array, tensor) in enumerate(prepared):
            self._request.set_input_tensor(index, tensor)


def _pin_batch(model: Any) -> set[str] | None:
    """Reshape, in place, every input whose first axis is dynamic to 1 there (as
    ``benchmark_app -b 1`` does); the names of those inputs, or None if OpenVINO refuses."""
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_dynamic or shape.rank.get_length() == 0 or not shape[0].is_dynamic:
            continue
        shape[0] = 1
        shapes[port.get_any_name()] = shape
    if not shapes:
        return set()
    try:
        model.reshape(shapes)
    except RuntimeError:
        return None
    return set(shapes)


def _port_name(port: Any, index: int) -> str:
    """An output's tensor name (as in the ONNX model), or ``output_<index>`` if it has none."""
    try:
        return str(port.get_any_name())
    except RuntimeError:
        return f"output_{index}"


def _type_name(value: Any) -> str | None:
    """``ov.Type`` as OpenVINO spells it (f32, bf16), or None."""
    if value is None:
        return None
    return str(value.get_type_name()) if hasattr(value, "get_type_name") else str(value)
