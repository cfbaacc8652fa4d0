"""Typed configuration: params.yaml parsed once into pydantic models and passed down.

params.yaml is also DVC's params file, so it has one section per concern (DVC style).
Every model forbids unknown keys: a typo such as ``min_sppedup`` must be an error naming
the key, never a silently ignored threshold. Errors are raised as ``ConfigError`` with a
one-line message ``params.yaml: <dotted.key>: <problem>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeproof.errors import ConfigError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
SelectionMetric = Literal["accuracy", "latency", "p90", "peak_rss", "size"]
PositiveFloat = Annotated[float, Field(gt=0.0)]
LANGUAGE_MODEL_TARGETS = frozenset({"llama-cpp"})  # the targets of task language_model
MIN_TOKEN_TIMINGS = 100  # per candidate: a 99% CI of the p90 needs 51


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(StrictModel):
    """The model under test and what it does."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    path: Path
    # classification: labels, accuracy, top-1 agreement, KL; embedding / raw: no labels,
    # fidelity to the baseline per output tensor; regression: targets (key labels_key) too;
    # language_model: a GGUF file, held-out token windows, llama.cpp-style KL / top-1 / PPL
    task: Literal["classification", "embedding", "regression", "raw", "language_model"] = (
        "classification"
    )
    input_name: str | None = None  # None: the model's single input
    num_classes: Annotated[int, Field(ge=2)] = 10


class DataChecks(StrictModel):
    """The Great Expectations data gate on the eval and calibration sets (``None`` = off)."""

    enabled: bool = True
    min_eval_rows: Annotated[int, Field(ge=1)] = 100
    min_calibration_rows: Annotated[int, Field(ge=1)] = 10
    value_min: float | None = None  # every input value must lie in [value_min, value_max]
    value_max: float | None = None
    min_class_share: Fraction | None = None  # each class's share of the eval labels
    max_class_share: Fraction | None = None
    no_leakage: bool = True  # no eval item (by content hash) in the calibration set

    @model_validator(mode="after")
    def _ordered(self) -> DataChecks:
        if None not in (self.value_min, self.value_max) and self.value_min > self.value_max:
            raise ValueError("value_min must not exceed value_max")
        shares = (self.min_class_share, self.max_class_share)
        if None not in shares and shares[0] > shares[1]:
            raise ValueError("min_class_share must not exceed max_class_share")
        return self


class DataConfig(StrictModel):
    """Evaluation and calibration data: .npz files, one array per model input + ``labels``.

    ``dvc_sync``: what to do when a DVC-tracked file differs from ``dvc.lock`` (refuse the
    run, warn, or skip the check).
    """

    eval: Path
    calibration: Path
    labels_key: str = "labels"
    checks: DataChecks = DataChecks()
    dvc_sync: Literal["refuse", "warn", "off"] = "refuse"


class ExampleConfig(StrictModel):
    """DVC stage parameters of the bundled example (sklearn digits CNN)."""

    seed: int = 0
    image_size: Annotated[int, Field(ge=8, le=128)] = 64
    eval_size: Annotated[int, Field(ge=10)] = 1000
    calibration_size: Annotated[int, Field(ge=10)] = 200
    epochs: Annotated[int, Field(ge=1)] = 8
    batch_size: Annotated[int, Field(ge=1)] = 64
    learning_rate: PositiveFloat = 2e-3
    threads: Annotated[int, Field(ge=1)] = 2


class LlamaExampleConfig(StrictModel):
    """DVC stage parameters of the language-model example (a byte-level llama, trained here)."""

    seconds: Annotated[float, Field(gt=0.0, le=300.0)] = 240.0  # wall-clock training budget
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] = 2
    file_type: Literal["F16", "F32"] = "F16"
    eval_windows: Annotated[int, Field(ge=2)] = 16
    calibration_windows: Annotated[int, Field(ge=1)] = 32


class OrtRecipe(StrictModel):
    """One ONNX Runtime quantization recipe (onnxruntime.quantization)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    method: Literal["dynamic", "static"]
    weight_type: Literal["int8", "uint8"] = "int8"
    activation_type: Literal["int8", "uint8"] = "uint8"
    calibrate_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = False
    quant_format: Literal["qdq", "qoperator"] = "qdq"
    calibration_samples: Annotated[int, Field(ge=1)] = 200
    # left in float: nodes by name, and every node of these op types (e.g. [Softmax])
    exclude_nodes: list[str] = Field(default_factory=list)
    exclude_op_types: list[str] = Field(default_factory=list)


class TargetCommon(StrictModel):
    """Fields every target has: where it runs and on what."""

    enabled: bool = True
    work_pool: str = "edge-intel-cpu"
    device: str = "cpu"
    threads: Annotated[int, Field(ge=1)] = 2


class OnnxRuntimeTargetConfig(TargetCommon):
    """The ``onnxruntime-cpu`` target: FP32 baseline + int8 recipes."""

    recipes: list[OrtRecipe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> OnnxRuntimeTargetConfig:
        _require_unique([r.name for r in self.recipes] + ["fp32"], "recipes")
        return self


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

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    method: Literal["precision", "nncf-ptq", "nncf-accuracy-control"]
    precision: Literal["bf16", "f16"] = "bf16"
    preset: Literal["performance", "mixed"] = "performance"
    fast_bias_correction: bool = True
    calibration_samples: Annotated[int, Field(ge=1)] = 300
    max_drop: Fraction | None = None
    max_iterations: Annotated[int, Field(ge=1)] | None = None


class OpenVinoTargetConfig(TargetCommon):
    """The ``openvino-cpu`` target: OpenVINO IR, FP32 baseline (precision hint f32)."""

    device: str = "CPU"  # CPU, GPU, NPU, AUTO
    recipes: list[OpenVinoRecipe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> OpenVinoTargetConfig:
        _require_unique([r.name for r in self.recipes] + ["fp32"], "recipes")
        return self


class OlivePass(StrictModel):
    """One Olive pass: its class name and its parameters, as Olive documents them."""

    type: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")]  # e.g. OnnxStaticQuantization
    config: dict[str, Any] = Field(default_factory=dict)


class OliveRecipe(StrictModel):
    """One Olive workflow (its passes run in order), giving one candidate.

    Passes that calibrate (static quantization) read ``calibration_samples`` items of the
    calibration split through edgeproof's Olive data script; ``precision`` labels the result.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    passes: Annotated[list[OlivePass], Field(min_length=1)]
    precision: str = "int8"
    calibration_samples: Annotated[int, Field(ge=1)] = 200


class OliveTargetConfig(TargetCommon):
    """The ``olive`` target: Microsoft Olive workflows (``olive run``), run with ONNX Runtime.

    The baseline is the same FP32 graph as ``onnxruntime-cpu``'s. Olive's search needs its
    own evaluator (which fails on local data in olive-ai 0.13): each recipe runs with
    search off, and edgeproof measures every recipe's output itself.
    """

    recipes: list[OliveRecipe] = Field(default_factory=list)
    timeout_seconds: PositiveFloat = 900.0  # per ``olive run``

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> OliveTargetConfig:
        _require_unique([r.name for r in self.recipes] + ["fp32"], "recipes")
        return self


class TfliteRecipe(StrictModel):
    """One LiteRT conversion: ``dynamic-range`` (int8 weights, float activations and I/O) or
    ``full-int8`` (int8 weights, activations and I/O; calibrated on ``calibration_samples``
    items of the calibration split as the representative dataset)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    method: Literal["dynamic-range", "full-int8"]
    calibration_samples: Annotated[int, Field(ge=1)] = 200


class TfliteTargetConfig(TargetCommon):
    """The ``tflite-cpu`` target: the ONNX model converted to TFLite (onnx2tf + TensorFlow),
    FP32 baseline, run with LiteRT (``ai-edge-litert``) on ``threads`` threads.

    ``toolchain_python``: the interpreter of the environment holding the converter
    (TensorFlow), as a dedicated runner would have it; ``None`` = this environment.
    """

    work_pool: str = "edge-arm-cpu"
    recipes: list[TfliteRecipe] = Field(default_factory=list)
    toolchain_python: Path | None = None
    convert_timeout_seconds: PositiveFloat = 900.0

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> TfliteTargetConfig:
        _require_unique([r.name for r in self.recipes] + ["fp32"], "recipes")
        return self


class EdgeTpuTargetConfig(TargetCommon):
    """The ``edgetpu`` target (Coral): the full-int8 TFLite model compiled by
    ``edgetpu_compiler`` and run with the Edge TPU delegate; the baseline is the same
    full-int8 model on the CPU (LiteRT), so fidelity = agreement of TPU with CPU int8.
    """

    work_pool: str = "edge-coral"
    device: str = "edgetpu"
    compiler: str = "edgetpu_compiler"  # looked up on PATH
    delegate_library: str = "libedgetpu.so.1"
    calibration_samples: Annotated[int, Field(ge=1)] = 200
    toolchain_python: Path | None = None
    convert_timeout_seconds: PositiveFloat = 900.0
    compile_timeout_seconds: PositiveFloat = 600.0


class LlamaRecipe(StrictModel):
    """One llama.cpp quantization (``llama_model_quantize``): ``type`` is a llama.cpp type
    name (Q8_0, Q6_K, Q4_K_M, Q4_0, Q2_K, IQ4_XS...); ``imatrix``: an importance matrix
    (.npz of GGUF tensor name -> mean squared input of that matrix), relative to params.yaml."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    type: str
    imatrix: Path | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        from edgeproof.llama.quantize import quant_type

        return quant_type(value)  # UnknownQuantType is a ValueError listing the known ones


class LlamaCppTargetConfig(TargetCommon):
    """The ``llama-cpp`` target: a GGUF baseline (F16/F32) and llama.cpp quantizations, run
    with llama-cpp-python on the CPU.

    ``extra_buffer_types``: llama.cpp's repacked / AMX weight copies (its own default is on);
    off by default because its AMX kernels crash on some AMX CPUs (llama.cpp#20824, seen on
    this project's CI Xeon). Speed is timed as ``llama-bench`` does: ``pp_tokens`` prompt
    tokens in one batch and ``tg_tokens`` single-token decodes, ``repetitions`` each after
    ``warmup``, in ``rounds`` fresh processes per candidate interleaved with the baseline's.
    """

    work_pool: str = "edge-laptop-cpu"
    recipes: list[LlamaRecipe] = Field(default_factory=list)
    extra_buffer_types: bool = False
    pp_tokens: Annotated[int, Field(ge=1)] = 128
    tg_tokens: Annotated[int, Field(ge=1)] = 32
    warmup: Annotated[int, Field(ge=0)] = 1
    repetitions: Annotated[int, Field(ge=2)] = 5
    rounds: Annotated[int, Field(ge=2)] = 4
    timeout_seconds: PositiveFloat = 300.0  # per llama.cpp subprocess

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> LlamaCppTargetConfig:
        _require_unique([r.name for r in self.recipes] + ["baseline"], "recipes")
        return self

    @model_validator(mode="after")
    def _enough_token_timings(self) -> LlamaCppTargetConfig:
        timed = self.rounds * self.repetitions * self.tg_tokens
        if timed < MIN_TOKEN_TIMINGS:
            raise ValueError(
                f"rounds x repetitions x tg_tokens = {timed} per-token timings; at least "
                f"{MIN_TOKEN_TIMINGS} are needed for latency percentiles with CIs"
            )
        return self


class TargetsConfig(StrictModel):
    """One optional section per known target; an unknown target name is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    onnxruntime_cpu: OnnxRuntimeTargetConfig | None = Field(default=None, alias="onnxruntime-cpu")
    openvino_cpu: OpenVinoTargetConfig | None = Field(default=None, alias="openvino-cpu")
    olive: OliveTargetConfig | None = None
    tflite_cpu: TfliteTargetConfig | None = Field(default=None, alias="tflite-cpu")
    edgetpu: EdgeTpuTargetConfig | None = None
    llama_cpp: LlamaCppTargetConfig | None = Field(default=None, alias="llama-cpp")

    def enabled(self) -> dict[str, TargetCommon]:
        """Enabled targets by their public name (e.g. ``onnxruntime-cpu``)."""
        out: dict[str, TargetCommon] = {}
        for field_name, info in type(self).model_fields.items():
            section = getattr(self, field_name)
            if section is not None and section.enabled:
                out[info.alias or field_name] = section
        return out

    @classmethod
    def names(cls) -> list[str]:
        return [info.alias or name for name, info in cls.model_fields.items()]


class MeasureConfig(StrictModel):
    """How candidates are timed: each in a fresh subprocess, interleaved with the baseline.

    Sampling stops when the CI half-width of the gated statistics (speedup and median
    latency) is at most ``target_rel_halfwidth`` of their value, once ``min_samples`` are
    taken, or when ``max_samples`` or ``max_seconds`` per candidate is reached.
    """

    warmup_runs: Annotated[int, Field(ge=1)] = 20  # minimum; more until timings settle
    max_warmup_runs: Annotated[int, Field(ge=1)] = 500
    warmup_tolerance: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.05
    min_samples: Annotated[int, Field(ge=10)] = 100  # LoadGen: p90 needs >= 64
    max_samples: Annotated[int, Field(ge=10)] = 3000
    block_size: Annotated[int, Field(ge=1)] = 25
    # untimed runs at the start of each block: switching processes leaves caches cold
    block_warmup: Annotated[int, Field(ge=0)] = 3
    target_rel_halfwidth: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.02
    throughput_batch: Annotated[int, Field(ge=1)] = 32
    throughput_runs: Annotated[int, Field(ge=2)] = 12
    eval_batch: Annotated[int, Field(ge=1)] = 32
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 2000
    max_seconds: PositiveFloat = 60.0
    timeout_seconds: PositiveFloat = 300.0
    max_load_average: PositiveFloat | None = None  # refuse or warn above this 1-min load
    on_busy: Literal["warn", "refuse"] = "warn"
    rerun_factor: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0  # on_inconclusive: rerun
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> MeasureConfig:
        if self.min_samples > self.max_samples:
            raise ValueError("min_samples must not exceed max_samples")
        if self.warmup_runs > self.max_warmup_runs:
            raise ValueError("warmup_runs must not exceed max_warmup_runs")
        return self


class AccuracyGate(StrictModel):
    max_drop_abs: Fraction | None = 0.01
    max_drop_rel: Fraction | None = None


class FidelityGate(StrictModel):
    """Fidelity to the baseline's outputs.

    Classification: top-1 agreement and KL of the softmax. Label-free tasks (embedding,
    regression, raw), per output tensor and item: cosine similarity (its mean, and its
    ``low_quantile``, e.g. the 1% worst items), relative L2 error, and for embeddings the
    share of each item's ``knn_k`` nearest neighbours that stay the same.
    """

    min_top1_agreement: Fraction | None = 0.98
    max_kl: Annotated[float, Field(ge=0.0)] | None = 0.05
    min_cosine_mean: Annotated[float, Field(ge=-1.0, le=1.0)] | None = 0.99
    min_cosine_low: Annotated[float, Field(ge=-1.0, le=1.0)] | None = 0.95
    low_quantile: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # p5: a CI needs ~100 items
    max_rel_l2: Annotated[float, Field(ge=0.0)] | None = 0.1
    min_knn_agreement: Fraction | None = 0.9
    knn_k: Annotated[int, Field(ge=1)] = 10


class RegressionGate(StrictModel):
    """Regression tasks: the candidate's MAE against the targets, paired with the baseline's."""

    max_mae_increase: Annotated[float, Field(ge=0.0)] | None = None  # in target units
    max_mae_increase_rel: Fraction | None = 0.05  # share of the baseline's MAE


class LatencyGate(StrictModel):
    p90_budget_ms: PositiveFloat | None = None
    min_speedup: PositiveFloat | None = 1.2


class MemoryGate(StrictModel):
    max_peak_rss_mb: PositiveFloat | None = None
    min_reduction: Annotated[float, Field(gt=-1.0, lt=1.0)] | None = None


class SizeGate(StrictModel):
    max_mb: PositiveFloat | None = None


class EnergyGate(StrictModel):
    """Energy per inference, where the runner exposes a counter (Linux RAPL powercap).

    Runners without a readable counter skip these checks, saying why.
    """

    max_mj_per_inference: PositiveFloat | None = None
    min_reduction: Annotated[float, Field(gt=-1.0, lt=1.0)] | None = None


class LanguageModelGate(StrictModel):
    """Language models (task ``language_model``), scored as ``llama-perplexity
    --kl-divergence`` does on held-out tokens: mean and p99 per-token KL(baseline ||
    candidate), top-1 agreement, perplexity ratio. Defaults and their justification against
    llama.cpp's published Llama-3-8B figures: docs/language-models.md."""

    max_mean_kl: Annotated[float, Field(ge=0.0)] | None = 0.005
    max_kl_p99: Annotated[float, Field(ge=0.0)] | None = 0.1
    min_top1_agreement: Fraction | None = 0.95
    max_ppl_ratio: Annotated[float, Field(ge=1.0)] | None = 1.03


class OpCoverageGate(StrictModel):
    """Accelerator targets that compile the graph (Edge TPU): the share of ops mapped to the
    accelerator. Ops after the first one that falls back run on the CPU, each transfer
    costs a round trip, so a low share usually means the accelerator buys nothing."""

    min_accelerator_share: Fraction | None = 0.9


class GatesConfig(StrictModel):
    """Thresholds; ``None`` disables a check. All failures of a candidate are reported."""

    accuracy: AccuracyGate = AccuracyGate()
    fidelity: FidelityGate = FidelityGate()
    latency: LatencyGate = LatencyGate()
    memory: MemoryGate = MemoryGate()
    size: SizeGate = SizeGate()
    energy: EnergyGate = EnergyGate()
    regression: RegressionGate = RegressionGate()
    op_coverage: OpCoverageGate = OpCoverageGate()
    language_model: LanguageModelGate = LanguageModelGate()
    on_inconclusive: Literal["fail", "warn", "rerun"] = "fail"
    # how the winner is picked among passing candidates: lowest ``objective``, or, when
    # ``weights`` is set, the lowest weighted sum of min-max normalized metrics among the
    # passing candidates on the (noise-aware) Pareto front
    objective: Literal["median_latency", "p90_latency", "size", "peak_rss"] = "median_latency"
    weights: dict[SelectionMetric, Annotated[float, Field(ge=0.0)]] | None = None

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not any(w > 0 for w in value.values()):
            raise ValueError("at least one weight must be above 0")
        return value


class ChampionCompare(StrictModel):
    """Re-measure the current champion beside the winner; a clear regression is not promoted.

    "Worse" needs the whole confidence interval past the tolerance: the winner is slower
    (speedup vs champion CI below ``1 - max_slowdown``) or less accurate (accuracy drop CI
    above ``max_accuracy_drop``). Within noise, the winner is promoted.
    """

    enabled: bool = True
    max_slowdown: Fraction = 0.02  # per-process layout effects; A/A runs measure ~0.1%
    max_accuracy_drop: Fraction = 0.0


class RegistryConfig(StrictModel):
    """MLflow model registry naming and aliases (stages are deprecated: aliases only)."""

    model_name: str = "{model}.{target}"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    lock_timeout_seconds: PositiveFloat = 120.0  # wait this long for another run's alias move
    lock_stale_seconds: PositiveFloat = 900.0  # a lock older than this was left by a dead run
    compare_with_champion: ChampionCompare = ChampionCompare()

    @field_validator("model_name")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        """Only ``{model}`` and ``{target}`` may appear: anything else fails at promotion."""
        try:
            name = value.format(model="m", target="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r} may use only the placeholders {{model}} and {{target}} "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if not name.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _distinct_aliases(self) -> RegistryConfig:
        if self.champion_alias == self.challenger_alias:
            raise ValueError("champion_alias and challenger_alias must differ")
        return self

    def registered_name(self, model: str, target: str) -> str:
        return self.model_name.format(model=model, target=target)


class TrackingConfig(StrictModel):
    """MLflow store; MLFLOW_TRACKING_URI in the environment wins over ``uri``."""

    uri: str = "sqlite:///mlflow.db"
    artifact_location: Path = Path("mlartifacts")


class ReportConfig(StrictModel):
    dir: Path = Path("reports")


class Params(StrictModel):
    """The whole of params.yaml."""

    model: ModelConfig
    data: DataConfig
    example: ExampleConfig = ExampleConfig()
    llama_example: LlamaExampleConfig = LlamaExampleConfig()
    targets: TargetsConfig
    measure: MeasureConfig = MeasureConfig()
    gates: GatesConfig = GatesConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="before")
    @classmethod
    def _accuracy_control_from_gate(cls, raw: Any) -> Any:
        """NNCF accuracy-control recipes without ``max_drop`` take the accuracy gate's."""
        return _fill_accuracy_control_max_drop(raw)

    @model_validator(mode="after")
    def _some_target(self) -> Params:
        if not self.targets.enabled():
            raise ValueError("no target is enabled")
        return self

    @model_validator(mode="after")
    def _targets_fit_the_task(self) -> Params:
        language = self.model.task == "language_model"
        for name in self.targets.enabled():
            if (name in LANGUAGE_MODEL_TARGETS) != language:
                need = "a GGUF language model" if not language else "an ONNX model"
                raise ValueError(
                    f"target {name!r} needs {need}; model.task is {self.model.task!r} "
                    "(disable it, or set model.task)"
                )
        return self

    @model_validator(mode="after")
    def _accuracy_control_has_max_drop(self) -> Params:
        section = self.targets.openvino_cpu
        for recipe in section.recipes if section else []:
            if recipe.method == "nncf-accuracy-control" and recipe.max_drop is None:
                raise ValueError(
                    f"targets.openvino-cpu.recipes.{recipe.name}: nncf-accuracy-control needs "
                    "max_drop (gates.accuracy.max_drop_abs is off)"
                )
        return self


def _fill_accuracy_control_max_drop(raw: Any) -> Any:
    """A copy of raw params with ``max_drop`` set on accuracy-control recipes that lack it.

    Anything malformed is returned as is, for the field validators to report.
    """
    try:
        recipes = raw["targets"]["openvino-cpu"]["recipes"]
        gate = (raw.get("gates") or {}).get("accuracy") or {}
        max_drop = gate.get("max_drop_abs", AccuracyGate().max_drop_abs)
    except (TypeError, KeyError, AttributeError):
        return raw
    valid = isinstance(max_drop, int | float) and not isinstance(max_drop, bool)
    if not isinstance(recipes, list) or not valid or not 0.0 <= max_drop <= 1.0:
        return raw  # a bad gate value is reported at the gate, not at the recipe
    filled = [{**r, "max_drop": max_drop} if _lacks_max_drop(r) else r for r in recipes]
    section = {**raw["targets"]["openvino-cpu"], "recipes": filled}
    return {**raw, "targets": {**raw["targets"], "openvino-cpu": section}}


def _lacks_max_drop(recipe: Any) -> bool:
    return (
        isinstance(recipe, dict)
        and recipe.get("method") == "nncf-accuracy-control"
        and "max_drop" not in recipe
    )


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: duplicate name {name!r}")
        seen.add(name)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{loc}: {msg}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping; raises ConfigError with one line."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def load_params(path: Path) -> Params:
    """Read and validate params.yaml; relative paths in it stay relative to its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read params file ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    return parse_params(raw, source=str(path.name))
