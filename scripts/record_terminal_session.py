"""Record what a person sees while ``edgeproof run`` works in a terminal, as text.

Runs ``edgeproof run ARGS`` in a detached tmux session (a real terminal, so the live table
shows), takes ``tmux capture-pane`` snapshots every ``--every`` seconds until the command
exits, and writes the distinct snapshots, each stamped with the seconds since the start,
to a markdown file, followed by the run's full report (its summary.md, what
``edgeproof report RUN`` prints), which the terminal itself no longer shows.

Usage (what docs/terminal-session.md was recorded with, in the example project after
``make example``)::

    .venv/bin/python scripts/record_terminal_session.py --out docs/terminal-session.md \\
        --every 4 -- --target onnxruntime-cpu --target openvino-cpu

Needs tmux. Exit code: the recorded command's.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

SESSION = "edgeproof-record"
WIDTH, HEIGHT = 100, 40


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def record(command: list[str], every: float) -> tuple[list[tuple[float, str]], int]:
    """Snapshots (seconds, screen text) of ``command`` in a tmux pane, and its exit code."""
    done = Path(f"/tmp/{SESSION}.rc")
    done.unlink(missing_ok=True)
    shell = f"{shlex.join(command)}; echo $? > {done}; sleep 30"
    _tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT), shell)
    shots: list[tuple[float, str]] = []
    start = time.monotonic()
    try:
        while True:
            screen = _tmux("capture-pane", "-p", "-t", SESSION).rstrip()
            if screen and (not shots or shots[-1][1] != screen):
                shots.append((time.monotonic() - start, screen))
            if done.exists():
                time.sleep(0.5)
                final = _tmux("capture-pane", "-p", "-S", "-200", "-t", SESSION).rstrip()
                shots.append((time.monotonic() - start, final))
                return shots, int(done.read_text().strip() or 1)
            time.sleep(every)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


def _full_report(final: str) -> list[str]:
    """The run's summary.md (named on the final screen), as ``edgeproof report RUN`` prints it."""
    found = re.search(r"Full report: (\S+/summary\.md)\s+print it: edgeproof report (\S+)", final)
    if found is None or not Path(found[1]).is_file():
        return []
    report = Path(found[1]).read_text(encoding="utf-8").rstrip()
    return [
        f"## The full report: `edgeproof report {found[2]}`",
        "",
        f"The run's `{found[1]}` (also in MLflow and the CI job summary), as markdown:",
        "",
        "````markdown",
        report,
        "````",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/terminal-session.md"))
    parser.add_argument("--every", type=float, default=5.0, help="Seconds between snapshots.")
    parser.add_argument("args", nargs="*", help="Arguments after `edgeproof run`.")
    args = parser.parse_args()
    edgeproof = str(Path(sys.executable).with_name("edgeproof"))
    command = [edgeproof, "run", *args.args]
    shots, code = record(command, args.every)
    shown = f"edgeproof run {shlex.join(args.args)}".strip()
    recorder = (
        f"python scripts/record_terminal_session.py --out {args.out} --every {args.every:g}"
        + (f" -- {shlex.join(args.args)}" if args.args else "")
    )
    lines = [
        "# A terminal session of `edgeproof run`",
        "",
        f"`{shown}` in the example project, in a {WIDTH}x{HEIGHT} tmux pane, captured with "
        f"`tmux capture-pane` every {args.every:g} s (exit code {code}), recorded with "
        f"`{recorder}`. Each block is the screen at that moment; the last one is the whole "
        "scrollback at the end: the live table's final state, then the verdict sized to the "
        "screen. What the runtimes and optimizers print goes to the run's `run.log`, not under "
        "the live table. The full report follows the session.",
        "",
    ]
    keep = shots[:-1][:: max(1, len(shots[:-1]) // 6)] + shots[-1:]  # a few moments + the end
    for seconds, screen in keep:
        lines += [f"**{seconds:.0f} s**", "", "```text", screen, "```", ""]
    lines += _full_report(shots[-1][1])
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out} ({len(keep)} snapshots, exit {code})")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
