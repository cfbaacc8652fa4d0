"""``tflite-cpu``: the ONNX model converted to TFLite, run with LiteRT on the CPU.

Facts this relies on (DESIGN.md §7, this machine):
- ONNX -> TFLite: ``onnx2tf`` writes a SavedModel with channel-last inputs, then
  ``tf.lite.TFLiteConverter.from_saved_model`` builds every candidate from that one
  SavedModel (kept in the baseline's folder as ``saved_model/``): ``fp32`` (the baseline,
  no optimization), ``dynamic-range`` (``Optimize.DEFAULT`` without data: int8 weights,
  float activations and I/O) and ``full-int8`` (representative dataset = the first
  ``calibration_samples`` calibration items, ``TFLITE_BUILTINS_INT8``, int8 input and
  output). onnx2tf's own int8 calibration downloads images: it is never used.
- All TensorFlow work runs in a subprocess of ``toolchain_python`` (``edgeproof.tflite``):
  the pipeline process never imports TensorFlow, and a dedicated runner may keep the
  converter in its own environment. LiteRT (``ai-edge-litert``) runs the candidates.
- The batch stays dynamic, so LiteRT resizes to any batch.
A candidate is two files: ``model.tflite`` (first) and ``io.json`` (the ONNX inputs and
outputs, so sessions take and return tensors in the ONNX layout and names).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproof.config import TfliteRecipe, TfliteTargetConfig
from edgeproof.data import Dataset
from edgeproof.onnx_model import check_onnx
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, RecipeTarget, fresh_dir
from edgeproof.tflite.model_io import SIDECAR, ModelIo
from edgeproof.tflite.session import LiteRtSession
from edgeproof.tflite.toolchain import (
    ConversionError,
    build,
    convert,
    converter_missing,
    onnx_request,
    toolchain_python,
    write_calibration,
)

NAME = "tflite-cpu"
BASELINE = "fp32"
SAVED_MODEL = "saved_model"  # in the baseline's folder; every recipe converts from it


def litert_availability(python: str, *more: Callable[[], str | None]) -> Availability:
    """LiteRT importable here, the converter in ``python``'s environment, then each of
    ``more`` (a check returning why not, or None): the first reason found, or available."""
    try:
        import ai_edge_litert
    except ImportError as exc:
        return Availability(
            False, f"ai-edge-litert is not installed ({exc}); pip install edgeproof[tflite]"
        )
    for check in (lambda: converter_missing(python), *more):
        reason = check()
        if reason:
            return Availability(False, reason)
    return Availability(True, runtime_version=ai_edge_litert.__version__)


class TfliteCpu(RecipeTarget[TfliteTargetConfig]):
    """The ``tflite-cpu`` target."""

    name = NAME

    def available(self) -> Availability:
        return litert_availability(self._python)

    @property
    def _python(self) -> str:
        return toolchain_python(self.config.toolchain_python)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        check_onnx(model)
        io = ModelIo.from_onnx(model)
        folder = fresh_dir(workdir / BASELINE)
        out = folder / "model.tflite"
        request = onnx_request(model, folder / SAVED_MODEL, io)
        request["builds"] = [build("fp32", out)]
        reply = convert(
            request,
            python=self._python,
            timeout=self.config.convert_timeout_seconds,
            label=f"{NAME} {BASELINE} conversion of {model.name}",
        )
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=(out, io.save(folder)),
            recipe={"method": "fp32"} | converter_record(reply),
            precision="fp32",
            is_baseline=True,
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        spec = self._recipes[recipe]
        folder = fresh_dir(workdir / recipe)
        out = folder / "model.tflite"
        reply = quantize(
            baseline,
            spec.method,
            out,
            calibration if spec.method == "full-int8" else None,
            spec.calibration_samples,
            python=self._python,
            timeout=self.config.convert_timeout_seconds,
            label=f"{NAME} {recipe} conversion",
        )
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out, shutil.copyfile(baseline.files[1], folder / SIDECAR)),
            recipe=_recipe_record(spec) | converter_record(reply),
            precision="int8",
        )

    def open_session(self, candidate: Candidate, threads: int) -> LiteRtSession:
        return LiteRtSession(
            candidate.model_file, ModelIo.load(candidate.files[1]), threads, candidate.precision
        )


def quantize(
    baseline: Candidate,
    method: str,
    out: Path,
    calibration: Dataset | None,
    samples: int,
    *,
    python: str,
    timeout: float,
    label: str,
) -> dict[str, Any]:
    """Build ``out`` with ``method`` from the SavedModel next to ``baseline``'s model file."""
    saved_model = baseline.model_file.parent / SAVED_MODEL
    if not (saved_model / "saved_model.pb").is_file():
        raise ConversionError(f"{label}: the baseline's SavedModel is missing: {saved_model}")
    io = ModelIo.load(baseline.files[1])
    with tempfile.TemporaryDirectory(prefix="edgeproof-calibration-") as tmp:
        data = None
        if calibration is not None:
            data = write_calibration(calibration, samples, io, Path(tmp) / "calibration.npz")
        request = {
            "saved_model": str(saved_model.absolute()),
            "inputs": io.to_json()["inputs"],
            "builds": [build(method, out, data)],
        }
        return convert(request, python=python, timeout=timeout, label=label)


def converter_record(reply: dict[str, Any]) -> dict[str, Any]:
    """How a candidate was converted, as logged: tools and their versions."""
    versions = reply.get("versions", {})
    record: dict[str, Any] = {"converter": "onnx2tf + TFLiteConverter"}
    record |= {f"{tool}_version": version for tool, version in sorted(versions.items())}
    if "simplified" in reply:
        record["onnxsim"] = reply["simplified"]
    return record


def _recipe_record(spec: TfliteRecipe) -> dict[str, Any]:
    record: dict[str, Any] = {"method": spec.method}
    if spec.method == "full-int8":
        record |= {"calibration_samples": spec.calibration_samples, "io": "int8"}
    else:
        record |= {"weights": "int8", "activations": "float32"}
    return record
