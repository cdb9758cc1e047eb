"""Splitting the selected tests into N shards for N machines, one study over many machines.

Every shard's pytest collects the same tests and computes the same split, so the shards
need no coordination: shard I runs its part and deselects the rest. A unit of the split is
a test (a case): each case computes its variant and reads or computes its reference
through the cache, so a study may be spread over every shard and each shard still pairs
each variant with its reference. The tests are ordered by (model group, node id) and dealt
out in contiguous runs whose sizes differ by at most one, so the shards are balanced and a
model group is cut only where balance requires it: a machine loads few models. The split
depends only on the groups and node ids of the selected tests, never on the machine or the
order of collection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar
from collections.abc import Callable, Sequence

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

T = TypeVar("T")


def bounds(total: int, count: int) -> list[tuple[int, int]]:
    """``count`` contiguous ``[start, stop)`` runs over ``total`` positions, the first
    ``total % count`` of them one longer: sizes differ by at most one."""
    size, extra = divmod(total, count)
    runs, start = [], 0
    for index in range(count):
        stop = start + size + (1 if index < extra else 0)
        runs.append((start, stop))
        start = stop
    return runs


def split(
    items: Sequence[T], key: Callable[[T], SupportsRichComparison], index: int, count: int
) -> tuple[list[T], list[T]]:
    """``(kept, deselected)``: the items of shard ``index`` of ``count`` and the others.

    ``key`` orders the items, e.g. ``(model group, node id)``: it must be distinct per item
    for the split not to depend on the order of ``items``. Both lists keep ``items``' order.
    """
    ordered = sorted(range(len(items)), key=lambda i: key(items[i]))
    start, stop = bounds(len(items), count)[index - 1]
    mine = set(ordered[start:stop])
    kept = [item for i, item in enumerate(items) if i in mine]
    dropped = [item for i, item in enumerate(items) if i not in mine]
    return kept, dropped
