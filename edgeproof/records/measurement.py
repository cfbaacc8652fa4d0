"""Records of the measurement step: what a worker is given and what the harness returns.

Pure data like the rest of ``edgeproof.records``: the harness (``edgeproof.measure``), the
language-model harness, the judge, reports and tracking all pass these between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.records import RawMeasurement

Progress = Callable[[str], None]


@dataclass(frozen=True)
class InputSpec:
    """One model input as the model itself declares it (None = dynamic dimension)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class MeasureJob:
    """Everything a worker needs to rebuild the target and load a candidate.

    ``backend``: ``module:Class`` of the target backend and ``config_model`` of its config
    section, so a worker rebuilds any registered target (a test's too) from the job alone.
    ``stop_below_speedup``: the speed gate's limit, for an early verdict on a clear failure
    (``gates.sequential``); None times every candidate to the precision target.
    ``stop_below_agreement``: a classifier's top-1 agreement gate, looked at once on the
    first eval items when ``min_samples`` are timed (``edgeproof.measure.harness.fidelity_look``).
    """

    target: str
    backend: str
    config_model: str
    target_config: dict[str, Any]  # the target's config section, JSON form
    eval_data: Path
    labels_key: str
    threads: int
    outputs_dir: Path  # <candidate>.npz eval outputs (one array per output) are written here
    # the speed gate: a candidate whose repeated CI is wholly below it stops being timed
    stop_below_speedup: float | None = None
    # the top-1 agreement gate: a candidate clearly below it on the first eval items is
    # timed for min_samples only
    stop_below_agreement: float | None = None
    # how the data feeds the model (``FeedLayout.to_json``): item axes, constants, states
    feed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadToHeadRun:
    """Two finalists timed interleaved with each other: latency samples (ms) in blocks of
    ``block_size``, block ``i`` of ``a_ms`` adjacent in time to block ``i`` of ``b_ms``."""

    a: str
    b: str
    a_ms: np.ndarray
    b_ms: np.ndarray
    block_size: int
    stopped: str


@dataclass(frozen=True)
class TargetMeasurements:
    """Raw measurements per candidate name, and the error of each that failed."""

    raw: dict[str, RawMeasurement]
    outputs: dict[str, Path]
    errors: dict[str, str]

    def replacing(self, newer: TargetMeasurements, names: list[str]) -> TargetMeasurements:
        """These measurements with the candidates ``names`` taken from ``newer``."""
        raw, outputs, errors = dict(self.raw), dict(self.outputs), dict(self.errors)
        for name in names:
            for mine, theirs in ((raw, newer.raw), (outputs, newer.outputs)):
                mine.pop(name, None)
                if name in theirs:
                    mine[name] = theirs[name]
            errors.pop(name, None)
            if name in newer.errors:
                errors[name] = newer.errors[name]
        return TargetMeasurements(raw, outputs, errors)
