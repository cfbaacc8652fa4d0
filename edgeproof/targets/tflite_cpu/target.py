"""``tflite-cpu``: the ONNX model converted to TFLite, run with LiteRT on the CPU.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine):
- ONNX -> TFLite: ``onnx2tf`` writes a SavedModel with channel-last inputs, then
  ``tf.lite.TFLiteConverter.from_saved_model`` builds every candidate from that one
  SavedModel (kept in the baseline's folder as ``saved_model/``): ``fp32`` (the baseline,
  no optimization), ``dynamic-range`` (``Optimize.DEFAULT`` without data: int8 weights,
  float activations and I/O) and ``full-int8`` (representative dataset = the first
  ``calibration_samples`` calibration items, ``TFLITE_BUILTINS_INT8``, int8 input and
  output). onnx2tf's own int8 calibration downloads images: it is never used.
- All TensorFlow work runs in a subprocess of ``toolchain_python`` (``edgeproof.targets.litert``):
  the pipeline process never imports TensorFlow, and a dedicated runner may keep the
  converter in its own environment. LiteRT (``ai-edge-litert``) runs the candidates.
- The batch stays dynamic, so LiteRT resizes to any batch.
A candidate is two files: ``model.tflite`` (first) and ``io.json`` (the ONNX inputs and
outputs, so sessions take and return tensors in the ONNX layout and names).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from edgeproof.config import PositiveFloat, RecipeTargetConfig, StrictModel
from edgeproof.data.dataset import Dataset
from edgeproof.onnx.model import check_onnx
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, RecipeTarget, TargetSpec, fresh_dir
from edgeproof.targets.litert.litert import (
    SAVED_MODEL,
    converter_record,
    litert_availability,
    quantize,
)
from edgeproof.targets.litert.model_io import SIDECAR, ModelIo
from edgeproof.targets.litert.session import LiteRtSession
from edgeproof.targets.litert.shapes import pinned_model
from edgeproof.targets.litert.toolchain import (
    ConversionError,
    build,
    convert,
    onnx_request,
    toolchain_python,
)

NAME = "tflite-cpu"
BASELINE = "fp32"


def default_recipes() -> list[dict[str, Any]]:
    """The conversions most teams try first with LiteRT: dynamic-range (int8 weights, no
    data) and full-int8 (representative dataset = the calibration split)."""
    return [
        {"name": "dynamic-range", "method": "dynamic-range"},
        {"name": "full-int8", "method": "full-int8"},
    ]


class TfliteRecipe(StrictModel):
    """One LiteRT conversion: ``dynamic-range`` (int8 weights, float activations and I/O) or
    ``full-int8`` (int8 weights, activations and I/O; calibrated on ``calibration_samples``
    items of the calibration split as the representative dataset)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    method: Literal["dynamic-range", "full-int8"] = Field(
        description="`dynamic-range`: int8 weights, float activations and I/O (no data). "
        "`full-int8`: int8 weights, activations and I/O, calibrated on the calibration set "
        "(the representative dataset)."
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        200,
        description="Items of the representative dataset (the first of the calibration set).",
        json_schema_extra={"methods": ["full-int8"]},
    )


class TfliteTargetConfig(RecipeTargetConfig):
    """The ``tflite-cpu`` target: the ONNX model converted to TFLite (onnx2tf + TensorFlow),
    FP32 baseline, run with LiteRT (``ai-edge-litert``) on ``threads`` threads.

    ``toolchain_python``: the interpreter of the environment holding the converter
    (TensorFlow), as a dedicated runner would have it; ``None`` = this environment.
    """

    work_pool: str = Field(
        "edge-arm-cpu",
        description="The Prefect work pool of the device that measures this target; at most "
        "one measurement at a time runs per pool (tag `edgeproof-device:<work_pool>`).",
    )
    recipes: list[TfliteRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The LiteRT conversions, each one candidate beside the `fp32` baseline. "
        "Left out: `dynamic-range` and `full-int8`; `[]`: the baseline only.",
    )
    toolchain_python: Path | None = Field(
        None,
        description="The interpreter of the environment holding the converter (TensorFlow, "
        "onnx2tf), as a dedicated runner would have it; null: this environment.",
    )
    convert_timeout_seconds: PositiveFloat = Field(
        900.0,
        description="Seconds per conversion subprocess (onnx2tf, TFLiteConverter); a "
        "conversion over it fails.",
    )


class TfliteCpu(RecipeTarget[TfliteTargetConfig]):
    """The ``tflite-cpu`` target."""

    name = NAME

    def available(self) -> Availability:
        return litert_availability(self._python)

    @property
    def _python(self) -> str:
        return toolchain_python(self.config.toolchain_python)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        """The FP32 TFLite model. With data, onnx2tf gets the model's dynamic dimensions
        pinned to the data's (batch left dynamic); if that does not convert, the batch is
        fixed at 1 too. Each step that failed is recorded with its reason."""
        check_onnx(model)
        folder = fresh_dir(workdir / BASELINE)
        out = folder / "model.tflite"
        skipped: list[str] = []
        steps = [(False, "dynamic batch"), (True, "batch fixed at 1")] if calibration else []
        for fixed_batch, what in steps:
            source = folder / "prepared" / "model.onnx"
            source.parent.mkdir(exist_ok=True)
            pinned = pinned_model(model, source, calibration, fixed_batch=fixed_batch)
            io = ModelIo.from_onnx(source)
            try:
                reply = self._convert_fp32(source, folder, out, io)
            except ConversionError as exc:
                skipped.append(f"onnx2tf with {what}: {str(exc).split(': ', 1)[-1]}")
                continue
            record = {"method": "fp32", "pinned_shapes": pinned, "preprocess_skipped": skipped}
            break
        else:
            if skipped:  # every step failed: each one's reason
                raise ConversionError(
                    f"{NAME} {BASELINE} conversion of {model.name}: {'; '.join(skipped)}"
                )
            io = ModelIo.from_onnx(model)  # no data to pin to: the model as given
            reply = self._convert_fp32(model, folder, out, io)
            record = {"method": "fp32"}
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=(out, io.save(folder)),
            recipe=record | converter_record(reply),
            precision="fp32",
            is_baseline=True,
        )

    def _convert_fp32(self, model: Path, folder: Path, out: Path, io: ModelIo) -> dict[str, Any]:
        request = onnx_request(model, folder / SAVED_MODEL, io)
        request["builds"] = [build("fp32", out)]
        return convert(
            request,
            python=self._python,
            timeout=self.config.convert_timeout_seconds,
            label=f"{NAME} {BASELINE} conversion of {model.name}",
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


def _recipe_record(spec: TfliteRecipe) -> dict[str, Any]:
    record: dict[str, Any] = {"method": spec.method}
    if spec.method == "full-int8":
        record |= {"calibration_samples": spec.calibration_samples, "io": "int8"}
    else:
        record |= {"weights": "int8", "activations": "float32"}
    return record


SPEC = TargetSpec(name=NAME, config=TfliteTargetConfig, backend=TfliteCpu, model_format="onnx")
