"""Olive data script: registers the ``edgeproof_npz`` dataset for calibrating passes.

Olive imports this file (the ``user_script`` of the workflow's data config) inside the
``olive run`` process, and registering the dataset on import is how Olive finds it. The
file it reads is written by the ``olive`` target: the calibration items, inputs only, one
array per model input; it is read with edgeproof's own loader (no pickles). Each item is
``(inputs by name, 0)``: Olive's calibration reader uses the inputs, the label is unused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from olive.data.registry import Registry

from edgeproof.data import load_dataset


class NpzItems:
    """The items of an edgeproof data file, one at a time."""

    def __init__(self, path: str) -> None:
        self._inputs = load_dataset(Path(path)).inputs
        self._n = len(next(iter(self._inputs.values())))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], int]:
        if index >= self._n:
            raise IndexError(index)
        return {name: array[index] for name, array in self._inputs.items()}, 0


@Registry.register_dataset()
def edgeproof_npz(path: str, **_: object) -> NpzItems:
    """Olive dataset component over a calibration file written by the ``olive`` target."""
    return NpzItems(path)
