from pytest_ablation.results.gate import compare, judge, summarize


def entry(variant, metric, value, direction="higher", study="s"):
    return {"study": study, "variant": variant, "metric": metric, "value": value, "direction": direction}


def test_judge_respects_direction_and_tolerance():
    assert judge("higher", 1.0, 0.95, 0.1) == "ok"
    assert judge("higher", 1.0, 0.85, 0.1) == "regressed"
    assert judge("higher", 1.0, 1.2, 0.1) == "improved"
    assert judge("lower", 1.0, 1.2, 0.1) == "regressed"
    assert judge("lower", 1.0, 0.8, 0.1) == "improved"
    assert judge("info", 1.0, 100.0, 0.0) == "info"


def test_compare_classifies_every_entry():
    baseline = [entry("a", "m", 1.0), entry("a", "gone", 1.0), entry("b", "m", 1.0), entry("c", "m", 1.0)]
    current = [entry("a", "m", 0.5), entry("b", "m", 1.0), entry("b", "extra", 2.0)]
    rows = compare(baseline, current, ran={("s", "a"), ("s", "b")}, default_tolerance=lambda metric, e: 0.01)
    status = {(r.variant, r.metric): r.status for r in rows}
    assert status == {
        ("a", "m"): "regressed",
        ("a", "gone"): "missing",
        ("b", "m"): "ok",
        ("c", "m"): "not run",
        ("b", "extra"): "new",
    }
    summary = summarize(rows, "base.json")
    assert summary["failed"] is True
    assert summary["counts"]["not run"] == 1


def test_not_run_alone_passes():
    rows = compare([entry("a", "m", 1.0)], [], ran=set())
    assert not summarize(rows, "b")["failed"]


def test_tolerance_override_wins():
    rows = compare(
        [entry("a", "m", 1.0)], [entry("a", "m", 0.9)], tolerances={"m": 0.2}, default_tolerance=lambda metric, e: 0.0
    )
    assert rows[0].status == "ok" and rows[0].tolerance == 0.2
