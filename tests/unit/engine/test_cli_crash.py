"""An unexpected exception (a bug, not bad input) exits 2 with one line and a traceback file,
so CI can tell a crash from a blocked gate (exit 1)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeproof.cli import app as cli


def test_a_crash_exits_2_naming_its_traceback_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:  # the one fault that cannot be caused for real: a bug
        raise KeyError("no such thing")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.setattr(sys, "argv", ["edgeproof", "run"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeproof: internal error: KeyError: ")
    path = Path(lines[0].rsplit("(traceback: ", 1)[1].rstrip(")"))
    text = path.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "no such thing" in text
    path.unlink()
