"""Device fingerprints: what is recorded, what refuses a comparison, and the digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeproof.measure.environment import power_mode
from edgeproof.measure.fingerprint import (
    HARDWARE_FIELDS,
    device_fingerprint,
    fingerprint_digest,
    fingerprint_mismatch,
)

XEON = "Intel(R) Xeon(R) Platinum 8480+"
EPYC = "AMD EPYC 9654 96-Core Processor"


def _environment(**overrides: Any) -> dict[str, Any]:
    env = {
        "cpu_model": XEON,
        "cpu_count": 8,
        "cpu_flags": ["fma", "avx2", "avx512f", "avx512_vnni", "amx_int8"],
        "platform": "Linux-6.8.0-45-generic-x86_64-with-glibc2.39",
        "python": "3.11.9",
        "loadavg_1m": 0.4,
        "cpu_mhz": 2000,
        "temperature_c": 41.0,
    }
    return {**env, **overrides}


def _info(**overrides: Any) -> dict[str, Any]:
    info = {
        "runtime": "openvino",
        "runtime_version": "2026.4.1-19000-abcdef",
        "device": "CPU",
        "precision": "int8",
        "inference_precision": "f32",
        "threads": 2,
    }
    return {**info, **overrides}


def _fp(env: dict[str, Any] | None = None, info: dict[str, Any] | None = None) -> dict[str, Any]:
    return device_fingerprint(env or _environment(), info or _info())


def test_fingerprint_keeps_speed_fields_only() -> None:
    fp = _fp(_environment(power_mode="nvpmodel:MAXN"))
    assert fp == {
        "cpu_model": XEON,
        "cpu_count": 8,
        "cpu_flags": ["amx_int8", "avx2", "avx512_vnni", "avx512f", "fma"],
        "os": "Linux",
        "runtime": "openvino",
        "runtime_version": "2026.4.1-19000-abcdef",
        "device": "CPU",
        "threads": 2,
        "precision": "int8",
        "inference_precision": "f32",
        "power_mode": "nvpmodel:MAXN",
    }


def test_onnxruntime_provider_is_the_device_and_unknowns_are_omitted() -> None:
    info = {
        "runtime": "onnxruntime",
        "runtime_version": "1.31.1",
        "provider": "CPUExecutionProvider",
        "precision": "fp32",
        "threads": 4,
    }
    fp = device_fingerprint({"cpu_model": XEON, "platform": "macOS-14.5-arm64-arm-64bit"}, info)
    assert fp["device"] == "CPUExecutionProvider"
    assert fp["os"] == "macOS"
    assert "power_mode" not in fp and "cpu_flags" not in fp and "inference_precision" not in fp


def test_identical_fingerprints_match() -> None:
    assert fingerprint_mismatch(_fp(), _fp()) == []


def test_irrelevant_differences_are_ignored() -> None:
    other = _environment(python="3.11.12", loadavg_1m=3.9, cpu_mhz=3100, temperature_c=77.0)
    assert fingerprint_mismatch(_fp(), _fp(other)) == []


def test_cpu_model_difference_names_both_sides() -> None:
    reasons = fingerprint_mismatch(_fp(), _fp(_environment(cpu_model=EPYC)))
    assert reasons == [f"cpu_model differs: '{XEON}' (champion) vs '{EPYC}' (this run)"]


def test_lost_and_gained_flags_are_named_with_custom_labels() -> None:
    current = _fp(_environment(cpu_flags=["fma", "avx2", "avx512f", "amx_int8", "avx_vnni"]))
    reasons = fingerprint_mismatch(_fp(), current, reference_label="recorded", current_label="now")
    assert len(reasons) == 1
    assert "avx512_vnni in recorded but not in now" in reasons[0]
    assert "avx_vnni in now but not in recorded" in reasons[0]
    assert "amx_int8" not in reasons[0]


def test_non_speed_flag_differences_are_ignored() -> None:
    current = _fp(
        _environment(
            cpu_flags=["fma", "avx2", "avx512f", "avx512_vnni", "amx_int8", "sse4_2", "aes"]
        )
    )
    assert fingerprint_mismatch(_fp(), current) == []


def test_thread_and_precision_changes_are_flagged() -> None:
    reasons = fingerprint_mismatch(_fp(), _fp(info=_info(threads=4, inference_precision="bf16")))
    assert reasons == [
        "threads differ: 2 (champion) vs 4 (this run)",
        "inference_precision differs: 'f32' (champion) vs 'bf16' (this run)",
    ]


def test_runtime_patch_bump_ignored_minor_bump_flagged() -> None:
    ort = {"runtime": "onnxruntime", "runtime_version": "1.31.1"}
    assert fingerprint_mismatch(ort, {**ort, "runtime_version": "1.31.2"}) == []
    reasons = fingerprint_mismatch(ort, {**ort, "runtime_version": "1.32.0"})
    assert reasons == ["runtime_version differs: '1.31.1' (champion) vs '1.32.0' (this run)"]
    # another runtime: one reason, not a second one about its version
    other = fingerprint_mismatch(ort, {"runtime": "openvino", "runtime_version": "2026.4.1"})
    assert len(other) == 1 and other[0].startswith("runtime differs")


def test_missing_fields_are_not_a_mismatch() -> None:
    assert fingerprint_mismatch({}, _fp()) == []
    assert fingerprint_mismatch(_fp(), {}) == []
    partial = {"cpu_model": XEON, "threads": None}
    assert fingerprint_mismatch(partial, _fp(info=_info(threads=16))) == []
    assert fingerprint_mismatch(partial, {"cpu_model": EPYC}) != []


def test_power_mode_from_jetson_files(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n"
        "< POWER_MODEL ID=1 NAME=25W >\n< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n"
        "< POWER_MODEL ID=3 NAME=7W >\n< PM_CONFIG DEFAULT=0 >\n"
    )
    assert power_mode(tmp_path) == "nvpmodel:15W"  # no status yet: the default mode
    (tmp_path / "var/lib/nvpmodel").mkdir(parents=True)
    (tmp_path / "var/lib/nvpmodel/status").write_text("pmode:0002 fmode:quiet\n")
    assert power_mode(tmp_path) == "nvpmodel:MAXN_SUPER"


def test_power_mode_from_acpi_profile_or_none(tmp_path: Path) -> None:
    assert power_mode(tmp_path) is None
    (tmp_path / "sys/firmware/acpi").mkdir(parents=True)
    (tmp_path / "sys/firmware/acpi/platform_profile").write_text("low-power\n")
    assert power_mode(tmp_path) == "platform_profile:low-power"
    env = _environment(power_mode=power_mode(tmp_path))
    reasons = fingerprint_mismatch(
        _fp(_environment(power_mode="platform_profile:performance")), _fp(env)
    )
    assert reasons == [
        "power_mode differs: 'platform_profile:performance' (champion) "
        "vs 'platform_profile:low-power' (this run)"
    ]


def test_digest_stable_across_key_order_and_patch_versions() -> None:
    fp = _fp()
    shuffled = dict(reversed(list(fp.items())))
    shuffled["cpu_flags"] = list(reversed(fp["cpu_flags"]))
    digest = fingerprint_digest(fp)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert fingerprint_digest(shuffled) == digest
    assert fingerprint_digest({**fp, "runtime_version": "2026.4.7"}) == digest
    assert fingerprint_digest(_fp(_environment(cpu_model=EPYC))) != digest
    assert fingerprint_digest({**fp, "threads": 4}) != digest


def test_hardware_digest_is_shared_by_every_runtime_on_one_device() -> None:
    ort = _fp(info=_info(runtime="onnxruntime", runtime_version="1.31.1", threads=2))
    ov = _fp(info=_info(runtime="openvino", runtime_version="2026.4.1", threads=1))
    assert fingerprint_digest(ort) != fingerprint_digest(ov)
    assert fingerprint_digest(ort, HARDWARE_FIELDS) == fingerprint_digest(ov, HARDWARE_FIELDS)
    other = _fp(_environment(cpu_count=4), _info())
    assert fingerprint_digest(other, HARDWARE_FIELDS) != fingerprint_digest(ort, HARDWARE_FIELDS)
