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
# The selection vocabulary as params.yaml spells it (gates.objectives describes each axis):
# `gates.objective` names one axis to minimize, the keys of `gates.weights` the axes of the
# weighted choice on the Pareto front ("latency" is median latency, "p90" p90 latency).
Objective = Literal["median_latency", "p90_latency", "size", "peak_rss"]
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

    function: Annotated[str, Field(pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="`file.py:function`: a Python file in the project (imported, never "
        "unpickled) and its function scoring each item from the candidate's outputs, the "
        "baseline's outputs and the eval labels / targets (or None)."
    )
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(
        "metric", description="The metric's name in checks, records and reports."
    )
    higher_is_better: bool = Field(
        True, description="The metric's direction: false when a lower score is better."
    )

    @property
    def file(self) -> Path:
        return Path(self.function.rsplit(":", 1)[0])

    @property
    def function_name(self) -> str:
        return self.function.rsplit(":", 1)[1]


Scalar = int | float | bool


class InputConfig(StrictModel):
    """How one model input is fed: a constant or a streaming state the data file does not
    give per item, or the scale and offset that cast the file's integer data.

    ``value``: a constant fed to every call (a sample rate; a nested list for a fixed
    tensor), cast to the input's dtype. ``carried_from``: a streaming state: the named
    output of each call is fed back as this input at the next one, zeros at the start of
    every stream (the eval items are one stream in file order, or several by the data's
    ``stream`` array). ``scale`` / ``offset``: a float input given ``uint8`` / ``int8`` /
    ``uint16`` / ``int16`` data gets ``value * scale + offset`` in its own dtype, cast one
    batch at a time as the data is fed (the file and the loaded arrays stay integer).
    """

    value: Scalar | list[Any] | None = Field(
        None,
        description="A constant fed to this input at every call (a sample rate; a nested "
        "list for a fixed tensor), cast to the input's dtype. Give it or `carried_from`.",
    )
    carried_from: str | None = Field(
        None,
        description="A streaming state: the named output of each call is fed back as this "
        "input at the next call, zeros at the start of every stream. Give it or `value`.",
    )
    scale: Annotated[float, Field(allow_inf_nan=False)] = Field(
        1.0,
        description="A float input whose data array is uint8, int8, uint16 or int16 (kept so "
        "in the file and in memory: a quarter of float32's size) is fed `value * scale + "
        "offset` in the input's dtype, cast one batch at a time; e.g. 0.00392156862745098 "
        "(1/255) for 0-255 images the model takes as 0-1. Not for an integer input, float "
        "data, `value` or `carried_from`.",
    )
    offset: Annotated[float, Field(allow_inf_nan=False)] = Field(
        0.0, description="Added after `scale` when integer data is cast to a float input."
    )

    @property
    def scaled(self) -> bool:
        """Whether a scale or an offset is set (integer data cast with them)."""
        return (self.scale, self.offset) != (1.0, 0.0)

    @model_validator(mode="after")
    def _one(self) -> InputConfig:
        if self.value is not None and self.carried_from is not None:
            raise ValueError("give one of value or carried_from, not both")
        if self.scaled and (self.value is not None or self.carried_from is not None):
            raise ValueError(
                "scale / offset cast the data file's integer array for this input: not with "
                "value or carried_from"
            )
        if not self.scaled and self.value is None and self.carried_from is None:
            raise ValueError("give value, carried_from, or scale / offset")
        return self


ItemAxis = Annotated[int, Field(ge=0)] | None


def _none_axis(value: Any) -> Any:
    """``item_axis: none`` (YAML reads it as a string) is no item axis, as null is."""
    return None if isinstance(value, str) and value.lower() == "none" else value


class ModelInputConfig(InputConfig):
    """``model.inputs.<name>``: :class:`InputConfig` and ``item_axis``, the axis the data
    file stacks this input's items on (None: no item axis, a constant fed to every call)."""

    item_axis: ItemAxis | Literal["auto"] = Field(
        "auto",
        description="The axis of this input that carries the items, in the model's layout "
        "(0 for `[N, 3, 224, 224]`; 0 for a fixed-batch `[1, 1, 64, width]` OCR input whose "
        "width is dynamic), or `none`: no item axis (a constant fed to every call). `auto`: "
        "read from the graph (its first dynamic axis, else the first fixed at 1); a fixed-1 "
        "axis before a dynamic one is decided by the data, else refused naming this key.",
    )

    _axis = field_validator("item_axis", mode="before")(_none_axis)

    @model_validator(mode="after")
    def _one(self) -> ModelInputConfig:  # overrides InputConfig's: item_axis alone is enough
        if self.value is not None and self.carried_from is not None:
            raise ValueError("give one of value or carried_from, not both")
        if self.scaled and (self.value is not None or self.carried_from is not None):
            raise ValueError(
                "scale / offset cast the data file's integer array for this input: not with "
                "value or carried_from"
            )
        fed = self.value is not None or self.carried_from is not None
        if self.item_axis != "auto" and fed:
            raise ValueError("item_axis is for data the file gives: not with value or carried_from")
        if not self.scaled and not fed and self.item_axis == "auto":
            raise ValueError("give value, carried_from, or scale / offset, or item_axis")
        return self


OutputKind = Literal["logits", "probabilities", "labels"]


class OutputConfig(StrictModel):
    """``model.outputs``: one gated output: its name, the axis carrying its items and, for
    a classifier's class output, what it holds."""

    name: str = Field(description="The output's name in the graph.")
    item_axis: ItemAxis | Literal["auto"] = Field(
        "auto",
        description="The axis of this output that carries the items (1 for a CTC "
        "recognizer's `(T, batch, classes)`), or `none`: one value per call, not per item "
        "(not gated). `auto`: observed at resolve (the FP32 model run on the first eval "
        "items), whatever the graph declares.",
    )
    kind: OutputKind | None = Field(
        None,
        description="What a classifier's class output holds: `logits` (KL and top-1 on "
        "their softmax), `probabilities` (KL on their log, top-1 their argmax) or `labels` "
        "(integer class ids: accuracy and top-1 agreement, no KL). null: observed (integer: "
        "labels; rows of non-negative values summing to 1: probabilities; else logits).",
    )

    _axis = field_validator("item_axis", mode="before")(_none_axis)


def _outputs_list(value: Any) -> Any:
    """``model.outputs`` as a list: a mapping (ordered as written) or names become entries."""
    if isinstance(value, Mapping):
        return [{"name": k, **(v or {})} for k, v in value.items()]
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class ModelConfig(StrictModel):
    """The model under test and what it does."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(
        description="The model's name: `{model}` in `registry.model_name`, and the name in "
        "run records and reports."
    )
    path: Path = Field(
        description="The model file, relative to params.yaml: ONNX, or a GGUF file for the "
        "`language_model` task."
    )
    task: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        "classification",
        description="What the model does (an installed task kind), which decides how "
        "candidates are scored. `classification`: labels, accuracy, top-1 agreement, KL. "
        "`embedding` / `raw`: no labels, fidelity to the baseline per output tensor. "
        "`regression`: targets (array `data.labels_key`), MAE. `language_model`: a GGUF file "
        "and held-out token windows, llama.cpp-style KL, top-1 agreement and perplexity.",
    )
    input_name: str | None = Field(
        None,
        description="The model input the data is for: an error when the model has no input "
        "of that name. null: not checked (the model's single input).",
    )
    num_classes: Annotated[int, Field(ge=2)] = Field(
        10,
        description="Number of classes (`classification`): eval labels must lie in "
        "0..num_classes-1, and the data gate checks each class's share.",
    )
    metric: MetricConfig | None = Field(
        None,
        description="The team's own per-item metric (tensor tasks), gated by `gates.metric`; "
        "null: none.",
    )
    inputs: dict[str, ModelInputConfig] = Field(
        default_factory=dict,
        description="How model inputs are fed, by input name: a constant (`value`) or a "
        "streaming state (`carried_from`) the data file does not give per item, the "
        "`scale` / `offset` that cast its integer data to a float input, or the `item_axis` "
        "its items are stacked on.",
    )
    outputs: list[OutputConfig] | None = Field(
        None,
        description="The outputs that are gated, in this order (a classifier's class scores "
        "are the first): a list of names or of `{name, item_axis, kind}` entries, e.g. "
        "`[{name: output_probability, kind: probabilities}]` for skl2onnx's classifier. "
        "null: every output with an item axis, in the graph's order (a classifier whose "
        "first output holds integer labels is refused: name its scores here).",
    )

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, value: Any) -> Any:
        return _outputs_list(value)

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, value: list[OutputConfig] | None) -> list[OutputConfig] | None:
        if value is not None:
            names = [o.name for o in value]
            if not names:
                raise ValueError("name at least one output, or leave it out (null: all)")
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"output {twice[0]!r} named twice")
        return value


class DataChecks(StrictModel):
    """The Great Expectations data gate on the eval and calibration sets (``None`` = off)."""

    enabled: bool = Field(
        True,
        description="Run the data gate before any optimization; false skips every check.",
    )
    min_eval_rows: Annotated[int, Field(ge=1)] = Field(
        100, description="Fewest items the eval set may have."
    )
    min_calibration_rows: Annotated[int, Field(ge=1)] = Field(
        10, description="Fewest items the calibration set may have."
    )
    value_min: float | None = Field(
        None,
        description="Every input value (both sets) must be at least this, as fed to the model "
        "(integer data after `model.inputs.<name>.scale` / `offset`); null: not checked.",
    )
    value_max: float | None = Field(
        None,
        description="Every input value (both sets) must be at most this, as fed to the model "
        "(integer data after `model.inputs.<name>.scale` / `offset`); null: not checked.",
    )
    min_class_share: Fraction | None = Field(
        None,
        description="Each class's share of the eval labels must be at least this "
        "(classification); null: not checked.",
    )
    max_class_share: Fraction | None = Field(
        None,
        description="Each class's share of the eval labels must be at most this "
        "(classification); null: not checked.",
    )
    no_leakage: bool = Field(
        True, description="No eval item (by content hash) may be in the calibration set."
    )

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

    eval: Path = Field(
        description="The eval set (.npz, relative to params.yaml): every candidate's accuracy "
        "and fidelity are scored on it."
    )
    calibration: Path = Field(
        description="The calibration set (.npz, same layout): what quantization recipes "
        "calibrate on; never scored."
    )
    labels_key: str = Field(
        "labels",
        description="The array holding the labels (classification) or targets (regression).",
    )
    checks: DataChecks = DataChecks()
    dvc_sync: Literal["refuse", "warn", "off"] = Field(
        "refuse",
        description="When a DVC-tracked file differs from dvc.lock: `refuse` the run, `warn`, "
        "or `off` (not checked).",
    )


class ExampleConfig(StrictModel):
    """DVC stage parameters of the bundled example (sklearn digits CNN)."""

    seed: int = Field(0, description="Seed of the data split and of training.")
    image_size: Annotated[int, Field(ge=8, le=128)] = Field(
        64, description="Side in pixels the 8x8 digits are scaled to (the model's input)."
    )
    eval_size: Annotated[int, Field(ge=10)] = Field(
        1000, description="Images in the eval split (stratified)."
    )
    calibration_size: Annotated[int, Field(ge=10)] = Field(
        200, description="Images in the calibration split, taken from the rest (stratified)."
    )
    epochs: Annotated[int, Field(ge=1)] = Field(8, description="Training epochs.")
    batch_size: Annotated[int, Field(ge=1)] = Field(64, description="Training batch size.")
    learning_rate: PositiveFloat = Field(2e-3, description="Adam learning rate.")
    threads: Annotated[int, Field(ge=1)] = Field(
        2,
        description="Training threads, fixed: how a float sum is split over threads changes "
        "its rounding, so the model file is reproducible only at the same count.",
    )


class LlamaExampleConfig(StrictModel):
    """DVC stage parameters of the language-model example (a byte-level llama, trained here)."""

    seconds: Annotated[float, Field(gt=0.0, le=300.0)] = Field(
        240.0, description="Wall-clock training budget in seconds."
    )
    seed: int = Field(0, description="Seed of the weights and of the training batches.")
    threads: Annotated[int, Field(ge=1)] = Field(2, description="Training threads.")
    file_type: Literal["F16", "F32"] = Field(
        "F16", description="Precision of the written GGUF (the gate's baseline)."
    )
    eval_windows: Annotated[int, Field(ge=2)] = Field(
        16, description="Held-out token windows in the eval set."
    )
    calibration_windows: Annotated[int, Field(ge=1)] = Field(
        32, description="Training token windows in the calibration set (the importance matrix's)."
    )


class TargetCommon(StrictModel):
    """Fields every target has: where it runs and on what.

    Each target module subclasses this with its own section (``edgeproof.targets``); the
    ``targets`` mapping of params.yaml is validated against the sections of the known
    targets (``edgeproof.params.model``), so an unknown target name is an error naming it.
    """

    enabled: bool = Field(
        True, description="Gate this target; false keeps its section but skips it."
    )
    work_pool: str = Field(
        "edge-intel-cpu",
        description="The Prefect work pool of the device that measures this target; at most "
        "one measurement at a time runs per pool (tag `edgeproof-device:<work_pool>`).",
    )
    device: str = Field(
        "cpu",
        description="The device the runtime runs on, where the target has a choice (OpenVINO, "
        "Edge TPU, MLX); the CPU-only targets ignore it.",
    )
    threads: Annotated[int, Field(ge=1)] = Field(
        2,
        description="Inference threads of every candidate (set explicitly: a runtime's "
        "default uses every core, making timings depend on the machine's load).",
    )

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

    warmup_runs: Annotated[int, Field(ge=1)] = Field(
        20,
        description="Untimed warm-up runs of each worker, at least: more follow until two "
        "consecutive chunk medians agree within `warmup_tolerance`.",
    )
    max_warmup_runs: Annotated[int, Field(ge=1)] = Field(
        500, description="Warm-up stops here even if the timings have not settled."
    )
    warmup_tolerance: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.05,
        description="Warm-up is over when two consecutive chunk medians differ by at most "
        "this share.",
    )
    min_samples: Annotated[int, Field(ge=10)] = Field(
        100,
        description="Latency samples per candidate before sampling may stop (LoadGen: a p90 "
        "needs at least 64); a slow candidate still gets them.",
    )
    max_samples: Annotated[int, Field(ge=10)] = Field(
        3000, description="Latency samples per candidate at most."
    )
    block_size: Annotated[int, Field(ge=1)] = Field(
        25,
        description="Timed runs per block: baseline and candidate alternate block by block, "
        "in an order drawn at random per pair, and the speedup pairs block medians.",
    )
    block_warmup: Annotated[int, Field(ge=0)] = Field(
        3,
        description="Untimed runs at the start of each block: switching processes leaves "
        "caches cold.",
    )
    target_rel_halfwidth: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.02,
        description="Sampling stops once the CIs of the speedup and of both medians are "
        "within this share of their value (after `min_samples`).",
    )
    throughput_batch: Annotated[int, Field(ge=1)] = Field(
        32, description="Batch size of the throughput runs."
    )
    throughput_runs: Annotated[int, Field(ge=2)] = Field(
        12, description="Timed throughput runs per candidate."
    )
    eval_batch: Annotated[int, Field(ge=1)] = Field(
        32, description="Batch size for computing the outputs on the eval set."
    )
    early_fail_eval_items: Annotated[int, Field(ge=1)] = Field(
        100,
        description="A candidate the speed gate failed early is scored on its first N eval "
        "items only (with two throughput runs); also the items of the one early look at "
        "top-1 agreement.",
    )
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        0.99,
        description="Confidence level of every interval the gates decide on (and of the "
        "early-stop looks).",
    )
    bootstrap_resamples: Annotated[int, Field(ge=100)] = Field(
        2000, description="Resamples of the bootstrap confidence intervals."
    )
    max_seconds: PositiveFloat = Field(
        60.0,
        description="Timing budget per candidate in seconds (checked after `min_samples`).",
    )
    timeout_seconds: PositiveFloat = Field(
        300.0, description="A measurement worker silent this long (seconds) is killed."
    )
    max_load_average: PositiveFloat | None = Field(
        None,
        description="A 1-minute load average above this makes the machine busy (see "
        "`on_busy`); null: not checked.",
    )
    on_busy: Literal["warn", "refuse"] = Field(
        "warn",
        description="On a busy machine: `warn` (recorded with the measurement) or `refuse` "
        "to measure.",
    )
    rerun_factor: Annotated[float, Field(ge=1.0, le=10.0)] = Field(
        2.0,
        description="A rerun (`gates.on_inconclusive: rerun`) gets this many times the "
        "samples and seconds, with another seed.",
    )
    head_to_head: bool = Field(
        True,
        description="Time close finalists, compared only via the baseline, against each "
        "other (interleaved) before picking the winner.",
    )
    device_root: str = Field(
        "/",
        description="Folder under which the device's `/sys`, `/proc` and `/etc` are read: "
        "clocks, temperatures and throttling around every block, and the device id "
        "(a recorded tree in tests).",
    )
    clock_cpus: list[Annotated[int, Field(ge=0)]] | None = Field(
        None,
        description="The measuring cores whose frequency is checked around every block "
        "(e.g. the cores the runner is pinned to); null: every core with cpufreq.",
    )
    clock_tolerance: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.05,
        description="A block is at unsteady clocks when a measuring core's frequency moved "
        "by more than this share of its max between the block's start and end, or was "
        "more than this share below its max.",
    )
    seed: int = Field(0, description="Seed of the block order and of the bootstrap resampling.")

    @model_validator(mode="after")
    def _consistent(self) -> MeasureConfig:
        if self.min_samples > self.max_samples:
            raise ValueError("min_samples must not exceed max_samples")
        if self.warmup_runs > self.max_warmup_runs:
            raise ValueError("warmup_runs must not exceed max_warmup_runs")
        return self


class AccuracyGate(StrictModel):
    """Top-1 accuracy on the labelled eval set, paired with the baseline's (classification;
    skipped without labels)."""

    max_drop_abs: Fraction | None = Field(
        0.01,
        description="Largest accuracy drop against the baseline, in absolute terms (0.01 = "
        "1 point).",
    )
    max_drop_rel: Fraction | None = Field(
        None, description="Largest accuracy drop as a share of the baseline's accuracy."
    )


class FidelityGate(StrictModel):
    """Fidelity to the baseline's outputs.

    Classification: top-1 agreement and KL of the softmax. Label-free tasks (embedding,
    regression, raw), per output tensor and item: cosine similarity (its mean, and its
    ``low_quantile``, e.g. the 1% worst items), relative L2 error, and for embeddings the
    share of each item's ``knn_k`` nearest neighbours that stay the same.
    """

    min_top1_agreement: Fraction | None = Field(
        0.98,
        description="Smallest share of eval items whose top-1 class matches the baseline's "
        "(classification).",
    )
    max_kl: Annotated[float, Field(ge=0.0)] | None = Field(
        0.05,
        description="Largest mean KL divergence of the candidate's softmax from the "
        "baseline's, in nats (classification).",
    )
    min_cosine_mean: Annotated[float, Field(ge=-1.0, le=1.0)] | None = Field(
        0.99,
        description="Smallest mean cosine similarity to the baseline's outputs, per output "
        "tensor (label-free tasks).",
    )
    min_cosine_low: Annotated[float, Field(ge=-1.0, le=1.0)] | None = Field(
        0.95,
        description="Smallest `low_quantile` of the per-item cosine similarity (the worst "
        "items), per output tensor (label-free tasks).",
    )
    low_quantile: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(
        0.05,
        description="The quantile `min_cosine_low` is checked at (0.05: p5; a CI needs about "
        "100 items).",
    )
    max_rel_l2: Annotated[float, Field(ge=0.0)] | None = Field(
        0.1,
        description="Largest relative L2 error against the baseline's outputs, per output "
        "tensor (label-free tasks).",
    )
    min_knn_agreement: Fraction | None = Field(
        0.9,
        description="Smallest share of each item's `knn_k` nearest neighbours that stay the "
        "same (embedding).",
    )
    knn_k: Annotated[int, Field(ge=1)] = Field(
        10, description="Neighbours per item for `min_knn_agreement`."
    )


class RegressionGate(StrictModel):
    """Regression tasks: the candidate's MAE against the targets, paired with the baseline's."""

    max_mae_increase: Annotated[float, Field(ge=0.0)] | None = Field(
        None, description="Largest MAE increase against the baseline, in target units."
    )
    max_mae_increase_rel: Fraction | None = Field(
        0.05, description="Largest MAE increase as a share of the baseline's MAE."
    )


class MetricGate(StrictModel):
    """The team's own metric (``model.metric``): its mean drop against the baseline, paired
    per item (a drop = worse in the metric's direction), absolute or relative to the
    baseline's mean; with a ``slice`` array in the eval data, the worst slice's drop too."""

    max_drop_abs: Annotated[float, Field(ge=0.0)] | None = Field(
        None, description="Largest drop of the metric's mean, in the metric's units."
    )
    max_drop_rel: Fraction | None = Field(
        0.02, description="Largest drop of the metric's mean, as a share of the baseline's."
    )
    max_worst_slice_drop_abs: Annotated[float, Field(ge=0.0)] | None = Field(
        None, description="Largest drop of the worst slice's mean, in the metric's units."
    )
    max_worst_slice_drop_rel: Fraction | None = Field(
        0.05,
        description="Largest drop of the worst slice's mean, as a share of that slice's "
        "baseline mean.",
    )


class LatencyGate(StrictModel):
    """Speed checks. ``on_inconclusive`` overrides ``gates.on_inconclusive`` for them alone:
    ``warn`` makes the speed gate a non-regression gate, blocking only a candidate whose
    whole CI misses the limit (for models whose speed is within a runner's noise)."""

    p90_budget_ms: PositiveFloat | None = Field(
        None,
        description="Largest p90 latency in ms at batch 1 (checked on the baseline too).",
    )
    min_speedup: PositiveFloat | None = Field(
        1.2,
        description="Smallest speedup of the median latency over the baseline, paired "
        "block by block (1.2 = 20% faster; below 1 allows a slowdown).",
    )
    on_inconclusive: Literal["fail", "warn"] | None = Field(
        None,
        description="Overrides `gates.on_inconclusive` for the speed checks alone; `warn` "
        "blocks only a candidate whose whole CI misses the limit. null: the general setting.",
    )
    require_steady_clocks: bool = Field(
        False,
        description="Make a speed check inconclusive when any of its blocks was timed at "
        "unsteady clocks (a core's frequency moved or sat below its max, a throttle bit, a "
        "thermal trip point: `measure.clock_tolerance`); false: only noted in its message.",
    )


class MemoryGate(StrictModel):
    """Peak resident memory of the measuring process (deterministic: pass or fail)."""

    max_peak_rss_mb: PositiveFloat | None = Field(
        None, description="Largest peak RSS in MB (checked on the baseline too)."
    )
    min_reduction: Annotated[float, Field(gt=-1.0, lt=1.0)] | None = Field(
        None,
        description="Smallest peak RSS reduction against the baseline, as a share (negative: "
        "an allowed increase).",
    )


class SizeGate(StrictModel):
    """The candidate's files on disk."""

    max_mb: PositiveFloat | None = Field(
        None, description="Largest total size of the candidate's files in MB (1 MB = 10^6 B)."
    )


class EnergyGate(StrictModel):
    """Energy per inference, where the runner exposes a counter (Linux RAPL powercap).

    Runners without a readable counter skip these checks, saying why.
    """

    max_mj_per_inference: PositiveFloat | None = Field(
        None, description="Largest energy per inference in millijoules."
    )
    min_reduction: Annotated[float, Field(gt=-1.0, lt=1.0)] | None = Field(
        None,
        description="Smallest energy-per-inference reduction against the baseline, as a "
        "share (negative: an allowed increase).",
    )


class OpCoverageGate(StrictModel):
    """Accelerator targets that compile the graph (Edge TPU): the share of ops mapped to the
    accelerator. Ops after the first one that falls back run on the CPU, each transfer
    costs a round trip, so a low share usually means the accelerator buys nothing."""

    min_accelerator_share: Fraction | None = Field(
        0.9,
        description="Smallest share of the graph's ops the compiler mapped to the "
        "accelerator; a miss names the first op left on the CPU.",
    )


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
    on_inconclusive: Literal["fail", "warn", "rerun"] = Field(
        "fail",
        description="A check whose CI straddles its limit: `fail` the candidate, `warn` "
        "(pass with a warning), or `rerun` (measure such candidates again, `rerun_factor` "
        "times longer, then fail if still inconclusive).",
    )
    # how the winner is picked among passing candidates: lowest ``objective``, or, when
    # ``weights`` is set, the lowest weighted sum of min-max normalized metrics among the
    # passing candidates on the (noise-aware) Pareto front
    objective: Objective = Field(
        "median_latency",
        description="How the winner is picked among passing candidates: the lowest value "
        "of this (unless `weights` is set).",
    )
    weights: dict[SelectionMetric, Annotated[float, Field(ge=0.0)]] | None = Field(
        None,
        description="Pick the winner by the lowest weighted sum of min-max normalized "
        "metrics among the passing candidates on the (noise-aware) Pareto front, e.g. "
        "`{latency: 2, size: 1}`; at least one weight above 0. null: use `objective`.",
    )
    speed_tie_tolerance: Annotated[float, Field(ge=0.0, le=0.2)] = Field(
        0.01,
        description="A latency lead within this share is a tie, decided by size, memory, "
        "then recipe order (two processes running the same file differ by ~1%).",
    )

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

    enabled: bool = Field(
        True,
        description="Re-measure the current champion beside the winner before promoting it.",
    )
    max_slowdown: Fraction = Field(
        0.02,
        description="The winner is worse when its whole speedup-vs-champion CI lies below "
        "1 - this (per-process layout effects; A/A runs measure ~0.1%).",
    )
    max_accuracy_drop: Fraction = Field(
        0.0,
        description="The winner is worse when its whole accuracy-drop-vs-champion CI lies "
        "above this.",
    )
    same_source_tolerance: Fraction = Field(
        0.03,
        description="From the champion's own source (model, data and params), the winner "
        "replaces it only when its whole paired CI is this much better.",
    )


class RegistryConfig(StrictModel):
    """MLflow model registry naming and aliases (stages are deprecated: aliases only)."""

    model_name: str = Field(
        "{model}.{target}",
        description="The registered model's name, one per model and target; only the "
        "placeholders `{model}` and `{target}` may appear.",
    )
    champion_alias: str = Field(
        "champion", description="Alias of the promoted winner (the version to deploy)."
    )
    challenger_alias: str = Field(
        "challenger",
        description="Alias set on each registered winner (before the champion alias may "
        "move to it); differs from `champion_alias`.",
    )
    lock_timeout_seconds: PositiveFloat = Field(
        120.0,
        description="Seconds to wait for another run's alias move (alias moves are "
        "compare-and-set under a registry lock).",
    )
    lock_stale_seconds: PositiveFloat = Field(
        900.0,
        description="A registry lock older than this (seconds) was left by a dead run and "
        "is broken.",
    )
    compare_with_champion: ChampionCompare = ChampionCompare()
    fallback_to_baseline: bool = Field(
        True,
        description="When no optimized candidate passes but the baseline passed every "
        "quality gate, register the baseline and make it `champion_alias` (reason "
        '"fallback: no optimized candidate passed"), under the same champion rules (an '
        "unchanged push moves nothing); the run still ends `blocked` (exit 1). Off: nothing "
        "is registered when nothing passes.",
    )

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

    uri: str = Field(
        "sqlite:///mlflow.db",
        description="MLflow tracking URI; `MLFLOW_TRACKING_URI` in the environment wins.",
    )
    artifact_location: Path = Field(
        Path("mlartifacts"),
        description="Artifact folder of new experiments in a local store, relative to "
        "params.yaml (a tracking server decides its own).",
    )


class ReportConfig(StrictModel):
    """Where the gate writes its reports."""

    dir: Path = Field(
        Path("reports"),
        description="Folder each run's report is written to, relative to params.yaml "
        "(`edgeproof run --report-dir` overrides it).",
    )


class SigningConfig(StrictModel):
    """Ed25519 signatures of every verdict's evidence. The private key: ``key_file`` (a path,
    relative to params.yaml; keep it out of git) else ``$EDGEPROOF_SIGNING_KEY``; neither
    leaves the evidence unsigned unless ``required``. ``public_key`` (base64, PEM, or a
    file) is what ``edgeproof pull`` trusts when neither ``--public-key`` nor
    ``$EDGEPROOF_PUBLIC_KEY`` is given."""

    key_file: Path | None = Field(
        None,
        description="The Ed25519 private key file, relative to params.yaml (keep it out of "
        "git); null: `$EDGEPROOF_SIGNING_KEY`.",
    )
    public_key: str | None = Field(
        None,
        description="The public key `edgeproof pull` trusts (base64, PEM, or a file) when "
        "neither `--public-key` nor `$EDGEPROOF_PUBLIC_KEY` is given.",
    )
    required: bool = Field(
        False, description="Refuse to run without a signing key (else: evidence unsigned)."
    )


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
GateModels = tuple[tuple[str, type[StrictModel]], ...]  # a task kind's own gates section


@functools.cache
def gates_model(gate_models: GateModels) -> type[GatesConfig]:
    """``GatesConfig`` with one section per (name, model) a task kind adds (its defaults)."""
    fields: dict[str, Any] = {name: (model, model()) for name, model in gate_models}
    return create_model("GatesConfig", __base__=GatesConfig, __doc__=GatesConfig.__doc__, **fields)


@functools.cache
def params_model(target_models: TargetModels, gate_models: GateModels = ()) -> type[Params]:
    """``Params`` whose ``targets`` section has one optional field per (name, config model)
    and whose ``gates`` section has the task kinds' own sections (``gate_models``)."""
    fields: dict[str, Any] = {
        name.replace("-", "_"): (model | None, Field(default=None, alias=name))
        for name, model in target_models
    }
    targets = create_model("TargetsConfig", __base__=TargetsBase, **fields)
    gates = gates_model(gate_models)
    return create_model("Params", __base__=Params, targets=(targets, ...), gates=(gates, gates()))


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


def parse_params(
    raw: Any,
    target_models: TargetModels,
    source: str = "params.yaml",
    gate_models: GateModels = (),
) -> Params:
    """Validate an already-loaded mapping; raises ConfigError with one line.

    ``target_models``: (name, config model) of each known target; ``gate_models``: each task
    kind's own gates section (``edgeproof.params.model``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return params_model(target_models, gate_models).model_validate(raw)
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
