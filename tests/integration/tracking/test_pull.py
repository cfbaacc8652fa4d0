"""``pull`` on a local MLflow store (no server): a signed champion comes out whole; a
tampered file, a changed evidence or a wrong key is refused and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeproof.config import TrackingConfig
from edgeproof.device.pull import PULL_FILE, pull
from edgeproof.errors import EvidenceRefused, InputError
from edgeproof.tracking.evidence import EVIDENCE_FILE
from edgeproof.tracking.mlflow_store import MlflowStore
from tests.helpers import REGISTRY, publish
from tests.helpers import SIGNED_TARGET as TARGET


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return MlflowStore(
        TrackingConfig(
            uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=tmp_path / "mlartifacts"
        )
    )


def test_pull_checks_everything_before_writing(
    store: MlflowStore, tmp_path: Path, tiny_model: Path, tiny_data: dict[str, Path]
) -> None:
    key = Ed25519PrivateKey.generate()
    published = publish(store, tmp_path / "project", tiny_model, tiny_data, key)
    device = tmp_path / "device"
    device.mkdir()

    def attempt(public: Ed25519PrivateKey) -> Path:
        return pull(
            store, REGISTRY, published.model, TARGET, None, device / "m", public.public_key()
        ).out_dir

    with pytest.raises(EvidenceRefused, match="not by the trusted key"):
        attempt(Ed25519PrivateKey.generate())
    assert list(device.iterdir()) == []

    out = attempt(key)
    assert sorted(p.name for p in (out / "model").iterdir()) == sorted(published.model_files)
    assert json.loads((out / PULL_FILE).read_text())["version"] == published.version
    with pytest.raises(InputError, match="not an empty folder"):
        attempt(key)

    run_dir = Path(store.artifact_uri(published.run_id, "model").removeprefix("file://"))
    (run_dir / "extra.bin").write_bytes(b"not gated")
    with pytest.raises(EvidenceRefused, match=r"model/extra.bin: not named in the evidence"):
        pull(store, REGISTRY, published.model, TARGET, None, device / "n", key.public_key())
    (run_dir / "extra.bin").unlink()
    evidence = run_dir.parent / EVIDENCE_FILE
    evidence.write_text(evidence.read_text().replace('"pass"', '"fail"', 1))
    with pytest.raises(EvidenceRefused, match="does not match the evidence"):
        pull(store, REGISTRY, published.model, TARGET, None, device / "n", key.public_key())
    assert sorted(p.name for p in device.iterdir()) == ["m"]
    with pytest.raises(InputError, match="has no alias 'nope'"):
        pull(store, REGISTRY, published.model, TARGET, "nope", device / "n", key.public_key())
