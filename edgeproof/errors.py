"""Error types that map to edgeproof's exit codes (0 pass, 1 gate blocked, 2 error).

Every user-facing error carries a one-line message naming the problem; the CLI prints
that line and exits 2, with a traceback only under ``--debug``.
"""


class EdgeproofError(Exception):
    """An expected failure with a one-line, user-readable message (exit code 2)."""


class ConfigError(EdgeproofError):
    """params.yaml is missing, malformed, or has an unknown key or bad value."""


class InputError(EdgeproofError):
    """A model or data file is missing, corrupt, or does not match the model."""


class TargetUnavailable(EdgeproofError):
    """A target's runtime or device is not present on this runner."""


class MeasurementError(EdgeproofError):
    """A measurement subprocess crashed, hung, or reported an error."""


class TrackingError(EdgeproofError):
    """The MLflow store cannot be reached or written."""


class RegistryConflict(EdgeproofError):
    """Another run moved an alias, or holds the registry lock, while this one worked."""


class RegistryRefused(EdgeproofError):
    """A registry change asked for is not allowed (unknown version, never gated, ...)."""


class SigningError(EdgeproofError):
    """A signing or public key is missing or unreadable (never shows the key itself)."""


class EvidenceRefused(EdgeproofError):
    """Evidence, its signature or a file it names does not check out (exit code 1)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one short line: its first line, else its type's name."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
