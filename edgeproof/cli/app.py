"""The ``edgeproof`` command: run the gate, show a report, build the bundled example.

Exit codes: 0 every enabled target has a passing winner, 1 a gate blocked, 2 an error.
Errors print one line naming the problem (a traceback only with ``--debug``); bad input is
caught before anything is written or any registry alias can move.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from edgeproof.cli import device as cli_device
from edgeproof.errors import EdgeproofError, InputError
from edgeproof.runtime.env import (
    apply_quiet_defaults,
    hide_expected_tracebacks,
    quiet_third_party_progress,
)

if TYPE_CHECKING:
    from edgeproof.config import Params
    from edgeproof.records import RunResult
    from edgeproof.tracking.mlflow_store import MlflowStore

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)
example_app = typer.Typer(no_args_is_help=True, help="Build the bundled example (DVC stages).")
app.add_typer(example_app, name="example")
registry_app = typer.Typer(no_args_is_help=True, help="The MLflow registry names of a project.")
app.add_typer(registry_app, name="registry")
cli_device.register(app)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to use.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


@app.callback()
def _defaults() -> None:
    # before every command: telemetry off, quiet libraries (edge teams run air-gapped)
    apply_quiet_defaults()


def _fail(exc: BaseException, debug: bool) -> typer.Exit:
    if debug:
        err.print_exception()
    err.print(f"edgeproof: error: {exc}", markup=False)
    return typer.Exit(2)


@contextmanager
def one_line_errors(debug: bool, *more: type[Exception]) -> Iterator[None]:
    """An EdgeproofError (or one of ``more``) becomes one line on stderr and exit 2."""
    try:
        yield
    except (EdgeproofError, *more) as exc:
        raise _fail(exc, debug) from None


@app.command()
def run(
    params: ParamsOption = Path("params.yaml"),
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Gate only this target (repeatable).")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where reports/<run>/ goes.")
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write JUnit XML here (always in the report folder)."),
    ] = None,
    metrics: Annotated[
        Path | None,
        typer.Option("--metrics", help="Also write the run's key figures here (DVC metrics)."),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Also write each candidate's figures here (DVC plots)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print verdict.json on stdout (the summary: stderr).")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Optimize, measure and gate the model on every enabled target.

    Exit 0 pass, 1 a gate blocked, 2 an error (bad input, a failed target, a crash)."""
    from edgeproof.pipeline.resolve import require_available, resolve_inputs
    from edgeproof.records import RunResult

    if not debug:
        hide_expected_tracebacks()
        quiet_third_party_progress()  # the progress lines say what happens
    with one_line_errors(debug), stdout_to_stderr(as_json):
        if junit is not None and not junit.parent.is_dir():
            raise InputError(f"--junit: folder does not exist: {junit.parent}")
        inputs = resolve_inputs(params, target)  # fail fast, before Prefect or MLflow start
        require_available(inputs.targets)  # embedded: the targets run in this process
        from edgeproof.flows.quality_gate import quality_gate
        from edgeproof.report.live import follow_run

        recipes = {name: _recipe_count(section) for name, section in inputs.targets.items()}
        # under the live view only (--debug: everything on screen)
        console_log = _console_log() if err.is_terminal and not debug else None
        with (
            _naming_console_log(console_log),
            follow_run(err, recipes, prefect_lines=debug, console_log=console_log),
        ):
            raw = quality_gate(
                params_file=str(params),
                targets=target,
                report_dir=str(report_dir) if report_dir else None,
                trigger=_trigger(),
                dispatch="local",  # `edgeproof run` measures here; deployments dispatch
            )
    result = RunResult.model_validate(raw)
    if junit is not None:
        from edgeproof.report.junit import write_junit

        write_junit(result, junit)
    if metrics is not None:
        from edgeproof.report.gate_metrics import write_gate_metrics

        write_gate_metrics(result, metrics)
    if plots is not None:
        from edgeproof.report.dvc_plots import write_dvc_plots

        write_dvc_plots(result, plots)
    report_root = report_dir or inputs.root / inputs.params.report.dir
    run_log = _keep_console_log(console_log, report_root / result.run.run_name)
    _print_result(result, report_root, as_json, run_log)
    if result.status == "error":  # e.g. the data gate: the report is written, this names why
        err.print(f"edgeproof: error: {_run_error(result)}", markup=False)
    raise typer.Exit(result.exit_code)


@contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """While ``enabled``, whatever is written to stdout (file descriptor 1: a library's
    progress bars, a subprocess) goes to stderr, so ``--json`` leaves stdout to the JSON."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _console_log() -> Path:
    """A fresh file for what runtimes, optimizers and Prefect print while the live view
    shows (moved to the report folder as run.log when the run ends)."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="edgeproof-run-", suffix=".log")
    os.close(fd)
    return Path(path)


@contextmanager
def _naming_console_log(log: Path | None) -> Iterator[None]:
    """A run that ends in an exception names the file that holds its console output."""
    try:
        yield
    except BaseException:
        if log is not None and log.is_file() and log.stat().st_size:
            err.print(f"edgeproof: the run's console output: {log}", markup=False)
        elif log is not None:
            log.unlink(missing_ok=True)
        raise


def _keep_console_log(log: Path | None, report_folder: Path) -> Path | None:
    """The run's console output as report_folder/run.log (None: there was none)."""
    if log is None or not log.is_file():
        return None
    if not log.stat().st_size:
        log.unlink()
        return None
    if not report_folder.is_dir():
        return log
    import shutil

    kept = report_folder / "run.log"
    shutil.move(log, kept)
    return kept


def _recipe_count(section: object) -> int | None:
    """How many candidates a target's section asks for (None: it names no recipes)."""
    recipes = getattr(section, "recipes", None)
    return None if recipes is None else len(recipes)


def _run_error(result: RunResult) -> str:
    """One line naming why a finished run has status ``error``."""
    if result.error:
        return result.error
    for outcome in result.targets:
        if outcome.status in ("error", "unavailable"):
            return f"target {outcome.target}: {outcome.status}: {outcome.reason or 'no reason'}"
    return "the run failed (see the report)"


def _trigger() -> str:
    return "github-actions" if os.environ.get("GITHUB_ACTIONS") == "true" else "cli"


def _print_result(
    result: object, report_root: Path, as_json: bool = False, run_log: Path | None = None
) -> None:
    """On a terminal the verdict sized to the screen (``report.terminal``); elsewhere (a CI
    log) the whole markdown summary; then where to look next. With ``as_json`` the verdict
    JSON alone goes to stdout and the rest to stderr."""
    from edgeproof.records import RunResult

    assert isinstance(result, RunResult)
    human = err if as_json else out
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    folder = _shown(report_root / result.run.run_name)
    if run_log is not None:
        run_log = _shown(run_log)
    if human.is_terminal:
        from edgeproof.report.terminal import terminal_summary

        log = None if run_log is None else str(run_log)
        for part in terminal_summary(result, str(folder), human.width, log):
            human.print(part, markup=False, soft_wrap=False)
        return
    from edgeproof.report.markdown import render_summary

    human.print(render_summary(result), markup=False)
    human.print(f"Report: {folder}", markup=False)
    uri = result.run.tracking_uri
    if uri.startswith("sqlite"):
        human.print(
            f"MLflow UI: mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)",
            markup=False,
        )
    else:
        human.print(f"MLflow: {uri}", markup=False)
    if run_log is not None:
        human.print(f"Console log (runtimes, optimizers, Prefect): {run_log}", markup=False)


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it lies inside it (shorter to read)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


@app.command()
def report(
    run_name: Annotated[str, typer.Argument(help="Run name (report folder) or MLflow run id.")],
    report_dir: Annotated[Path, typer.Option("--report-dir")] = Path("reports"),
    params: ParamsOption = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print verdict.json.")] = False,
    debug: DebugOption = False,
) -> None:
    """Print the summary of a finished run (from its report folder or from MLflow)."""
    name = "verdict.json" if as_json else "summary.md"
    with one_line_errors(debug):
        text = _read_report(run_name, name, report_dir, params)
    sys.stdout.write(text)


def _read_report(run_name: str, name: str, report_dir: Path, params: Path) -> str:
    local = report_dir / run_name / name
    if local.is_file():
        return local.read_text(encoding="utf-8")
    from edgeproof.params.model import load_params
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
    from edgeproof.pipeline.trust import trust_project, write_trust

    with one_line_errors(debug):
        result = trust_project(params, reps, min_speedup, log=lambda m: err.print(m, markup=False))
    sys.stdout.write(write_trust(result, out_dir))


TargetOption = Annotated[str, typer.Option("--target", help="Target name, e.g. onnxruntime-cpu.")]
ModelArgument = Annotated[
    str | None, typer.Argument(help="Model name (default: model.name in params.yaml).")
]


def _registered(params: Path, model: str | None, target: str) -> tuple[Params, MlflowStore, str]:
    """(params, MLflow store, registered model name) of ``model`` on ``target``."""
    from edgeproof.params.model import load_params
    from edgeproof.tracking.mlflow_store import MlflowStore

    loaded = load_params(params)
    name = loaded.registry.registered_name(model or loaded.model.name, target)
    return loaded, MlflowStore(loaded.tracking), name


@app.command()
def matrix(
    model: ModelArgument = None,
    params: ParamsOption = Path("params.yaml"),
    png: Annotated[
        Path | None,
        typer.Option("--png", help="Heat map file (default: reports/matrix-MODEL.png)."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Which target/recipe wins on each device, from MLflow history (markdown + heat map)."""
    from edgeproof.params.model import load_params
    from edgeproof.report.matrix import matrix_heatmap, matrix_markdown
    from edgeproof.tracking.matrix_runs import collect_matrix
    from edgeproof.tracking.mlflow_store import MlflowStore

    with one_line_errors(debug):
        if png is not None and not png.parent.is_dir():
            raise InputError(f"--png: folder does not exist: {png.parent}")
        loaded = load_params(params)
        name = model or loaded.model.name
        found = collect_matrix(MlflowStore(loaded.tracking).client, name)
    sys.stdout.write(matrix_markdown(found))
    if png is None and found.devices:
        png = params.resolve().parent / loaded.report.dir / f"matrix-{name}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
    drawn = matrix_heatmap(found, png) if png else None
    if drawn is not None:
        out.print(f"Heat map: {drawn}", markup=False)


@app.command()
def history(
    model: ModelArgument = None,
    target: TargetOption = "onnxruntime-cpu",
    params: ParamsOption = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    debug: DebugOption = False,
) -> None:
    """Every alias change of a registered model (promote, rollback, refused, unrecorded)."""
    from edgeproof.tracking.audit import read_history

    with one_line_errors(debug):
        _, store, name = _registered(params, model, target)
        events = read_history(store, name)
    if as_json:
        sys.stdout.write("".join(e.model_dump_json() + "\n" for e in events))
        return
    if not events:
        out.print(f"{name}: no alias history recorded", markup=False)
        return
    out.print(f"{name}: alias history (oldest first)", markup=False)
    for e in events:
        out.print(
            f"#{e.seq} {e.time} {e.action} {e.alias} {e.from_version or '-'} -> "
            f"{e.to_version or '-'} by {e.actor} (run {e.run or '-'}): {e.reason}",
            markup=False,
        )


@app.command()
def rollback(
    target: TargetOption,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the history.")],
    to: Annotated[
        str | None, typer.Option("--to", help="Version (default: the previous champion).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a version that never passed its gates.")
    ] = False,
    model: Annotated[str | None, typer.Option("--model", help="Default: model.name.")] = None,
    params: ParamsOption = Path("params.yaml"),
    debug: DebugOption = False,
) -> None:
    """Move ``champion`` back to the previous champion (or --to a version), audited."""
    from edgeproof.tracking.champion import rollback as rollback_champion

    with one_line_errors(debug):
        loaded, store, name = _registered(params, model, target)
        event = rollback_champion(
            store,
            loaded.registry,
            name,
            reason=reason,
            to_version=to,
            force=force,
            run=f"edgeproof rollback ({_trigger()})",
        )
    out.print(
        f"{name}: {event.alias} {event.from_version} -> {event.to_version} "
        f"(history #{event.seq}: {event.reason})",
        markup=False,
    )


@app.command("verify-champion")
def verify_champion(
    target: TargetOption = "onnxruntime-cpu",
    params: ParamsOption = Path("params.yaml"),
    max_speedup_loss: Annotated[
        float, typer.Option("--max-speedup-loss", help="Tolerated fall of the speedup CI.")
    ] = 0.1,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Report a regression, do not roll back.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Re-measure the champion against its evidence; roll back on a clear regression.

    Exit 0 healthy (or no champion), 1 regressed, 2 error or a device whose fingerprint
    differs from the evidence's (no comparison, no rollback)."""
    from edgeproof.pipeline.resolve import resolve_inputs
    from edgeproof.records import ChampionRecheck

    if not debug:
        hide_expected_tracebacks()
    with one_line_errors(debug):
        resolve_inputs(params, [target])
        from edgeproof.flows.verify_champion import verify_champion as flow

        raw = flow(
            target=target,
            params_file=str(params),
            max_speedup_loss=max_speedup_loss,
            rollback_on_regression=not no_rollback,
        )
    result = ChampionRecheck.model_validate(raw)
    from edgeproof.report.recheck import recheck_markdown

    out.print(recheck_markdown(result), markup=False)
    if result.status == "incomparable":
        err.print(
            f"edgeproof: error: {result.registered_model} v{result.version}: not compared with "
            f"its evidence, the device differs: {'; '.join(result.reasons)}",
            markup=False,
        )
        raise typer.Exit(2)
    raise typer.Exit(1 if result.status == "regressed" else 0)


@app.command("verify-evidence")
def verify_evidence(
    source: Annotated[
        str,
        typer.Argument(
            help="evidence.json, an MLflow run id, or models:/NAME@ALIAS or models:/NAME/VERSION."
        ),
    ],
    root: Annotated[Path, typer.Option("--root", help="Project folder of the inputs.")] = Path(),
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model files (default: beside the json).")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
    public_key: cli_device.PublicKeyOption = None,
    debug: DebugOption = False,
) -> None:
    """Re-hash a verdict's model, data and params against its evidence.json, and check its
    signature when it has one and a public key is given (exit 1 if anything does not match)."""
    import tempfile

    from edgeproof.errors import EvidenceRefused
    from edgeproof.tracking.evidence import verify_evidence as verify
    from edgeproof.tracking.evidence_source import load_evidence, signature_line

    with (
        one_line_errors(debug, ValueError, OSError),
        tempfile.TemporaryDirectory(prefix="edgeproof-evidence-") as tmp,
    ):
        evidence, models, signature = load_evidence(source, model_dir, params, Path(tmp))
        checks = verify(evidence, root, models)
        try:
            signed = signature_line(evidence, signature, public_key, params)
        except EvidenceRefused as exc:
            signed = f"MISMATCH  signature: {exc}"
    for check in checks:
        out.print(check.line(), markup=False)
    out.print(signed, markup=False)
    bad = [c for c in checks if not c.ok]
    verdict = evidence["verdict"]["status"]
    out.print(
        f"{evidence['target']}/{evidence['candidate']} (verdict {verdict}): "
        + (f"{len(bad)} of {len(checks)} files do not match" if bad else "all files match"),
        markup=False,
    )
    raise typer.Exit(1 if bad or signed.startswith("MISMATCH") else 0)


@registry_app.command("init")
def registry_init(
    params: ParamsOption = Path("params.yaml"),
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Only this target (repeatable).")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Create, as this identity (CI), the experiment and every ``<model>.<target>`` that
    params.yaml implies, so CI holds MANAGE on them; exit 2 if a name (or a lock) exists
    that CI cannot manage."""
    from edgeproof.errors import RegistryRefused
    from edgeproof.params.model import load_params
    from edgeproof.pipeline.resolve import select_targets
    from edgeproof.tracking.mlflow_store import MlflowStore
    from edgeproof.tracking.names import claim_names

    with one_line_errors(debug):
        loaded = load_params(params)
        targets = list(select_targets(loaded, target))
        store = MlflowStore(loaded.tracking)
        states = claim_names(store, loaded.registry, loaded.model.name, targets)
        for state in states:
            if state.state != "foreign":
                out.print(f"{state.name}: {state.state} ({state.detail})", markup=False)
        foreign = [state for state in states if state.state == "foreign"]
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise RegistryRefused(foreign[0].detail + more)


@example_app.command("prepare")
def example_prepare(
    params: ParamsOption = Path("params.yaml"),
    out_dir: Annotated[Path, typer.Option("--out")] = Path("data/splits"),
    debug: DebugOption = False,
) -> None:
    """Write train / calibration / eval splits of sklearn digits (DVC stage ``prepare``)."""
    from edgeproof.example.data import prepare_splits
    from edgeproof.params.model import load_params

    with one_line_errors(debug):
        paths = prepare_splits(load_params(params).example, out_dir)
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
    from edgeproof.example.train import pin_instruction_set, train_and_export
    from edgeproof.params.model import load_params

    pin_instruction_set()  # before PyTorch loads: the model's bytes then match dvc.lock

    with one_line_errors(debug):
        model.parent.mkdir(parents=True, exist_ok=True)
        metrics.parent.mkdir(parents=True, exist_ok=True)
        result = train_and_export(load_params(params).example, splits, model, metrics)
    out.print(json.dumps(result), markup=False)


@example_app.command("tiny-llama")
def example_tiny_llama(
    params: ParamsOption = Path("params.yaml"),
    model: Annotated[Path, typer.Option("--model")] = Path("model/tiny-llama-f16.gguf"),
    data_dir: Annotated[Path, typer.Option("--data")] = Path("data"),
    metrics: Annotated[Path, typer.Option("--metrics")] = Path("metrics/train.json"),
    hf_dir: Annotated[
        Path | None,
        typer.Option("--hf", help="also write the weights as a Hugging Face folder (mlx)"),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Train the byte-level llama example and write it as GGUF with its token-window splits
    (DVC stage ``train`` of examples/tiny-llama); with ``--hf``, the same weights as a
    Hugging Face-layout folder too (the ``mlx`` target's ``hf_model``)."""
    from edgeproof.example.tiny_llama import build
    from edgeproof.params.model import load_params

    with one_line_errors(debug):
        config = load_params(params).llama_example
        result = build(model, data_dir, metrics, config, hf_dir=hf_dir)
    out.print(json.dumps(result), markup=False)


def main() -> None:
    """The ``edgeproof`` command; an unexpected exception (a bug, not bad input) exits 2
    with one line naming the file its traceback was written to."""
    try:
        app()
    except Exception as exc:
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="edgeproof-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as crash:
            traceback.print_exc(file=crash)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        err.print(
            f"edgeproof: internal error: {type(exc).__name__}: {first} (traceback: {path})",
            markup=False,
        )
        sys.exit(2)
