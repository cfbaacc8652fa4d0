"""ONNX -> OpenVINO IR for the ``openvino-cpu`` baseline, and why a conversion failed.

Facts this relies on (docs/architecture.md, "Runtime facts", this machine):
- The baseline is the ONNX model converted to IR (``ov.convert_model``) and saved with FP32
  weights: ``ov.save_model`` compresses weights to FP16 unless told not to.
- OpenVINO's conversion error opens with a C++ check location that says nothing; the ops it
  could not convert are named in it, or asked of its ONNX frontend (``convert_partially``)
  in a child process, where a native crash costs only the op names.
A converted model is two files, ``model.xml`` (first) and ``model.bin``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from edgeproof.errors import InputError


def convert_to_ir(model: Path, out: Path) -> None:
    """``model`` (ONNX) converted to IR at ``out`` (``model.xml``, beside it ``model.bin``)
    with FP32 weights; an ``InputError`` in one line when OpenVINO cannot convert it."""
    import openvino as ov

    try:
        ov.save_model(ov.convert_model(str(model)), str(out), compress_to_fp16=False)
    except Exception as exc:  # OpenVINO's frontends raise their own types
        raise InputError(
            f"OpenVINO cannot convert the model ({conversion_failure(exc, model)}): {model}"
        ) from None


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


_FAILED_OPS = re.compile(
    r"(?:Conversion is failed for|No conversion rule found for operations): (.+)"
)
_FRAMING = ("Check ", "FrontEnd API", "While validating", "--", "[ONNX Frontend]", "Model wasn't")


def conversion_failure(exc: BaseException, model: Path | None = None) -> str:
    """OpenVINO's conversion error in one line: the ops it could not convert and the first
    reason it gives (its message opens with a C++ check location that says nothing). When
    the message names no op, OpenVINO's ONNX frontend is asked which ops it left
    unconverted (``convert_partially``: ``domain.op`` of each framework node)."""
    text = str(exc)
    failed = _FAILED_OPS.search(text)
    ops = failed.group(1).strip() if failed else None
    head = text[: failed.start()] if failed else text
    reasons = [
        line.strip()
        for line in head.splitlines()
        if line.strip() and not line.strip().startswith(_FRAMING) and "Summary" not in line
    ]
    if reasons and reasons[0] == "Loading input model":
        reasons = reasons[1:] or reasons  # the frontend's step, then what failed in it
    if ops is None and model is not None:
        ops = ", ".join(unconverted_ops(model)) or None
    why = f": {reasons[0]}" if reasons else ""
    if ops is None:
        return f"{type(exc).__name__}{why}"[:300] if reasons else _first(exc)
    return f"{type(exc).__name__}: ops {ops} did not convert{why}"[:300]


def unconverted_ops(model: Path, timeout: float = 120.0) -> list[str]:
    """``domain.op`` of each op OpenVINO's ONNX frontend cannot convert (the framework
    nodes ``convert_partially`` leaves); empty if the frontend cannot even load the model.
    Asked in a child process: a native crash there costs only the op names."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _UNCONVERTED_SCRIPT, str(model)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        found = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return []
    return [str(op) for op in found] if isinstance(found, list) else []


_UNCONVERTED_SCRIPT = """
import json, sys
from openvino.frontend import FrontEndManager
manager = FrontEndManager()
found = set()
try:
    frontend = manager.load_by_framework("onnx")
    loaded = frontend.load(sys.argv[1])
    partial = frontend.convert_partially(loaded)
    for op in partial.get_ordered_ops():
        if "FrameworkNode" in op.get_type_name():
            attrs = op.get_attributes()
            domain = attrs.get("ONNX_META_domain") or "ai.onnx"
            found.add(domain + "." + attrs.get("ONNX_META_type", op.get_friendly_name()))
except Exception:
    pass
print(json.dumps(sorted(found)), flush=True)
"""
