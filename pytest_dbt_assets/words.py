"""Small pieces of the plugin's sentences: counted nouns and shortened lists."""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 row``, ``3 rows`` (``nouns`` where adding an s is wrong)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def listed(items: Sequence[str], limit: int = 3) -> str:
    """The first ``limit`` items, then how many more: ``a, b, c and 4 more``."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
