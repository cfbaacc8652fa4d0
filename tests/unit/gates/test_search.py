"""The search's decisions on hand-made probe scores: pass or not, ranking, bisection."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.config import FidelityGate
from edgeproof.gates.search import Bisection, probe_result, rank_by_sensitivity
from edgeproof.records import ItemScores, OutputScores


def _tensor_scores(cosine: list[float]) -> ItemScores:
    c = np.asarray(cosine)
    out = OutputScores("emb", cosine=c, rel_l2=1 - c, max_abs_error=1 - c)
    return ItemScores("probe", None, None, None, None, max_abs_error=1 - c, outputs=(out,))


def test_a_probe_passes_only_when_every_fidelity_limit_holds() -> None:
    gate = FidelityGate(min_cosine_mean=0.99, min_cosine_low=None)
    good = probe_result(_tensor_scores([0.995] * 20), gate)
    bad = probe_result(_tensor_scores([0.995] * 10 + [0.95] * 10), gate)
    assert good.passes and not bad.passes
    assert bad.loss > good.loss
    assert "mean cosine 0.97250 < 0.99" in bad.detail


def test_a_classifier_probe_is_judged_on_agreement_and_kl() -> None:
    gate = FidelityGate(min_top1_agreement=0.98, max_kl=0.05)
    n = 100
    agree = np.ones(n, bool)
    agree[:5] = False
    scores = ItemScores("probe", None, None, agree, np.full(n, 0.01), max_abs_error=np.zeros(n))
    result = probe_result(scores, gate)
    assert not result.passes and "top-1 agreement 0.9500 < 0.98" in result.detail
    assert result.loss == pytest.approx(0.01)  # the KL, when a KL limit is set


def test_units_are_ranked_most_sensitive_first_ties_in_graph_order() -> None:
    assert rank_by_sensitivity({"a": 0.1, "b": 0.5, "c": 0.1, "d": 0.0}) == ["b", "a", "c", "d"]


def test_bisection_finds_the_smallest_passing_k() -> None:
    for answer in range(1, 12):  # k = 0 failed; k >= answer passes
        bisection, probed = Bisection.start(12), []
        while (k := bisection.next_k()) is not None:
            probed.append(k)
            bisection = bisection.after(k, k >= answer)
        assert bisection.high == answer
        assert len(probed) <= 4  # log2(12) rounded up


def test_bisection_says_so_when_no_k_below_all_passes() -> None:
    bisection = Bisection.start(6)
    while (k := bisection.next_k()) is not None:
        bisection = bisection.after(k, False)
    assert bisection.high == 6  # every unit in float: no mix
