"""What every process of a pytest-ablation run knows: its options, its profile, its metrics
and its devices.

The run's state is held by a few objects, each made by ``plugin.py`` and kept in the
config's stash; the hooks only delegate to them:

- ``AblationSession`` (here): the options, the profile, the registered metrics, the
  devices, and the start-up checks of what was collected and selected;
- ``catalog.Catalog``: the studies' cases collected in this process and the selection;
- ``worker.WorkerContext``, in a process that runs cases (made at session start by
  ``worker.start_worker``): its device, result cache, model pool, scorer and progress lines;
- ``collector.ResultCollector``, on the controller (or the single process): the results,
  the report, the gate and the exit status.
"""

from __future__ import annotations

import textwrap

import functools

import pytest

from ..run.devices import (
    AUTO,
    DeviceAssignment,
    DeviceError,
    assign,
    auto_worker_count,
    cpu_count,
    resolve_devices,
)
from .options import AblationOptions, OptionError, names_the_plugin, read_options

# Keys of what the controller hands each xdist worker (``workerinput``) and what a worker
# sends back when it finishes (``workeroutput``).
WORKER_DEVICE = "ablation_device"
# The index a worker's device is dealt by, when the worker decides its device itself.
WORKER_INDEX = "ablation_device_index"
WORKER_SUMMARY = "ablation"
WORKER_CATALOG = "ablation_catalog"


def read_options_or_fail(config) -> AblationOptions:
    try:
        return read_options(config)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None


def visible_gpus(config, requested) -> list[str]:
    """The GPUs' physical ids, asked of the hook only when the devices asked for need them."""
    if requested != AUTO and not any(name.startswith("cuda") for name in requested):
        return []
    gpus = config.hook.pytest_ablation_visible_gpus(config=config)
    return [str(gpu) for gpu in gpus] if gpus is not None else []


def auto_worker_count_for(config) -> int:
    """``-n auto``: one worker per device ``--ablation-devices`` resolves to (cores on CPU)."""
    options = read_options_or_fail(config)
    try:
        devices = resolve_devices(options.devices, visible_gpus(config, options.devices))
    except DeviceError as error:
        raise pytest.UsageError(str(error)) from None
    return auto_worker_count(devices, cpu_count())


class DevicePlan:
    """The devices ``--ablation-devices`` resolves to on the controller, and the one each
    worker (or the single process) gets."""

    def __init__(self, config, requested) -> None:
        self._config = config
        self._requested = requested
        self._devices: list[str] | None = None
        self._gpus: list[str] = []

    def resolve(self) -> list[str]:
        if self._devices is None:
            self._gpus = visible_gpus(self._config, self._requested)
            try:
                self._devices = resolve_devices(self._requested, self._gpus)
            except DeviceError as error:
                raise pytest.UsageError(str(error)) from None
        return self._devices

    def assignment(self, worker_index: int, workers: int = 1) -> DeviceAssignment:
        return assign(self.resolve(), self._gpus, worker_index, workers)


# Terminal lines the plugin writes are wrapped to this width.
LINE_WIDTH = 100


class AblationSession:
    """The options, profile and metrics of this process, read and checked at start-up."""

    def __init__(self, config):
        self.config = config
        self.options = read_options_or_fail(config)
        self.is_worker = hasattr(config, "workerinput")
        self.devices = DevicePlan(config, self.options.devices)
        # Decided at start-up on the controller when the run names the plugin, so that a
        # wrong --ablation-devices stops it before anything runs; otherwise on first need.
        self.devices_decided = not self.is_worker and names_the_plugin(config)
        self.profile = self._load_profile()
        # Studies whose declared claims this profile cannot decide (``claims.Decidability``).
        self.undecidable: list = []
        self.metrics = self._register_metrics()
        self._check_metric_options()
        self._check_tolerances()

    def _check_tolerances(self) -> None:
        """Each ``ablation_tolerances`` entry names a metric this run knows (the built-in
        ones and those the project registers)."""
        from ..results.gate import unknown_tolerance
        from .options import TOLERANCES_INI

        if not self.options.tolerances:
            return
        self.register_installed_metrics()
        problem = unknown_tolerance(self.options.tolerances, self.metrics.names(), TOLERANCES_INI)
        if problem:
            raise pytest.UsageError(problem)

    def _load_profile(self):
        from ..profiles import ProfileError, load_profile

        try:
            return load_profile(self.options.profile)
        except ProfileError as error:
            raise pytest.UsageError(f"--ablation-profile: {error}") from None

    def _register_metrics(self):
        """This run's metrics: the built-in ones, then those of plugins and conftests (the
        hook); installed packages' come when first needed."""
        from ..metrics.registry import MetricRegistry

        registry = MetricRegistry()
        self.config.hook.pytest_ablation_add_metrics(register=functools.partial(registry.register, replace=True))
        return registry

    def _check_metric_options(self) -> None:
        """The profile's [metrics.<name>] options, each checked by its metric's spec."""
        if not self.profile.metrics:
            return
        self.register_installed_metrics()
        try:
            self.metrics.check_options(self.profile.metrics)
        except ValueError as error:
            raise pytest.UsageError(f"--ablation-profile: {self.profile.name}: {error}") from None

    def register_installed_metrics(self) -> None:
        """Those of installed packages (the ``pytest_ablation.metrics`` entry points) under
        the names the hook left free: once, when a run first needs metrics (it has studies,
        or tolerances to check), so that a project without studies neither imports them nor
        stops on a broken one."""
        from ..metrics.registry import InstalledMetricError

        try:
            self.metrics.add_installed()
        except InstalledMetricError as error:
            raise pytest.UsageError(str(error)) from None

    @property
    def distributed(self) -> bool:
        return bool(getattr(self.config.option, "dist", "no") != "no" and getattr(self.config.option, "tx", None))

    def metric(self, name: str):
        self.register_installed_metrics()
        return self.metrics.get(name)

    # -- collection: all checked before any model loads ----------------------------------
    def check_collected(self, catalog, items) -> None:
        """The studies' markers, then each collected case's profile-specific marks."""
        from ..run.catalog import StudyError

        if catalog.studies():
            self.register_installed_metrics()
        errors = catalog.problems(set(self.metrics.names()))
        if errors:
            raise pytest.UsageError("invalid ablation study:\n  " + "\n  ".join(errors))
        try:
            self.undecidable = catalog.prepare(items, self.profile, require_decidable=self.options.require_decidable)
        except StudyError as error:
            raise pytest.UsageError(str(error)) from None

    def check_selected(self, catalog, nodeids) -> None:
        """The selected cases' needs the profile must meet, checked before any model loads.

        Also called when the studies' check failed (pytest ends a collection that way too):
        an unknown metric, reported by that check, needs nothing here.
        """
        known = set(self.metrics.names())
        missing: dict[str, set[str]] = {}
        unusable: dict[str, list[str]] = {}
        for nodeid in nodeids:
            case = catalog.case(nodeid)
            if case is None:
                continue
            for metric in case.marker.metrics:
                if metric not in known:
                    continue
                spec = self.metric(metric)
                if "clip" in spec.needs and "clip" not in self.profile.models:
                    missing.setdefault("clip", set()).add(f"{metric} ({case.study})")
                if metric not in unusable:
                    unusable[metric] = spec.weights_problems()
        self._check_prompts(catalog, nodeids)
        self._check_weights(catalog, nodeids, judged=any("clip" in self.metric(m).needs for m in unusable))
        problems = [f"{metric}: {problem}" for metric, found in sorted(unusable.items()) for problem in found]
        if problems:
            raise pytest.UsageError(
                "metrics the selected studies name cannot run on this machine:\n  " + "\n  ".join(problems)
            )
        for role, users in sorted(missing.items()):
            raise pytest.UsageError(
                f"--ablation-profile: profile {self.profile.name!r} has no model role {role!r}, "
                f"which {', '.join(sorted(users))} need(s); its roles are: "
                f"{', '.join(self.profile.models)}; add a [models.{role}] table or choose "
                "another profile"
            )

    def _check_weights(self, catalog, nodeids, *, judged: bool) -> None:
        """The real checkpoints the selected studies load must be on this machine, or the
        run must be able to fetch them: otherwise it stops here, a line per missing model,
        rather than in the hub's tracebacks or waiting on an absent network."""
        roles: set[str] = {"clip"} if judged else set()
        for nodeid in nodeids:
            group = catalog.model_group(nodeid) or ""
            for fixture in group.removeprefix("models:").split("+") if group.startswith("models:") else ():
                roles.update(self.config.hook.pytest_ablation_model_roles(fixturename=fixture) or ())
        specs = [self.profile.models[role] for role in sorted(roles) if role in self.profile.models]
        if not any(spec.source for spec in specs):
            return
        from ..models.availability import hub_reachable, missing_weights, offline

        missing = missing_weights(specs)
        if not missing:
            return
        if offline():
            why = "HF_HUB_OFFLINE is set, so nothing can be downloaded"
        elif not hub_reachable():
            why = "the Hugging Face hub cannot be reached from this machine"
        else:
            return  # they are downloaded when first loaded
        raise pytest.UsageError(
            f"--ablation-profile: profile {self.profile.name!r} needs weights that are not on "
            f"this machine, and {why}:\n  " + "\n  ".join(missing)
        )

    def _check_prompts(self, catalog, nodeids) -> None:
        """The profile's prompts, when a selected study renders them, must be ones its models
        can draw (``pytest_ablation_check_prompts``)."""
        if not any(case.marker.prompts is None for case in map(catalog.case, nodeids) if case is not None):
            return
        prompts = list(self.profile.settings.prompts)
        answers = self.config.hook.pytest_ablation_check_prompts(profile=self.profile, prompts=prompts)
        problems = [problem for answer in answers if answer for problem in answer]
        if problems:
            raise pytest.UsageError(
                f"--ablation-profile: profile {self.profile.name!r} cannot render its prompts:\n  "
                + "\n  ".join(problems)
            )

    def collection_line(self, catalog) -> list[str] | None:
        """The line under pytest's collection summary: the profile and the studies."""
        studies = catalog.studies()
        if not studies or self.is_worker:
            return None
        about = f" ({self.profile.description})" if self.profile.description else ""
        line = f"ablation: profile {self.profile.name!r}{about}, studies: {', '.join(studies)}"
        lines = [line] + [f"ablation: undecidable (expected failures): {d.line()}" for d in self.undecidable]
        half = sorted(
            role
            for role, spec in self.profile.models.items()
            if (spec.options or {}).get("dtype") in ("float16", "bfloat16")
        )
        if half and self.devices_decided and all(d == "cpu" for d in self.devices.resolve()):
            lines.append(
                f"ablation: warning: this run has no GPU, and profile {self.profile.name!r} loads "
                f"{', '.join(map(repr, half))} in half precision, meant for a GPU: on the CPU "
                'expect it to be very slow (a profile extending it can set dtype = "float32")'
            )
        return [
            textwrap.fill(text, LINE_WIDTH, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)
            for text in lines
        ]
