"""Typed configuration: params.yaml parsed once into pydantic models and passed down.

params.yaml is also DVC's params file, so it has one section per concern (DVC style).
Every model forbids unknown keys: a typo such as ``min_sppedup`` must be an error naming
the key, never a silently ignored threshold. Errors are raised as ``ConfigError`` with a
one-line message ``params.yaml: <dotted.key>: <problem>``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from edgeproof.errors import ConfigError

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
SelectionMetric = Literal["accuracy", "latency", "p90", "peak_rss", "size"]
PositiveFloat = Annotated[float, Field(gt=0.0)]


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricConfig(StrictModel):
    """The team's own metric: ``function`` = ``file.py:function``, a Python file in the
    project (imported, never unpickled) whose function takes the candidate's outputs, the
    baseline's outputs (name -> array, items first) and the eval labels / targets (or None)
    and returns one score per item. The accuracy of a task it replaces is gated on it."""

    function: Annotated[str, Field(pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "metric"
    higher_is_better: bool = True

    @property
    def file(self) -> Path:
        return Path(self.function.rsplit(":", 1)[0])

    @property
    def function_name(self) -> str:
        return self.function.rsplit(":", 1)[1]


Scalar = int | float | bool


class InputConfig(StrictModel):
    """How one model input is fed when the data file does not give it per item.

    ``value``: a constant fed to every call (a sample rate; a nested list for a fixed
    tensor), cast to the input's dtype. ``carried_from``: a streaming state: the named
    output of each call is fed back as this input at the next one, zeros at the start of
    every stream (the eval items are one stream in file order, or several by the data's
    ``stream`` array).
    """

    value: Scalar | list[Any] | None = None
    carried_from: str | None = None

    @model_validator(mode="after")
    def _one(self) -> InputConfig:
        if (self.value is None) == (self.carried_from is None):
            raise ValueError("give exactly one of value or carried_from")
        return self


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
    metric: MetricConfig | None = None  # the team's own per-item metric (tensor tasks)
    inputs: dict[str, InputConfig] = Field(default_factory=dict)  # constants, streaming state


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


class TargetCommon(StrictModel):
    """Fields every target has: where it runs and on what.

    Each target module subclasses this with its own section (``edgeproof.targets``); the
    ``targets`` mapping of params.yaml is validated against the sections of the known
    targets (``edgeproof.params``), so an unknown target name is an error naming it.
    """

    enabled: bool = True
    work_pool: str = "edge-intel-cpu"
    device: str = "cpu"
    threads: Annotated[int, Field(ge=1)] = 2

    def with_project_paths(self, resolve: Callable[[Path, str], Path]) -> Self:
        """This section with the files it names resolved as project paths by ``resolve``
        (``resolve(value, what)`` checks and returns the path). Default: it names none."""
        return self

    def check_with(self, name: str, params: Params) -> None:
        """Raise ValueError when this section contradicts the rest of the (valid) params."""

    @classmethod
    def complete_raw(cls, section: Any, raw_params: Mapping[str, Any]) -> Any:
        """The raw section with defaults taken from other params sections (default: as is).

        Anything malformed is returned as is, for the field validators to report."""
        return section


class RecipeTargetConfig(TargetCommon):
    """A target whose section lists named ``recipes`` beside a baseline of its own name."""

    BASELINE_NAME: ClassVar[str] = "fp32"

    @model_validator(mode="after")
    def _unique_recipe_names(self) -> Self:
        recipes = getattr(self, "recipes", [])
        _require_unique([r.name for r in recipes] + [self.BASELINE_NAME], "recipes")
        return self


class TargetsBase(StrictModel):
    """One optional section per known target (fields made by ``params_model``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def sections(self) -> dict[str, TargetCommon]:
        """Every target section given, enabled or not, by its public name."""
        given = ((info.alias or f, getattr(self, f)) for f, info in type(self).model_fields.items())
        return {name: section for name, section in given if section is not None}

    def enabled(self) -> dict[str, TargetCommon]:
        """Enabled targets by their public name (e.g. ``onnxruntime-cpu``)."""
        return {name: s for name, s in self.sections().items() if s.enabled}

    @classmethod
    def names(cls) -> list[str]:
        return [info.alias or name for name, info in cls.model_fields.items()]

    @classmethod
    def section_model(cls, name: str) -> type[TargetCommon] | None:
        """The config model of target ``name``; None for an unknown name."""
        for field_name, info in cls.model_fields.items():
            if (info.alias or field_name) == name:
                return _optional_model(info.annotation)
        return None


def _optional_model(annotation: Any) -> type[TargetCommon] | None:
    """``X`` of an ``X | None`` annotation."""
    return next((a for a in get_args(annotation) if a is not type(None)), None)


class MeasureConfig(StrictModel):
    """How candidates are timed: each in a fresh subprocess, interleaved with the baseline.

    Sampling stops when the CI half-width of the gated statistics (speedup and median
    latency) is at most ``target_rel_halfwidth`` of their value, once ``min_samples`` are
    taken, or when ``max_samples`` or ``max_seconds`` per candidate is reached (a slow
    candidate still gets ``min_samples``: the percentiles' CIs need them), or when the speed
    gate clearly fails the candidate (an early verdict).
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
    # a candidate the speed gate failed early is scored on its first N eval items only, with
    # two throughput runs: its verdict is already a fail, the rest would be spent time
    early_fail_eval_items: Annotated[int, Field(ge=1)] = 100
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 2000
    max_seconds: PositiveFloat = 60.0
    timeout_seconds: PositiveFloat = 300.0
    max_load_average: PositiveFloat | None = None  # refuse or warn above this 1-min load
    on_busy: Literal["warn", "refuse"] = "warn"
    rerun_factor: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0  # on_inconclusive: rerun
    # close finalists compared only via the baseline are timed against each other
    head_to_head: bool = True
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


class MetricGate(StrictModel):
    """The team's own metric (``model.metric``): its mean drop against the baseline, paired
    per item (a drop = worse in the metric's direction), absolute or relative to the
    baseline's mean; with a ``slice`` array in the eval data, the worst slice's drop too."""

    max_drop_abs: Annotated[float, Field(ge=0.0)] | None = None
    max_drop_rel: Fraction | None = 0.02
    max_worst_slice_drop_abs: Annotated[float, Field(ge=0.0)] | None = None
    max_worst_slice_drop_rel: Fraction | None = 0.05


class LatencyGate(StrictModel):
    """Speed checks. ``on_inconclusive`` overrides ``gates.on_inconclusive`` for them alone:
    ``warn`` makes the speed gate a non-regression gate, blocking only a candidate whose
    whole CI misses the limit (for models whose speed is within a runner's noise)."""

    p90_budget_ms: PositiveFloat | None = None
    min_speedup: PositiveFloat | None = 1.2
    on_inconclusive: Literal["fail", "warn"] | None = None


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
    metric: MetricGate = MetricGate()
    op_coverage: OpCoverageGate = OpCoverageGate()
    language_model: LanguageModelGate = LanguageModelGate()
    on_inconclusive: Literal["fail", "warn", "rerun"] = "fail"
    # how the winner is picked among passing candidates: lowest ``objective``, or, when
    # ``weights`` is set, the lowest weighted sum of min-max normalized metrics among the
    # passing candidates on the (noise-aware) Pareto front
    objective: Literal["median_latency", "p90_latency", "size", "peak_rss"] = "median_latency"
    weights: dict[SelectionMetric, Annotated[float, Field(ge=0.0)]] | None = None
    # a latency lead within this is a tie, decided by size, memory, then recipe order: two
    # processes running the same file differ by ~1% for their whole life
    speed_tie_tolerance: Annotated[float, Field(ge=0.0, le=0.2)] = 0.01

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
    above ``max_accuracy_drop``). Within noise, the winner is promoted when its source
    (model and data contents, model / data / gates / target params) differs from the
    champion's; from the same source it must be clearly better (``same_source_tolerance``).
    """

    enabled: bool = True
    max_slowdown: Fraction = 0.02  # per-process layout effects; A/A runs measure ~0.1%
    max_accuracy_drop: Fraction = 0.0
    # same model, data and params as the champion: move it only when the winner's whole
    # paired CI is this much better (a re-roll of equal recipes is "not worse" half the time)
    same_source_tolerance: Fraction = 0.03


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


class SigningConfig(StrictModel):
    """Ed25519 signatures of every verdict's evidence. The private key: ``key_file`` (a path,
    relative to params.yaml; keep it out of git) else ``$EDGEPROOF_SIGNING_KEY``; neither
    leaves the evidence unsigned unless ``required``. ``public_key`` (base64, PEM, or a
    file) is what ``edgeproof pull`` trusts when neither ``--public-key`` nor
    ``$EDGEPROOF_PUBLIC_KEY`` is given."""

    key_file: Path | None = None
    public_key: str | None = None
    required: bool = False


class Params(StrictModel):
    """The whole of params.yaml (``targets`` is typed by ``params_model``)."""

    model: ModelConfig
    data: DataConfig
    example: ExampleConfig = ExampleConfig()
    llama_example: LlamaExampleConfig = LlamaExampleConfig()
    targets: TargetsBase
    measure: MeasureConfig = MeasureConfig()
    gates: GatesConfig = GatesConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()
    signing: SigningConfig = SigningConfig()

    @model_validator(mode="before")
    @classmethod
    def _complete_target_sections(cls, raw: Any) -> Any:
        """Each known target's raw section completed from the other sections (its hook)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("targets"), dict):
            return raw
        targets_model = cls.model_fields["targets"].annotation
        sections = dict(raw["targets"])
        for name, section in sections.items():
            model = targets_model.section_model(name)
            if model is not None:
                sections[name] = model.complete_raw(section, raw)
        return {**raw, "targets": sections}

    @model_validator(mode="after")
    def _some_target(self) -> Params:
        if not self.targets.enabled():
            raise ValueError("no target is enabled")
        return self

    @model_validator(mode="after")
    def _sections_agree(self) -> Params:
        for name, section in self.targets.sections().items():
            section.check_with(name, self)
        return self


TargetModels = tuple[tuple[str, type[TargetCommon]], ...]


@functools.cache
def params_model(target_models: TargetModels) -> type[Params]:
    """``Params`` whose ``targets`` section has one optional field per (name, config model)."""
    fields: dict[str, Any] = {
        name.replace("-", "_"): (model | None, Field(default=None, alias=name))
        for name, model in target_models
    }
    targets = create_model("TargetsConfig", __base__=TargetsBase, **fields)
    return create_model("Params", __base__=Params, targets=(targets, ...))


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


def parse_params(raw: Any, target_models: TargetModels, source: str = "params.yaml") -> Params:
    """Validate an already-loaded mapping; raises ConfigError with one line.

    ``target_models``: (name, config model) of each known target (``edgeproof.params``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return params_model(target_models).model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def read_params(path: Path) -> Any:
    """params.yaml's raw mapping; relative paths in it stay relative to its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read params file ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
