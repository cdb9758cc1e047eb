"""The toy world's data source: seeded, captions agree with pixels, videos move as captioned."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pytest_ablation.toyworld import data
from pytest_ablation.toyworld.data import (
    COLOURS,
    DIRECTIONS,
    IMAGE_SIZE,
    SHAPES,
    render,
    sample_images,
    sample_videos,
)

NAMED = torch.tensor(list(COLOURS.values()))


def nearest_colour(pixels: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """(N, 3) pixels to the name of the nearest named colour and the distance to it."""
    distances = torch.cdist(pixels, NAMED)
    best, index = distances.min(dim=1)
    names = list(COLOURS)
    return [names[i] for i in index.tolist()], best


def coverage(scene: data.ShapeScene, size: int = IMAGE_SIZE) -> torch.Tensor:
    """How much of each pixel the shape covers: the scene redrawn white on black."""
    probe = replace(scene, rgb=(1.0, 1.0, 1.0), background=(0.0, 0.0, 0.0), background_end=(0.0, 0.0, 0.0))
    return render(probe, size)[0]


def test_the_vocabulary_of_captions():
    assert len(SHAPES) == 4 and len(COLOURS) == 5 and len(DIRECTIONS) == 4
    texts = data.captions()
    assert len(texts) == len(set(texts)) == 20
    assert texts[:2] == ["a red circle", "a red square"]
    assert data.video_caption("blue", "cross", "up") == "a blue cross moving up"
    assert set(data.vocabulary()) == {"a", "moving", *COLOURS, *SHAPES, *DIRECTIONS}


def test_images_are_in_range_with_the_promised_shapes():
    images, texts, scenes = sample_images(64, seed=3, size=IMAGE_SIZE)
    assert images.shape == (64, 3, IMAGE_SIZE, IMAGE_SIZE) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert texts == [scene.caption for scene in scenes]
    for scene in scenes:
        assert 0.3 * IMAGE_SIZE <= scene.size <= 0.6 * IMAGE_SIZE
        assert scene.size / 2 <= scene.x <= IMAGE_SIZE - scene.size / 2
    # The draw covers the world: every shape and every colour shows up in a modest sample.
    assert {s.shape for s in scenes} == set(SHAPES)
    assert {s.colour for s in scenes} == set(COLOURS)


def test_same_seed_same_tensors_and_other_seed_other_tensors():
    first, texts, _ = sample_images(16, seed=7)
    torch.manual_seed(123)  # the global RNG must not matter
    again, texts_again, _ = sample_images(16, seed=7)
    other, _, _ = sample_images(16, seed=8)
    assert torch.equal(first, again) and texts == texts_again
    assert not torch.equal(first, other)
    videos, _, _ = sample_videos(3, 4, seed=7)
    assert torch.equal(videos, sample_videos(3, 4, seed=7)[0])
    assert not torch.equal(videos, sample_videos(3, 4, seed=8)[0])


def test_the_caption_colour_dominates_the_shape_and_never_the_background():
    images, _, scenes = sample_images(40, seed=11)
    for image, scene in zip(images, scenes, strict=True):
        covered = coverage(scene)
        inside = image[:, covered >= 0.999].T
        assert inside.shape[0] >= 9, "every shape covers a few whole pixels"
        names, _ = nearest_colour(inside)
        assert names.count(scene.colour) / len(names) >= 0.95
        _, distance = nearest_colour(image[:, covered == 0].T)
        assert float(distance.min()) > 0.3


def test_restricting_colours_and_shapes():
    _, texts, scenes = sample_images(30, seed=0, colours=["red", "blue"], shapes=["cross"])
    assert {s.colour for s in scenes} <= {"red", "blue"}
    assert {s.shape for s in scenes} == {"cross"}
    assert all(text.endswith("cross") for text in texts)


def centroid(frame: torch.Tensor, colour: str) -> torch.Tensor:
    """(x, y) centre of the pixels whose nearest named colour is ``colour``, weighted by
    how close they are (so the background never counts)."""
    pixels = frame.permute(1, 2, 0).reshape(-1, 3)
    names, distance = nearest_colour(pixels)
    weight = torch.tensor([n == colour for n in names], dtype=torch.float32)
    weight = weight * (distance < 0.2).float()
    size = frame.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    total = weight.sum()
    assert total > 0, "the shape must be visible in every frame"
    return torch.stack([(xs.reshape(-1) * weight).sum() / total, (ys.reshape(-1) * weight).sum() / total])


def test_the_shape_moves_in_the_captioned_direction_and_stays_in_frame():
    videos, texts, scenes = sample_videos(24, 6, seed=5)
    assert videos.shape == (24, 6, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert {s[0].direction for s in scenes} == set(DIRECTIONS)
    for video, text, frames in zip(videos, texts, scenes, strict=True):
        first, last = frames[0], frames[-1]
        assert text == data.video_caption(first.colour, first.shape, first.direction)
        assert text.endswith(f"moving {first.direction}")
        dx, dy = data.DIRECTION_VECTORS[first.direction]
        moved = centroid(video[-1], first.colour) - centroid(video[0], first.colour)
        expected = torch.tensor([dx, dy], dtype=torch.float32) * first.speed * 5
        # The measured move agrees with the motion in direction and, roughly, in length.
        assert float(moved @ expected) > 0.5 * float(expected @ expected)
        for scene in (first, last):
            assert scene.size / 2 - 1e-4 <= scene.x <= IMAGE_SIZE - scene.size / 2 + 1e-4
            assert scene.size / 2 - 1e-4 <= scene.y <= IMAGE_SIZE - scene.size / 2 + 1e-4


def test_speeds_follow_the_range_and_long_paths_are_slowed_to_fit():
    _, _, scenes = sample_videos(20, 4, seed=1, speed_range=(1.0, 1.5))
    assert all(1.0 <= frames[0].speed <= 1.5 for frames in scenes)
    _, _, long_paths = sample_videos(10, 40, seed=1, speed_range=(2.0, 2.0))
    for frames in long_paths:
        assert frames[0].speed < 2.0
        for scene in frames:
            assert -1e-4 <= scene.x - scene.size / 2 and scene.x + scene.size / 2 <= 32 + 1e-4


def test_a_single_frame_video_and_a_small_frame_size():
    videos, _, _ = sample_videos(2, 1, seed=0, size=8)
    assert videos.shape == (2, 1, 3, 8, 8)


def test_generating_ten_thousand_images_is_fast():
    import time

    start = time.perf_counter()
    images, _, _ = sample_images(10_000, seed=0)
    assert images.shape[0] == 10_000
    assert time.perf_counter() - start < 10.0


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: sample_images(0, seed=0), "n"),
        (lambda: sample_images(4, seed=0, size=7), "size"),
        (lambda: sample_images(4, seed=0, colours=["teal"]), "colours"),
        (lambda: sample_images(4, seed=0, shapes=["star"]), "shapes"),
        (lambda: sample_images(4, seed=-1), "seed"),
        (lambda: sample_videos(4, 0, seed=0), "frames"),
        (lambda: sample_videos(4, 3, seed=0, speed_range=(2.0, 1.0)), "speed_range"),
        (lambda: data.caption("teal", "circle"), "colour"),
        (lambda: data.video_caption("red", "circle", "sideways"), "direction"),
    ],
)
def test_bad_input_names_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()


def test_unknown_colour_error_lists_the_allowed_names():
    with pytest.raises(ValueError, match="red, green, blue, yellow, purple"):
        sample_images(1, seed=0, colours=["teal"])
