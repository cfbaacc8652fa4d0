"""Waiting for a test server's health endpoint, failing fast if its process dies."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable


def wait_healthy(
    url: str, running: Callable[[], bool], last_words: Callable[[], str], what: str, timeout: float
) -> None:
    """Poll ``url`` until it answers 200; raise RuntimeError if the process stops
    (with ``last_words()``, e.g. its log tail) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running():
            raise RuntimeError(f"{what} exited:\n{last_words()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")
