"""``openvino-cpu``: OpenVINO on a CPU (or GPU / NPU / AUTO), IR files, NNCF int8.

- The baseline is the ONNX model converted to IR with FP32 weights
  (``edgeproof.targets.openvino_cpu.convert``), run with ``INFERENCE_PRECISION_HINT=f32``.
- Each recipe is the same IR at a lower precision hint (``precision``), or NNCF int8 of it
  (``nncf-ptq``, ``nncf-accuracy-control``: ``edgeproof.targets.openvino_cpu.quantize``).
- Sessions (``edgeproof.targets.openvino_cpu.session``) compile with a latency hint and
  explicit threads, pin a dynamic first axis to 1 and record the precision they really ran.
- The params section and its recipes: ``edgeproof.targets.openvino_cpu.config`` (references
  written as ``edgeproof.targets.openvino_cpu.target:OpenVinoTargetConfig`` still resolve:
  it is imported here).
A candidate is two files, ``model.xml`` (first) and ``model.bin``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeproof.data.dataset import Dataset
from edgeproof.onnx.model import check_onnx
from edgeproof.records import Candidate
from edgeproof.targets.base import (
    Availability,
    RecipeTarget,
    SearchUnit,
    TargetSpec,
    built_by_search,
    fresh_dir,
    group_units,
)
from edgeproof.targets.openvino_cpu.config import (
    BASELINE,
    NAME,
    OpenVinoTargetConfig,
    recipe_record,
)
from edgeproof.targets.openvino_cpu.convert import convert_to_ir
from edgeproof.targets.openvino_cpu.quantize import nncf_accuracy_control, nncf_ptq
from edgeproof.targets.openvino_cpu.session import OpenVinoSession


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

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        check_onnx(model)
        out = fresh_dir(workdir / BASELINE) / "model.xml"
        convert_to_ir(model, out)
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
        failure = None
        if spec.method == "precision":
            for src in baseline.files:  # the same IR, run at a lower precision
                shutil.copyfile(src, out.with_suffix(src.suffix))
            precision = spec.precision
        elif spec.method == "nncf-ptq":
            nncf_ptq(baseline.model_file, out, spec, calibration)
            precision = "int8"
        elif spec.method == "search":
            raise built_by_search(recipe)
        else:
            failure = nncf_accuracy_control(baseline.model_file, out, spec, calibration)
            precision = "int8"
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out, out.with_suffix(".bin")),
            recipe=recipe_record(spec),
            precision=precision,
            failure=failure,
        )

    def search_units(self, recipe: str, baseline: Candidate) -> list[SearchUnit]:
        """The IR's ops NNCF quantizes the inputs of, by friendly name."""
        import openvino as ov

        model = ov.Core().read_model(str(baseline.model_file))
        names = [op.get_friendly_name() for op in model.get_ordered_ops()]
        types = [op.get_type_name() for op in model.get_ordered_ops()]
        quantized = [n for n, t in zip(names, types, strict=True) if t in QUANTIZED_OPS]
        return group_units(quantized, self._recipes[recipe].max_units)

    def build_mix(
        self,
        recipe: str,
        baseline: Candidate,
        calibration: Dataset,
        folder: Path,
        keep_float: tuple[str, ...],
    ) -> Candidate:
        spec = self._recipes[recipe]
        out = fresh_dir(folder) / "model.xml"
        nncf_ptq(baseline.model_file, out, spec, calibration, ignored=keep_float)
        record = {**recipe_record(spec), "ignored_scope": list(keep_float)}
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out, out.with_suffix(".bin")),
            recipe=record,
            precision="int8",
        )

    def open_session(self, candidate: Candidate, threads: int) -> OpenVinoSession:
        return OpenVinoSession(candidate, threads, self.config.device.upper())


# the ops whose inputs NNCF quantizes and that cost the time: a unit is made of these
QUANTIZED_OPS = frozenset(
    {"MatMul", "Convolution", "GroupConvolution", "ConvolutionBackpropData", "Gemm"}
)


SPEC = TargetSpec(name=NAME, config=OpenVinoTargetConfig, backend=OpenVinoCpu, model_format="onnx")
