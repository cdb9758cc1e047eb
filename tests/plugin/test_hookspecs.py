"""Every hook the plugin declares has an implementation in the plugin itself, so a run
without extensions goes through the same code as one with them."""

import inspect

import pluggy
import pytest

from pytest_ablation.harness import hookspecs, plugin


def _declared() -> list[str]:
    return sorted(
        name for name, value in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("pytest_ablation_")
    )


def test_the_plugin_declares_hooks():
    assert _declared() == [
        "pytest_ablation_add_metrics",
        "pytest_ablation_check_prompts",
        "pytest_ablation_model_roles",
        "pytest_ablation_report",
        "pytest_ablation_visible_gpus",
    ]


def test_the_defaults_of_the_start_up_checks_refuse_nothing():
    assert plugin.pytest_ablation_model_roles(fixturename="zs2") is None
    assert plugin.pytest_ablation_check_prompts(profile=None, prompts=["a horse galloping"]) is None


def test_every_declared_hook_has_a_default_implementation():
    manager = pluggy.PluginManager("pytest")
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, "ablation")
    missing = [name for name in _declared() if not getattr(manager.hook, name).get_hookimpls()]
    assert missing == []


def test_the_default_registers_the_built_in_metrics_first_so_a_conftest_can_replace_one():
    import dataclasses

    from pytest_ablation.metrics.registry import builtin_metrics

    builtins = builtin_metrics()
    replacement = dataclasses.replace(builtins[0], definition="a conftest's own definition")

    class Conftest:
        @pluggy.HookimplMarker("pytest")
        def pytest_ablation_add_metrics(self, register):
            register(replacement)

    manager = pluggy.PluginManager("pytest")
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, "ablation")
    manager.register(Conftest(), "conftest")
    registered = {}
    manager.hook.pytest_ablation_add_metrics(register=lambda spec: registered.__setitem__(spec.name, spec))
    assert sorted(registered) == sorted(spec.name for spec in builtins)
    assert registered[replacement.name] is replacement


def test_the_default_report_hook_leaves_the_report_as_it_is():
    report = {"results": [], "studies": []}
    assert plugin.pytest_ablation_report(config=None, report=report) is None
    assert report == {"results": [], "studies": []}


def test_a_metric_registered_by_one_run_is_unknown_to_the_next_run_in_the_same_process(pytester):
    study = "import pytest\n\n@pytest.mark.ablation('s', metrics=['mean_brightness'])\ndef test_marked():\n    pass\n"
    registering, other = pytester.mkdir("registering"), pytester.mkdir("other")
    (registering / "conftest.py").write_text(
        "from pytest_ablation.metrics.registry import MetricSpec, Score\n\n"
        "def pytest_ablation_add_metrics(register):\n"
        "    register(MetricSpec(name='mean_brightness', direction='higher', tolerance=0.0,\n"
        "        definition='mean pixel value', source='a test', needs=frozenset(), version='1',\n"
        "        evaluate=lambda inp: Score(float(inp.video.mean()), ())))\n"
    )
    for folder in (registering, other):
        (folder / "test_marked.py").write_text(study)

    pytester.runpytest_inprocess("-p", "no:randomly", "registering").assert_outcomes(passed=1)
    second = pytester.runpytest_inprocess("-p", "no:randomly", "other")
    assert second.ret == pytest.ExitCode.USAGE_ERROR
    second.stderr.fnmatch_lines(["*other/test_marked.py::test_marked: unknown metric(s) 'mean_brightness'*"])
    pytester.runpytest_inprocess("-p", "no:randomly", "registering").assert_outcomes(passed=1)
