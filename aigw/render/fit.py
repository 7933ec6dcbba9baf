"""Fit a table to the terminal: ID columns keep their whole width; other columns shrink, and
the least important go first when even that is not enough."""

from __future__ import annotations

from collections.abc import Sequence

# Rich draws a column with one space of padding each side and a rule between columns.
GAP = 3
NARROWEST = 6  # a non-ID column narrower than this reads as noise: drop one instead


def columns_that_fit(
    widths: Sequence[int], keys: Sequence[bool], priorities: Sequence[int], room: int
) -> list[int]:
    """Indexes of the columns to show: every key column, and the others in order of priority
    (ties: the leftmost first) while each can still have NARROWEST characters."""
    shown = list(range(len(widths)))

    def needed(indexes: list[int]) -> int:
        own = sum(widths[i] if keys[i] else min(widths[i], NARROWEST) for i in indexes)
        return own + GAP * (len(indexes) - 1)

    droppable = sorted((i for i in shown if not keys[i]), key=lambda i: (priorities[i], -i))
    while needed(shown) > room and droppable:
        shown.remove(droppable.pop(0))
    return shown
