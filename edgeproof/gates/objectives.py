"""The selection vocabulary: the axes candidates are compared on, and "clearly better".

Axes. ``METRICS`` has one row per axis: its direction, how it is read from a
``CandidateSummary``, and whether it is sampled (compared by its confidence interval) or
deterministic (a point, compared with a relative tolerance ``rel_tol``). params.yaml names
the axes two ways, both kept as users write them and both defined in ``edgeproof.config``
(below gates): ``Objective`` (``gates.objective``: the one axis a winner is picked on) and
``SelectionMetric`` (the keys of ``gates.weights`` and the Pareto axes: ``latency`` is
median latency, ``p90`` p90 latency, and ``accuracy`` is no objective). Each row carries
both names; the table is checked against both Literals at import, so an axis is added in
one place.

Clearly better. One candidate is clearly better than another only when the evidence lies
wholly on its side, beyond a named tolerance; within that it is a tie (noise). Two forms,
for the two kinds of evidence:

- ``clearly_better(gain, tolerance=t)``: ``gain`` is how many times better one candidate
  is than the other (> 1 better): a paired CI (ratio of two speedups, head-to-head blocks,
  challenger vs champion) or a point for a deterministic axis; clearly better = the whole
  CI above ``1 + t``. ``clearly_worse`` is its mirror: the whole CI below ``1 / (1 + t)``.
- ``interval_clearly_better(a, b, rel_tol=t)``: two intervals oriented so that lower is
  better (absolute CIs from different windows, or points): ``a`` wholly below ``b`` by more
  than ``t`` of the larger magnitude. Used by the noise-aware Pareto front.

The tolerances, side by side; each rule keeps the value it has always used:

========================================  ===============================  ==============
rule                                      tolerance                        default
========================================  ===============================  ==============
winner selection, latency lead            ``gates.speed_tie_tolerance``    1%
(``gates.paired_selection``)              (``speed_tol``)
size / peak RSS lead (selection, Pareto)  ``METRICS[...].rel_tol``         1% / 2%
champion replaced from its own source     ``same_source_tolerance``        3%
(``gates.champion_policy``)               (``SAME_SOURCE_TOLERANCE``)
champion's twin keeps a tie               ``TWIN_TOLERANCE``               0
(``champion_policy.incumbent_ties``)
"clearly ahead" in a weighted reason      ``NO_TOLERANCE``                 0
(``gates.pareto``)
========================================  ===============================  ==============

The two forms measure a deterministic gap differently: the ratio form against the better
value (``b / a > 1 + t``: 1.0100 at 1%), the interval form against the larger magnitude
(``a < b - t * b``: ``b / a > 1 / (1 - t)``, 1.0101 at 1%).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast, get_args

from edgeproof.config import ChampionCompare, Objective, SelectionMetric
from edgeproof.records import CandidateSummary, Estimate

Interval = tuple[float, float]

NO_TOLERANCE = 0.0  # the CI alone decides
TWIN_TOLERANCE = NO_TOLERANCE  # the champion's byte-identical twin keeps any tie
# from the champion's own source, a winner must be this much better (layout effects
# between processes): the default of registry.compare_with_champion.same_source_tolerance
SAME_SOURCE_TOLERANCE: float = ChampionCompare().same_source_tolerance


def uses_labels(summaries: Iterable[CandidateSummary]) -> bool:
    """True when every summary has a labelled accuracy; otherwise top-1 agreement is used."""
    return all(s.accuracy is not None for s in summaries)


def quality(summary: CandidateSummary, labelled: bool) -> Estimate:
    """The "accuracy" axis: labelled accuracy, else top-1 agreement with the baseline, else
    (label-free tasks) the first output's mean cosine similarity to the baseline's."""
    if labelled and summary.accuracy:
        return summary.accuracy
    if summary.top1_agreement is not None:
        return summary.top1_agreement
    if summary.outputs:
        return summary.outputs[0].cosine_mean
    raise ValueError(f"{summary.candidate}: no accuracy or fidelity estimate")


def quality_name(summary: CandidateSummary, labelled: bool) -> str:
    """What ``quality`` measured, for axis labels and reasons."""
    if labelled and summary.accuracy:
        return "accuracy"
    if summary.top1_agreement is not None:
        return "top-1 agreement with baseline"
    return f"mean cosine to baseline ({summary.outputs[0].output})"


Reader = Callable[[CandidateSummary, bool], Estimate | float]


@dataclass(frozen=True)
class Metric:
    """One axis candidates are compared on.

    ``name``: its ``gates.weights`` key; ``objective``: its ``gates.objective`` name (None:
    not an objective). ``read(summary, labelled)``: its estimate (an ``Estimate`` when
    sampled, a float when deterministic). ``rel_tol``: a relative gap within this is a tie
    (deterministic axes; sampled ones are decided by their CIs).
    """

    name: SelectionMetric
    label: str
    unit: str
    read: Reader = field(repr=False, compare=False)
    objective: Objective | None = None
    higher_is_better: bool = False
    sampled: bool = True
    rel_tol: float = 0.0


METRICS: dict[SelectionMetric, Metric] = {
    "accuracy": Metric("accuracy", "accuracy", "", quality, higher_is_better=True),
    "latency": Metric(
        "latency", "median latency", "ms", lambda s, _: s.median_ms, objective="median_latency"
    ),
    "p90": Metric("p90", "p90 latency", "ms", lambda s, _: s.p90_ms, objective="p90_latency"),
    "peak_rss": Metric(
        "peak_rss",
        "peak RSS",
        "MB",
        lambda s, _: s.peak_rss_mb,
        objective="peak_rss",
        sampled=False,
        rel_tol=0.02,  # allocator noise between processes
    ),
    "size": Metric(
        "size",
        "size",
        "MB",
        lambda s, _: s.size_mb,
        objective="size",
        sampled=False,
        rel_tol=0.01,  # a few KB of metadata: a tie
    ),
}
OBJECTIVES: dict[Objective, Metric] = {
    m.objective: m for m in METRICS.values() if m.objective is not None
}
DEFAULT_METRICS: tuple[Metric, ...] = tuple(
    METRICS[n] for n in ("accuracy", "latency", "peak_rss", "size")
)
assert set(METRICS) == set(get_args(SelectionMetric)), "METRICS must cover SelectionMetric"
assert set(OBJECTIVES) == set(get_args(Objective)), "METRICS must cover every Objective"


def metric_named(name: str) -> Metric:
    """The axis named ``name`` (a ``gates.weights`` key); ValueError when unknown."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; one of {sorted(METRICS)}")
    return METRICS[cast(SelectionMetric, name)]


def check_objective(name: str) -> Objective:
    """``name`` as an ``Objective``; ValueError when it is none."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; one of {sorted(OBJECTIVES)}")
    return cast(Objective, name)


def raw_value(summary: CandidateSummary, metric: Metric, labelled: bool = True) -> float:
    """The metric's point value in its natural units and direction."""
    e = metric.read(summary, labelled)
    return e.value if isinstance(e, Estimate) else float(e)


def interval(summary: CandidateSummary, metric: Metric, labelled: bool = True) -> Interval:
    """The metric as an interval oriented so that lower is better (a point if deterministic)."""
    e = metric.read(summary, labelled)
    low, high = (e.low, e.high) if isinstance(e, Estimate) else (float(e), float(e))
    return (-high, -low) if metric.higher_is_better else (low, high)


def clearly_better(gain: Estimate, *, tolerance: float) -> bool:
    """True when the whole CI of ``gain`` (> 1 better; a point: its value) is above
    ``1 + tolerance``."""
    return gain.low > 1.0 + tolerance


def clearly_worse(gain: Estimate, *, tolerance: float) -> bool:
    """True when the whole CI of ``gain`` is below ``1 / (1 + tolerance)``: the other side is
    clearly better by the same rule."""
    return gain.high < 1.0 / (1.0 + tolerance)


def interval_clearly_better(a: Interval, b: Interval, *, rel_tol: float) -> bool:
    """True when oriented interval ``a`` lies wholly below ``b``, by more than ``rel_tol``
    of the larger magnitude."""
    gap = rel_tol * max(abs(a[1]), abs(b[0]))
    return a[1] < b[0] - gap
