"""The device id: hashed board serial or machine-id, read under a root folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeproof.measure.fingerprint import (
    FIELDS,
    device_fingerprint,
    device_id,
    device_mismatch,
    fingerprint_digest,
)
from tests.helpers import ROOT

SYSFS = ROOT / "tests" / "fixtures" / "sysfs"
PI, LAPTOP = SYSFS / "rpi5" / "start", SYSFS / "x86-laptop"


def test_pi_id_comes_from_the_device_tree_serial_hashed() -> None:
    ident = device_id(PI)
    assert ident is not None and ident.startswith("serial:") and len(ident) == len("serial:") + 16
    assert "6d3a2f1c8b9e4057" not in ident
    assert device_id(SYSFS / "rpi5" / "end") == ident  # the same board a block later


def test_pi_serial_from_cpuinfo_without_a_device_tree(tmp_path: Path) -> None:
    root = tmp_path / "pi"
    shutil.copytree(PI, root)
    shutil.rmtree(root / "proc/device-tree")
    assert device_id(root) == device_id(PI)


def test_laptop_id_comes_from_machine_id_hashed() -> None:
    ident = device_id(LAPTOP)
    assert ident is not None and ident.startswith("machine-id:")
    assert "0f8e3c1b7a2d4e569b0c1d2e3f405162" not in ident


def test_two_boards_differ_and_two_pis_of_one_pool_too(tmp_path: Path) -> None:
    assert device_id(PI) != device_id(LAPTOP)
    other = tmp_path / "pi-b"
    shutil.copytree(PI, other)
    (other / "proc/device-tree/serial-number").write_bytes(b"6d3a2f1c8b9e4058\x00")
    (other / "proc/cpuinfo").write_text(
        (PI / "proc/cpuinfo").read_text().replace("6d3a2f1c8b9e4057", "6d3a2f1c8b9e4058")
    )
    assert device_id(other) is not None and device_id(other) != device_id(PI)


def test_nothing_readable_gives_no_id(tmp_path: Path) -> None:
    assert device_id(tmp_path) is None
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("Serial\t\t: 0000000000000000\n")
    assert device_id(tmp_path) is None


def test_the_id_is_kept_apart_from_the_hardware_digest() -> None:
    env = {"cpu_model": "Cortex-A76", "cpu_count": 4, "platform": "Linux-6.6"}
    a = device_fingerprint({**env, "device_id": device_id(PI)}, {})
    b = device_fingerprint({**env, "device_id": device_id(LAPTOP)}, {})
    assert a["device_id"] != b["device_id"] and "device_id" not in FIELDS
    assert fingerprint_digest(a) == fingerprint_digest(b)  # same kind of hardware
    assert device_mismatch(a, b) == (
        f"another device: {a['device_id']} (champion) vs {b['device_id']} (this run)"
    )
    assert device_mismatch(a, a) is None and device_mismatch(a, env) is None
