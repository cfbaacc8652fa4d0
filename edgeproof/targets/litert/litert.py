"""LiteRT pieces shared by ``tflite-cpu`` and ``edgetpu``: availability, builds from the
baseline's SavedModel, and the converter record logged with each candidate."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproof.data.dataset import Dataset
from edgeproof.records import Candidate
from edgeproof.targets.base import Availability
from edgeproof.targets.litert.model_io import ModelIo
from edgeproof.targets.litert.toolchain import (
    ConversionError,
    build,
    convert,
    converter_missing,
    write_calibration,
)

SAVED_MODEL = "saved_model"  # in the baseline's folder; every recipe converts from it


def litert_availability(python: str, *more: Callable[[], str | None]) -> Availability:
    """LiteRT importable here, the converter in ``python``'s environment, then each of
    ``more`` (a check returning why not, or None): the first reason found, or available."""
    try:
        import ai_edge_litert
    except ImportError as exc:
        return Availability(
            False, f"ai-edge-litert is not installed ({exc}); pip install edgeproof[tflite]"
        )
    for check in (lambda: converter_missing(python), *more):
        reason = check()
        if reason:
            return Availability(False, reason)
    return Availability(True, runtime_version=ai_edge_litert.__version__)


def quantize(
    baseline: Candidate,
    method: str,
    out: Path,
    calibration: Dataset | None,
    samples: int,
    *,
    python: str,
    timeout: float,
    label: str,
) -> dict[str, Any]:
    """Build ``out`` with ``method`` from the SavedModel next to ``baseline``'s model file."""
    saved_model = baseline.model_file.parent / SAVED_MODEL
    if not (saved_model / "saved_model.pb").is_file():
        raise ConversionError(f"{label}: the baseline's SavedModel is missing: {saved_model}")
    io = ModelIo.load(baseline.files[1])
    with tempfile.TemporaryDirectory(prefix="edgeproof-calibration-") as tmp:
        data = None
        if calibration is not None:
            data = write_calibration(calibration, samples, io, Path(tmp) / "calibration.npz")
        request = {
            "saved_model": str(saved_model.absolute()),
            "inputs": io.to_json()["inputs"],
            "builds": [build(method, out, data)],
        }
        return convert(request, python=python, timeout=timeout, label=label)


def converter_record(reply: dict[str, Any]) -> dict[str, Any]:
    """How a candidate was converted, as logged: tools and their versions."""
    versions = reply.get("versions", {})
    record: dict[str, Any] = {"converter": "onnx2tf + TFLiteConverter"}
    record |= {f"{tool}_version": version for tool, version in sorted(versions.items())}
    if "simplified" in reply:
        record["onnxsim"] = reply["simplified"]
    return record
