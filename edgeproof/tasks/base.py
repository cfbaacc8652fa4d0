"""The interface of a task kind, chosen once per run (``edgeproof.tasks.registry``).

A task kind owns what differs between, say, a classifier and a language model, in one
module: the model file it takes and how it is checked, how its data files are checked and
what truth they hold, which measurement harness runs its candidates, how one candidate's
measurements become a ``CandidateSummary``, its own gate section and checks, the MLflow
metrics and report lines of its own figures, and the example a registered model carries.
The gates then decide every task alike. A kind subclasses ``TaskKind`` and registers an
instance under the entry-point group ``edgeproof.tasks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeproof.config import MeasureConfig, Params, StrictModel
from edgeproof.data.dataset import LabelKind
from edgeproof.data.feed import FeedLayout
from edgeproof.gates.checks import KindChecks
from edgeproof.gates.search import ProbeResult
from edgeproof.records import Candidate, CandidateSummary, Estimate, TargetOutcome
from edgeproof.records.measurement import (
    HeadToHeadRun,
    InputSpec,
    MeasureJob,
    Progress,
    TargetMeasurements,
)
from edgeproof.targets.base import ModelFormat

Summarizer = Callable[[Candidate], CandidateSummary]
Signature = tuple[Sequence[InputSpec], Sequence[InputSpec]]


class TaskKind:
    """One kind of model task, e.g. ``classification``: subclass it and override what the
    kind needs (the methods that raise ``NotImplementedError`` at least)."""

    name: str
    model_format: ModelFormat  # the model file its targets must take
    label_kind: LabelKind  # how the ``labels`` array of its data files is read
    takes_metric: ClassVar[bool] = True  # ``model.metric`` (the team's metric) applies
    stops_on_agreement: ClassVar[bool] = False  # early fail on fidelity.min_top1_agreement
    gate_section: ClassVar[type[StrictModel] | None] = None  # params.yaml ``gates.<name>``

    def inspect_model(self, model: Path, params: Params) -> list[InputSpec]:
        """The model's inputs, after the opening check (raises InputError/ConfigError)."""
        raise NotImplementedError

    def feed_layout(self, model: Path, params: Params, eval_data: Path | None = None) -> FeedLayout:
        """How data files feed the model (item axes, constants, streaming state); with
        ``eval_data``, its shapes settle what the model alone leaves open."""
        return FeedLayout()

    def observe(
        self, model: Path, params: Params, eval_data: Path, layout: FeedLayout
    ) -> tuple[FeedLayout, tuple[str, ...]]:
        """``layout`` as the model really runs on the first eval items (its outputs' item
        axes and kinds), and a warning line wherever that differs from what it declares."""
        return layout, ()

    def check_data(
        self, path: Path, what: str, specs: list[InputSpec], params: Params, layout: FeedLayout
    ) -> None:
        """Refuse a data file (``what``: eval or calibration) this task cannot use."""
        raise NotImplementedError

    def load_truth(self, eval_data: Path, params: Params, root: Path, layout: FeedLayout) -> Any:
        """What candidates are scored against on the eval split (labels, token windows, the
        team's metric imported from the project at ``root``)."""
        raise NotImplementedError

    def num_classes(self, params: Params) -> int | None:
        """Classes the data gate checks the eval labels against (None: no class labels)."""
        return None

    def serving_example(
        self, eval_data: Path, params: Params, layout: FeedLayout
    ) -> tuple[Mapping[str, np.ndarray], Signature | None]:
        """The first eval item as a registered model's input example, and the signature
        when the task knows it without the model file (None: read from the model)."""
        raise NotImplementedError

    def measure(
        self,
        baseline: Candidate,
        candidates: list[Candidate],
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> TargetMeasurements:
        """Every candidate measured against the baseline (fresh subprocesses)."""
        raise NotImplementedError

    def head_to_head(
        self,
        a: Candidate,
        b: Candidate,
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> HeadToHeadRun | None:
        """Two finalists timed against each other (None: this task's harness cannot)."""
        return None

    def summarizer(
        self, baseline: Candidate, measured: TargetMeasurements, truth: Any, params: Params
    ) -> Summarizer:
        """A function giving one measured candidate's summary (raises on a bad output);
        each summary names this kind in ``task``."""
        raise NotImplementedError

    def probe_judge(
        self, params: Params, layout: FeedLayout
    ) -> Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], ProbeResult] | None:
        """The verdict on a search's probe (baseline outputs, probe outputs, one row per
        call); None: this kind cannot judge probes (no search recipe)."""
        return None

    def checks(self) -> KindChecks | None:
        """The kind's own gate checks in place of accuracy and fidelity (None: those)."""
        return None

    def metrics(self, summary: CandidateSummary) -> dict[str, Estimate | float | None]:
        """MLflow metrics of the kind's own figures (an estimate adds ``_low``/``_high``)."""
        return {}

    def report_lines(self, outcome: TargetOutcome) -> list[str]:
        """Markdown lines of the kind's own figures for one target's section."""
        return []
