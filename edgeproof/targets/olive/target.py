"""``olive``: Microsoft Olive workflows, each recipe's output measured with ONNX Runtime.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine, olive-ai 0.13):
- ``olive run --config workflow.json`` works offline; a pass that calibrates reads its data
  through a local ``user_script`` (``edgeproof/targets/olive/user_script.py``). Olive's CLI
  shortcuts for static quantization want a hub dataset, so edgeproof writes the workflow.
- Olive's search needs Olive's evaluator, which fails on local data: every recipe runs with
  ``search_strategy: false``, and edgeproof re-measures and re-evaluates every output with
  its own harness. Olive's own timings (seconds per pass, from its footprint) are kept in
  the recipe record for comparison only.
- Olive sends a telemetry heartbeat on every run unless ``CI=true`` (~7 s offline).
``olive run`` is a subprocess: a crashing pass fails that recipe with Olive's last error
line, and the pipeline goes on with the other recipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from edgeproof.config import PositiveFloat, RecipeTargetConfig, StrictModel
from edgeproof.data.dataset import Dataset
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability, RecipeTarget, TargetSpec, fresh_dir
from edgeproof.targets.onnxruntime_cpu.target import (
    OnnxRuntimeCpu,
    OnnxRuntimeTargetConfig,
    OrtSession,
)

NAME = "olive"
DATA_CONFIG = "edgeproof_calibration"
DATA_SCRIPT = Path(__file__).with_name("user_script.py")  # imported by Olive, not here


def default_recipes() -> list[dict[str, Any]]:
    """The workflow most teams try first with Olive: its static quantization pass with
    Olive's defaults (QDQ, MinMax calibration), written out."""
    defaults = {"quant_format": "QDQ", "calibrate_method": "MinMax"}
    static = {"type": "OnnxStaticQuantization", "config": defaults}
    return [{"name": "static-qdq", "passes": [static]}]


class OlivePass(StrictModel):
    """One Olive pass: its class name and its parameters, as Olive documents them."""

    type: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")] = Field(
        description="The Olive pass class, e.g. `OnnxStaticQuantization`."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="The pass's parameters, as Olive documents them."
    )


class OliveRecipe(StrictModel):
    """One Olive workflow (its passes run in order), giving one candidate.

    Passes that calibrate (static quantization) read ``calibration_samples`` items of the
    calibration split through edgeproof's Olive data script; ``precision`` labels the result.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    passes: Annotated[list[OlivePass], Field(min_length=1)] = Field(
        description="The workflow's passes, run in order (at least one)."
    )
    precision: str = Field(
        "int8", description="The result's precision label, in records and reports."
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        200,
        description="Calibration items the calibrating passes read (the first of the "
        "calibration set).",
    )


class OliveTargetConfig(RecipeTargetConfig):
    """The ``olive`` target: Microsoft Olive workflows (``olive run``), run with ONNX Runtime.

    The baseline is the same FP32 graph as ``onnxruntime-cpu``'s. Olive's search needs its
    own evaluator (which fails on local data in olive-ai 0.13): each recipe runs with
    search off, and edgeproof measures every recipe's output itself.
    """

    recipes: list[OliveRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The Olive workflows, each one candidate beside the `fp32` baseline. "
        "Left out: `OnnxStaticQuantization` with Olive's defaults (QDQ, MinMax); `[]`: the "
        "baseline only.",
    )
    timeout_seconds: PositiveFloat = Field(
        900.0, description="Seconds per `olive run`; a recipe over it fails."
    )


class Olive(RecipeTarget[OliveTargetConfig]):
    """The ``olive`` target."""

    name = NAME

    def available(self) -> Availability:
        try:
            import onnxruntime  # noqa: F401
            from olive.version import __version__
        except ImportError as exc:
            return Availability(
                False, f"olive-ai is not installed ({exc}); pip install edgeproof[olive]"
            )
        return Availability(True, runtime_version=f"olive-ai {__version__}")

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        """The same FP32 graph as ``onnxruntime-cpu``'s baseline, under this target's name."""
        ort_target = OnnxRuntimeCpu(OnnxRuntimeTargetConfig(threads=self.config.threads))
        return ort_target.baseline(model, workdir).model_copy(update={"target": NAME})

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        spec = self._recipes[recipe]
        folder = fresh_dir(workdir / recipe)
        np.savez(folder / "calibration.npz", **calls_stacked(calibration, spec.calibration_samples))
        workflow = folder / "workflow.json"
        workflow.write_text(
            json.dumps(olive_workflow(spec, baseline.model_file, folder), indent=2),
            encoding="utf-8",
        )
        _run_olive(workflow, folder, self.config.timeout_seconds)
        output = folder / "output"
        model = output / "model.onnx"
        if not model.is_file():
            made = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
            raise RuntimeError(
                f"olive produced no ONNX model (found {made}); the olive target measures "
                "ONNX outputs with ONNX Runtime (OpenVINO IR belongs to openvino-cpu)"
            )
        return Candidate(
            target=NAME,
            name=recipe,
            files=(model, *sorted(output.glob("*.data"))),
            recipe=_recipe_record(spec, output / "footprint.json"),
            precision=spec.precision,
        )

    def open_session(self, candidate: Candidate, threads: int) -> OrtSession:
        return OrtSession(candidate.model_file, threads, candidate.precision)


def calls_stacked(calibration: Dataset, samples: int) -> dict[str, np.ndarray]:
    """The first ``samples`` calibration items as batch-1 model calls (the model's layout,
    constants and states in place), stacked on a new axis 0 for the Olive data script."""
    head = calibration.head(samples)
    calls = list(head.batches(1))
    return {name: np.stack([call[name] for call in calls]) for name in calls[0]}


def olive_workflow(spec: OliveRecipe, model: Path, folder: Path) -> dict[str, Any]:
    """The Olive run config of one recipe: its passes in order, search off, CPU only."""
    passes = {}
    for i, olive_pass in enumerate(spec.passes):
        config = {"type": olive_pass.type, **olive_pass.config}
        if "Static" in olive_pass.type or olive_pass.config.get("quant_mode") == "static":
            config.setdefault("data_config", DATA_CONFIG)
        passes[f"p{i}_{olive_pass.type.lower()}"] = config
    cpu = {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
    return {
        "input_model": {"type": "ONNXModel", "model_path": str(model)},
        "systems": {"local": {"type": "LocalSystem", "accelerators": [cpu]}},
        "data_configs": [
            {
                "name": DATA_CONFIG,
                "user_script": str(DATA_SCRIPT),
                "load_dataset_config": {
                    "type": "edgeproof_npz",
                    "params": {"path": str(folder / "calibration.npz")},
                },
                # each item is a whole batch-1 call already (states, constants in place)
                "dataloader_config": {"type": "no_auto_batch_dataloader"},
            }
        ],
        "passes": passes,
        "host": "local",
        "target": "local",
        "search_strategy": False,
        "log_severity_level": 2,
        "cache_dir": str(folder / "cache"),
        "output_dir": str(folder / "output"),
    }


def _run_olive(workflow: Path, folder: Path, timeout: float) -> None:
    """``olive run --config workflow`` in a subprocess; raises with Olive's last error line."""
    env = {**os.environ, "CI": "true", "OLIVE_DISABLE_TELEMETRY": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "olive", "run", "--config", str(workflow)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"olive run did not finish within {timeout:.0f} s") from None
    (folder / "olive.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise RuntimeError(f"olive run failed: {_last_error(done.stderr or done.stdout)}")


def _last_error(log: str) -> str:
    """The last line of Olive's output that says what went wrong."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:200]
    return (lines[-1] if lines else "no output")[:200]


def _recipe_record(spec: OliveRecipe, footprint: Path) -> dict[str, Any]:
    """The recipe as logged, with what Olive resolved and its own seconds per pass."""
    record: dict[str, Any] = {
        "method": "olive",
        "passes": [p.model_dump() for p in spec.passes],
        "calibration_samples": spec.calibration_samples,
        "search": False,
    }
    try:
        nodes = json.loads(footprint.read_text(encoding="utf-8")).values()
    except (OSError, ValueError):
        return record
    ran = [n for n in nodes if n.get("from_pass")]
    record["olive_pass_seconds"] = {
        n["from_pass"]: round(n["end_time"] - n["start_time"], 3) for n in ran
    }
    record["olive_resolved"] = {
        n["from_pass"]: {
            k: v for k, v in (n.get("pass_run_config") or {}).items() if k != "data_config"
        }
        for n in ran
    }
    return record


SPEC = TargetSpec(name=NAME, config=OliveTargetConfig, backend=Olive, model_format="onnx")
