"""Train the example CNN (~2M parameters) on the digits splits and export it to ONNX.

Big enough that int8 matters (a 38k-parameter net shows no int8 gain: per-call overhead
dominates), small enough to train in about a minute on 2 cores. Exported as one ONNX file
(input ``input``, output ``logits``, dynamic batch) and checked against PyTorch with ONNX
Runtime before it replaces the previous file.

Deterministic on one machine: training runs with fixed seeds (weights and batch order),
deterministic algorithms only, and a fixed number of threads (``example.threads``: how a
float sum is split over threads changes its rounding); the export is byte-deterministic (the
exporter's per-node stack traces, which name the venv's path, are dropped) and the metrics
hold no timing. Kernels are pinned to AVX2 where PyTorch allows it (``pin_instruction_set``:
oneDNN, ATen, MKL), yet CPU families still round differently (an AMX Xeon and an AVX-512
EPYC wrote different bytes), so the model dvc.lock records is kept in the committed DVC
remote ``reference`` and ``make example`` pulls it instead of training again (docs/
running.md). The ONNX check's own difference (ONNX Runtime picks its kernels by CPU) is
recorded as the bound it passed, not its value.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.config import ExampleConfig
from edgeproof.errors import EdgeproofError

# read by oneDNN, ATen and MKL when PyTorch loads: set before ``import torch``
PINNED_INSTRUCTION_SET = {
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_CBWR": "AVX2",
}
ONNX_TOLERANCE = 1e-3  # the exported model must match PyTorch's logits this closely


def pin_instruction_set() -> None:
    """Make PyTorch's CPU kernels those of AVX2 (unless the user chose otherwise), so the
    trained model's bytes do not depend on the machine's wider instruction sets."""
    for key, value in PINNED_INSTRUCTION_SET.items():
        os.environ.setdefault(key, value)


def build_model(image_size: int, classes: int = 10) -> Any:
    """Four 3x3 conv + batch-norm layers (32-64-128-128), three 2x2 pools, two linear layers."""
    from torch import nn

    feat = image_size // 8

    def conv(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *conv(1, 32),
        *conv(32, 64), nn.MaxPool2d(2),
        *conv(64, 128), nn.MaxPool2d(2),
        *conv(128, 128), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * feat * feat, 208), nn.ReLU(),
        nn.Linear(208, classes),
    )  # fmt: skip


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return npz["input"], npz["labels"]


@contextlib.contextmanager
def deterministic_torch(seed: int, threads: int) -> Iterator[None]:
    """Seed every RNG and allow only deterministic algorithms on ``threads`` intra-op
    threads; the process's previous settings come back afterwards (tests train in-process)."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_threads = torch.get_num_threads()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(was_threads)


def _train(cfg: ExampleConfig, model: Any, x: np.ndarray, y: np.ndarray) -> None:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            opt.zero_grad()
            loss_fn(model(xt[rows]), yt[rows]).backward()
            opt.step()
    model.eval()


def _export(model: Any, image_size: int, onnx_path: Path) -> None:
    import torch

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{onnx_path.name}.", suffix=".onnx", dir=onnx_path.parent)
    os.close(fd)
    try:
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, image_size, image_size),),
            tmp,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            external_data=False,
        )
        if Path(tmp + ".data").exists():
            raise EdgeproofError("ONNX export wrote external data; expected a single file")
        _strip_export_metadata(Path(tmp))
        os.replace(tmp, onnx_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(tmp + ".data").unlink(missing_ok=True)


def _strip_export_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (stack traces naming the install's own paths,
    e.g. ``/ci/checkout/.venv/.../container.py``), so the bytes do not depend on where the
    project and its venv live."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


def _onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # metrics/train.json must not depend on the core count
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate(
        [session.run(None, {"input": x[i : i + 64]})[0] for i in range(0, len(x), 64)]
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def train_and_export(
    cfg: ExampleConfig, splits_dir: Path, onnx_path: Path, metrics_path: Path
) -> dict[str, Any]:
    """Train, export, verify against PyTorch; writes and returns the metrics (no timings:
    the metrics file is a DVC output, reproduced byte for byte like the model)."""
    import torch

    x_train, y_train = _load(splits_dir / "train.npz")
    x_eval, y_eval = _load(splits_dir / "eval.npz")
    with deterministic_torch(cfg.seed, cfg.threads):
        model = build_model(x_train.shape[-1])
        _train(cfg, model, x_train, y_train)
        with torch.no_grad():
            torch_logits = torch.cat(
                [model(torch.from_numpy(x_eval[i : i + 64])) for i in range(0, len(x_eval), 64)]
            ).numpy()
        _export(model, x_train.shape[-1], onnx_path)
    onnx_logits = _onnx_logits(onnx_path, x_eval)
    max_diff = float(np.abs(onnx_logits - torch_logits).max())
    if max_diff > ONNX_TOLERANCE or (onnx_logits.argmax(1) != torch_logits.argmax(1)).any():
        raise EdgeproofError(f"exported ONNX model differs from PyTorch (max |diff| {max_diff})")
    metrics = {
        "params": int(sum(p.numel() for p in model.parameters())),
        "train_images": len(x_train),
        "eval_accuracy": float((torch_logits.argmax(1) == y_eval).mean()),
        "onnx_matches_torch_within": ONNX_TOLERANCE,  # checked above; the value varies by CPU
        "onnx_bytes": onnx_path.stat().st_size,
    }
    _write_json(metrics_path, metrics)
    return metrics
