"""Plug-ins found through an entry-point group (as MLflow finds its plugins).

edgeproof's own plug-ins register in its pyproject.toml like anyone else's; they come first,
in the order the project lists them (setuptools writes entry points sorted by name), then
the others by name. A plug-in that fails to load names itself in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from edgeproof.errors import ConfigError

OWN_DISTRIBUTION = "edgeproof"


def distribution(ep: EntryPoint) -> str:
    """The distribution that declares ``ep`` ("" when unknown)."""
    return ep.dist.name if ep.dist is not None else ""


def plugin_entry_points(
    group: str, own_order: Sequence[str], own_only: bool = False
) -> list[EntryPoint]:
    """The installed plug-ins of ``group``: edgeproof's own first (in ``own_order``), then
    the others by name; ``own_only`` keeps edgeproof's own."""
    found = list(entry_points(group=group))
    rank = {name: i for i, name in enumerate(own_order)}
    own = sorted(
        (ep for ep in found if distribution(ep) == OWN_DISTRIBUTION),
        key=lambda ep: (rank.get(ep.name, len(rank)), ep.name),
    )
    others = sorted((ep for ep in found if ep not in own), key=lambda ep: ep.name)
    return own if own_only else [*own, *others]


def load_plugin(ep: EntryPoint, what: str, expected: type) -> Any:
    """The object ``ep`` names, checked to be an ``expected`` whose ``name`` is the entry
    point's; ``what`` names the kind of plug-in in the one-line error."""
    where = f"{what} plug-in {ep.name!r} ({ep.value}, from {distribution(ep) or '?'})"
    try:
        plugin = ep.load()
    except Exception as exc:
        raise ConfigError(f"{where} failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(plugin, expected):
        raise ConfigError(f"{where} is a {type(plugin).__name__}, not a {expected.__name__}")
    if plugin.name != ep.name:
        raise ConfigError(f"{where} declares the {what} {plugin.name!r}: the names must match")
    return plugin
