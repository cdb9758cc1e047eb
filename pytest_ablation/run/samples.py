"""A variant's samples: one video per (prompt, seed), from the cache or made by its generator,
each scored by the case's per-video metrics.

The producer works for one case on the process's device, model pool, cache and scorer
(``Workbench``); it makes the case's own variant and its reference alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .errors import AblationError
from .generation import BoundGenerator, GenerationRequest, check_output, stored_as, to_uint8
from .keys import canonical, derive_seed, digest

if TYPE_CHECKING:
    from .cache import ResultCache, StoredVideo
    from .pool import ModelPool
    from .scoring import Scorer

# The settings an ``ablation.run`` call may override; the rest of its keywords configure the
# variant.
SETTING_FIELDS = ("frames", "steps", "height", "width", "guidance_scale", "fps")

T = TypeVar("T")


class ProgressWriter(Protocol):
    """``progress(message)`` writes a progress line; ``progress.enabled`` says if it shows."""

    enabled: bool

    def __call__(self, message: str) -> None: ...


class Workbench(Protocol):
    """What a case needs of the process it runs in (``worker.WorkerContext`` provides it)."""

    profile: Any
    device: str
    pool: ModelPool
    cache: ResultCache
    scorer: Scorer
    progress: ProgressWriter

    def metric(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Sample:
    prompt: str
    seed_index: int
    seed: int
    video_key: str
    scores: Mapping[str, Mapping[str, Any]]


# (index from 1, prompt, seed index, seed, video key) of one planned sample.
Planned = tuple[int, str, int, int, str]


class SampleProducer:
    """Makes and scores the samples of one case's study (``study`` names it in progress lines)."""

    def __init__(self, bench: Workbench, study: str):
        self._bench = bench
        self._study = study

    def samples(
        self, bound: BoundGenerator, config: dict[str, Any], settings: Any, label: str, metrics: tuple[str, ...]
    ) -> tuple[list[Sample], list[StoredVideo]]:
        """The samples scored by ``metrics``, and the stored videos they were scored on, in the
        same order; ``label`` names the variant (the case's or its reference) in progress lines."""
        bench = self._bench
        pairs = [(p, s) for p in settings.prompts for s in range(settings.seeds)]
        generation_settings = {name: getattr(settings, name) for name in SETTING_FIELDS}
        batch_size = self._batch_size(bound, settings)
        planned: list[Planned] = []
        for index, (prompt, seed_index) in enumerate(pairs, start=1):
            # The random stream comes from the prompt and seed index alone, never the study:
            # the same configuration draws the same video (and cache entry) in every study,
            # and a variant and its reference start from the same noise.
            seed = derive_seed("sample", prompt, seed_index)
            key = {
                "what": "video",
                # The code that decides the video, never the package's version: the generator's
                # (in its identity) and the core's conversion to stored frames.
                "stored_as": stored_as(),
                "generator": bound.identity,
                "config": config,
                "prompt": prompt,
                "seed": seed,
                "settings": generation_settings,
            }
            if batch_size > 1:
                # A batch of another size may round differently (kernels pick their summation
                # order by shape), so the shape a video was made in is part of its identity.
                chunk_start = (index - 1) // batch_size * batch_size
                key["batch"] = min(batch_size, len(pairs) - chunk_start)
            planned.append((index, prompt, seed_index, seed, digest(key)))
        batched = self._generate_batches(bound, config, settings, planned, batch_size, label)
        # Made seed index by seed index: a generator whose model depends on the seed index
        # (ExVideo's tuning runs) then switches models once per seed index, not per sample.
        # Each video has its own seed, so the order changes no video; results keep the plan's.
        made: dict[int, tuple[Sample, Any]] = {}
        for index, prompt, seed_index, seed, video_key in sorted(planned, key=lambda p: (p[2], p[0])):

            def generate(prompt=prompt, seed=seed, seed_index=seed_index, index=index, video_key=video_key):
                if batch_size > 1 and video_key not in batched:
                    # A cached entry of this chunk turned out corrupted: remake its batch.
                    start = (index - 1) // batch_size * batch_size
                    chunk = planned[start : start + batch_size]
                    batched.update(self._generate_chunk(bound, config, settings, chunk, len(pairs), label))
                if video_key in batched:
                    return batched.pop(video_key)
                return self._generate(bound, config, settings, prompt, seed, seed_index, f"{index}/{len(pairs)}", label)

            stored = bench.cache.video(video_key, generate)
            scores = bench.scorer.score_all(stored, prompt, video_key, metrics, fps=settings.fps)
            made[index] = (Sample(prompt, seed_index, seed, video_key, scores), stored)
        samples = [made[entry[0]][0] for entry in planned]
        videos = [made[entry[0]][1] for entry in planned]
        return samples, videos

    def on_device(self, call: Callable[[], T], what: str, label: str) -> T:
        """Run ``call``; running out of device memory, or a cuDNN/cuBLAS failure, fails this
        test with the device, the models loaded and the peak memory, and frees the models
        so that the run goes on."""
        from .devices import device_failure

        pool = self._bench.pool
        try:
            return call()
        except Exception as error:
            if not device_failure(error):
                raise
            message = pool.out_of_memory_message(f"{what} for {self._study} {label}", error)
            # The traceback's frames hold the failed call's tensors.
            error.__traceback__ = None
            del error
        # Outside the handler, so the new error carries no reference to the old one.
        pool.release()
        raise AblationError(message)

    def _request(self, config, settings, prompt, seed, seed_index) -> GenerationRequest:
        return GenerationRequest.from_settings(
            settings,
            prompt=prompt,
            seed=seed,
            seed_index=seed_index,
            device=self._bench.device,
            config=config,
            progress=self._bench.progress.enabled,
        )

    def _generate(self, bound, config, settings, prompt, seed, seed_index, progress, label):
        request = self._request(config, settings, prompt, seed, seed_index)
        started = time.perf_counter()
        output = self.on_device(lambda: bound.call(request), f"generating {prompt!r}", label)
        seconds = time.perf_counter() - started
        self._bench.progress(f"{self._study} {label}: generated {progress} {prompt!r} ({seconds:.2f}s)")
        return _stored(check_output(output, generator=bound.name), seconds)

    def _batch_size(self, bound, settings) -> int:
        from ..profiles.settings import resolve_batch_size

        if bound.call_batch is None:
            return 1
        return resolve_batch_size(settings.batch_size, self._bench.device, settings.frames)

    def _generate_batches(self, bound, config, settings, planned, size, label) -> dict:
        """Videos of the samples, ``size`` per generator call, for the chunks the cache lacks.

        Only for generators with ``generate_batch(requests)`` and a batch size above 1 (the
        profile's ``batch_size``). The chunks are fixed (samples 1..size, size+1..2 size, ...),
        whatever is cached, so a video is always made in the same batch shape; each request
        keeps its own seeded generator, so a video does not depend on the other videos of
        its batch. The results reach the cache one by one, as if generated alone.
        """
        if size <= 1:
            return {}
        cache = self._bench.cache
        videos = {}
        for start in range(0, len(planned), size):
            chunk = planned[start : start + size]
            if not all(cache.has_video(entry[4]) for entry in chunk):
                videos.update(self._generate_chunk(bound, config, settings, chunk, len(planned), label))
        return videos

    def _generate_chunk(self, bound, config, settings, chunk, total, label) -> dict:
        requests = [
            self._request(config, settings, prompt, seed, seed_index) for _, prompt, seed_index, seed, _ in chunk
        ]
        started = time.perf_counter()
        outputs = self.on_device(
            lambda: bound.call_batch(requests), f"generating a batch of {len(requests)} videos", label
        )
        seconds = time.perf_counter() - started
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(requests):
            raise AblationError(
                f"{bound.name}.generate_batch returned {type(outputs).__name__} for "
                f"{len(requests)} requests; expected a list of {len(requests)} videos"
            )
        self._bench.progress(
            f"{self._study} {label}: generated {chunk[0][0]}-{chunk[-1][0]}/{total} in one batch ({seconds:.2f}s)"
        )
        return {
            entry[4]: _stored(check_output(output, generator=bound.name), seconds / len(requests))
            for entry, output in zip(chunk, outputs)
        }


def _stored(output, seconds: float):
    from .cache import StoredVideo

    condition = output.condition_image
    info = {"seconds": round(seconds, 4), **canonical(output.info, where="generator info")}
    return StoredVideo(
        frames=to_uint8(output.video),
        condition=None if condition is None else to_uint8(condition),
        info=info,
    )
