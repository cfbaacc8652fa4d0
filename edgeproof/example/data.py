"""The example's data: scikit-learn's digits, upsampled, split into train / calibration / eval.

Everything comes from the data scikit-learn ships (1,797 8x8 images), so the example builds
offline. Exact duplicate images are dropped first, so no image can sit in both the eval
split and the others; eval is a stratified split of the rest; calibration is a stratified
subset of the training images (quantizers calibrate on training-like data; the eval split
stays unseen by both training and calibration).

The .npz files are byte-for-byte reproducible (DVC records their md5 in dvc.lock):
``np.savez`` stamps each member with the current time, so they are written here with a
fixed timestamp instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from edgeproof.config import ExampleConfig
from edgeproof.errors import ConfigError


def _load_digits(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicated digits in [0, 1], bilinearly upsampled to N x 1 x S x S float32."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    seen: set[str] = set()
    keep = []
    for i, img in enumerate(images):
        key = hashlib.sha256(img.tobytes()).hexdigest()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    images, labels = images[keep], labels[keep]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same rounding on any machine's core count
    try:
        up = torch.nn.functional.interpolate(
            torch.from_numpy(images[:, None]),
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
        )
    finally:
        torch.set_num_threads(threads)
    return up.numpy().astype(np.float32), labels


# every member's timestamp: the earliest a zip file can hold
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz (uncompressed, as ``np.savez``) atomically and reproducibly: the same
    arrays give the same bytes (fixed member timestamps, no zip64 records: Python 3.11
    patch releases stamp those with other version fields); a temp file, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.create_system = 3  # unix, as on every platform
                info.external_attr = 0o644 << 16
                with zf.open(info, "w") as member:  # members stay below 2 GiB
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_splits(cfg: ExampleConfig, out_dir: Path) -> dict[str, Path]:
    """Write train.npz, calibration.npz and eval.npz (keys ``input``, ``labels``)."""
    from sklearn.model_selection import train_test_split

    x, y = _load_digits(cfg.image_size)
    if cfg.eval_size + cfg.calibration_size >= len(x):
        raise ConfigError(
            f"params.yaml: example: eval_size + calibration_size must be below {len(x)} images"
        )
    idx = np.arange(len(x))
    train_idx, eval_idx = train_test_split(
        idx, test_size=cfg.eval_size, stratify=y, random_state=cfg.seed
    )
    _, calib_idx = train_test_split(
        train_idx, test_size=cfg.calibration_size, stratify=y[train_idx], random_state=cfg.seed
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in (("train", train_idx), ("calibration", calib_idx), ("eval", eval_idx)):
        rows = np.sort(rows)
        paths[split] = out_dir / f"{split}.npz"
        _save_npz(paths[split], input=x[rows], labels=y[rows])
    return paths
