"""``openvino-cpu``: OpenVINO on a CPU (or GPU / NPU / AUTO), IR files, NNCF int8.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine):
- The baseline is the ONNX model converted to IR (``ov.convert_model``) and saved with FP32
  weights: ``ov.save_model`` compresses weights to FP16 unless told not to.
- OpenVINO's CPU plugin runs bf16 by default where the CPU has it: the FP32 baseline sets
  ``INFERENCE_PRECISION_HINT=f32``, and every session records the precision it really ran.
- ``PERFORMANCE_HINT=LATENCY`` and an explicit thread count for batch-1 latency.
- A model compiled with a dynamic batch axis pays ~0.03 ms more per infer than the same
  model reshaped to batch 1 (0.252-0.258 vs 0.223-0.230 ms for the example's int8 IR);
  ``benchmark_app -b 1`` reshapes. Sessions pin a dynamic first axis to 1 and run larger
  batches item by item.
- NNCF post-training quantization of the IR (``nncf.quantize``) gave 3.8x over ORT FP32.
- NNCF accuracy control only *logs* that it could not reach ``max_drop`` and still returns
  a model: edgeproof re-scores the result on the calibration split itself and a miss
  becomes the candidate's ``failure`` (the gate fails it with that reason).
A candidate is two files, ``model.xml`` (first) and ``model.bin``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from edgeproof.config import (
    AccuracyGate,
    Fraction,
    Params,
    RecipeTargetConfig,
    StrictModel,
)
from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError
from edgeproof.onnx.model import check_onnx
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec
from edgeproof.targets.base import Availability, RecipeTarget, TargetSpec, fresh_dir

NAME = "openvino-cpu"
BASELINE = "fp32"
_HINTS = {"fp32": "f32", "bf16": "bf16", "f16": "f16"}  # candidate precision -> OV hint


class OpenVinoRecipe(StrictModel):
    """One OpenVINO recipe: a lower inference precision, or NNCF post-training int8.

    ``precision``: the same IR run with ``INFERENCE_PRECISION_HINT`` bf16 or f16.
    ``nncf-ptq``: ``nncf.quantize`` on ``calibration_samples`` items (its ``subset_size``)
    with ``preset`` and ``fast_bias_correction``.
    ``nncf-accuracy-control``: ``nncf.quantize_with_accuracy_control``, which reverts layers
    to floating point until the top-1 drop on the (labelled) calibration split is at most
    ``max_drop`` (absolute; default: ``gates.accuracy.max_drop_abs``), in at most
    ``max_iterations`` rounds (default: NNCF's, unbounded).
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    method: Literal["precision", "nncf-ptq", "nncf-accuracy-control"] = Field(
        description="`precision`: the same IR run at a lower inference precision. "
        "`nncf-ptq`: NNCF post-training int8 (`nncf.quantize`). `nncf-accuracy-control`: "
        "NNCF int8 that reverts layers to float until the top-1 drop on the labelled "
        "calibration split is at most `max_drop`."
    )
    precision: Literal["bf16", "f16"] = Field(
        "bf16",
        description="The candidate's `INFERENCE_PRECISION_HINT` (the baseline runs f32).",
        json_schema_extra={"methods": ["precision"]},
    )
    preset: Literal["performance", "mixed"] = Field(
        "performance",
        description="NNCF quantization preset: `performance` (symmetric) or `mixed` "
        "(asymmetric activations).",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control"]},
    )
    fast_bias_correction: bool = Field(
        True,
        description="NNCF's fast bias correction (false: its slower, more exact algorithm).",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control"]},
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        300,
        description="Calibration items NNCF uses (its `subset_size`), the first of the "
        "calibration set.",
        json_schema_extra={"methods": ["nncf-ptq", "nncf-accuracy-control"]},
    )
    max_drop: Fraction | None = Field(
        None,
        description="Largest absolute top-1 drop on the calibration split; null: "
        "`gates.accuracy.max_drop_abs`. A miss fails the candidate.",
        json_schema_extra={"methods": ["nncf-accuracy-control"]},
    )
    max_iterations: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Rounds of reverting layers at most; null: NNCF's default (unbounded).",
        json_schema_extra={"methods": ["nncf-accuracy-control"]},
    )


class OpenVinoTargetConfig(RecipeTargetConfig):
    """The ``openvino-cpu`` target: OpenVINO IR, FP32 baseline (precision hint f32)."""

    device: str = Field(
        "CPU",
        description="The OpenVINO device: CPU, GPU, NPU or AUTO (the target is unavailable, "
        "saying why, when it is absent).",
    )
    recipes: list[OpenVinoRecipe] = Field(
        default_factory=list,
        description="The recipes, each one candidate beside the `fp32` baseline.",
    )

    @classmethod
    def complete_raw(cls, section: Any, raw_params: Mapping[str, Any]) -> Any:
        """Accuracy-control recipes without ``max_drop`` take the accuracy gate's."""
        try:
            recipes = section["recipes"]
            gate = (raw_params.get("gates") or {}).get("accuracy") or {}
            max_drop = gate.get("max_drop_abs", AccuracyGate().max_drop_abs)
        except (TypeError, KeyError, AttributeError):
            return section
        valid = isinstance(max_drop, int | float) and not isinstance(max_drop, bool)
        if not isinstance(recipes, list) or not valid or not 0.0 <= max_drop <= 1.0:
            return section  # a bad gate value is reported at the gate, not at the recipe
        filled = [{**r, "max_drop": max_drop} if _lacks_max_drop(r) else r for r in recipes]
        return {**section, "recipes": filled}

    def check_with(self, name: str, params: Params) -> None:
        """Accuracy control needs a max_drop: its own or the accuracy gate's."""
        for recipe in self.recipes:
            if recipe.method == "nncf-accuracy-control" and recipe.max_drop is None:
                raise ValueError(
                    f"targets.{name}.recipes.{recipe.name}: nncf-accuracy-control needs "
                    "max_drop (gates.accuracy.max_drop_abs is off)"
                )


def _lacks_max_drop(recipe: Any) -> bool:
    return (
        isinstance(recipe, dict)
        and recipe.get("method") == "nncf-accuracy-control"
        and "max_drop" not in recipe
    )


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
        import openvino as ov

        check_onnx(model)
        out = fresh_dir(workdir / BASELINE) / "model.xml"
        try:
            ov.save_model(ov.convert_model(str(model)), str(out), compress_to_fp16=False)
        except Exception as exc:  # OpenVINO's frontends raise their own types
            raise InputError(
                f"OpenVINO cannot convert the model ({conversion_failure(exc, model)}): {model}"
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
        failure = None
        if spec.method == "precision":
            for src in baseline.files:  # the same IR, run at a lower precision
                shutil.copyfile(src, out.with_suffix(src.suffix))
            precision = spec.precision
        elif spec.method == "nncf-ptq":
            _nncf_ptq(baseline.model_file, out, spec, calibration)
            precision = "int8"
        else:
            failure = nncf_accuracy_control(baseline.model_file, out, spec, calibration)
            precision = "int8"
        return Candidate(
            target=NAME,
            name=recipe,
            files=(out, out.with_suffix(".bin")),
            recipe=_recipe_record(spec),
            precision=precision,
            failure=failure,
        )

    def open_session(self, candidate: Candidate, threads: int) -> OpenVinoSession:
        return OpenVinoSession(candidate, threads, self.config.device.upper())


def _nncf_ptq(src: Path, out: Path, spec: OpenVinoRecipe, calibration: Dataset) -> None:
    """NNCF post-training int8 of an IR file, saved with its weights as they come out."""
    import nncf
    import openvino as ov

    items = list(calibration.head(spec.calibration_samples).batches(1))
    quantized = nncf.quantize(
        ov.Core().read_model(str(src)),
        nncf.Dataset(items),
        preset=_preset(spec),
        subset_size=len(items),
        fast_bias_correction=spec.fast_bias_correction,
    )
    ov.save_model(quantized, str(out), compress_to_fp16=False)


def nncf_accuracy_control(
    src: Path, out: Path, spec: OpenVinoRecipe, calibration: Dataset
) -> str | None:
    """``nncf.quantize_with_accuracy_control`` of an IR file; why it missed max_drop, or None.

    NNCF validates on the calibration split (it needs labels there); the eval split stays
    untouched for edgeproof's own, independent verdict. The returned model is also re-scored
    here with the same top-1 metric at f32 (NNCF compiles with the CPU's default precision,
    bf16 here): a miss by either NNCF's account (its log) or edgeproof's is a failure, and
    the reason quotes both.
    """
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    if calibration.labels is None:
        raise InputError(
            "nncf-accuracy-control needs labels in the calibration data "
            f"(key 'labels'): {calibration.source}"
        )
    max_drop = spec.max_drop if spec.max_drop is not None else 0.0  # Params fills it in
    subset = calibration.head(spec.calibration_samples)
    labelled = list(zip(subset.batches(1), subset.labels.tolist(), strict=True))
    restorer = AdvancedAccuracyRestorerParameters()
    if spec.max_iterations is not None:
        restorer = AdvancedAccuracyRestorerParameters(max_num_iterations=spec.max_iterations)
    model = ov.Core().read_model(str(src))
    with _nncf_log() as log:
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(labelled, lambda item: item[0]),
            nncf.Dataset(labelled),
            _top1,
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            preset=_preset(spec),
            subset_size=len(labelled),
            fast_bias_correction=spec.fast_bias_correction,
            advanced_accuracy_restorer_parameters=restorer,
        )
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    before = _top1(_compile_f32(model), labelled)[0]
    after = _top1(_compile_f32(quantized), labelled)[0]
    nncf_missed = any("could not achieve the required accuracy drop" in m for m in log)
    if before - after <= max_drop + 1e-12 and not nncf_missed:
        return None
    who = "NNCF reports it could not achieve it" if nncf_missed else "NNCF reported success"
    return (
        f"NNCF accuracy control did not reach max_drop {max_drop * 100:.2f} pt ({who}; "
        f"edgeproof re-check at f32 on {len(labelled)} calibration items: top-1 "
        f"{before * 100:.2f}% -> {after * 100:.2f}%, drop {(before - after) * 100:.2f} pt)"
    )


def _top1(compiled: Any, items: Iterable[tuple[dict[str, np.ndarray], int]]) -> tuple:
    """NNCF's validation_fn: top-1 accuracy, and per-item correctness for its ranking."""
    correct = [float(np.argmax(compiled(x)[0]) == y) for x, y in items]
    return float(np.mean(correct)), correct


def _compile_f32(model: Any) -> Any:
    import openvino as ov

    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@contextmanager
def _nncf_log() -> Iterator[list[str]]:
    """Collect what NNCF logs (its accuracy-control outcome exists only as a log line);
    meanwhile its own stdout handler shows only warnings (the outcome is in the report)."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.INFO)
    logger = logging.getLogger("nncf")
    own = [(h, h.level) for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    for stream, _ in own:
        stream.setLevel(max(stream.level, logging.WARNING))
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        for stream, level in own:
            stream.setLevel(level)


def _preset(spec: OpenVinoRecipe) -> Any:
    import nncf

    return {
        "performance": nncf.QuantizationPreset.PERFORMANCE,
        "mixed": nncf.QuantizationPreset.MIXED,
    }[spec.preset]


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


_RECIPE_FIELDS = {
    "precision": ("precision",),
    "nncf-ptq": ("preset", "fast_bias_correction", "calibration_samples"),
    "nncf-accuracy-control": (
        "preset",
        "fast_bias_correction",
        "calibration_samples",
        "max_drop",
        "max_iterations",
    ),
}


def _recipe_record(spec: OpenVinoRecipe) -> dict[str, Any]:
    """The recipe as logged: its method and only the fields that method uses."""
    return {"method": spec.method} | spec.model_dump(include=set(_RECIPE_FIELDS[spec.method]))


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


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


_FAILED_OPS = re.compile(
    r"(?:Conversion is failed for|No conversion rule found for operations): (.+)"
)
_FRAMING = ("Check ", "FrontEnd API", "While validating", "--", "[ONNX Frontend]", "Model wasn't")


def conversion_failure(exc: BaseException, model: Path | None = None) -> str:
    """OpenVINO's conversion error in one line: the ops it could not convert and the first
    reason it gives (its message opens with a C++ check location that says nothing). When
    the message names no op, OpenVINO's ONNX frontend is asked which ops it left
    unconverted (``convert_partially``: ``domain.op`` of each framework node)."""
    text = str(exc)
    failed = _FAILED_OPS.search(text)
    ops = failed.group(1).strip() if failed else None
    head = text[: failed.start()] if failed else text
    reasons = [
        line.strip()
        for line in head.splitlines()
        if line.strip() and not line.strip().startswith(_FRAMING) and "Summary" not in line
    ]
    if reasons and reasons[0] == "Loading input model":
        reasons = reasons[1:] or reasons  # the frontend's step, then what failed in it
    if ops is None and model is not None:
        ops = ", ".join(unconverted_ops(model)) or None
    why = f": {reasons[0]}" if reasons else ""
    if ops is None:
        return f"{type(exc).__name__}{why}"[:300] if reasons else _first(exc)
    return f"{type(exc).__name__}: ops {ops} did not convert{why}"[:300]


def unconverted_ops(model: Path, timeout: float = 120.0) -> list[str]:
    """``domain.op`` of each op OpenVINO's ONNX frontend cannot convert (the framework
    nodes ``convert_partially`` leaves); empty if the frontend cannot even load the model.
    Asked in a child process: a native crash there costs only the op names."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _UNCONVERTED_SCRIPT, str(model)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        found = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []
    return [str(op) for op in found] if isinstance(found, list) else []


_UNCONVERTED_SCRIPT = """
import json, sys
from openvino.frontend import FrontEndManager
manager = FrontEndManager()
found = set()
try:
    frontend = manager.load_by_framework("onnx")
    loaded = frontend.load(sys.argv[1])
    partial = frontend.convert_partially(loaded)
    for op in partial.get_ordered_ops():
        if "FrameworkNode" in op.get_type_name():
            attrs = op.get_attributes()
            domain = attrs.get("ONNX_META_domain") or "ai.onnx"
            found.add(domain + "." + attrs.get("ONNX_META_type", op.get_friendly_name()))
except Exception:
    pass
print(json.dumps(sorted(found)), flush=True)
"""


SPEC = TargetSpec(name=NAME, config=OpenVinoTargetConfig, backend=OpenVinoCpu, model_format="onnx")
