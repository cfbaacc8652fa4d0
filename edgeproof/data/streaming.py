"""Calibration states of a streaming model, carried by the model itself.

A static quantizer calibrates every input's range, the recurrent state's too; zeros would
calibrate the state to nothing. When the calibration file leaves a state out, the FP32
model is streamed through the calibration items in ONNX Runtime (batch 1, in order, reset
at each stream) and each item gets the state it would see when deployed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.data.dataset import Dataset
from edgeproof.data.feed import stream_calls


def carried_states(model: Path, data: Dataset) -> Dataset:
    """``data`` with every missing streaming state filled (items first) by streaming the
    ONNX ``model`` through its items."""
    import onnxruntime as ort

    layout = data.layout
    missing = [name for name in layout.states if name not in data.inputs]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    seen: dict[str, list[np.ndarray]] = {name: [] for name in missing}

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for name in missing:
            seen[name].append(layout.from_model(name, feeds[name]))
        return session.run(None, feeds)

    for _ in stream_calls(run, names, data.batches(1), layout, data.streams):
        pass
    return data.with_inputs({name: np.concatenate(states) for name, states in seen.items()})
