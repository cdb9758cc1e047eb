"""Previews for report.html and the videos of --ablation-save-videos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_ablation.run import media
from pytest_ablation.run.media import STRIP_GAP, save_video, slug, write_preview

from .conftest import toy_video


def test_slug_keeps_safe_names_readable():
    for name in ("mu=0.6", "zs2-tma", "two_stage", "lam+0.1"):
        assert slug(name) == name


def test_slug_replaces_odd_characters_and_stays_distinct():
    names = ["a/b", "a b", "a\\b", "a:b", "a_b", "..", "", "CON", "x" * 200, "émoji 🎞"]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    for name, s in zip(names, slugs):
        assert s and len(s) <= 90
        assert "/" not in s and "\\" not in s and not s.startswith(".")
        assert all(c.isascii() and (c.isalnum() or c in "._=+-") for c in s), s
        if name != "a_b":
            # Anything changed gets a hash, so "a/b" and the literal "a_b" do not collide.
            assert s != name and len(s.rsplit("-", 1)[-1]) == 8
    assert slug("a/b").startswith("a_b-")
    assert slug("a/b") == slug("a/b")  # stable from run to run


def test_preview_of_a_tiny_video_is_upscaled_without_blurring(tmp_path):
    video = toy_video(32, 32, (255, 0, 0))
    names = write_preview(video, tmp_path / "media", "mu=0.6", fps=8)
    assert names == {"strip": "mu=0.6.strip.png", "animation": "mu=0.6.gif"}
    strip = np.asarray(Image.open(tmp_path / "media" / names["strip"]).convert("RGB"))
    # 32 px high -> x3 = 96 px; 8 of the 32 frames, evenly spread, with gaps between.
    assert strip.shape == (96, 8 * 96 + 7 * STRIP_GAP, 3)
    first = strip[:, :96]
    # Nearest-neighbour: every source pixel becomes a 3x3 block of the same colour.
    assert np.array_equal(first, np.repeat(np.repeat(video[0], 3, axis=0), 3, axis=1))
    last = strip[:, -96:]
    assert np.array_equal(last, np.repeat(np.repeat(video[-1], 3, axis=0), 3, axis=1))
    gif = Image.open(tmp_path / "media" / names["animation"])
    assert gif.format == "GIF" and gif.size == (96, 96)
    assert gif.n_frames == 32
    assert gif.info["loop"] == 0  # loop forever
    assert gif.info["duration"] in (120, 125)  # 8 fps, in GIF's 10 ms units
    # Only the two files: the temporary files were renamed into place.
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == sorted(names.values())


def test_preview_of_a_large_video_is_downscaled(tmp_path):
    video = np.zeros((3, 480, 640, 3), np.uint8)
    video[:, :, :320] = 200
    names = write_preview(video, tmp_path, "big", fps=4)
    strip = Image.open(tmp_path / names["strip"])
    assert strip.size == (3 * 256 + 2 * STRIP_GAP, 192)
    gif = Image.open(tmp_path / names["animation"])
    assert gif.size == (256, 192)


def test_preview_of_a_mid_sized_video_keeps_its_size(tmp_path):
    names = write_preview(toy_video(5, 128, (0, 255, 0)), tmp_path, "mid")
    assert Image.open(tmp_path / names["strip"]).size == (5 * 128 + 4 * STRIP_GAP, 128)


def test_preview_rejects_frames_that_are_not_uint8_rgb(tmp_path):
    with pytest.raises(ValueError, match="frames: expected dtype uint8"):
        write_preview(np.zeros((2, 8, 8, 3), np.float32), tmp_path, "x")
    with pytest.raises(ValueError, match=r"frames: expected a \(frames, height, width, 3\)"):
        write_preview(np.zeros((8, 8, 3), np.uint8), tmp_path, "x")


def test_save_video_mp4_is_readable(tmp_path):
    import cv2

    video = toy_video(10, 64, (0, 0, 255))
    path = save_video(video, tmp_path / "videos" / "mu=0.6-p0-s0", "mp4", fps=8)
    assert path == tmp_path / "videos" / "mu=0.6-p0-s0.mp4"  # ".6" is not taken as a suffix
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 10 and frames[0].shape == (64, 64, 3)
    # Lossy, but the blue square (BGR order in OpenCV) is where it was.
    assert frames[0][8, 6, 0] > 150 and frames[0][8, 6, 2] < 100


def test_save_video_gif_and_png(tmp_path):
    video = toy_video(6, 32, (255, 255, 0))
    gif = save_video(video, tmp_path / "v", "gif", fps=4)
    assert gif.name == "v.gif"
    image = Image.open(gif)
    assert image.size == (32, 32) and image.n_frames == 6  # the video's own resolution
    folder = save_video(video, tmp_path / "v", "png", fps=4)
    assert folder == tmp_path / "v"
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:04d}.png" for i in range(6)]
    assert np.array_equal(np.asarray(Image.open(folder / "frame_0003.png")), video[3])
    # Saving a shorter video again leaves none of the old frames behind.
    save_video(video[:2], tmp_path / "v", "png", fps=4)
    assert sorted(p.name for p in folder.iterdir()) == ["frame_0000.png", "frame_0001.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v", "v.gif"]


def test_save_video_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=r"fmt: got 'avi'; expected one of mp4, gif, png"):
        save_video(toy_video(2, 16, (1, 2, 3)), tmp_path / "v", "avi", fps=8)


class _BrokenWriter:
    """Stands in for an OpenCV build without an mp4 encoder."""

    def __init__(self, path, fourcc, fps, size, *, opened):
        self.opened = opened

    def isOpened(self):
        return self.opened

    def write(self, frame):
        pass

    def release(self):
        pass


@pytest.mark.parametrize("opened", [False, True], ids=["not-opened", "empty-file"])
def test_save_video_mp4_failure_suggests_gif(tmp_path, monkeypatch, opened):
    import cv2

    monkeypatch.setattr(cv2, "VideoWriter", lambda *args: _BrokenWriter(*args, opened=opened))
    with pytest.raises(RuntimeError, match="--ablation-save-videos gif"):
        save_video(toy_video(3, 16, (9, 9, 9)), tmp_path / "v", "mp4", fps=8)
    assert list(tmp_path.iterdir()) == []  # no half-written or empty file left


def test_strip_indices_spread_over_the_video():
    assert media._strip_indices(4) == [0, 1, 2, 3]
    picks = media._strip_indices(32)
    assert len(picks) == 8 and picks[0] == 0 and picks[-1] == 31
    assert all(b - a in (4, 5) for a, b in zip(picks, picks[1:]))
