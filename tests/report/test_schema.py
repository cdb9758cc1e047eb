"""report.json's published schema, checked against an implementation it does not share code
with (the ``jsonschema`` package), and every reader's answer to a report that breaks it."""

from __future__ import annotations

import copy
import functools
import json
import random
from pathlib import Path

import jsonschema
import pytest

from pytest_ablation.stats.claims import VERDICTS
from pytest_ablation.cli.main import main
from pytest_ablation.metrics.registry import DIRECTIONS
from pytest_ablation.results.report_json import (
    CASE_OUTCOMES,
    READABLE_VERSIONS,
    ReportError,
    load_report,
)
from pytest_ablation.results.schema import MAX_DEPTH, report_schema, schema_problem

ROOT = Path(__file__).resolve().parents[2]
# Reports the plugin wrote (the committed baselines of both built-in CPU profiles).
WRITTEN = [ROOT / "reports" / "baseline.json", ROOT / "reports" / "baseline-toy.json"]

WRONG_VALUES = ["text", 3, 2.5, True, None, [], [1, "a"], {}, {"x": 1}, -1]


@functools.lru_cache(maxsize=1)
def _reference_validator():
    return jsonschema.Draft202012Validator(report_schema())


def _reference_errors(document) -> list:
    return list(_reference_validator().iter_errors(document))


def _path_text(error) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


def _paths(document, prefix=()):
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document[:3]):
            yield from _paths(value, (*prefix, index))


def _trimmed(document, keep: int = 2):
    """``document`` with every list cut to its first ``keep`` items: every kind of entry is
    still there, and checking it is quick."""
    if isinstance(document, dict):
        return {key: _trimmed(value, keep) for key, value in document.items()}
    if isinstance(document, list):
        return [_trimmed(value, keep) for value in document[:keep]]
    return document


def _mutated(document, rng: random.Random):
    """A copy of ``document`` with one value replaced by a value of another kind, or one
    field removed, at a random place."""
    paths = [p for p in _paths(document) if p]
    path = rng.choice(paths)
    changed = copy.deepcopy(document)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(WRONG_VALUES))
    return changed


def test_the_schema_is_a_valid_json_schema():
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    assert [error.message for error in meta.iter_errors(report_schema())] == []
    assert report_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_lists_the_codes_own_words():
    defs = report_schema()["$defs"]
    assert tuple(defs["case"]["properties"]["outcome"]["enum"]) == CASE_OUTCOMES
    assert set(defs["claim"]["properties"]["verdict"]["enum"]) == set(VERDICTS)
    assert set(defs["direction"]["enum"]) == set(DIRECTIONS)
    assert tuple(report_schema()["properties"]["version"]["enum"]) == READABLE_VERSIONS


@pytest.mark.parametrize("path", WRITTEN, ids=lambda p: p.name)
def test_reports_the_plugin_wrote_conform(path):
    document = json.loads(path.read_text())
    assert schema_problem(document) is None
    assert _reference_errors(document) == []


@pytest.mark.parametrize("path", WRITTEN, ids=lambda p: p.name)
@pytest.mark.slow
def test_the_check_agrees_with_jsonschema_on_mutated_reports(path):
    document = _trimmed(json.loads(path.read_text()))
    assert any(v["expectations"] for s in document["studies"] for v in s["variants"])
    rng = random.Random(path.name)
    rejected = 0
    for _ in range(200):
        changed = _mutated(document, rng)
        problem = schema_problem(changed)
        errors = _reference_errors(changed)
        assert (problem is None) == (not errors), (problem, [e.message for e in errors[:3]])
        if problem:
            rejected += 1
            # The field named is one that jsonschema also finds at fault.
            named = problem.split(":", 1)[0].split(" (", 1)[0]
            assert named in {_path_text(e) for e in errors} | {
                _path_text(c) for e in errors for c in (e.context or ())
            }, (problem, errors[:3])
    # The mutations reach typed fields, not only the free-form tables.
    assert rejected >= 50


def _write(tmp_path: Path, document, name="r.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def _tampered(rng: random.Random, document, count: int):
    found = []
    while len(found) < count:
        changed = _mutated(document, rng)
        if schema_problem(changed):
            found.append(changed)
    return found


def test_every_reader_refuses_a_tampered_report_in_one_line(tmp_path, capsys):
    document = _trimmed(json.loads(WRITTEN[0].read_text()))
    good = _write(tmp_path, document, "good.json")
    for index, changed in enumerate(_tampered(random.Random(7), document, 12)):
        bad = _write(tmp_path, changed, f"bad{index}.json")
        for argv in (
            ["show", str(bad)],
            ["show", str(bad), "--json"],
            ["compare", str(good), str(bad)],
            ["compare", str(bad), str(good)],
            ["html", str(bad), "-o", str(tmp_path / "page.html")],
            ["merge", str(good), str(bad), "-o", str(tmp_path / f"merged{index}")],
            ["baseline", str(bad), str(tmp_path / "base.json")],
        ):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            assert "does not match report.json's schema" in err and "Traceback" not in err


def test_a_report_nested_past_pythons_recursion_is_refused(tmp_path):
    deep = tmp_path / "deep.json"
    text = json.dumps({"format": "pytest-ablation-report", "version": 2})
    deep.write_text(text[:-1] + ', "profile": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ReportError, match="nested too deeply"):
        load_report(deep)


def test_a_free_form_table_nested_too_deep_is_refused_naming_it(tmp_path):
    document = json.loads(WRITTEN[0].read_text())
    nested: dict = {}
    inner = nested
    for _ in range(MAX_DEPTH + 5):
        inner["a"] = {}
        inner = inner["a"]
    document["studies"][0]["variants"][0]["config"] = nested
    with pytest.raises(
        ReportError,
        match=r"studies\[0\]\.variants\[0\]\.config\.a\.a.*nested "
        rf"more than {MAX_DEPTH} levels deep",
    ):
        load_report(_write(tmp_path, document))


@pytest.mark.slow
def test_every_reader_takes_any_report_the_schema_accepts(tmp_path, capsys):
    """Values the schema leaves free (a variant's config, a metric's details, optional fields
    left out) never crash a reader."""
    document = _trimmed(json.loads(WRITTEN[1].read_text()))
    good = _write(tmp_path, document, "good.json")
    rng = random.Random(11)
    accepted = 0
    while accepted < 15:
        changed = _mutated(document, rng)
        if schema_problem(changed):
            continue
        accepted += 1
        path = _write(tmp_path, changed, f"ok{accepted}.json")
        for argv in (
            ["show", str(path)],
            ["show", str(path), "--json"],
            ["compare", str(good), str(path)],
            ["compare", str(path), str(good)],
            ["html", str(path), "-o", str(tmp_path / "page.html")],
            ["merge", str(good), str(path), "-o", str(tmp_path / f"merged{accepted}")],
        ):
            assert main(argv) in (0, 1, 2), argv
            assert "Traceback" not in capsys.readouterr().err


def test_the_cli_prints_the_published_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == report_schema()
    assert printed["properties"]["format"]["const"] == "pytest-ablation-report"
