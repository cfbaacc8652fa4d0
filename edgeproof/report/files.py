"""Write a run's report folder atomically: all files appear together or none do."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from edgeproof.records import RunResult
from edgeproof.report.junit import junit_xml
from edgeproof.report.markdown import render_summary


def write_report(
    result: RunResult, reports_dir: Path, extra_files: list[Path] | None = None
) -> Path:
    """``reports_dir/<run>/`` with summary.md, verdict.json, junit.xml and ``extra_files``."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    final = reports_dir / result.run.run_name
    staging = Path(tempfile.mkdtemp(prefix=f".{result.run.run_name}.", dir=reports_dir))
    try:
        (staging / "summary.md").write_text(render_summary(result), encoding="utf-8")
        (staging / "verdict.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
        (staging / "junit.xml").write_text(junit_xml(result), encoding="utf-8")
        for extra in extra_files or []:
            shutil.copy(extra, staging / extra.name)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def prefect_markdown(summary: str) -> str:
    """The summary for a Prefect artifact, which cannot show the report's local images."""
    return re.sub(r"\n!\[[^\]]*\]\([^)]*\)\n", "\n", summary)


def artifact_key(model: str) -> str:
    """The Prefect artifact key of a model's summary (lower-case letters, digits, dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"edgeproof-{model}".lower())
