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
    monkeypatch.setenv("SIMULATED_GPUS", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,6")
    result = toy.runpytest("--ablation-devices=cuda:0,cuda:2")
    assert_usage_error(result, "--ablation-devices: cuda:2 is beyond the 2 visible GPUs (CUDA_VISIBLE_DEVICES=3,6); allowed indices: 0..1")


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
    toy.makepyfile(test_flicker='''
        import pytest

        @pytest.mark.ablation("flicker", reference="s=0.7", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    ''')
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(["*reference 's=0.7' is not one of the test's variants: s=0.0, s=0.5"])


def test_unknown_metric(toy):
    toy.makepyfile(test_flicker='''
        import pytest

        @pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickerin"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    ''')
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(["*unknown metric(s) 'temporal_flickerin'; known metrics: *temporal_flickering*"])


def test_missing_reference_with_several_variants(toy):
    toy.makepyfile(test_flicker='''
        import pytest

        @pytest.mark.ablation("flicker", metrics=["temporal_flickering"])
        @pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
        def test_flicker(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    ''')
    result = toy.runpytest()
    assert_usage_error(result, "invalid ablation study:")
    result.stderr.fnmatch_lines(["*name the one they are compared to with reference=..., one of: s=0.0, s=0.5"])


def test_bad_ini_tolerance(toy):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_tolerances = clip_score=-1\n")
    result = toy.runpytest()
    assert_usage_error(result, "ablation_tolerances: 'clip_score=-1' is not 'metric = tolerance' with a tolerance >= 0")


def test_fixture_without_marker(toy):
    toy.makepyfile(test_nomark='''
        def test_plain(ablation):
            pass
    ''')
    result = toy.runpytest("test_nomark.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the `ablation` fixture needs @pytest.mark.ablation*"])
