"""Experiment trackers (--ablation-wandb, --ablation-mlflow): what a run logs, read back with
each tracker's own reader, against report.json.

Nothing here reaches the network: W&B runs offline (its default here) with its server set to
a closed port on this machine, and MLflow writes to a local store in the test's folder.
"""

import base64
import hashlib
import json
import struct
import warnings
from pathlib import Path

import pytest
from report_files import report_of, result_rows

wandb = pytest.importorskip("wandb")
mlflow = pytest.importorskip("mlflow")

# The runs are read back in this process: what that takes is imported now, before any test,
# because pytester removes the modules a test imported when it ends, and compiled modules
# (SQLAlchemy's, protobuf's registry of W&B's messages) imported afresh would mix with the
# old ones in the next test.
with warnings.catch_warnings():
    # (MLflow's SQL store warns, as it loads, of its own use of SQLAlchemy.)
    warnings.simplefilter("ignore", DeprecationWarning)
    import alembic.runtime.migration  # noqa: E402,F401
    import mlflow.store.db.utils  # noqa: E402,F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: E402,F401
from mlflow.tracking import MlflowClient  # noqa: E402
from wandb.proto import wandb_internal_pb2  # noqa: E402

from pytest_ablation.harness.trackers.mlflow_tracker import metric_key as mlflow_key  # noqa: E402
from pytest_ablation.harness.trackers.wandb_tracker import metric_key as wandb_key  # noqa: E402

# MLflow's SQL store warns of its own use of SQLAlchemy when this test reads it back.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

FIELDS = ("value", "reference_value", "delta", "ci_low", "ci_high", "p_value")
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens on it here


@pytest.fixture
def tracker_env(monkeypatch, tmp_path):
    """The trackers' own defaults, with every place they write or call kept local."""
    for name in (
        "WANDB_MODE",
        "WANDB_DIR",
        "WANDB_PROJECT",
        "WANDB_ENTITY",
        "WANDB_API_KEY",
        "WANDB_SILENT",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_ALLOW_FILE_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "wandb-home"
    monkeypatch.setenv("WANDB_BASE_URL", CLOSED_PORT)  # were it to go online, it would fail
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    # A store that cannot be reached fails at once instead of retrying for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def finite_numbers(report):
    """``(study, variant, metric, field) -> number`` straight from report.json's results."""
    numbers = {}
    for row in result_rows(report):
        fields = dict(row, ci_low=row["ci"][0], ci_high=row["ci"][1])
        for field in FIELDS:
            if isinstance(fields[field], float):
                numbers[row["study"], row["variant"], row["metric"], field] = fields[field]
    return numbers


def claims_of(report):
    return sorted(
        (s["study"], v["variant"], c["metric"], c["claim"], c["verdict"])
        for s in report["studies"]
        for v in s["variants"]
        for c in v["expectations"]
    )


def verdict_counts(claims):
    return {
        f"claims/{word}": sum(1 for *_, verdict in claims if verdict == word)
        for word in ("supported", "refuted", "inconclusive")
    }


def said(result, text):
    """Whether the run's terminal output holds ``text`` (lines are wrapped at 100 columns)."""
    return " ".join(text.split()) in " ".join(result.stdout.str().split())


def md5_b64(path):
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


# -- MLflow --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.slow
def test_mlflow_logs_the_reports_numbers_claims_gate_files_and_profile(toy, tracker_env):
    toy.runpytest_subprocess("--ablation-save-baseline=base.json").assert_outcomes(passed=3)
    result = toy.runpytest_subprocess("--ablation-gate=base.json", "--ablation-mlflow")
    result.assert_outcomes(passed=3)
    report = report_of(toy)
    store = toy.path / "reports" / "mlflow"
    assert said(result, f"in experiment '{toy.path.name}' of sqlite:///{store}/mlflow.db")

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(toy.path.name)
    [run] = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((store / "artifacts").as_uri())

    numbers = finite_numbers(report)
    logged = {k: v for k, v in run.data.metrics.items() if not k.startswith(("claims/", "gate/"))}
    assert len(logged) == len(numbers) > 0  # every number once, and nothing else
    for key, value in numbers.items():
        assert logged[mlflow_key(*key)] == pytest.approx(value, rel=1e-12, abs=1e-15)
    delta = mlflow_key("flicker", "s=0.0", "temporal_flickering", "delta")
    [point] = client.get_metric_history(run_id, delta)
    assert point.value == pytest.approx(numbers["flicker", "s=0.0", "temporal_flickering", "delta"])

    # The claims' verdicts and the gate's outcome.
    claims = claims_of(report)
    counts = verdict_counts(claims)
    assert (
        {k: run.data.metrics[k] for k in counts}
        == counts
        == {"claims/supported": 2, "claims/refuted": 0, "claims/inconclusive": 0}
    )
    assert run.data.metrics["claims/not_supported_unexpected"] == 0
    assert run.data.metrics["claims/not_supported_expected"] == 0
    assert run.data.tags["ablation.gate"] == "passed" and report["gate"]["failed"] is False
    assert run.data.metrics["gate/failed"] == 0
    assert run.data.metrics["gate/ok"] == report["gate"]["counts"]["ok"]

    # The profile and settings as parameters.
    params = run.data.params
    assert params["profile.name"] == report["profile"]["name"] == "toy-test"
    assert params["profile.settings.seeds"] == "2"
    assert params["profile.models.toy.kind"] == "callable"
    assert json.loads(params["profile.settings.prompts"]) == report["profile"]["settings"]["prompts"]
    assert params["options.gate"] == str(toy.path / "base.json")

    # The tables, as MLflow table artifacts (JSON in log_table's layout) and CSV.
    root = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.json", "report.md", "report.html", "tables", "media"} <= root
    assert {a.path for a in client.list_artifacts(run_id, "tables")} == {
        f"tables/{name}.{ext}" for name in ("results", "claims", "cases", "gate") for ext in ("json", "csv")
    }
    tables = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/results.json", "type": "table"} in tables

    def table(name):
        return json.loads(Path(client.download_artifacts(run_id, f"tables/{name}.json", str(toy.path))).read_text())

    results = table("results")
    rows = [dict(zip(results["columns"], row)) for row in results["data"]]
    fields = ("study", "variant", "metric", "value", "delta", "p_value")
    assert [[r[f] for f in fields] for r in rows] == [[r[f] for f in fields] for r in result_rows(report)]
    assert sorted((r[0], r[1], r[2], r[3], r[5]) for r in table("claims")["data"]) == claims
    assert table("claims")["columns"][:7] == ["study", "variant", "metric", "claim", "margin", "verdict", "passed"]

    # The report files, byte for byte, and every preview GIF.
    copy = client.download_artifacts(run_id, "report.json", str(toy.path / "copy"))
    assert Path(copy).read_bytes() == (toy.path / "reports" / "report.json").read_bytes()
    gifs = {a.path for a in client.list_artifacts(run_id, "media/flicker") if a.path.endswith(".gif")}
    assert gifs == {f"media/flicker/s={s}.gif" for s in ("0.0", "0.5", "1.0")}


@pytest.mark.slow
@pytest.mark.slow
def test_only_the_controller_logs_with_xdist_workers(toy, tracker_env):
    result = toy.runpytest_subprocess("-n", "2", "--ablation-mlflow", "--ablation-wandb")
    result.assert_outcomes(passed=3)
    client = MlflowClient(f"sqlite:///{toy.path / 'reports' / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(toy.path.name)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(list((toy.path / "reports" / "wandb").glob("offline-run-*"))) == 1


@pytest.mark.slow
@pytest.mark.slow
def test_a_tracker_that_cannot_log_fails_the_run_and_says_why(toy, tracker_env, monkeypatch):
    # A server that answers (so the start-up check lets the run go) but is no MLflow server:
    # it says "not found" to everything, as one that went away behind a proxy would. The
    # tests pass, the report is written, the run fails.
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        result = toy.runpytest_subprocess(f"--ablation-mlflow=http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    assert said(result, "--ablation-mlflow: could not log the run to MLflow: ")
    assert (toy.path / "reports" / "report.json").exists()


# -- a merged run --------------------------------------------------------------------------
def shard_reports(toy, count):
    paths = []
    for index in range(1, count + 1):
        toy.runpytest(f"--ablation-shard={index}/{count}", f"--ablation-report-dir=shard-{index}")
        paths.append(str(toy.path / f"shard-{index}" / "report.json"))
    return paths


@pytest.mark.slow
@pytest.mark.slow
def test_merge_logs_the_merged_report_as_one_run(toy, tracker_env, capsys):
    from pytest_ablation.cli.main import main

    paths = shard_reports(toy, 2)
    capsys.readouterr()
    assert main(["merge", *paths, "-o", "merged", "--mlflow", "--wandb"]) == 0
    out = capsys.readouterr().out
    assert "mlflow: run " in out and f"in experiment '{toy.path.name}' of sqlite:///" in out
    assert "wandb: offline run in " in out
    merged = report_of(toy, "merged")
    shard_numbers = [finite_numbers(json.loads(Path(p).read_text())) for p in paths]
    numbers = finite_numbers(merged)
    assert len(numbers) == sum(map(len, shard_numbers)) > 0  # both shards' rows, in one run

    store = toy.path / "merged" / "mlflow"
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name(toy.path.name).experiment_id])
    logged = {k: v for k, v in run.data.metrics.items() if not k.startswith(("claims/", "gate/"))}
    assert len(logged) == len(numbers)
    for key, value in numbers.items():
        assert logged[mlflow_key(*key)] == pytest.approx(value, rel=1e-12, abs=1e-15)
    counts = verdict_counts(claims_of(merged))
    assert (
        {k: run.data.metrics[k] for k in counts}
        == counts
        == {"claims/supported": 2, "claims/refuted": 0, "claims/inconclusive": 0}
    )
    copy = client.download_artifacts(run.info.run_id, "report.json", str(toy.path / "copy"))
    assert Path(copy).read_bytes() == (toy.path / "merged" / "report.json").read_bytes()
    assert len(list((toy.path / "merged" / "wandb").glob("offline-run-*"))) == 1
    # The shards logged nothing themselves.
    assert not any((toy.path / f"shard-{i}" / name).exists() for i in (1, 2) for name in ("mlflow", "wandb"))


def test_merge_names_a_report_file_taken_as_the_trackers_value(toy, tracker_env, capsys):
    from pytest_ablation.cli.main import main

    paths = shard_reports(toy, 2)
    assert main(["merge", "--mlflow", *paths, "-o", "merged"]) == 2
    assert (
        f"--mlflow: took {paths[0]!r}, a file, as its value; put --mlflow after the report files"
    ) in capsys.readouterr().err
    assert not (toy.path / "merged" / "report.json").exists()  # refused before merging


def test_a_tracker_merge_cannot_use_stops_it_before_merging(toy, tracker_env, capsys):
    from pytest_ablation.cli.main import main

    paths = shard_reports(toy, 2)
    uri = (toy.path / "mlruns").as_uri()
    assert main(["merge", *paths, "-o", "merged", f"--mlflow={uri}"]) == 2
    assert f"--mlflow: MLflow cannot use the tracking URI '{uri}'" in capsys.readouterr().err
    assert not (toy.path / "merged" / "report.json").exists()


def test_submit_refuses_the_pytest_tracker_options_for_its_shards(tmp_path, capsys):
    from pytest_ablation.cli.main import main

    for option in ("--ablation-mlflow", "--ablation-wandb=team/project"):
        assert (
            main(["submit", "--shards", "2", "--executor", "local", "--report-dir", str(tmp_path), "--", "-q", option])
            == 2
        )
        flag = option.split("=")[0]
        expected = "--mlflow" if "mlflow" in flag else "--wandb"
        assert (
            f"{flag}: each shard would log its own part of the run; log the merged report "
            f"once with submit's {expected} instead"
        ) in capsys.readouterr().err


# -- W&B -----------------------------------------------------------------------------------
def wandb_records(path):
    """The records of a W&B offline run file (``run-<id>.wandb``), as W&B's own protobuf
    ``Record`` messages. The file is a LevelDB-style log (W&B's datastore): a 7-byte header
    (":W&B", magic, version), then 32 KiB blocks of chunks, each with a 7-byte header
    (CRC, length, type: 1 full, 2 first, 3 middle, 4 last) that no record spans. wandb no
    longer ships a Python reader of it (its Go core reads it), so the framing is read here."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending, records = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:  # zero padding to the end of the block
            position += left
            continue
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def items(record):
    """A history or summary record as ``key -> value`` (keys joined by "/" as W&B shows them)."""
    found = {}
    for item in list(getattr(record, "item", ())) + list(getattr(record, "update", ())):
        key = item.key or "/".join(item.nested_key)
        found[key] = json.loads(item.value_json)
    return found


@pytest.mark.slow
@pytest.mark.slow
def test_wandb_offline_run_holds_the_reports_numbers_tables_files_and_profile(toy, tracker_env):
    # No WANDB_MODE: offline is the plugin's default (and the server is a closed port).
    result = toy.runpytest_subprocess("--ablation-wandb")
    result.assert_outcomes(passed=3)
    [folder] = (toy.path / "reports" / "wandb").glob("offline-run-*")
    assert said(result, f"wandb: offline run in {folder} (upload it with `wandb sync {folder}`)")
    assert "wandb:" not in result.stderr.str()  # W&B's own chatter stays out of the terminal
    [run_file] = folder.glob("run-*.wandb")
    records = wandb_records(run_file)
    by_kind = {}
    for record in records:
        by_kind.setdefault(record.WhichOneof("record_type"), []).append(record)
    report = report_of(toy)

    [run] = by_kind["run"]
    assert run.run.project == toy.path.name
    config = {item.key: json.loads(item.value_json) for item in run.run.config.update}
    assert config["profile"] == report["profile"]
    assert config["options"]["cache"] == "on" and config["options"]["gate"] is None

    history = {}
    for record in by_kind["history"]:
        history.update(items(record.history))
    numbers = finite_numbers(report)
    logged = {k for k in history if k.count("/") == 3 and not k.startswith(("tables/", "previews/"))}
    assert logged == {wandb_key(*key) for key in numbers}
    for key, value in numbers.items():
        assert history[wandb_key(*key)] == pytest.approx(value, rel=1e-12, abs=1e-15)
    counts = verdict_counts(claims_of(report))
    assert {k: history[k] for k in counts} == counts
    summary = {}
    for record in by_kind["summary"]:
        summary.update(items(record.summary))
    assert summary["gate"] == "none"

    # The tables as W&B Tables: the run's files hold them in W&B's table JSON.
    results = json.loads(next((folder / "files").rglob("results_*.table.json")).read_text())
    rows = [dict(zip(results["columns"], row)) for row in results["data"]]
    assert [(r["variant"], r["metric"], r["value"], r["ci_low"]) for r in rows] == [
        (r["variant"], r["metric"], r["value"], r["ci"][0]) for r in result_rows(report)
    ]
    claims = json.loads(next((folder / "files").rglob("claims_*.table.json")).read_text())
    assert sorted((r[0], r[1], r[2], r[3], r[5]) for r in claims["data"]) == claims_of(report)

    # The previews as videos, and the report files and previews as an artifact.
    reports = toy.path / "reports"
    videos = sorted((folder / "files" / "media" / "videos").rglob("*.gif"))
    assert sorted(md5_b64(v) for v in videos) == sorted(
        md5_b64(reports / v["media"]["animation"]) for v in report["studies"][0]["variants"]
    )
    [artifact] = [r.artifact for r in by_kind["artifact"] if r.artifact.type == "ablation-report"]
    manifest = {entry.path: entry.digest for entry in artifact.manifest.contents}
    expected = [
        "report.json",
        "report.md",
        "report.html",
        *(f"media/flicker/s={s}.{ext}" for s in ("0.0", "0.5", "1.0") for ext in ("gif", "strip.png")),
    ]
    assert manifest == {name: md5_b64(reports / name) for name in expected}
    [exit_record] = by_kind["exit"]
    assert exit_record.exit.exit_code == 0


# -- start-up errors -----------------------------------------------------------------------
BLOCKER = '''
"""Makes {module!r} unimportable, as where it is not installed."""
import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} or name.startswith({module!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
for loaded in [m for m in sys.modules if m == {module!r} or m.startswith({module!r} + ".")]:
    del sys.modules[loaded]
'''


@pytest.mark.parametrize(
    "option, module, extra",
    [
        ("--ablation-wandb", "wandb", "wandb"),
        ("--ablation-mlflow", "mlflow", "mlflow"),
        ("--ablation-mlflow", "sqlalchemy", "mlflow"),  # the local store's database layer
    ],
)
@pytest.mark.slow
def test_a_missing_package_stops_the_run_at_start_up_naming_the_extra(toy, tracker_env, option, module, extra):
    toy.makepyfile(block_imports=BLOCKER.format(module=module))
    result = toy.runpytest_subprocess("-p", "block_imports", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # (fnmatch would read "[...]" as a character class: the text is matched as it is.)
    error = result.stderr.str()
    assert f"{option}: logging to " in error
    assert f"needs the '{module}' package, which cannot be imported" in error
    assert f'install the extra: pip install "pytest-ablation[{extra}]"' in error
    assert not (toy.path / "reports" / "report.json").exists()  # stopped before any test ran


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--ablation-wandb=me/team/project"],
            "--ablation-wandb: got 'me/team/project'; expected PROJECT or ENTITY/PROJECT*",
        ),
        (["--ablation-wandb=runs#1"], "--ablation-wandb: got 'runs#1'; expected PROJECT or ENTITY/PROJECT*"),
        (
            ["--ablation-wandb="],
            "--ablation-wandb: empty value; expected a W&B project as PROJECT or ENTITY/PROJECT, or true*",
        ),
        (
            ["--ablation-mlflow="],
            "--ablation-mlflow: empty value; expected an MLflow tracking URI or a folder, or true*",
        ),
        # An empty next argument is an empty value too (it once crashed on the path check).
        (
            ["--ablation-wandb", ""],
            "--ablation-wandb: empty value; expected a W&B project as PROJECT or ENTITY/PROJECT, or true*",
        ),
        (
            ["--ablation-mlflow", "  "],
            "--ablation-mlflow: empty value; expected an MLflow tracking URI or a folder, or true*",
        ),
        # argparse hands a following test path to the option: said, not taken for a project.
        (
            ["--ablation-wandb", "test_flicker.py"],
            "--ablation-wandb: took 'test_flicker.py' as the W&B project, but it is a test path; "
            "give a value with '='*",
        ),
        (
            ["--ablation-mlflow", "."],
            "--ablation-mlflow: took '.' as the MLflow tracking URI or store folder, but it is a test path*",
        ),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(toy, tracker_env, args, message):
    result = toy.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_an_mlflow_store_mlflow_refuses_stops_the_run_at_start_up(toy, tracker_env):
    # MLflow 3 refuses the older file store unless MLFLOW_ALLOW_FILE_STORE is set; said before
    # the run, with MLflow's own reason.
    uri = (toy.path / "mlruns").as_uri()
    result = toy.runpytest(f"--ablation-mlflow={uri}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--ablation-mlflow: MLflow cannot use the tracking URI '{uri}': *"])


def test_ini_twins_name_themselves_and_false_turns_a_tracker_off(toy, tracker_env):
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_wandb = a/b/c\n")
    result = toy.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ablation_wandb (ini): got 'a/b/c'; expected PROJECT or ENTITY/PROJECT*"])
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_wandb = false\nablation_mlflow = off\n")
    toy.runpytest().assert_outcomes(passed=3)
    assert not (toy.path / "reports" / "wandb").exists()
    assert not (toy.path / "reports" / "mlflow").exists()


def test_options_and_ini_twins_are_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--ablation-wandb=*PROJECT*", "*--ablation-mlflow=*URI*"])
    result.stdout.fnmatch_lines(["*ablation_wandb (string)*", "*ablation_mlflow (string)*"])


def test_keys_cleaned_alike_stay_apart_and_fit_mlflows_limit():
    from pytest_ablation.harness.trackers.rows import MAX_KEY_LENGTH

    keys = {mlflow_key("s", variant, "m", "value") for variant in ("a=1", "a<1", "a_1")}
    assert len(keys) == 3 and "s/a_1/m/value" in keys  # a name MLflow takes is kept as it is
    assert all(mlflow.utils.validation.validate_param_and_metric_name(k) for k in keys)
    assert len(mlflow_key("s" * 300, "v", "m", "value")) <= MAX_KEY_LENGTH
    assert wandb_key("flicker", "s=0.5", "m", "delta") == "flicker/s=0.5/m/delta"


def test_an_unreachable_mlflow_server_stops_the_run_at_start_up(toy, tracker_env):
    import os
    import time

    started = time.monotonic()
    result = toy.runpytest("--ablation-mlflow=http://127.0.0.1:9")  # the discard port: nothing listens
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--ablation-mlflow: MLflow cannot reach the tracking server 'http://127.0.0.1:9': *refused*"]
    )
    assert time.monotonic() - started < 60
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])


def test_an_mlflow_store_whose_folder_cannot_be_written_stops_the_run_at_start_up(toy, tracker_env):
    import os

    (toy.path / "afile").write_text("a file where the store's folder would be")
    result = toy.runpytest(f"--ablation-mlflow=sqlite:///{toy.path / 'afile' / 'mlflow.db'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--ablation-mlflow: MLflow cannot keep its database at *afile/mlflow.db: *afile is not a folder*"]
    )
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])
