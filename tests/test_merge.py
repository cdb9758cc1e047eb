"""Merging reports: what must agree, shards present once each, equal reruns tolerated."""

import copy

import pytest

from pytest_ablation.results.report_json import build_report
from pytest_ablation.results.merge import MergeError, merge_reports
from report_files import result_rows


def record(study, variant, value, reference="a"):
    metric = {
        "direction": "higher",
        "value": value,
        "reference_value": 0.5,
        "delta": value - 0.5,
        "ci": [value - 0.6, value - 0.4],
        "n": 2,
        "confidence": 0.95,
        "samples": [value, value],
        "reference_samples": [0.5, 0.5],
        "per_frame": [None, None],
        "details": {},
    }
    return {
        "study": study,
        "variant": variant,
        "reference": reference,
        "is_reference": variant == reference,
        "nodeid": f"t.py::test[{variant}]",
        "generator": "g",
        "generator_identity": {},
        "config": {},
        "reference_config": {},
        "settings": {},
        "samples": [],
        "expectations": [],
        "metrics": {"clip_score": metric},
    }


ENVIRONMENT = {
    "python": "3.11.7",
    "platform": "Linux-a",
    "packages": {"torch": "2.15.0"},
    "git": {"commit": "abc", "dirty": False},
    "workers": {"main": {"device": "cpu"}},
}
PROFILE = {"name": "tiny", "settings": {"seeds": 2}}
METRICS = {"clip_score": {"direction": "higher", "tolerance": 0.5, "definition": "d", "source": "s"}}


def make(records, shard=None, **changes):
    report = build_report(
        records,
        profile=copy.deepcopy(PROFILE),
        environment=copy.deepcopy(ENVIRONMENT),
        metric_info=copy.deepcopy(METRICS),
        cache={"hits": 1, "misses": 2, "memory_hits": 0, "corrupted": []},
        created="2026-01-01T00:00:00+00:00",
        shard=shard,
    )
    for dotted, value in changes.items():
        target = report
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return report


def test_merged_shards_equal_the_single_run():
    records = [record("s", "a", 0.5), record("s", "b", 0.7), record("t", "a", 0.1)]
    single = make(records)
    merged = merge_reports([("one", make(records[:2], (1, 2))), ("two", make(records[2:], (2, 2)))])
    assert merged["studies"] == single["studies"] and result_rows(merged) == result_rows(single)
    assert merged["cache"]["misses"] == 4
    assert merged["merged_from"] == [
        {"index": 1, "count": 2, "report": "one"},
        {"index": 2, "count": 2, "report": "two"},
    ]


@pytest.mark.parametrize(
    "field, value",
    [
        ("profile__settings__seeds", 3),
        ("profile__name", "sd15"),
        ("environment__packages__torch", "2.14.0"),
        ("environment__python", "3.12.0"),
        ("environment__git__commit", "def"),
        ("metrics__clip_score__definition", "another"),
    ],
)
def test_disagreeing_runs_are_refused_naming_the_field(field, value):
    one = make([record("s", "a", 0.5)], (1, 2))
    two = make([record("t", "a", 0.5)], (2, 2), **{field: value})
    with pytest.raises(MergeError, match=field.replace("__", r"\.") + " differs"):
        merge_reports([("one", one), ("two", two)])


def test_shards_must_be_complete_distinct_and_of_one_split():
    a, b = make([record("s", "a", 0.5)], (1, 3)), make([record("t", "a", 0.5)], (2, 3))
    with pytest.raises(MergeError, match="shard.s. 3/3 missing"):
        merge_reports([("a", a), ("b", b)])
    assert len(merge_reports([("a", a), ("b", b)], partial=True)["studies"]) == 2
    with pytest.raises(MergeError, match="both shard 1/3"):
        merge_reports([("a", a), ("a2", a)], partial=True)
    with pytest.raises(MergeError, match="shard.count differs"):
        merge_reports([("a", a), ("c", make([record("t", "a", 0.5)], (2, 2)))], partial=True)
    with pytest.raises(MergeError, match="not a shard"):
        merge_reports([("a", a), ("d", make([record("t", "a", 0.5)]))], partial=True)


def test_a_variant_run_twice_must_agree():
    same = merge_reports([("x", make([record("s", "a", 0.5)])), ("y", make([record("s", "a", 0.5)]))])
    assert [r["variant"] for r in result_rows(same)] == ["a"]
    with pytest.raises(MergeError, match="s a was run in both x and y with different results"):
        merge_reports([("x", make([record("s", "a", 0.5)])), ("y", make([record("s", "a", 0.6)]))])


def test_one_differing_prompt_among_hundreds_is_named_in_one_short_line():
    prompts = [f"prompt number {i} with a few more words to make it long" for i in range(946)]
    other = list(prompts)
    other[512] = "a different prompt"
    one = make([record("s", "a", 0.5)], (1, 2), profile__settings__prompts=prompts)
    two = make([record("t", "a", 0.5)], (2, 2), profile__settings__prompts=other)
    with pytest.raises(MergeError) as refused:
        merge_reports([("one", one), ("two", two)])
    message = str(refused.value)
    assert "profile.settings.prompts[512] differs ('a different prompt' there," in message
    assert len(message) < 300
    shorter = make([record("t", "a", 0.5)], (2, 2), profile__settings__prompts=prompts[:-1])
    with pytest.raises(MergeError, match=r"profile\.settings\.prompts length differs \(945 there, 946 in one\)"):
        merge_reports([("one", one), ("two", shorter)])
