"""Early verdicts: stop measuring once every gate's confidence interval is decisive.

Looking at an ordinary 99% CI after every block and stopping at the first decisive one
inflates the error rates (each look is another chance for noise to cross the limit; with
30 looks the false-fail rate of a candidate sitting exactly on the limit grows several
times). This module replaces the ordinary CI by a *repeated confidence interval* (RCI;
Jennison & Turnbull 1989, JRSS B 51:305-361; Jennison & Turnbull 2000, Group Sequential
Methods with Applications to Clinical Trials, ch. 9): a sequence of intervals
``I_1, ..., I_K`` with *simultaneous* coverage ``P(theta in I_k for all k) >= 1 - alpha``.
The gate decides at look ``k``: **pass** when ``I_k`` lies wholly on the good side of the
limit, **fail** when wholly on the bad side, **continue** otherwise, and at the last
planned look **inconclusive**. Because a wrong verdict at any look needs ``theta`` to be
outside that look's interval, P(any wrong verdict) <= alpha whatever the stopping rule and
however often one looks (a pass when theta is on the bad side and a fail when it is on the
good side each have probability <= alpha / 2 by symmetry of the boundaries).

The maths.

- Canonical joint distribution: with ``n_k`` independent observations at look ``k`` of
  variance ``sigma^2`` and mean ``theta``, ``Z_k = (mean_k - theta) sqrt(n_k) / sigma``
  is multivariate normal, ``Cov(Z_i, Z_j) = sqrt(n_i / n_j)`` for ``i <= j``; equivalently
  the score ``S_k = Z_k sqrt(t_k)`` is a Brownian motion observed at information fractions
  ``t_k = n_k / n_max`` (independent increments, ``Var(S_k - S_{k-1}) = t_k - t_{k-1}``).
- Error spending (Lan & DeMets 1983, Biometrika 70:659-663): a non-decreasing ``A(t)``
  with ``A(0) = 0``, ``A(1) = alpha``. The two-sided constant ``c_k`` of look ``k`` solves
  ``P(|Z_j| <= c_j for j < k, |Z_k| > c_k) = A(t_k) - A(t_{k-1})``, so the total
  probability of ever leaving ``[-c_k, c_k]`` is ``A(t_K) <= alpha``. Looks need not be
  planned in advance: only their information fractions matter, and the timing must not
  depend on the data. ``obrien-fleming`` spends ``A(t) = 2 - 2 Phi(z_{1-alpha/2} /
  sqrt(t))`` (almost nothing early, ``c_K`` close to the fixed-sample ``z``); ``pocock``
  spends ``A(t) = alpha ln(1 + (e - 1) t)`` (more early, a wider last interval).
- The crossing probabilities are computed by the Armitage-McPherson-Rowe recursion: the
  sub-density of ``S_k`` on the continuation region is the previous one convolved with
  the ``N(0, t_k - t_{k-1})`` kernel, integrated numerically on a grid (trapezoid rule,
  ``_GRID`` points, absolute error ~1e-7 on the spent alpha); ``c_k`` is then found by
  Brent's method. Deterministic: no Monte Carlo.
- Unknown variance: the RCI at look ``k`` is ``mean_k +- c'_k s_k / sqrt(n_k)`` with the
  Student constant ``c'_k = t_{n_k - 1}^{-1}(Phi(c_k))`` (the "significance level"
  approach, Jennison & Turnbull 2000, sec. 3.8 and 9.2: the same nominal tail probability
  at each look; the error rates stay close to nominal, checked in
  ``benchmarks/trust_sim.py``).

Any stopping rule keeps the coverage of an RCI, so the harness may also stop an
undecided gate once its interval is narrow (``speed_look(precision=...)``: the
"precise enough" stop of the harness), with the verdict "inconclusive".

The default spending is Pocock-type: a gross miss or a large margin is decided at the first
look (4 block pairs); the price is a last interval ~10% wider than O'Brien-Fleming's with
six looks, so a candidate close to the limit needs more blocks to be decided
(``benchmarks/results/trust_sim.md`` has both).

The three gates.

- Speed (``speed_look``): the observations are ``d_i = log(baseline block median i) -
  log(candidate block median i)``, one per pair of interleaved blocks; ``exp(mean d)``
  (the geometric mean of the block speedups) is compared with ``min_speedup``. Blocks are
  independent given the randomized A-B/B-A order, and a block median of ~25 samples is
  close to normal on the log scale, so the t-based RCI applies. It estimates the same
  ratio as ``gates.stats.speedup_ci`` (ratio of the medians) under multiplicative noise.
- Proportion (``proportion_look``, top-1 agreement): the count has the same canonical
  joint distribution asymptotically, so the constants carry over; the interval at look
  ``k`` is the exact Clopper-Pearson one with tail ``Phi(-c_k)`` per side. (Wilson's
  interval, which ``gates.stats`` uses for a single look, undercovers in one tail near 0
  and 1, Brown, Cai & DasGupta 2001, Stat Sci 16:101-133; a 98% agreement limit lives
  there: at the limit it failed 1.3% of simulated candidates instead of <= 0.5%.) Items
  must be evaluated in a random order, so that a prefix is a random sample; ``min_n``
  of 100 or more is suggested.
- Mean (``mean_look``, KL divergence): KL per item is strongly right-skewed, and the
  plain t interval's upper bound then undercovers (gamma data of shape 0.5 at n = 100:
  P(high < mean) = 2.2% instead of 0.5%), which would pass a candidate at the limit too
  often. The interval is Hall's skewness-corrected t (Hall 1992, JRSS B 54:221-228, the
  monotone version of Johnson 1978): with ``D = (mean - mu) / s`` and ``g`` the sample
  skewness, ``sqrt(n) (((1 + g D / 3)^3 - 1) / g + g / (6 n))`` is close to N(0, 1); it
  is inverted in closed form at the constant ``c'_k`` (0.8% at n = 100, 0.5% at 1000).
  ``min_n`` (100 suggested) keeps the skewness estimate meaningful.

Wiring into the harness (``_interleave``): after each block pair append
``log_ratios`` of that pair; at the planned counts (``looks_schedule(4, max_blocks)``,
fixed before measuring) call ``speed_look(d, looks_so_far, design, min_speedup,
final=deadline_passed, precision=target_rel_halfwidth)``. Stop at once on "fail" (nothing
else about a failing candidate matters); on "pass", stop too unless the candidate is still
in the running for the winner, whose selection needs a narrow speedup CI (keep sampling to
the precision target, or let ``gates.paired_selection`` ask for a head-to-head). After a
data-dependent stop, report the gate with ``Look.interval`` (the RCI): the ordinary CI of
the truncated data no longer has its nominal coverage.

Combine the gates of a candidate with ``combine``: once a gate is decisive its verdict is
kept (the RCI covered it at that look), the candidate fails as soon as one gate fails, and
passes when all have passed. Each gate has its own alpha, as the fixed-sample checks do.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import optimize, stats

from edgeproof.records import Estimate

Spending = Literal["obrien-fleming", "pocock"]
Decision = Literal["continue", "pass", "fail", "inconclusive"]

_GRID = 601  # points of the numerical integration grid per look


def spent(t: float, alpha: float, spending: Spending) -> float:
    """Two-sided alpha spent by information fraction ``t`` (0 at t = 0, alpha at t >= 1)."""
    if t <= 0.0:
        return 0.0
    t = min(t, 1.0)
    if spending == "obrien-fleming":
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        return float(2.0 * stats.norm.sf(z / math.sqrt(t)))
    if spending == "pocock":
        return float(alpha * math.log(1.0 + (math.e - 1.0) * t))
    raise ValueError(f"unknown spending function {spending!r}")


def _exit_prob(grid: np.ndarray, weights: np.ndarray, step: float, b: float) -> float:
    """P(|S_k| > b and still running at look k-1) given the previous sub-density."""
    sd = math.sqrt(step)
    out = stats.norm.sf((b - grid) / sd) + stats.norm.cdf((-b - grid) / sd)
    return float(np.dot(weights, out))


def boundaries(
    fractions: tuple[float, ...], alpha: float, spending: Spending, final: bool = False
) -> tuple[float, ...]:
    """Two-sided z constants ``c_1..c_K`` for looks at increasing information ``fractions``.

    ``fractions`` are ``n_k / n_max`` (from 1 on, everything is spent). ``final``: the last
    look is the last one even though its fraction is below 1 (e.g. the time budget ran out):
    it spends all the alpha left, at its true fraction. Computed by the recursion in the
    module doc; each prefix is cached, so adding a look costs one step.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not fractions or any(t <= 0.0 for t in fractions):
        raise ValueError("information fractions must be positive")
    if any(b <= a for a, b in itertools.pairwise(fractions)):
        raise ValueError("information fractions must increase strictly")
    if spending not in ("obrien-fleming", "pocock"):
        raise ValueError(f"unknown spending function {spending!r}")
    return _state(tuple(float(t) for t in fractions), alpha, spending, final)[0]


@lru_cache(maxsize=1024)
def _state(
    fractions: tuple[float, ...], alpha: float, spending: Spending, final: bool = False
) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
    """Constants so far and the sub-density of S_k on the continuation region (grid and
    trapezoid-weighted values) after the last of ``fractions``."""
    if not fractions:
        return (), np.zeros(1), np.ones(1)  # point mass at S_0 = 0
    cs, grid, weights = _state(fractions[:-1], alpha, spending)
    prev_t = fractions[-2] if len(fractions) > 1 else 0.0
    t = fractions[-1]
    total = alpha if final else spent(t, alpha, spending)
    target = total - spent(prev_t, alpha, spending)
    step = t - prev_t
    sd = math.sqrt(step)
    if target <= 1e-13:  # (almost) nothing to spend: the unconditional tail will do
        b = math.sqrt(t) * float(stats.norm.isf(max(target, 1e-300) / 2.0))
    elif not cs:
        b = sd * float(stats.norm.isf(target / 2.0))
    else:
        b = float(
            optimize.brentq(
                lambda x: _exit_prob(grid, weights, step, x) - target,
                1e-9,
                40.0 * math.sqrt(t),
                xtol=1e-10,
            )
        )
    # sub-density of S_k on [-b, b]: the previous one convolved with N(0, step)
    half = min(b, 9.0 * math.sqrt(t))  # S_k has sd sqrt(t): no mass beyond 9 sd
    new_grid = np.linspace(-half, half, _GRID)
    dens = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd @ weights
    trap = np.full(_GRID, new_grid[1] - new_grid[0])
    trap[[0, -1]] /= 2.0
    return (*cs, b / math.sqrt(t)), new_grid, dens * trap


@dataclass(frozen=True)
class SequentialDesign:
    """A gate's plan: at most ``max_n`` observations, two-sided error ``alpha`` (e.g. 0.01
    for a 99% gate), spent by ``spending``; no decision before ``min_n`` observations."""

    max_n: int
    alpha: float = 0.01
    spending: Spending = "pocock"
    min_n: int = 4

    def __post_init__(self) -> None:
        if self.max_n < 2 or not 2 <= self.min_n <= self.max_n:
            raise ValueError("need 2 <= min_n <= max_n")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    def constant(self, looks: Sequence[int], final: bool = False) -> float:
        """The z constant ``c_k`` of the last of ``looks`` (observation counts at each look
        taken so far, increasing). ``final`` (or reaching ``max_n``) spends all alpha left."""
        if not looks or any(b <= a for a, b in itertools.pairwise(looks)):
            raise ValueError("looks must be a non-empty, strictly increasing list of counts")
        if looks[0] < 1:
            raise ValueError("a look needs at least one observation")
        if len(looks) > 1 and looks[-2] >= self.max_n:
            raise ValueError("no look is possible after the final one")
        fr = tuple(n / self.max_n for n in looks)
        return boundaries(fr, self.alpha, self.spending, final)[-1]

    def is_final(self, looks: Sequence[int], final: bool = False) -> bool:
        return final or looks[-1] >= self.max_n


@dataclass(frozen=True)
class Look:
    """A gate's state at one look: the decision, the repeated CI, the constants used."""

    decision: Decision
    interval: Estimate  # value and RCI; ``confidence`` is the simultaneous 1 - alpha
    n: int
    look: int  # 1-based index of this look
    z_constant: float  # c_k on the z scale (before any Student correction)
    message: str


def _decide(
    est: Estimate, limit: float, side: Literal["min", "max"], final: bool
) -> tuple[Decision, str]:
    if side == "min":
        good, bad = est.low >= limit, est.high < limit
    else:
        good, bad = est.high <= limit, est.low > limit
    if good:
        return "pass", "decisively on the good side"
    if bad:
        return "fail", "decisively on the bad side"
    if final:
        return "inconclusive", "straddles the limit at the last look"
    return "continue", "straddles the limit"


def _t_interval(x: np.ndarray, c: float) -> tuple[float, float, float]:
    n = x.size
    mean = float(x.mean())
    if n < 2:
        raise ValueError("need at least 2 observations for an interval")
    sd = float(x.std(ddof=1))
    ct = float(stats.t.isf(stats.norm.sf(c), n - 1))
    half = ct * sd / math.sqrt(n) if sd > 0.0 else 0.0
    return mean, mean - half, mean + half


def _skew_interval(x: np.ndarray, c: float) -> tuple[float, float, float]:
    """Hall's skewness-corrected t interval of the mean at constant ``c`` (module doc)."""
    mean, low, high = _t_interval(x, c)
    n = x.size
    sd = float(x.std(ddof=1))
    if sd == 0.0 or not math.isfinite(high - low):
        return mean, low, high
    g = float(((x - mean) ** 3).mean()) / sd**3
    if abs(g) < 1e-6:
        return mean, low, high
    y = (high - mean) / sd  # c'_k / sqrt(n)

    def inv(v: float) -> float:  # D with sqrt(n) * transform(D) = v * sqrt(n)
        return 3.0 / g * (float(np.cbrt(1.0 + g * (v - g / (6.0 * n)))) - 1.0)

    return mean, mean - sd * inv(y), mean - sd * inv(-y)


def _prepare(values: np.ndarray, looks: Sequence[int], design: SequentialDesign) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if not looks or looks[-1] > x.size:
        raise ValueError(
            f"the last look counts {looks[-1] if looks else 0} observations, only {x.size} given"
        )
    x = x[: looks[-1]]
    if not np.all(np.isfinite(x)):
        raise ValueError("observations contain NaN or infinite values")
    return x


def _early(n: int, k: int, design: SequentialDesign, est: Estimate) -> Look:
    return Look("continue", est, n, k, math.inf, f"{n} < min_n {design.min_n}: no decision yet")


def log_ratios(baseline_ms: np.ndarray, candidate_ms: np.ndarray, block_size: int) -> np.ndarray:
    """``log(median of baseline block i) - log(median of candidate block i)`` for each whole
    pair of blocks (``RawMeasurement.paired_baseline_ms`` and ``latency_ms``, in order)."""
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    n = min(len(baseline_ms), len(candidate_ms)) // block_size
    used = n * block_size
    base = np.asarray(baseline_ms, dtype=np.float64)[:used].reshape(n, block_size)
    cand = np.asarray(candidate_ms, dtype=np.float64)[:used].reshape(n, block_size)
    bm, cm = np.median(base, axis=1), np.median(cand, axis=1)
    if np.any(bm <= 0.0) or np.any(cm <= 0.0):
        raise ValueError("block medians must be positive")
    return np.log(bm) - np.log(cm)


def speed_look(
    log_ratios: np.ndarray,
    looks: Sequence[int],
    design: SequentialDesign,
    min_speedup: float,
    final: bool = False,
    precision: float | None = None,
) -> Look:
    """The speed gate ``speedup >= min_speedup`` at the last of ``looks``.

    ``log_ratios``: ``log(baseline block median) - log(candidate block median)`` per pair of
    interleaved blocks, in time order (at least ``looks[-1]`` of them; later ones ignored).
    ``looks``: number of block pairs at each look taken so far, this one last (the earlier
    ones matter: they spent part of alpha). ``final``: this is the last look (e.g. the time
    budget ran out before ``design.max_n``): an undecided gate is then "inconclusive".
    ``precision``: also "inconclusive" (stop) once the RCI's relative half-width on the log
    scale is <= ``log(1 + precision)`` while it still straddles the limit.
    """
    if min_speedup <= 0.0:
        raise ValueError("min_speedup must be positive")
    x = _prepare(log_ratios, looks, design)
    n, k = x.size, len(looks)
    last = design.is_final(looks, final)
    if n < max(design.min_n, 2):
        g = float(np.exp(x.mean())) if n else 1.0
        return _early(n, k, design, Estimate(value=g, low=0.0, high=math.inf, confidence=0.0))
    c = design.constant(looks, final)
    mean, low, high = _t_interval(x, c)
    est = Estimate(
        value=math.exp(mean), low=math.exp(low), high=math.exp(high), confidence=1 - design.alpha
    )
    narrow = precision is not None and (high - low) / 2.0 <= math.log1p(precision)
    decision, why = _decide(est, min_speedup, "min", last or narrow)
    if decision == "inconclusive" and narrow and not last:
        why = f"straddles the limit within {precision:.1%}: more blocks would not decide it"
    msg = (
        f"look {k}, {n} block pairs: speedup {est.value:.3f}x RCI [{est.low:.3f}, "
        f"{est.high:.3f}] vs min {min_speedup:.2f}x: {why}"
    )
    return Look(decision, est, n, k, c, msg)


def mean_look(
    values: np.ndarray,
    looks: Sequence[int],
    design: SequentialDesign,
    limit: float,
    side: Literal["min", "max"] = "max",
    final: bool = False,
) -> Look:
    """A gate on a mean (e.g. per-item KL ``<= max_kl``: ``side="max"``), t-based RCI."""
    x = _prepare(values, looks, design)
    n, k = x.size, len(looks)
    last = design.is_final(looks, final)
    if n < max(design.min_n, 2):
        m = float(x.mean()) if n else 0.0
        return _early(n, k, design, Estimate(value=m, low=-math.inf, high=math.inf, confidence=0.0))
    c = design.constant(looks, final)
    mean, low, high = _skew_interval(x, c)
    est = Estimate(value=mean, low=low, high=high, confidence=1 - design.alpha)
    decision, why = _decide(est, limit, side, last)
    msg = (
        f"look {k}, {n} items: mean {mean:.4g} RCI [{low:.4g}, {high:.4g}] vs {side} "
        f"{limit:.4g}: {why}"
    )
    return Look(decision, est, n, k, c, msg)


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for k successes in n at normal constant ``z``."""
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson(k: int, n: int, z: float) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval with tail probability ``Phi(-z)`` on each side."""
    tail = float(stats.norm.sf(z))
    low = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.isf(tail, k + 1, n - k))
    return low, high


def proportion_look(
    successes: np.ndarray,
    looks: Sequence[int],
    design: SequentialDesign,
    limit: float,
    side: Literal["min", "max"] = "min",
    final: bool = False,
) -> Look:
    """A gate on a proportion (e.g. top-1 agreement ``>= min``): Clopper-Pearson RCI with
    the tail probability ``Phi(-c_k)`` of look ``k`` on each side."""
    flags = np.asarray(successes).astype(bool).ravel()
    x = _prepare(flags.astype(np.float64), looks, design)
    n, k = x.size, len(looks)
    last = design.is_final(looks, final)
    hits = int(x.sum())
    if n < max(design.min_n, 1):
        p = hits / n if n else 0.0
        return _early(n, k, design, Estimate(value=p, low=0.0, high=1.0, confidence=0.0))
    c = design.constant(looks, final)
    low, high = clopper_pearson(hits, n, c)
    est = Estimate(value=hits / n, low=low, high=high, confidence=1 - design.alpha)
    decision, why = _decide(est, limit, side, last)
    msg = (
        f"look {k}, {n} items: share {hits / n:.2%} RCI [{low:.2%}, {high:.2%}] vs {side} "
        f"{limit:.2%}: {why}"
    )
    return Look(decision, est, n, k, c, msg)


def combine(decisions: Iterable[Decision]) -> Decision:
    """A candidate's state from its gates' (kept) decisions: any fail -> "fail"; all pass ->
    "pass"; any still running -> "continue"; otherwise "inconclusive"."""
    ds = list(decisions)
    if not ds:
        raise ValueError("no gate decisions to combine")
    if "fail" in ds:
        return "fail"
    if all(d == "pass" for d in ds):
        return "pass"
    if "continue" in ds:
        return "continue"
    return "inconclusive"


def looks_schedule(min_n: int, max_n: int, growth: float = 2.0) -> tuple[int, ...]:
    """Planned look counts ``min_n, min_n * growth, ...`` (rounded up), ``max_n`` last.

    Geometric spacing looks often while the data are few (where a gross miss or a large
    margin is already decisive) and rarely later, so that few looks share the alpha and the
    last interval stays close to the fixed-sample one: 4, 8, 16, 32, 64, 120 for 4..120.
    """
    if growth <= 1.0 or not 1 <= min_n <= max_n:
        raise ValueError("need growth > 1 and 1 <= min_n <= max_n")
    out, n = [], float(min_n)
    while math.ceil(n) < max_n:
        if not out or math.ceil(n) > out[-1]:
            out.append(math.ceil(n))
        n *= growth
    return (*out, max_n)
