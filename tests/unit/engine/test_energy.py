"""Energy counters: a fixture powercap tree in tmp_path and recorded tegrastats streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.measure.energy import (
    EnergyReading,
    RaplCounter,
    energy_from_tegrastats,
    measure_energy,
    parse_tegrastats_line,
    tegrastats_reading,
)

MAX_RANGE = 262_143_328_850  # a real max_energy_range_uj

# Jetson Orin Nano, JetPack 6 (tegrastats --interval 500), with a blank line in the middle
ORIN_NANO = """\
04-25-2025 10:15:01 RAM 2448/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,8%@1510,5%@1510,9%@1510,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@47.5C soc2@46.2C soc0@45.9C gpu@46.6C tj@47.5C soc1@46.4C VDD_IN 5012mW/4980mW VDD_CPU_GPU_CV 1202mW/1150mW VDD_SOC 1440mW/1420mW
04-25-2025 10:15:01 RAM 2451/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) CPU [64%@1510,58%@1510,61%@1510,70%@1510,off,off] EMC_FREQ 2%@2133 GR3D_FREQ 0%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@48.1C soc2@46.3C soc0@46.0C gpu@46.7C tj@48.1C soc1@46.5C VDD_IN 5230mW/5021mW VDD_CPU_GPU_CV 1410mW/1187mW VDD_SOC 1451mW/1424mW

04-25-2025 10:15:02 RAM 2453/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) CPU [99%@1510,97%@1510,98%@1510,99%@1510,off,off] EMC_FREQ 5%@2133 GR3D_FREQ 0%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@49.0C soc2@46.5C soc0@46.1C gpu@46.9C tj@49.0C soc1@46.6C VDD_IN 6104mW/5199mW VDD_CPU_GPU_CV 2205mW/1398mW VDD_SOC 1502mW/1438mW
04-25-2025 10:15:02 RAM 2453/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) CPU [98%@1510,99%@1510,97%@1510,98%@1510,off,off] EMC_FREQ 5%@2133 GR3D_FREQ 0%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@49.6C soc2@46.6C soc0@46.2C gpu@47.0C tj@49.6C soc1@46.7C VDD_IN 6120mW/5340mW VDD_CPU_GPU_CV 2231mW/1537mW VDD_SOC 1506mW/1449mW
04-25-2025 10:15:03 RAM 2452/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) CPU [97%@1510,98%@1510,99%@1510,96%@1510,off,off] EMC_FREQ 5%@2133 GR3D_FREQ 0%@[305] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@50.0C soc2@46.8C soc0@46.3C gpu@47.1C tj@50.0C soc1@46.8C VDD_IN 5980mW/5420mW VDD_CPU_GPU_CV 2150mW/1625mW VDD_SOC 1499mW/1456mW
"""  # noqa: E501
ORIN_VDD_IN_MW = (5012, 5230, 6104, 6120, 5980)  # sum 28446
ORIN_CPU_GPU_MW = (1202, 1410, 2205, 2231, 2150)  # sum 9198

# Jetson Nano, JetPack 4 (tegrastats, default 1000 ms): no mW unit, POM_ rails
NANO = """\
RAM 1562/3956MB (lfb 112x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [14%@1479,9%@1479,11%@1479,6%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@76 APE 25 PLL@31C CPU@33.5C PMIC@100C GPU@32C AO@40C thermal@32.75C POM_5V_IN 3126/3140 POM_5V_GPU 0/0 POM_5V_CPU 725/775
RAM 1570/3956MB (lfb 112x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [71%@1479,68%@1479,74%@1479,70%@1479] EMC_FREQ 6%@1600 GR3D_FREQ 0%@76 APE 25 PLL@31.5C CPU@34C PMIC@100C GPU@32C AO@40.5C thermal@33C POM_5V_IN 3502/3321 POM_5V_GPU 0/0 POM_5V_CPU 1104/940
RAM 1571/3956MB (lfb 112x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [100%@1479,99%@1479,100%@1479,98%@1479] EMC_FREQ 9%@1600 GR3D_FREQ 0%@76 APE 25 PLL@32C CPU@35C PMIC@100C GPU@32.5C AO@41C thermal@33.5C POM_5V_IN 4010/3551 POM_5V_GPU 0/0 POM_5V_CPU 1602/1160
RAM 1571/3956MB (lfb 112x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [99%@1479,100%@1479,99%@1479,100%@1479] EMC_FREQ 9%@1600 GR3D_FREQ 0%@76 APE 25 PLL@32.5C CPU@35.5C PMIC@100C GPU@32.5C AO@41C thermal@34C POM_5V_IN 3980/3658 POM_5V_GPU 0/0 POM_5V_CPU 1571/1263
RAM 1572/3956MB (lfb 112x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [98%@1479,97%@1479,100%@1479,99%@1479] EMC_FREQ 9%@1600 GR3D_FREQ 0%@76 APE 25 PLL@33C CPU@36C PMIC@100C GPU@33C AO@41.5C thermal@34.5C POM_5V_IN 3874/3701 POM_5V_GPU 0/0 POM_5V_CPU 1489/1308
"""  # noqa: E501

# Jetson AGX Xavier: rails without a total input rail
XAVIER = (
    "RAM 3150/31927MB (lfb 7054x4MB) CPU [2%@1190,1%@1190] EMC_FREQ 0% GR3D_FREQ 0% "
    "AO@36C GPU@36.5C Tdiode@38.5C GPU 0/0 CPU 463/463 SOC 1388/1388 CV 0/0 VDDRQ 154/154 "
    "SYS5V 1656/1656"
)


def _domain(path: Path, name: str, energy_uj: int, max_range: int = MAX_RANGE) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Two packages (package-1 about to wrap), a core subdomain, psys and an mmio twin."""
    root = tmp_path / "powercap"
    _domain(root / "intel-rapl:0", "package-0", 1_000_000)
    _domain(root / "intel-rapl:0:0", "core", 400_000)
    _domain(root / "intel-rapl:1", "package-1", 262_142_000_000)
    _domain(root / "intel-rapl:2", "psys", 9_000_000)
    _domain(root / "intel-rapl-mmio:0", "package-0", 5)
    return root


def _set(root: Path, domain: str, energy_uj: int) -> None:
    (root / domain / "energy_uj").write_text(f"{energy_uj}\n")


def test_discover_finds_packages_only_by_default(powercap: Path) -> None:
    probe = RaplCounter.discover(powercap)
    assert probe.counter is not None, probe.reason
    assert [d.label for d in probe.counter.domains] == ["package-0", "package-1"]
    assert probe.counter.source == "rapl:package-0+package-1"
    assert probe.counter.read() == {"package-0": 1_000_000, "package-1": 262_142_000_000}


def test_discover_with_subdomains_labels_them_by_package(powercap: Path) -> None:
    counter = RaplCounter.discover(powercap, subdomains=True).counter
    assert counter is not None
    labels = [d.label for d in counter.domains]
    assert labels == ["package-0", "package-0/core", "package-1", "psys"]
    assert counter.source == "rapl:package-0+package-1"


def test_energy_between_handles_wraparound_and_skips_subdomains(powercap: Path) -> None:
    counter = RaplCounter.discover(powercap, subdomains=True).counter
    assert counter is not None
    before = counter.read()
    _set(powercap, "intel-rapl:0", 3_500_000)  # +2.5 J
    _set(powercap, "intel-rapl:0:0", 1_400_000)  # +1.0 J, inside package-0
    _set(powercap, "intel-rapl:1", 1_000_000)  # wrapped: MAX - 262_142_000_000 + 1_000_000
    _set(powercap, "intel-rapl:2", 19_000_000)  # psys +10 J, overlaps the packages
    after = counter.read()
    per_domain = counter.domain_joules(before, after)
    assert per_domain["package-0"] == pytest.approx(2.5)
    assert per_domain["package-1"] == pytest.approx(2.32885)
    assert per_domain["package-0/core"] == pytest.approx(1.0)
    assert per_domain["psys"] == pytest.approx(10.0)
    assert counter.energy_between(before, after) == pytest.approx(4.82885)


def test_measure_energy_gives_mj_per_inference(powercap: Path) -> None:
    counter = RaplCounter.discover(powercap).counter
    assert counter is not None
    ticks = iter([10.0, 12.5])
    with measure_energy(counter, clock=lambda: next(ticks)) as window:
        _set(powercap, "intel-rapl:0", 3_500_000)
        _set(powercap, "intel-rapl:1", 1_000_000)
        window.inferences = 500
    reading = window.reading
    assert reading is not None
    assert reading.source == "rapl:package-0+package-1"
    assert reading.window_s == pytest.approx(2.5)
    assert reading.joules == pytest.approx(4.82885)
    assert reading.mj_per_inference == pytest.approx(9.6577)  # 4828.85 mJ / 500
    assert reading.mean_watts == pytest.approx(1.93154)


def test_measure_energy_computes_nothing_when_the_block_fails(powercap: Path) -> None:
    counter = RaplCounter.discover(powercap).counter
    assert counter is not None
    with pytest.raises(RuntimeError), measure_energy(counter) as window:
        window.inferences = 10
        raise RuntimeError("worker died")
    assert window.reading is None


def test_unreadable_counter_gives_no_counter_and_a_reason(powercap: Path) -> None:
    energy = powercap / "intel-rapl:1" / "energy_uj"
    energy.unlink()
    energy.mkdir()  # unreadable as a file even for root
    probe = RaplCounter.discover(powercap)
    assert probe.counter is None
    assert "intel-rapl:1" in probe.reason
    assert "directory" in probe.reason.lower()


def test_no_package_or_no_powercap(tmp_path: Path) -> None:
    assert "no powercap" in RaplCounter.discover(tmp_path / "missing").reason
    _domain(tmp_path / "pc" / "intel-rapl:0", "psys", 1)
    probe = RaplCounter.discover(tmp_path / "pc")
    assert probe.counter is None and "no intel-rapl package" in probe.reason


def test_parse_both_tegrastats_formats() -> None:
    orin = parse_tegrastats_line(ORIN_NANO.splitlines()[0])
    assert orin == {"VDD_IN": 5012.0, "VDD_CPU_GPU_CV": 1202.0, "VDD_SOC": 1440.0}
    nano = parse_tegrastats_line(NANO.splitlines()[0])
    assert nano == {"POM_5V_IN": 3126.0, "POM_5V_GPU": 0.0, "POM_5V_CPU": 725.0}  # not RAM/IRAM
    assert parse_tegrastats_line("") == {}


def test_tegrastats_energy_integrates_current_power() -> None:
    lines = ORIN_NANO.splitlines()
    assert energy_from_tegrastats(lines, 0.5) == pytest.approx(28446 / 1000 * 0.5)
    cpu = energy_from_tegrastats(lines, 0.5, rail="VDD_CPU_GPU_CV")
    assert cpu == pytest.approx(sum(ORIN_CPU_GPU_MW) / 1000 * 0.5)
    reading = tegrastats_reading(lines, 0.5, inferences=1000)
    assert reading.source == "tegrastats:VDD_IN"
    assert reading.window_s == pytest.approx(2.5)  # five samples, the blank line skipped
    assert reading.mj_per_inference == pytest.approx(14.223)  # 14223 mJ / 1000
    old = tegrastats_reading(NANO.splitlines(), 1.0, inferences=600)
    assert old.source == "tegrastats:POM_5V_IN"
    assert old.joules == pytest.approx(18.492)  # 3126+3502+4010+3980+3874 mW x 1 s
    assert old.mj_per_inference == pytest.approx(30.82)


def test_tegrastats_refuses_to_guess() -> None:
    with pytest.raises(ValueError, match="no total input rail"):
        energy_from_tegrastats([XAVIER], 1.0)
    assert energy_from_tegrastats([XAVIER, XAVIER], 1.0, rail="SYS5V") == pytest.approx(3.312)
    with pytest.raises(ValueError, match="missing in 1 of 2"):
        energy_from_tegrastats([*ORIN_NANO.splitlines()[:1], XAVIER], 1.0)
    with pytest.raises(ValueError, match="no power rails"):
        energy_from_tegrastats(["", "RAM 1/2MB"], 1.0)


def test_reading_needs_an_inference() -> None:
    with pytest.raises(ValueError):
        EnergyReading(joules=1.0, window_s=1.0, inferences=0, source="rapl:package-0")
