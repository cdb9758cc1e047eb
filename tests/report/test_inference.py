"""Confirmatory and exploratory families, adjusted p-values, and who may be called best."""

import json

import numpy as np
import pytest

from pytest_ablation.cli.main import main
from pytest_ablation.report.html import best_variants
from pytest_ablation.stats.inference import annotate
from pytest_ablation.stats.paired import paired_delta

PROMPTS = [f"prompt {i}" for i in range(8)]


def variant(name, shift, rng, *, reference="ref", claims=()):
    samples = [{"prompt": p, "seed_index": s} for p in PROMPTS for s in range(2)]
    base = rng.normal(0.0, 1.0, size=len(samples))
    values = base + shift + rng.normal(0.0, 0.05, size=len(samples))
    delta = paired_delta(values, base, units=[s["prompt"] for s in samples])
    metric = {**delta.to_dict(), "direction": "higher", "samples": values.tolist(), "reference_samples": base.tolist()}
    return {
        "variant": name,
        "reference": reference,
        "is_reference": name == reference,
        "samples": samples,
        "metrics": {"score": metric},
        "expectations": list(claims),
    }


def study(rng, **shifts):
    return {
        "study": "s",
        "references": ["ref"],
        "metrics": ["score"],
        "variants": [variant(name, shift, rng) for name, shift in shifts.items()],
    }


def test_families_and_adjustments():
    rng = np.random.default_rng(0)
    s = study(rng, ref=0.0, big=1.0, none=0.0)
    s["variants"][1]["expectations"] = [
        {
            "metric": "score",
            "claim": "above_reference",
            "margin": 0.0,
            "passed": True,
            "verdict": "supported",
            "family": "declared",
            "family_size": 3,
            "p_value": 2.0**-8,
            "alpha": 0.025,
        }
    ]
    claim = dict(s["variants"][1]["expectations"][0])
    annotate([s])
    ref, big, none = (v["metrics"]["score"] for v in s["variants"])
    assert ref["family"] == "reference" and ref["p_value"] is None and not ref["significant"]
    assert big["family"] == "confirmatory" and big["significant"]
    # A claimed cell is adjusted by Bonferroni over its study's declared family, whatever ran.
    assert big["p_adjusted"] == min(1.0, 3 * big["p_value"])
    assert none["family"] == "exploratory" and none["p_adjusted"] >= none["p_value"]
    # The claim's verdict was decided in its test: the report does not change it.
    assert s["variants"][1]["expectations"][0] == claim


def test_best_only_where_significant_after_adjustment():
    rng = np.random.default_rng(1)
    clear = study(rng, ref=0.0, better=1.0, worse=-1.0)
    annotate([clear])
    assert best_variants(clear, "score", "higher") == {"better"}
    # A variant that is highest by noise alone is not called best.
    noise = study(rng, ref=0.0, same=0.0, other=0.0)
    annotate([noise])
    assert best_variants(noise, "score", "higher") == set()
    # The reference is best only when every other variant is significantly worse.
    worse = study(rng, ref=0.0, a=-1.0, b=-1.5)
    annotate([worse])
    assert best_variants(worse, "score", "higher") == {"ref"}


@pytest.mark.slow
def test_plan_prints_prompts_needed(tmp_path, capsys):
    rng = np.random.default_rng(2)
    s = study(rng, ref=0.0, v=0.3)
    report = {
        "format": "pytest-ablation-report",
        "version": 3,
        "studies": [s],
        "cases": [{"study": "s", "variant": "v", "outcome": "passed"}],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["plan", str(path), "--metric", "score", "--effect", "0.05", "--max-seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "prompts at 1 seed(s)" in out and "prompts at 2 seed(s)" in out
    row = next(line for line in out.splitlines() if line.startswith("s "))
    needed = [int(x) for x in row.split()[-2:]]
    # Within-prompt noise is small (0.05) next to an effect of 0.05 at 8 prompts: a handful of
    # prompts suffice, and a second seed never needs more prompts.
    assert 6 <= needed[1] <= needed[0] < 40
    assert main(["plan", str(path), "--metric", "score", "--effect", "0.05", "--max-seeds", "2", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [(v["study"], v["variant"]) for v in planned["variants"]] == [("s", "v")]
    assert [planned["variants"][0]["needed"][seeds] for seeds in ("1", "2")] == needed
    assert main(["plan", str(path), "--metric", "missing", "--effect", "0.05"]) == 2
    with pytest.raises(SystemExit):
        main(["plan", str(path), "--metric", "score", "--effect", "-1"])
