"""What ``edgeproof run`` shows while it works: a live table on a terminal, plain lines in a log.

The flows already say what they do in their Prefect run logs ("onnxruntime-cpu: optimizing
static-qdq", "onnxruntime-cpu: measuring static-qdq against fp32", "onnxruntime-cpu:
finished: pass, winner static-qdq"). :class:`RunProgress` follows those lines into one row
per target (phase, what it works on, how many candidates are left, elapsed time);
:func:`follow_run` attaches it to the Prefect run loggers for the length of a run. On a
terminal the rows are a rich ``Live`` table and Prefect's own console lines are held back
to warnings; elsewhere (CI logs, a pipe) each step is one plain line on stderr.

Nothing else writes under the live table: given a ``console_log`` file, file descriptors 1
and 2 point at it while the table shows (what runtimes, optimizers, Prefect and native
code print, and the subprocesses that inherit them), and the table writes to a duplicate
of the terminal's descriptor; both are restored on the way out, an exception included.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_MESSAGE = re.compile(r"^(?P<target>[\w.-]+): (?P<text>.+)$", re.DOTALL)
_VS_CHAMPION = re.compile(r"^measuring (\S+) against champion (\S+)")
_MEASURING = re.compile(r"^measuring (\S+) against (\S+)")
_HEAD_TO_HEAD = re.compile(r"^timing (\S+) against (\S+) head to head")
_RETRY = re.compile(r"Retry \d+/\d+ will start")


@dataclass
class TargetRow:
    """One target's progress, as its run-log lines tell it."""

    name: str
    candidates: int | None  # recipes to build and measure; None when unknown
    phase: str = "waiting"
    detail: str = ""
    optimized: int = 0
    measured: int = 0
    started: float | None = None
    ended: float | None = None

    def left(self) -> str:
        """What is left of the current phase, e.g. '3 of 5 to measure'."""
        if self.candidates is None or self.phase not in ("optimize", "measure"):
            return ""
        done = self.optimized if self.phase == "optimize" else self.measured
        verb = "to build" if self.phase == "optimize" else "to measure"
        return f"{max(self.candidates - done, 0)} of {self.candidates} {verb}"

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started


@dataclass
class RunProgress:
    """The run's progress: the stage of the whole run and one row per target."""

    rows: dict[str, TargetRow]
    started: float = field(default_factory=time.monotonic)
    stage: str = "starting"
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def for_targets(cls, candidates: dict[str, int | None]) -> RunProgress:
        """``candidates``: target name -> number of recipes (None when not known)."""
        return cls(rows={name: TargetRow(name, count) for name, count in candidates.items()})

    def update(self, message: str, now: float | None = None, task: str | None = None) -> str | None:
        """Take one run-log line (``task``: the Prefect task run that logged it); the plain
        progress line it makes, None when it is noise. A retried task is a warning."""
        now = time.monotonic() if now is None else now
        if _RETRY.search(message):
            line = f"Task run '{task or '?'}' - {message}"
            self.warnings.append(line)
            return line
        match = _MESSAGE.match(message)
        if match and match["target"] in self.rows:
            row, text = self.rows[match["target"]], match["text"].strip()
            self._update_row(row, text, now)
            return f"{row.name}: {text}"
        stage = _stage_of(message)
        if stage is None:
            return None
        self.stage = stage
        return stage

    def _update_row(self, row: TargetRow, text: str, now: float) -> None:
        if row.started is None:
            row.started = now
        if text.startswith("warning:"):
            self.warnings.append(f"{row.name}: {text}")
            return
        if text == "building baseline":
            row.phase, row.detail = "optimize", "baseline"
        elif text.startswith("optimizing "):
            row.phase, row.detail = "optimize", text.removeprefix("optimizing ")
            row.optimized += 1
        elif text.startswith("loading baseline"):
            row.phase, row.detail = "measure", "baseline"
        elif match := _VS_CHAMPION.match(text):
            row.phase, row.detail = "vs champion", f"{match[1]} vs {match[2]}"
        elif match := _HEAD_TO_HEAD.match(text):
            row.phase, row.detail = "head to head", f"{match[1]} vs {match[2]}"
        elif text.startswith("measuring again"):
            row.phase, row.detail = "re-measure", text.split(":", 1)[-1].strip()
        elif match := _MEASURING.match(text):
            if row.phase != "re-measure":
                row.phase = "measure"
                row.measured += 1
            row.detail = match[1]
        elif text.startswith("finished:"):
            row.phase, row.detail, row.ended = "done", text.removeprefix("finished:").strip(), now
        else:
            row.detail = text

    def __rich__(self) -> Group:
        """What ``Live`` shows at each refresh: the table as of now (the clocks tick)."""
        return self.table()

    def table(self, now: float | None = None) -> Group:
        """The live view: a header line and the targets' table."""
        now = time.monotonic() if now is None else now
        grid = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("target", "phase", "working on", "left", "elapsed"):
            grid.add_column(column, no_wrap=column != "working on", overflow="ellipsis")
        for row in self.rows.values():
            took = row.elapsed(now)
            grid.add_row(
                row.name,
                row.phase,
                row.detail,
                row.left(),
                "" if took is None else _clock(took),
            )
        header = Text(f"edgeproof run · {_clock(now - self.started)} · {self.stage}", "bold")
        return Group(header, grid)


# run-log line prefix -> the run's stage (None: the line itself, it names the target)
_STAGES: tuple[tuple[str, str | None], ...] = (
    ("validating data", "data gate"),
    ("data gate: ", None),
    ("gating target", None),
    ("dispatching target", None),
    ("promoting", "promoting winners"),
    ("report written", "report written"),
)


def _stage_of(message: str) -> str | None:
    for prefix, stage in _STAGES:
        if message.startswith(prefix):
            return stage or message
    return None


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{seconds:.0f}s"


class _RunLogHandler(logging.Handler):
    """Feeds the Prefect run-log lines of this process to a callback."""

    def __init__(self, callback: Callable[[str, str | None], None]) -> None:
        super().__init__(level=logging.INFO)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._callback(record.getMessage(), getattr(record, "task_run_name", None))
        except Exception:  # a display problem must never end the run
            self.handleError(record)


@contextmanager
def follow_run(
    console: Console,
    candidates: dict[str, int | None],
    prefect_lines: bool = False,
    console_log: Path | None = None,
) -> Iterator[RunProgress]:
    """Show the run's progress on ``console`` while the block runs (see the module doc).

    ``prefect_lines``: keep Prefect's own console lines (``--debug``); else they are held
    back to warnings, and the progress lines say what happens. ``console_log``: on a
    terminal, the file that takes everything else written to stdout and stderr meanwhile."""
    progress = RunProgress.for_targets(candidates)
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    quiet = _keep_console_handlers if prefect_lines else _quiet_console_handlers
    if not console.is_terminal:

        def say(message: str, task: str | None) -> None:
            line = progress.update(message, task=task)
            if line is not None:
                took = time.monotonic() - progress.started
                console.print(f"[{took:7.1f}s] {line}", markup=False, highlight=False)

        with quiet(), _attached(loggers, _RunLogHandler(say)):
            yield progress
        return
    with quiet(), _output_to(console_log, console) as screen:
        redirect = screen is not console  # Python's own prints go to the log too
        with Live(
            progress,
            console=screen,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=not redirect,
            redirect_stderr=not redirect,
        ) as live:

            def show(message: str, task: str | None) -> None:
                before = len(progress.warnings)
                progress.update(message, task=task)
                for warning in progress.warnings[before:]:
                    live.console.print(warning, markup=False, style="yellow")
                live.refresh()

            with _attached(loggers, _RunLogHandler(show)):
                yield progress
            live.refresh()


@contextmanager
def _output_to(log: Path | None, console: Console) -> Iterator[Console]:
    """File descriptors 1 and 2 to ``log`` for the block; the console to show the live
    table on (one writing to a duplicate of ``console``'s terminal). No ``log``, or a
    console without a file descriptor (a test's buffer): ``console`` itself, nothing moved."""
    try:
        terminal_fd = console.file.fileno() if log is not None else None
    except (AttributeError, OSError, ValueError):
        terminal_fd = None
    if log is None or terminal_fd is None:
        yield console
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    width, height = console.size
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = os.fdopen(os.dup(terminal_fd), "w", encoding="utf-8", errors="replace")
    screen = Console(
        file=terminal,
        force_terminal=True,
        width=width,
        height=height,
        highlight=False,
        color_system=console.color_system,  # type: ignore[arg-type]
    )
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(log_fd, fd)
        yield screen
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(log_fd)
        terminal.close()


@contextmanager
def _attached(loggers: list[logging.Logger], handler: logging.Handler) -> Iterator[None]:
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@contextmanager
def _keep_console_handlers() -> Iterator[None]:
    yield


@contextmanager
def _quiet_console_handlers() -> Iterator[None]:
    """Hold Prefect's console lines back to warnings while the progress lines say what
    happens (its console handler sits on the root logger; found by name, as only flows may
    import Prefect)."""
    handlers = [
        handler
        for name in ("", "prefect", *RUN_LOGGERS)
        for handler in logging.getLogger(name).handlers
        if type(handler).__name__ == "PrefectConsoleHandler"
    ]
    levels = [handler.level for handler in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)
