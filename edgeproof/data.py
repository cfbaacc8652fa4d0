"""Evaluation and calibration data: ``.npz`` files, one array per model input plus labels.

Data files are untrusted input: they must be zip archives (``np.load`` would read other
bytes as .npy or try them as a pickle), are opened with ``allow_pickle=False`` (an object
array in an .npz is a pickle and can run code), capped in size (on disk and unpacked),
and checked for the things that silently corrupt a gate: no rows, arrays of unequal
length, NaN or inf.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from edgeproof.errors import InputError

MAX_DATA_BYTES = 2 * 1024**3
SLICE_KEY = "slice"  # reserved: the eval items' groups for the worst-slice gate, not an input
LabelKind = Literal["classes", "values"]


@dataclass(frozen=True)
class Dataset:
    """Named input arrays (same first dimension) and optional labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: Path
    slices: np.ndarray | None = None  # the ``slice`` array: a group per item, for the metric

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batch(self, start: int, size: int) -> dict[str, np.ndarray]:
        return {k: v[start : start + size] for k, v in self.inputs.items()}

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self), size):
            yield self.batch(start, size)

    def head(self, n: int) -> Dataset:
        labels = None if self.labels is None else self.labels[:n]
        return Dataset({k: v[:n] for k, v in self.inputs.items()}, labels, self.source)


def load_dataset(
    path: Path,
    labels_key: str = "labels",
    allow_nonfinite: bool = False,
    label_kind: LabelKind = "classes",
) -> Dataset:
    """Load and sanity-check an .npz data file; raises InputError naming the problem.

    ``allow_nonfinite`` leaves NaN / inf for the data gate to report (with every other
    failed expectation) instead of stopping at the first problem. ``label_kind``: class
    ids (a 1-D integer array) or regression targets (numeric, one row per item).
    """
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
    if not arrays:
        raise InputError(f"data file has no input arrays (only {labels_key!r}): {path}")
    _check_arrays(arrays, labels, path, allow_nonfinite)
    if labels is not None:
        _check_labels(labels, label_kind, path, allow_nonfinite)
    if slices is not None:
        _check_slices(slices, len(next(iter(arrays.values()))), path)
    return Dataset(arrays, labels, path, slices)


def _check_slices(slices: np.ndarray, items: int, path: Path) -> None:
    if slices.ndim != 1 or len(slices) != items:
        raise InputError(
            f"data {SLICE_KEY!r} must hold one value per item ({items},), has {slices.shape}: "
            f"{path}"
        )
    if slices.dtype.kind not in "iuUSb":
        raise InputError(
            f"data {SLICE_KEY!r} must be integers or strings, not {slices.dtype}: {path}"
        )


def _check_arrays(
    arrays: dict[str, np.ndarray], labels: np.ndarray | None, path: Path, allow_nonfinite: bool
) -> None:
    lengths = {name: (a.shape[0] if a.ndim else 0) for name, a in arrays.items()}
    if labels is not None:
        lengths["labels"] = labels.shape[0] if labels.ndim else 0
    if len(set(lengths.values())) > 1:
        raise InputError(f"data arrays differ in length {lengths}: {path}")
    if next(iter(lengths.values())) == 0:
        raise InputError(f"data file has no rows: {path}")
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
