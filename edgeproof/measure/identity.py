"""A stable id of the device itself, so two boards of one kind are told apart.

The fingerprint (``fingerprint.py``) says what *kind* of hardware measured (CPU, cores,
flags, power mode): two Raspberry Pi 5 of one pool share it. ``device_id`` names the board:

1. its serial number where the firmware exposes one: the device tree's
   ``serial-number`` (``proc/device-tree/`` or ``sys/firmware/devicetree/base/``), else
   the ``Serial`` line of ``proc/cpuinfo`` (Raspberry Pi); an all-zero serial is none;
2. else the systemd/D-Bus ``etc/machine-id`` (one per OS installation).

Neither is recorded raw: machine-id is meant to stay confidential (machine-id(5): hash
it with an application key), so both are hashed with edgeproof's own key into
``"serial:<16 hex>"`` or ``"machine-id:<16 hex>"``; the prefix says which source, so an id
from the board's serial never equals one from an OS installation. Everything is read under
``root`` (``/`` on a device, a recorded tree in tests). None where neither is readable.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SERIAL_FILES = ("proc/device-tree/serial-number", "sys/firmware/devicetree/base/serial-number")
MACHINE_ID_FILES = ("etc/machine-id", "var/lib/dbus/machine-id")
_KEY = "edgeproof-device-id/1"
_CPUINFO_SERIAL = re.compile(r"^Serial\s*:\s*([0-9A-Za-z]+)\s*$", re.MULTILINE)


def device_id(root: Path = Path("/")) -> str | None:
    """``"serial:<hash>"``, ``"machine-id:<hash>"`` or None (see the module doc)."""
    root = Path(root)
    serial = board_serial(root)
    if serial:
        return f"serial:{_digest('serial', serial)}"
    for name in MACHINE_ID_FILES:
        text = _read(root / name)
        if text and re.fullmatch(r"[0-9a-fA-F]{32}", text):
            return f"machine-id:{_digest('machine-id', text.lower())}"
    return None


def board_serial(root: Path = Path("/")) -> str | None:
    """The board's serial number (raw: for hashing, not for records), or None."""
    for name in SERIAL_FILES:
        text = _read(root / name)
        if text:
            text = text.strip("\x00").strip()
            if _usable(text):
                return text
    match = _CPUINFO_SERIAL.search(_read(root / "proc/cpuinfo") or "")
    if match and _usable(match.group(1)):
        return match.group(1)
    return None


def _usable(serial: str) -> bool:
    return bool(serial) and set(serial) != {"0"}


def _digest(source: str, value: str) -> str:
    return hashlib.sha256(f"{_KEY}:{source}:{value}".encode()).hexdigest()[:16]


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace").strip()
    except OSError:
        return None
