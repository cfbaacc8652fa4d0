"""The corpus project folders resolve as ``edgeproof run`` opens them, the streaming VAD
included: its state on axis 1 (left out of the data, carried), its sample rate from
params."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeproof.pipeline.resolve import resolve_inputs
from tests.integration.corpus.models import CORPUS, SILERO_VAD, CorpusModel
from tests.integration.corpus.project import write_project
from tests.integration.corpus.runtime import corpus_model


@pytest.mark.parametrize("model", CORPUS, ids=lambda m: m.name)
def test_corpus_projects_resolve(model: CorpusModel, tmp_path: Path):
    corpus_model(model)
    resolved = resolve_inputs(write_project(model, tmp_path / model.name), ["onnxruntime-cpu"])
    assert [s.name for s in resolved.model_inputs]


def test_the_vad_calibration_gets_real_states_and_its_eval_feeds_one_chunk_per_call(
    tmp_path: Path,
):
    corpus_model(SILERO_VAD)
    resolved = resolve_inputs(write_project(SILERO_VAD, tmp_path / "vad"), ["onnxruntime-cpu"])
    assert resolved.feed.max_batch == 1
    calibration = resolved.load_calibration()
    states = calibration.inputs["state"]
    assert states.shape == (len(calibration), 2, 128)
    assert not states[0].any() and np.abs(states[1:]).max() > 0.01  # carried, not zeros
    call = resolved.load_eval().batch(0, 1)
    assert call["state"].shape == (2, 1, 128) and call["sr"].shape == ()
