"""Character error rate of a CTC text recognizer, as an edgeproof ``model.metric``.

Copy this file beside your params.yaml and set::

    model:
      task: raw
      metric: {function: "ocr_cer.py:character_error_rate", name: cer, higher_is_better: false}

The eval data holds the images (the model's input) and ``labels``: each line's character
ids in the recognizer's own alphabet (for PaddleOCR, the line number in its character
dictionary + 1; 0 is the CTC blank), one row per item, padded with -1. Add a ``slice``
array (a font, a camera, a language per item) and the worst slice is gated too.

The decoding is PaddleOCR's greedy CTC decoding: the most likely class per time step,
repeats merged, blanks dropped. Only NumPy is needed.
"""

from __future__ import annotations

import numpy as np

BLANK = 0


def ctc_greedy_decode(probabilities: np.ndarray) -> list[list[int]]:
    """Per item: the class ids of the best path, repeats merged and blanks dropped."""
    best = probabilities.argmax(axis=-1)
    decoded = []
    for path in best:
        keep = np.ones(len(path), dtype=bool)
        keep[1:] = path[1:] != path[:-1]
        decoded.append([int(c) for c in path[keep] if c != BLANK])
    return decoded


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions, each costing 1."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def character_error_rate(
    outputs: dict[str, np.ndarray],
    baseline_outputs: dict[str, np.ndarray],
    truth: np.ndarray | None,
) -> np.ndarray:
    """CER per item: edit distance between the decoded text and the label, divided by the
    label's length (0 = perfect; above 1 when the output is much longer than the label)."""
    if truth is None:
        raise ValueError("the eval data needs 'labels': each line's character ids, -1 padded")
    (probabilities,) = outputs.values()  # (items, time steps, classes)
    scores = []
    for decoded, label in zip(ctc_greedy_decode(probabilities), truth, strict=True):
        wanted = [int(c) for c in np.ravel(label) if c >= 0]
        scores.append(edit_distance(decoded, wanted) / max(len(wanted), 1))
    return np.asarray(scores, dtype=np.float64)
