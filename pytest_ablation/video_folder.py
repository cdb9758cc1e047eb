"""Videos made elsewhere, read back as a generator: ``ablation.run(VideoFolder(path))``.

The folder is laid out as ``--ablation-save-videos`` writes a variant's videos
(``reports/videos/<study>/<variant>/``): one video per (prompt, seed index), named
``<prompt slug>-seed<i>`` and stored as an mp4 file, a gif file, or a folder of PNG frames
(``frame_0000.png``, ...). So a study can score the outputs of any method, and a run's saved
PNG videos, read back, give that run's metric values again (PNG is lossless; mp4 is not).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .generation import GeneratorError

class VideoFolder:
    """A generator that reads each requested video from ``path`` instead of making it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise GeneratorError(f"VideoFolder: {str(self.path)!r} is not a folder of videos")
        self._identity: dict | None = None

    def cache_identity(self) -> dict:
        """The folder's content (a digest over its files), not its location; read once per
        VideoFolder, though every ``ablation.run`` asks for it."""
        if self._identity is None:
            from .models.identity import HashMemo, tree_sha256

            self._identity = {"videos": "folder", "sha256": tree_sha256(self.path, None, HashMemo())}
        return self._identity

    def video_path(self, request: Any) -> Path:
        """Where the video of ``request`` is, or GeneratorError naming what was looked for."""
        from .report.media import slug

        if request.seed_index is None:
            raise GeneratorError("VideoFolder: the request names no seed index")
        stem = f"{slug(request.prompt)}-seed{request.seed_index}"
        for candidate in (self.path / stem, self.path / f"{stem}.gif", self.path / f"{stem}.mp4"):
            if candidate.exists():
                return candidate
        raise GeneratorError(
            f"VideoFolder: no video for prompt {request.prompt!r}, seed index "
            f"{request.seed_index}: looked for {str(self.path / stem)!r} as a folder of PNG "
            f"frames, {stem}.gif or {stem}.mp4"
        )

    def generate(self, request: Any):
        import torch

        path = self.video_path(request)
        frames = _read(path)  # (F, H, W, 3) uint8
        expected = (request.frames, request.height, request.width)
        if frames.shape[:3] != expected:
            raise GeneratorError(
                f"VideoFolder: {str(path)!r} holds {frames.shape[0]} frames of "
                f"{frames.shape[1]}x{frames.shape[2]}; the study asks for {request.frames} "
                f"frames of {request.height}x{request.width}"
            )
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def _read(path: Path):
    import numpy as np
    from PIL import Image

    try:
        if path.is_dir():
            names = sorted(p for p in path.iterdir() if p.suffix == ".png")
            if not names:
                raise GeneratorError(f"VideoFolder: {str(path)!r} holds no PNG frames")
            return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names])
        if path.suffix == ".gif":
            with Image.open(path) as image:
                frames = []
                for index in range(getattr(image, "n_frames", 1)):
                    image.seek(index)
                    frames.append(np.asarray(image.convert("RGB")))
            return np.stack(frames)
        return _read_mp4(path)
    except (OSError, ValueError) as error:
        raise GeneratorError(f"VideoFolder: cannot read {str(path)!r}: {error}") from None


def _read_mp4(path: Path):
    import cv2
    import numpy as np

    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[:, :, ::-1])  # OpenCV reads BGR
    finally:
        capture.release()
    if not frames:
        raise GeneratorError(f"VideoFolder: {str(path)!r} holds no frames OpenCV can read")
    return np.ascontiguousarray(np.stack(frames))
