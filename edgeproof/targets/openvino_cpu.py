"""``openvino-cpu``: OpenVINO on a CPU (or GPU / NPU / AUTO), IR files, NNCF int8.

Facts this relies on (DESIGN.md §7, this machine):
- The baseline is the ONNX model converted to IR (``ov.convert_model``) and saved with FP32
  weights: ``ov.save_model`` compresses weights to FP16 unless told not to.
- OpenVINO's CPU plugin runs bf16 by default where the CPU has it: the FP32 baseline sets
  ``INFERENCE_PRECISION_HINT=f32``, and every session records the precision it really ran.
- ``PERFORMANCE_HINT=LATENCY`` and an explicit thread count for batch-1 latency.
- NNCF post-training quantization of the IR (``nncf.quantize``) gave 3.8x over ORT FP32.
A candidate is two files, ``model.xml`` (first) and ``model.bin``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import OpenVinoRecipe, OpenVinoTargetConfig
from edgeproof.data import Dataset
from edgeproof.errors import InputError
from edgeproof.onnx_model import check_onnx
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, InputSpec, RecipeTarget, fresh_dir

NAME = "openvino-cpu"
BASELINE = "fp32"
_HINTS = {"fp32": "f32", "bf16": "bf16", "f16": "f16"}  # candidate precision -> OV hint


class OpenVinoCpu(RecipeTarget[OpenVinoTargetConfig]):
    """The ``openvino-cpu`` target."""

    name = NAME

    def available(self) -> Availability:
        try:
            import openvino as ov
        except ImportError as exc:
            return Availability(
                False, f"openvino is not installed ({exc}); pip install edgeproof[openvino]"
            )
        device = self.config.device.upper()
        devices = ov.Core().available_devices
        if device != "AUTO" and not any(d.startswith(device) for d in devices):
            return Availability(False, f"OpenVINO device {device} not present (have {devices})")
        return Availability(True, runtime_version=ov.get_version())

    def baseline(self, model: Path, workdir: Path) -> Candidate:
        import openvino as ov

        check_onnx(model)
        out = fresh_dir(workdir / BASELINE) / "model.xml"
        try:
            ov.save_model(ov.convert_model(str(model)), str(out), compress_to_fp16=False)
        except Exception as exc:  # OpenVINO's frontends raise their own types
            raise InputError(
                f"OpenVINO cannot convert the model ({_first(exc)}): {model}"
            ) from None
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=(out, out.with_suffix(".bin")),
            recipe={"method": "none", "convert": "ov.convert_model", "weights": "fp32"},
            precision="fp32",
            is_baseline=True,
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        spec = self._recipes[recipe]
        out = fresh_dir(workdir / recipe) / "model.xml"
        if spec.method == "precision":
            for src in baseline.files:  # the same IR, run at a lower precision
                shutil.copyfile(src, out.with_suffix(src.suffix))
            precision = spec.precision
        else:
            _nncf_ptq(baseline.model_file, out, spec, calibration)
            precision = "int8"
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out, out.with_suffix(".bin")),
            recipe=_recipe_record(spec),
            precision=precision,
        )

    def open_session(self, candidate: Candidate, threads: int) -> OpenVinoSession:
        return OpenVinoSession(candidate, threads, self.config.device.upper())


def _nncf_ptq(src: Path, out: Path, spec: OpenVinoRecipe, calibration: Dataset) -> None:
    """NNCF post-training int8 of an IR file, saved with its weights as they come out."""
    import nncf
    import openvino as ov

    items = list(calibration.head(spec.calibration_samples).batches(1))
    preset = {
        "performance": nncf.QuantizationPreset.PERFORMANCE,
        "mixed": nncf.QuantizationPreset.MIXED,
    }[spec.preset]
    quantized = nncf.quantize(
        ov.Core().read_model(str(src)),
        nncf.Dataset(items),
        preset=preset,
        subset_size=len(items),
        fast_bias_correction=spec.fast_bias_correction,
    )
    ov.save_model(quantized, str(out), compress_to_fp16=False)


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
        compiled = core.compile_model(core.read_model(str(candidate.model_file)), device, config)
        self._request = compiled.create_infer_request()
        self._outputs = list(compiled.outputs)
        self.inputs = [
            InputSpec(
                port.get_any_name(),
                np.dtype(port.get_element_type().to_dtype()),
                tuple(None if d.is_dynamic else d.get_length() for d in port.get_partial_shape()),
            )
            for port in compiled.inputs
        ]
        ran = compiled.get_property("INFERENCE_PRECISION_HINT") if device == "CPU" else None
        self.info: dict[str, Any] = {
            "runtime": "openvino",
            "runtime_version": ov.get_version(),
            "device": device,
            "precision": candidate.precision,
            "inference_precision": _type_name(ran),
            "threads": threads,
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        results = self._request.infer(dict(feeds))
        return [np.asarray(results[port]) for port in self._outputs]


def _recipe_record(spec: OpenVinoRecipe) -> dict[str, Any]:
    record = spec.model_dump(exclude={"name"})
    if spec.method == "precision":
        for key in ("preset", "fast_bias_correction", "calibration_samples"):
            record.pop(key)
    else:
        record.pop("precision")
    return record


def _type_name(value: Any) -> str | None:
    """``ov.Type`` as OpenVINO spells it (f32, bf16), or None."""
    if value is None:
        return None
    return str(value.get_type_name()) if hasattr(value, "get_type_name") else str(value)


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
