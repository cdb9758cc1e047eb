"""Declared claims: three verdicts, a family fixed by the study, decidability at collection,
the unit a generator's replicates impose, and rounds of prompts."""

import re
import subprocess
import sys

import pytest
from report_files import report_of

PROMPTS = [f"prompt {k}" for k in range(12)]

LIFT_STUDY = '''
import pytest
import torch

PROMPTS = {prompts!r}


class Lift:
    """The reference's video plus a per-prompt shift: variant "up" brighter, "down" darker,
    "same" exactly the reference."""

    def cache_identity(self):
        return {{"toy": "lift"}}

    def generate(self, request):
        g = request.generator
        base = torch.rand((request.frames, 3, request.height, request.width), generator=g) * 0.5
        index = PROMPTS.index(request.prompt)
        wobble = 0.01 * ((index * 7) % 5) / 5  # differs by prompt: a spread to test against
        lift = {{"up": 0.1 + wobble, "down": -0.1 - wobble}}.get(request.config["arm"], 0.0)
        return (base + 0.25 + lift).clamp(0, 1)


@pytest.mark.ablation("lift", reference="ref", metrics=["mean_brightness"], prompts=PROMPTS,
                      seeds=1, claims={claims!r}{extra})
@pytest.mark.parametrize("arm", ["ref", "up", "down", "same"])
def test_lift(arm, ablation):
    ablation.run(Lift(), arm=arm)
'''

ABOVE = {
    "up": ["mean_brightness above_reference"],
    "down": ["mean_brightness above_reference"],
    "same": ["mean_brightness above_reference"],
}


def study(prompts=PROMPTS[:8], claims=ABOVE, extra=""):
    return LIFT_STUDY.format(prompts=list(prompts), claims=claims, extra=extra)


def claims_of(path):
    report = report_of(path)
    return {
        (v["variant"], e["metric"], e["claim"]): e
        for s in report["studies"]
        for v in s["variants"]
        for e in v["expectations"]
    }


@pytest.mark.slow
def test_each_claim_gets_one_of_three_verdicts_everywhere(toy):
    toy.makepyfile(test_lift=study())
    result = toy.runpytest("test_lift.py", "-p", "no:randomly")
    # "up" supported; "down" refuted and "same" inconclusive: both fail their tests.
    result.assert_outcomes(passed=2, failed=2)
    claims = claims_of(toy.path)
    verdicts = {variant: e["verdict"] for (variant, *_), e in claims.items()}
    assert verdicts == {"up": "supported", "down": "refuted", "same": "inconclusive"}
    for e in claims.values():
        assert e["family"] == "declared" and e["family_size"] == 3
        assert e["p_adjusted"] == pytest.approx(min(1.0, 3 * e["p_value"]))
        assert e["passed"] == (e["verdict"] == "supported")
    # The failures say which verdict they got.
    result.stdout.fnmatch_lines(
        [
            "*lift: down mean_brightness above_reference: REFUTED*",
            "*lift: same mean_brightness above_reference: INCONCLUSIVE*",
        ]
    )
    # The run's summary opens with the verdicts, one line per claim.
    text = result.stdout.str()
    verdicts_at = text.index("ablation verdicts")
    assert verdicts_at < text.index("ablation results")
    block = text[verdicts_at : text.index("ablation results")]
    assert "lift:" in block.splitlines()
    for variant, word in (("up", "supported"), ("down", "refuted"), ("same", "inconclusive")):
        assert any(line.split()[:2] == [word, variant] for line in block.splitlines())
    markdown = (toy.path / "reports" / "report.md").read_text()
    html = (toy.path / "reports" / "report.html").read_text()
    for word in ("supported", "refuted", "inconclusive"):
        assert re.search(rf"\|\s*{word}\s*\|", markdown)
        assert f">{word}</td>" in html
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_ablation.cli.main",
            "compare",
            str(toy.path / "reports" / "report.json"),
            str(toy.path / "reports" / "report.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert all(word in shown.stdout for word in ("supported", "refuted", "inconclusive")), shown.stdout


@pytest.mark.slow
def test_a_claims_verdict_and_adjusted_p_do_not_depend_on_what_ran(toy):
    toy.makepyfile(test_lift=study())
    toy.runpytest("test_lift.py", "-p", "no:randomly")
    whole = claims_of(toy.path)
    for args in [("-k", "up"), ("-k", "same or down"), ("--ablation-shard", "2/3")]:
        toy.runpytest("test_lift.py", "-p", "no:randomly", *args)
        part = claims_of(toy.path)
        assert part, args
        for key, e in part.items():
            assert (e["verdict"], e["p_adjusted"], e["family_size"]) == (
                whole[key]["verdict"],
                whole[key]["p_adjusted"],
                whole[key]["family_size"],
            ), args
    # Another order: the test ids in reverse.
    ids = [f"test_lift.py::test_lift[{arm}]" for arm in ("same", "down", "up", "ref")]
    toy.runpytest("-p", "no:randomly", *ids)
    assert {k: (e["verdict"], e["p_adjusted"]) for k, e in claims_of(toy.path).items()} == {
        k: (e["verdict"], e["p_adjusted"]) for k, e in whole.items()
    }


@pytest.mark.slow
def test_undecidable_claims_are_listed_at_collection_and_expected_to_fail(toy):
    toy.makepyfile(test_lift=study(prompts=PROMPTS[:6]))  # 3 claims need 7 units
    result = toy.runpytest("test_lift.py", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "ablation: undecidable (expected failures): lift: 3 declared claim(s) cannot be decided*",
            "*with 6 prompt(s)*they need at least 7 prompts*",
        ]
    )
    result.assert_outcomes(passed=1, xfailed=3)
    assert {e["verdict"] for e in claims_of(toy.path).values()} == {"inconclusive"}
    assert {e["needs"] for e in claims_of(toy.path).values()} == {7}
    strict = toy.runpytest("test_lift.py", "-p", "no:randomly", "--ablation-require-decidable")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines(["*--ablation-require-decidable*lift: 3 declared claim(s)*"])


REPLICATED = """
import pytest
import torch

from pytest_ablation import replicates


class Tuned:
    def cache_identity(self):
        return {"toy": "tuned"}

    def generate(self, request):
        g = request.generator
        base = torch.rand((request.frames, 3, request.height, request.width), generator=g) * 0.5
        return base + (0.1 * (request.seed_index + 1) if request.config["arm"] == "up" else 0.0)


@pytest.fixture
@replicates("seed", count=lambda profile: 4)
def tuned():
    return Tuned()


@pytest.mark.ablation("tuned", reference="ref", metrics=["mean_brightness"], unit=UNIT)
@pytest.mark.parametrize("arm", ["ref", "up"])
def test_tuned(arm, tuned, ablation):
    ablation.run(tuned, arm=arm)
"""


def test_a_generator_with_replicates_per_seed_index_needs_the_seed_as_unit(toy):
    toy.makepyfile(test_tuned=REPLICATED.replace("UNIT", '"prompt"'))
    wrong = toy.runpytest("test_tuned.py", "-p", "no:randomly")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    wrong.stderr.fnmatch_lines(
        ["*unit='prompt', but the generator fixture 'tuned' draws its randomness per seed index*set unit='seed'*"]
    )
    toy.makepyfile(test_tuned=REPLICATED.replace("UNIT", '"seed"'))
    right = toy.runpytest("test_tuned.py", "-p", "no:randomly")
    right.assert_outcomes(passed=2)
    report = report_of(toy)
    up = next(v for v in report["studies"][0]["variants"] if v["variant"] == "up")
    # The fixture's 4 replicates became the study's seeds: 4 units.
    assert up["metrics"]["mean_brightness"]["n"] == 4
    assert up["metrics"]["mean_brightness"]["unit"] == "seed"


def test_rounds_stop_when_every_claim_is_decided(toy):
    toy.makepyfile(
        test_lift=study(
            prompts=PROMPTS,
            claims={"up": ["mean_brightness above_reference"]},
            extra=", rounds={'first': 4, 'step': 2}",
        )
    )
    result = toy.runpytest("test_lift.py", "-p", "no:randomly", "-k", "up")
    result.assert_outcomes(passed=1)
    [claim] = claims_of(toy.path).values()
    assert claim["verdict"] == "supported"
    sequential = claim["sequential"]
    assert sequential["looks"][-1] == 12 and sequential["n"] < 12
    # Decided at a look before the budget: the prompts after it were never generated.
    report = report_of(toy)
    up = next(v for v in report["studies"][0]["variants"] if v["variant"] == "up")
    assert len(up["samples"]) == sequential["n"] < len(PROMPTS)
