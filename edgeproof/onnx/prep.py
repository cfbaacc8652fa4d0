"""ONNX Runtime pre-processing with fallbacks, for models as users bring them.

``quant_pre_process`` runs three tools in turn: ONNX Runtime's symbolic shape inference,
its graph optimizer (an ``InferenceSession`` that saves the optimized graph) and ONNX's
own shape inference. Real third-party models break the first one often: a Paddle2ONNX
export fails an assertion with no message (``_infer_Concat``), an ``If`` subgraph fails
another one, a PyTorch transformer ends in "Incomplete symbolic shape inference". Each of
these models quantizes fine without that step.

:func:`prepare_for_ort` climbs down a ladder and keeps the first rung that works:

1. ``full``: ``quant_pre_process`` as it is;
2. ``no-symbolic-shape``: ``skip_symbolic_shape=True``;
3. ``no-optimization``: also ``skip_optimization=True`` (ONNX shape inference only);
4. ``raw``: the model as given (re-saved, external data included).

A rung counts only when ONNX Runtime can open what it wrote. Every step given up is
recorded with its cause in one line (:func:`root_cause`), for the run's record.

Each rung runs in a child process (``python -m edgeproof.onnx.prep``, through
:mod:`edgeproof.runtime.oneshot`) whose working directory is a scratch folder: when symbolic shape
inference ends incomplete, ONNX Runtime 1.31 saves ``sym_shape_infer_temp.onnx`` and a
uuid-named ``.data`` file with all the weights (69 MB for MiniLM-L3) into the *current
directory*, i.e. the user's project; a native crash or hang of a tool also stays there.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# (rung name, quant_pre_process keyword arguments, the step this rung gives up)
LADDER: tuple[tuple[str, dict[str, bool], str], ...] = (
    ("full", {}, "symbolic shape inference"),
    ("no-symbolic-shape", {"skip_symbolic_shape": True}, "graph optimization"),
    (
        "no-optimization",
        {"skip_symbolic_shape": True, "skip_optimization": True},
        "onnx shape inference",
    ),
)
RAW = "raw"
RUNG_TIMEOUT_SECONDS = 900.0

# Source file (as in a traceback) -> the tool it belongs to, for one-line causes.
_TOOLS: tuple[tuple[str, str], ...] = (
    ("symbolic_shape_infer", "onnxruntime symbolic shape inference"),
    ("onnx/shape_inference", "onnx shape inference"),
    ("quantization/shape_inference", "onnxruntime quant_pre_process"),
    ("onnxruntime/capi", "onnxruntime graph optimization"),
    ("onnx/", "onnx"),
)
_MAX_LINE = 240


@dataclass(frozen=True)
class SkippedStep:
    """One pre-processing step given up, and why (one line, never empty)."""

    step: str
    reason: str


@dataclass(frozen=True)
class Preparation:
    """The prepared model and how it was made."""

    path: Path
    level: str  # "full", "no-symbolic-shape", "no-optimization" or "raw"
    skipped: tuple[SkippedStep, ...]

    @property
    def complete(self) -> bool:
        """True when nothing was skipped (the full ``quant_pre_process``)."""
        return not self.skipped

    def record(self) -> dict[str, Any]:
        """The part of a candidate's recipe record that says how it was pre-processed."""
        return {
            "preprocess": "quant_pre_process" if self.level != RAW else "none",
            "preprocess_level": self.level,
            "preprocess_skipped": [f"{s.step}: {s.reason}" for s in self.skipped],
        }


def prepare_for_ort(model: Path, out: Path, timeout: float = RUNG_TIMEOUT_SECONDS) -> Preparation:
    """Pre-process ``model`` for ONNX Runtime quantization into ``out``; never raises on a
    tool failure (the last rung is the model itself), only on an unreadable model.

    ``out``'s folder is created; files of a failed rung are removed before the next one.
    ``timeout``: seconds per rung before its process is killed (and the rung given up).
    """
    model, out = model.resolve(), out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    skipped: list[SkippedStep] = []
    for level, options, gives_up in LADDER:
        reason = _attempt(model, out, options, gives_up, timeout)
        if reason is None:
            return Preparation(out, level, tuple(skipped))
        skipped.append(SkippedStep(gives_up, reason))
        _remove_outputs(out)
    _copy_model(model, out)
    return Preparation(out, RAW, tuple(skipped))


class _RungFailed(Exception):
    """A rung's process crashed, hung or could not report (the message says which)."""


def _attempt(
    model: Path, out: Path, options: dict[str, bool], gives_up: str, timeout: float
) -> str | None:
    """Run one rung in a child process in a scratch folder; None, or why it failed."""
    from edgeproof.runtime.oneshot import run_module

    request = {"model": str(model), "out": str(out), "options": options, "step": gives_up}
    with tempfile.TemporaryDirectory(prefix="edgeproof-prep-") as scratch:
        try:
            reply = run_module(
                "edgeproof.onnx.prep",
                request,
                timeout=timeout,
                label=f"onnxruntime pre-processing ({gives_up})",
                error=_RungFailed,
                cwd=Path(scratch),
                noise=(r"^\d{4}-\d\d-\d\d ", r"Model Optimization Failed"),
            )
        except _RungFailed as exc:
            return first_meaningful_line(str(exc)) or f"{gives_up} process failed"
    return reply.get("failed")


def _serve_rung(request: dict[str, Any]) -> dict[str, Any]:
    """Child side of :func:`_attempt`: one rung, its failure as a one-line cause."""
    out = Path(request["out"])
    try:
        _run_quant_pre_process(Path(request["model"]), out, request["options"])
        _check_opens(out)
    except Exception as exc:  # each tool raises its own types (and bare assertions)
        return {"failed": root_cause(exc, default_tool=request["step"])}
    return {"failed": None}


def root_cause(exc: BaseException, default_tool: str = "pre-processing") -> str:
    """One line naming an exception's type, the tool it came from, its first meaningful
    message line and where it was raised; never empty, also for a bare ``assert``.

    >>> root_cause(AssertionError())  # never raised: no traceback
    'AssertionError in pre-processing (no message) at unknown location'
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].name}:{frames[-1].lineno}" if frames else "unknown location"
    tool = _tool_of(frames) or default_tool
    node = _node_of(exc.__traceback__)
    at = f"{where}{node}"
    message = first_meaningful_line(str(exc))
    kind = type(exc).__name__
    if not message:
        return f"{kind} in {tool} (no message) at {at}"
    return f"{kind} in {tool}: {message} (at {at})"


def first_meaningful_line(text: str) -> str:
    """The first line of a tool's message that says something, cut to one short line.

    ONNX Runtime prefixes its errors with ``[ONNXRuntimeError] : 1 : FAIL :`` and a C++
    source location and signature; those are dropped.
    """
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line or set(line) <= set("-=*~^ "):
            continue
        if line.startswith("[ONNXRuntimeError]"):
            line = line.split(":", 3)[-1].strip()
        if "onnxruntime_src/" in line:  # "<path>:<line> <C++ signature> <message>"
            tail = line.rsplit(") ", 1)
            line = tail[-1].strip() if len(tail) == 2 else line
        return line[:_MAX_LINE]
    return ""


def _tool_of(frames: traceback.StackSummary) -> str | None:
    for frame in reversed(frames):
        path = frame.filename.replace("\\", "/")
        for marker, tool in _TOOLS:
            if marker in path:
                return tool
    return None


def _node_of(tb: TracebackType | None) -> str:
    """`` on <Op> node '<name>'`` for the deepest frame that was working on a node."""
    found = ""
    while tb is not None:
        node = tb.tb_frame.f_locals.get("node")
        op_type = getattr(node, "op_type", None)
        if isinstance(op_type, str):
            found = f" on {op_type} node {getattr(node, 'name', '')!r}"
        tb = tb.tb_next
    return found


def _run_quant_pre_process(model: Path, out: Path, options: dict[str, bool]) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(model), str(out), **options)


def _check_opens(path: Path) -> None:
    """Raise when ONNX Runtime cannot open the written model (a rung that 'worked' but
    wrote something unusable is no rung)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _remove_outputs(out: Path) -> None:
    for path in out.parent.glob(out.name + "*"):
        if path.is_file():
            path.unlink()


def _copy_model(model: Path, out: Path) -> None:
    """The model as given; with external data, loaded and saved again next to ``out``."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    if not any(_is_external(t) for t in proto.graph.initializer):
        shutil.copyfile(model, out)
        return
    proto = onnx.load(str(model))
    onnx.save_model(
        proto,
        str(out),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=out.name + ".data",
    )


def _is_external(tensor: Any) -> bool:
    import onnx

    return tensor.data_location == onnx.TensorProto.EXTERNAL


if __name__ == "__main__":
    from edgeproof.runtime.oneshot import serve

    sys.exit(serve(_serve_rung))
