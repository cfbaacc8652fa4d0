"""``onnxruntime-cpu``: ONNX Runtime on the CPU, FP32 baseline and int8 recipes.

Facts this relies on (measured on the 2M-param example CNN, 2 threads; docs/architecture.md,
"Runtime facts"):
- The baseline is the model after ``quant_pre_process`` (shape inference + graph
  optimisation), so FP32 and int8 start from the same graph.
- Dynamic int8 quantizes weights only and turns Conv into ConvInteger, which ORT runs
  ~5x *slower* than FP32 on this CPU: it is a recipe the speed gate must catch, not skip.
- Static QDQ int8 with calibration data runs ~3.6x faster than FP32 here.
- Threads are set explicitly (intra-op = configured threads, inter-op = 1): the default
  uses every core and makes timings depend on the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from edgeproof.config import RecipeTargetConfig, StrictModel
from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError, first_line
from edgeproof.onnx.model import check_onnx
from edgeproof.onnx.prep import prepare_for_ort
from edgeproof.records import Candidate
from edgeproof.records.measurement import InputSpec
from edgeproof.targets.base import (
    Availability,
    Budget,
    MaxUnits,
    ProbeItems,
    RecipeTarget,
    SearchBudget,
    SearchUnit,
    TargetSpec,
    built_by_search,
    fresh_dir,
)
from edgeproof.targets.onnxruntime_cpu.units import DYNAMIC_OPS, STATIC_OPS, graph_units

NAME = "onnxruntime-cpu"
BASELINE = "fp32"


def default_recipes() -> list[dict[str, Any]]:
    """The recipes most teams try first on ONNX Runtime: dynamic int8, and static QDQ int8
    (per tensor, minmax calibration: ``quantize_static``'s defaults), and a search from that
    static recipe (the fewest sensitive units in float that pass)."""
    return [
        {"name": "dynamic-int8", "method": "dynamic", "weight_type": "int8"},
        {"name": "static-qdq-minmax", "method": "static", "calibrate_method": "minmax"},
        {"name": "search-int8", "method": "search", "start": "static"},
    ]


class OrtRecipe(StrictModel):
    """One ONNX Runtime quantization recipe (onnxruntime.quantization)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = Field(
        description="The candidate's name, unique within the target and not the baseline's."
    )
    method: Literal["dynamic", "static", "search"] = Field(
        description="`dynamic`: int8 weights, activations quantized at run time "
        "(`quantize_dynamic`, no data). `static`: weights and activations quantized with "
        "ranges calibrated on the calibration set (`quantize_static`). `search`: the `start` "
        "recipe with the graph's most sensitive units left in float, as few as pass the "
        'fidelity gates on probes of the calibration set (docs/targets.md, "Search").'
    )
    start: Literal["dynamic", "static"] = Field(
        "static",
        description="The recipe a search starts from (the other keys apply to it); the "
        "search leaves units of the graph in float until its probes pass.",
        json_schema_extra={"methods": ["search"]},
    )
    probe_items: ProbeItems = 64
    max_units: MaxUnits = 24
    budget: Budget = SearchBudget()
    weight_type: Literal["int8", "uint8"] = Field(
        "int8", description="Integer type of the quantized weights."
    )
    activation_type: Literal["int8", "uint8"] = Field(
        "uint8",
        description="Integer type of the quantized activations.",
        json_schema_extra={"methods": ["static", "search"]},
    )
    calibrate_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax",
        description="How the activation ranges are calibrated (ONNX Runtime's "
        "`CalibrationMethod`).",
        json_schema_extra={"methods": ["static", "search"]},
    )
    per_channel: bool = Field(
        False, description="Quantize weights per output channel instead of per tensor."
    )
    quant_format: Literal["qdq", "qoperator"] = Field(
        "qdq",
        description="`qdq`: QuantizeLinear / DequantizeLinear pairs around float ops; "
        "`qoperator`: quantized operators (QLinearConv...).",
        json_schema_extra={"methods": ["static", "search"]},
    )
    calibration_samples: Annotated[int, Field(ge=1)] = Field(
        200,
        description="Calibration items the ranges are computed on (the first of the "
        "calibration set).",
        json_schema_extra={"methods": ["static", "search"]},
    )
    exclude_nodes: list[str] = Field(
        default_factory=list,
        description="Nodes left in float, by name; a name not in the model is an error.",
    )
    exclude_op_types: list[str] = Field(
        default_factory=list,
        description="Every node of these op types is left in float (e.g. `[Softmax]`); an "
        "op type not in the model is an error.",
    )
    subgraphs: bool = Field(
        False,
        description="Quantize inside If / Loop / Scan bodies too (ONNX Runtime does so in "
        "dynamic recipes only).",
        json_schema_extra={"methods": ["dynamic"]},
    )

    @model_validator(mode="after")
    def _subgraphs_dynamic(self) -> OrtRecipe:
        if self.subgraphs and self.quantizer != "dynamic":
            raise ValueError("subgraphs: ONNX Runtime quantizes subgraphs in dynamic recipes only")
        return self

    @property
    def quantizer(self) -> Literal["dynamic", "static"]:
        """The quantizer the recipe runs: its method, or a search's ``start``."""
        return self.start if self.method == "search" else self.method


class OnnxRuntimeTargetConfig(RecipeTargetConfig):
    """The ``onnxruntime-cpu`` target: FP32 baseline + int8 recipes."""

    recipes: list[OrtRecipe] = Field(
        default_factory=default_recipes,
        validate_default=True,
        description="The int8 recipes, each one candidate beside the `fp32` baseline. Left "
        "out: dynamic int8, static QDQ int8 (minmax, per tensor) and a search from it; `[]`: "
        "the baseline only.",
    )
    allow_spinning: bool = Field(
        True,
        description="Intra-op threads spin while waiting for work (ONNX Runtime's default: "
        "lower latency, more CPU); false for devices that run it with spinning off.",
    )


class OnnxRuntimeCpu(RecipeTarget[OnnxRuntimeTargetConfig]):
    """The ``onnxruntime-cpu`` target."""

    name = NAME

    def available(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(False, f"onnxruntime is not installed ({exc})")
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "onnxruntime has no CPUExecutionProvider")
        return Availability(True, runtime_version=ort.__version__)

    def baseline(self, model: Path, workdir: Path, calibration: Dataset | None = None) -> Candidate:
        check_onnx(model, for_onnxruntime=True)
        out = fresh_dir(workdir / BASELINE) / "model.onnx"
        prepared = prepare_for_ort(model, out)  # falls back step by step, never raises on one
        return Candidate(
            target=NAME,
            name=BASELINE,
            files=(prepared.path,),
            recipe={"method": "none", **prepared.record()},
            precision="fp32",
            is_baseline=True,
        )

    def optimize(
        self, recipe: str, baseline: Candidate, calibration: Dataset, workdir: Path
    ) -> Candidate:
        spec = self._recipes[recipe]
        if spec.method == "search":
            raise built_by_search(recipe)
        return _quantize(spec, baseline, calibration, fresh_dir(workdir / recipe))

    def search_units(self, recipe: str, baseline: Candidate) -> list[SearchUnit]:
        spec = self._recipes[recipe]
        ops = DYNAMIC_OPS if spec.quantizer == "dynamic" else STATIC_OPS
        excluded = set(spec.exclude_nodes)
        return graph_units(baseline.model_file, ops, spec.max_units, excluded)

    def build_mix(
        self,
        recipe: str,
        baseline: Candidate,
        calibration: Dataset,
        folder: Path,
        keep_float: tuple[str, ...],
    ) -> Candidate:
        spec = self._recipes[recipe]
        mix = spec.model_copy(update={"exclude_nodes": [*spec.exclude_nodes, *keep_float]})
        return _quantize(mix, baseline, calibration, fresh_dir(folder))

    def open_session(self, candidate: Candidate, threads: int) -> OrtSession:
        return OrtSession(
            candidate.model_file, threads, candidate.precision, self.config.allow_spinning
        )


def _quantize(
    spec: OrtRecipe, baseline: Candidate, calibration: Dataset, folder: Path
) -> Candidate:
    """``spec``'s quantizer on the baseline, into ``folder/model.onnx``."""
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    recipe = spec.name
    out = folder / "model.onnx"
    upgraded: list[int] | None = None
    source = baseline.model_file
    if spec.quantizer == "static" and spec.per_channel and spec.quant_format == "qdq":
        source, upgraded = opset_for_per_channel(source, out.parent, recipe)
    src = str(source)
    scope = _scope(source, spec)
    if spec.quantizer == "dynamic":
        quantize_dynamic(
            src,
            str(out),
            weight_type=_qtype(spec.weight_type),
            per_channel=spec.per_channel,
            extra_options={"EnableSubgraph": True} if spec.subgraphs else None,
            **scope,
        )
    else:
        quantize_static(
            src,
            str(out),
            calibration_data_reader=_CalibrationReader(calibration, spec.calibration_samples),
            quant_format=QuantFormat.QDQ if spec.quant_format == "qdq" else QuantFormat.QOperator,
            per_channel=spec.per_channel,
            activation_type=_qtype(spec.activation_type),
            weight_type=_qtype(spec.weight_type),
            calibrate_method=_calibrate_method(spec.calibrate_method),
            **scope,
        )
    if upgraded is not None:
        source.unlink(missing_ok=True)  # the upgraded copy: only the quantizer's input
    record = _recipe_record(spec)
    if upgraded is not None:
        record["opset_upgraded"] = upgraded
    if not quantized_ops(out):
        record["warnings"] = [NOTHING_QUANTIZED]
    return Candidate(target=NAME, name=recipe, files=(out,), recipe=record, precision="int8")


class OrtSession:
    """An ``onnxruntime.InferenceSession`` pinned to the CPU with explicit threads."""

    def __init__(self, path: Path, threads: int, precision: str, spin: bool = True) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # ORT's default (spinning on) is how the device runs it; the harness pauses the
        # worker that is not being timed, so its spinning threads steal nothing
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [
            InputSpec(
                i.name,
                _ort_dtype(i.type),
                tuple(d if isinstance(d, int) else None for d in i.shape),
            )
            for i in self._session.get_inputs()
        ]
        self.output_names = [o.name for o in self._session.get_outputs()]
        self.info: dict[str, Any] = {
            "runtime": "onnxruntime",
            "runtime_version": ort.__version__,
            "provider": "CPUExecutionProvider",
            "precision": precision,
            "threads": threads,
            "intra_op_spinning": spin,
            "timed": "InferenceSession.run from Python (as a plain onnxruntime loop)",
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(None, dict(feeds))

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(feeds)

    def timed_run(self, prepared: dict[str, np.ndarray]) -> float:
        """ONNX Runtime's Python ``run`` is its plain loop: timed whole."""
        start = time.perf_counter_ns()
        self._session.run(None, prepared)
        return (time.perf_counter_ns() - start) / 1e6


class _CalibrationReader:
    """Feeds the first ``limit`` calibration items, one at a time, to ORT's calibrator."""

    def __init__(self, data: Dataset, limit: int) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = data.head(limit).batches(1)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # ORT calls it on some calibrators; one pass is enough
        return None


PER_CHANNEL_OPSET = 13  # DequantizeLinear's ``axis`` (per-channel scales) needs opset 13


def opset_for_per_channel(model: Path, folder: Path, recipe: str) -> tuple[Path, list[int] | None]:
    """The model a per-channel QDQ recipe can quantize: ``model`` itself at opset >= 13,
    else a copy upgraded to opset 13 with ONNX's version converter (ONNX Runtime writes
    ``DequantizeLinear`` with an ``axis`` whatever the opset, and an opset-11 result does
    not load: "Unrecognized attribute: axis"), with ``[old, 13]`` for the recipe's record.
    A graph the converter cannot upgrade refuses the recipe before any work, with why."""
    import onnx
    from onnx import version_converter

    header = onnx.load(str(model), load_external_data=False)
    old = next(
        (o.version for o in header.opset_import if o.domain in ("", "ai.onnx")), PER_CHANNEL_OPSET
    )
    if old >= PER_CHANNEL_OPSET:
        return model, None
    out = folder / f"opset{PER_CHANNEL_OPSET}.onnx"
    try:
        converted = version_converter.convert_version(onnx.load(str(model)), PER_CHANNEL_OPSET)
        onnx.checker.check_model(converted)
        large = converted.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit
        onnx.save(converted, str(out), save_as_external_data=large)
    except Exception as exc:  # the converter raises several types for a graph it cannot take
        first = first_line(exc)
        raise InputError(
            f"{recipe}: per_channel static (QDQ) quantization needs opset >= "
            f"{PER_CHANNEL_OPSET} and the model is opset {old}; ONNX's version converter "
            f"could not upgrade it ({first}): use per_channel: false or export at opset "
            f">= {PER_CHANNEL_OPSET}"
        ) from None
    return out, [old, PER_CHANNEL_OPSET]


def _scope(model: Path, spec: OrtRecipe) -> dict[str, Any]:
    """ORT's quantization scope for the recipe's exclusions (nothing when there are none).

    Op types are excluded by quantizing every other op type present in the model; a name
    or op type that is not in the model is an error (a typo would silently do nothing).
    """
    if not spec.exclude_nodes and not spec.exclude_op_types:
        return {}
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    names, op_types = {n.name for n in graph.node}, {n.op_type for n in graph.node}
    for wanted, present, what in (
        (spec.exclude_nodes, names, "node"),
        (spec.exclude_op_types, op_types, "op type"),
    ):
        unknown = sorted(set(wanted) - present)
        if unknown:
            raise InputError(f"{spec.name}: exclude {what}(s) not in the model: {unknown}")
    scope: dict[str, Any] = {"nodes_to_exclude": list(spec.exclude_nodes)}
    if spec.exclude_op_types:
        scope["op_types_to_quantize"] = sorted(op_types - set(spec.exclude_op_types))
    return scope


NOTHING_QUANTIZED = (
    "ONNX Runtime quantized no op: the model is still float (ops inside If / Loop bodies "
    "are left alone unless a dynamic recipe sets subgraphs: true)"
)
_QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
    }
)


def quantized_ops(model: Path) -> int:
    """How many quantized ops the model has, subgraphs included."""
    import onnx

    from edgeproof.onnx.model import all_nodes

    graph = onnx.load(str(model), load_external_data=False).graph
    return sum(
        1
        for n in all_nodes(graph)
        if n.op_type in _QUANTIZED_OPS or n.op_type.startswith("QLinear")
    )


def _recipe_record(spec: OrtRecipe) -> dict[str, Any]:
    record = spec.model_dump(exclude={"name"})
    if spec.method != "search":
        for key in ("start", "probe_items", "max_units", "budget"):
            record.pop(key)
    if spec.quantizer == "dynamic":
        for key in ("activation_type", "calibrate_method", "quant_format", "calibration_samples"):
            record.pop(key)
    else:
        record.pop("subgraphs")
    return record


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return QuantType.QInt8 if name == "int8" else QuantType.QUInt8


def _calibrate_method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _ort_dtype(type_name: str) -> np.dtype:
    return np.dtype(_ORT_DTYPES.get(type_name, np.float32))


SPEC = TargetSpec(
    name=NAME, config=OnnxRuntimeTargetConfig, backend=OnnxRuntimeCpu, model_format="onnx"
)
