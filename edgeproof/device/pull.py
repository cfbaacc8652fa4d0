"""Pull the model an alias points at onto a device, only if its signed evidence checks out.

``pull`` downloads, into a temp folder beside ``out_dir``, the model files of the version an
alias (``champion`` by default) points at, its ``evidence.json`` and the signature of that
evidence. It refuses (``EvidenceRefused``) unless the signature was made by the trusted key,
the evidence is of a passing verdict on the asked target, and every downloaded model file
is named in the evidence with the same size and sha256 (and every named file is there).
Only then is the temp folder moved into place as ``out_dir``; on any refusal or error the
temp folder is removed and ``out_dir`` is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeproof.errors import EvidenceRefused, InputError
from edgeproof.tracking.evidence import EVIDENCE_FILE, SCHEMA, sha256_file
from edgeproof.tracking.mlflow_model import REGISTRATION_FILE
from edgeproof.tracking.mlflow_store import mlflow_errors
from edgeproof.tracking.run_log import MODEL_ARTIFACT_DIR
from edgeproof.tracking.signing import SIGNATURE_FILE, verify

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from edgeproof.config import RegistryConfig
    from edgeproof.tracking.mlflow_store import MlflowStore

PULL_FILE = "pull.json"


@dataclass(frozen=True)
class Pulled:
    """What was pulled: registered model, version, alias, source run and signing key."""

    registered_model: str
    version: str
    alias: str
    run_id: str
    key_id: str
    files: tuple[str, ...]
    out_dir: Path


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not an empty folder; pull into a new one")
    if not out_dir.parent.is_dir():
        raise InputError(f"{out_dir.parent} does not exist")


def _model_files(folder: Path) -> dict[str, Path]:
    """Every file under ``folder``, keyed as the evidence names them (``model/<path>``)."""
    if not folder.is_dir():
        return {}
    return {
        f"{MODEL_ARTIFACT_DIR}/{path.relative_to(folder).as_posix()}": path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def check_files(evidence: dict[str, Any], model_dir: Path) -> list[str]:
    """Problems between the evidence's model file list and the files in ``model_dir``."""
    listed = {item["artifact"]: item for item in evidence.get("model_files") or []}
    present = _model_files(model_dir)
    problems = [f"{name}: not in the registry" for name in sorted(set(listed) - set(present))]
    problems += [
        f"{name}: not named in the evidence" for name in sorted(set(present) - set(listed))
    ]
    for name in sorted(set(listed) & set(present)):
        item, path = listed[name], present[name]
        if path.stat().st_size != item.get("size_bytes") or sha256_file(path) != item.get("sha256"):
            problems.append(f"{name}: sha256 differs from the evidence")
    if not listed:
        problems.append("the evidence names no model file")
    return problems


def check_evidence(
    evidence_text: str, signature_text: str, public_key: Ed25519PublicKey, target: str
) -> tuple[dict[str, Any], str]:
    """(evidence, signing key id) once the signature and the evidence's claims check out."""
    key = verify(evidence_text, signature_text, public_key)
    evidence = json.loads(evidence_text)
    if evidence.get("schema") != SCHEMA:
        raise EvidenceRefused(f"not an edgeproof evidence file (schema {evidence.get('schema')!r})")
    if evidence.get("target") != target:
        raise EvidenceRefused(f"evidence is of target {evidence.get('target')!r}, not {target!r}")
    status = (evidence.get("verdict") or {}).get("status")
    if status != "pass":
        raise EvidenceRefused(f"evidence verdict is {status!r}, not 'pass'")
    return evidence, key


def pull(
    store: MlflowStore,
    registry_config: RegistryConfig,
    model: str,
    target: str,
    alias: str | None,
    out_dir: Path,
    public_key: Ed25519PublicKey,
) -> Pulled:
    """Download and check the version ``alias`` of ``model`` on ``target`` into ``out_dir``."""
    out_dir = out_dir.expanduser().absolute()
    _check_out_dir(out_dir)
    alias = alias or registry_config.champion_alias
    name = registry_config.registered_name(model, target)
    version = store.alias_version(name, alias)
    if version is None:
        raise InputError(f"{name} has no alias {alias!r} (or no such registered model)")
    run_id = store.version_run_id(name, version=version)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.pull-", dir=out_dir.parent))
    try:
        staged = scratch / "staged"
        staged.mkdir()
        with mlflow_errors(f"list the artifacts of run {run_id}"):
            logged = {item.path for item in store.client.list_artifacts(run_id)}
        if SIGNATURE_FILE not in logged:
            raise EvidenceRefused(f"{name} v{version}: its evidence is not signed")
        evidence_path = store.download(run_id, EVIDENCE_FILE, staged)
        signature_path = store.download(run_id, SIGNATURE_FILE, staged)
        evidence_text = evidence_path.read_text(encoding="utf-8")
        evidence, key = check_evidence(
            evidence_text, signature_path.read_text(encoding="utf-8"), public_key, target
        )
        store.download(run_id, MODEL_ARTIFACT_DIR, staged)
        (staged / MODEL_ARTIFACT_DIR / REGISTRATION_FILE).unlink(missing_ok=True)
        problems = check_files(evidence, staged / MODEL_ARTIFACT_DIR)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise EvidenceRefused(f"{name} v{version}: {problems[0]}{more}")
        files = tuple(sorted(_model_files(staged / MODEL_ARTIFACT_DIR)))
        record = {
            "registered_model": name,
            "version": version,
            "alias": alias,
            "run_id": run_id,
            "key_id": key,
            "files": list(files),
        }
        (staged / PULL_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(staged, out_dir)  # onto an absent or empty folder: atomic on one filesystem
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Pulled(name, version, alias, run_id, key, files, out_dir)
