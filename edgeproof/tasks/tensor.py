"""Task kinds of ONNX models with tensor outputs: classification, embedding, regression, raw.

The model is an ONNX graph whose inputs the data files feed one array each. Candidates are
timed by the interleaved harness (``edgeproof.measure.harness``), their eval outputs scored
per item against the baseline's and the labels (``edgeproof.evaluate.scores``), and summarized with
confidence intervals (``gates.summarize``). The kinds differ only in their labels:
class ids (classification, accuracy and top-1 agreement), target values (regression, MAE),
or none (embedding and raw: fidelity to the baseline per output tensor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import MeasureConfig, Params
from edgeproof.data.dataset import Dataset, LabelKind, load_dataset
from edgeproof.data.feed import FeedLayout
from edgeproof.errors import ConfigError, InputError
from edgeproof.evaluate.custom_metric import LoadedMetric, load_metric
from edgeproof.evaluate.probe import tensor_probe_judge
from edgeproof.evaluate.scores import Scoring, load_outputs, score_candidate
from edgeproof.gates.search import ProbeResult
from edgeproof.gates.summarize import summarize
from edgeproof.measure.harness import measure_head_to_head, measure_target
from edgeproof.onnx.model import check_data_matches, check_onnx, feed_layout
from edgeproof.onnx.observe import observe_outputs, settle_inputs
from edgeproof.records import Candidate, CandidateSummary, CustomMetricScores, OpCoverage
from edgeproof.records.measurement import (
    HeadToHeadRun,
    InputSpec,
    MeasureJob,
    Progress,
    TargetMeasurements,
)
from edgeproof.targets.base import ModelFormat
from edgeproof.tasks.base import Signature, Summarizer, TaskKind


@dataclass(frozen=True)
class TensorTruth:
    """What tensor candidates are scored against: the eval labels / targets (None for a
    label-free task), each item's slice, and the team's metric (``model.metric``)."""

    labels: np.ndarray | None
    slices: np.ndarray | None = None
    metric: LoadedMetric | None = None
    layout: FeedLayout = field(
        default_factory=FeedLayout
    )  # which outputs are gated, and what the class one holds

    def head(self, n: int) -> TensorTruth:
        """The truth of the first ``n`` eval items (a candidate scored on fewer items)."""
        labels = None if self.labels is None else self.labels[:n]
        slices = None if self.slices is None else self.slices[:n]
        return replace(self, labels=labels, slices=slices)

    def metric_scores(
        self, candidate: str, outputs: dict[str, np.ndarray], base: dict[str, np.ndarray]
    ) -> CustomMetricScores:
        assert self.metric is not None
        cand, base_scores, drop = self.metric.scores(candidate, outputs, base, self.labels)
        config = self.metric.config
        return CustomMetricScores(
            config.name, config.higher_is_better, cand, base_scores, drop, self.slices
        )


@dataclass(frozen=True)
class TensorTask(TaskKind):
    """An ONNX task kind; ``labels``: what its eval data must label (None: nothing);
    ``scoring``: how its outputs are scored (``edgeproof.evaluate.scores``)."""

    name: str
    labels: LabelKind | None
    scoring: Scoring
    model_format: ModelFormat = "onnx"

    @property
    def label_kind(self) -> LabelKind:  # type: ignore[override]
        return self.labels or "values"

    @property
    def stops_on_agreement(self) -> bool:  # type: ignore[override]
        """A classifier's candidate can fail early on its top-1 agreement."""
        return self.labels == "classes"

    def inspect_model(self, model: Path, params: Params) -> list[InputSpec]:
        specs = check_onnx(model)
        wanted = params.model.input_name
        if wanted is not None and wanted not in {s.name for s in specs}:
            raise ConfigError(
                f"params.yaml: model.input_name: {wanted!r} is not an input of "
                f"the model (inputs: {', '.join(s.name for s in specs)})"
            )
        return specs

    def feed_layout(self, model: Path, params: Params, eval_data: Path | None = None) -> FeedLayout:
        """From the graph and params; an input whose batch is fixed at 1 before a dynamic
        axis is settled by the eval file's shapes (``onnx.observe.settle_inputs``)."""
        if eval_data is None:
            return feed_layout(model, params.model.inputs, params.model.outputs)
        return settle_inputs(model, params.model, eval_data, params.data.labels_key)

    def observe(
        self, model: Path, params: Params, eval_data: Path, layout: FeedLayout
    ) -> tuple[FeedLayout, tuple[str, ...]]:
        """The FP32 model run on the first eval items in a child process
        (``onnx.observe.observe_outputs``): outputs' item axes, gated outputs, class kind."""
        return observe_outputs(
            model,
            params.model,
            eval_data,
            params.data.labels_key,
            self.label_kind,
            layout,
            classifier=self.num_classes(params) is not None,
        )

    def check_data(
        self, path: Path, what: str, specs: list[InputSpec], params: Params, layout: FeedLayout
    ) -> None:
        gated = params.data.checks.enabled  # the data gate reports values and labels in full
        data = load_dataset(path, params.data.labels_key, gated, self.label_kind, layout)
        check_data_matches(specs, data, what)
        if what != "eval" or self.labels is None:
            return
        if data.labels is None:
            need = "labels array (a classifier needs them)"
            if self.labels == "values":
                need = f"{params.data.labels_key!r} array (a {self.name} needs targets)"
            raise InputError(f"eval data has no {need}: {path}")
        if self.labels == "classes" and not gated:
            _check_class_range(data, params.model.num_classes, path)

    def load_truth(
        self, eval_data: Path, params: Params, root: Path, layout: FeedLayout
    ) -> TensorTruth:
        data = load_dataset(eval_data, params.data.labels_key, False, self.label_kind, layout)
        config = params.model.metric
        metric = None if config is None else load_metric(root, config)
        return TensorTruth(data.labels, data.slices, metric, layout)

    def num_classes(self, params: Params) -> int | None:
        return params.model.num_classes if self.labels == "classes" else None

    def serving_example(
        self, eval_data: Path, params: Params, layout: FeedLayout
    ) -> tuple[Mapping[str, np.ndarray], Signature | None]:
        """The first eval item; the signature is read from the ONNX graph."""
        data = load_dataset(eval_data, params.data.labels_key, False, self.label_kind, layout)
        return data.batch(0, 1), None

    def measure(
        self,
        baseline: Candidate,
        candidates: list[Candidate],
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> TargetMeasurements:
        return measure_target(baseline, candidates, job, settings, progress)

    def head_to_head(
        self,
        a: Candidate,
        b: Candidate,
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> HeadToHeadRun | None:
        return measure_head_to_head(a, b, job, settings, progress)

    def probe_judge(
        self, params: Params, layout: FeedLayout
    ) -> Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], ProbeResult]:
        """Fidelity to the baseline on the gated outputs (``edgeproof.evaluate.probe``)."""
        return tensor_probe_judge(self.scoring, params.gates.fidelity, layout)

    def summarizer(
        self, baseline: Candidate, measured: TargetMeasurements, truth: Any, params: Params
    ) -> Summarizer:
        fidelity = params.gates.fidelity
        base_outputs = load_outputs(measured.outputs[baseline.name])
        layout = truth.layout

        def summarize_one(cand: Candidate) -> CandidateSummary:
            outputs = load_outputs(measured.outputs[cand.name])
            gated = layout.gated(outputs)  # model.outputs, or as observed at resolve
            # a candidate failed early on speed was scored on the first items only
            items = len(next(iter(gated.values())))
            base = {name: array[:items] for name, array in base_outputs.items()}
            seen = truth.head(items)
            scores = score_candidate(
                self.scoring,
                cand.name,
                gated,
                layout.gated(base),
                seen.labels,
                fidelity,
                kind=layout.output_kind(next(iter(gated))),
            )
            if seen.metric is not None:
                scores = replace(scores, metric=seen.metric_scores(cand.name, outputs, base))
            summary = summarize(
                cand.name,
                cand.precision,
                cand.is_baseline,
                measured.raw[cand.name],
                scores,
                params.measure,
                fidelity.low_quantile,
            )
            return with_op_coverage(summary, cand).model_copy(update={"task": self.name})

        return summarize_one


def with_op_coverage(summary: CandidateSummary, candidate: Candidate) -> CandidateSummary:
    """The summary with the op coverage its compiler reported (``recipe["op_coverage"]``)."""
    found = candidate.recipe.get("op_coverage")
    if not found:
        return summary
    fields = {k: found.get(k) for k in OpCoverage.model_fields}
    return summary.model_copy(update={"op_coverage": OpCoverage(**fields)})


def _check_class_range(data: Dataset, num_classes: int, path: Path) -> None:
    assert data.labels is not None
    bad = (data.labels < 0) | (data.labels >= num_classes)
    if bad.any():
        raise InputError(
            f"eval labels outside 0..{num_classes - 1} (e.g. {int(data.labels[bad][0])}): {path}"
        )


CLASSIFICATION = TensorTask("classification", "classes", "classification")
EMBEDDING = TensorTask("embedding", None, "embedding")
REGRESSION = TensorTask("regression", "values", "regression")
RAW = TensorTask("raw", None, "raw")
