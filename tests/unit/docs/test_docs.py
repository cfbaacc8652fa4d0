"""The docs say what the repository holds: every path they name exists, every relative link
resolves, and every measured figure they quote is found in the results file it links.

The figure rule: a measured figure (a speedup ``2.58x``, a latency ``0.46 ms``, seconds,
percentages, sizes) stands on the same line as a link to ``benchmarks/results/<name>.md``
(or ``.json``), and ``<name>.json`` holds a number that rounds to it at the shown decimals
(a percentage may be the JSON's fraction). A speedup or latency outside code blocks on a
line without such a link is a figure nobody can check, so it fails too. Every results file
records its machine and date. Transcripts (terminal-session.md) quote program output, not
figures, and are exempt. A page rendered whole from a results file (docs/real-models.md)
declares it once, ``<!-- figures from benchmarks/results/<name>.json -->``, and every line of
it is checked against that file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TRANSCRIPTS = {"terminal-session.md"}
RESULTS = ROOT / "benchmarks" / "results"
# top-level folders whose paths the docs name; generated ones (data/, models/, reports/)
# appear only after `make example` or a run
TRACKED_ROOTS = (
    "edgeproof", "flows", "gates", "tests", "docs", "benchmarks", "deploy", "examples",
    "scripts", "pipelines", ".github", ".ci",
)  # fmt: skip
FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
RESULTS_LINK = re.compile(r"benchmarks/results/([\w.-]+?)\.(?:md|json)")
PAGE_RESULTS = re.compile(r"<!-- figures from benchmarks/results/([\w.-]+?)\.json -->")
FIGURE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s?(x|×|ms|s|%|MB|GB|MiB|GiB|min)(?![\w/])")
UNCHECKED_FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:x|×|\s?ms)(?![\w/])")
CONFIDENCE = re.compile(r"\b\d+(?:\.\d+)?%\s?(?:CI|confidence|two-sided)")


def prose_lines(doc: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _named_paths(line: str) -> Iterator[str]:
    for token in CODE.findall(line):
        token = token.strip().split()[0] if token.strip() else ""
        if token.split("/")[0] in TRACKED_ROOTS and "/" in token:
            yield token


def _exists(token: str) -> bool:
    if any(mark in token for mark in "<>{}$"):
        return True  # a pattern with a placeholder, not a path
    path = re.split(r"::|:\d|#", token)[0].rstrip("/.,;")
    if "*" in path:
        return any(ROOT.glob(path))
    return (ROOT / path).exists()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_path_exists(doc: Path) -> None:
    missing = [
        f"{doc.name}:{number}: {token}"
        for number, line in prose_lines(doc)
        for token in _named_paths(line)
        if not _exists(token)
    ]
    assert not missing, "paths the docs name that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for number, line in prose_lines(doc):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{doc.name}:{number}: {target}")
    assert not broken, "links that resolve to nothing:\n" + "\n".join(broken)


def _numbers(value: object) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _load_results(name: str) -> list[float]:
    path = RESULTS / f"{name}.json"
    assert path.is_file(), f"no results file {path.relative_to(ROOT)}"
    return list(_numbers(json.loads(path.read_text())))


def _found(shown: str, numbers: list[float]) -> bool:
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    wanted = abs(float(shown))
    half_step = 0.5 * 10**-decimals + 1e-9
    return any(
        abs(abs(candidate) - wanted) <= half_step
        for value in numbers
        for candidate in (value, value * 100, value * 1000, value / 1000, value / 60)
    )


def page_results(doc: Path) -> list[str]:
    """The results a page rendered from a results file declares for all its lines."""
    return PAGE_RESULTS.findall(doc.read_text())


def quoted_figures() -> Iterator[tuple[str, str, str]]:
    """(where, figure, results name) for every figure on a line that links its results."""
    for doc in DOCS:
        if doc.name in TRANSCRIPTS:
            continue
        whole_page = page_results(doc)
        for number, line in prose_lines(doc):
            names = RESULTS_LINK.findall(line) + whole_page
            if not names:
                continue
            text = CONFIDENCE.sub("", LINK.sub(lambda m: m.group(0).split("](")[0], line))
            for value, unit in FIGURE.findall(text):
                yield f"{doc.name}:{number}", f"{value}{unit}", ",".join(sorted(set(names)))


def test_every_quoted_figure_is_in_its_results_file() -> None:
    cache: dict[str, list[float]] = {}
    wrong = []
    for where, figure, names in quoted_figures():
        numbers = [
            n for name in names.split(",") for n in cache.setdefault(name, _load_results(name))
        ]
        value = re.match(r"-?\d+(?:\.\d+)?", figure)
        assert value is not None
        if not _found(value.group(0), numbers):
            wrong.append(f"{where}: {figure} not in {names}.json")
    assert not wrong, "figures their results files do not hold:\n" + "\n".join(wrong)


def test_speedups_and_latencies_link_their_results() -> None:
    unlinked = [
        f"{doc.name}:{number}: {line.strip()[:100]}"
        for doc in DOCS
        if doc.name not in TRANSCRIPTS
        if not page_results(doc)
        for number, line in prose_lines(doc)
        if UNCHECKED_FIGURE.search(CODE.sub("", line)) and not RESULTS_LINK.search(line)
    ]
    assert not unlinked, "figures with no results file on their line:\n" + "\n".join(unlinked)


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_results_record_machine_and_date(path: Path) -> None:
    machine = json.loads(path.read_text()).get("machine")
    assert isinstance(machine, dict), f"{path.name}: no machine"
    assert machine.get("cpu_model"), f"{path.name}: machine has no cpu_model"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(machine.get("date", ""))), (
        f"{path.name}: machine has no date (YYYY-MM-DD)"
    )
