"""Parent side of ONNX -> TFLite conversion: which Python holds the toolchain, is it
complete, and running ``edgeproof.targets.litert.convert`` there as a one-shot subprocess.

The pipeline process never imports TensorFlow: conversion runs in a child of the toolchain
interpreter (``toolchain_python`` in the target's config, else this interpreter), offline
(``CUDA_VISIBLE_DEVICES=""``, TensorFlow's C++ info logging off), under a deadline. A
failure is a ``ConversionError`` with one line: onnx2tf's or the TFLite converter's own
message, else the last meaningful line the child printed (TensorFlow's routine log lines
are skipped).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.data.dataset import Dataset
from edgeproof.errors import InputError
from edgeproof.runtime.oneshot import run_module
from edgeproof.targets.litert.model_io import ModelIo

# what onnx2tf 1.28.8 imports at run time (it declares no requirements itself); onnxruntime
# is used for its dummy inference, onnxsim is optional (used when present)
TOOLCHAIN_MODULES = (
    "tensorflow",
    "tf_keras",
    "onnx2tf",
    "onnx",
    "onnx_graphsurgeon",
    "sng4onnx",
    "onnxruntime",
    "ai_edge_litert",
    "psutil",
    "requests",
)
CONVERT_ENV = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
# TensorFlow / absl routine lines that are never the reason for a failure
NOISE = (
    r"^[IWE]\d{4} ",
    r"^WARNING: All log messages before absl",
    r"oneDNN custom operations",
    r"cuda",
)


class ConversionError(InputError):
    """The model cannot be converted to TFLite (one-line reason)."""


def toolchain_python(configured: Path | None) -> str:
    """The interpreter that runs the converter."""
    return str(configured) if configured is not None else sys.executable


def converter_missing(python: str) -> str | None:
    """Why the converter cannot run with ``python`` (one line), or None if it can.

    This interpreter is checked in-process without importing anything (``find_spec``);
    another one with a short subprocess doing the same.
    """
    if python == sys.executable:
        missing = [m for m in TOOLCHAIN_MODULES if find_spec(m) is None]
    else:
        code = (
            "import json, importlib.util as u;"
            f"print(json.dumps([m for m in {list(TOOLCHAIN_MODULES)!r} if u.find_spec(m) is None]))"
        )
        try:
            done = subprocess.run(
                [python, "-c", code], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"toolchain Python {python} cannot run ({type(exc).__name__}: {exc})"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            return f"toolchain Python {python} failed: {last}"
        missing = json.loads(done.stdout.strip().splitlines()[-1])
    if missing:
        return (
            f"the TFLite converter is not installed in {python} (missing: {', '.join(missing)}); "
            "pip install edgeproof[tflite]"
        )
    return None


def convert(request: dict[str, Any], *, python: str, timeout: float, label: str) -> dict[str, Any]:
    """Run the converter child once (see ``edgeproof.targets.litert.convert.handle``)."""
    return run_module(
        "edgeproof.targets.litert.convert",
        request,
        timeout=timeout,
        label=label,
        error=ConversionError,
        python=python,
        env=CONVERT_ENV,
        noise=NOISE,
    )


def onnx_request(
    model: Path, saved_model: Path, io: ModelIo, batch_size: int | None = None
) -> dict[str, Any]:
    """The part of a request that converts ``model`` to a SavedModel."""
    return {
        "onnx": str(model.absolute()),
        "saved_model": str(saved_model.absolute()),
        "batch_size": batch_size,
        "inputs": io.to_json()["inputs"],
        "builds": [],
    }


def build(method: str, out: Path, calibration: Path | None = None) -> dict[str, Any]:
    """One TFLite build of a request: ``fp32``, ``dynamic-range`` or ``full-int8``."""
    return {
        "method": method,
        "out": str(out.absolute()),
        "calibration": None if calibration is None else str(calibration.absolute()),
    }


def write_calibration(data: Dataset, samples: int, io: ModelIo, path: Path) -> Path:
    """The first ``samples`` calibration items of the model's inputs, as an .npz (ONNX layout)."""
    head = data.head(samples)
    feeds = head.batch(0, len(head))
    missing = [i.name for i in io.inputs if i.name not in feeds]
    if missing:
        raise InputError(f"calibration data has no array for model input(s) {missing}")
    np.savez(path, **{i.name: feeds[i.name] for i in io.inputs})
    return path
