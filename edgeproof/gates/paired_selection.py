"""Pick one winner per target from paired evidence, never from medians of different windows.

Each candidate is timed in its own window, interleaved block by block with the shared
baseline; the machine's speed drifts 10-30% between windows, so absolute medians of two
candidates are not comparable, while each candidate's *speedup over the baseline* (both
sides timed in the same window) is. The statistical facts used:

- Ratio of two speedups. With ``S_a = B_a / A`` and ``S_b = B_b / B`` (``B_x`` the
  baseline's median in ``x``'s window), ``S_a / S_b = (B / A) * (B_a / B_b)``: a
  multiplicative drift of the machine scales ``B_a`` and ``A`` alike and cancels, so
  ``S_a / S_b`` estimates how many times faster ``a`` is than ``b``. The two speedups come
  from disjoint windows, hence are independent; their log-ratio's CI is built by MOVER
  (Zou & Donner 2008, Stat Med 27:1693-1702; the square-and-add of Newcombe 1998) from the
  two CIs on the log scale: ``low = D - sqrt((log S_a - log l_a)^2 + (log u_b - log S_b)^2)``,
  ``high = D + sqrt((log u_a - log S_a)^2 + (log S_b - log l_b)^2)``, ``D = log S_a - log
  S_b``. Its coverage is close to that of the inputs when each is close to nominal; it is
  asymmetric when they are.
- Head-to-head. When ``a`` and ``b`` are also timed interleaved with each other, each pair
  of adjacent blocks gives ``d_i = log median(b block i) - log median(a block i)``; the
  ``d_i`` are independent (the A-B/B-A order is randomized per pair) and a block median is
  close to normal on the log scale, so ``exp(mean d)`` with a Student-t interval is a
  direct, drift-free estimate of the ratio (narrower than MOVER: one source of noise, not
  two). It is used for a pair whenever given.
- A winner is "clearly" ahead of another candidate only when the whole CI of its margin
  lies on its side of 1, beyond the tie tolerance (``gates.objectives.clearly_better``).
  Candidates whose margin against the best point estimate contains
  1 are tied within noise, and the tie goes to a fixed secondary order: smaller size
  (within ``size_tol``), then less peak RSS (within ``rss_tol``), then the candidate
  listed first (the recipe order of the params file). Size is deterministic and peak RSS
  nearly so, so unchanged inputs keep the same winner whatever the noise does, unless the
  noise is large enough to make a tie look clear (probability <= alpha / 2 per pair).

Objectives (``gates.objectives.Objective``): ``median_latency`` (speedup CIs as above),
``p90_latency`` (paired p90 ratios ``baseline p90 / candidate p90`` from
``paired_quantile_ratio``, same argument as for medians; without them it falls back to the
absolute p90 CIs, says so in the reason, and drift between windows is then *not*
cancelled), ``size`` and ``peak_rss`` (deterministic: a point ratio and a relative
tolerance instead of a CI; never "within noise").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

from edgeproof.gates.objectives import (
    METRICS,
    NO_TOLERANCE,
    OBJECTIVES,
    Objective,
    check_objective,
    clearly_better,
    clearly_worse,
)
from edgeproof.records import CandidateSummary, Estimate

Source = Literal["head-to-head", "via baseline", "unpaired", "exact"]

SIZE_TOL = METRICS["size"].rel_tol  # the axes' own tolerances (gates.objectives)
RSS_TOL = METRICS["peak_rss"].rel_tol
MAX_HEAD_TO_HEAD = 3  # finalist pairs timed against each other per target, at most


@dataclass(frozen=True)
class Entrant:
    """A passing candidate and the evidence it is ranked on.

    ``speedup``: baseline median / candidate median from interleaved blocks (the
    summary's ``speedup``). ``p90_ratio``: baseline p90 / candidate p90 from the same
    paired blocks (``paired_quantile_ratio``); ``p90_ms``: the absolute p90 CI, only used
    when some entrant has no ``p90_ratio``.
    """

    name: str
    speedup: Estimate | None
    size_mb: float
    peak_rss_mb: float
    p90_ratio: Estimate | None = None
    p90_ms: Estimate | None = None

    @classmethod
    def from_summary(cls, s: CandidateSummary, p90_ratio: Estimate | None = None) -> Entrant:
        return cls(s.candidate, s.speedup, s.size_mb, s.peak_rss_mb, p90_ratio, s.p90_ms)


@dataclass(frozen=True)
class HeadToHead:
    """Block medians (ms) of two candidates timed interleaved with each other: block ``i``
    of ``a_ms`` adjacent in time to block ``i`` of ``b_ms``. Keyed by ``(a, b)``."""

    a_ms: np.ndarray
    b_ms: np.ndarray


@dataclass(frozen=True)
class Margin:
    """How many times better ``winner`` is than ``other`` (> 1: better), with its CI."""

    winner: str
    other: str
    ratio: Estimate
    source: Source

    @property
    def contains_one(self) -> bool:
        return self.ratio.low <= 1.0 <= self.ratio.high


@dataclass(frozen=True)
class PairedSelection:
    """The winner, the runner-up, the margin between them and one sentence why.

    ``ranking``: candidates by point estimate, best first. ``tied``: the candidates within
    noise (or tolerance) of the best point estimate, among which the secondary order
    picked. ``wanted_head_to_head``: finalist pairs compared only via the baseline (the
    tied set, and the winner with each candidate whose CI overlaps its own); timing them
    against each other (``HeadToHead``) and calling again sharpens the call.
    """

    winner: str | None
    runner_up: str | None
    margin: Margin | None
    within_noise: bool
    tie_break: str | None
    reason: str
    objective: Objective
    ranking: tuple[str, ...] = ()
    tied: tuple[str, ...] = ()
    wanted_head_to_head: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def block_medians(samples_ms: np.ndarray, block_size: int) -> np.ndarray:
    """Median of each whole block of ``block_size`` consecutive samples (partial dropped)."""
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    n = x.size // block_size
    return np.median(x[: n * block_size].reshape(n, block_size), axis=1)


def paired_ratio(a_block_ms: np.ndarray, b_block_ms: np.ndarray, confidence: float) -> Estimate:
    """How many times faster ``a`` is than ``b``: ``exp(mean(log b_i - log a_i))`` over
    paired blocks, Student-t CI on the log scale (needs >= 2 pairs, positive medians)."""
    a = np.asarray(a_block_ms, dtype=np.float64).ravel()
    b = np.asarray(b_block_ms, dtype=np.float64).ravel()
    n = min(a.size, b.size)
    if n < 2:
        raise ValueError("need at least 2 paired blocks for a head-to-head ratio")
    a, b = a[:n], b[:n]
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("block medians must be finite and positive")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = np.log(b) - np.log(a)
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return Estimate(
        value=math.exp(mean),
        low=math.exp(mean - half),
        high=math.exp(mean + half),
        confidence=confidence,
    )


def paired_quantile_ratio(
    baseline_ms: np.ndarray,
    candidate_ms: np.ndarray,
    block_size: int,
    q: float,
    confidence: float,
    resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """quantile_q(baseline) / quantile_q(candidate) with a paired block-bootstrap CI.

    ``gates.stats.speedup_ci`` for another quantile (e.g. q = 0.9): block ``i`` of both
    arrays is resampled together, so drift shared by adjacent blocks cancels. Needs >= 2
    whole paired blocks; the percentile interval is widened to contain the point.
    """
    if not 0.0 < q < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError("q and confidence must be in (0, 1)")
    if block_size < 1 or resamples < 1:
        raise ValueError("block_size and resamples must be >= 1")
    n_blocks = min(len(baseline_ms), len(candidate_ms)) // block_size
    if n_blocks < 2:
        raise ValueError(f"need at least 2 paired blocks of {block_size} samples")
    used = n_blocks * block_size
    base = np.asarray(baseline_ms, dtype=np.float64)[:used].reshape(n_blocks, block_size)
    cand = np.asarray(candidate_ms, dtype=np.float64)[:used].reshape(n_blocks, block_size)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(cand))):
        raise ValueError("latency samples contain NaN or infinite values")
    if np.quantile(cand, q) <= 0.0:
        raise ValueError("candidate quantile must be positive")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_blocks, size=(resamples, n_blocks))
    bq = np.quantile(base[idx].reshape(resamples, used), q, axis=1)
    cq = np.quantile(cand[idx].reshape(resamples, used), q, axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(bq / cq, [alpha / 2.0, 1.0 - alpha / 2.0])
    value = float(np.quantile(base, q) / np.quantile(cand, q))
    return Estimate(
        value=value, low=min(float(low), value), high=max(float(high), value), confidence=confidence
    )


def ratio_of_ratios(num: Estimate, den: Estimate) -> Estimate:
    """``num / den`` for two independent positive ratio estimates, MOVER on the log scale."""
    for e in (num, den):
        if not 0.0 < e.low <= e.value <= e.high:
            raise ValueError("ratio estimates need 0 < low <= value <= high")
    ln, la, ha = math.log(num.value), math.log(num.low), math.log(num.high)
    ld, lb, hb = math.log(den.value), math.log(den.low), math.log(den.high)
    d = ln - ld
    low = d - math.hypot(ln - la, hb - ld)
    high = d + math.hypot(ha - ln, ld - lb)
    conf = min(num.confidence, den.confidence)
    return Estimate(value=math.exp(d), low=math.exp(low), high=math.exp(high), confidence=conf)


def _invert(e: Estimate) -> Estimate:
    return Estimate(value=1 / e.value, low=1 / e.high, high=1 / e.low, confidence=e.confidence)


def _point(x: float) -> Estimate:
    return Estimate(value=x, low=x, high=x, confidence=1.0)


def _goodness(e: Entrant, objective: Objective, unpaired: bool) -> Estimate:
    """The entrant's objective as a ratio estimate where higher is better."""
    if objective == "median_latency":
        assert e.speedup is not None
        return e.speedup
    if objective == "p90_latency":
        if not unpaired:
            assert e.p90_ratio is not None
            return e.p90_ratio
        assert e.p90_ms is not None
        return _invert(e.p90_ms)  # 1 / p90: higher is better
    value = e.size_mb if objective == "size" else e.peak_rss_mb
    return _point(1.0 / value)


def margin(
    a: Entrant,
    b: Entrant,
    objective: Objective = "median_latency",
    head_to_head: Mapping[tuple[str, str], HeadToHead] | None = None,
    confidence: float = 0.99,
    unpaired: bool = False,
) -> Margin:
    """How many times better ``a`` is than ``b`` on ``objective``, with a CI.

    Median latency uses the head-to-head blocks of the pair when given (either key order),
    else the ratio of the two speedups over the shared baseline (MOVER). Deterministic
    objectives give an exact ratio (a point).
    """
    h2h = head_to_head or {}
    if objective == "median_latency":
        if (a.name, b.name) in h2h:
            pair = h2h[(a.name, b.name)]
            return Margin(
                a.name, b.name, paired_ratio(pair.a_ms, pair.b_ms, confidence), "head-to-head"
            )
        if (b.name, a.name) in h2h:
            pair = h2h[(b.name, a.name)]
            return Margin(
                a.name, b.name, paired_ratio(pair.b_ms, pair.a_ms, confidence), "head-to-head"
            )
    ga, gb = _goodness(a, objective, unpaired), _goodness(b, objective, unpaired)
    if not OBJECTIVES[objective].sampled:
        return Margin(a.name, b.name, _point(ga.value / gb.value), "exact")
    return Margin(
        a.name, b.name, ratio_of_ratios(ga, gb), "unpaired" if unpaired else "via baseline"
    )


def _tolerance(objective: Objective, size_tol: float, rss_tol: float, speed_tol: float) -> float:
    """The tie tolerance of ``objective``: ``speed_tol`` for the sampled (latency) ones."""
    return {"size": size_tol, "peak_rss": rss_tol}.get(objective, speed_tol)


def _secondary(
    tied: list[Entrant], objective: Objective, size_tol: float, rss_tol: float
) -> tuple[Entrant, str]:
    """The first of ``tied`` (input order) in the secondary order, and what decided it.

    Each key keeps the entrants within its tolerance of the best value on it (smaller
    size, then less peak RSS; the objective itself is skipped), then the first listed.
    """
    keep = list(tied)
    keys = (("size", "smaller size", size_tol), ("peak_rss", "less peak RSS", rss_tol))
    for key, label, tol in keys:
        if key == objective:
            continue

        def value(e: Entrant, key: str = key) -> float:
            return e.size_mb if key == "size" else e.peak_rss_mb

        best = min(value(e) for e in keep)
        narrowed = [e for e in keep if value(e) <= best * (1.0 + tol)]
        if len(narrowed) == 1:
            nxt = min(value(e) for e in keep if e is not narrowed[0])
            return narrowed[0], (
                f"{label} ({value(narrowed[0]):.3g} MB vs {nxt:.3g} MB, "
                f"beyond the {tol:.0%} tolerance)"
            )
        keep = narrowed
    return keep[0], "the order of the recipes (size and peak RSS within tolerance)"


def _wanted_head_to_head(
    winner: Entrant,
    tied: Sequence[Entrant],
    ranked: Sequence[Entrant],
    margins: Mapping[tuple[str, str], Margin],
    objective: Objective,
    unpaired: bool,
) -> tuple[tuple[str, str], ...]:
    """Finalists to time against each other (at most ``MAX_HEAD_TO_HEAD`` pairs), among the
    pairs compared only via the baseline: every pair of the tied set, and the winner with
    each candidate whose own CI overlaps the winner's (the margin's CI can exclude 1 while
    those overlap: a per-process offset of ~1% is in neither, and a direct comparison is
    one source of noise, not two)."""
    pairs = [(a, b) for i, a in enumerate(tied) for b in tied[i + 1 :]]
    mine = _goodness(winner, objective, unpaired)
    for other in ranked:
        theirs = _goodness(other, objective, unpaired)
        if other is not winner and mine.low <= theirs.high and theirs.low <= mine.high:
            pairs.append((winner, other))
    out: list[tuple[str, str]] = []
    for a, b in pairs:
        seen = (a.name, b.name) in out or (b.name, a.name) in out
        if not seen and margins[(a.name, b.name)].source == "via baseline":
            out.append((a.name, b.name))
    return tuple(out[:MAX_HEAD_TO_HEAD])


def _fmt_ratio(e: Estimate) -> str:
    if e.low == e.high:
        return f"{e.value:.3f}x"
    return f"{e.value:.2f}x [{e.low:.2f}, {e.high:.2f}]"


_WORDS: dict[Objective, tuple[str, str]] = {  # (comparative, what the leader is best on)
    "median_latency": ("faster", "highest paired speedup"),
    "p90_latency": ("faster at p90", "highest paired p90 ratio"),
    "size": ("smaller", "smallest size"),
    "peak_rss": ("less memory", "least peak RSS"),
}


def _evidence(e: Entrant, objective: Objective, unpaired: bool) -> str:
    if objective == "median_latency":
        assert e.speedup is not None
        return f"speedup {_fmt_ratio(e.speedup)}"
    if objective == "p90_latency":
        if unpaired:
            assert e.p90_ms is not None
            p = e.p90_ms
            return f"p90 {p.value:.3g} ms [{p.low:.3g}, {p.high:.3g}]"
        assert e.p90_ratio is not None
        return f"p90 ratio {_fmt_ratio(e.p90_ratio)}"
    value = e.size_mb if objective == "size" else e.peak_rss_mb
    return f"{value:.3g} MB"


def select_paired(
    entrants: Sequence[Entrant],
    objective: Objective = "median_latency",
    head_to_head: Mapping[tuple[str, str], HeadToHead] | None = None,
    confidence: float = 0.99,
    size_tol: float = SIZE_TOL,
    rss_tol: float = RSS_TOL,
    speed_tol: float = 0.0,
) -> PairedSelection:
    """Rank the passing ``entrants`` (in recipe order) by paired evidence and pick one.

    1. Every pair gets a margin (``margin``: head-to-head blocks when given, else via the
       baseline); ``a`` clearly beats ``b`` when the whole CI is above ``1 + speed_tol``
       (for size / RSS: the ratio beyond the tolerance): ``gates.objectives.clearly_better``.
       ``speed_tol`` is the tie tolerance: a lead smaller than that is not worth a change
       of winner, whatever the CI says (two processes running the same file differ by ~1%
       for as long as they live, which blocks timed within them cannot see).
    2. The tied set: the entrants no other entrant clearly beats (no member clearly beats
       another, so they are tied within noise); all of them if every one is beaten.
    3. The winner is the first of the tied set in the secondary order (smaller size, less
       peak RSS, listed first).
    4. The runner-up is the best-ranked (point estimate) other member of the tied set,
       else the best-ranked other entrant.
    The reason names the runner-up with the winner's margin and its CI, and says "within
    noise" exactly when that CI contains 1. ``wanted_head_to_head`` lists the finalist pairs
    compared only via the baseline (``_wanted_head_to_head``).
    """
    check_objective(objective)
    names = [e.name for e in entrants]
    if len(set(names)) != len(names):
        raise ValueError("entrant names must be unique")
    if not entrants:
        return PairedSelection(
            None, None, None, False, None, "no candidate passed every gate", objective
        )
    unpaired = False
    deterministic = not OBJECTIVES[objective].sampled
    tol = _tolerance(objective, size_tol, rss_tol, speed_tol)
    if objective == "median_latency":
        missing = [e.name for e in entrants if e.speedup is None]
        if missing:
            raise ValueError(f"no paired speedup for {', '.join(missing)}: cannot rank them")
    if objective == "p90_latency" and any(e.p90_ratio is None for e in entrants):
        unpaired = True
        missing = [e.name for e in entrants if e.p90_ms is None]
        if missing:
            raise ValueError(f"no p90 estimate for {', '.join(missing)}")
    better, best = _WORDS[objective]
    if unpaired:
        best = "lowest p90 (unpaired)"
    order = {e.name: i for i, e in enumerate(entrants)}
    ranked = sorted(
        entrants, key=lambda e: (-_goodness(e, objective, unpaired).value, order[e.name])
    )
    leader = ranked[0]
    n = len(entrants)
    head = f"among {n} passing candidate{'s' if n != 1 else ''}"
    if n == 1:
        reason = f"only passing candidate ({_evidence(leader, objective, unpaired)})"
        return PairedSelection(
            leader.name, None, None, False, None, reason, objective, (leader.name,), (leader.name,)
        )
    margins = {
        (a.name, b.name): margin(a, b, objective, head_to_head, confidence, unpaired)
        for a in entrants
        for b in entrants
        if a is not b
    }

    def beaten(e: Entrant) -> bool:
        return any(
            clearly_better(margins[(o.name, e.name)].ratio, tolerance=tol)
            for o in entrants
            if o is not e
        )

    # nobody in ``tied`` is clearly better than another member: they are tied
    tied = [e for e in entrants if not beaten(e)] or list(entrants)
    tie_break: str | None = None
    if len(tied) > 1:
        winner, tie_break = _secondary(tied, objective, size_tol, rss_tol)
    else:
        winner = tied[0]
    # the strongest competitor: the best-ranked other member of the tied set, else the next
    tied_names = {e.name for e in tied}
    others = [e for e in ranked if e.name != winner.name]
    runner = next((e for e in others if e.name in tied_names), others[0])
    m = margins[(winner.name, runner.name)]
    wanted = _wanted_head_to_head(winner, tied, ranked, margins, objective, unpaired)
    noise = (not deterministic) and m.contains_one
    via = {
        "head-to-head": "head-to-head blocks",
        "via baseline": "ratio of the paired speedups over the shared baseline",
        "unpaired": "absolute p90s from different windows, drift not cancelled",
        "exact": "deterministic",
    }[m.source]
    if objective == "p90_latency" and m.source == "via baseline":
        via = "ratio of the paired p90 ratios over the shared baseline"
    if winner is leader:
        reason = f"{best} ({_evidence(winner, objective, unpaired)}) {head}"
    else:
        reason = f"{winner.name} ({_evidence(winner, objective, unpaired)}) {head}"
    lead = (
        f"{_fmt_ratio(m.ratio)} {better} than runner-up {runner.name} "
        f"({_evidence(runner, objective, unpaired)}; {via})"
    )
    if deterministic:  # m.ratio is a point
        inside = not clearly_better(m.ratio, tolerance=tol) and not clearly_worse(
            m.ratio, tolerance=tol
        )
        verdict = f"within the {tol:.0%} tolerance" if inside else f"beyond the {tol:.0%} tolerance"
    elif noise:
        verdict = "within noise (CI contains 1)"
    elif clearly_better(m.ratio, tolerance=speed_tol):
        verdict = f"clearly ahead (CI above {1.0 + speed_tol:g})"
    elif clearly_better(m.ratio, tolerance=NO_TOLERANCE):
        verdict = f"ahead by less than the {speed_tol:.0%} tie tolerance"
    elif clearly_worse(m.ratio, tolerance=speed_tol):
        # only when a tie rule overrode a clear lead
        verdict = f"clearly behind (CI below {1.0 / (1.0 + speed_tol):.3g})"
    else:
        verdict = f"behind by less than the {speed_tol:.0%} tie tolerance"
    reason += f"; {lead}, {verdict}"
    if tie_break is not None:
        if deterministic:
            within = "within tolerance"
        elif noise:
            within = "within noise"
        else:
            within = f"within the {speed_tol:.0%} tie tolerance"
        reason += f"; the tie {within} goes to {tie_break}"
    return PairedSelection(
        winner=winner.name,
        runner_up=runner.name,
        margin=m,
        within_noise=noise,
        tie_break=tie_break,
        reason=reason,
        objective=objective,
        ranking=tuple(e.name for e in ranked),
        tied=tuple(e.name for e in tied),
        wanted_head_to_head=wanted,
    )


def entrants_from_summaries(
    summaries: Mapping[str, CandidateSummary],
    passing: Iterable[str],
    p90_ratios: Mapping[str, Estimate] | None = None,
) -> list[Entrant]:
    """Entrants for the passing non-baseline candidates, in the order of ``summaries``."""
    ok = set(passing)
    ratios = p90_ratios or {}
    return [
        Entrant.from_summary(s, ratios.get(name))
        for name, s in summaries.items()
        if name in ok and not s.is_baseline
    ]
