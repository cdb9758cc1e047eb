"""MLflow: the run as one MLflow run, in a local store under the report folder by default.

The default store is ``<report dir>/mlflow/``: an SQLite database (``mlflow.db``) and the
artifacts beside it (``artifacts/``), which needs no server (MLflow 3 refuses the older
``./mlruns`` file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set). Logged: each
(study, variant, metric)'s numbers and the run's counts as metrics, the profile, options and
software as parameters, the gate's outcome and the profile's name as tags, the results,
claims, cases and gate as table artifacts (JSON, as ``mlflow.log_table`` writes them, and
CSV), and report.json, report.md, report.html and the previews as artifacts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import TrackedRun, TrackerContext, TrackerError
from .rows import (
    artifact_files,
    flatten,
    gate_outcome,
    metric_values,
    project_name,
    run_config,
    run_name,
    run_numbers,
    safe_key,
    tables,
    to_csv,
)

# What MLflow allows in a metric or parameter name, less "/" (the separator of our keys) and
# ":" (refused on Windows).
KEY_CHARACTERS = r"\w.\- "
# MLflow's limit on a parameter's value; longer ones (a long prompt list) are cut, and say so:
# the whole profile is in report.json among the artifacts.
MAX_PARAM_LENGTH = 6000
TRUNCATED = "... (truncated; the whole value is in report.json)"


def metric_key(study: str, variant: str, metric: str, field: str) -> str:
    return safe_key((study, variant, metric, field), KEY_CHARACTERS)


def has_scheme(value: str) -> bool:
    from ..options import URI_SCHEME

    return bool(URI_SCHEME.match(value))


def sqlite_file(uri: str) -> Path | None:
    """The database file of an ``sqlite:///PATH`` URI (absolute; a relative PATH is taken
    from the current folder, as SQLAlchemy does), or None for another URI."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path).absolute() if path else None


def local_store(folder: Path) -> tuple[str, Path]:
    """The tracking URI and artifact folder of the local store in ``folder``."""
    folder = Path(folder).absolute()
    return f"sqlite:///{(folder / 'mlflow.db').as_posix()}", folder / "artifacts"


def prepare(value: str | None, context: TrackerContext) -> MlflowTarget:
    from mlflow.tracking import MlflowClient

    artifacts: Path | None
    if value is None:
        uri, artifacts = local_store(context.report_dir / "mlflow")
    elif not has_scheme(value):
        uri, artifacts = local_store(Path(value))  # the option made it absolute
    else:
        uri, database = value, sqlite_file(value)
        # New experiments keep their artifacts beside the database, not in ./mlartifacts of
        # whatever folder pytest runs in.
        artifacts = database.parent / "artifacts" if database is not None else None
    if uri.startswith("sqlite:"):
        # MLflow's SQL store needs these (the extra brings them); creating the database costs
        # a few seconds, so it is left to the end of the run. Its folder must take it.
        import alembic  # noqa: F401
        import sqlalchemy  # noqa: F401

        database = sqlite_file(uri)
        if database is not None:
            problem = _unwritable_database(database)
            if problem:
                raise TrackerError(f"MLflow cannot keep its database at {database}: {problem}")
    elif uri.startswith(("http://", "https://")):
        # The client contacts a server only when it logs: asked now, so an unreachable one
        # stops the run before it starts, not after every study has run.
        problem = _unreachable(uri)
        if problem:
            raise TrackerError(f"MLflow cannot reach the tracking server {uri!r}: {problem}")
    else:
        try:
            MlflowClient(uri)  # MLflow refuses a store it cannot use here, before the run
        except Exception as error:
            raise TrackerError(f"MLflow cannot use the tracking URI {uri!r}: {error}") from None
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or project_name(context.rootdir)
    return MlflowTarget(uri=uri, artifacts=artifacts, experiment=experiment)


def _unwritable_database(database: Path) -> str | None:
    from pytest_ablation.files import check_writable_dir

    if database.exists() and not database.is_file():
        return "it is not a file"
    return check_writable_dir(database.parent)


# How long the start-up check waits for a tracking server.
REACH_SECONDS = 5.0


def _unreachable(uri: str) -> str | None:
    """Why the server at ``uri`` did not answer, or None when it answered at all (any HTTP
    status: a server that answers can say more when the run logs)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=REACH_SECONDS):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return str(reason) or type(reason).__name__


@contextlib.contextmanager
def _quiet():
    # MLflow and alembic log each step of creating a database at INFO to the terminal; the
    # terminal summary says where the run went.
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@dataclass(frozen=True)
class MlflowTarget:
    uri: str
    artifacts: Path | None  # of a new experiment; None: MLflow's default for the store
    experiment: str

    def experiment_id(self, client) -> str:
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            location = self.artifacts.as_uri()
        return client.create_experiment(self.experiment, artifact_location=location)

    def log(self, run: TrackedRun) -> str:
        from mlflow.tracking import MlflowClient

        report = run.report
        database = sqlite_file(self.uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            client = MlflowClient(self.uri)
            experiment_id = self.experiment_id(client)
            profile = (report.get("profile") or {}).get("name")
            tags = {
                "ablation.profile": str(profile),
                "ablation.gate": gate_outcome(report),
                "ablation.exit_status": str(run.exitstatus),
            }
            git = (report.get("environment") or {}).get("git") or {}
            if git.get("commit"):
                tags["mlflow.source.git.commit"] = git["commit"]
            created = client.create_run(experiment_id, run_name=run_name(report), tags=tags)
            run_id = created.info.run_id
            try:
                self._log_run(client, run_id, run)
            except BaseException:
                client.set_terminated(run_id, status="FAILED")
                raise
            client.set_terminated(run_id, status="FINISHED" if run.exitstatus == 0 else "FAILED")
        return f"run {run_id} in experiment {self.experiment!r} of {self.uri}"

    def _log_run(self, client, run_id: str, run: TrackedRun) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

        report = run.report
        now = int(time.time() * 1000)
        numbers = {metric_key(*key): value for key, value in metric_values(report).items()}
        numbers.update(run_numbers(report))
        params = {}
        for key, value in flatten(run_config(report, run.options)).items():
            if len(value) > MAX_PARAM_LENGTH:
                value = value[: MAX_PARAM_LENGTH - len(TRUNCATED)] + TRUNCATED
            params[safe_key(key.split("/"), KEY_CHARACTERS)] = value
        # log_batch splits what it is given into batches within MLflow's limits.
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in numbers.items()],
            params=[Param(key, value) for key, value in params.items()],
        )
        logged = []
        for name, (columns, rows) in tables(report).items():
            # The layout mlflow.log_table writes (pandas' "split"), which needs no pandas here;
            # the tag below is how MLflow tells a table artifact from another JSON file.
            client.log_dict(
                run_id,
                {"columns": list(columns), "data": [[row[c] for c in columns] for row in rows]},
                f"tables/{name}.json",
            )
            client.log_text(run_id, to_csv(columns, rows), f"tables/{name}.csv")
            logged.append({"path": f"tables/{name}.json", "type": "table"})
        client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps(logged))
        for path, name in artifact_files(report, run.report_dir):
            folder = os.path.dirname(name)
            client.log_artifact(run_id, str(path), artifact_path=folder or None)
