"""Opening checks on the real models: all pass, and their input layouts are as found."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.config import InputConfig
from edgeproof.data.dataset import load_dataset
from edgeproof.errors import InputError
from edgeproof.onnx.model import check_data_matches, check_onnx, describe_inputs, feed_layout
from tests.integration.corpus import data
from tests.integration.corpus.models import CORPUS, MINILM_L3, PPOCR_CLS, SILERO_VAD, CorpusModel
from tests.integration.corpus.runtime import corpus_model


@pytest.mark.parametrize("model", CORPUS, ids=lambda m: m.name)
def test_every_corpus_model_passes_the_opening_checks(model: CorpusModel):
    specs = check_onnx(corpus_model(model), for_onnxruntime=True)
    assert specs


def test_vad_layout_batch_on_axis_1_of_the_state_and_a_scalar_sample_rate(tmp_path):
    model = corpus_model(SILERO_VAD)
    layouts = {x.name: x for x in describe_inputs(model)}
    assert (layouts["input"].batch_axis, layouts["input"].fixed) == (0, {})
    assert (layouts["state"].batch_axis, layouts["state"].fixed) == (1, {0: 2, 2: 128})
    assert layouts["sr"].is_scalar and layouts["sr"].item_axis is None
    layout = feed_layout(model, {"state": InputConfig(carried_from="stateN")})
    assert layout.states["state"].shape == (2, 1, 128) and layout.output_axes == {"stateN": 1}
    windows = data.vad_windows(data.silence(0.2, np.random.default_rng(0)))
    state = np.zeros((2, len(windows), 128), np.float32)  # as the model lays it out
    np.savez(tmp_path / "eval.npz", input=windows, state=state, sr=np.array(16000, np.int64))
    check_data_matches(
        check_onnx(model), load_dataset(tmp_path / "eval.npz", layout=layout), "eval"
    )
    np.savez(tmp_path / "wrong.npz", input=windows, state=state.transpose(1, 0, 2), sr=16000)
    with pytest.raises(InputError, match=r"'state \(items on axis 1\)': 2"):
        load_dataset(tmp_path / "wrong.npz", layout=layout)


def test_paddle_minus_one_batch_is_symbolic_and_channels_fixed():
    (layout,) = describe_inputs(corpus_model(PPOCR_CLS))
    assert layout.shape == (None, 3, None, None)
    assert (layout.batch_axis, layout.fixed) == (0, {1: 3})


def test_transformer_inputs_share_named_symbolic_dims():
    layouts = describe_inputs(corpus_model(MINILM_L3))
    assert [x.dim_names for x in layouts] == [("batch_size", "sequence_length")] * 2
    assert all(x.batch_axis == 0 and not x.fixed for x in layouts)
