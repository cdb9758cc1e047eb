"""What a process that runs cases owns: its device, result cache, model pool, scorer and
progress lines.

An xdist worker has one, and so has a run without workers; the controller of a distributed
run has none. Each piece is made on first use, so a process that runs no case loads
nothing. The ``ablation`` fixture's object sees this through the ``Workbench`` interface
(``pytest_ablation.run.ablation``), never the whole session.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from collections.abc import Callable

from ..run.devices import DeviceAssignment, describe_gpu
from .session import WORKER_DEVICE, WORKER_INDEX, AblationSession

if TYPE_CHECKING:
    from ..run.cache import ResultCache
    from ..run.pool import ModelPool
    from ..run.scoring import Scorer


def start_worker(session: AblationSession) -> WorkerContext | None:
    """At session start: the ``WorkerContext`` of this process if it runs cases (an xdist
    worker, or a run without workers), else None.

    A run that names the plugin (``names_the_plugin``) has its devices decided here, on the
    controller, before any worker starts, and a worker reads the one it was given. Any
    other run decides a process's device when a case first needs it, from the same options
    and the worker's index, so that a project without studies never asks torch about GPUs.
    """
    if session.is_worker:
        given = session.config.workerinput.get(WORKER_DEVICE)
        if given is not None:
            return WorkerContext(session, lambda: DeviceAssignment.from_dict(given), decided=True)
        workerinput = session.config.workerinput
        index = workerinput.get(WORKER_INDEX, int(str(workerinput["workerid"]).lstrip("gw") or 0))
        workers = int(workerinput.get("workercount") or 1)
        return WorkerContext(session, lambda: session.devices.assignment(index, workers), decided=False)
    if session.devices_decided:
        session.devices.resolve()
    if session.distributed:
        return None
    return WorkerContext(session, lambda: session.devices.assignment(0), decided=session.devices_decided)


class Progress:
    """``  [ablation] ...`` lines in the terminal while cases run, with ``-v``, from the
    process that shows the run (never from an xdist worker)."""

    def __init__(self, config, enabled: bool) -> None:
        self._config = config
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"  [ablation] {message}")
        else:
            reporter.write_line(f"  [ablation] {message}")


class WorkerContext:
    """The device, cache, models and scorer of one process that runs cases."""

    def __init__(self, session: AblationSession, assign: Callable[[], DeviceAssignment], *, decided: bool) -> None:
        self.profile = session.profile
        self.metric = session.metric
        self.progress = Progress(session.config, enabled=not session.is_worker and session.config.option.verbose >= 1)
        self._options = session.options
        self._assign = assign
        self._decided = decided
        self._pool: ModelPool | None = None
        self._cache: ResultCache | None = None
        self._scorer: Scorer | None = None
        self._model_group: str | None = None

    @functools.cached_property
    def _assignment(self) -> DeviceAssignment:
        return self._assign()

    @property
    def device(self) -> str:
        return self._assignment.device

    @property
    def cache(self) -> ResultCache:
        if self._cache is None:
            from ..run.cache import ResultCache

            self._cache = ResultCache(self._options.cache_dir, enabled=not self._options.no_cache)
        return self._cache

    @property
    def pool(self) -> ModelPool:
        if self._pool is None:
            from ..run.pool import ModelPool

            device = self._assignment.device
            self._pool = ModelPool(
                self.profile,
                self._assignment,
                on_load=lambda role, seconds: self.progress(f"loaded model {role!r} on {device} in {seconds:.1f}s"),
                on_release=lambda roles: self.progress(
                    f"released {', '.join(map(repr, roles))} on {device}: the next tests use other models"
                ),
            )
            if self._model_group is not None:
                self._pool.enter_group(self._model_group)
        return self._pool

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            from ..run.scoring import Scorer

            self._scorer = Scorer(self.cache, self.pool, self.metric)
        return self._scorer

    def enter_model_group(self, group: str) -> None:
        """A test of ``group`` is about to run on this process (see ``ModelPool.enter_group``).

        The device's peak-memory count starts again here, so an out-of-memory message
        reports this test's peak, not the process's."""
        from ..run.devices import reset_peak_memory

        reset_peak_memory(self._assignment.device)
        self._model_group = group
        if self._pool is not None:
            self._pool.enter_group(group)

    @property
    def used(self) -> bool:
        """Whether a case (or a fixture) of this process drew on its models or cache."""
        return self._pool is not None or self._cache is not None

    def summary(self) -> dict | None:
        """The device, model loads and cache use of this process, for the report; None for a
        process whose device was left to first need and never needed."""
        if not (self._decided or self.used or "_assignment" in self.__dict__):
            return None
        assignment = self._assignment
        gpu = describe_gpu(assignment.device)
        pool = self._pool
        loaded = sorted(pool.loads) if pool is not None else []
        return {
            "device": assignment.device,
            "device_text": assignment.describe() + _gpu_text(gpu),
            "physical_gpu": assignment.physical,
            "threads": assignment.threads,
            "gpu": gpu,
            "loads": dict(pool.loads) if pool is not None else {},
            "load_seconds": dict(pool.load_seconds) if pool is not None else {},
            "models": {role: pool.identity(role) for role in loaded} if pool is not None else {},
            "cache": self._cache.stats.to_dict() if self._cache is not None else {},
        }

    def close(self) -> None:
        """Release the models this process loaded."""
        if self._pool is not None:
            self._pool.release()


def _gpu_text(gpu: dict | None) -> str:
    """ ", NVIDIA H100 80GB HBM3 (driver 550.54.15, CUDA 12.4, cuDNN 90100)" or ""."""
    if not gpu or not gpu.get("name"):
        return ""
    software = [
        f"{label} {gpu[key]}"
        for label, key in (("driver", "driver"), ("CUDA", "cuda"), ("cuDNN", "cudnn"))
        if gpu.get(key)
    ]
    return f", {gpu['name']}" + (f" ({', '.join(software)})" if software else "")
