"""Device-side commands: pull a signed champion, sign and verify evidence signatures.

``register(app)`` adds them to the ``edgeproof`` command. Exit codes: 0 ok, 1 refused (a
signature or a file does not match its evidence: nothing was written), 2 an error (bad
key, unreachable registry, bad input). Key material is never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeproof.errors import EdgeproofError, EvidenceRefused

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

PublicKeyOption = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        help="Trusted Ed25519 public key: base64 of its 32 bytes, PEM, or a file "
        "(default: $EDGEPROOF_PUBLIC_KEY, else signing.public_key in params.yaml).",
    ),
]
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to use.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def _exit(exc: BaseException, debug: bool) -> typer.Exit:
    """Print the one-line error; exit 1 for a refusal, 2 for any other error."""
    if debug:
        err.print_exception()
    refused = isinstance(exc, EvidenceRefused)
    err.print(f"edgeproof: {'refused' if refused else 'error'}: {exc}", markup=False)
    return typer.Exit(1 if refused else 2)


def pull_command(
    target: Annotated[str, typer.Option("--target", help="Target whose model to pull.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) folder to pull into.")],
    alias: Annotated[str | None, typer.Option("--alias", help="Default: champion.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (default: model.name).")
    ] = None,
    public_key: PublicKeyOption = None,
    params: ParamsOption = Path("params.yaml"),
    debug: DebugOption = False,
) -> None:
    """Download the alias's model files, check them and the evidence's signature, then move
    them into --out (exit 1 and nothing written if anything does not match)."""
    from edgeproof.device.pull import pull
    from edgeproof.params.model import load_params
    from edgeproof.tracking.mlflow_store import MlflowStore
    from edgeproof.tracking.signing import load_public_key, trusted_key_spec

    try:
        loaded = load_params(params)
        key = load_public_key(trusted_key_spec(public_key, params.parent, loaded.signing))
        store = MlflowStore(loaded.tracking)
        pulled = pull(
            store, loaded.registry, model or loaded.model.name, target, alias, out_dir, key
        )
    except (EdgeproofError, OSError) as exc:
        raise _exit(exc, debug) from None
    out.print(
        f"pulled {pulled.registered_model} v{pulled.version} (@{pulled.alias}, evidence "
        f"signed by key {pulled.key_id}): {len(pulled.files)} file(s) into {pulled.out_dir}",
        markup=False,
    )


def sign_evidence_command(
    evidence: Annotated[Path, typer.Argument(help="evidence.json to sign.")],
    key_file: Annotated[
        Path | None,
        typer.Option("--key", help="Private key file (default: $EDGEPROOF_SIGNING_KEY)."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Write EVIDENCE.sig, the Ed25519 signature of an evidence.json."""
    from edgeproof.tracking.signing import load_private_key, signature_json

    try:
        key = load_private_key(key_file)
        signature = signature_json(evidence.read_text(encoding="utf-8"), key)
        target = evidence.with_name(evidence.name + ".sig")
        target.write_text(signature, encoding="utf-8")
    except (EdgeproofError, OSError) as exc:
        raise _exit(exc, debug) from None
    out.print(f"signed {evidence} -> {target}", markup=False)


def verify_signature_command(
    evidence: Annotated[Path, typer.Argument(help="evidence.json whose signature to check.")],
    signature: Annotated[
        Path | None, typer.Option("--signature", help="Default: EVIDENCE.sig beside it.")
    ] = None,
    public_key: PublicKeyOption = None,
    debug: DebugOption = False,
) -> None:
    """Check that an evidence.json was signed by the trusted key (exit 1 if not)."""
    from edgeproof.tracking.signing import load_public_key, verify

    signature = signature or evidence.with_name(evidence.name + ".sig")
    try:
        key = load_public_key(public_key)
        key_id = verify(
            evidence.read_text(encoding="utf-8"), signature.read_text(encoding="utf-8"), key
        )
    except (EdgeproofError, OSError) as exc:
        raise _exit(exc, debug) from None
    out.print(f"{evidence}: signature ok (key {key_id})", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``pull``, ``sign-evidence`` and ``verify-signature`` to ``app``."""
    app.command("pull")(pull_command)
    app.command("sign-evidence")(sign_evidence_command)
    app.command("verify-signature")(verify_signature_command)
