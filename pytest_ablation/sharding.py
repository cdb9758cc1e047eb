"""Splitting the selected tests into N shards for N machines, keeping model groups whole.

Every shard's pytest collects the same tests and computes the same split, so the shards
need no coordination: shard I runs its part and deselects the rest. A unit of the split is
a model group (tests whose fixtures draw on the same models), so each machine loads a model
only if it runs tests that need it, and a study's variants and reference stay together.
Units go, largest first, to the shard with the fewest tests so far; the split depends only
on the group names and sizes, never on the machine or the order of collection.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def assign_units(sizes: dict[str, int], count: int) -> dict[str, int]:
    """Map each unit to a shard index in ``1..count``, balancing the number of tests."""
    loads = [0] * count
    shard_of = {}
    for unit in sorted(sizes, key=lambda u: (-sizes[u], u)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        shard_of[unit] = lightest + 1
        loads[lightest] += sizes[unit]
    return shard_of


def split(items: Sequence[T], unit_of: Callable[[T], str], index: int, count: int) -> tuple[list[T], list[T]]:
    """``(kept, deselected)``: the items of shard ``index`` of ``count`` and the others."""
    units = [unit_of(item) for item in items]
    sizes: dict[str, int] = {}
    for unit in units:
        sizes[unit] = sizes.get(unit, 0) + 1
    shard_of = assign_units(sizes, count)
    kept, dropped = [], []
    for item, unit in zip(items, units):
        (kept if shard_of[unit] == index else dropped).append(item)
    return kept, dropped
