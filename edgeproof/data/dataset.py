"""Evaluation and calibration data: ``.npz`` files, one array per model input plus labels.

Data files are untrusted input: they must be zip archives (``np.load`` would read other
bytes as .npy or try them as a pickle), are opened with ``allow_pickle=False`` (an object
array in an .npz is a pickle and can run code), capped in size (on disk and unpacked),
and checked for the things that silently corrupt a gate: no rows, arrays of unequal
length, NaN or inf.

A file is read whole into memory (NumPy never memory-maps an .npz member), by every process
that loads it: the run's own (checks, data gate) and each measuring subprocess, of which
two are alive at once (the baseline and the candidate it is timed against). Arrays are kept
in the file's dtype; integer data for a float input is cast one batch at a time
(``FeedLayout.feed``), so ``uint8`` images cost a quarter of float32's memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from edgeproof.data.feed import STREAM_KEY, FeedLayout, items_first
from edgeproof.errors import InputError

MAX_DATA_BYTES = 2 * 1024**3  # on disk and unpacked: each process loading it holds it all
SLICE_KEY = "slice"  # reserved: the eval items' groups for the worst-slice gate, not an input
LabelKind = Literal["classes", "values"]


@dataclass(frozen=True)
class Dataset:
    """Per-item input arrays (items first, same length), constant inputs, optional labels.

    The arrays are kept as the file stores them (``uint8`` images stay ``uint8``); ``batch``
    gives what a model call takes: each array in the model's layout and dtype (``layout``),
    the constants, and zeros for a streaming state the file leaves out.
    """

    inputs: dict[str, np.ndarray]  # items first, whatever the model's item axis
    labels: np.ndarray | None
    source: Path
    slices: np.ndarray | None = None  # the ``slice`` array: a group per item, for the metric
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    layout: FeedLayout = field(default_factory=FeedLayout)
    streams: np.ndarray | None = None  # the ``stream`` array: a stream id per item

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batch(self, start: int, size: int) -> dict[str, np.ndarray]:
        """The feeds of one model call: items ``start`` .. ``start + size`` in the model's
        layout and dtype (integer data for a float input cast here, one batch at a time:
        every session and calibrator gets its data through this), the constants, zero
        states."""
        layout = self.layout
        feeds = {
            k: layout.feed(k, layout.to_model(k, v[start : start + size]))
            for k, v in self.inputs.items()
        }
        items = max(0, min(size, len(self) - start))
        for name, state in layout.states.items():
            if name not in feeds:
                feeds[name] = state.zeros(items, layout.item_axis(name))
        return {**feeds, **{k: layout.feed(k, v) for k, v in self.constants.items()}}

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self), size):
            yield self.batch(start, size)

    def head(self, n: int) -> Dataset:
        labels = None if self.labels is None else self.labels[:n]
        inputs = {k: v[:n] for k, v in self.inputs.items()}
        streams = None if self.streams is None else self.streams[:n]
        return replace(self, inputs=inputs, labels=labels, slices=None, streams=streams)

    def with_inputs(self, arrays: dict[str, np.ndarray]) -> Dataset:
        """This data with per-item ``arrays`` (items first) added or replaced."""
        return replace(self, inputs={**self.inputs, **arrays})


def load_dataset(
    path: Path,
    labels_key: str = "labels",
    allow_nonfinite: bool = False,
    label_kind: LabelKind = "classes",
    layout: FeedLayout | None = None,
) -> Dataset:
    """Load and sanity-check an .npz data file; raises InputError naming the problem.

    ``allow_nonfinite`` leaves NaN / inf for the data gate to report (with every other
    failed expectation) instead of stopping at the first problem. ``label_kind``: class
    ids (a 1-D integer array) or regression targets (numeric, one row per item).
    ``layout``: the model's item axes and constant inputs (default: items on axis 0, a
    0-d array is a constant).
    """
    layout = layout or FeedLayout()
    if path.is_dir():
        raise InputError(f"data path is a directory, not a file: {path}")
    if not path.is_file():
        raise InputError(f"data file not found: {path}")
    if path.stat().st_size > MAX_DATA_BYTES:
        raise InputError(f"data file too large (> {MAX_DATA_BYTES >> 20} MiB): {path}")
    if not zipfile.is_zipfile(path):  # np.load would try .npy, then pickle, on other bytes
        raise InputError(
            f"data file is not an .npz (zip) archive: truncated, or another format: {path}"
        )
    try:
        with zipfile.ZipFile(path) as archive:  # sizes as declared: a zip bomb stops here
            expanded = sum(info.file_size for info in archive.infolist())
        if expanded > MAX_DATA_BYTES:
            raise InputError(f"data file expands to more than {MAX_DATA_BYTES >> 20} MiB: {path}")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"data file is not a readable .npz ({_short(exc)}): {path}") from None
    for key, value in arrays.items():  # NpzFile hands back raw bytes for a non-.npy member
        if not isinstance(value, np.ndarray):
            raise InputError(f"data file member {key!r} is not a NumPy .npy array: {path}")
    labels = arrays.pop(labels_key, None)
    slices = arrays.pop(SLICE_KEY, None)
    streams = arrays.pop(STREAM_KEY, None)
    if not arrays:
        raise InputError(f"data file has no input arrays (only {labels_key!r}): {path}")
    constants = {k: arrays.pop(k) for k in list(arrays) if layout.is_constant(k, arrays[k])}
    for name in constants.keys() & layout.constants.keys():
        raise InputError(
            f"data array {name!r} is also given in params.yaml (model.inputs.{name}.value): "
            f"give it once: {path}"
        )
    if not arrays:
        raise InputError(f"data file has no per-item input arrays (only constants): {path}")
    arrays = {k: _items_first(k, a, layout.item_axis(k), path) for k, a in arrays.items()}
    _check_lengths(arrays, labels, layout, path)
    _check_arrays(arrays, path, allow_nonfinite)
    _check_constants(constants, path, allow_nonfinite)
    if labels is not None:
        _check_labels(labels, label_kind, path, allow_nonfinite)
    items = len(next(iter(arrays.values())))
    for key, groups in ((SLICE_KEY, slices), (STREAM_KEY, streams)):
        if groups is not None:
            _check_groups(key, groups, items, path)
    return Dataset(arrays, labels, path, slices, {**constants, **layout.constants}, layout, streams)


def _items_first(name: str, array: np.ndarray, axis: int, path: Path) -> np.ndarray:
    if array.ndim <= axis:
        raise InputError(
            f"data array {name!r} has {array.ndim} dims {array.shape}; the model takes its "
            f"items on axis {axis}: {path}"
        )
    return items_first(array, axis)


def _check_constants(constants: dict[str, np.ndarray], path: Path, allow_nonfinite: bool) -> None:
    for name, a in constants.items():
        if a.dtype.kind not in "fiub":
            raise InputError(f"data array {name!r} has unsupported dtype {a.dtype}: {path}")
        if not allow_nonfinite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(f"data array {name!r} contains NaN or inf: {path}")


def _check_groups(key: str, groups: np.ndarray, items: int, path: Path) -> None:
    if groups.ndim != 1 or len(groups) != items:
        raise InputError(
            f"data {key!r} must hold one value per item ({items},), has {groups.shape}: {path}"
        )
    if groups.dtype.kind not in "iuUSb":
        raise InputError(f"data {key!r} must be integers or strings, not {groups.dtype}: {path}")


def _check_lengths(
    arrays: dict[str, np.ndarray], labels: np.ndarray | None, layout: FeedLayout, path: Path
) -> None:
    lengths = {
        name + (f" (items on axis {layout.item_axis(name)})" if layout.item_axis(name) else ""): (
            len(a)
        )
        for name, a in arrays.items()
    }
    if labels is not None:
        lengths["labels"] = labels.shape[0] if labels.ndim else 0
    if len(set(lengths.values())) > 1:
        raise InputError(f"data arrays differ in length {lengths}: {path}")
    if next(iter(lengths.values())) == 0:
        raise InputError(f"data file has no rows: {path}")


def _check_arrays(arrays: dict[str, np.ndarray], path: Path, allow_nonfinite: bool) -> None:
    for name, a in arrays.items():
        if not allow_nonfinite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(f"data array {name!r} contains NaN or inf: {path}")
        if a.dtype.kind not in "fiub":
            raise InputError(f"data array {name!r} has unsupported dtype {a.dtype}: {path}")


def _check_labels(labels: np.ndarray, kind: LabelKind, path: Path, allow_nonfinite: bool) -> None:
    if kind == "classes":
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise InputError(f"labels must be a 1-D integer array, got {labels.dtype}: {path}")
        return
    if labels.ndim < 1 or labels.dtype.kind not in "fiu":
        raise InputError(f"regression targets must be numeric, got {labels.dtype}: {path}")
    if not allow_nonfinite and labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise InputError(f"regression targets contain NaN or inf: {path}")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
