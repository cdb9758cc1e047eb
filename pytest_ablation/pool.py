"""Models of one worker: each loaded at most once, on the worker's device, on first use."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .devices import DeviceAssignment


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
    ):
        self.profile = profile
        self.assignment = assignment
        self._loader = loader
        self._identifier = identifier
        self._on_load = on_load
        self._models: dict[str, Any] = {}
        self._identities: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._threads_set = False
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
                self._models[role] = loader(spec, self.device)
                elapsed = time.perf_counter() - started
                self.loads[role] = self.loads.get(role, 0) + 1
                self.load_seconds[role] = round(elapsed, 3)
                if self._on_load is not None:
                    self._on_load(role, elapsed)
            return self._models[role]

    def identity(self, role: str) -> dict:
        if role not in self._identities:
            identifier = self._identifier or _default_identifier()
            self._identities[role] = identifier(self.profile.model(role))
        return self._identities[role]

    def identities(self) -> dict[str, dict]:
        return {role: self.identity(role) for role in sorted(self.profile.models)}

    def release(self) -> None:
        with self._lock:
            had_models = bool(self._models)
            self._models.clear()
        if had_models and self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def prepare_torch(self) -> None:
        """Apply the worker's torch settings once, before anything is computed."""
        if self._threads_set or not self.assignment.threads:
            return
        import torch

        torch.set_num_threads(self.assignment.threads)
        self._threads_set = True


def _default_loader():
    from .models import load_model

    return load_model


def _default_identifier():
    from .models import model_identity

    return model_identity
