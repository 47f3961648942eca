"""The pose stage end to end (real MediaPipe body model on the fixture media): outputs, cache, short videos, checks."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError, MediaError, PoseError
from dynamictrl.io.images import cover_crop
from dynamictrl.io.media import load_image, read_video, save_image, write_video
from dynamictrl.pose.align import AlignOptions
from dynamictrl.pose.extract import get_extractor
from dynamictrl.pose.prepare import prepare_pose_video
from dynamictrl.pose.render import draw_pose

H, W = 320, 192


class CountingExtractor:
    """The real extractor, counting the frames it is asked to process (to see the cache at work)."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, 0

    def __call__(self, image):
        self.calls += 1
        return self.inner(image)

    def extract_sequence(self, frames):
        for pose in self.inner.extract_sequence(frames):
            self.calls += 1
            yield pose

    def identity(self):
        return self.inner.identity()


@pytest.fixture(scope="module")
def body_extractor():
    extractor = get_extractor("mediapipe-body")
    yield extractor
    extractor.close()


def _prepare(media_dir, extractor, tmp_path, num_frames=5, **kwargs):
    return prepare_pose_video(
        media_dir / "human2.jpg",
        media_dir / "motion1.mp4",
        H,
        W,
        num_frames,
        extractor=extractor,
        cache_dir=tmp_path / "cache",
        progress=False,
        **kwargs,
    )


def test_frame_zero_is_the_reference_pose_and_the_reference_is_the_crop(media_dir, body_extractor, tmp_path):
    prepared = _prepare(media_dir, body_extractor, tmp_path)
    assert prepared.frames.shape == (5, H, W, 3) and prepared.frames.dtype == np.uint8
    crop = cover_crop(load_image(media_dir / "human2.jpg"), H, W)
    np.testing.assert_array_equal(prepared.reference_image, crop)
    ref_pose = body_extractor(crop)
    np.testing.assert_array_equal(prepared.keypoints[0].people[0].body, ref_pose.people[0].body)
    for frame, pose in zip(prepared.frames, prepared.keypoints, strict=True):
        np.testing.assert_array_equal(frame, draw_pose(pose, H, W))
    assert prepared.source_indices == [None, 0, 1, 2, 3]
    assert prepared.fps == pytest.approx(30.0) and prepared.warnings == []
    assert prepared.backend == "mediapipe-body" and not prepared.cache_hit


def test_second_run_reuses_the_cache_even_with_other_alignment(media_dir, body_extractor, tmp_path):
    counting = CountingExtractor(body_extractor)
    first = _prepare(media_dir, counting, tmp_path)
    assert counting.calls == 5  # reference + 4 driving frames
    again = _prepare(media_dir, counting, tmp_path)
    assert counting.calls == 5 and again.cache_hit
    np.testing.assert_array_equal(again.frames, first.frames)
    smoothed = _prepare(media_dir, counting, tmp_path, align=AlignOptions(smooth=1.0, people="main"))
    assert counting.calls == 5 and not np.array_equal(smoothed.frames[1:], first.frames[1:])
    _prepare(media_dir, counting, tmp_path, stride=2)  # another selection: driving frames extracted again
    assert counting.calls == 9
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 3 and all(name.endswith(".npz") and not name.startswith(".") for name in entries)


def test_corrupt_cache_entries_are_recomputed(media_dir, body_extractor, tmp_path):
    _prepare(media_dir, body_extractor, tmp_path, num_frames=3)
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"truncated")
    counting = CountingExtractor(body_extractor)
    assert len(_prepare(media_dir, counting, tmp_path, num_frames=3).frames) == 3 and counting.calls == 3


def test_short_video_errors_unless_loop_or_hold_last(media_dir, body_extractor, tmp_path):
    with pytest.raises(InputError, match="gives 3 frames .* but 5 are needed"):
        _prepare(media_dir, body_extractor, tmp_path, num_frames=6, start=80)
    looped = _prepare(media_dir, body_extractor, tmp_path, num_frames=6, start=80, on_short="loop")
    assert looped.source_indices == [None, 80, 81, 82, 80, 81]
    np.testing.assert_array_equal(looped.frames[4], looped.frames[1])
    held = _prepare(media_dir, body_extractor, tmp_path, num_frames=6, start=80, on_short="hold-last")
    assert held.source_indices == [None, 80, 81, 82, 82, 82]


def test_half_body_driving_video_warns_and_strict_refuses(media_dir, body_extractor, tmp_path):
    # The dancer cut at the waist, against a full-body reference: the fit would pair the reference's legs with
    # guessed ones.
    frames, fps = read_video(media_dir / "motion1.mp4", max_frames=6)
    half = write_video(tmp_path / "half.mp4", frames[:, 500:1400], fps=fps)
    kwargs = {"extractor": body_extractor, "use_cache": False, "progress": False}
    prepared = prepare_pose_video(media_dir / "human2.jpg", half, H, W, 6, **kwargs)
    assert any("framings differ" in w for w in prepared.warnings)
    with pytest.raises(PoseError, match=r"--strict.*framings differ"):
        prepare_pose_video(media_dir / "human2.jpg", half, H, W, 6, strict=True, **kwargs)


def test_bad_inputs_are_one_line_errors(media_dir, body_extractor, tmp_path):
    kwargs = {"extractor": body_extractor, "use_cache": False, "progress": False}
    video = media_dir / "motion1.mp4"
    blank = save_image(tmp_path / "blank.png", np.zeros((400, 300, 3), dtype=np.uint8))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video" * 10)
    cases = [
        ((blank, video), PoseError, "No person found in the reference image"),
        ((media_dir / "human2.jpg", corrupt), MediaError, "not a readable video"),
        ((tmp_path / "missing.jpg", video), InputError, "not found"),
        ((corrupt, video), MediaError, "not a readable image"),
    ]
    for (ref, drv), error, match in cases:
        with pytest.raises(error, match=match) as info:
            prepare_pose_video(ref, drv, H, W, 3, **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="2 or more"):
        prepare_pose_video(media_dir / "human2.jpg", video, H, W, 1, **kwargs)
