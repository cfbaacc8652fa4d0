"""Distributed gate: a real Prefect server, one process worker per pool, real MLflow server.

The repository's prefect.yaml is deployed (its pools renamed so the two targets sit on two
pools, as on two devices); pools and device limits come from `make prefect-setup`; workers
change into this checkout through the pull step (EDGEPROOF_CHECKOUT, resolved on the worker)
and gate a small DVC-built example project. `prefect deployment run 'quality-gate/default'
--watch` then: each target's `gate-target` run ran on its own pool, concurrently, the
parent collected both verdicts from MLflow, a blocked gate exits non-zero, and two gates
for one device (pool) run one after the other. Every
process started here is stopped by PID and checked gone, also when a test fails.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import ROOT, build_example_project, load_params_dict, write_params
from tests.mlflow_server import MlflowServer
from tests.prefect_server import PrefectServer, stop_all

CONTROL = "edgeproof-control"
POOLS = {"onnxruntime-cpu": "edge-test-a", "openvino-cpu": "edge-test-b"}
MODEL = "digits-cnn"
CHECKOUT_PLACEHOLDER = "{{ $EDGEPROOF_CHECKOUT }}"


def _deployments() -> list[dict[str, Any]]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


QUALITY_GATE = "flows/quality_gate.py:quality_gate"


def test_prefect_yaml_matches_params() -> None:
    """One gate-target deployment per params.yaml target, on that target's work pool."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (pull,) = spec["pull"]
    assert pull == {
        "prefect.deployments.steps.set_working_directory": {"directory": CHECKOUT_PLACEHOLDER}
    }
    params_files = ["params.yaml", "examples/tiny-llama/params.yaml"]
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for d in _deployments():
        by_entry.setdefault(d["entrypoint"], []).append(d)
    gates = {d["name"]: d for d in by_entry["flows/gate_target.py:gate_target"]}
    parents = {d["parameters"]["params_file"]: d for d in by_entry[QUALITY_GATE]}
    assert set(parents) == set(params_files) and parents["params.yaml"]["name"] == "default"
    all_targets = set()
    for params_file in params_files:
        targets = yaml.safe_load((ROOT / params_file).read_text())["targets"]
        all_targets |= set(targets)
        for name, section in targets.items():
            assert gates[name]["work_pool"]["name"] == section["work_pool"]
            assert gates[name]["parameters"] == {"params_file": params_file, "target": name}
        assert parents[params_file]["parameters"]["fail_on_block"] is True
    assert set(gates) == all_targets
    (verify,) = by_entry["flows/verify_champion.py:verify_champion"]
    assert verify["schedules"][0]["cron"]
    assert by_entry["flows/rollback.py:rollback"]


def _project(folder: Path) -> Path:
    """The small example, both targets with one cheap recipe each, short measurements,
    each target on its own pool."""
    project = build_example_project(folder)
    params = load_params_dict(project)
    targets = params["targets"]
    for name in set(targets) - set(POOLS):
        del targets[name]
    targets["onnxruntime-cpu"]["recipes"] = [
        r for r in targets["onnxruntime-cpu"]["recipes"] if r["name"] == "static-qdq-minmax"
    ]
    targets["openvino-cpu"]["recipes"] = [
        r for r in targets["openvino-cpu"]["recipes"] if r["name"] == "bf16"
    ]
    for name, pool in POOLS.items():
        targets[name]["work_pool"] = pool
    params["measure"].update(
        warmup_runs=10, min_samples=64, max_samples=300, max_seconds=8, throughput_runs=4
    )
    params["gates"]["on_inconclusive"] = "warn"
    params["gates"]["latency"]["min_speedup"] = None  # a 32x32 model: speed is not reliable
    params["gates"]["accuracy"]["max_drop_abs"] = 0.05
    params["gates"]["fidelity"]["min_top1_agreement"] = 0.9
    params["gates"]["fidelity"]["max_kl"] = 0.2
    write_params(project / "params.yaml", params)
    params["gates"]["latency"]["min_speedup"] = 50.0  # no candidate is 50x faster: blocked
    write_params(project / "params-strict.yaml", params)
    return project


def _prefect_file(dest: Path) -> Path:
    """The repository's prefect.yaml with the test's pools: one per target."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    kept = []
    for d in spec["deployments"]:
        target = d.get("parameters", {}).get("target")
        if target in POOLS:
            d["work_pool"]["name"] = POOLS[target]
        if target is None or target in POOLS:  # other targets' pools do not exist here
            kept.append(d)
    spec["deployments"] = kept
    dest.write_text(yaml.safe_dump(spec, sort_keys=False))
    return dest


def _worker_env(mlflow: MlflowServer, checkout: Path = ROOT) -> dict[str, str]:
    return {"EDGEPROOF_CHECKOUT": str(checkout), "MLFLOW_TRACKING_URI": mlflow.uri}


@dataclass
class Cluster:
    prefect: PrefectServer
    mlflow: MlflowServer
    project: Path

    def gate(self, params_file: str, **parameters: Any) -> tuple[int, str, str]:
        """`prefect deployment run 'quality-gate/default' --watch`: (exit code, flow run
        id, output)."""
        parameters["params_file"] = str(self.project / params_file)
        done = self.prefect.run(
            "deployment",
            "run",
            "quality-gate/default",
            "--params",
            json.dumps(parameters),
            "--watch",
            "--watch-interval",
            "1",
            "--watch-timeout",
            "900",
            cwd=self.project,
            timeout=960,
        )
        output = done.stdout + done.stderr
        found = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
        assert found, output[-3000:]
        return done.returncode, found.group(1), output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("distributed")
    prefect = PrefectServer(folder / "prefect").launch()
    mlflow = MlflowServer(folder / "mlflow")
    try:
        mlflow.start()
        project = _project(folder / "project")
        prefect.wait_healthy()
        setup = subprocess.run(
            ["make", "-s", "-C", str(ROOT), "prefect-setup", f"PARAMS={project / 'params.yaml'}"],
            env=prefect.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr
        # EDGEPROOF_CHECKOUT unset at deploy time: each worker resolves it (checked below)
        deploy_env = {k: v for k, v in prefect.env().items() if k != "EDGEPROOF_CHECKOUT"}
        prefect_file = _prefect_file(folder / "prefect.yaml")
        deployed = subprocess.run(
            ["prefect", "deploy", "--all", "--no-prompt", "--prefect-file", str(prefect_file)],
            cwd=ROOT,  # entrypoints are relative to the checkout
            env=deploy_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        for pool in (CONTROL, *POOLS.values()):
            prefect.start_worker(pool, cwd=folder, **_worker_env(mlflow))  # not the checkout
        prefect.wait_online(prefect.workers)
        yield Cluster(prefect, mlflow, project)
    finally:
        processes = prefect.processes()
        mlflow.stop()
        left = stop_all(processes)
        assert mlflow.proc is None or mlflow.proc.poll() is not None, "mlflow server still up"
        assert not left, f"processes still running after stop: {left}"


def _flow_runs(cluster: Cluster, parent_id: str) -> tuple[Any, list[Any]]:
    """(parent flow run, its gate-target child flow runs) read through the Prefect client."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with cluster.prefect.client() as client:
        parent = client.read_flow_run(parent_id)
        children = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["gate-target"]))
        )
        linked = []
        for child in children:
            if child.parent_task_run_id is None:
                continue
            task_run = client.read_task_run(child.parent_task_run_id)
            if str(task_run.flow_run_id) == parent_id:
                linked.append(child)
    return parent, linked


def _measure_tags(cluster: Cluster, flow_run_id: Any) -> set[str]:
    """Tags of the ``measure`` task runs of one flow run."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with cluster.prefect.client() as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
    measured = [r for r in runs if r.name.startswith("measure")]
    assert measured, f"no measure task run in flow run {flow_run_id}"
    return set().union(*(set(r.tags) for r in measured))


def _verdict(project: Path) -> dict[str, Any]:
    files = sorted((project / "reports").glob("*/verdict.json"), key=lambda p: p.stat().st_mtime)
    assert files, "no report written"
    return json.loads(files[-1].read_text(encoding="utf-8"))


@pytest.mark.slow
def test_targets_run_on_their_own_pools_and_both_verdicts_are_collected(
    cluster: Cluster,
) -> None:
    rc, parent_id, output = cluster.gate("params.yaml")
    assert rc == 0, output[-3000:]
    parent, children = _flow_runs(cluster, parent_id)
    assert parent.work_pool_name == CONTROL and parent.state.is_completed()
    assert sorted(c.parameters["target"] for c in children) == sorted(POOLS)
    for child in children:
        target = child.parameters["target"]
        assert child.work_pool_name == POOLS[target], (target, child.work_pool_name)
        assert child.state.is_completed()
        assert f"edgeproof-device:{POOLS[target]}" in _measure_tags(cluster, child.id)
    # dispatched together: both flow runs exist before either ends (when each starts is up
    # to its worker and a 2-core machine, so start times are not compared)
    assert max(c.created for c in children) < min(c.end_time for c in children), (
        "the two targets were not dispatched together"
    )

    verdict = _verdict(cluster.project)
    assert verdict["status"] == "pass" and verdict["exit_code"] == 0
    outcomes = {t["target"]: t for t in verdict["targets"]}
    assert set(outcomes) == set(POOLS)
    assert all(o["status"] == "pass" and o["winner"] for o in outcomes.values())
    client = MlflowClient(tracking_uri=cluster.mlflow.uri, registry_uri=cluster.mlflow.uri)
    for target, outcome in outcomes.items():
        champion = client.get_model_version_by_alias(f"{MODEL}.{target}", "champion")
        assert champion.tags["edgeproof.candidate"] == outcome["winner"]
        run = client.get_run(champion.run_id)
        target_run = client.get_run(run.data.tags["mlflow.parentRunId"])
        parent_run = target_run.data.tags["mlflow.parentRunId"]
        assert parent_run == verdict["run"]["mlflow_run_id"]


@pytest.mark.slow
def test_a_blocked_gate_fails_the_deployment_run(cluster: Cluster) -> None:
    rc, parent_id, output = cluster.gate("params-strict.yaml", targets=["onnxruntime-cpu"])
    assert rc == 1, output[-3000:]
    parent, children = _flow_runs(cluster, parent_id)
    assert parent.state.is_failed()
    assert "quality gate blocked" in (parent.state.message or ""), parent.state.message
    (child,) = children
    assert child.work_pool_name == POOLS["onnxruntime-cpu"] and child.state.is_completed()
    verdict = _verdict(cluster.project)
    assert verdict["status"] == "blocked" and verdict["exit_code"] == 1
    (outcome,) = verdict["targets"]
    assert outcome["target"] == "onnxruntime-cpu" and outcome["status"] == "blocked"
    assert "< min 50.00x" in json.dumps(outcome)


@pytest.mark.slow
def test_one_device_runs_one_gate_at_a_time(cluster: Cluster) -> None:
    """Two quality gates started together, both for the target of one pool: the pool's
    concurrency limit (``make prefect-setup``) runs their gate-target flows (optimize,
    measure, champion re-measure) one after the other, never side by side."""
    from concurrent.futures import ThreadPoolExecutor

    target = ["onnxruntime-cpu"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(cluster.gate, params, targets=target)
            for params in ("params.yaml", "params-strict.yaml")
        ]
        (rc_ok, ok_id, ok_out), (rc_strict, strict_id, strict_out) = (r.result() for r in runs)
    assert rc_ok == 0, ok_out[-3000:]
    assert rc_strict == 1, strict_out[-3000:]
    children = [c for parent in (ok_id, strict_id) for c in _flow_runs(cluster, parent)[1]]
    assert len(children) == 2
    assert {c.work_pool_name for c in children} == {POOLS["onnxruntime-cpu"]}
    first, second = sorted(children, key=lambda c: c.start_time)
    assert first.end_time is not None and second.start_time >= first.end_time, (
        f"two gates ran on one device at once: {first.start_time}-{first.end_time} and "
        f"{second.start_time}-{second.end_time}"
    )


@pytest.mark.slow
def test_the_pull_step_is_resolved_on_the_worker(cluster: Cluster) -> None:
    """EDGEPROOF_CHECKOUT was not set at deploy time: the stored step keeps the placeholder
    (each device resolves it to its own checkout)."""
    with cluster.prefect.client() as client:
        deployment = client.read_deployment_by_name("gate-target/openvino-cpu")
    step = deployment.pull_steps[0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == CHECKOUT_PLACEHOLDER


@pytest.mark.slow
def test_a_failed_child_keeps_the_other_verdict(cluster: Cluster, tmp_path: Path) -> None:
    """The openvino device's worker is replaced by one whose checkout is missing (a broken
    runner): its child run crashes in the pull step; the onnxruntime verdict still arrives."""
    prefect = cluster.prefect
    (old,) = [w for w in prefect.workers if w.pool == POOLS["openvino-cpu"] and w.alive()]
    old.stop()
    assert old.gone()
    env = _worker_env(cluster.mlflow, checkout=tmp_path / "no-such-checkout")
    broken = prefect.start_worker(POOLS["openvino-cpu"], cwd=tmp_path, **env)
    prefect.wait_online([broken])
    rc, parent_id, output = cluster.gate("params-strict.yaml")
    assert rc == 1, output[-3000:]
    parent, children = _flow_runs(cluster, parent_id)
    states = {c.parameters["target"]: c.state for c in children}
    assert states["onnxruntime-cpu"].is_completed() and states["openvino-cpu"].is_crashed()
    verdict = _verdict(cluster.project)
    assert verdict["status"] == "error" and verdict["exit_code"] == 2
    outcomes = {t["target"]: t for t in verdict["targets"]}
    assert outcomes["onnxruntime-cpu"]["status"] == "blocked"
    failed = outcomes["openvino-cpu"]
    assert failed["status"] == "error"
    assert failed["reason"].startswith("gate-target/openvino-cpu flow run "), failed["reason"]
    assert f"on pool {POOLS['openvino-cpu']} ended Crashed" in failed["reason"]
    assert "quality gate error" in (parent.state.message or "")
