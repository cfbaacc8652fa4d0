"""The stable-champion rule (gates.champion_policy)."""

from __future__ import annotations

import pytest

from edgeproof.gates.champion_policy import (
    SourceKey,
    decide_champion,
    params_digest,
    same_source,
    source_changes,
)
from edgeproof.records import Estimate

KEY = SourceKey(
    model_md5="m" * 32,
    data_md5="d" * 32,
    model_params=params_digest({"name": "digits-cnn", "task": "classification"}),
    data_params=params_digest({"eval": "data/eval.npz"}),
    gates_params=params_digest({"latency": {"min_speedup": 1.2}}),
)


def gain(value: float, low: float, high: float) -> Estimate:
    return Estimate(value=value, low=low, high=high, confidence=0.99)


def test_issue_21_unchanged_run_keeps_the_champion() -> None:
    # the winner flipped to the other static recipe, 0.98x [0.94, 1.01] vs the champion
    d = decide_champion("static-qdq-percentile", "3", KEY, KEY, gain(0.98, 0.94, 1.01))
    assert not d.move and d.action == "keep-not-clearly-better" and d.same_source
    assert "not clearly better" in d.reason and "champion v3 kept" in d.reason


def test_same_source_needs_the_whole_ci_above_the_tolerance() -> None:
    assert not decide_champion("w", "3", KEY, KEY, gain(1.05, 1.02, 1.08)).move
    d = decide_champion("w", "3", KEY, KEY, gain(1.08, 1.04, 1.12))
    assert d.move and d.action == "promote-better" and "clearly better" in d.reason
    assert not decide_champion("w", "3", KEY, KEY, gain(1.08, 1.04, 1.12), tolerance=0.05).move
    assert not decide_champion("w", "3", KEY, KEY, None).move


def test_changed_source_promotes_when_not_worse() -> None:
    new_data = SourceKey(**{**KEY.as_dict(), "data_md5": "e" * 32})
    d = decide_champion("w", "3", new_data, KEY, gain(0.98, 0.94, 1.01))
    assert d.move and d.action == "promote-new-source"
    assert d.source_changes == ("data_md5",) and "changed data_md5" in d.reason
    worse = decide_champion("w", "3", new_data, KEY, gain(0.90, 0.88, 0.93))
    assert not worse.move and worse.action == "keep-worse"


def test_clearly_less_accurate_is_never_promoted() -> None:
    drop = Estimate(value=0.02, low=0.01, high=0.03, confidence=0.99)
    d = decide_champion("w", "3", KEY, KEY, gain(1.5, 1.4, 1.6), accuracy_drop=drop)
    assert not d.move and d.action == "keep-worse" and "accuracy drop" in d.reason


def test_first_identical_and_unknown_source() -> None:
    assert decide_champion("w", None, KEY, None, None).action == "promote-first"
    ident = decide_champion("w", "3", KEY, KEY, gain(1.0, 0.99, 1.01), identical=True)
    assert not ident.move and ident.action == "keep-identical"
    legacy = decide_champion("w", "3", KEY, None, gain(1.0, 0.97, 1.02))
    assert legacy.move and legacy.source_changes == ("unknown",)


def test_source_key_comparison() -> None:
    assert same_source(KEY, KEY) and source_changes(KEY, KEY) == ()
    other = SourceKey(**{**KEY.as_dict(), "gates_params": params_digest({"x": 1})})
    assert source_changes(KEY, other) == ("gates_params",)
    assert SourceKey.from_dict(KEY.as_dict()) == KEY
    assert SourceKey.from_dict({"model_md5": "x"}) is None
    assert params_digest({"a": 1, "b": [1, 2]}) == params_digest({"b": [1, 2], "a": 1})
    assert params_digest({"a": 1}) != params_digest({"a": 2})


def test_decision_is_a_serializable_record() -> None:
    d = decide_champion("w", "3", KEY, KEY, gain(0.98, 0.94, 1.01))
    assert type(d).model_validate_json(d.model_dump_json()) == d


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        decide_champion("w", "3", KEY, KEY, None, tolerance=-0.1)
