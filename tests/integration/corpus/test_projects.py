"""The corpus project folders resolve as ``edgeproof run`` opens them: every stateless
model's data fits edgeproof's data format; the stateful VAD's does not (yet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.errors import InputError
from edgeproof.resolve import resolve_inputs
from tests.integration.corpus.models import CORPUS, SILERO_VAD, CorpusModel
from tests.integration.corpus.project import write_project
from tests.integration.corpus.runtime import corpus_model

STATELESS = [m for m in CORPUS if m is not SILERO_VAD]


@pytest.mark.parametrize("model", STATELESS, ids=lambda m: m.name)
def test_stateless_corpus_projects_resolve(model: CorpusModel, tmp_path: Path):
    corpus_model(model)
    resolved = resolve_inputs(write_project(model, tmp_path / model.name), ["onnxruntime-cpu"])
    assert [s.name for s in resolved.model_inputs]


def test_the_stateful_vad_cannot_be_written_in_the_data_format(tmp_path: Path):
    """Characterizes today's limit (docs/real-models-notes.md): state [2, N, 128] and a
    0-d sample rate are refused. Flip this test when the data format has per-input item
    axes and constant inputs."""
    corpus_model(SILERO_VAD)
    params = write_project(SILERO_VAD, tmp_path / "vad")
    with pytest.raises(InputError, match=r"data arrays differ in length"):
        resolve_inputs(params, ["onnxruntime-cpu"])
