"""The selection vocabulary (gates.objectives): one table of axes, one "clearly better"."""

from __future__ import annotations

from typing import get_args

import pytest

from edgeproof.config import ChampionCompare, GatesConfig, Objective, SelectionMetric
from edgeproof.gates.champion_policy import SourceKey, decide_champion, incumbent_ties
from edgeproof.gates.objectives import (
    METRICS,
    NO_TOLERANCE,
    OBJECTIVES,
    SAME_SOURCE_TOLERANCE,
    check_objective,
    clearly_better,
    clearly_worse,
    interval,
    interval_clearly_better,
    metric_named,
    raw_value,
)
from edgeproof.gates.paired_selection import Entrant, ratio_of_ratios, select_paired
from edgeproof.records import Estimate
from tests.helpers import est, make_summary

# --- the axes ------------------------------------------------------------------------------


def test_one_table_names_every_axis_both_ways() -> None:
    assert set(METRICS) == set(get_args(SelectionMetric))
    assert set(OBJECTIVES) == set(get_args(Objective))
    assert OBJECTIVES["median_latency"] is METRICS["latency"]
    assert OBJECTIVES["p90_latency"] is METRICS["p90"]
    assert METRICS["accuracy"].objective is None  # a weight, never the objective
    # the config validates gates.objective against the same Literal
    assert GatesConfig.model_fields["objective"].annotation == Objective


def test_sampled_axes_use_their_ci_deterministic_ones_a_point_and_a_tolerance() -> None:
    s = make_summary(
        "a", median_ms=est(0.8, 0.78, 0.82), size_mb=1.5, peak_rss_mb=90.0, accuracy=est(0.9)
    )
    assert interval(s, METRICS["latency"]) == (0.78, 0.82)
    assert interval(s, METRICS["size"]) == (1.5, 1.5)
    assert interval(s, METRICS["accuracy"]) == (-0.9, -0.9)  # oriented: lower is better
    assert raw_value(s, OBJECTIVES["peak_rss"]) == 90.0
    assert [m.name for m in METRICS.values() if not m.sampled] == ["peak_rss", "size"]
    assert {n: m.rel_tol for n, m in METRICS.items() if not m.sampled} == {
        "peak_rss": 0.02,
        "size": 0.01,
    }
    assert all(m.rel_tol == 0 for m in METRICS.values() if m.sampled)


def test_unknown_names_are_refused() -> None:
    assert check_objective("size") == "size"
    with pytest.raises(ValueError, match="unknown objective 'latency'"):
        check_objective("latency")  # a weights key, not an objective
    with pytest.raises(ValueError, match="unknown metric 'median_latency'"):
        metric_named("median_latency")  # an objective, not a weights key


# --- clearly better ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gain", "tolerance", "better"),
    [
        (est(1.05, 1.02, 1.08), 0.0, True),  # whole CI above 1
        (est(1.05, 1.02, 1.08), 0.03, False),  # straddles 1.03: not clearly better
        (est(1.08, 1.04, 1.12), 0.03, True),  # whole CI above 1.03
        (est(1.02, 0.99, 1.05), 0.0, False),  # contains 1
        (est(1.0, 1.0, 1.0), 0.0, False),  # at the bound is not above it
        (est(1.011), 0.01, True),  # a point: its value decides
        (est(1.01), 0.01, False),
    ],
)
def test_clearly_better_needs_the_whole_ci_above_one_plus_the_tolerance(
    gain: Estimate, tolerance: float, better: bool
) -> None:
    assert clearly_better(gain, tolerance=tolerance) is better


def test_clearly_worse_is_the_mirror_image() -> None:
    gain = est(1.08, 1.04, 1.12)
    mirrored = est(1 / gain.value, 1 / gain.high, 1 / gain.low)
    for tolerance in (0.0, 0.03, 0.05):
        assert clearly_worse(mirrored, tolerance=tolerance) == clearly_better(
            gain, tolerance=tolerance
        )
    assert not clearly_worse(est(0.98, 0.95, 1.001), tolerance=NO_TOLERANCE)


def test_intervals_must_be_apart_beyond_the_relative_tolerance() -> None:
    assert interval_clearly_better((0.70, 0.75), (0.76, 0.80), rel_tol=0.0)
    assert not interval_clearly_better((0.70, 0.77), (0.76, 0.80), rel_tol=0.0)  # overlap
    assert not interval_clearly_better((100.0, 100.0), (101.5, 101.5), rel_tol=0.02)
    assert interval_clearly_better((100.0, 100.0), (105.0, 105.0), rel_tol=0.02)


def test_the_two_forms_measure_a_deterministic_gap_differently() -> None:
    """Documented in gates.objectives: at 1%, the ratio form (selection) needs b / a above
    1.0100, the interval form (Pareto) above 1 / 0.99 = 1.0101; kept as each always was."""
    a, b = 1.0, 1.0101
    tol = METRICS["size"].rel_tol
    assert clearly_better(est(b / a), tolerance=tol)
    assert not interval_clearly_better((a, a), (b, b), rel_tol=tol)


# --- every rule calls the same function ----------------------------------------------------

GAINS = [est(1.05, 1.02, 1.08), est(1.08, 1.04, 1.12), est(1.01, 0.98, 1.04), est(1.3, 1.2, 1.4)]


@pytest.mark.parametrize("gain", GAINS)
def test_the_same_source_champion_moves_exactly_when_clearly_better(gain: Estimate) -> None:
    key = SourceKey("m", "d", "mp", "dp", "gp")
    decision = decide_champion("w", "3", key, key, gain)
    assert SAME_SOURCE_TOLERANCE == ChampionCompare().same_source_tolerance == 0.03
    assert decision.move is clearly_better(gain, tolerance=SAME_SOURCE_TOLERANCE)


@pytest.mark.parametrize("speed_tol", [0.0, 0.01, 0.05])
@pytest.mark.parametrize(
    "fast_speedup",  # paired gain's low end: 0.98, 1.009, 1.044, 1.37
    [(3.22, 3.17, 3.27), (3.3, 3.25, 3.35), (3.4, 3.37, 3.43), (4.5, 4.4, 4.6)],
)
def test_selection_breaks_a_tie_exactly_when_the_lead_is_not_clear(
    fast_speedup: tuple[float, float, float], speed_tol: float
) -> None:
    """``fast`` leads; ``small`` wins the tie-break. ``fast`` wins only when its paired gain
    over ``small`` is clearly better beyond the tie tolerance."""
    small = Entrant("small", est(3.2, 3.15, 3.25), size_mb=0.5, peak_rss_mb=100.0)
    fast = Entrant("fast", est(*fast_speedup), size_mb=1.0, peak_rss_mb=100.0)
    assert fast.speedup is not None and small.speedup is not None
    gain = ratio_of_ratios(fast.speedup, small.speedup)
    chosen = select_paired([small, fast], speed_tol=speed_tol)
    assert (chosen.winner == "fast") is clearly_better(gain, tolerance=speed_tol)


@pytest.mark.parametrize("incumbent", [(3.3, 3.1, 3.5), (2.9, 2.8, 3.0), (3.4, 3.39, 3.41)])
def test_the_champions_twin_ties_unless_the_winner_is_clearly_better(
    incumbent: tuple[float, float, float],
) -> None:
    winner = make_summary("new", speedup=est(3.4, 3.2, 3.6))
    twin = make_summary("old", speedup=est(*incumbent))
    assert winner.speedup is not None and twin.speedup is not None
    gain = ratio_of_ratios(winner.speedup, twin.speedup)
    tie = incumbent_ties(winner, twin, "median_latency")
    assert tie is not clearly_better(gain, tolerance=NO_TOLERANCE)
