"""The example's data: scikit-learn's digits, upsampled, split into train / calibration / eval.

Everything comes from the data scikit-learn ships (1,797 8x8 images), so the example builds
offline. Exact duplicate images are dropped first, so no image can sit in both the eval
split and the others; eval is a stratified split of the rest; calibration is a stratified
subset of the training images (quantizers calibrate on training-like data; the eval split
stays unseen by both training and calibration).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
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
    up = torch.nn.functional.interpolate(
        torch.from_numpy(images[:, None]),
        size=(image_size, image_size),
        mode="bilinear",
        align_corners=False,
    )
    return up.numpy().astype(np.float32), labels


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz atomically: a temp file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
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
