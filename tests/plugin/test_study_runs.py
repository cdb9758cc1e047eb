"""A study run end to end: pairing, expectations, report, cache."""

import os

import pytest

from .conftest import lines
from report_files import report_of, result_rows

PROMPTS = ["a red circle", "a blue square", "a green cross", "a white star", "a grey ring", "a pink dot"]


# The plugin tests' flicker study with its two claims declared on the marker.
DECLARED_STUDY = """
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering", "mean_brightness"],
                      claims={"s=0.0": ["temporal_flickering above_reference 0.01"],
                              "s=1.0": ["temporal_flickering below_reference"]})
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


def test_a_study_runs_pairs_and_reports(toy):
    result = toy.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    report = report_of(toy)
    assert [(r["variant"], r["metric"]) for r in result_rows(report)] == [
        ("s=0.0", "mean_brightness"),
        ("s=0.0", "temporal_flickering"),
        ("s=0.5", "mean_brightness"),
        ("s=0.5", "temporal_flickering"),
        ("s=1.0", "mean_brightness"),
        ("s=1.0", "temporal_flickering"),
    ]
    by = {(r["variant"], r["metric"]): r for r in result_rows(report)}
    still, ref = by["s=0.0", "temporal_flickering"], by["s=0.5", "temporal_flickering"]
    assert still["value"] == 1.0  # a still video does not flicker
    assert still["reference_value"] == ref["value"]
    assert still["delta"] == pytest.approx(still["value"] - ref["value"], abs=1e-12)
    assert still["ci"][0] <= still["delta"] <= still["ci"][1]
    assert still["n"] == 6 and still["n_samples"] == 12  # 6 prompts (the unit) x 2 seeds
    assert still["p_value"] < 0.05 and still["mde"] > 0 and still["family"] == "confirmatory"
    assert by["s=1.0", "mean_brightness"]["family"] == "exploratory"
    assert ref["p_value"] is None and ref["family"] == "reference"
    assert ref["delta"] == 0.0
    # Terminal table and report files.
    result.stdout.fnmatch_lines(["*ablation results*", "flicker: reference s=0.5*", "*s=0.5  (ref)*"])
    assert (toy.path / "reports" / "report.md").read_text().startswith("# Ablation report")
    runs = list((toy.path / "reports" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.json").exists()
    env = report["environment"]
    assert env["packages"]["torch"] and report["profile"]["name"] == "toy-test"
    variant = report["studies"][0]["variants"][0]
    assert variant["settings"]["frames"] == 4 and variant["settings"]["prompts"] == PROMPTS
    assert {s["seed_index"] for s in variant["samples"]} == {0, 1}
    [claim] = variant["expectations"]
    assert {
        k: claim[k] for k in ("metric", "claim", "margin", "verdict", "passed", "n", "family", "family_size", "needs")
    } == {
        "metric": "temporal_flickering",
        "claim": "above_reference",
        "margin": 0.01,
        "verdict": "supported",
        "passed": True,
        "n": 6,
        "family": "exploratory",
        "family_size": 1,
        "needs": None,
    }
    # A still video against a noisy one: every prompt agrees, so both tests give their smallest p.
    assert claim["p_value"] == pytest.approx(2.0**-6)
    # Made in the test body, it is the only exploratory claim of its test: a family of one.
    assert claim["p_adjusted"] == pytest.approx(2.0**-6)
    # Declared on the marker with the study's other claim, it is one of a family of two:
    # Bonferroni gives it 2 * 2**-6 = 2**-5, above 0.025, and six prompts cannot decide two
    # claims (they need seven), so both claimed cases are strict expected failures.
    toy.makepyfile(test_flicker=DECLARED_STUDY)
    declared = toy.runpytest("-p", "no:randomly")
    declared.assert_outcomes(passed=1, xfailed=2)
    declared.stdout.fnmatch_lines(
        ["ablation: undecidable (expected failures): flicker: 2 declared claim(s) cannot be decided*"]
    )
    variant = report_of(toy)["studies"][0]["variants"][0]
    [claim] = variant["expectations"]
    assert (claim["verdict"], claim["passed"], claim["family"], claim["family_size"], claim["needs"]) == (
        "inconclusive",
        False,
        "declared",
        2,
        7,
    )
    assert claim["p_value"] == pytest.approx(2.0**-6)
    assert claim["p_adjusted"] == pytest.approx(2.0**-5)
    assert variant["metrics"]["temporal_flickering"]["p_adjusted"] == pytest.approx(min(1.0, 2 * still["p_value"]))


def test_variant_alone_computes_its_reference_with_the_same_numbers(toy):
    toy.runpytest("--ablation-no-cache").assert_outcomes(passed=3)
    full = {(r["variant"], r["metric"]): r for r in result_rows(report_of(toy))}
    toy.runpytest("--ablation-no-cache", "test_flicker.py::test_flicker[s=1.0]").assert_outcomes(passed=1)
    alone = {(r["variant"], r["metric"]): r for r in result_rows(report_of(toy))}
    assert set(alone) == {("s=1.0", "mean_brightness"), ("s=1.0", "temporal_flickering")}
    # Adjusted p-values depend on which other cells ran (the family); nothing else may differ.
    family_bound = ("p_adjusted", "significant")
    for key, entry in alone.items():
        assert {k: v for k, v in entry.items() if k not in family_bound} == {
            k: v for k, v in full[key].items() if k not in family_bound
        }


def test_failed_expectation_prints_every_number(toy):
    toy.makepyfile(
        test_claim="""
        import pytest

        @pytest.mark.ablation("claim", reference="s=0.5", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [0.5, 1.0], ids=lambda s: f"s={s}")
        def test_claim(strength, flicker, ablation):
            result = ablation.run(flicker, strength=strength)
            if strength == 1.0:
                ablation.expect(result, "temporal_flickering").above_reference(margin=0.05)
    """
    )
    result = toy.runpytest("test_claim.py")
    result.assert_outcomes(passed=1, failed=1)
    # Noise flickers more on every prompt: the opposite test rejects, so the claim is refuted.
    result.stdout.fnmatch_lines(
        [
            "*ExpectationFailed: claim: s=1.0 temporal_flickering above_reference: REFUTED",
            "  expected temporal_flickering of s=1.0 to be above the reference by more than 0.05",
            "*variant   s=1.0  0.*",
            "*reference s=0.5  0.*",
            "*delta -0.*, 95% CI [[]-0.*, -0.*[]] over 6 prompt(s) x 2 seed(s), margin 0.05",
            "*refuted: the opposite test rejects, p = 0.0156 (one-sided), adjusted 0.0156, at most the level 0.025",
        ]
    )
    report = report_of(toy)
    [claim] = report["studies"][0]["variants"][1]["expectations"]
    assert (claim["metric"], claim["claim"], claim["margin"], claim["verdict"], claim["passed"]) == (
        "temporal_flickering",
        "above_reference",
        0.05,
        "refuted",
        False,
    )
    assert claim["p_value"] == 1.0 and claim["p_refute"] == pytest.approx(2.0**-6)


@pytest.mark.slow
def test_every_claim_is_checked_and_too_few_prompts_never_pass(toy):
    toy.makepyfile(
        test_soft="""
        import pytest

        @pytest.mark.ablation("soft", reference="s=0.5", metrics=["temporal_flickering"],
                              prompts=["a red circle", "a blue square"])
        @pytest.mark.parametrize("strength", [0.5, 0.0], ids=lambda s: f"s={s}")
        def test_soft(strength, flicker, ablation):
            result = ablation.run(flicker, strength=strength)
            if strength == 0.0:
                ablation.expect(result, "temporal_flickering").above_reference()
                ablation.expect(result, "temporal_flickering").not_below_reference(0.5)
    """
    )
    result = toy.runpytest("test_soft.py")
    result.assert_outcomes(passed=1, failed=1)
    # A still video flickers less on both prompts, but two prompts cannot establish anything:
    # both claims are checked, both fail, and the message says how many prompts they need.
    result.stdout.fnmatch_lines(
        [
            "*ExpectationFailed: soft: s=0.0 temporal_flickering above_reference: INCONCLUSIVE",
            "  expected temporal_flickering of s=0.0 to be above the reference by more than 0",
            "*cannot be decided with 2 prompt(s): the smallest adjusted p-value they can give is 0.5, "
            "above the 0.0125 each of the test's 2 exploratory claims gets (Holm); the claim needs at "
            "least 7 prompts",
            "soft: s=0.0 temporal_flickering not_below_reference: INCONCLUSIVE",
            "  expected temporal_flickering of s=0.0 to be not below the reference by more than 0.5",
            "*2 of the test's 2 claims not supported",
        ]
    )
    [variant] = [v for v in report_of(toy)["studies"][0]["variants"] if v["variant"] == "s=0.0"]
    claims = variant["expectations"]
    assert [(c["claim"], c["verdict"], c["passed"], c["needs"], c["underpowered"]) for c in claims] == [
        ("above_reference", "inconclusive", False, 7, True),
        ("not_below_reference", "inconclusive", False, 7, True),
    ]


def test_strict_xfail_of_an_unsupported_claim(toy):
    toy.makepyfile(
        test_xfail="""
        import pytest

        @pytest.mark.ablation("x", reference="s=0.5", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [
            0.5,
            pytest.param(1.0, marks=pytest.mark.xfail(strict=True, reason="noise flickers")),
        ], ids=lambda s: f"s={s}")
        def test_x(strength, flicker, ablation):
            result = ablation.run(flicker, strength=strength)
            if strength == 1.0:
                ablation.expect(result, "temporal_flickering").above_reference()
    """
    )
    toy.runpytest("test_xfail.py").assert_outcomes(passed=1, xfailed=1)


def test_second_run_loads_everything_from_the_cache(toy):
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    generated = len(open(log).read().splitlines())
    assert generated == 3 * 12  # 3 variants x 6 prompts x 2 seeds, each generated once
    first = report_of(toy)
    second = toy.runpytest()
    second.assert_outcomes(passed=3)
    assert len(open(log).read().splitlines()) == generated
    second.stdout.fnmatch_lines(["cache: * loaded, 0 computed"])
    assert result_rows(report_of(toy)) == result_rows(first)


def test_videos_are_made_seed_index_by_seed_index_and_reported_in_plan_order(toy):
    # A generator whose model depends on the seed index (ExVideo's tuning runs) switches
    # models once per seed index: all of seed index 0's videos, then seed index 1's.
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    made = [line.split() for line in open(log).read().splitlines()]
    assert len(made) == 36
    for start in range(0, 36, 12):  # one variant's 6 prompts x 2 seeds at a time
        assert [int(fields[-1]) for fields in made[start : start + 12]] == [0] * 6 + [1] * 6
    # The report keeps the plan's order: prompt by prompt, each prompt's seeds in turn.
    variant = report_of(toy)["studies"][0]["variants"][0]
    assert [s["seed_index"] for s in variant["samples"]] == [0, 1] * 6
    prompts = [s["prompt"] for s in variant["samples"]]
    assert prompts[0::2] == prompts[1::2] and len(set(prompts)) == 6


def test_no_cache_recomputes(toy):
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    toy.runpytest("--ablation-no-cache").assert_outcomes(passed=3)
    assert len(open(log).read().splitlines()) == 72


def test_corrupted_entry_is_recomputed_and_reported(toy):
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    videos = sorted((toy.path / ".ablation-cache" / "v1" / "videos").rglob("*.safetensors"))
    assert len(videos) == 36
    videos[0].write_bytes(videos[0].read_bytes()[:100])
    before = result_rows(report_of(toy))
    result = toy.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["cache: corrupted entry recomputed: *" + videos[0].name + "*"])
    assert len(open(log).read().splitlines()) == 37
    assert result_rows(report_of(toy)) == before


def test_a_folder_in_an_entrys_place_is_recomputed_never_a_failure(toy):
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    videos = sorted((toy.path / ".ablation-cache" / "v1" / "videos").rglob("*.safetensors"))
    videos[0].unlink()
    videos[0].mkdir()  # e.g. left there by another tool: not the cache's to remove
    before = result_rows(report_of(toy))
    result = toy.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "cache: unreadable entry recomputed: *" + videos[0].name + "*",
            "cache: 1 entry computed but not kept (first: *"
            + videos[0].name
            + ": the unreadable entry could not be replaced: *",
        ]
    )
    assert len(open(log).read().splitlines()) == 37
    assert result_rows(report_of(toy)) == before and videos[0].is_dir()


def test_changing_the_configuration_misses_the_cache(toy):
    log = os.environ["TOY_GENERATE_LOG"]
    toy.runpytest().assert_outcomes(passed=3)
    (toy.path / "toy.toml").write_text((toy.path / "toy.toml").read_text().replace("scale = 0.9", "scale = 0.8"))
    toy.runpytest().assert_outcomes(passed=3)
    assert len(open(log).read().splitlines()) == 72


def test_model_loaded_once_in_a_process(toy, second_study):
    toy.makepyfile(test_steady=second_study)
    toy.runpytest().assert_outcomes(passed=5)
    assert len(lines(__import__("pathlib").Path(os.environ["TOY_LOAD_LOG"]))) == 1
    workers = report_of(toy)["environment"]["workers"]
    assert workers["main"]["loads"] == {"toy": 1}


def test_profile_specific_strict_xfail(toy):
    toy.makepyfile(
        test_xfail="""
        import pytest

        @pytest.mark.ablation("x", reference="s=0.5", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [
            0.5,
            pytest.param(1.0, marks=pytest.mark.ablation_xfail("toy-test", reason="noise flickers")),
            pytest.param(0.0, marks=pytest.mark.ablation_xfail("other", reason="never here")),
        ], ids=lambda s: f"s={s}")
        def test_x(strength, flicker, ablation):
            result = ablation.run(flicker, strength=strength)
            ablation.expect(result, "temporal_flickering").not_below_reference()
    """
    )
    result = toy.runpytest("test_xfail.py", "-rxX")
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL*s=1.0*on profile 'toy-test': noise flickers"])


def test_profile_xfail_that_passes_fails_the_run(toy):
    toy.makepyfile(
        test_xpass="""
        import pytest

        @pytest.mark.ablation("x", metrics=["temporal_flickering"])
        @pytest.mark.ablation_xfail("toy-test", reason="believed broken")
        def test_x(flicker, ablation):
            ablation.run(flicker, strength=0.5)
    """
    )
    toy.runpytest("test_xpass.py").assert_outcomes(failed=1)
