"""Ed25519 signatures of evidence bundles, so a device can tell a gated model from any other.

The signed bytes are the canonical form of ``evidence.json`` (parsed, then dumped with sorted
keys and no whitespace), so re-indenting the file does not break its signature but changing
any value does. The signature is a small JSON file beside the evidence (``SIGNATURE_FILE``)
naming the algorithm and the key id (sha256 of the raw public key, first 16 hex digits).

Keys: the private key comes from ``EDGEPROOF_SIGNING_KEY`` (PEM text, or base64 of the raw
32-byte key, or a path to a file holding either) or from a file path; a public key is base64
of its raw 32 bytes, PEM text, or a path to a file holding either. Errors name the source
(variable or file), never its contents.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeproof.config import SigningConfig
from edgeproof.errors import EvidenceRefused, SigningError

KEY_ENV = "EDGEPROOF_SIGNING_KEY"
PUBLIC_KEY_ENV = "EDGEPROOF_PUBLIC_KEY"
SIGNATURE_FILE = "evidence.json.sig"
SIGNATURE_SCHEMA = "edgeproof.signature/1"
ALGORITHM = "Ed25519"
_B64_KEY = re.compile(r"[A-Za-z0-9+/]{43}=")  # base64 of 32 bytes


def canonical_bytes(evidence: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_text_bytes(evidence_text: str) -> bytes:
    """``canonical_bytes`` of an ``evidence.json`` text (so signer and verifier agree)."""
    try:
        parsed = json.loads(evidence_text)
    except json.JSONDecodeError as exc:
        raise EvidenceRefused(f"evidence is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(parsed, dict):
        raise EvidenceRefused("evidence is not a JSON object")
    return canonical_bytes(parsed)


def _key_text(spec: str, what: str, secret: bool) -> tuple[bytes, str]:
    """(key bytes, where they came from): ``spec`` is PEM, base64, or a file path.

    A ``secret`` spec (a private key from the environment) is never repeated in a message.
    """
    text = spec.strip()
    if text.startswith("-----BEGIN"):
        return text.encode(), what
    path = Path(text).expanduser()
    try:
        if len(text) < 4096 and path.is_file():
            return path.read_bytes().strip(), f"key file {path}"
    except OSError as exc:
        raise SigningError(f"cannot read key file {path}: {exc.strerror}") from None
    if _B64_KEY.fullmatch(text) is None and ("/" in text or "." in text):
        where = what if secret else f"key file {path}"
        raise SigningError(f"{where}: no such file, and not PEM or base64 of a raw key")
    return text.encode(), what


def _raw(data: bytes, source: str, kind: str) -> bytes | None:
    """The 32 raw key bytes of base64 ``data``; None when ``data`` is PEM."""
    if data.startswith(b"-----BEGIN"):
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SigningError(
            f"{source} is neither PEM nor base64 of a raw 32-byte Ed25519 {kind} key"
        )
    return raw


def private_key_from(spec: str, source: str = "signing key") -> Ed25519PrivateKey:
    """A private key from PEM text, base64 of its raw 32 bytes, or a file holding either."""
    data, where = _key_text(spec, source, secret=True)
    raw = _raw(data, where, "private")
    if raw is not None:
        return Ed25519PrivateKey.from_private_bytes(raw)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningError(f"{where} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{where} is a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_private_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The signing key from ``path``, else from ``$EDGEPROOF_SIGNING_KEY``."""
    if path is not None:
        return private_key_from(str(path.expanduser().resolve()), f"key file {path}")
    value = os.environ.get(KEY_ENV, "")
    if not value.strip():
        raise SigningError(f"no signing key: set {KEY_ENV} or give a key file")
    return private_key_from(value, KEY_ENV)


def load_private_key_if_configured(path: Path | None = None) -> Ed25519PrivateKey | None:
    """The signing key when one is given (``path`` or the variable), else None."""
    if path is None and not os.environ.get(KEY_ENV, "").strip():
        return None
    return load_private_key(path)


def signing_key(root: Path, config: SigningConfig) -> Ed25519PrivateKey | None:
    """A run's evidence key: ``signing.key_file`` (relative to the project at ``root``),
    else ``$EDGEPROOF_SIGNING_KEY``; None when neither is set, an error when required."""
    path = None if config.key_file is None else root / config.key_file
    key = load_private_key_if_configured(path)
    if key is None and config.required:
        raise SigningError(
            f"params.yaml: signing.required: no signing key (set {KEY_ENV} or signing.key_file)"
        )
    return key


def trusted_key_spec(given: str | None, root: Path, config: SigningConfig) -> str | Path | None:
    """Which public key to trust: ``--public-key``, else ``$EDGEPROOF_PUBLIC_KEY`` (None
    here: :func:`load_public_key` reads it), else ``signing.public_key`` (a file named
    there is relative to the project at ``root``)."""
    if given is not None or os.environ.get(PUBLIC_KEY_ENV, "").strip():
        return given
    if config.public_key is None:
        return None
    as_file = root / config.public_key
    return as_file if as_file.is_file() else config.public_key


def load_public_key(spec: str | Path | None = None) -> Ed25519PublicKey:
    """A public key from base64 of its raw 32 bytes, PEM text, or a file holding either;
    ``$EDGEPROOF_PUBLIC_KEY`` when ``spec`` is None."""
    source = "public key"
    if spec is None:
        spec, source = os.environ.get(PUBLIC_KEY_ENV, ""), PUBLIC_KEY_ENV
        if not spec.strip():
            raise SigningError(f"no public key: pass --public-key or set {PUBLIC_KEY_ENV}")
    if isinstance(spec, Path):
        spec = str(spec.expanduser().resolve())
    data, where = _key_text(spec, source, secret=False)
    raw = _raw(data, where, "public")
    if raw is not None:
        return Ed25519PublicKey.from_public_bytes(raw)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SigningError(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{where} is a {type(key).__name__}, not an Ed25519 public key")
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    """Base64 of the raw 32 public key bytes (the form params and the CLI take)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(evidence_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The raw 64-byte Ed25519 signature of ``evidence_bytes`` (canonical bytes)."""
    return key.sign(evidence_bytes)


def signature_json(evidence_text: str, key: Ed25519PrivateKey) -> str:
    """The signature file of an ``evidence.json`` text."""
    body = canonical_text_bytes(evidence_text)
    document = {
        "schema": SIGNATURE_SCHEMA,
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "evidence_sha256": hashlib.sha256(body).hexdigest(),
        "signature": base64.b64encode(sign(body, key)).decode(),
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def verify(evidence_text: str, signature_text: str, public_key: Ed25519PublicKey) -> str:
    """Check a signature file against an ``evidence.json`` text; the key id on success.

    Raises ``EvidenceRefused`` (one line) when the signature file is malformed, was made
    with another key, or does not match the evidence.
    """
    try:
        document = json.loads(signature_text)
        signature = base64.b64decode(document["signature"], validate=True)
        schema, algorithm, signer = (
            document["schema"],
            document["algorithm"],
            str(document.get("key_id", "")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, binascii.Error, ValueError):
        raise EvidenceRefused("signature file is not an edgeproof signature") from None
    if schema != SIGNATURE_SCHEMA or algorithm != ALGORITHM:
        raise EvidenceRefused(f"unsupported signature ({schema}, {algorithm})")
    expected = key_id(public_key)
    if signer != expected:
        raise EvidenceRefused(
            f"evidence was signed by key {signer or 'unknown'}, not by the trusted key {expected}"
        )
    try:
        public_key.verify(signature, canonical_text_bytes(evidence_text))
    except InvalidSignature:
        raise EvidenceRefused(
            f"signature by key {expected} does not match the evidence (evidence changed)"
        ) from None
    return expected
