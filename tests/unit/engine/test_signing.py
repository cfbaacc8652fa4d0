"""Ed25519 signatures of evidence: round trip, canonical bytes, tamper and key errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeproof.errors import EvidenceRefused, SigningError
from edgeproof.tracking.signing import (
    canonical_text_bytes,
    key_id,
    load_private_key,
    load_private_key_if_configured,
    load_public_key,
    public_key_b64,
    signature_json,
    verify,
)

EVIDENCE = {"schema": "edgeproof.evidence/1", "verdict": {"status": "pass"}, "x": [1.5, None]}


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_signature_survives_reformatting_but_not_a_changed_value() -> None:
    key = Ed25519PrivateKey.generate()
    text = json.dumps(EVIDENCE, indent=1)
    signature = signature_json(text, key)
    assert verify(json.dumps(EVIDENCE), signature, key.public_key()) == key_id(key.public_key())
    assert canonical_text_bytes(text) == canonical_text_bytes(json.dumps(EVIDENCE, indent=4))
    changed = json.dumps({**EVIDENCE, "verdict": {"status": "fail"}})
    with pytest.raises(EvidenceRefused, match="does not match the evidence"):
        verify(changed, signature, key.public_key())
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(EvidenceRefused, match="not by the trusted key"):
        verify(text, signature, other)
    with pytest.raises(EvidenceRefused, match="not an edgeproof signature"):
        verify(text, "{}", key.public_key())
    forged = json.loads(signature) | {"key_id": key_id(other)}
    with pytest.raises(EvidenceRefused, match="does not match"):
        verify(text, json.dumps(forged), other)


def test_keys_from_the_environment_pem_base64_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = public_key_b64(key.public_key())
    monkeypatch.delenv("EDGEPROOF_SIGNING_KEY", raising=False)
    assert load_private_key_if_configured() is None
    for value in (_pem(key).decode(), base64.b64encode(raw).decode()):
        monkeypatch.setenv("EDGEPROOF_SIGNING_KEY", value)
        assert public_key_b64(load_private_key().public_key()) == public
    (tmp_path / "signing.pem").write_bytes(_pem(key))
    monkeypatch.setenv("EDGEPROOF_SIGNING_KEY", str(tmp_path / "signing.pem"))
    assert public_key_b64(load_private_key().public_key()) == public
    assert public_key_b64(load_private_key(tmp_path / "signing.pem").public_key()) == public
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "signing.pub").write_bytes(pub_pem)
    for spec in (public, pub_pem.decode(), str(tmp_path / "signing.pub"), tmp_path / "signing.pub"):
        assert public_key_b64(load_public_key(spec)) == public


def test_bad_key_material_is_one_line_that_does_not_show_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for secret in (base64.b64encode(b"x" * 31).decode(), "a/b" + "k" * 40, "-----BEGIN junk"):
        monkeypatch.setenv("EDGEPROOF_SIGNING_KEY", secret)
        with pytest.raises(SigningError) as bad:
            load_private_key()
        message = str(bad.value)
        assert secret not in message and "EDGEPROOF_SIGNING_KEY" in message, message
        assert "\n" not in message
    monkeypatch.setenv("EDGEPROOF_SIGNING_KEY", " ")
    with pytest.raises(SigningError, match="no signing key"):
        load_private_key()
    (tmp_path / "key.pem").write_bytes(_pem(Ed25519PrivateKey.generate()))
    with pytest.raises(SigningError, match="is not a PEM public key"):
        load_public_key(str(tmp_path / "key.pem"))
    with pytest.raises(SigningError, match="no such file"):
        load_public_key(str(tmp_path / "absent.pub"))
    monkeypatch.delenv("EDGEPROOF_PUBLIC_KEY", raising=False)
    with pytest.raises(SigningError, match="no public key"):
        load_public_key()


def test_sign_and_verify_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from edgeproof.cli.app import app

    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pem").write_bytes(_pem(key))
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps(EVIDENCE))
    runner = CliRunner()
    monkeypatch.delenv("EDGEPROOF_SIGNING_KEY", raising=False)
    missing = runner.invoke(app, ["sign-evidence", str(evidence)])
    assert missing.exit_code == 2 and not (tmp_path / "evidence.json.sig").exists()
    signed = runner.invoke(
        app, ["sign-evidence", str(evidence), "--key", str(tmp_path / "signing.pem")]
    )
    assert signed.exit_code == 0, signed.output
    public = public_key_b64(key.public_key())
    ok = runner.invoke(app, ["verify-signature", str(evidence), "--public-key", public])
    assert ok.exit_code == 0 and "signature ok" in ok.output
    evidence.write_text(json.dumps({**EVIDENCE, "x": [2]}))
    bad = runner.invoke(app, ["verify-signature", str(evidence), "--public-key", public])
    assert bad.exit_code == 1 and "refused" in bad.output
