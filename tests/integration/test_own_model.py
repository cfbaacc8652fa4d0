"""README "Gate your own model", walked through on a model this test builds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, make_tiny_cnn, run, write_npz

pytestmark = pytest.mark.slow


def _readme_params() -> dict:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Gate your own model", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "README has no params.yaml example under 'Gate your own model'"
    return yaml.safe_load(block.group(1))


def test_readme_params_gate_a_users_model(tmp_path: Path) -> None:
    params = _readme_params()
    make_tiny_cnn(tmp_path / params["model"]["path"], size=16)
    rng = np.random.default_rng(0)
    for key, n in (("eval", 200), ("calibration", 60)):
        x = rng.random((n, 1, 16, 16), dtype=np.float32)
        write_npz(tmp_path / params["data"][key], input=x, labels=np.arange(n) % 10)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    done = run(["edgeproof", "run", "--params", "params.yaml"], tmp_path, timeout=900)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    (verdict_file,) = (tmp_path / "reports").glob("*/verdict.json")
    verdict = json.loads(verdict_file.read_text(encoding="utf-8"))
    assert verdict["exit_code"] == done.returncode
    (target,) = verdict["targets"]
    names = {o["candidate"]["name"] for o in target["outcomes"]}
    assert names == {"fp32", "static-int8", "dynamic-int8"}
    assert all(o["summary"] is not None for o in target["outcomes"])
    assert verdict["run"]["lineage"]["git_sha"] is None  # not a git checkout: recorded as such
    assert (tmp_path / "mlflow.db").is_file()
