"""Evidence signed by the run itself, checked by verify-evidence, and a device pull that
trusts the key in params.yaml.

A run with ``$EDGEPROOF_SIGNING_KEY`` signs every verdict's evidence; ``edgeproof pull``
trusts ``signing.public_key`` of the project (no flag, no variable) and gets the champion
with its MLflow Model files; a key that did not sign it is refused with nothing written;
``signing.required`` without a key stops the run before anything is written.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.e2e.reliability.project import (
    assert_refused,
    cli_env,
    edgeproof,
    set_param,
    snapshot,
)
from tests.helpers import BIN, public_b64

LENIENT = {"accuracy": None, "fidelity": None, "latency": None}  # the tiny CNN is random


def _raw_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def _pull(
    project: Path, out: str, prefect_home: Path, scratch: Path
) -> subprocess.CompletedProcess:
    command = [str(BIN / "edgeproof"), "pull", "--target", "onnxruntime-cpu", "--out", out]
    env = cli_env(project, prefect_home, scratch)
    env.pop("EDGEPROOF_PUBLIC_KEY", None)
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def _verify(
    project: Path, prefect_home: Path, scratch: Path, *args: str
) -> subprocess.CompletedProcess:
    """``edgeproof verify-evidence`` of the champion: files re-hashed, signature checked."""
    command = [str(BIN / "edgeproof"), "verify-evidence", "models:/tiny.onnxruntime-cpu@champion"]
    env = cli_env(project, prefect_home, scratch)
    env.pop("EDGEPROOF_PUBLIC_KEY", None)
    return subprocess.run(
        [*command, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_signed_run_is_pulled_with_the_key_params_trust(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    set_param(project, "signing.public_key", public_b64(key))
    set_param(project, "gates.accuracy.max_drop_abs", None)
    set_param(project, "gates.fidelity.min_top1_agreement", None)
    set_param(project, "gates.fidelity.max_kl", None)
    set_param(project, "gates.latency.min_speedup", None)
    done = edgeproof(
        project, prefect_home=prefect_home, scratch=scratch,
        env={"EDGEPROOF_SIGNING_KEY": _raw_b64(key)},
    )  # fmt: skip
    assert done.returncode == 0, done.explain()

    pulled = _pull(project, "device", prefect_home, scratch)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "evidence signed by key" in pulled.stdout
    record = json.loads((project / "device" / "pull.json").read_text(encoding="utf-8"))
    assert "model/MLmodel" in record["files"]  # the MLflow Model's files came, checked

    verified = _verify(project, prefect_home, scratch)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ok        signature: by key" in verified.stdout
    other = public_b64(Ed25519PrivateKey.generate())
    forged = _verify(project, prefect_home, scratch, "--public-key", other)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    assert "MISMATCH  signature:" in forged.stdout

    set_param(project, "signing.public_key", other)
    before = snapshot(project)
    refused = _pull(project, "device-2", prefect_home, scratch)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith("edgeproof: refused: ")
    assert snapshot(project) == before  # no device-2, no temporary folder left


def test_signing_required_without_a_key_stops_before_anything_is_written(
    project: Path, prefect_home: Path, scratch: Path
) -> None:
    set_param(project, "signing.required", True)
    before = snapshot(project)
    done = edgeproof(project, prefect_home=prefect_home, scratch=scratch)
    assert_refused(done, 2, r"signing\.required: no signing key")
    assert snapshot(project) == before
