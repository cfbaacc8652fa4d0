"""An error candidate (its optimizer failed: no files) is safe for every later step."""

from __future__ import annotations

import pytest

from edgeproof.flows.gate_target import internal_error
from edgeproof.pipeline.judge import error_outcome
from edgeproof.records import Candidate


def test_a_candidate_without_files_names_itself_instead_of_an_index_error() -> None:
    placeholder = Candidate(target="t", name="q8", files=(), recipe={}, precision="unknown")
    assert not placeholder.has_files
    with pytest.raises(ValueError, match="candidate t/q8 has no model file"):
        _ = placeholder.model_file
    outcome = error_outcome(placeholder, "q8: optimization failed: boom")
    assert outcome.verdict.status == "error" and outcome.error == "q8: optimization failed: boom"


def test_an_internal_error_is_one_line_with_its_type() -> None:
    assert internal_error(KeyError("x")) == "internal error: KeyError: 'x'"
    assert internal_error(RuntimeError("a\nb")) == "internal error: RuntimeError: a"
    assert internal_error(IndexError()) == "internal error: IndexError"
