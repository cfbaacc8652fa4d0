"""Running ``edgetpu_compiler`` on a full-int8 TFLite model.

Facts this relies on (Coral docs "Edge TPU Compiler", google-coral/edgetpu issues):
- ``edgetpu_compiler -s -o OUTDIR model.tflite`` writes ``OUTDIR/model_edgetpu.tflite`` and
  ``OUTDIR/model_edgetpu.log``; ``-s`` also prints the operator table on stdout.
- It needs static tensor shapes (a dynamic batch fails with "Attempting to use a delegate
  that only supports static-sized tensors") and a fully int8 model ("Model not quantized").
- It exits non-zero on failure; the reason is in its output (``compiler_log``).
- Neither PyPI nor conda ships it (x86-64 Debian package only): it is found on PATH.
Its whole output is kept next to the compiled model as ``edgetpu_compiler.out``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgeproof.errors import InputError, TargetUnavailable
from edgeproof.targets.litert.compiler_log import CompilerLog, parse_compiler_log

OUTPUT_FILE = "edgetpu_compiler.out"


class CompileError(InputError):
    """The Edge TPU compiler rejected the model or failed (one-line reason)."""


def compiler_path(compiler: str) -> str | None:
    """The compiler executable found on PATH (or the path given), else None."""
    return shutil.which(compiler)


def compile_for_edgetpu(
    model: Path, out_dir: Path, compiler: str, timeout: float
) -> tuple[Path, CompilerLog]:
    """(compiled model, parsed log); ``CompileError`` with the compiler's reason on failure."""
    exe = compiler_path(compiler)
    if exe is None:
        raise TargetUnavailable(f"Edge TPU compiler {compiler!r} not found on PATH")
    try:
        done = subprocess.run(
            [exe, "-s", "-o", str(out_dir), str(model)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CompileError(f"{compiler} did not finish within {timeout:g} s: {model}") from None
    output = done.stdout + (f"\n{done.stderr}" if done.stderr.strip() else "")
    (out_dir / OUTPUT_FILE).write_text(output, encoding="utf-8")
    log = parse_compiler_log(output)
    compiled = out_dir / f"{model.stem}_edgetpu.tflite"
    if done.returncode != 0 or not log.compiled or not compiled.is_file():
        reason = log.failure or "no compiled model written"
        raise CompileError(f"{compiler} failed (exit code {done.returncode}): {reason}")
    return compiled, log
