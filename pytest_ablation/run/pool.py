"""Models of one worker: each loaded at most once, on the worker's device, on first use."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any
from collections.abc import Callable

from .devices import DeviceAssignment, out_of_memory_errors


class ModelPool:
    """Lazily loads the profile's models by role and keeps them until the session ends.

    ``loader`` and ``identifier`` are injectable so the pool is testable without real
    models; by default they are ``pytest_ablation.models.load_model`` / ``model_identity``.
    """

    def __init__(
        self,
        profile,
        assignment: DeviceAssignment,
        *,
        loader: Callable[[Any, str], Any] | None = None,
        identifier: Callable[[Any], dict] | None = None,
        on_load: Callable[[str, float], None] | None = None,
        on_release: Callable[[list[str]], None] | None = None,
    ):
        self.profile = profile
        self.assignment = assignment
        self._loader = loader
        self._identifier = identifier
        self._on_load = on_load
        self._on_release = on_release
        self._group: str | None = None
        self._models: dict[str, Any] = {}
        self._identities: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._threads_set = False
        self._holders: list[weakref.ReferenceType] = []
        self.loads: dict[str, int] = {}
        self.load_seconds: dict[str, float] = {}

    @property
    def device(self) -> str:
        return self.assignment.device

    def get(self, role: str) -> Any:
        with self._lock:
            if role not in self._models:
                spec = self.profile.model(role)
                self.prepare_torch()
                loader = self._loader or _default_loader()
                started = time.perf_counter()
                try:
                    self._models[role] = loader(spec, self.device)
                except out_of_memory_errors() as error:
                    message: str | None = self.out_of_memory_message(f"loading model {role!r}", error)
                else:
                    message = None
                if message is not None:
                    self.release()
                    raise ModelOutOfMemory(message)
                elapsed = time.perf_counter() - started
                self.loads[role] = self.loads.get(role, 0) + 1
                self.load_seconds[role] = round(elapsed, 3)
                if self._on_load is not None:
                    self._on_load(role, elapsed)
            return self._models[role]

    def loader(self, role: str) -> PooledModel:
        """A function that returns the pool's current model for ``role``, to hand to a
        generator in place of the model: it calls it when it needs the model and keeps no
        reference, so a release frees the model."""
        return PooledModel(self, role)

    def on_release(self, release: Callable[[], None]) -> None:
        """``release()`` is called whenever the pool releases its models: the caller drops
        what it derived from them (a UNet copy, encoded data, tuned weights). Held weakly:
        registering keeps nothing alive."""
        holder = weakref.WeakMethod(release) if hasattr(release, "__self__") else weakref.ref(release)
        self._holders.append(holder)

    def identity(self, role: str) -> dict:
        if role not in self._identities:
            identifier = self._identifier or _default_identifier()
            self._identities[role] = identifier(self.profile.model(role))
        return self._identities[role]

    def identities(self) -> dict[str, dict]:
        return {role: self.identity(role) for role in sorted(self.profile.models)}

    def release(self) -> list[str]:
        """Drop every loaded model (a later ``get`` loads it again); the roles released."""
        with self._lock:
            released = sorted(self._models)
            self._models.clear()
            holders, self._holders = self._holders, []
            for holder in holders:
                release = holder()
                if release is not None:
                    release()
                    self._holders.append(holder)
        if self.device.startswith("cuda"):
            import gc

            import torch

            from ..metrics.weights import release_models

            released += release_models(self.device)
            gc.collect()
            torch.cuda.empty_cache()
        return released

    def out_of_memory_message(self, what: str, error: BaseException) -> str:
        from .devices import format_bytes, peak_memory

        from .devices import out_of_memory_errors

        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        loaded = ", ".join(repr(role) for role in self.loaded()) or "none"
        failure = (
            "out of memory" if isinstance(error, out_of_memory_errors()) else "a cuDNN/cuBLAS failure (usually memory)"
        )
        return (
            f"{failure} on {self.device} while {what}: models loaded on this worker: "
            f"{loaded}; peak memory allocated {format_bytes(peak_memory(self.device))}. "
            f"({first_line}) Lower the profile's batch_size, frames or size, give this worker "
            'its own GPU, or load the model in float16 (dtype = "float16").'
        )

    def loaded(self) -> list[str]:
        return sorted(self._models)

    def prepare_torch(self) -> None:
        """Apply the worker's torch settings (threads, current GPU) once, before anything
        is loaded or computed."""
        if self._threads_set:
            return
        if self.assignment.threads or self.device.startswith("cuda"):
            from .devices import select_device

            select_device(self.assignment)
        self._threads_set = True

    def enter_group(self, group: str) -> None:
        """Tests of another model group start: on a GPU, free the models of the last one.

        Tests are scheduled group by group, so a worker that finishes the ZS² studies (Stable
        Diffusion) unloads them before the ExVideo ones load SVD; on a 24 GB GPU the two do
        not fit together at full size. On the CPU models stay: memory is plentiful there
        and reloading costs time.
        """
        previous, self._group = self._group, group
        if previous is not None and previous != group and self.device.startswith("cuda"):
            released = self.release()
            if released and self._on_release is not None:
                self._on_release(released)


class PooledModel:
    """``pool.loader(role)``: the pool's current model for ``role``, fetched on each call."""

    pooled = True  # read by DeferredComponents: keep no reference to what this returns

    def __init__(self, pool: ModelPool, role: str) -> None:
        self._pool = weakref.ref(pool)
        self.role = role

    def __call__(self) -> Any:
        pool = self._pool()
        if pool is None:
            raise RuntimeError(f"model {self.role!r}: its worker's model pool is gone")
        return pool.get(self.role)


class ModelOutOfMemory(RuntimeError):
    """The device ran out of memory; the message names the device, the models and the peak."""


def _default_loader():
    from ..models import load_model

    return load_model


def _default_identifier():
    from ..models import model_identity

    return model_identity
