"""Bad options and studies: clear errors naming the option, before any model loads."""

import os

import pytest


def assert_usage_error(result, pattern):
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["ERROR: " + pattern])
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])


def test_unknown_profile(toy):
    result = toy.runpytest("--ablation-profile=nonesuch")
    assert_usage_error(result, "--ablation-profile: *nonesuch*tiny*")


@pytest.mark.parametrize("devices", ["gpu0", "cuda:a", "cpu,", "cuda:0;cuda:1"])
def test_malformed_device_list(toy, devices):
    result = toy.runpytest(f"--ablation-devices={devices}")
    assert_usage_error(result, "--ablation-devices: * is not a device; allowed: 'auto', 'cpu', or *")


def test_device_index_beyond_the_gpus(toy, monkeypatch):
    # torch's answers on an eight-GPU machine whose CUDA_VISIBLE_DEVICES leaves two GPUs.
    monkeypatch.setenv("SIMULATED_GPUS", "8")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,6")
    result = toy.runpytest("--ablation-devices=cuda:0,cuda:2")
    assert_usage_error(
        result,
        "--ablation-devices: cuda:2 is beyond the 2 visible GPUs (CUDA_VISIBLE_DEVICES=3,6); allowed indices: 0..1",
    )


def test_cuda_device_without_gpus(toy):
    result = toy.runpytest("--ablation-devices=cuda:0")
    assert_usage_error(result, "--ablation-devices: cuda:0 is beyond the 0 visible GPUs*none, use 'cpu'")


def test_unwritable_report_dir(toy):
    (toy.path / "afile").write_text("not a folder")
    result = toy.runpytest("--ablation-report-dir=afile/reports")
    assert_usage_error(result, "--ablation-report-dir: cannot write reports to *afile/reports: *")


def test_unwritable_baseline_target(toy):
    (toy.path / "afile").write_text("not a folder")
    result = toy.runpytest("--ablation-save-baseline=afile/base.json")
    assert_usage_error(result, "--ablation-save-baseline: cannot write *afile/base.json: *")


def test_reference_that_is_not_a_variant(toy):
    toy.makepyfile(
        test_flicker="""
        import pytest

        @pytest.mark.ablation("flicker", reference="s=0.7", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(["*reference 's=0.7' is not one of the test's variants: s=0.0, s=0.5"])


@pytest.mark.parametrize(
    "marker_arguments, message",
    [
        (
            'reference="s=0.5", metrics=["temporal_flickerin"]',
            "*unknown metric(s) 'temporal_flickerin'; did you mean 'temporal_flickering'? known "
            "metrics: *temporal_flickering*",
        ),
        (
            'referense="s=0.5", metrics=["temporal_flickering"]',
            "*unknown ablation marker argument(s) *'referense'*; did you mean 'reference'? allowed: "
            "reference, metrics, *",
        ),
    ],
    ids=["metric", "marker argument"],
)
def test_a_misspelt_name_in_the_marker_names_the_closest(toy, marker_arguments, message):
    toy.makepyfile(
        test_flicker=f"""
        import pytest

        @pytest.mark.ablation("flicker", {marker_arguments})
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={{s}}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines([message])


def test_missing_reference_with_several_variants(toy):
    toy.makepyfile(
        test_flicker="""
        import pytest

        @pytest.mark.ablation("flicker", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(["*name the one they are compared to with reference=..., one of: s=0.0, s=0.5"])


def test_bad_ini_tolerance(toy):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_tolerances = clip_score=-1\n")
    result = toy.runpytest()
    assert_usage_error(result, "ablation_tolerances: 'clip_score=-1' is not 'metric = tolerance' with a tolerance >= 0")


def test_fixture_without_marker(toy):
    toy.makepyfile(
        test_nomark="""
        def test_plain(ablation):
            pass
    """
    )
    result = toy.runpytest("test_nomark.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the `ablation` fixture needs @pytest.mark.ablation*"])


@pytest.mark.parametrize(
    "option, allowed",
    [
        ("--ablation-gate", "a baseline report.json file"),
        ("--ablation-profile", "a built-in profile name or a profile TOML file"),
        ("--ablation-report-dir", "a folder"),
        ("--ablation-cache-dir", "a folder"),
        ("--ablation-save-baseline", "a file path such as reports/baseline.json"),
        ("--ablation-shard", "I/N with 1 <= I <= N, e.g. 1/4"),
        ("--ablation-save-videos", "one of mp4, gif, png"),
        ("--ablation-devices", "'auto', 'cpu' or a list such as cuda:0,cuda:1"),
    ],
)
def test_an_empty_option_is_an_error_not_the_default(toy, option, allowed):
    result = toy.runpytest(f"{option}=")
    assert_usage_error(result, f"{option}: empty value; expected {allowed}*")


def test_an_empty_ini_gate_is_an_error(toy):
    result = toy.runpytest("-o", "ablation_gate=")
    assert_usage_error(result, "ablation_gate (ini): empty value; expected a baseline report.json file*")


def test_a_bad_boolean_ini_names_the_key(toy):
    result = toy.runpytest("-o", "ablation_no_cache=maybe")
    assert_usage_error(result, "ablation_no_cache (ini): *maybe*; allowed: true or false*")


@pytest.mark.parametrize(
    "value, problem",
    [
        (
            '"0.5"',
            'studies[[]0[]].variants[[]0[]].metrics.mean_brightness.value (flicker s=0.0): got "0.5"; '
            "expected a number or null",
        ),
        (
            "true",
            "studies[[]0[]].variants[[]0[]].metrics.mean_brightness.value (flicker s=0.0): got true; "
            "expected a number or null",
        ),
        ("NaN", "flicker s=0.0 mean_brightness has value nan*"),
        ("null", "flicker s=0.0 mean_brightness has value None*"),
    ],
)
def test_a_baseline_value_that_is_not_a_number_stops_the_run(toy, value, problem):
    text = (
        '{"format": "pytest-ablation-report", "version": 3, "cases": [], "studies": [{"study": "flicker", '
        '"variants": [{"variant": "s=0.0", "reference": "s=0.0", "metrics": {"mean_brightness": '
        f'{{"direction": "higher", "value": {value}}}}}}}]}}]}}'
    )
    (toy.path / "bad.json").write_text(text)
    result = toy.runpytest("--ablation-gate=bad.json")
    assert_usage_error(result, f"--ablation-gate: baseline *bad.json*{problem}")


def test_a_baseline_that_is_not_utf8_stops_the_run(toy):
    (toy.path / "bad.json").write_bytes(b'{"format": "pytest-ablation-report", "x": "\xff\xfe"}')
    result = toy.runpytest("--ablation-gate=bad.json")
    assert_usage_error(result, "--ablation-gate: baseline *bad.json is not UTF-8 text*")


def test_a_profile_that_is_not_utf8_stops_the_run(toy):
    (toy.path / "latin.toml").write_bytes(b'[profile]\nname = "caf\xe9"\n')
    result = toy.runpytest("--ablation-profile=latin.toml")
    assert_usage_error(result, "--ablation-profile: *latin.toml: not UTF-8 text*")


def test_save_baseline_naming_a_directory(toy):
    (toy.path / "somedir").mkdir()
    result = toy.runpytest("--ablation-save-baseline=somedir")
    assert_usage_error(result, "--ablation-save-baseline: *somedir is a directory; expected a file path*")


def test_a_cache_dir_that_is_a_file(toy):
    (toy.path / "cachefile").write_text("not a folder")
    result = toy.runpytest("--ablation-cache-dir=cachefile")
    assert_usage_error(result, "--ablation-cache-dir: cannot write to *cachefile: *--ablation-no-cache*")
    # Without the cache nothing is written there, so the same folder is no obstacle.
    assert toy.runpytest("--ablation-cache-dir=cachefile", "--ablation-no-cache", "--co").ret == 0


def test_a_report_dir_without_free_space(toy, monkeypatch):
    import pytest_ablation.harness.collector as collector

    monkeypatch.setattr(collector, "free_bytes", lambda path: 4096)
    result = toy.runpytest()
    assert_usage_error(result, "--ablation-report-dir: only 4 KiB free on the disk of *; a run needs at least 10 MiB*")


def test_a_profile_without_the_clip_role_a_metric_needs(toy):
    toy.makepyfile(
        test_flicker="""
        import pytest

        @pytest.mark.ablation("needs-clip", reference="s=0.5", metrics=["temporal_consistency"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest()
    assert_usage_error(
        result,
        "--ablation-profile: profile 'toy-test' has no model role 'clip', which "
        "temporal_consistency (needs-clip) need(s); its roles are: toy*",
    )
    # Deselected, the study needs nothing of the profile.
    assert toy.runpytest("-k", "nothingmatches").ret == 5


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b", "1-2"])
def test_a_bad_shard(toy, value):
    result = toy.runpytest(f"--ablation-shard={value}")
    assert_usage_error(result, f"--ablation-shard: got '{value}'; expected I/N with whole numbers 1 <= I <= N*")


def test_ablation_xfail_without_a_reason(toy):
    toy.makepyfile(
        test_flicker="""
        import pytest

        @pytest.mark.ablation("flicker", reference="s=0.5", metrics=["mean_brightness"])
        @pytest.mark.parametrize("strength", [pytest.param(0.0, marks=pytest.mark.ablation_xfail("toy-test")), 0.5],
                                 ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest()
    assert_usage_error(result, "*ablation_xfail needs the profile name(s) and a reason*")


@pytest.mark.parametrize(
    "line, closest",
    [
        ("temporal_flickerng = 0.1", "temporal_flickering"),
        ("mean_brightnes = 0.1", "mean_brightness"),  # the project's own metric (conftest)
    ],
)
def test_a_tolerance_for_a_misspelt_metric_names_the_closest(toy, line, closest):
    toy.makeini(f"[pytest]\nablation_profile = toy.toml\nablation_tolerances = {line}\n")
    result = toy.runpytest()
    name = line.split(" =")[0]
    assert_usage_error(
        result,
        f"ablation_tolerances: no metric named '{name}', so its tolerance "
        f"would never be used; did you mean '{closest}'?",
    )


def test_a_tolerance_for_a_known_metric_is_taken(toy):
    toy.makeini(
        "[pytest]\nablation_profile = toy.toml\n"
        "ablation_tolerances =\n    mean_brightness = 0.5\n    temporal_flickering = 0.1\n"
    )
    assert toy.runpytest("--co").ret == 0


EXVIDEO_STUDY = """
import pytest


@pytest.mark.ablation("position", reference="a", metrics=["temporal_flickering"], unit="seed")
@pytest.mark.parametrize("kind", ["a", "b"])
def test_position(kind, exvideo, ablation):
    ablation.run(exvideo, position=kind)
"""


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("seed", '"abc"', "a whole number >= 0"),
        ("gradient_checkpointing", '"no"', "true or false"),
    ],
)
def test_a_bad_exvideo_recipe_field_stops_the_run_at_collection(toy, field, value, allowed):
    toy.makepyfile(test_flicker=EXVIDEO_STUDY)
    (toy.path / "bad.toml").write_text(
        '[profile]\nname = "bad"\nextends = "toy.toml"\n\n[methods.exvideo]\n'
        "recipe = { steps = 4, clips = 2, frames = 8, height = 32, width = 32, max_frames = 32, "
        f"{field} = {value} }}\n"
    )
    result = toy.runpytest("--ablation-profile=bad.toml")
    assert_usage_error(
        result,
        f"--ablation-profile: profile 'bad': methods.exvideo.recipe.{field}: "
        f"got {value.replace(chr(34), chr(39))}; expected {allowed}*",
    )


@pytest.mark.slow
def test_an_infinite_claim_margin_fails_its_case_and_the_run_ends_with_a_report(toy):
    from .conftest import STUDY

    toy.makepyfile(test_flicker=STUDY.replace("above_reference(margin=0.01)", "above_reference(margin=float('inf'))"))
    result = toy.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*margin must be a finite number >= 0, got inf*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert (toy.path / "reports" / "report.json").exists()


@pytest.mark.slow
def test_a_study_parametrized_with_no_values_says_so(toy):
    toy.makepyfile(
        test_flicker="""
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""
    )
    result = toy.runpytest_subprocess()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(
        ["  test_flicker.py::test_flicker: study 'flicker' has no variants: got empty parameter set*strength*"]
    )
    assert "NOTSET" not in result.stdout.str() + result.stderr.str()
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])
