"""Videos made elsewhere, read back as a generator: ``ablation.run(VideoFolder(path))``.

The folder is laid out as ``--ablation-save-videos`` writes a variant's videos
(``reports/videos/<study>/<variant>/``): one video per (prompt, seed index), named
``<prompt slug>-seed<i>`` and stored as an mp4 file, a gif file, or a folder of PNG frames
(``frame_0000.png``, ...). So a study can score the outputs of any method, and a run's saved
PNG videos, read back, give that run's metric values again (PNG is lossless; mp4 is not).

Exactly one source per sample: a folder and a ``.gif`` (or any other video file) of the
same name is an error naming both, never a silent choice.

A folder's frames are read in the order of the number in their names (``frame_2`` before
``frame_10``, padded or not); names that do not give one order (other prefixes, a name
without a number, two frames of one number, a number skipped) are refused, naming them.

Every PNG colour type and bit depth is read as stored, scaled to [0, 1]: 8-bit (and lower)
values by their maximum (``v / 255``), 16-bit values by ``v / 65535``; grey is repeated
over the three channels, a palette gives its colours. Colour profiles and gamma chunks are
not applied. Transparency is refused: a frame with any pixel that is not fully opaque
(an alpha channel below its maximum, or a ``tRNS`` colour or palette entry that a pixel
uses) is an error naming the file and its mode, since what it shows depends on the
background it is drawn on. An alpha channel that is opaque everywhere is dropped.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

from .generation import GeneratorError

# Changes whenever the same files would read as other frames (e.g. the frame order), so
# that results cached from the older reading are not reused.
READER_VERSION = 2

# The files VideoFolder reads, by suffix (lower case); a folder holds PNG frames.
READ_SUFFIXES = (".gif", ".mp4")
# Other files that hold a video (or a single picture of one): beside a readable source of
# the same sample they make it ambiguous; alone they are named as a format not read.
OTHER_VIDEO_SUFFIXES = (
    ".apng",
    ".avi",
    ".flv",
    ".m4v",
    ".mkv",
    ".mov",
    ".mpeg",
    ".mpg",
    ".ogv",
    ".png",
    ".webm",
    ".webp",
    ".wmv",
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types (IHDR): how each is named in messages.
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
# A frame's name: anything, then the last run of digits, then anything without digits.
_FRAME_NAME = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\D*)$")


class VideoFolder:
    """A generator that reads each requested video from ``path`` instead of making it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise GeneratorError(f"VideoFolder: {str(self.path)!r} is not a folder of videos")
        self._identity: dict | None = None
        self._sources: dict[str, list[Path]] | None = None

    def cache_identity(self) -> dict:
        """The folder's content (a digest over its files), not its location; read once per
        VideoFolder, though every ``ablation.run`` asks for it."""
        if self._identity is None:
            from ..models.identity import HashMemo, LinkLoopError, tree_sha256

            try:
                digest = tree_sha256(self.path, None, HashMemo())
            except LinkLoopError as error:
                raise GeneratorError(f"VideoFolder: {error}") from None
            self._identity = {"videos": "folder", "reader": READER_VERSION, "sha256": digest}
        return self._identity

    def _sources_by_stem(self) -> dict[str, list[Path]]:
        """Each sample name (``<slug>-seed<i>``) with the entries that could hold its video:
        a folder of that name, or a file of that name with a video suffix (any case)."""
        if self._sources is None:
            sources: dict[str, list[Path]] = {}
            suffixes = READ_SUFFIXES + OTHER_VIDEO_SUFFIXES
            for entry in sorted(self.path.iterdir()):
                if entry.name.startswith("."):
                    continue  # hidden files, and the temporary files of atomic writes
                if entry.is_dir():
                    sources.setdefault(entry.name, []).append(entry)
                    continue
                stem, dot, suffix = entry.name.rpartition(".")
                if dot and f".{suffix.lower()}" in suffixes:
                    sources.setdefault(stem, []).append(entry)
            self._sources = sources
        return self._sources

    def video_path(self, request: Any) -> Path:
        """Where the video of ``request`` is, or GeneratorError naming what was looked for
        (or, when several entries could hold it, all of them)."""
        from .media import slug

        if request.seed_index is None:
            raise GeneratorError("VideoFolder: the request names no seed index")
        stem = f"{slug(request.prompt)}-seed{request.seed_index}"
        found = self._sources_by_stem().get(stem, [])
        if len(found) > 1:
            raise GeneratorError(
                f"VideoFolder: {len(found)} sources for prompt {request.prompt!r}, seed index "
                f"{request.seed_index}: "
                + ", ".join(repr(str(p)) for p in found)
                + "; keep one of them (a folder of PNG frames, a .gif or an .mp4)"
            )
        if found:
            path = found[0]
            if path.is_file() and path.suffix.lower() not in READ_SUFFIXES:
                raise GeneratorError(
                    f"VideoFolder: {str(path)!r} is a {path.suffix} file; VideoFolder reads a "
                    "folder of PNG frames, a .gif or an .mp4 file"
                )
            return path
        raise GeneratorError(
            f"VideoFolder: no video for prompt {request.prompt!r}, seed index "
            f"{request.seed_index}: looked for {str(self.path / stem)!r} as a folder of PNG "
            f"frames, {stem}.gif or {stem}.mp4"
        )

    def generate(self, request: Any):
        import torch

        path = self.video_path(request)
        frames = read_frames(path)  # (F, H, W, 3) float32 in [0, 1]
        expected = (request.frames, request.height, request.width)
        if frames.shape[:3] != expected:
            raise GeneratorError(
                f"VideoFolder: {str(path)!r} holds {frames.shape[0]} frames of "
                f"{frames.shape[1]}x{frames.shape[2]}; the study asks for {request.frames} "
                f"frames of {request.height}x{request.width}"
            )
        return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()


def read_frames(path: Path):
    """The frames of a video file or PNG folder: float32 ``(F, H, W, 3)`` in [0, 1], or
    GeneratorError naming the file and what is wrong with it."""
    import numpy as np

    path = Path(path)
    try:
        if path.is_dir():
            return np.stack([_read_png(p) for p in frame_files(path)])
        if path.suffix.lower() == ".gif":
            return _read_gif(path)
        return _read_mp4(path).astype(np.float32) / np.float32(255)
    except GeneratorError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise GeneratorError(f"VideoFolder: cannot read {str(path)!r}: {error}") from None


def _read(path: Path):
    """The frames as uint8 ``(F, H, W, 3)``, rounded from ``read_frames``."""
    import numpy as np

    frames = read_frames(path)
    return np.rint(frames * np.float32(255)).astype(np.uint8)


def frame_files(folder: Path) -> list[Path]:
    """The PNG frames of ``folder`` in video order: by the number in their names."""
    pngs = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".") and not p.is_dir()]
    if not pngs:
        raise GeneratorError(f"VideoFolder: {str(folder)!r} holds no PNG frames")
    where = f"VideoFolder: {str(folder)!r}"
    parsed = []
    for p in pngs:
        match = _FRAME_NAME.match(p.name[: -len(p.suffix)])
        if match is None:
            raise GeneratorError(
                f"{where}: frame {p.name!r} has no number in its name; frames are named "
                "<prefix><number>.png (frame_0000.png, frame_0001.png, ...)"
            )
        parsed.append((match["prefix"], match["suffix"], int(match["number"]), p))
    patterns: dict[tuple[str, str], list[str]] = {}
    for prefix, suffix, _, p in parsed:
        patterns.setdefault((prefix, suffix), []).append(p.name)
    if len(patterns) > 1:
        examples = ", ".join(repr(min(names)) for _, names in sorted(patterns.items()))
        raise GeneratorError(
            f"{where}: frames named in {len(patterns)} ways ({examples}); the frames of one "
            "video share one name and differ only in their number"
        )
    by_number: dict[int, Path] = {}
    for _, _, number, p in parsed:
        if number in by_number:
            first, second = sorted((by_number[number].name, p.name))
            raise GeneratorError(
                f"{where}: frames {first!r} and {second!r} both have number {number}; which comes first is not known"
            )
        by_number[number] = p
    numbers = sorted(by_number)
    for before, after in zip(numbers, numbers[1:]):
        if after != before + 1:
            raise GeneratorError(
                f"{where}: frame numbers skip from {before} to {after} "
                f"({by_number[before].name!r}, {by_number[after].name!r}); a missing frame "
                "would shift the rest of the video in time"
            )
    return [by_number[n] for n in numbers]


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from the PNG's IHDR chunk, which no reader reinterprets."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise GeneratorError(f"VideoFolder: {str(path)!r} is not a PNG file")
    bit_depth, colour_type = struct.unpack(">BB", head[24:26])
    if colour_type not in _COLOUR_TYPES:
        raise GeneratorError(
            f"VideoFolder: {str(path)!r} has PNG colour type {colour_type}, which is not one "
            "of PNG's (grey, RGB, palette, grey+alpha, RGBA)"
        )
    return bit_depth, colour_type


def _mode_name(bit_depth: int, colour_type: int, transparency: bool) -> str:
    name = f"{bit_depth}-bit {_COLOUR_TYPES[colour_type]}"
    return name + (" with a transparent colour (tRNS)" if transparency else "")


def _refuse_transparent(path: Path, mode: str, not_opaque) -> None:
    """GeneratorError when any pixel of the boolean mask ``not_opaque`` is set."""
    import numpy as np

    clear = int(np.count_nonzero(not_opaque))
    if clear:
        raise GeneratorError(
            f"VideoFolder: {str(path)!r} ({mode}): {clear} of {not_opaque.size} pixels are not "
            "opaque; VideoFolder refuses transparency, since what such a frame shows depends "
            "on the background it is drawn on; save the frames without alpha (RGB)"
        )


def _read_png(path: Path):
    """One PNG frame as float32 ``(H, W, 3)`` in [0, 1] (see the module's policy)."""
    import numpy as np
    from PIL import Image

    bit_depth, colour_type = _png_header(path)
    with Image.open(path) as image:
        if getattr(image, "n_frames", 1) > 1:
            raise GeneratorError(
                f"VideoFolder: {str(path)!r} is an animated PNG of {image.n_frames} frames; "
                "a folder holds one PNG per frame"
            )
        transparency = "transparency" in image.info
        mode = _mode_name(bit_depth, colour_type, transparency)
        if bit_depth == 16 and colour_type != 0:
            # Pillow keeps only the high byte of 16-bit colour and alpha samples.
            return _read_png16(path, mode, colour_type)
        if bit_depth == 16:
            # Grey: Pillow's "I;16" (or "I" before Pillow 10) holds the 16-bit values.
            grey = np.asarray(image).astype(np.float32)
            if transparency:
                _refuse_transparent(path, mode, grey == float(image.info["transparency"]))
            return np.repeat((grey / np.float32(65535))[..., None], 3, axis=2)
        if transparency or colour_type in (4, 6):
            rgba = np.asarray(image.convert("RGBA"))
            _refuse_transparent(path, mode, rgba[..., 3] != 255)
            rgb = rgba[..., :3]
        else:
            rgb = np.asarray(image.convert("RGB"))
    return rgb.astype(np.float32) / np.float32(255)


def _read_png16(path: Path, mode: str, colour_type: int):
    import cv2
    import numpy as np

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] not in (3, 4):
        raise GeneratorError(f"VideoFolder: {str(path)!r} ({mode}): OpenCV cannot read its 16-bit samples")
    if data.shape[2] == 4:  # an alpha channel, or a tRNS colour OpenCV turned into one
        _refuse_transparent(path, mode, data[..., 3] != 65535)
    rgb = data[..., 2::-1]  # OpenCV reads BGR(A)
    return np.ascontiguousarray(rgb).astype(np.float32) / np.float32(65535)


def _read_gif(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            rgba = np.asarray(image.convert("RGBA"))
            _refuse_transparent(path, f"GIF frame {index}", rgba[..., 3] != 255)
            frames.append(rgba[..., :3])
    return np.stack(frames).astype(np.float32) / np.float32(255)


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
