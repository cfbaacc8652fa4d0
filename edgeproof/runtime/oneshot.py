"""One-shot subprocesses: ``PYTHON -m MODULE REQUEST.json RESULT.json``, one JSON file each way.

The general part of ``edgeproof.targets.llama_cpp.runner`` /
``edgeproof.targets.llama_cpp.worker``, for any tool that must not run in the pipeline
process (a native crash, a hang, a heavy import such as TensorFlow, or a toolchain that
lives in another Python environment). The parent side (``run_module``) starts the child in
its own process group, samples its RSS (``edgeproof.runtime.proc_status.RssTrail``), kills
the whole group at the deadline, and turns any failure into the caller's error type with a
one-line reason: the phase the child was in, the signal or exit code, the child's own
one-line error, or else the last meaningful line of its output. The child side (``serve``)
reads the request, calls a handler and writes ``{"ok": true, ...}`` or ``{"ok": false,
"error": "<one line>"}``.

Only the standard library is imported here, so a child running in a toolchain environment
without edgeproof's dependencies can use ``serve`` (the parent puts edgeproof on PYTHONPATH).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

PHASE_MARK = "[edgeproof] phase: "
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding ``edgeproof/``
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACEBACK = ("Traceback", "File ", "^", "~")
_SIGNAL_HINTS = {
    signal.SIGABRT: "abort in native code",
    signal.SIGSEGV: "native crash",
    signal.SIGBUS: "native crash, e.g. a truncated memory-mapped file",
    signal.SIGKILL: "also what the kernel's OOM killer sends",
}


class ChildFailure(Exception):
    """A failure the child caught and explains in one line (no exception type prefix)."""


def phase(name: str) -> None:
    """Child side: tell the parent (through stderr) which phase starts now."""
    sys.stderr.write(f"{PHASE_MARK}{name}\n")
    sys.stderr.flush()


def serve(
    handler: Callable[[dict[str, Any]], dict[str, Any]], argv: list[str] | None = None
) -> int:
    """Child side: read the request file, ``handler`` it, write the result file; 0 or 1."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m MODULE REQUEST.json RESULT.json\n")
        return 2
    request, result_path = Path(args[0]), Path(args[1])
    try:
        reply = {"ok": True, **handler(json.loads(request.read_text(encoding="utf-8")))}
        code = 0
    except (Exception, SystemExit) as exc:  # a library calling sys.exit() is a failure too
        traceback.print_exc(file=sys.stderr)
        text = str(exc) if isinstance(exc, ChildFailure) else f"{type(exc).__name__}: {exc}"
        reply, code = {"ok": False, "error": one_line(text)}, 1
    tmp = result_path.with_name(f".{result_path.name}.tmp")
    tmp.write_text(json.dumps(reply), encoding="utf-8")
    os.replace(tmp, result_path)
    return code


def one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of ``text`` without colour codes, at most ``limit`` chars."""
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    return (lines[0] if lines else "(no message)")[:limit]


def output_tail(path: Path, noise: Iterable[str] = (), limit: int = 300) -> tuple[str | None, str]:
    """(last phase marker, last meaningful line) of a child's output file.

    Tracebacks, phase markers, colour codes and lines matching a ``noise`` regex (a
    library's routine logging) are skipped.
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16384))
        text = _ANSI.sub("", fh.read().decode("utf-8", "replace"))
    patterns = [re.compile(p) for p in noise]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    phases = [ln[len(PHASE_MARK) :] for ln in lines if ln.startswith(PHASE_MARK)]
    rest = [
        ln
        for ln in lines
        if not ln.startswith((PHASE_MARK, *_TRACEBACK)) and not any(p.search(ln) for p in patterns)
    ]
    return (phases[-1] if phases else None), (rest[-1] if rest else "")[-limit:]


def run_module(
    module: str,
    request: Mapping[str, Any],
    *,
    timeout: float,
    label: str,
    error: type[Exception],
    python: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    noise: Iterable[str] = (),
    signal_hints: Mapping[signal.Signals, str] | None = None,
) -> dict[str, Any]:
    """Run ``python -m module REQUEST RESULT`` once; its result dict, or raise ``error``.

    ``python``: the interpreter (default: this one). edgeproof's own folder is put first on
    the child's PYTHONPATH, so an interpreter of another environment finds ``module``.
    ``env`` adds to (and overrides) this process's environment.
    """
    from edgeproof.runtime.proc_status import RssTrail

    hints = {**_SIGNAL_HINTS, **(signal_hints or {})}
    with tempfile.TemporaryDirectory(prefix="edgeproof-oneshot-") as tmp:
        req_path, res_path, out_path = (Path(tmp) / n for n in ("req.json", "res.json", "out"))
        req_path.write_text(json.dumps(request), encoding="utf-8")
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT), child_env.get("PYTHONPATH", "")) if p
        )
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [str(python or sys.executable), "-m", module, str(req_path), str(res_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                env=child_env,
                cwd=cwd,
            )
        rss = RssTrail(proc.pid)
        try:
            code = proc.wait(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        finally:
            rss.stop()
        stage, tail = output_tail(out_path, noise)
        during = f" during {stage}" if stage else ""
        if hung:
            raise error(
                f"{label}: hung{during} for more than {timeout:g} s and was killed "
                f"({rss.text()})" + (f"; last output: {tail}" if tail else "")
            )
        reply = json.loads(res_path.read_text(encoding="utf-8")) if res_path.exists() else None
        if reply is not None and not reply.get("ok"):
            raise error(f"{label}: failed{during}: {reply.get('error')}")
        if code != 0 or reply is None:
            if code < 0:
                sig = signal.Signals(-code)
                hint = hints.get(sig)
                cause = f"killed by signal {sig.name}" + (f" ({hint})" if hint else "")
            else:
                cause = f"exited with code {code}" + ("" if reply else " and no result")
            raise error(
                f"{label}: process {cause}{during}; {rss.text()}"
                + (f"; last output: {tail}" if tail else "")
            )
        return reply
