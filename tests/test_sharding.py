from hypothesis import given
from hypothesis import strategies as st

from pytest_ablation.harness.sharding import bounds, split


def test_one_study_is_spread_and_groups_are_cut_only_where_balance_requires():
    items = [("zs2", i) for i in range(8)] + [("exvideo", i) for i in range(6)] + [("alone", 0)]
    kept = {index: split(items, lambda item: item, index, 2)[0] for index in (1, 2)}
    # Ordered by group: alone, exvideo x6, zs2 x8; dealt as runs of 8 and 7 (kept in the
    # order collected).
    assert kept[1] == [("zs2", 0)] + [("exvideo", i) for i in range(6)] + [("alone", 0)]
    assert kept[2] == [("zs2", i) for i in range(1, 8)]
    one_study = [("zs2", i) for i in range(5)]
    spread = [split(one_study, lambda item: item, index, 3)[0] for index in (1, 2, 3)]
    assert [len(shard) for shard in spread] == [2, 2, 1]


def test_more_shards_than_tests_leaves_the_last_shards_empty():
    items = [("g", i) for i in range(2)]
    assert [len(split(items, lambda item: item, index, 5)[0]) for index in range(1, 6)] == [1, 1, 0, 0, 0]
    assert bounds(0, 3) == [(0, 0), (0, 0), (0, 0)]


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 20), min_size=1, max_size=12),
    st.integers(1, 6),
)
def test_every_test_runs_on_exactly_one_shard_and_loads_stay_balanced(sizes, count):
    items = [(unit, i) for unit in sorted(sizes) for i in range(sizes[unit])]
    shards = [split(items, lambda item: item, index, count) for index in range(1, count + 1)]
    kept = [item for shard, _ in shards for item in shard]
    assert sorted(kept) == sorted(items)
    for shard, dropped in shards:
        assert len(shard) + len(dropped) == len(items)
        assert not set(shard) & set(dropped)
    loads = [len(shard) for shard, _ in shards]
    assert max(loads) - min(loads) <= 1
    # Contiguous runs: a group is cut at most count - 1 times over all shards.
    pieces = sum(len({unit for unit, _ in shard}) for shard, _ in shards)
    assert pieces <= len(sizes) + count - 1


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 20), min_size=1, max_size=12),
    st.randoms(),
)
def test_the_split_does_not_depend_on_the_order_tests_are_seen(sizes, random):
    items = [(unit, i) for unit in sizes for i in range(sizes[unit])]
    shuffled = list(items)
    random.shuffle(shuffled)
    for index in (1, 2, 3):
        assert sorted(split(items, lambda item: item, index, 3)[0]) == sorted(
            split(shuffled, lambda item: item, index, 3)[0]
        )
