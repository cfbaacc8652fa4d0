"""The device fingerprint recorded with every measurement, and the apples-to-oranges guard.

A latency or speedup recorded on one machine says little about another: a different CPU,
core count, lost VNNI/AMX instructions, another runtime minor version, thread count,
execution precision or power mode each change timings more than any gate tolerance. The
fingerprint keeps exactly those fields; ``fingerprint_mismatch`` names every one that
differs between a reference (the champion's evidence) and the current measurement, and
``fingerprint_digest`` groups measurements by device. Things that vary from minute to
minute (load, frequency, temperature) or do not affect speed (Python patch version) are
left out on purpose. As in ``environment.machine_state``, unknown fields are left out,
never guessed.

The fingerprint also carries ``device_id`` (``identity.device_id``: the board's serial or
the machine-id, hashed), which is *not* one of ``FIELDS``: the digest and
``fingerprint_mismatch`` keep meaning "the same kind of hardware" (two boards of one pool
are comparable), while ``device_mismatch`` says whether it is the very same board.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from edgeproof.measure.environment import SPEED_FLAGS
from edgeproof.measure.identity import device_id

__all__ = [
    "DEVICE_ID",
    "FIELDS",
    "HARDWARE_FIELDS",
    "device_fingerprint",
    "device_id",
    "device_mismatch",
    "fingerprint_digest",
    "fingerprint_mismatch",
]

# fields compared and digested, in report order
FIELDS = (
    "cpu_model",
    "cpu_count",
    "cpu_flags",
    "os",
    "runtime",
    "runtime_version",
    "device",
    "threads",
    "precision",
    "inference_precision",
    "power_mode",
)
# the machine itself, whatever runtime measured on it (groups targets per device)
HARDWARE_FIELDS = ("cpu_model", "cpu_count", "cpu_flags", "os", "power_mode")
# the board itself (not in FIELDS: not part of the digest nor of fingerprint_mismatch)
DEVICE_ID = "device_id"
_MAJOR_MINOR = re.compile(r"^\s*v?(\d+)\.(\d+)")


def device_fingerprint(environment: dict[str, Any], session_info: dict[str, Any]) -> dict[str, Any]:
    """The speed-relevant fields of a ``machine_state()`` and a session's ``info``.

    ``device`` is the session's device (OpenVINO) or, failing that, its execution provider
    (onnxruntime); ``power_mode`` comes from ``environment["power_mode"]`` (see
    ``environment.power_mode()``), ``device_id`` from ``environment["device_id"]``. Fields
    unknown on either input are omitted.
    """
    platform_name = environment.get("platform")
    flags = environment.get("cpu_flags")
    fp: dict[str, Any] = {
        "cpu_model": environment.get("cpu_model"),
        "cpu_count": environment.get("cpu_count"),
        "cpu_flags": sorted(flags) if flags is not None else None,
        "os": str(platform_name).split("-", 1)[0] if platform_name else None,
        "runtime": session_info.get("runtime"),
        "runtime_version": session_info.get("runtime_version"),
        "device": session_info.get("device") or session_info.get("provider"),
        "threads": session_info.get("threads"),
        "precision": session_info.get("precision"),
        "inference_precision": session_info.get("inference_precision"),
        "power_mode": environment.get("power_mode"),
        DEVICE_ID: environment.get(DEVICE_ID),
    }
    return {k: v for k, v in fp.items() if v is not None}


def fingerprint_mismatch(
    reference: dict[str, Any],
    current: dict[str, Any],
    reference_label: str = "champion",
    current_label: str = "this run",
) -> list[str]:
    """One line per speed-relevant difference; [] when the two are comparable.

    A field missing (or None) on either side is not compared: an old record without a
    fingerprint, or a platform that cannot read a field, is never refused for lacking it.
    ``runtime_version`` is compared as major.minor (a patch bump is not a difference) and
    only when the runtimes agree; ``cpu_flags`` only over ``SPEED_FLAGS``, naming each
    flag lost or gained.
    """
    reasons = []
    for name in FIELDS:
        ref, cur = reference.get(name), current.get(name)
        if ref is None or cur is None:
            continue
        if name == "cpu_flags":
            reason = _flags_reason(ref, cur, reference_label, current_label)
        elif name == "runtime_version":
            same_runtime = reference.get("runtime") == current.get("runtime")
            differs = same_runtime and _major_minor(ref) != _major_minor(cur)
            reason = _differs(name, ref, cur, reference_label, current_label) if differs else None
        elif ref != cur:
            reason = _differs(name, ref, cur, reference_label, current_label)
        else:
            reason = None
        if reason:
            reasons.append(reason)
    return reasons


def device_mismatch(
    reference: dict[str, Any],
    current: dict[str, Any],
    reference_label: str = "champion",
    current_label: str = "this run",
) -> str | None:
    """One line when two fingerprints come from different boards (their ``device_id``s
    differ), else None; a fingerprint without a ``device_id`` (an old record, a device
    exposing neither serial nor machine-id) is never called different."""
    ref, cur = reference.get(DEVICE_ID), current.get(DEVICE_ID)
    if ref is None or cur is None or ref == cur:
        return None
    return f"another device: {ref} ({reference_label}) vs {cur} ({current_label})"


def fingerprint_digest(fp: dict[str, Any], fields: tuple[str, ...] = FIELDS) -> str:
    """12 hex digits of sha256 over the canonical JSON of ``fields`` (default: all compared).

    Normalized as ``fingerprint_mismatch`` compares: speed flags only, sorted; runtime
    version as major.minor. Two complete fingerprints share a digest when comparable;
    with ``HARDWARE_FIELDS``, two runtimes measured on one device share it.
    """
    canonical = {}
    for name in fields:
        value = fp.get(name)
        if value is None:
            continue
        if name == "cpu_flags":
            value = sorted(set(value) & set(SPEED_FLAGS))
        elif name == "runtime_version":
            value = _major_minor(value)
        canonical[name] = value
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _flags_reason(ref: Any, cur: Any, ref_label: str, cur_label: str) -> str | None:
    ref_set, cur_set = set(ref) & set(SPEED_FLAGS), set(cur) & set(SPEED_FLAGS)
    lost = [f for f in SPEED_FLAGS if f in ref_set - cur_set]
    gained = [f for f in SPEED_FLAGS if f in cur_set - ref_set]
    parts = []
    if lost:
        parts.append(f"{', '.join(lost)} in {ref_label} but not in {cur_label}")
    if gained:
        parts.append(f"{', '.join(gained)} in {cur_label} but not in {ref_label}")
    return f"cpu_flags differ: {'; '.join(parts)}" if parts else None


def _differs(name: str, ref: Any, cur: Any, ref_label: str, cur_label: str) -> str:
    verb = "differ" if name.endswith("s") and name != "os" else "differs"
    return f"{name} {verb}: {ref!r} ({ref_label}) vs {cur!r} ({cur_label})"


def _major_minor(version: Any) -> str:
    match = _MAJOR_MINOR.match(str(version))
    return f"{match.group(1)}.{match.group(2)}" if match else str(version).strip()
