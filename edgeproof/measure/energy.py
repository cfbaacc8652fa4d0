"""Energy per inference, where the runner exposes an energy or power counter.

Two sources, both read-only and both optional:

* Linux powercap / RAPL (x86): ``/sys/class/powercap/intel-rapl:N/energy_uj`` is a
  cumulative µJ counter per CPU package that wraps at ``max_energy_range_uj``. Since Linux
  5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only, so discovery reports *why*
  it found no counter instead of failing. Package energy includes everything else running
  on the package (idle power, other processes): compare candidates measured the same way.
* Jetson ``tegrastats``: a line per interval with each power rail's current/average draw
  in mW; energy is the current draw integrated over the samples.

The result is an ``EnergyReading`` (joules over a window and the inferences run in it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
_PACKAGE = re.compile(r"^intel-rapl:(\d+)$")
_SUBDOMAIN = re.compile(r"^intel-rapl:(\d+):(\d+)$")
# "VDD_IN 5012mW/4980mW" (JetPack 5+) or "POM_5V_IN 3126/3140" (JetPack 4); a memory
# figure such as "RAM 2448/3964MB" is not a rail because of its unit
_RAIL = re.compile(r"(?<!\S)([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?!\S)")
# rails that carry the whole module's input power, most specific first
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


@dataclass(frozen=True)
class EnergyReading:
    """Energy spent over a measurement window and the inferences run in it."""

    joules: float
    window_s: float
    inferences: int
    source: str  # e.g. "rapl:package-0", "tegrastats:VDD_IN"

    def __post_init__(self) -> None:
        if self.inferences < 1:
            raise ValueError(f"an energy reading needs >= 1 inference, got {self.inferences}")
        if self.joules < 0 or self.window_s < 0:
            raise ValueError("energy and window must be >= 0")

    @property
    def mj_per_inference(self) -> float:
        """Millijoules per inference."""
        return self.joules * 1000.0 / self.inferences

    @property
    def mean_watts(self) -> float:
        """Average power over the window (0 for an empty window)."""
        return self.joules / self.window_s if self.window_s > 0 else 0.0


@dataclass(frozen=True)
class RaplDomain:
    """One powercap domain: its label, counter file and wrap range (µJ)."""

    label: str  # "package-0", or "package-0/core" for a subdomain
    energy_file: Path
    max_range_uj: int
    package: bool


@dataclass(frozen=True)
class EnergyProbe:
    """What discovery found: a usable counter, or None and the reason why not."""

    counter: RaplCounter | None
    reason: str


@dataclass(frozen=True)
class RaplCounter:
    """Cumulative RAPL energy counters of the CPU packages (and optionally the others).

    Only ``package-N`` domains count towards ``energy_between``: subdomains (core, uncore,
    dram) and ``psys`` overlap them and are reported per domain by ``domain_joules``.
    """

    domains: tuple[RaplDomain, ...]

    @property
    def source(self) -> str:
        """E.g. ``rapl:package-0`` or ``rapl:package-0+package-1``."""
        return "rapl:" + "+".join(d.label for d in self.domains if d.package)

    @classmethod
    def discover(cls, root: Path = POWERCAP, *, subdomains: bool = False) -> EnergyProbe:
        """Find readable ``intel-rapl:N`` package domains under ``root`` (all or nothing).

        ``subdomains=True`` adds ``intel-rapl:N:M`` (core, uncore, dram) and psys.
        """
        if not root.is_dir():
            return EnergyProbe(None, f"no powercap interface at {root}")
        domains = []
        for entry in sorted(root.iterdir(), key=lambda p: _sort_key(p.name)):
            top = _PACKAGE.match(entry.name) is not None
            if not top and not (subdomains and _SUBDOMAIN.match(entry.name)):
                continue
            try:
                domain = _domain(root, entry, top)
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                denied = isinstance(exc, PermissionError)
                hint = " (energy_uj is root-only since Linux 5.10)" if denied else ""
                return EnergyProbe(None, f"cannot read RAPL domain {entry.name}: {why}{hint}")
            if domain.package or subdomains:  # "psys" (whole platform) overlaps the packages
                domains.append(domain)
        if not any(d.package for d in domains):
            return EnergyProbe(None, f"no intel-rapl package domain under {root}")
        counter = cls(tuple(domains))
        return EnergyProbe(counter, f"{counter.source} readable")

    def read(self) -> dict[str, int]:
        """The current counter of every domain, µJ."""
        return {d.label: int(d.energy_file.read_text().strip()) for d in self.domains}

    def domain_joules(self, before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
        """Joules per domain between two ``read()``s, allowing one wrap of each counter.

        More than one wrap between the reads is undetectable: keep windows shorter than
        ``max_energy_range_uj`` at full power (tens of minutes on current CPUs).
        """
        out = {}
        for d in self.domains:
            delta = after[d.label] - before[d.label]
            if delta < 0:
                delta += d.max_range_uj
            out[d.label] = delta / 1e6
        return out

    def energy_between(self, before: dict[str, int], after: dict[str, int]) -> float:
        """Joules of all packages between two ``read()``s (subdomains are inside them)."""
        joules = self.domain_joules(before, after)
        return sum(joules[d.label] for d in self.domains if d.package)


@dataclass
class EnergyWindow:
    """Filled by ``measure_energy``: set ``inferences`` inside the block, read ``reading``."""

    inferences: int = 0
    reading: EnergyReading | None = field(default=None, init=False)


@contextmanager
def measure_energy(
    counter: RaplCounter, clock: Callable[[], float] = time.perf_counter
) -> Iterator[EnergyWindow]:
    """Read ``counter`` around the block; ``window.reading`` holds the result afterwards.

    The block sets ``window.inferences`` to the number of inferences it ran (left at 0:
    ``ValueError`` on exit). On an exception in the block nothing is computed.
    """
    window = EnergyWindow()
    before, start = counter.read(), clock()
    yield window
    after, end = counter.read(), clock()
    window.reading = EnergyReading(
        joules=counter.energy_between(before, after),
        window_s=end - start,
        inferences=window.inferences,
        source=counter.source,
    )


def parse_tegrastats_line(line: str) -> dict[str, float]:
    """Current draw per power rail in mW from one tegrastats line ({} when none)."""
    return {m.group(1): float(m.group(2)) for m in _RAIL.finditer(line)}


def energy_from_tegrastats(lines: Iterable[str], interval_s: float, rail: str = "auto") -> float:
    """Joules drawn on ``rail`` over the samples: sum(current mW) x interval.

    Each sample stands for one ``--interval`` of tegrastats (rectangle rule). ``rail="auto"``
    takes the module input rail (``VDD_IN`` or ``POM_5V_IN``); boards without one (AGX
    Xavier / Orin) need an explicit rail rather than a guessed sum. Lines without any rail
    (blank, truncated) are skipped; a rail line missing the chosen rail is an error.
    """
    return _integrate(lines, interval_s, rail)[0]


def tegrastats_reading(
    lines: Iterable[str], interval_s: float, inferences: int, rail: str = "auto"
) -> EnergyReading:
    """``energy_from_tegrastats`` as an ``EnergyReading`` (source ``tegrastats:<rail>``)."""
    joules, rail_used, samples = _integrate(lines, interval_s, rail)
    return EnergyReading(joules, samples * interval_s, inferences, f"tegrastats:{rail_used}")


def _integrate(lines: Iterable[str], interval_s: float, rail: str) -> tuple[float, str, int]:
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    samples = [s for s in map(parse_tegrastats_line, lines) if s]
    if not samples:
        raise ValueError("no power rails in the tegrastats output")
    if rail == "auto":
        rail = next((r for r in TOTAL_RAILS if r in samples[0]), "")
        if not rail:
            raise ValueError(f"no total input rail; choose one of {sorted(samples[0])}")
    missing = sum(rail not in s for s in samples)
    if missing:
        raise ValueError(f"rail {rail} missing in {missing} of {len(samples)} samples")
    milliwatts = sum(s[rail] for s in samples)
    return milliwatts / 1000.0 * interval_s, rail, len(samples)


def _domain(root: Path, entry: Path, top: bool) -> RaplDomain:
    """A top-level ``intel-rapl:N`` (a package, or psys) or an ``intel-rapl:N:M`` subdomain."""
    name = (entry / "name").read_text().strip()
    max_range = int((entry / "max_energy_range_uj").read_text().strip())
    int((entry / "energy_uj").read_text().strip())  # readable now, or say why not
    if top:
        return RaplDomain(name, entry / "energy_uj", max_range, name.startswith("package"))
    parent = (root / entry.name.rsplit(":", 1)[0] / "name").read_text().strip()
    return RaplDomain(f"{parent}/{name}", entry / "energy_uj", max_range, False)


def _sort_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))
