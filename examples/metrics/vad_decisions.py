"""Speech / silence decisions of a streaming voice-activity detector, as a ``model.metric``.

Copy this file beside your params.yaml and set::

    model:
      task: raw
      metric: {function: "vad_decisions.py:speech_decision_correct", name: vad-accuracy}
      inputs:
        sr: {value: 16000}                # the sample rate: one value for every call
        state: {carried_from: stateN}     # the recurrent state, fed back call after call

The eval data holds the audio chunks (``input``, one row per step, in time order), a
``stream`` array (one id per clip: the state starts at zeros at each clip's first chunk)
and ``labels``: 1 where the chunk is speech, 0 where it is silence. The detector says
speech where its probability (output ``output``) is above ``THRESHOLD``.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.5


def speech_decision_correct(
    outputs: dict[str, np.ndarray], baseline: dict[str, np.ndarray], labels: np.ndarray | None
) -> np.ndarray:
    """Per chunk: 1.0 where the speech decision matches the label, else 0.0."""
    if labels is None:
        raise ValueError("the eval data needs labels: 1 for a speech chunk, 0 for silence")
    probability = outputs["output"].reshape(len(labels), -1)[:, 0]
    return ((probability > THRESHOLD) == (labels > 0)).astype(np.float64)
