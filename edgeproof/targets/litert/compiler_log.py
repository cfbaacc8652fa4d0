"""What ``edgetpu_compiler -s`` reported: op coverage, subgraphs, memory, or why it failed.

Facts this relies on (Edge TPU Compiler 14-16 output, as printed in the Coral docs and in
google-coral/edgetpu issues):
- A summary of ``Name: value`` lines: ``Edge TPU Compiler version 16.0.384591198``,
  ``Model compiled successfully in 352 ms.``, ``On-chip memory used for caching model
  parameters: 1.23MiB``, ``Off-chip memory used for streaming uncached model parameters:
  0.00B`` (units B, KiB, MiB, GiB), ``Number of Edge TPU subgraphs: 1``, ``Total number of
  operations: 64``; when some ops stay on the CPU also ``Number of operations that will run
  on Edge TPU: 63`` / ``... on CPU: 1``.
- With ``-s``, a table ``Operator  Count  Status``: one row per (op type, status), e.g.
  ``CONV_2D  5  Mapped to Edge TPU``. The same type may have several rows (``PAD 1 Mapped``,
  ``PAD 17 More than one subgraph is not supported``). Rows are NOT in graph order, and the
  table counts ops, it does not place them.
- Only one Edge TPU subgraph is compiled (without ``-a``): ops after the first one that
  cannot be mapped run on the CPU and are listed as "More than one subgraph is not
  supported" or "Operation is otherwise supported, but not mapped due to some unspecified
  limitation". Those are consequences; the cause is a row with another status
  ("Operation not supported", "Operation is working on an unsupported data type", ...).
- Failures: ``Invalid model: X`` + ``Model not quantized``, ``Internal compiler error.
  Aborting!``, ``Compilation failed: ...`` (v16, with ``ERROR:`` lines before it) and a
  final ``Compilation failed!``; v16 also prints ``Compilation succeeded!`` at the end.
So ``first_fallback`` is the first unmapped row, in the compiler's table order, whose status
is not one of those two consequences (else the first unmapped row): the table gives no
graph position, so "first" means the first such row the compiler printed.
Sizes are reported in MB of 10^6 bytes, like edgeproof's other sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAPPED = "Mapped to Edge TPU"
CONSEQUENCES = (
    "More than one subgraph is not supported",
    "Operation is otherwise supported, but not mapped due to some unspecified limitation",
)
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_SIZE = r"([\d.]+)\s*(B|KiB|MiB|GiB)"


@dataclass(frozen=True)
class OpRow:
    """One row of the compiler's operator table."""

    op: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        return self.status == MAPPED


@dataclass(frozen=True)
class CompilerLog:
    """The parsed output of one ``edgetpu_compiler -s`` run."""

    compiler_version: str | None
    compiled: bool
    failure: str | None  # why it did not compile (one line), None when it did
    rows: tuple[OpRow, ...]
    ops_total: int
    ops_accelerator: int
    subgraphs: int | None
    on_chip_bytes: int | None
    off_chip_bytes: int | None
    compile_ms: int | None

    @property
    def share(self) -> float | None:
        """Share of the model's ops mapped to the Edge TPU (None: no ops reported)."""
        return self.ops_accelerator / self.ops_total if self.ops_total else None

    @property
    def first_fallback(self) -> str | None:
        """``"<op> (<status>)"`` of the first op left on the CPU (see module docstring)."""
        unmapped = [r for r in self.rows if not r.mapped]
        causes = [r for r in unmapped if r.status not in CONSEQUENCES] or unmapped
        return f"{causes[0].op} ({causes[0].status})" if causes else None

    def to_record(self) -> dict[str, Any]:
        """The ``op_coverage`` entry of the compiled candidate's recipe."""
        return {
            "accelerator": "edgetpu",
            "ops_total": self.ops_total,
            "ops_accelerator": self.ops_accelerator,
            "share": None if self.share is None else round(self.share, 4),
            "first_fallback": self.first_fallback,
            "subgraphs": self.subgraphs,
            "on_chip_mb": _mb(self.on_chip_bytes),
            "off_chip_mb": _mb(self.off_chip_bytes),
            "compiler_version": self.compiler_version,
        }


def parse_compiler_log(text: str) -> CompilerLog:
    """Parse what ``edgetpu_compiler -s`` printed (stdout, or its ``.log`` file)."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    rows = _table(lines)
    total = _int(text, r"Total number of operations:\s*(\d+)")
    on_tpu = _int(text, r"Number of operations that will run on Edge TPU:\s*(\d+)")
    mapped = sum(r.count for r in rows if r.mapped)
    failure = _failure(lines)
    compiled = failure is None and bool(re.search(r"Model compiled successfully", text))
    if not compiled and failure is None:
        failure = "the compiler reported no successful compilation"
    if on_tpu is None and not rows and compiled:  # no table, no CPU ops listed: all mapped
        on_tpu = total
    return CompilerLog(
        compiler_version=_str(text, r"Edge TPU Compiler version\s+(\S+)"),
        compiled=compiled,
        failure=failure,
        rows=rows,
        ops_total=total if total is not None else sum(r.count for r in rows),
        ops_accelerator=on_tpu if on_tpu is not None else mapped,
        subgraphs=_int(text, r"Number of Edge TPU subgraphs:\s*(\d+)"),
        on_chip_bytes=_size(text, rf"On-chip memory used for caching model parameters:\s*{_SIZE}"),
        off_chip_bytes=_size(
            text, rf"Off-chip memory used for streaming uncached model parameters:\s*{_SIZE}"
        ),
        compile_ms=_int(text, r"Model compiled successfully in\s*(\d+)\s*ms"),
    )


def _table(lines: list[str]) -> tuple[OpRow, ...]:
    """Rows of the last operator table (a ``-d`` search prints one per attempt)."""
    rows: list[OpRow] = []
    inside = False
    for line in lines:
        if re.match(r"^Operator\s+Count\s+Status\s*$", line):
            rows, inside = [], True
            continue
        if not inside:
            continue
        match = _ROW.match(line.strip())
        if match:
            rows.append(OpRow(match.group(1), int(match.group(2)), match.group(3)))
        elif line.strip() or rows:  # blank lines right after the header are part of it
            inside = False
    return tuple(rows)


def _failure(lines: list[str]) -> str | None:
    """The most specific failure line, or None when the compiler did not report one."""
    text = "\n".join(lines)
    if "Compilation failed!" not in text and not re.search(
        r"Invalid model|Internal compiler error|Compilation failed:", text
    ):
        return None
    for pattern in (r"^Compilation failed: .+", r"^Internal compiler error.*"):
        found = [ln.strip() for ln in lines if re.match(pattern, ln.strip())]
        if found:
            errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR:")]
            cause = f" ({errors[0]})" if errors and pattern.startswith("^Compilation") else ""
            return found[-1] + cause
    for i, line in enumerate(lines):
        if line.strip().startswith("Invalid model"):
            detail = next((ln.strip() for ln in lines[i + 1 :] if ln.strip()), "")
            return f"{line.strip()}: {detail}" if detail else line.strip()
    errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR:")]
    return errors[-1] if errors else "Compilation failed!"


def _str(text: str, pattern: str) -> str | None:
    found = re.findall(pattern, text)
    return found[-1] if found else None


def _int(text: str, pattern: str) -> int | None:
    found = _str(text, pattern)
    return None if found is None else int(found)


def _size(text: str, pattern: str) -> int | None:
    found = re.findall(pattern, text)
    if not found:
        return None
    value, unit = found[-1]
    return round(float(value) * _UNITS[unit])


def _mb(size: int | None) -> float | None:
    return None if size is None else round(size / 1e6, 4)
