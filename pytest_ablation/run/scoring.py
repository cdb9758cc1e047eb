"""Scoring stored videos with the registered metrics, each score cached on its own.

A score's key is the video's key plus the metric's name and version and the feature model
it uses, so adding a metric to a study scores the cached videos without regenerating them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

from .keys import canonical, digest

if TYPE_CHECKING:
    from ..metrics import MetricInput


class Scorer:
    def __init__(self, cache, pool, metric: Callable[[str], Any]):
        self._cache = cache
        self._pool = pool
        self._metric = metric
        # Each metric's code digest, read once per run rather than once per score.
        self._codes: dict[str, str | None] = {}

    def score_all(
        self, stored, prompt: str, video_key: str, metrics, fps: float | None = None
    ) -> dict[str, Mapping[str, Any]]:
        # fps needs no place in the score key: it is one of the video key's settings.
        inputs = _LazyInput(stored, prompt, self._pool, fps)
        scores = {}
        for name in metrics:
            spec = self._metric(name)
            needs = set(spec.needs)
            identity = {
                "what": "score",
                "video": video_key,
                "metric": name,
                # The metric's declared version and its module's code (with the input
                # preparation all metrics share), never the package's version.
                "metric_version": spec.version,
                "metric_code": self._code(name, spec),
                "text": prompt if "text" in needs else None,
                "clip": self._pool.identity("clip") if "clip" in needs else None,
            }
            if getattr(spec, "weights", ()):
                identity["weights"] = [_weights_identity(w, self._pool.device) for w in spec.weights]
            if name == "motion_smoothness":
                # The score is only as good as the interpolator: another one is another score.
                identity["interpolator"] = inputs.interpolator_setting()
            key = digest(identity)

            def evaluate(spec=spec):
                score = spec.evaluate(inputs.get(with_clip="clip" in spec.needs))
                per_frame = getattr(score, "per_frame", None)
                return {
                    "value": float(score.value),
                    "per_frame": None if per_frame is None else [float(v) for v in per_frame],
                    "details": canonical(dict(getattr(score, "details", None) or {})),
                }

            scores[name] = self._cache.score(key, evaluate)
        return scores

    def _code(self, name: str, spec) -> str | None:
        if name not in self._codes:
            self._codes[name] = metric_code(spec)
        return self._codes[name]


def _weights_identity(name: str, device: str) -> dict:
    from ..metrics.weights import weight_file

    weights = weight_file(name)
    identity = weights.identity()
    if weights.half_on_gpu:
        # The same file scores in float16 on a GPU and in float32 on the CPU: two scores.
        identity["precision"] = weights.precision(device)
    return identity


class _LazyInput:
    """Builds the metrics' input once per video, and only if some score is not cached.

    One input object serves every metric of the video, so CLIP features are computed once;
    the judge is loaded only for a metric that needs it.
    """

    def __init__(self, stored, prompt: str, pool, fps: float | None = None):
        self._stored = stored
        self._prompt = prompt
        self._pool = pool
        self._fps = fps
        self._input: MetricInput | None = None
        self._has_clip = False

    def get(self, *, with_clip: bool):
        wants_clip = with_clip and "clip" in self._pool.profile.models
        if self._input is None or (wants_clip and not self._has_clip):
            from ..metrics import MetricInput

            self._input = MetricInput(
                video=self._stored.as_float(),
                text=self._prompt,
                image=self._stored.condition_as_float(),
                clip=self._pool.get("clip") if wants_clip else None,
                device=self._pool.device,
                fps=self._fps,
                interpolator=self._interpolator(),
            )
            self._has_clip = wants_clip
        return self._input

    def interpolator_setting(self) -> str:
        """The profile's ``[metrics.motion_smoothness] interpolator``, or the default."""
        from ..metrics.interpolator_choice import DEFAULT

        options = getattr(self._pool.profile, "metric_options", None)
        chosen = options("motion_smoothness").get("interpolator") if options else None
        return chosen or DEFAULT

    def _interpolator(self):
        from ..metrics.interpolator_choice import LazyInterpolator

        # Built on first use, so that a video whose motion_smoothness is cached never runs
        # the factory (which may load a model).
        return LazyInterpolator(self.interpolator_setting())


def metric_code(spec) -> str | None:
    """A digest of the code that evaluates ``spec``, with the inputs module every metric reads
    its frames through: a built-in metric's whole module (its formula and helpers); for
    another metric, its evaluate function's own source, so that editing the conftest around
    it rescores nothing. None where that code cannot be read."""
    import sys

    from .keys import source_digest

    evaluate = spec.evaluate
    name = getattr(evaluate, "__module__", None) or type(evaluate).__module__
    code = sys.modules.get(name) if name.startswith("pytest_ablation.") else evaluate
    if code is None:
        return None
    return source_digest(code, "pytest_ablation.metrics.inputs")
