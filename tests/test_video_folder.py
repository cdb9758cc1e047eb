"""Scoring videos made elsewhere: a run's saved PNG videos, read back through VideoFolder,
give that run's metric values again; a missing or mis-sized video fails naming the file."""

import re
import struct
import zlib

import numpy as np
import pytest
import torch

from pytest_ablation import VideoFolder
from pytest_ablation.run.generation import GenerationRequest, GeneratorError
from pytest_ablation.profiles import load_profile
from report_files import report_of, result_rows

MADE = """
import pytest


@pytest.mark.ablation("made", reference="mu=0.98", metrics=["clip_score", "temporal_consistency"])
@pytest.mark.parametrize("mu", [0.6, 0.98], ids=lambda m: f"mu={m}")
def test_made(mu, zs2, ablation):
    ablation.run(zs2, momentum=mu)
"""

READ_BACK = """
import pytest

from pytest_ablation import VideoFolder


@pytest.mark.ablation("read", reference="mu=0.98", metrics=["clip_score", "temporal_consistency"])
@pytest.mark.parametrize("mu", [0.6, 0.98], ids=lambda m: f"mu={m}")
def test_read(mu, ablation):
    ablation.run(VideoFolder(f"saved/videos/made/mu={mu}"))
"""


def values(report, study):
    return {(r["variant"], r["metric"]): r["value"] for r in result_rows(report) if r["study"] == study}


@pytest.mark.slow
@pytest.mark.slow
def test_saved_png_videos_read_back_give_the_same_scores(pytester):
    # Fresh processes: the two runs import different model code, which torch allows once.
    pytester.makepyfile(test_made=MADE)
    result = pytester.runpytest_subprocess(
        "--ablation-profile=tiny", "--ablation-save-videos=png", "--ablation-report-dir=saved", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    made = values(report_of(pytester, "saved"), "made")

    pytester.makepyfile(test_read=READ_BACK)
    result = pytester.runpytest_subprocess(
        "test_read.py", "--ablation-profile=tiny", "--ablation-report-dir=read", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    read = values(report_of(pytester, "read"), "read")
    assert set(read) == set(made) and len(made) == 4
    for key, value in made.items():
        assert read[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # Another run's scores differ: the equality above is not a coincidence of the metrics.
    assert made[("mu=0.6", "clip_score")] != made[("mu=0.98", "clip_score")]


def request(settings, prompt="a red ball", seed_index=0):
    return GenerationRequest.from_settings(
        settings, prompt=prompt, seed=1, seed_index=seed_index, device="cpu", config={}
    )


def test_a_missing_video_is_named(tmp_path):
    settings = load_profile("tiny").settings
    with pytest.raises(
        GeneratorError,
        match=r"no video for prompt 'a red ball', seed index 1: "
        r"looked for '.*a_red_ball-\w+-seed1'",
    ):
        VideoFolder(tmp_path).generate(request(settings, seed_index=1))


def test_a_video_of_the_wrong_size_is_named(tmp_path):
    from PIL import Image

    from pytest_ablation.run.media import slug

    settings = load_profile("tiny").settings  # 4 frames of 64x64
    folder = tmp_path / f"{slug('a red ball')}-seed0"
    folder.mkdir()
    for i in range(settings.frames):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"frame_{i:04d}.png")
    with pytest.raises(GeneratorError, match=r"holds 4 frames of 32x32; the study asks for 4 frames of 64x64"):
        VideoFolder(tmp_path).generate(request(settings))
    for i in range(settings.frames):
        Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(folder / f"frame_{i:04d}.png")
    video = VideoFolder(tmp_path).generate(request(settings))
    assert video.shape == (4, 3, 64, 64) and torch.allclose(video[2, 0], torch.full((64, 64), 80 / 255))


def test_a_folder_that_is_not_there_is_refused(tmp_path):
    with pytest.raises(GeneratorError, match="is not a folder of videos"):
        VideoFolder(tmp_path / "nowhere")


# -- frame order ----------------------------------------------------------------------------
def sample_folder(root, prompt="a red ball", seed_index=0):
    from pytest_ablation.run.media import slug

    folder = root / f"{slug(prompt)}-seed{seed_index}"
    folder.mkdir()
    return folder


def small(frames, size=8):
    """Settings for ``frames`` frames of size x size."""
    return load_profile("tiny").settings.replace(frames=frames, height=size, width=size)


def write_indexed_frames(folder, names):
    """One grey frame per name; frame i of ``names`` has every pixel 20 * i."""
    from PIL import Image

    for index, name in enumerate(names):
        Image.new("L", (8, 8), 20 * index).save(folder / name)


@pytest.mark.parametrize("pattern", ["frame_{}.png", "{}.png", "clip7_frame{}.PNG", "f{}_final.png"])
def test_frames_are_read_in_the_order_of_their_numbers(tmp_path, pattern):
    # Not zero-padded: in text order frame_10 would come before frame_2.
    write_indexed_frames(sample_folder(tmp_path), [pattern.format(i) for i in range(12)])
    video = VideoFolder(tmp_path).generate(request(small(12)))
    assert (video[:, 0, 0, 0] * 255).round().tolist() == [20 * i for i in range(12)]


def test_padded_and_unpadded_numbers_mix_by_value(tmp_path):
    write_indexed_frames(sample_folder(tmp_path), ["frame_0.png", "frame_01.png", "frame_002.png"])
    video = VideoFolder(tmp_path).generate(request(small(3)))
    assert (video[:, 0, 0, 0] * 255).round().tolist() == [0, 20, 40]


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ["frame_0.png", "frame_1.png", "img_2.png"],
            r"frames named in 2 ways \('frame_0.png', 'img_2.png'\); the frames of one video share one name",
        ),
        (
            ["frame_0.png", "frame_1.png", "frame_01.png"],
            r"frames 'frame_01.png' and 'frame_1.png' both have number 1; which comes first is not known",
        ),
        (["frame_0.png", "frame_1.png", "cover.png"], r"frame 'cover.png' has no number in its name"),
        (
            ["frame_0.png", "frame_1.png", "frame_3.png"],
            r"frame numbers skip from 1 to 3 \('frame_1.png', 'frame_3.png'\)",
        ),
    ],
)
def test_frame_names_that_give_no_single_order_are_refused(tmp_path, names, message):
    folder = sample_folder(tmp_path)
    write_indexed_frames(folder, names)
    with pytest.raises(GeneratorError, match=rf"VideoFolder: '{re.escape(str(folder))}': {message}"):
        VideoFolder(tmp_path).generate(request(small(3)))


# -- PNG modes ------------------------------------------------------------------------------
def raw_png(path, array, colour_type, bit_depth, trns=None):
    """A PNG written byte by byte (no filter, no palette), for the modes neither Pillow nor
    OpenCV writes: ``array`` holds the samples as stored."""
    array = np.asarray(array)
    height, width = array.shape[:2]
    rows = []
    for row in array.reshape(height, -1):
        if bit_depth == 16:
            data = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:
            data = np.packbits(
                np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, -bit_depth:].reshape(-1)
            ).tobytes()
        rows.append(b"\0" + data)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + (chunk(b"tRNS", trns) if trns is not None else b"")
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def opencv_reading(path):
    """The frame as OpenCV reads it, converted the documented way: grey repeated over RGB,
    8-bit values / 255, 16-bit values / 65535, an opaque alpha channel dropped."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    scale = 65535 if data.dtype == np.uint16 else 255
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 4:
        assert (data[..., 3] == scale).all()
        data = data[..., :3]
    return data[..., ::-1].astype(np.float64) / scale


RNG = np.random.default_rng(7)
GREY8 = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (8, 8)).astype(np.uint16)
RGB16 = RNG.integers(0, 65536, (8, 8, 3)).astype(np.uint16)
INDEX = RNG.integers(0, 6, (8, 8), dtype=np.uint8)
PALETTE = RNG.integers(0, 256, (6, 3), dtype=np.uint8)
BITS = RNG.integers(0, 2, (8, 8)).astype(bool)


def grey(values, scale):
    return np.repeat(values[..., None].astype(np.float64) / scale, 3, axis=2)


def with_alpha(colour, alpha):
    return np.dstack([colour, np.full(colour.shape[:2], alpha, colour.dtype)])


def palette_image(transparency=None):
    from PIL import Image

    image = Image.fromarray(INDEX, "L").convert("P")
    image.putpalette(PALETTE.reshape(-1).tolist())
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


def pil(image, **options):
    def write(path):
        image.save(path, **options)

    return write


def opencv(array):
    def write(path):
        import cv2

        assert cv2.imwrite(str(path), array[..., [2, 1, 0, 3][: array.shape[2]]])

    return write


def pil_i32(path):
    from PIL import Image

    image = Image.fromarray(GREY16.astype(np.int32))
    assert image.mode == "I"
    try:
        image.save(path)
    except OSError as error:  # Pillow 12 and later refuse; older ones write 16-bit grey
        pytest.skip(f"this Pillow cannot write mode I as PNG: {error}")


def pil_modes():
    from PIL import Image

    return {
        # name: (writer, the frame as it shows in [0, 1])
        "1": (pil(Image.fromarray(BITS)), grey(BITS.astype(np.uint8), 1)),
        "L": (pil(Image.fromarray(GREY8)), grey(GREY8, 255)),
        "L 2-bit": (lambda p: raw_png(p, GREY8 >> 6, 0, 2), grey(GREY8 >> 6, 3)),
        "LA opaque": (pil(Image.fromarray(with_alpha(GREY8[..., None], 255))), grey(GREY8, 255)),
        "P": (pil(palette_image()), PALETTE[INDEX] / 255),
        "P, tRNS index unused": (pil(palette_image(transparency=7)), PALETTE[INDEX] / 255),
        "RGB": (pil(Image.fromarray(RGB8)), RGB8 / 255),
        "RGBA opaque": (pil(Image.fromarray(with_alpha(RGB8, 255))), RGB8 / 255),
        "I;16": (pil(Image.fromarray(GREY16)), grey(GREY16, 65535)),
        "I": (pil_i32, grey(GREY16, 65535)),
        "RGB 16-bit": (opencv(RGB16), RGB16 / 65535),
        "RGBA 16-bit opaque": (opencv(with_alpha(RGB16, 65535)), RGB16 / 65535),
        "LA 16-bit opaque": (lambda p: raw_png(p, with_alpha(GREY16[..., None], 65535), 4, 16), grey(GREY16, 65535)),
    }


@pytest.mark.parametrize("mode", list(pil_modes()))
def test_every_png_mode_reads_as_the_image_shows(tmp_path, mode):
    write, shown = pil_modes()[mode]
    path = sample_folder(tmp_path) / "frame_0000.png"
    write(path)
    read = VideoFolder(tmp_path).generate(request(small(1)))[0].permute(1, 2, 0).double().numpy()
    assert read.shape == shown.shape
    assert np.abs(read - shown).max() < 1e-6, mode
    assert np.abs(read - opencv_reading(path)).max() < 1e-6, mode


def transparent(array, scale):
    array = array.copy()
    array[2, 3, -1] = scale // 2
    return array


def refused_modes():
    from PIL import Image

    return {
        "LA": (pil(Image.fromarray(transparent(with_alpha(GREY8[..., None], 255), 255))), "8-bit grey\\+alpha"),
        "RGBA": (pil(Image.fromarray(transparent(with_alpha(RGB8, 255), 255))), "8-bit RGBA"),
        "P, tRNS index used": (
            pil(palette_image(transparency=int(INDEX[0, 0]))),
            "\\d-bit palette with a transparent colour",
        ),
        "L, tRNS grey used": (
            lambda p: raw_png(p, GREY8, 0, 8, trns=struct.pack(">H", int(GREY8[1, 1]))),
            "8-bit grey with a transparent colour",
        ),
        "I;16, tRNS grey used": (
            lambda p: raw_png(p, GREY16, 0, 16, trns=struct.pack(">H", int(GREY16[1, 1]))),
            "16-bit grey with a transparent colour",
        ),
        "RGBA 16-bit": (opencv(transparent(with_alpha(RGB16, 65535), 65535)), "16-bit RGBA"),
        "LA 16-bit": (
            lambda p: raw_png(p, transparent(with_alpha(GREY16[..., None], 65535), 65535), 4, 16),
            "16-bit grey\\+alpha",
        ),
    }


@pytest.mark.parametrize("mode", list(refused_modes()))
def test_frames_with_transparency_are_refused_naming_file_and_mode(tmp_path, mode):
    write, shown_mode = refused_modes()[mode]
    path = sample_folder(tmp_path) / "frame_0000.png"
    write(path)
    with pytest.raises(
        GeneratorError,
        match=rf"'{re.escape(str(path))}' \({shown_mode}.*\): "
        r"\d+ of 64 pixels are not opaque; VideoFolder refuses",
    ):
        VideoFolder(tmp_path).generate(request(small(1)))


def test_an_animated_png_frame_is_refused(tmp_path):
    from PIL import Image

    path = sample_folder(tmp_path) / "frame_0000.png"
    images = [Image.fromarray(RGB8), Image.fromarray(255 - RGB8)]
    images[0].save(path, save_all=True, append_images=images[1:])
    with pytest.raises(GeneratorError, match="is an animated PNG of 2 frames"):
        VideoFolder(tmp_path).generate(request(small(1)))


# -- one source per sample ------------------------------------------------------------------
@pytest.mark.parametrize("beside", ["a_red_ball-{}-seed0.gif", "a_red_ball-{}-seed0.MP4", "a_red_ball-{}-seed0.webm"])
def test_two_sources_for_one_sample_are_refused_naming_both(tmp_path, beside):
    from pytest_ablation.run.media import slug

    folder = sample_folder(tmp_path)
    write_indexed_frames(folder, ["frame_0000.png"])
    other = tmp_path / beside.format(slug("a red ball").rsplit("-", 1)[1])
    other.write_bytes(b"GIF89a")
    with pytest.raises(
        GeneratorError,
        match=(
            r"2 sources for prompt 'a red ball', seed index 0: "
            + re.escape(", ".join(repr(str(p)) for p in sorted([folder, other])))
        ),
    ):
        VideoFolder(tmp_path).generate(request(small(1)))
    # Another seed index's video is not a second source of this one.
    other.unlink()
    (tmp_path / f"{folder.name[:-1]}10.gif").write_bytes(b"GIF89a")
    assert VideoFolder(tmp_path).generate(request(small(1))).shape == (1, 3, 8, 8)


def test_a_video_in_a_format_not_read_is_named(tmp_path):
    from pytest_ablation.run.media import slug

    (tmp_path / f"{slug('a red ball')}-seed0.webm").write_bytes(b"")
    with pytest.raises(
        GeneratorError,
        match=r"-seed0.webm' is a .webm file; VideoFolder reads a "
        r"folder of PNG frames, a .gif or an .mp4 file",
    ):
        VideoFolder(tmp_path).generate(request(small(1)))


def test_a_gif_frame_with_transparency_is_refused(tmp_path):
    from pytest_ablation.run.media import slug

    path = tmp_path / f"{slug('a red ball')}-seed0.gif"
    palette_image(transparency=int(INDEX[0, 0])).save(path)
    with pytest.raises(
        GeneratorError,
        match=rf"'{re.escape(str(path))}' \(GIF frame 0\): \d+ of 64 "
        r"pixels are not opaque",
    ):
        VideoFolder(tmp_path).generate(request(small(1)))
    palette_image().save(path)  # the same frame without a transparent colour reads
    assert (
        np.abs(
            VideoFolder(tmp_path).generate(request(small(1)))[0].permute(1, 2, 0).double().numpy()
            - PALETTE[INDEX] / 255
        ).max()
        < 1e-6
    )


def test_a_loop_of_links_in_the_folder_is_named_not_followed(tmp_path):
    import time

    folder = tmp_path / "videos"
    (folder / "a-red-ball-seed0").mkdir(parents=True)
    (folder / "a-red-ball-seed0" / "back").symlink_to(folder, target_is_directory=True)
    started = time.monotonic()
    with pytest.raises(GeneratorError, match=r"VideoFolder: .*back is a link back to .*videos: a loop of links"):
        VideoFolder(folder).cache_identity()
    assert time.monotonic() - started < 5


def test_links_to_folders_elsewhere_are_followed_once(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "frame_0.png").write_bytes(b"not read here")
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a-seed0").symlink_to(elsewhere, target_is_directory=True)
    (folder / "b-seed0").symlink_to(elsewhere, target_is_directory=True)  # the same folder twice is no loop
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("a-seed0", "b-seed0"):
        (copy / name).mkdir()
        (copy / name / "frame_0.png").write_bytes(b"not read here")
    assert VideoFolder(folder).cache_identity() == VideoFolder(copy).cache_identity()
