"""Weights & Biases: the run as one W&B run, offline unless ``WANDB_MODE`` says otherwise.

An offline run is written under ``<report dir>/wandb/`` (or ``WANDB_DIR``) and uploaded
later, if ever, with ``wandb sync``. Logged: each (study, variant, metric)'s numbers as one
step of metrics, the run's counts, the results, claims, cases and gate as W&B Tables, each
variant's preview as a video, the profile, options and software as the run's config, and
report.json, report.md, report.html and the previews as an artifact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import TrackedRun, TrackerContext
from .rows import (
    artifact_files,
    gate_outcome,
    metric_values,
    previews,
    project_name,
    run_config,
    run_name,
    run_numbers,
    safe_key,
    tables,
)

# Characters W&B refuses in a project name.
PROJECT_FORBIDDEN = "/\\#?%:"
# What a metric key keeps of a study, variant or metric name (others are replaced): the
# names' own characters, less those W&B's charts treat specially.
KEY_CHARACTERS = r"\w.=+\-"
ARTIFACT_TYPE = "ablation-report"


def metric_key(study: str, variant: str, metric: str, field: str) -> str:
    return safe_key((study, variant, metric, field), KEY_CHARACTERS)


def split_target(value: str | None) -> tuple[str | None, str | None]:
    """``ENTITY/PROJECT`` or ``PROJECT`` (checked by the option) as ``(entity, project)``."""
    if value is None:
        return None, None
    entity, sep, project = value.rpartition("/")
    return (entity or None) if sep else None, project


def prepare(value: str | None, context: TrackerContext) -> WandbTarget:
    import wandb  # noqa: F401  (a missing or broken package stops the run here, at start-up)

    entity, project = split_target(value)
    if project is None and not os.environ.get("WANDB_PROJECT"):
        project = project_name(context.rootdir, PROJECT_FORBIDDEN)
    return WandbTarget(entity=entity, project=project)


@dataclass(frozen=True)
class WandbTarget:
    entity: str | None  # None: W&B's own default (WANDB_ENTITY, or the user's)
    project: str | None  # None: WANDB_PROJECT

    def init_arguments(self, run: TrackedRun) -> dict:
        import wandb

        report = run.report
        arguments: dict[str, Any] = dict(
            entity=self.entity,
            project=self.project,
            name=run_name(report),
            job_type="ablation",
            config=run_config(report, run.options),
            tags=[f"profile:{(report.get('profile') or {}).get('name')}", f"gate:{gate_outcome(report)}"],
            # Each pytest run is a run of its own, even where a process logs twice.
            reinit="create_new",
        )
        # W&B's environment variables win over these defaults: a user who sets WANDB_MODE=online
        # or WANDB_DIR gets what they set.
        if not os.environ.get("WANDB_MODE"):
            arguments["mode"] = "offline"
        if not os.environ.get("WANDB_DIR"):
            run.report_dir.mkdir(parents=True, exist_ok=True)
            arguments["dir"] = str(run.report_dir)
        # The run is logged in a moment at the end of the session: no console capture (it
        # would wrap pytest's own output), no system metrics or machine probes (nothing ran
        # in it to measure). Settings this wandb does not know are left out.
        wanted: dict[str, Any] = {"console": "off", "x_disable_stats": True, "x_disable_machine_info": True}
        if not (os.environ.get("WANDB_SILENT") or os.environ.get("WANDB_QUIET")):
            wanted["silent"] = True  # the terminal summary says where the run went
        known = getattr(wandb.Settings, "model_fields", {})
        arguments["settings"] = wandb.Settings(**{k: v for k, v in wanted.items() if k in known})
        return arguments

    def log(self, run: TrackedRun) -> str:
        import wandb

        report = run.report
        wandb_run = wandb.init(**self.init_arguments(run))
        try:
            step: dict[str, Any] = {metric_key(*key): value for key, value in metric_values(report).items()}
            step.update(run_numbers(report))
            for name, (columns, rows) in tables(report).items():
                step[f"tables/{name}"] = wandb.Table(
                    columns=list(columns),
                    data=[[row[c] for c in columns] for row in rows],
                    allow_mixed_types=True,
                )
            for study, variant, kind, path in previews(report, run.report_dir):
                if kind == "animation":
                    step[safe_key(("previews", study, variant), KEY_CHARACTERS)] = wandb.Video(
                        str(path), format="gif", caption=f"{study} {variant}"
                    )
            wandb_run.log(step)
            wandb_run.summary["gate"] = gate_outcome(report)
            artifact = wandb.Artifact(
                "ablation-report",
                type=ARTIFACT_TYPE,
                metadata={"created": report.get("created"), "profile": (report.get("profile") or {}).get("name")},
            )
            for path, name in artifact_files(report, run.report_dir):
                artifact.add_file(str(path), name=name)
            wandb_run.log_artifact(artifact)
            folder = os.path.dirname(wandb_run.dir)
            offline = wandb_run.settings.mode == "offline"
            url = None if offline else wandb_run.url  # an offline run warns that it has none
        except BaseException:
            wandb_run.finish(exit_code=1)
            raise
        wandb_run.finish(exit_code=run.exitstatus)
        if offline:
            return f"offline run in {folder} (upload it with `wandb sync {folder}`)"
        return f"run {url or wandb_run.id} (files in {folder})"
