"""Where a verdict's evidence comes from: a file with its signature beside it, an MLflow run,
or a registered model (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``), and what its
signature says under the public key the caller trusts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgeproof.errors import EdgeproofError


def signature_line(
    evidence: dict, signature: str | None, public_key: str | None, params: Path
) -> str:
    """One line on the evidence's signature: checked, unsigned, or not checked (no key)."""
    from edgeproof.params.model import load_params
    from edgeproof.tracking.signing import (
        PUBLIC_KEY_ENV,
        load_public_key,
        trusted_key_spec,
        verify,
    )

    if signature is None:
        return "unsigned  signature: none logged with this evidence"
    spec: str | Path | None = public_key
    if spec is None and not os.environ.get(PUBLIC_KEY_ENV, "").strip():
        if not params.is_file():
            return "unchecked signature: no public key (--public-key, $EDGEPROOF_PUBLIC_KEY)"
        spec = trusted_key_spec(None, params.parent, load_params(params).signing)
        if spec is None:
            return "unchecked signature: no public key (--public-key, signing.public_key)"
    key_id = verify(json.dumps(evidence), signature, load_public_key(spec))  # canonicalized
    return f"ok        signature: by key {key_id}"


def load_evidence(
    source: str, model_dir: Path | None, params: Path, scratch: Path
) -> tuple[dict, Path, str | None]:
    """(evidence, folder of its model files, its signature file's text or None), from a
    file (the signature beside it) or from MLflow."""
    from edgeproof.tracking.evidence import EVIDENCE_FILE
    from edgeproof.tracking.run_log import MODEL_ARTIFACT_DIR
    from edgeproof.tracking.signing import SIGNATURE_FILE

    local = Path(source)
    if local.is_file():
        evidence = json.loads(local.read_text(encoding="utf-8"))
        beside = local.with_name(SIGNATURE_FILE)
        signature = beside.read_text(encoding="utf-8") if beside.is_file() else None
        return evidence, model_dir or local.parent / MODEL_ARTIFACT_DIR, signature
    from edgeproof.params.model import load_params
    from edgeproof.tracking.mlflow_store import MlflowStore

    store = MlflowStore(load_params(params).tracking)
    run_id = source
    if source.startswith("models:/"):
        spec = source.removeprefix("models:/")
        if "@" in spec:
            name, alias = spec.rsplit("@", 1)
            run_id = store.version_run_id(name, alias=alias)
        elif "/" in spec:
            name, version = spec.rsplit("/", 1)
            run_id = store.version_run_id(name, version=version)
        else:
            raise EdgeproofError(f"{source}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    evidence_path = store.download(run_id, EVIDENCE_FILE, scratch)
    evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
    if model_dir is None:
        model_dir = store.download(run_id, MODEL_ARTIFACT_DIR, scratch)
    logged = {item.path for item in store.client.list_artifacts(run_id)}
    signature = None
    if SIGNATURE_FILE in logged:
        signature = store.download(run_id, SIGNATURE_FILE, scratch).read_text(encoding="utf-8")
    return evidence, model_dir, signature
