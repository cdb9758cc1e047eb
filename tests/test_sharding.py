from hypothesis import given
from hypothesis import strategies as st

from pytest_ablation.sharding import assign_units, split


def test_a_group_is_never_split_and_the_largest_goes_first():
    items = [("zs2", i) for i in range(8)] + [("exvideo", i) for i in range(6)] + [("alone", 0)]
    kept = {index: split(items, lambda item: item[0], index, 2)[0] for index in (1, 2)}
    assert {g for g, _ in kept[1]} == {"zs2"}
    assert {g for g, _ in kept[2]} == {"exvideo", "alone"}


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 20), min_size=1, max_size=12),
    st.integers(1, 6),
)
def test_every_test_runs_on_exactly_one_shard_and_loads_stay_balanced(sizes, count):
    items = [(unit, i) for unit in sorted(sizes) for i in range(sizes[unit])]
    shards = [split(items, lambda item: item[0], index, count) for index in range(1, count + 1)]
    kept = [item for shard, _ in shards for item in shard]
    assert sorted(kept) == sorted(items)
    for index, (shard, dropped) in enumerate(shards, start=1):
        assert len(shard) + len(dropped) == len(items)
        units = {unit for unit, _ in shard}
        assert all(unit not in units for unit, _ in dropped)
    # Greedy largest-first: no shard exceeds the lightest by more than the largest unit.
    loads = [len(shard) for shard, _ in shards]
    assert max(loads) - min(loads) <= max(sizes.values())


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 20), min_size=1, max_size=12))
def test_the_assignment_does_not_depend_on_the_order_units_are_seen(sizes):
    reversed_sizes = dict(reversed(list(sizes.items())))
    assert assign_units(sizes, 3) == assign_units(reversed_sizes, 3)
