"""The installed ``edgeproof`` command: ``edgeproof.cli.app.main``, ended without the teardown.

Once the command is done and the exit handlers have run (Prefect's log and event flush,
temporary folders, logging), the process ends with ``os._exit``: the interpreter's own
teardown of everything a run loads (Prefect, MLflow, the runtimes) takes ~0.8 s and leaves
nothing behind that those handlers did not. The handler that does it is registered before
anything else is imported, so it runs last. In-process callers (tests) use
``edgeproof.cli.app.main``, which ends normally.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys


def main() -> None:
    """Run the command; its exit status is kept for the last exit handler."""
    status: list[int] = []
    atexit.register(_end_now, status)  # first registered, last run
    from edgeproof.cli.app import main as command

    try:
        command()
    except SystemExit as done:
        status.append(exit_status(done.code))
        raise


def exit_status(code: object) -> int:
    """The process exit status Python gives a ``SystemExit`` code (a message means 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _end_now(status: list[int]) -> None:
    """After every other exit handler: flush what is written and end the process."""
    if not status:  # an exception escaped the command: Python reports it as usual
        return
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to write to
            stream.flush()
    os._exit(status[0])
