"""Winner vs the re-measured champion: worse only beyond noise."""

from __future__ import annotations

import pytest

from edgeproof.config import ChampionCompare
from edgeproof.gates.champion import compare_with_champion
from tests.helpers import est, make_summary

DEFAULTS = ChampionCompare()


def _compare(config: ChampionCompare = DEFAULTS, **update):
    summary = make_summary("static-int8", **update)
    return compare_with_champion("static-int8", summary, "m.t", "3", config)


def test_within_noise_is_not_worse() -> None:
    got = _compare(speedup=est(0.99, 0.97, 1.01), accuracy_drop=est(0.001, -0.003, 0.005))
    assert got.status == "not-worse"
    assert [c.status for c in got.checks] == ["inconclusive", "inconclusive"]
    assert got.reason.startswith("static-int8 is not worse than champion v3 beyond noise")


def test_clearly_slower_is_worse() -> None:
    got = _compare(speedup=est(0.90, 0.88, 0.92))
    assert got.status == "worse"
    assert "speedup vs champion 0.90x [0.88, 0.92] < min 0.98x" in got.reason


def test_clearly_less_accurate_is_worse() -> None:
    got = _compare(accuracy_drop=est(0.02, 0.01, 0.03))
    assert got.status == "worse"
    assert "accuracy drop vs champion 2.00 pt [1.00, 3.00] > max 0.00 pt" in got.reason


@pytest.mark.parametrize(("tolerance", "status"), [(0.0, "worse"), (0.15, "not-worse")])
def test_the_slowdown_tolerance_moves_the_line(tolerance: float, status: str) -> None:
    config = ChampionCompare(max_slowdown=tolerance)
    assert _compare(config, speedup=est(0.90, 0.88, 0.92)).status == status


def test_without_labels_only_speed_is_compared() -> None:
    got = _compare(accuracy_drop=None, speedup=est(1.5, 1.4, 1.6))
    assert [c.name for c in got.checks] == ["champion.max_slowdown"]
    assert got.status == "not-worse"
