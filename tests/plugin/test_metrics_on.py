"""``metrics_on``: metrics a study adds on some profiles only (the toy world's scene metrics
read only that world's videos)."""

import pytest
from report_files import report_of, result_rows

STUDY = """
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering"],
                      metrics_on={METRICS_ON})
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


def _metrics(toy):
    report = report_of(toy)
    return {row["metric"] for row in result_rows(report)}


@pytest.mark.slow
def test_metrics_named_for_this_profile_are_added_and_others_are_not(toy):
    toy.makepyfile(test_flicker=STUDY.replace("{METRICS_ON}", '{"toy-test": ["mean_brightness"]}'))
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert _metrics(toy) == {"temporal_flickering", "mean_brightness"}

    toy.makepyfile(test_flicker=STUDY.replace("{METRICS_ON}", '{"toy": ["mean_brightness"]}'))
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert _metrics(toy) == {"temporal_flickering"}


@pytest.mark.slow
def test_bad_metrics_on_stops_collection_naming_it(toy):
    toy.makepyfile(test_flicker=STUDY.replace("{METRICS_ON}", '{"toy": "mean_brightness"}'))
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*metrics_on must map profile names to non-empty lists of metric names*"])

    # A metric unknown everywhere is refused even when the profile is another one.
    toy.makepyfile(test_flicker=STUDY.replace("{METRICS_ON}", '{"toy": ["no_such_metric"]}'))
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown metric(s) 'no_such_metric'*"])
