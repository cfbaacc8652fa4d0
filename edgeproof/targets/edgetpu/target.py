"""``edgetpu``: a Coral Edge TPU, the full-int8 TFLite model compiled by ``edgetpu_compiler``.

Facts this relies on (docs/architecture.md, "Runtime facts", Coral docs, this machine):
- The Edge TPU runs only fully int8 models with static shapes: the model is converted like
  ``tflite-cpu``'s ``full-int8`` (onnx2tf + TFLiteConverter in the toolchain subprocess,
  representative dataset = the first ``calibration_samples`` calibration items) but at a
  fixed batch of 1; LiteRT sessions run larger batches item by item.
- Baseline ``cpu-int8`` = that model on the CPU with LiteRT; the one candidate ``edgetpu``
  = the same model after ``edgetpu_compiler``, run with ``load_delegate(delegate_library)``.
  Fidelity is thus the agreement of the TPU with CPU int8, and the speedup the TPU's gain.
- The compiler log's op coverage (``compiler_log``) is the candidate's
  ``recipe["op_coverage"]``: ops after the first one that falls back run on the CPU.
- The int8 baseline needs calibration data: ``build_candidates`` passes it to
  ``baseline(model, workdir, calibration)``, which builds the model at once. Called without
  it, ``baseline`` converts ONNX -> SavedModel only and ``optimize("edgetpu", ...)`` writes
  the int8 model first, then compiles it.
- Neither the compiler nor ``libedgetpu`` is on this machine: ``available()`` says which
  is missing; the delegate is probed in a short subprocess (it opens the device).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from edgeproof.config import PositiveFloat, TargetCommon
from edgeproof.data.dataset import Dataset
from edgeproof.errors import ConfigError, InputError
from edgeproof.onnx.model import check_onnx
from edgeproof.records import Candidate
from edgeproof.runtime.oneshot import PACKAGE_ROOT
from edgeproof.targets.base import Availability, TargetSpec, fresh_dir
from edgeproof.targets.litert.edgetpu_compiler import compile_for_edgetpu, compiler_path
from edgeproof.targets.litert.litert import (
    SAVED_MODEL,
    converter_record,
    litert_availability,
    quantize,
)
from edgeproof.targets.litert.model_io import SIDECAR, ModelIo
from edgeproof.targets.litert.session import Delegate, LiteRtSession
from edgeproof.targets.litert.toolchain import (
    convert,
    onnx_request,
    toolchain_python,
)

NAME = "edgetpu"
BASELINE = "cpu-int8"
RECIPE = "edgetpu"


class EdgeTpuTargetConfig(TargetCommon):
    """The ``edgetpu`` target (Coral): the full-int8 TFLite model compiled by
    ``edgetpu_compiler`` and run with the Edge TPU delegate; the baseline is the same
    full-int8 model on the CPU (LiteRT), so fidelity = agreement of TPU with CPU int8.
    """

    work_pool: str = Field(
        "edge-coral",
        description="The Prefect work pool of the device that measures this target; at most "
        "one measurement at a time runs per pool (tag `edgeproof-device:<work_pool>`).",
    )
    device: str = Field(
        "edgetpu",
        description="Which Edge TPU: `edgetpu` (the delegate's default), or its device "
        "option, e.g. `usb` or `pci:0` on a runner with several.",
    )
    compiler: str = Field(
        "edgetpu_compiler", description="The Edge TPU compiler, looked up on PATH."
    )
    delegate_library: str = Field(
        "libedgetpu.so.1", description="The Edge TPU delegate library LiteRT loads."
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        200,
        description="Items of the full-int8 model's representative dataset (the first of "
        "the calibration set).",
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
    compile_timeout_seconds: PositiveFloat = Field(
        600.0, description="Seconds the Edge TPU compiler may take."
    )


class EdgeTpu:
    """The ``edgetpu`` target."""

    name = NAME

    def __init__(self, config: EdgeTpuTargetConfig) -> None:
        self.config = config

    def recipes(self) -> list[str]:
        return [RECIPE]

    def available(self) -> Availability:
        if compiler_path(self.config.compiler) is None:
            return Availability(False, f"Edge TPU compiler {self.config.compiler!r} not on PATH")
        return litert_availability(self._python, self._delegate_missing)

    @property
    def _python(self) -> str:
        return toolchain_python(self.config.toolchain_python)

    def _delegate(self) -> Delegate:
        device = self.config.device
        options = () if device == "edgetpu" else (("device", device),)  # e.g. "usb", "pci:0"
        return Delegate(NAME, self.config.delegate_library, options)

    def _delegate_missing(self) -> str | None:
        """Why the delegate cannot be loaded (probed in a subprocess: it opens the device)."""
        delegate = self._delegate()
        code = (
            "import sys\n"
            "from edgeproof.targets.litert.session import Delegate\n"
            f"try: Delegate{(delegate.name, delegate.library, delegate.options)!r}.load()\n"
            "except Exception as exc: print(exc); sys.exit(1)\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), *_pythonpath()])}
        try:
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
            )
        except subprocess.TimeoutExpired:
            return f"loading the Edge TPU delegate {delegate.library} hung for 60 s"
        if done.returncode == 0:
            return None
        said = (done.stdout.strip() or done.stderr.strip()).splitlines() or ["?"]
        return said[-1][:300]

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        check_onnx(model)
        io = ModelIo.from_onnx(model)
        folder = fresh_dir(workdir / BASELINE)
        out = folder / "model.tflite"
        reply = convert(
            onnx_request(model, folder / SAVED_MODEL, io, batch_size=1),
            python=self._python,
            timeout=self.config.convert_timeout_seconds,
            label=f"{NAME} conversion of {model.name}",
        )
        candidate = Candidate(
            target=NAME,
            name=BASELINE,
            files=(out, io.save(folder)),
            recipe=self._int8_record() | converter_record(reply),
            precision="int8",
            is_baseline=True,
        )
        if calibration is not None:
            self._build_int8(candidate, calibration)
        return candidate

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        if recipe != RECIPE:
            raise ConfigError(f"{NAME} has one recipe, {RECIPE!r}; got {recipe!r}")
        if not baseline.model_file.is_file():
            self._build_int8(baseline, calibration)
        folder = fresh_dir(workdir / RECIPE)
        compiled, log = compile_for_edgetpu(
            baseline.model_file, folder, self.config.compiler, self.config.compile_timeout_seconds
        )
        return Candidate(
            target=NAME,
            name=RECIPE,
            files=(compiled, shutil.copyfile(baseline.files[1], folder / SIDECAR)),
            recipe={
                "method": "edgetpu_compiler",
                "source": BASELINE,
                "flags": "-s",
                "op_coverage": log.to_record(),
            },
            precision="int8",
        )

    def open_session(self, candidate: Candidate, threads: int) -> LiteRtSession:
        if not candidate.model_file.is_file():
            raise InputError(
                f"{candidate.name} model was never built (the {RECIPE} recipe builds the int8 "
                f"model from calibration data; it failed or did not run): {candidate.model_file}"
            )
        on_tpu = candidate.name == RECIPE and not candidate.is_baseline
        return LiteRtSession(
            candidate.model_file,
            ModelIo.load(candidate.files[1]),
            threads,
            candidate.precision,
            delegate=self._delegate() if on_tpu else None,
        )

    def _build_int8(self, baseline: Candidate, calibration: Dataset) -> dict[str, Any]:
        """Write the full-int8 model at the baseline's model file."""
        return quantize(
            baseline,
            "full-int8",
            baseline.model_file,
            calibration,
            self.config.calibration_samples,
            python=self._python,
            timeout=self.config.convert_timeout_seconds,
            label=f"{NAME} {BASELINE} conversion",
        )

    def _int8_record(self) -> dict[str, Any]:
        return {
            "method": "full-int8",
            "calibration_samples": self.config.calibration_samples,
            "io": "int8",
            "batch": 1,
        }


def _pythonpath() -> list[str]:
    found = os.environ.get("PYTHONPATH", "")
    return [p for p in found.split(os.pathsep) if p]


SPEC = TargetSpec(name=NAME, config=EdgeTpuTargetConfig, backend=EdgeTpu, model_format="onnx")
