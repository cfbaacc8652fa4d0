"""The one line that says a target fell back to its baseline (``registry.fallback_to_baseline``).

No optimized candidate passed, so the target is ``blocked``; the promotion registered its
baseline instead (or left the champion where the champion rules say). The markdown
summary, the terminal and the JUnit XML print the same line.
"""

from __future__ import annotations

from edgeproof.gates.outcome import FALLBACK_REASON, is_fallback
from edgeproof.records import Promotion, TargetOutcome


def fallback_line(outcome: TargetOutcome, promotion: Promotion | None) -> str | None:
    """``Fallback: no optimized candidate passed; the baseline fp32 is champion (v3)`` and
    its variants; None when the target did not fall back."""
    if promotion is None or not is_fallback(promotion):
        return None
    named = "" if outcome.baseline in (None, "baseline") else f" {outcome.baseline}"
    head = f"{FALLBACK_REASON[0].upper()}{FALLBACK_REASON[1:]}; the baseline{named}"
    if promotion.moved:
        return f"{head} is champion (v{promotion.version})"
    if promotion.refused:
        return (
            f"{head} was registered as v{promotion.version}, but champion moved meanwhile: "
            f"not promoted (champion v{promotion.champion_after})"
        )
    versus = outcome.champion
    if versus is not None and versus.status == "identical":
        same = f"v{versus.champion_version}, the same bytes"
        return f"{head} is champion already ({same}): nothing moved"
    where = f"v{promotion.champion_after}" if promotion.champion_after else "unset"
    status = f" ({versus.status})" if versus is not None else ""
    return f"{head} was not promoted{status}: champion stays {where}"
