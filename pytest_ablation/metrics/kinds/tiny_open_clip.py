"""``tiny-open-clip``: the metrics' toy open_clip judge, seeded random weights."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

from pytest_ablation.metrics.kinds.open_clip import clip_model
from pytest_ablation.profiles import ModelKind, ModelSpec, checks
from pytest_ablation.profiles.spec import thaw

# The architecture's name; its open_clip config ships beside the metrics.
ARCHITECTURE = "pytest-ablation-tiny"


def load(spec: ModelSpec, device: str) -> Any:
    return clip_model(ARCHITECTURE, None, device, spec.options.get("seed", 0))


def _config_sha256() -> str | None:
    try:
        text = (resources.files("pytest_ablation.metrics") / f"{ARCHITECTURE}.json").read_bytes()
    except (OSError, ModuleNotFoundError):
        return None
    canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
    options = thaw(spec.options)
    return {
        "kind": spec.kind,
        "name": ARCHITECTURE,
        "config_sha256": _config_sha256(),
        "seed": options.pop("seed", 0),
        "options": options,
    }


KIND = ModelKind(
    name="tiny-open-clip",
    description="the metrics' toy open_clip judge 'pytest-ablation-tiny', seeded random weights",
    load=load,
    identity=identity,
    options={"seed": checks.seed},
)
