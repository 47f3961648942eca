"""Driving frame selection: same frames as read_video, streamed; short videos error or loop/hold explicitly."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.io.media import FrameSelection, iter_selected_frames, probe_video, read_video, write_video
from dynamictrl.pose.driving import expand_to_length


@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory):
    """20 frames at 10 fps whose grey level encodes the frame index (index * 12)."""
    frames = np.stack([np.full((32, 48, 3), i * 12, dtype=np.uint8) for i in range(20)])
    return write_video(tmp_path_factory.mktemp("video") / "numbered.mp4", frames, fps=10)


def _index(frame):
    return int(round(float(frame.mean()) / 12))


@pytest.mark.parametrize(
    "selection",
    [
        FrameSelection(),
        FrameSelection(count=5, start=3, stride=2),
        FrameSelection(fps=5),
        FrameSelection(fps=4, start=1, count=3),
        FrameSelection(fps=25, count=12),  # faster than the source: frames repeat
    ],
)
def test_selection_matches_read_video(numbered_video, selection):
    info = probe_video(numbered_video)
    streamed = list(iter_selected_frames(numbered_video, selection, info.fps))
    expected, fps = read_video(
        numbered_video,
        start=selection.start,
        stride=selection.stride,
        max_frames=selection.count,
        target_fps=selection.fps,
    )
    assert [i for i, _ in streamed] == selection.planned_indices(info)
    assert [_index(f) for _, f in streamed] == [_index(f) for f in expected]
    assert [_index(f) for _, f in streamed] == [i for i, _ in streamed]
    assert selection.output_fps(info.fps) == pytest.approx(fps)


def test_expand_to_length_policies():
    assert expand_to_length(5, 3, "error") == [0, 1, 2]
    assert expand_to_length(3, 7, "loop") == [0, 1, 2, 0, 1, 2, 0]
    assert expand_to_length(3, 5, "hold-last") == [0, 1, 2, 2, 2]
    with pytest.raises(InputError, match="gives 3 frames.* but 5 are needed.*--loop / --hold-last"):
        expand_to_length(3, 5, "error")
    with pytest.raises(InputError, match="error, loop, hold-last"):
        expand_to_length(3, 5, "bounce")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"start": -1}, "--start"), ({"stride": 0}, "--stride"), ({"fps": 0.0}, "--fps"), ({"count": 0}, "1 or more")],
)
def test_invalid_selection_is_an_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        FrameSelection(**kwargs)
