"""The quality-gate workflow's markdown: the run report (job summary and PR comment) and the
DVC metrics diff against the pull request's base branch.

Standard library only: the publish job runs it with the runner's own python3, before (and
without) installing edgeproof.

    gate_report.py report --artifacts DIR [--images-base URL] [--run-url URL]
                          [--gate-result RESULT]
    gate_report.py metrics-diff --target TARGET --base LABEL DIFF_JSON

``report`` joins every downloaded ``edgeproof-<target>`` artifact (exit code, each run's
summary.md, metrics-diff.md) into one markdown document. The summaries link their plots by
file name, which GitHub cannot show in a job summary or a comment, so every relative image
link becomes ``<images-base>/<path of the PNG under DIR>`` when the PNG exists (the publish
job pushes the PNGs there), and otherwise a text link to the workflow run's artifacts.

``metrics-diff`` renders ``dvc metrics diff --json`` of one gate job: the gate metrics of that
job's target (``targets.<target>.*`` of a ``gate.json``; the other targets and the run-level
fields were not measured by this job) and every metric of the other files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

ARTIFACT_PREFIX = "edgeproof-"
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _image_links(text: str, folder: Path, artifacts: Path, images_base: str, run_url: str) -> str:
    """``text`` with each relative image link made absolute (or a text link)."""

    def repl(m: re.Match[str]) -> str:
        src, alt = m.group("src"), m.group("alt")
        if ABSOLUTE.match(src) or src.startswith("/"):
            return m.group(0)
        png = (folder / src).resolve()
        inside = artifacts.resolve() in png.parents
        if images_base and inside and png.is_file():
            rel = png.relative_to(artifacts.resolve()).as_posix()
            return f"![{alt}]({images_base.rstrip('/')}/{quote(rel)})"
        where = f"[workflow run artifacts]({run_url}#artifacts)" if run_url else "the artifacts"
        return f"_{alt or src}: `{Path(src).name}` in the {where}_"

    return IMAGE.sub(repl, text)


def report(artifacts: Path, images_base: str, run_url: str, gate_result: str) -> str:
    lines = [f"## edgeproof quality gate: {gate_result}", ""]
    if run_url:
        lines += [f"[Workflow run and reports]({run_url})", ""]
    folders = (
        sorted(d for d in artifacts.glob(f"{ARTIFACT_PREFIX}*") if d.is_dir())
        if artifacts.is_dir()
        else []
    )
    for folder in folders:
        target = folder.name.removeprefix(ARTIFACT_PREFIX)
        code = folder / "exit-code"
        rc = code.read_text(encoding="utf-8").strip() if code.is_file() else "none"
        lines += [f"<details open><summary><b>{target}</b>: exit code {rc}</summary>", ""]
        summaries = sorted(folder.glob("*/summary.md"))
        for summary in summaries:
            text = summary.read_text(encoding="utf-8")
            lines.append(_image_links(text, summary.parent, artifacts, images_base, run_url))
        if not summaries:
            lines.append("_no summary.md produced_")
        diff = folder / "metrics-diff.md"
        if diff.is_file():
            lines += ["", diff.read_text(encoding="utf-8").rstrip()]
        lines += ["", "</details>", ""]
    if not folders:
        lines.append("_No gate reports: the gate jobs failed before producing any._")
    return "\n".join(lines).rstrip() + "\n"


def _value(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def metrics_diff(diff: dict, target: str, base: str) -> str:
    """Markdown table of one gate job's ``dvc metrics diff --json``."""
    files = diff.get("diff", diff) if isinstance(diff, dict) else {}
    rows = []
    for path in sorted(files):
        metrics = files[path] or {}
        gate = Path(path).name == "gate.json"
        for key in sorted(metrics):
            if gate and not key.startswith(f"targets.{target}."):
                continue
            entry = metrics[key] or {}
            old, new = entry.get("old"), entry.get("new")
            change = entry.get("diff")
            if change is None and old != new:
                change = "changed"
            rows.append(
                f"| `{path}` | `{key}` | {_value(old)} | {_value(new)} | {_value(change)} |"
            )
    head = f"DVC metrics of this run that differ from `{base}` (`dvc metrics diff`):"
    if not rows:
        return f"{head} none.\n"
    return (
        "\n".join(
            [
                head,
                "",
                f"| file | metric | `{base}` | this run | change |",
                "|---|---|---|---|---|",
                *rows,
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="the run report from the downloaded artifacts")
    rep.add_argument("--artifacts", type=Path, required=True)
    rep.add_argument("--images-base", default="")
    rep.add_argument("--run-url", default="")
    rep.add_argument("--gate-result", default="unknown")
    md = sub.add_parser("metrics-diff", help="one gate job's `dvc metrics diff --json`")
    md.add_argument("--target", required=True)
    md.add_argument("--base", required=True)
    md.add_argument("diff_json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        text = report(args.artifacts, args.images_base, args.run_url, args.gate_result)
    else:
        raw = args.diff_json.read_text(encoding="utf-8").strip()
        text = metrics_diff(json.loads(raw) if raw else {}, args.target, args.base)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
