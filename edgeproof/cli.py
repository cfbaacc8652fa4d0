"""The ``edgeproof`` command: run the gate, show a report, build the bundled example.

Exit codes: 0 every enabled target has a passing winner, 1 a gate blocked, 2 an error.
Errors print one line naming the problem (a traceback only with ``--debug``); bad input is
caught before anything is written or any registry alias can move.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeproof.errors import EdgeproofError
from edgeproof.runtime_env import apply_quiet_defaults

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
example_app = typer.Typer(no_args_is_help=True, help="Build the bundled example (DVC stages).")
app.add_typer(example_app, name="example")
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to use.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def _fail(exc: BaseException, debug: bool) -> typer.Exit:
    if debug:
        err.print_exception()
    err.print(f"edgeproof: error: {exc}", markup=False)
    return typer.Exit(2)


@app.command()
def run(
    params: ParamsOption = Path("params.yaml"),
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Gate only this target (repeatable).")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where reports/<run>/ goes.")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Optimize, measure and gate the model on every enabled target."""
    apply_quiet_defaults()
    from edgeproof.records import RunResult
    from edgeproof.resolve import resolve_inputs

    try:
        resolve_inputs(params, target)  # fail fast, before Prefect or MLflow start
        from flows.quality_gate import quality_gate

        raw = quality_gate(
            params_file=str(params),
            targets=target,
            report_dir=str(report_dir) if report_dir else None,
            trigger=_trigger(),
        )
    except EdgeproofError as exc:
        raise _fail(exc, debug) from None
    result = RunResult.model_validate(raw)
    _print_result(result, report_dir or params.resolve().parent / "reports")
    raise typer.Exit(result.exit_code)


def _trigger() -> str:
    import os

    return "github-actions" if os.environ.get("GITHUB_ACTIONS") == "true" else "cli"


def _print_result(result: object, report_root: Path) -> None:
    from edgeproof.records import RunResult
    from edgeproof.report.markdown import render_summary

    assert isinstance(result, RunResult)
    out.print(render_summary(result), markup=False)
    out.print(f"Report: {report_root / result.run.run_name}", markup=False)
    uri = result.run.tracking_uri
    if uri.startswith("sqlite"):
        out.print(
            f"MLflow UI: mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)",
            markup=False,
        )
    else:
        out.print(f"MLflow: {uri}", markup=False)


@app.command()
def report(
    run_name: Annotated[str, typer.Argument(help="Run name (report folder) or MLflow run id.")],
    report_dir: Annotated[Path, typer.Option("--report-dir")] = Path("reports"),
    params: ParamsOption = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print verdict.json.")] = False,
    debug: DebugOption = False,
) -> None:
    """Print the summary of a finished run (from its report folder or from MLflow)."""
    apply_quiet_defaults()
    name = "verdict.json" if as_json else "summary.md"
    try:
        text = _read_report(run_name, name, report_dir, params)
    except EdgeproofError as exc:
        raise _fail(exc, debug) from None
    sys.stdout.write(text)


def _read_report(run_name: str, name: str, report_dir: Path, params: Path) -> str:
    local = report_dir / run_name / name
    if local.is_file():
        return local.read_text(encoding="utf-8")
    from edgeproof.config import load_params
    from edgeproof.tracking.mlflow_store import MlflowStore

    store = MlflowStore(load_params(params).tracking)
    try:
        return Path(store.client.download_artifacts(run_name, name)).read_text(encoding="utf-8")
    except Exception:  # no such run or artifact
        raise EdgeproofError(
            f"no report {name} for run {run_name!r} in {report_dir} or in MLflow ({store.uri})"
        ) from None


@app.command()
def trust(
    params: ParamsOption = Path("params.yaml"),
    reps: Annotated[int, typer.Option("--reps", help="Repetitions per variant.")] = 100,
    min_speedup: Annotated[float, typer.Option("--min-speedup")] = 0.95,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("benchmarks/results"),
    debug: DebugOption = False,
) -> None:
    """Measure the speed gate's error rates here (A/A and injected 5/10/20% slowdowns)."""
    import tempfile

    from edgeproof.measure.environment import machine_state
    from edgeproof.resolve import resolve_inputs
    from edgeproof.targets.registry import make_target
    from edgeproof.trust import run_trust, trust_markdown

    apply_quiet_defaults()
    try:
        inputs = resolve_inputs(params, ["onnxruntime-cpu"])
        section = inputs.targets["onnxruntime-cpu"]
        with tempfile.TemporaryDirectory(prefix="edgeproof-trust-") as tmp:
            work = Path(tmp)
            baseline = make_target("onnxruntime-cpu", section).baseline(inputs.model, work)
            result = run_trust(
                baseline,
                inputs.eval_data,
                section.model_dump(mode="json"),
                section.threads,
                inputs.params.measure,
                work,
                {"default": reps},
                min_speedup,
                log=lambda msg: err.print(msg, markup=False),
            )
    except EdgeproofError as exc:
        raise _fail(exc, debug) from None
    machine = machine_state()
    result["machine"] = machine
    result["measure"] = inputs.params.measure.model_dump(mode="json")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "trust.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown = trust_markdown(result, machine)
    (out_dir / "trust.md").write_text(markdown, encoding="utf-8")
    sys.stdout.write(markdown)


@example_app.command("prepare")
def example_prepare(
    params: ParamsOption = Path("params.yaml"),
    out_dir: Annotated[Path, typer.Option("--out")] = Path("data/splits"),
    debug: DebugOption = False,
) -> None:
    """Write train / calibration / eval splits of sklearn digits (DVC stage ``prepare``)."""
    from edgeproof.config import load_params
    from edgeproof.example.data import prepare_splits

    try:
        paths = prepare_splits(load_params(params).example, out_dir)
    except EdgeproofError as exc:
        raise _fail(exc, debug) from None
    out.print(json.dumps({k: str(v) for k, v in paths.items()}), markup=False)


@example_app.command("train")
def example_train(
    params: ParamsOption = Path("params.yaml"),
    splits: Annotated[Path, typer.Option("--splits")] = Path("data/splits"),
    model: Annotated[Path, typer.Option("--model")] = Path("models/digits-cnn.onnx"),
    metrics: Annotated[Path, typer.Option("--metrics")] = Path("metrics/train.json"),
    debug: DebugOption = False,
) -> None:
    """Train the example CNN and export it to ONNX (DVC stage ``train``)."""
    from edgeproof.config import load_params
    from edgeproof.example.train import train_and_export

    try:
        model.parent.mkdir(parents=True, exist_ok=True)
        metrics.parent.mkdir(parents=True, exist_ok=True)
        result = train_and_export(load_params(params).example, splits, model, metrics)
    except EdgeproofError as exc:
        raise _fail(exc, debug) from None
    out.print(json.dumps(result), markup=False)


def main() -> None:
    app()
