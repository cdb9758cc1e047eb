"""Set-level metrics of a case: one number for a variant's whole set of videos (FVD).

A video-level metric scores each video and a claim pairs the scores by prompt; a set-level
metric compares the variant's set with a reference set, the reference variant's videos or
the marker's ``fvd_reference`` folder of real videos. Each set's statistics are cached by
the videos' content, so a reference set is featurised once whatever the study, variant or
run that needs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from .keys import digest

if TYPE_CHECKING:
    from .catalog import Case

AVAILABLE = ("fvd",)


class SetMetricError(ValueError):
    """A set-level metric cannot be computed as the study asks (the case's id is added)."""


class SetScorer:
    """The set-level metrics of one case. ``bench`` gives the device, the cache, the
    metric specs and progress lines; ``test_path`` is the study file, from which a relative
    ``fvd_reference`` folder is found."""

    def __init__(self, case: Case, bench: Any, test_path: Path):
        self.case, self._bench, self._test_path = case, bench, test_path

    def names(self) -> list[str]:
        return [m for m in self.case.marker.metrics if getattr(self._bench.metric(m), "level", "video") == "set"]

    def score(self, videos: list, reference_videos: list, settings: Any) -> dict:
        """Each set-level metric of the study for ``videos`` (stored videos) against the
        reference set."""
        names = self.names()
        if not names:
            return {}
        unknown = [m for m in names if m not in AVAILABLE]
        if unknown:
            raise SetMetricError(
                f"set-level metric(s) {unknown} have no implementation; "
                f"the set-level metrics available are {list(AVAILABLE)}"
            )
        from ..metrics.dimensions.fvd import fvd

        variant_hashes = [frames_hash(v.frames) for v in videos]
        variant_set = self._feature_set(
            variant_hashes,
            lambda: [v.frames for v in videos],
            f"{self.case.variant} ({len(videos)} videos)",
        )
        folder = self._reference_folder()
        if folder is None:
            reference_name = self.case.marker.reference or self.case.variant
            description = f"variant {reference_name} ({len(reference_videos)} videos)"
            hashes = [frames_hash(v.frames) for v in reference_videos]
            reference_set = self._feature_set(hashes, lambda: [v.frames for v in reference_videos], description)
            same = hashes == variant_hashes
        else:
            paths = folder_videos(folder)
            description = f"folder {self.case.marker.fvd_reference} ({len(paths)} videos)"
            reference_set = self._feature_set(
                {"folder": folder_digest(folder), "frames": settings.frames},
                lambda: [read_reference_video(path, settings.frames) for path in paths],
                description,
            )
            same = False
        result = fvd(
            variant_set["features"].numpy(), reference_set["features"].numpy(), reference=description, same_set=same
        )
        if result.warning:
            self._bench.progress(f"{self.case.study} {self.case.variant}: warning: {result.warning}")
        return {"fvd": result}

    def _reference_folder(self) -> Path | None:
        from .catalog import fvd_reference_folder

        if self.case.marker.fvd_reference is None:
            return None
        folder = fvd_reference_folder(self.case.marker, self._test_path)
        if not folder.is_dir():
            raise SetMetricError(f"fvd_reference {self.case.marker.fvd_reference!r} is not a folder ({folder})")
        return folder

    def _feature_set(self, content: Any, load_videos: Callable[[], list], label: str) -> dict:
        """I3D features of a set of videos and their Gaussian fit (``features``, ``mean``,
        ``cov``, ``count``), cached by the videos' content and the I3D weights' identity."""
        from ..metrics.backends import i3d
        from ..metrics.backends.i3d import FEATURE_VERSION
        from .keys import source_digest
        from ..metrics.dimensions.fvd import feature_size
        from ..metrics.weights import weight_file

        size = feature_size()
        key = digest(
            {
                "what": "fvd-features",
                # The code that computes the features, never the package's version.
                "code": source_digest(i3d.__name__),
                "videos": content,
                "weights": weight_file("i3d").identity(),
                "features": FEATURE_VERSION,
                "size": size,
            }
        )
        computed = []

        def compute() -> dict:
            import numpy as np
            import torch

            from ..metrics.dimensions.fvd import features_of

            started = time.perf_counter()
            features = features_of(load_videos(), self._bench.device, size=size)
            computed.append(time.perf_counter() - started)
            return {
                "features": torch.from_numpy(features),
                "mean": torch.from_numpy(features.mean(axis=0)),
                "cov": torch.from_numpy(np.atleast_2d(np.cov(features, rowvar=False))),
                "count": torch.tensor(len(features)),
            }

        entry = self._bench.cache.tensors(key, compute)
        how = f"computed ({computed[0]:.2f}s)" if computed else "cached"
        self._bench.progress(f"{self.case.study} fvd statistics of {label}: {how}")
        return entry


def frames_hash(frames) -> dict:
    """A video's content, for the set statistics' cache key: its uint8 frames' bytes."""
    import hashlib

    data = frames.contiguous().numpy().tobytes()
    return {"shape": list(frames.shape), "sha256": hashlib.sha256(data).hexdigest()}


def folder_videos(folder: Path) -> list[Path]:
    """The videos of a reference folder, by name: folders of PNG frames, gif and mp4 files
    (the layouts ``VideoFolder`` reads)."""
    found = sorted(
        path
        for path in Path(folder).iterdir()
        if (path.is_dir() and any(path.glob("*.png"))) or (path.is_file() and path.suffix.lower() in (".gif", ".mp4"))
    )
    if not found:
        raise SetMetricError(
            f"fvd_reference {str(folder)!r} holds no videos (folders of PNG frames, .gif or .mp4 files)"
        )
    return found


def folder_digest(folder: Path) -> str:
    from ..models.identity import HashMemo, tree_sha256

    memo = HashMemo()
    try:
        return tree_sha256(folder, None, memo)
    finally:
        memo.flush()


def read_reference_video(path: Path, frames: int):
    """A real video as uint8 (frames, 3, H, W), cut to the study's frame count: FVD compares
    clips of one length. Its size may differ from the study's: I3D resizes every frame."""
    import torch

    from .generation import GeneratorError
    from .video_folder import _read

    try:
        video = _read(path)
    except GeneratorError as error:
        raise SetMetricError(f"fvd_reference: {error}") from None
    if len(video) < frames:
        raise SetMetricError(
            f"fvd_reference: {str(path)!r} has {len(video)} frames; the "
            f"study's videos have {frames}, and FVD compares clips of equal length"
        )
    return torch.from_numpy(video[:frames]).permute(0, 3, 1, 2).contiguous()
