"""The scene parser reads back what data.py drew: centroid, size, colour, shape, background.

The bounds are the parser's stated accuracy (see each constant's derivation); the scenes are
data.py's own draws, so the truth is known exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from pytest_ablation.toyworld.data import COLOURS, IMAGE_SIZE, ShapeScene, render, sample_images
from pytest_ablation.toyworld.parser import (
    AREA_FACTOR,
    NOT_FOUND,
    TOLERANCE,
    as_pixels,
    parse_frame,
    parse_video,
)

SCENES = 120

# Clean frames. The anti-aliasing ramp is one pixel wide and linear in the distance to the
# edge, so a symmetric shape's opposite edges err equally and oppositely and the centroid of
# its coverage is its centre; what is left (pixel sampling, the approximate corners of the
# square, triangle and cross, which data.py's triangle keeps three-fold symmetric) is a
# fraction of that ramp: a tenth of a pixel.
CLEAN_CENTROID_PX = 0.10
# A corner whose signed distance is approximate adds at most a quarter pixel of coverage; the
# cross has 12 corners on the smallest area drawn (2.31 * 4.8^2 = 53 px): 3 px, under 6%.
CLEAN_AREA_FRACTION = 0.10
CLEAN_SIZE_FRACTION = 0.05  # the extent goes as sqrt(area): half the area's fraction

# Gaussian noise of sigma 0.05 per channel. Coverage is the residual projected on a colour
# contrast of at least 0.30, so each pixel's coverage carries noise of at most 0.05 / 0.30 =
# 0.17; summed over the band around the smallest shape (about 90 pixels at up to 5.5 px from
# the centre) the centroid's standard error is 0.17 * sqrt(sum of r^2 / 2) / area ~ 0.12 px.
# Four standard errors over a hundred frames:
NOISY_CENTROID_PX = 0.5
# A Gaussian blur (sigma 1 px) keeps a shape's coverage sum and centre; only the tails beyond
# the band (2 px past the half-contrast edge, under 1% of an edge's spread) are lost.
BLURRED_CENTROID_PX = 0.25
# A blur dims the core of the cross's thinnest arm (3.6 px wide) to 93% (erf(1.8 / sqrt 2)),
# which the coverage (residual over core colour) counts as extra area: with the corners'
# 6%, area within 25% and the extent (sqrt) within 15%, noise and blur together.
DEGRADED_AREA_FRACTION = 0.25
DEGRADED_SIZE_FRACTION = 0.15
# Shapes are told apart by template on clean frames always; on degraded ones at least 95%.
DEGRADED_SHAPE_ACCURACY = 0.95
# The fitted background against the drawn one, mean RGB distance per pixel: noise of 0.05
# averaged over ~900 pixels by a 6-parameter fit errs by ~0.05 * sqrt(6 / 900) = 0.004.
BACKGROUND_ERROR = 0.02


def coverage(scene: ShapeScene, size: int = IMAGE_SIZE) -> torch.Tensor:
    probe = replace(scene, rgb=(1.0, 1.0, 1.0), background=(0.0, 0.0, 0.0), background_end=(0.0, 0.0, 0.0))
    return render(probe, size)[0]


def background_only(scene: ShapeScene, size: int = IMAGE_SIZE) -> np.ndarray:
    """The drawn background with the shape moved out of the frame: (H, W, 3)."""
    return render(replace(scene, x=-10 * size, y=-10 * size), size).permute(1, 2, 0).numpy()


def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    pixels = image.permute(1, 2, 0).numpy()
    return torch.from_numpy(cv2.GaussianBlur(pixels, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)).permute(
        2, 0, 1
    )


def noisy(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    return (image + sigma * torch.randn(image.shape, generator=generator)).clamp(0.0, 1.0)


@pytest.fixture(scope="module")
def drawn():
    images, _, scenes = sample_images(SCENES, seed=2024)
    return images, scenes


def centroid_errors(images, scenes) -> np.ndarray:
    parsed = [parse_frame(image).object for image in images]
    return np.array([math.hypot(p.x - s.x, p.y - s.y) for p, s in zip(parsed, scenes)])


def test_clean_frames_give_back_position_size_colour_and_shape(drawn):
    images, scenes = drawn
    for image, scene in zip(images, scenes):
        frame = parse_frame(image)
        found = frame.object
        assert found.found and len(frame.objects) == 1
        assert math.hypot(found.x - scene.x, found.y - scene.y) <= CLEAN_CENTROID_PX, scene
        assert (found.colour, found.shape) == (scene.colour, scene.shape), scene
        true_area = float(coverage(scene).sum())
        assert abs(found.area / true_area - 1) <= CLEAN_AREA_FRACTION, (found.area, true_area)
        assert abs(found.size / scene.size - 1) <= CLEAN_SIZE_FRACTION, (found.size, scene.size)
        # The box holds the pixels the shape covers at least half of: inside its extent.
        x0, y0, x1, y1 = found.bbox
        half = scene.size / 2 + 1  # +1: the edge pixel the ramp half-covers
        assert scene.x - half <= x0 < scene.x < x1 <= scene.x + half
        assert scene.y - half <= y0 < scene.y < y1 <= scene.y + half


@pytest.mark.parametrize(
    "noise, blur, centroid_bound",
    [(0.05, 0.0, NOISY_CENTROID_PX), (0.0, 1.0, BLURRED_CENTROID_PX), (0.05, 1.0, NOISY_CENTROID_PX)],
    ids=["noise", "blur", "noise+blur"],
)
def test_noisy_and_blurred_frames_keep_the_colour_and_nearly_the_geometry(drawn, noise, blur, centroid_bound):
    images, scenes = drawn
    generator = torch.Generator().manual_seed(7)
    shapes_right = 0
    for image, scene in zip(images, scenes):
        degraded = blurred(image, blur) if blur else image
        degraded = noisy(degraded, noise, generator) if noise else degraded
        found = parse_frame(degraded).object
        assert found.found, scene
        assert math.hypot(found.x - scene.x, found.y - scene.y) <= centroid_bound, scene
        assert found.colour == scene.colour, (found.rgb, scene)
        true_area = float(coverage(scene).sum())
        assert abs(found.area / true_area - 1) <= DEGRADED_AREA_FRACTION, (found.area, true_area)
        assert abs(found.size / scene.size - 1) <= DEGRADED_SIZE_FRACTION, (found.size, scene)
        shapes_right += found.shape == scene.shape
    assert shapes_right >= DEGRADED_SHAPE_ACCURACY * len(scenes)


def test_the_background_is_fitted_with_its_pattern(drawn):
    images, scenes = drawn
    generator = torch.Generator().manual_seed(3)
    checked = {"plain": 0, "gradient": 0}
    for image, scene in zip(images, scenes):
        spread = float(np.linalg.norm(np.subtract(scene.background_end, scene.background)))
        for frame in (image, noisy(image, 0.05, generator)):
            parsed = parse_frame(frame)
            error = np.linalg.norm(parsed.background_field() - background_only(scene), axis=2)
            assert float(error.mean()) <= BACKGROUND_ERROR, scene
            if spread == 0.0:
                assert parsed.background.pattern == "plain"
                assert np.linalg.norm(np.subtract(parsed.background.start, scene.background)) <= BACKGROUND_ERROR
                checked["plain"] += 1
            elif spread >= 0.1:  # well past PLAIN_LIMIT: a gradient anyone can see
                assert parsed.background.pattern == "gradient", scene
                checked["gradient"] += 1
    assert min(checked.values()) >= 20  # both kinds were exercised


def test_uint8_and_channel_last_frames_parse_alike(drawn):
    images, scenes = drawn
    for image, scene in list(zip(images, scenes))[:20]:
        as_uint8 = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        found = parse_frame(as_uint8).object
        # Rounding to 1/255 moves each pixel by at most half a grey level: far below noise.
        assert math.hypot(found.x - scene.x, found.y - scene.y) <= CLEAN_CENTROID_PX
        assert (found.colour, found.shape) == (scene.colour, scene.shape)
    assert as_pixels(images[0]).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert np.allclose(as_pixels(images[0]), as_pixels(images[0].permute(1, 2, 0).numpy()))


def test_two_objects_are_both_found_largest_first():
    small = ShapeScene(
        colour="red",
        shape="circle",
        x=8.0,
        y=8.0,
        size=10.0,
        rgb=COLOURS["red"],
        background=(0.3, 0.3, 0.3),
        background_end=(0.3, 0.3, 0.3),
    )
    large = replace(small, colour="blue", shape="square", x=22.0, y=22.0, size=16.0, rgb=COLOURS["blue"])
    image = torch.where(coverage(large) > 0, render(large), render(small))
    objects = parse_frame(image).objects
    assert [(o.colour, o.shape) for o in objects] == [("blue", "square"), ("red", "circle")]
    for found, scene in zip(objects, (large, small)):
        assert math.hypot(found.x - scene.x, found.y - scene.y) <= CLEAN_CENTROID_PX


@pytest.mark.parametrize("what", ["plain background", "one named colour", "noise only"])
def test_a_frame_without_an_object_gives_nan_fields_not_an_error(what):
    generator = torch.Generator().manual_seed(0)
    if what == "plain background":
        image = torch.full((3, IMAGE_SIZE, IMAGE_SIZE), 0.3)
    elif what == "one named colour":  # the whole frame is the background, however coloured
        image = torch.tensor(COLOURS["green"]).view(3, 1, 1).expand(3, IMAGE_SIZE, IMAGE_SIZE)
    else:  # noise of sigma 0.05 stays under TOLERANCE after the 3x3 mean (0.05 / 3 * sqrt 3)
        image = noisy(torch.full((3, IMAGE_SIZE, IMAGE_SIZE), 0.3), 0.05, generator)
    parsed = parse_frame(image)
    assert parsed.objects == ()
    found = parsed.object
    assert found is NOT_FOUND and not found.found
    assert all(math.isnan(v) for v in (found.x, found.y, found.area, found.size, *found.rgb))
    assert found.colour is None and found.shape is None


def test_the_tolerance_sits_between_background_noise_and_the_weakest_contrast():
    # Every jittered named colour is at least 0.30 from every background data.py draws (a
    # grey in [0.08, 0.5] with a tint of up to 0.06 per channel; each channel of a colour
    # jittered by up to 0.05): checked here on a grid of both.
    greys = np.linspace(0.08, 0.5, 15)
    tints = np.array(np.meshgrid(*[np.linspace(-0.06, 0.06, 5)] * 3)).reshape(3, -1).T
    backgrounds = np.clip(greys[:, None, None] + tints[None], 0, 1).reshape(-1, 3)
    for rgb in COLOURS.values():
        closest = np.clip(backgrounds, np.subtract(rgb, 0.05), np.add(rgb, 0.05))
        gap = np.linalg.norm(closest - backgrounds, axis=1).min()
        assert gap >= 2 * TOLERANCE - 1e-6, rgb


def test_area_factors_match_the_rendered_shapes():
    # A large shape, where the one-pixel edge is a small share of the area.
    for shape, factor in AREA_FACTOR.items():
        scene = ShapeScene(
            colour="red",
            shape=shape,
            x=64.0,
            y=64.0,
            size=100.0,
            rgb=(1, 1, 1),
            background=(0, 0, 0),
            background_end=(0, 0, 0),
        )
        assert float(coverage(scene, 128).sum()) == pytest.approx(factor * 50.0**2, rel=0.02)


def test_parse_video_parses_every_frame_and_bad_frames_are_refused(drawn):
    images, scenes = drawn
    parsed = parse_video(images[:3])
    assert [p.object.colour for p in parsed] == [s.colour for s in scenes[:3]]
    with pytest.raises(ValueError, match="4 dimensions"):
        parse_video(images[0])
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(H, W, 3\)"):
        parse_frame(torch.zeros(4, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        parse_frame(torch.full((3, 32, 32), float("nan")))
    with pytest.raises(TypeError, match="uint8 or floating"):
        parse_frame(np.zeros((32, 32, 3), dtype=np.int32))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        parse_frame([[0.0]])
