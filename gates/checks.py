"""Gate checks: a candidate's summary + the baseline's + thresholds -> ``Verdict``.

Sampled quantities are decided three ways from their confidence interval: **pass** when the
whole interval clears the limit, **fail** when it lies wholly on the wrong side,
**inconclusive** otherwise. Deterministic quantities (peak RSS, size) pass or fail. A
threshold set to ``None`` is not checked. The verdict lists every failing and inconclusive
check, not only the first. ``gates.on_inconclusive`` maps inconclusive checks: ``fail``
makes the verdict ``fail``, ``warn`` lets it pass with the warning kept in ``reasons``,
``rerun`` fails like ``fail`` here (the flow measures such candidates once more, longer,
before this final decision).
The baseline gets only the absolute checks (relative ones compare it with itself).
"""

from __future__ import annotations

from edgeproof.config import GatesConfig
from edgeproof.records import CandidateSummary, Check, Estimate, Verdict


def _fmt(x: float, unit: str) -> str:
    if unit == "%":
        return f"{x * 100:.2f}%"
    if unit == "pt":
        return f"{x * 100:.2f} pt"
    if unit == "x":
        return f"{x:.2f}x"
    if unit == "kl":
        return f"{x:.2e}"
    return f"{x:.3f} {unit}".rstrip()


def _at_most(name: str, what: str, est: Estimate, limit: float, unit: str) -> Check:
    """Pass when the whole CI is <= limit; fail when the whole CI is above it."""
    ci = f"{what} {_fmt(est.value, unit)} [{_fmt(est.low, unit)}, {_fmt(est.high, unit)}]"
    if est.high <= limit:
        status, rel = "pass", "<="
    elif est.low > limit:
        status, rel = "fail", ">"
    else:
        status, rel = "inconclusive", "straddles"
    return Check(
        name=name,
        status=status,
        value=est.value,
        low=est.low,
        high=est.high,
        limit=limit,
        message=f"{ci} {rel} max {_fmt(limit, unit)}",
    )


def _at_least(name: str, what: str, est: Estimate, limit: float, unit: str) -> Check:
    """Pass when the whole CI is >= limit; fail when the whole CI is below it."""
    ci = f"{what} {_fmt(est.value, unit)} [{_fmt(est.low, unit)}, {_fmt(est.high, unit)}]"
    if est.low >= limit:
        status, rel = "pass", ">="
    elif est.high < limit:
        status, rel = "fail", "<"
    else:
        status, rel = "inconclusive", "straddles"
    return Check(
        name=name,
        status=status,
        value=est.value,
        low=est.low,
        high=est.high,
        limit=limit,
        message=f"{ci} {rel} min {_fmt(limit, unit)}",
    )


def _exact(
    name: str,
    what: str,
    value: float,
    limit: float,
    ok: bool,
    rel: str,
    unit: str,
    baseline: float | None = None,
) -> Check:
    return Check(
        name=name,
        status="pass" if ok else "fail",
        value=value,
        limit=limit,
        baseline=baseline,
        message=f"{what} {_fmt(value, unit)} {rel if ok else _negate(rel)} {_fmt(limit, unit)}",
    )


def _negate(rel: str) -> str:
    return {"<= max": "> max", ">= min": "< min"}[rel]


def _skipped(name: str, why: str) -> Check:
    return Check(name=name, status="skipped", message=why)


def _relative_checks(s: CandidateSummary, base: CandidateSummary, g: GatesConfig) -> list[Check]:
    checks: list[Check] = []
    acc = g.accuracy
    for name, limit in (
        ("accuracy.max_drop_abs", acc.max_drop_abs),
        ("accuracy.max_drop_rel", acc.max_drop_rel),
    ):
        if limit is None:
            continue
        if s.accuracy_drop is None or base.accuracy is None:
            checks.append(_skipped(name, "no labels in the eval data"))
        elif name.endswith("abs"):
            checks.append(_at_most(name, "accuracy drop", s.accuracy_drop, limit, "pt"))
        else:
            ref = base.accuracy.value
            rel = Estimate(
                value=s.accuracy_drop.value / ref,
                low=s.accuracy_drop.low / ref,
                high=s.accuracy_drop.high / ref,
                confidence=s.accuracy_drop.confidence,
            )
            checks.append(_at_most(name, "relative accuracy drop", rel, limit, "%"))
    fid = g.fidelity
    if fid.min_top1_agreement is not None:
        checks.append(
            _at_least(
                "fidelity.min_top1_agreement",
                "top-1 agreement",
                s.top1_agreement,
                fid.min_top1_agreement,
                "%",
            )
        )
    if fid.max_kl is not None:
        checks.append(_at_most("fidelity.max_kl", "mean KL", s.mean_kl, fid.max_kl, "kl"))
    if g.latency.min_speedup is not None:
        if s.speedup is None:
            checks.append(_skipped("latency.min_speedup", "no paired baseline samples"))
        else:
            checks.append(
                _at_least("latency.min_speedup", "speedup", s.speedup, g.latency.min_speedup, "x")
            )
    if g.memory.min_reduction is not None:
        reduction = 1.0 - s.peak_rss_mb / base.peak_rss_mb
        checks.append(
            _exact(
                "memory.min_reduction",
                "peak RSS reduction",
                reduction,
                g.memory.min_reduction,
                reduction >= g.memory.min_reduction,
                ">= min",
                "%",
                baseline=base.peak_rss_mb,
            )
        )
    return checks


def _absolute_checks(s: CandidateSummary, g: GatesConfig) -> list[Check]:
    checks: list[Check] = []
    if g.latency.p90_budget_ms is not None:
        checks.append(
            _at_most(
                "latency.p90_budget_ms", "p90 latency", s.p90_ms, g.latency.p90_budget_ms, "ms"
            )
        )
    if g.memory.max_peak_rss_mb is not None:
        limit = g.memory.max_peak_rss_mb
        checks.append(
            _exact(
                "memory.max_peak_rss_mb",
                "peak RSS",
                s.peak_rss_mb,
                limit,
                s.peak_rss_mb <= limit,
                "<= max",
                "MB",
            )
        )
    if g.size.max_mb is not None:
        checks.append(
            _exact(
                "size.max_mb",
                "size",
                s.size_mb,
                g.size.max_mb,
                s.size_mb <= g.size.max_mb,
                "<= max",
                "MB",
            )
        )
    return checks


RELATIVE = (
    "accuracy.max_drop_abs",
    "accuracy.max_drop_rel",
    "fidelity.min_top1_agreement",
    "fidelity.max_kl",
    "latency.min_speedup",
    "memory.min_reduction",
)


def decide(summary: CandidateSummary, baseline: CandidateSummary, gates: GatesConfig) -> Verdict:
    """Every enabled check of one candidate, and the verdict they add up to."""
    if summary.is_baseline:
        checks = [_skipped(name, "baseline") for name in RELATIVE if _enabled(name, gates)]
    else:
        checks = _relative_checks(summary, baseline, gates)
    checks += _absolute_checks(summary, gates)
    failed = [c for c in checks if c.status == "fail"]
    unsure = [c for c in checks if c.status == "inconclusive"]
    reasons = [f"{c.name}: {c.message}" for c in failed]
    if gates.on_inconclusive in ("fail", "rerun"):  # rerun: decided after measuring again
        reasons += [f"{c.name}: inconclusive: {c.message}" for c in unsure]
        status = "fail" if failed or unsure else "pass"
    else:
        reasons += [f"{c.name}: warning: inconclusive: {c.message}" for c in unsure]
        status = "fail" if failed else "pass"
    return Verdict(
        candidate=summary.candidate, status=status, checks=tuple(checks), reasons=tuple(reasons)
    )


def _enabled(name: str, gates: GatesConfig) -> bool:
    section, key = name.split(".", 1)
    return getattr(getattr(gates, section), key) is not None
