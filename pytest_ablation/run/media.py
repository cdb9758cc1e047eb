"""Pictures of generated videos: the previews embedded in report.html and saved videos.

These functions run on the worker that generated a video, while the run is in progress, so
they only take uint8 frames and write files; report.html reads the files back at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import removed_on_error, write_bytes_atomic

if TYPE_CHECKING:
    import numpy as np

# Previews of the toy models' 32x32 and 64x64 videos are unreadable at their own size, and
# full-size videos would make report.html huge: previews are scaled into this band of heights.
PREVIEW_MIN_HEIGHT = 96
PREVIEW_MAX_HEIGHT = 192
STRIP_MAX_FRAMES = 8
# White gap between the frames of a strip, at preview scale, so frame borders are visible.
STRIP_GAP = 2
# The formats --ablation-save-videos accepts.
VIDEO_FORMATS = ("mp4", "gif", "png")

# Characters kept as they are in a slug; everything else is replaced. '=' and '+' stay
# because variant names such as "mu=0.6" use them and they are safe on every filesystem.
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_SLUG_MAX = 80
# Names Windows refuses for files whatever their extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def slug(text: str) -> str:
    """A file name for a study or variant that stays readable and does not collide.

    Names made only of safe characters are returned unchanged ("mu=0.6"). Any other name is
    cleaned up and gets a short hash of the original appended, so two names that clean up
    to the same text ("a/b", "a b") still get different slugs.
    """
    text = str(text)
    cleaned = _UNSAFE.sub("_", text).strip("._ ")
    changed = cleaned != text
    if len(cleaned) > _SLUG_MAX:
        cleaned, changed = cleaned[:_SLUG_MAX].rstrip("._ "), True
    if not cleaned or cleaned.split(".")[0].upper() in _RESERVED:
        changed = True
    if not changed:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def _check_frames(frames) -> np.ndarray:
    import numpy as np

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(
            f"frames: expected a (frames, height, width, 3) array with at least one frame; got shape {frames.shape}"
        )
    if frames.dtype != np.uint8:
        raise ValueError(f"frames: expected dtype uint8; got {frames.dtype}")
    return np.ascontiguousarray(frames)


def _preview_size(height: int, width: int) -> tuple[int, int]:
    """(width, height) of a preview frame: integer upscaling of tiny frames keeps pixels sharp."""
    if height < PREVIEW_MIN_HEIGHT:
        factor = -(-PREVIEW_MIN_HEIGHT // height)  # ceiling division
        return width * factor, height * factor
    if height > PREVIEW_MAX_HEIGHT:
        scale = PREVIEW_MAX_HEIGHT / height
        return max(1, round(width * scale)), PREVIEW_MAX_HEIGHT
    return width, height


def _preview_frames(frames: np.ndarray) -> list:
    from PIL import Image

    height, width = frames.shape[1:3]
    size = _preview_size(height, width)
    # Nearest neighbour when enlarging (pixel art stays pixel art), Lanczos when shrinking.
    resample = Image.Resampling.NEAREST if size[1] >= height else Image.Resampling.LANCZOS
    images = [Image.fromarray(frame, "RGB") for frame in frames]
    if size != (width, height):
        images = [image.resize(size, resample) for image in images]
    return images


def _strip_indices(count: int, most: int = STRIP_MAX_FRAMES) -> list[int]:
    """Up to ``most`` frame indices evenly spread over the video, always first and last."""
    import numpy as np

    if count <= most:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, most)})


def _strip_png(images: list) -> bytes:
    from PIL import Image

    width, height = images[0].size
    strip = Image.new("RGB", (len(images) * width + (len(images) - 1) * STRIP_GAP, height), (255, 255, 255))
    for i, image in enumerate(images):
        strip.paste(image, (i * (width + STRIP_GAP), 0))
    return _png_bytes(strip)


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    # No metadata and fixed compression: the same frames give the same bytes.
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _gif_bytes(images: list, fps: float) -> bytes:
    """An endlessly looping GIF. Pillow merges consecutive identical frames into one longer
    frame, so a still video has fewer GIF frames than video frames but plays the same."""
    if not fps or fps <= 0:
        raise ValueError(f"fps: expected a positive number; got {fps!r}")
    from PIL import Image

    # Each frame to its own 256 colours by fast octree: Pillow's default (median cut) costs
    # about 25x more, which a report of long videos pays on every run.
    images = [image.quantize(method=Image.Quantize.FASTOCTREE) for image in images]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 / fps)),  # browsers slow down frames shorter than 20 ms
        loop=0,
        disposal=1,
    )
    return buffer.getvalue()


def _with_suffix(path: Path, suffix: str) -> Path:
    # Not Path.with_suffix: "mu=0.6" would lose its ".6".
    return path.parent / (path.name + suffix)


def write_preview(frames, folder: str | os.PathLike, stem: str, *, fps: float = 8) -> dict:
    """Write ``<stem>.strip.png`` and ``<stem>.gif`` into ``folder``.

    The strip shows at most 8 frames evenly sampled, side by side; the GIF has every frame
    and loops forever. Both are scaled to a height between 96 and 192 pixels. Returns the
    file names (not paths): {"strip": ..., "animation": ...}.
    """
    frames = _check_frames(frames)
    folder = Path(folder)
    images = _preview_frames(frames)
    strip_name = f"{stem}.strip.png"
    animation_name = f"{stem}.gif"
    strip = _strip_png([images[i] for i in _strip_indices(len(images))])
    animation = _gif_bytes(images, fps)
    write_bytes_atomic(folder / strip_name, strip)
    write_bytes_atomic(folder / animation_name, animation)
    return {"strip": strip_name, "animation": animation_name}


def save_video(frames, path_without_suffix: str | os.PathLike, fmt: str, fps: float) -> Path:
    """Save a video at its own resolution for --ablation-save-videos; returns where it went.

    ``mp4`` writes ``<path>.mp4`` (OpenCV, codec mp4v), ``gif`` writes ``<path>.gif``,
    ``png`` writes the folder ``<path>/`` with frame_0000.png, frame_0001.png, ...
    """
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"fmt: got {fmt!r}; expected one of {', '.join(VIDEO_FORMATS)}")
    if not fps or fps <= 0:
        raise ValueError(f"fps: expected a positive number; got {fps!r}")
    frames = _check_frames(frames)
    path = Path(path_without_suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp4":
        return _save_mp4(frames, _with_suffix(path, ".mp4"), fps)
    if fmt == "gif":
        from PIL import Image

        images = [Image.fromarray(frame, "RGB") for frame in frames]
        return write_bytes_atomic(_with_suffix(path, ".gif"), _gif_bytes(images, fps))
    return _save_png_folder(frames, path)


class MediaWriter:
    """Writes each variant's preview (and, with --ablation-save-videos, every video) under the
    report folder, from the process that generated the videos, while the run goes on.

    Nothing large travels between processes: the record of the variant keeps the paths,
    relative to the report folder, for report.html.
    """

    def __init__(self, report_dir: str | os.PathLike, save_videos: str | None = None) -> None:
        self._root = Path(report_dir)
        self._save_videos = save_videos

    def save(self, record: dict, videos, *, fps: int) -> dict:
        """The fields to add to ``record``: ``media`` (the preview of its first video) and,
        when videos are saved, ``videos`` (one per sample); ``videos`` are the stored videos
        (uint8 frames (F, 3, H, W)) of the record's samples, in order."""
        root = self._root
        study, variant = slug(record["study"]), slug(record["variant"])
        media_dir = Path("media") / study
        try:
            written = write_preview(_frames_hwc(videos[0]), root / media_dir, variant, fps=fps)
        except OSError as error:
            # A full disk costs the pictures, not the case: its numbers are already scored.
            import warnings

            warnings.warn(
                f"ablation: previews of {record['study']} {record['variant']} not saved: {error.strerror or error}",
                stacklevel=2,
            )
            return {}
        saved: dict[str, Any] = {"media": {kind: (media_dir / name).as_posix() for kind, name in written.items()}}
        if self._save_videos is not None:
            video_dir = Path("videos") / study / variant
            saved["videos"] = [
                save_video(
                    _frames_hwc(video),
                    root / video_dir / f"{slug(sample['prompt'])}-seed{sample['seed_index']}",
                    self._save_videos,
                    fps,
                )
                .relative_to(root)
                .as_posix()
                for sample, video in zip(record["samples"], videos)
            ]
        return saved


def _frames_hwc(video) -> np.ndarray:
    """A stored video's uint8 frames, (F, 3, H, W) in torch, as an (F, H, W, 3) array."""
    return video.frames.permute(0, 2, 3, 1).contiguous().numpy()


def _save_mp4(frames: np.ndarray, target: Path, fps: float) -> Path:
    import numpy as np

    import cv2

    # OpenCV picks the container from the extension, so the temporary name ends in .mp4 too.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp.mp4", dir=target.parent)
    os.close(fd)
    height, width = frames.shape[1:3]
    with removed_on_error(tmp):
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]  # stubs list VideoWriter.fourcc
        writer = cv2.VideoWriter(tmp, fourcc, float(fps), (width, height))
        try:
            if not writer.isOpened():
                raise RuntimeError(
                    f"OpenCV {cv2.__version__} cannot write mp4 (codec 'mp4v') to {target}; "
                    "this OpenCV build may lack an mp4 encoder: save videos as gif or png "
                    "instead (--ablation-save-videos gif)"
                )
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # OpenCV wants BGR
        finally:
            writer.release()
        if os.path.getsize(tmp) == 0:
            raise RuntimeError(
                f"OpenCV {cv2.__version__} wrote an empty mp4 for {target}; this OpenCV build "
                "may lack an mp4 encoder: save videos as gif or png instead "
                "(--ablation-save-videos gif)"
            )
        os.replace(tmp, target)
    return target


def _save_png_folder(frames: np.ndarray, target: Path) -> Path:
    """Fill a fresh folder beside ``target`` and swap it in, so readers never see a mix of
    an old and a new video's frames."""
    from PIL import Image

    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = None
    try:
        for i, frame in enumerate(frames):
            (fresh / f"frame_{i:04d}.png").write_bytes(_png_bytes(Image.fromarray(frame, "RGB")))
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "video")
        try:
            os.replace(fresh, target)
        except BaseException:
            if old is not None:  # put the previous video back rather than lose it
                os.replace(old / "video", target)
            raise
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target
