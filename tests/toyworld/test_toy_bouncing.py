"""Bouncing motion: the shape reflects off the frame's edges, keeps its size and speed
whatever the clip length, and stays wholly in the frame."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_ablation.toyworld.data import (
    DIRECTION_VECTORS,
    IMAGE_SIZE,
    MOTIONS,
    SIZE_RANGE,
    bouncing_clips,
    sample_videos,
    tuning_clips,
    video_caption,
)
from pytest_ablation.toyworld.parser import parse_frame

SPEEDS = (0.5, 2.0)
# 64 frames at 0.5-2 px per frame travel 32-128 px, past the longest span (32 - 9.6 px):
# every video reflects at least once.
LONG = 64


@pytest.fixture(scope="module")
def long_videos():
    return sample_videos(12, LONG, seed=5, motion="bounce", speed_range=SPEEDS)


def along_and_across(video):
    """Per video: the coordinate along the motion, the one across it, and the axis's walls."""
    first = video[0]
    dx, _ = DIRECTION_VECTORS[first.direction]
    along = [s.x if dx else s.y for s in video]
    across = [s.y if dx else s.x for s in video]
    return along, across, (first.size / 2, IMAGE_SIZE - first.size / 2)


def test_the_shape_stays_wholly_in_the_frame(long_videos):
    _, _, scenes = long_videos
    for video in scenes:
        for scene in video:
            half = scene.size / 2
            assert half - 1e-9 <= scene.x <= IMAGE_SIZE - half + 1e-9
            assert half - 1e-9 <= scene.y <= IMAGE_SIZE - half + 1e-9


def test_every_step_covers_the_speed_reflecting_at_a_wall(long_videos):
    _, _, scenes = long_videos
    reflections = 0
    for video in scenes:
        along, across, (low, high) = along_and_across(video)
        speed = video[0].speed
        assert SPEEDS[0] <= speed <= SPEEDS[1] and all(s.speed == speed for s in video)
        assert len(set(across)) == 1  # the motion is along one axis only
        for a, b in zip(along, along[1:]):
            if abs(abs(b - a) - speed) <= 1e-9:
                continue
            # A reflection within the step: the path to the wall and back is the speed.
            via_wall = min((a - low) + (b - low), (high - a) + (high - b))
            assert via_wall == pytest.approx(speed, abs=1e-9), (a, b, speed)
            reflections += 1
        # The direction each frame carries is where it goes next (unless it reflects now).
        for scene, nxt in zip(video, video[1:]):
            step = (nxt.x - scene.x) + (nxt.y - scene.y)
            sign = sum(DIRECTION_VECTORS[scene.direction])
            if abs(abs(step) - speed) <= 1e-9:
                assert math.copysign(1, step) == sign
    assert reflections >= len(scenes)


def test_size_and_speed_do_not_depend_on_the_clip_length(long_videos):
    videos, captions, scenes = long_videos
    short, short_captions, short_scenes = sample_videos(12, 8, seed=5, motion="bounce", speed_range=SPEEDS)
    # The first frames of a long clip are the short clip's, scene for scene and pixel for pixel.
    assert torch.equal(videos[:, :8], short) and captions == short_captions
    assert [video[:8] for video in scenes] == [tuple(video) for video in short_scenes]
    for video in scenes:
        assert SIZE_RANGE[0] * IMAGE_SIZE <= video[0].size <= SIZE_RANGE[1] * IMAGE_SIZE
    # Straight motion, by contrast, shrinks and slows long clips to fit the path in.
    _, _, straight = sample_videos(12, LONG, seed=5, speed_range=SPEEDS)
    assert all(video[0].speed * (LONG - 1) <= IMAGE_SIZE for video in straight)


def test_the_caption_names_the_first_step_and_the_pixels_follow_the_scenes(long_videos):
    videos, captions, scenes = long_videos
    for video_pixels, caption, video in zip(videos[:3], captions, scenes):
        first = video[0]
        assert caption == video_caption(first.colour, first.shape, first.direction)
        for frame, scene in list(zip(video_pixels, video))[:16]:
            found = parse_frame(frame).object
            # The parser's clean-frame accuracy (tests/toyworld/test_toy_parser.py).
            assert math.hypot(found.x - scene.x, found.y - scene.y) <= 0.1


def test_motion_is_checked_and_straight_stays_the_default():
    assert MOTIONS == ("straight", "bounce")
    assert torch.equal(sample_videos(2, 5, seed=1)[0], sample_videos(2, 5, seed=1, motion="straight")[0])
    with pytest.raises(ValueError, match="motion: unknown 'zigzag'"):
        sample_videos(2, 5, seed=1, motion="zigzag")


def test_bouncing_clips_is_a_recipe_source():
    clips = bouncing_clips(3, 12, 32, 32, seed=4)
    assert clips.shape == (3, 12, 3, 32, 32)
    assert torch.equal(clips, sample_videos(3, 12, seed=4, motion="bounce")[0])
    assert torch.equal(clips, tuning_clips(3, 12, 32, 32, seed=4, motion="bounce"))
    with pytest.raises(ValueError, match="square"):
        bouncing_clips(3, 12, 32, 16, seed=4)
