"""The interface of a task kind, chosen once per run (``edgeproof.tasks.registry``).

A task kind owns what differs between, say, a classifier and a language model: the model
file it takes and how it is checked, how its data files are checked and what truth they
hold, which measurement harness runs its candidates, and how one candidate's measurements
become a ``CandidateSummary`` (the gates then decide every task alike).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edgeproof.config import MeasureConfig, Params
from edgeproof.data.dataset import LabelKind
from edgeproof.data.feed import FeedLayout
from edgeproof.records import Candidate, CandidateSummary
from edgeproof.records.measurement import (
    HeadToHeadRun,
    InputSpec,
    MeasureJob,
    Progress,
    TargetMeasurements,
)
from edgeproof.targets.base import ModelFormat

Summarizer = Callable[[Candidate], CandidateSummary]


class TaskKind(Protocol):
    """One kind of model task, e.g. ``classification``."""

    name: str
    model_format: ModelFormat  # the model file its targets must take
    label_kind: LabelKind  # how the ``labels`` array of its data files is read

    def inspect_model(self, model: Path, params: Params) -> list[InputSpec]:
        """The model's inputs, after the opening check (raises InputError/ConfigError)."""
        ...

    def feed_layout(self, model: Path, params: Params) -> FeedLayout:
        """How data files feed the model (item axes, constants, streaming state)."""
        ...

    def check_data(
        self, path: Path, what: str, specs: list[InputSpec], params: Params, layout: FeedLayout
    ) -> None:
        """Refuse a data file (``what``: eval or calibration) this task cannot use."""
        ...

    def load_truth(self, eval_data: Path, params: Params, root: Path, layout: FeedLayout) -> Any:
        """What candidates are scored against on the eval split (labels, token windows, the
        team's metric imported from the project at ``root``)."""
        ...

    def num_classes(self, params: Params) -> int | None:
        """Classes the data gate checks the eval labels against (None: no class labels)."""
        ...

    def measure(
        self,
        baseline: Candidate,
        candidates: list[Candidate],
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> TargetMeasurements:
        """Every candidate measured against the baseline (fresh subprocesses)."""
        ...

    def head_to_head(
        self,
        a: Candidate,
        b: Candidate,
        job: MeasureJob,
        settings: MeasureConfig,
        progress: Progress,
    ) -> HeadToHeadRun | None:
        """Two finalists timed against each other (None: this task's harness cannot)."""
        ...

    def summarizer(
        self, baseline: Candidate, measured: TargetMeasurements, truth: Any, params: Params
    ) -> Summarizer:
        """A function giving one measured candidate's summary (raises on a bad output)."""
        ...
