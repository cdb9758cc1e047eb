"""A study in a project of its own, as a user writes one: no conftest, only the installed
package. The methods' fixtures must come with it."""

from report_files import report_of, result_rows

OWN_STUDY = """
import pytest


@pytest.mark.ablation("my-tma", reference="mu=0.98", metrics=["temporal_flickering"],
                      seeds=1, settings={"frames": 2, "steps": 1})
@pytest.mark.parametrize("mu", [0.0, 0.98], ids=lambda m: f"mu={m}")
def test_my_tma(mu, zs2, ablation):
    ablation.run(zs2, momentum=mu)
"""


def test_a_study_outside_the_repository_gets_the_method_fixtures(pytester):
    pytester.makepyfile(test_my_study=OWN_STUDY)
    assert not (pytester.path / "conftest.py").exists()
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    report = report_of(pytester)
    [study] = report["studies"]
    assert study["study"] == "my-tma"
    assert {v["variant"] for v in study["variants"]} == {"mu=0.0", "mu=0.98"}
    assert {r["metric"] for r in result_rows(report)} == {"temporal_flickering"}


def test_the_method_fixtures_are_listed_with_their_docs(pytester):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from pytest_ablation.methods.fixtures*",
            "*exvideo_recipe* [[]session scope[]]*",
            "*The post-tuning budget every ExVideo variant gets*",
            "*zs2* [[]session scope[]]*",
            "*ZS² text-to-video sampler on the profile's Stable Diffusion*",
        ]
    )
