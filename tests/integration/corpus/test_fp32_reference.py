"""Independent FP32 checks of each corpus model with plain ONNX Runtime: the model is
what its catalogue entry says, and the data builders make inputs it answers sensibly."""

from __future__ import annotations

import numpy as np
import onnx

from tests.integration.corpus import data
from tests.integration.corpus.models import (
    MINILM_L3,
    MINILM_L6_INT8,
    PPOCR_CLS,
    PPOCR_DET,
    SILERO_VAD,
)
from tests.integration.corpus.runtime import corpus_model, session


def test_ocr_direction_classifier_tells_upright_from_rotated_text():
    model = session(corpus_model(PPOCR_CLS))
    inputs, labels = data.ocr_cls_set(120, seed=1)
    probs = model.run(None, {"x": inputs})[0]
    assert probs.shape == (120, 2)
    predicted = probs.argmax(axis=1)
    for direction in (0, 1):  # each class on its own: a constant answer fails one of them
        accuracy = float(np.mean(predicted[labels == direction] == direction))
        assert accuracy >= 0.95, f"class {direction}: accuracy {accuracy:.2f}"


def test_ocr_detector_marks_text_and_not_the_page():
    model = session(corpus_model(PPOCR_DET))
    pages = data.ocr_det_set(12, seed=2)
    prob = model.run(None, {"x": pages.inputs})[0][:, 0]
    assert prob.shape == pages.text_mask.shape
    inside, outside = prob[pages.text_mask].mean(), prob[~pages.text_mask].mean()
    assert inside > 0.2, f"mean text probability in the text boxes {inside:.3f}"
    assert outside < 0.02, f"mean text probability off the text {outside:.3f}"


def test_vad_hears_speech_like_audio_not_silence_and_carries_state():
    model = session(corpus_model(SILERO_VAD))
    rng = np.random.default_rng(3)
    signal = np.concatenate(
        [data.silence(1.0, rng), data.speech_like(1.5, rng), data.silence(1.0, rng)]
    )
    windows = data.vad_windows(signal)
    probs = data.vad_stream(model, windows)
    step = data.CHUNK / data.SAMPLE_RATE
    silent = probs[4 : int(1.0 / step)]  # after the first steps of a fresh state
    voiced = probs[int(1.0 / step) + 3 : int(2.5 / step)]
    assert silent.mean() < 0.1, f"speech probability on silence {silent.mean():.3f}"
    assert voiced.mean() > 0.5, f"speech probability on voiced audio {voiced.mean():.3f}"
    # Fed chunk by chunk from a zero state (what a stateless harness does), the model
    # answers differently: the state carries information.
    zero = np.zeros(data.STATE_SHAPE, dtype=np.float32)
    sr = np.array(data.SAMPLE_RATE, dtype=np.int64)
    stateless = np.array(
        [model.run(None, {"input": w[None], "state": zero, "sr": sr})[0][0, 0] for w in windows]
    )
    assert np.abs(stateless - probs).max() > 0.1


def test_vad_batch_axis_of_the_state_is_axis_1():
    """Two streams in one batch: state [2, batch, 128] holds one state per stream, and
    each stream gets the answers it gets alone."""
    model = session(corpus_model(SILERO_VAD))
    rng = np.random.default_rng(4)
    speech = data.vad_windows(data.speech_like(1.0, rng))
    quiet = data.vad_windows(data.silence(1.0, rng))
    state = np.zeros((2, 2, 128), dtype=np.float32)
    sr = np.array(data.SAMPLE_RATE, dtype=np.int64)
    batched = []
    for step in range(len(speech)):
        prob, state = model.run(
            None, {"input": np.stack([speech[step], quiet[step]]), "state": state, "sr": sr}
        )
        batched.append(prob[:, 0])
    assert state.shape == (2, 2, 128)
    together = np.array(batched)
    np.testing.assert_allclose(together[:, 0], data.vad_stream(model, speech), atol=1e-4)
    assert together[:, 0].mean() > 0.5 > 0.1 > together[:, 1].mean()


def test_minilm_l3_embeds_paraphrases_nearest_to_each_other():
    model = session(corpus_model(MINILM_L3))
    encoded = data.sentence_set()
    outputs = model.run(None, {k: encoded[k] for k in ("input_ids", "attention_mask")})
    assert model.get_outputs()[0].name == "output"
    assert np.array_equal(outputs[0], encoded["input_ids"])  # an int64 pass-through output
    sentence = outputs[3]
    assert sentence.shape == (len(encoded["input_ids"]), 384)
    assert data.paraphrase_retrieval(sentence) >= 0.9
    shuffled = np.random.default_rng(0).permutation(sentence)  # the check can fail
    assert data.paraphrase_retrieval(shuffled) < 0.5


def test_minilm_l6_int8_embeds_paraphrases_nearest_to_each_other():
    model = session(corpus_model(MINILM_L6_INT8))
    encoded = data.sentence_set()
    tokens = model.run(None, encoded)[0]
    assert tokens.shape == (*encoded["input_ids"].shape, 384)
    embeddings = data.mean_pool(tokens, encoded["attention_mask"])
    assert data.paraphrase_retrieval(embeddings) >= 0.9
    # Arrives quantized: int8 weight initializers, cast back to float inside the graph.
    graph = onnx.load(str(corpus_model(MINILM_L6_INT8))).graph
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 30
    assert "Cast" in {n.op_type for n in graph.node}


def test_wordpiece_matches_bert_uncased_ids():
    tokenizer = data.minilm_tokenizer()
    the_cat = [1996, 4937, 2003, 5777, 2006, 1996, 10682, 1012]  # bert-base-uncased ids
    assert tokenizer.tokens("The cat is sleeping on the sofa.") == the_cat
    encoded = tokenizer.encode(["Hello, world!"], 8)
    assert encoded["input_ids"][0].tolist()[:2] == [tokenizer.cls, 7592]
    assert encoded["attention_mask"][0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
