"""Per-item correctness and fidelity scores of classifier outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.errors import MeasurementError
from edgeproof.evaluate.scores import score_classifier


def test_identical_outputs_are_perfectly_faithful() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]], np.float32)
    s = score_classifier("same", logits, logits, np.array([0, 2]))
    assert s.agree.all()
    assert np.allclose(s.kl, 0.0) and np.allclose(s.max_abs_error, 0.0)
    assert s.correct.tolist() == [True, False] and s.baseline_correct.tolist() == [True, False]


def test_kl_agreement_and_error_by_hand() -> None:
    base = np.array([[0.0, 0.0], [1.0, 0.0]])
    cand = np.array([[np.log(3.0), 0.0], [0.0, 1.0]])
    s = score_classifier("c", cand, base, None)
    # item 0: p = (1/2, 1/2), q = (3/4, 1/4): KL = 0.5 ln(2/3) + 0.5 ln(2)
    assert s.kl[0] == pytest.approx(0.5 * np.log(2 / 3) + 0.5 * np.log(2))
    assert s.agree.tolist() == [True, False]  # item 0: argmax tie -> index 0 for both
    assert s.max_abs_error.tolist() == pytest.approx([np.log(3.0), 1.0])
    assert s.correct is None and s.baseline_correct is None


def test_shape_mismatch_and_nan_are_errors() -> None:
    with pytest.raises(MeasurementError, match="differs from the baseline"):
        score_classifier("c", np.zeros((2, 3)), np.zeros((2, 4)), None)
    with pytest.raises(MeasurementError, match="NaN or inf"):
        score_classifier("c", np.full((2, 3), np.nan), np.zeros((2, 3)), None)
