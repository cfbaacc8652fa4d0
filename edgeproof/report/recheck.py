"""A champion re-check (verify-champion) as markdown: Prefect artifact and CLI output."""

from __future__ import annotations

from edgeproof.records import ChampionRecheck

_ICONS = {"healthy": "✅", "regressed": "❌", "no-champion": "➖", "incomparable": "⛔"}


def recheck_markdown(result: ChampionRecheck) -> str:
    """The result as markdown."""
    lines = [
        f"## verify-champion {result.registered_model}: {_ICONS[result.status]} {result.status}",
        "",
    ]
    if result.recorded_speedup and result.speedup_now:
        was, now = result.recorded_speedup, result.speedup_now
        lines.append(
            f"Speedup recorded {was.value:.2f}x [{was.low:.2f}, {was.high:.2f}], "
            f"now {now.value:.2f}x [{now.low:.2f}, {now.high:.2f}]"
        )
    lines += [f"- {reason}" for reason in result.reasons]
    if result.rolled_back_to:
        lines.append(f"\n`champion` rolled back to v{result.rolled_back_to}")
    if result.rollback_refused:
        lines.append(f"\nNo rollback: {result.rollback_refused}")
    return "\n".join(lines) + "\n"
