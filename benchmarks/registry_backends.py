"""Registry benchmark: register and promote times, and racing promotions, per MLflow backend.

    .venv/bin/python benchmarks/registry_backends.py [--repeats 5] [--racers 4] [--rounds 3]
        [--backends sqlite,postgres+auth,postgres] [--name registry-backends]
        [--out benchmarks/results]

    # the production stack's race figure: 20 promoters at once
    .venv/bin/python benchmarks/registry_backends.py --backends postgres+auth --racers 20 \
        --rounds 3 --repeats 1 --name registry-race-20

Three real ``mlflow server`` processes on 127.0.0.1, one at a time:

- ``sqlite``: the test suite's server (``tests/mlflow_server.py``: sqlite file, no auth);
- ``postgres``: a plain server on the production stack's PostgreSQL database;
- ``postgres+auth``: the production stack's server (``deploy/stack.sh``: PostgreSQL and
  ``--app-name basic-auth``), as the ``ci`` user.

Per backend: ``register`` (a run, its model file uploaded through the server, a new
registered version) and ``promote`` (``move_champion``: lock, compare, move, audit event,
unlock), each ``--repeats`` times, medians reported; then ``--rounds`` races of ``--racers``
processes promoting at the same moment (``tests/helpers.RACER``), each race checked:
exactly one winner, ``racers - 1`` refusals, audit sequence numbers without gap or
duplicate, lock released. Writes ``<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server helpers (tests/ is not installed)

from edgeproof.config import TrackingConfig  # noqa: E402
from edgeproof.measure.environment import machine_state  # noqa: E402
from edgeproof.tracking.alias_lock import lock_name  # noqa: E402
from edgeproof.tracking.audit import read_history  # noqa: E402
from edgeproof.tracking.mlflow_store import MlflowStore  # noqa: E402
from tests.health import wait_healthy  # noqa: E402
from tests.helpers import BIN, RACE_LOST, RACER, make_versions, promote, tool_env  # noqa: E402  # noqa: E402
from tests.mlflow_server import MlflowServer, free_port  # noqa: E402
from tests.prefect_server import Process  # noqa: E402

CLIENT_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@contextmanager
def client_env(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in CLIENT_KEYS}
    for key in CLIENT_KEYS:
        os.environ.pop(key, None)
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def sequential(env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Median seconds of one registered version and of one champion move."""
    with client_env(env):
        store = MlflowStore(TrackingConfig())
        name = f"bench{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
        registered, promoted = [], []
        before = None
        for _ in range(repeats):
            made: list[str] = []
            registered.append(timed(lambda m=made: m.extend(make_versions(store, name, "pass"))))
            promoted.append(timed(lambda v=made[0], b=before: promote(store, name, v, b)))
            before = made[0]
        history = read_history(store, name)
        assert [e.seq for e in history] == list(range(1, repeats + 1)), history
    return {
        "register_s": round(statistics.median(registered), 3),
        "promote_s": round(statistics.median(promoted), 3),
        "register_all_s": [round(x, 3) for x in registered],
        "promote_all_s": [round(x, 3) for x in promoted],
    }


def race(env: dict[str, str], racers: int, folder: Path) -> dict[str, Any]:
    """One race of ``racers`` processes promoting from the same champion; checked."""
    with client_env(env):
        store = MlflowStore(TrackingConfig())
        name = f"race{uuid.uuid4().hex[:8]}.onnxruntime-cpu"
        v1, *others = make_versions(store, name, *["pass"] * (racers + 1))
        promote(store, name, v1, None)
    folder.mkdir(parents=True)
    child_env = {**tool_env(folder), **env, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, name, version, v1, str(folder)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for version in others
    ]
    while not all((folder / f"ready-{v}").exists() for v in others):
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        time.sleep(0.05)
    start = time.perf_counter()
    (folder / "go").touch()
    codes = [p.wait(timeout=600) for p in procs]
    wall = time.perf_counter() - start
    with client_env(env):
        store = MlflowStore(TrackingConfig())
        history = read_history(store, name)
        champion = store.alias_version(name, "champion")
        lock_left = bool(store.registered_model_tags(lock_name(name)))
    winners = [v for v, c in zip(others, codes, strict=True) if c == 0]
    refused = [e for e in history if e.action == "refused"]
    checks = {
        "no_crash": set(codes) <= {0, RACE_LOST},
        "one_winner": len(winners) == 1 and champion == winners[0],
        "refusals": len(refused) == racers - 1,
        "seq_contiguous": [e.seq for e in history] == list(range(1, len(history) + 1)),
        "moves_recorded": [e.action for e in history].count("promote") == 2,
        "lock_released": not lock_left,
    }
    return {"wall_s": round(wall, 2), "codes": codes, "ok": all(checks.values()), **checks}


def start_stack(folder: Path) -> dict[str, str]:
    env = {
        **tool_env(folder),
        "EDGEPROOF_PYTHON": sys.executable,
        "EDGEPROOF_STACK_DIR": str(folder),
        "EDGEPROOF_STACK_PG_PORT": str(free_port()),
        "EDGEPROOF_STACK_MLFLOW_PORT": str(free_port()),
        "EDGEPROOF_STACK_PREFECT_PORT": str(free_port()),
        "EDGEPROOF_STACK_PREFECT_UI": "false",
    }
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "stack.sh"), "start"], env=env, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit("stack did not start")
    return env


def plain_postgres_server(stack: dict[str, str], folder: Path) -> Process:
    """A second, auth-less ``mlflow server`` on the stack's PostgreSQL database."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    stack_dir = Path(stack["EDGEPROOF_STACK_DIR"])
    env = {
        **tool_env(folder),
        "PGPASSFILE": str(stack_dir / "secrets" / "pgpass"),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    uri = f"postgresql+psycopg2://mlflow@127.0.0.1:{stack['EDGEPROOF_STACK_PG_PORT']}/mlflow"
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", uri]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    server = Process(command, env, folder, folder / "server.log")
    server.uri = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    wait_healthy(f"{server.uri}/health", server.alive, server.tail, "mlflow", 180)  # type: ignore[attr-defined]
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--racers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres+auth,postgres")
    parser.add_argument("--name", default="registry-backends", help="results file stem")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    wanted = args.backends.split(",")
    results: dict[str, Any] = {"machine": machine_state(), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="registry-bench-", dir="/tmp") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the stack's postgres user must reach its cluster
        stack = start_stack(root / "stack")
        creds = dict(
            line.split("=", 1)
            for line in (root / "stack" / "secrets" / "credentials.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        sqlite = MlflowServer(root / "sqlite")
        plain: Process | None = None
        try:
            sqlite.start()
            plain = plain_postgres_server(stack, root / "plain")
            # the auth'd server first: experiments made by the auth-less one (same database)
            # would have no owner, and ``ci`` could only read them
            backends = {
                "sqlite": {"MLFLOW_TRACKING_URI": sqlite.uri},
                "postgres+auth": {
                    "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{stack['EDGEPROOF_STACK_MLFLOW_PORT']}",
                    "MLFLOW_TRACKING_USERNAME": "ci",
                    "MLFLOW_TRACKING_PASSWORD": creds["MLFLOW_TRACKING_PASSWORD"].strip("'"),
                },
                "postgres": {"MLFLOW_TRACKING_URI": plain.uri},  # type: ignore[attr-defined]
            }
            for label, env in backends.items():
                if label not in wanted:
                    continue
                entry = sequential(env, args.repeats)
                entry["races"] = [
                    race(env, args.racers, root / f"race-{label}-{i}") for i in range(args.rounds)
                ]
                results["backends"][label] = entry
                print(label, json.dumps(entry), flush=True)
        finally:
            sqlite.stop()
            if plain is not None:
                plain.stop()
            subprocess.run(["bash", str(ROOT / "deploy" / "stack.sh"), "stop"], env=stack)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "| backend | register (median s) | promote (median s) | races ok | race wall (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, entry in results["backends"].items():
        races = entry["races"]
        lines.append(
            f"| {label} | {entry['register_s']} | {entry['promote_s']} | "
            f"{sum(r['ok'] for r in races)}/{len(races)} | "
            f"{', '.join(str(r['wall_s']) for r in races)} |"
        )
    load = results["machine"].get("loadavg_1m", "?")
    lines.append(f"\n{args.racers} racers per race; load average at start: {load}")
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
