"""Olive data script: registers the ``edgeproof_npz`` dataset for calibrating passes.

Olive imports this file (the ``user_script`` of the workflow's data config) inside the
``olive run`` process, and registering the dataset on import is how Olive finds it. The
file it reads is written by the ``olive`` target (``calls_stacked``): per model input, the
batch-1 calls of the calibration items stacked on axis 0, read without pickles. Each item
is ``(one model call's inputs by name, 0)``, fed as it is (no auto-batching): Olive's
calibration reader uses the inputs, the label is unused.
"""

from __future__ import annotations

import numpy as np
from olive.data.registry import Registry


class NpzItems:
    """The items of an edgeproof data file, one at a time."""

    def __init__(self, path: str) -> None:
        with np.load(path, allow_pickle=False) as npz:
            self._inputs = {name: npz[name] for name in npz.files}
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
