"""Discovery of videos and frame folders, pairing by name, reading, and the protocols' pairing and alignment."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.evaluation.discovery import align_pair, discover_videos, load_pair, pair_videos, read_frames
from dynamictrl.evaluation.protocols import PROTOCOLS
from dynamictrl.io.images import cover_crop_frames
from dynamictrl.io.media import save_image, write_video

DISCO, DYNAMICTRL = PROTOCOLS["disco"], PROTOCOLS["dynamictrl"]


def _video(frames: int, height: int = 24, width: int = 16, value: int = 0) -> np.ndarray:
    out = np.full((frames, height, width, 3), value, np.uint8)
    out[:, :, :, 0] = np.arange(frames, dtype=np.uint8)[:, None, None]  # frame index in the red channel
    return out


def test_disco_pairs_frames_one_to_one_and_resizes_generated_to_the_ground_truth():
    generated, ground_truth = _video(5, 12, 8), _video(5, 24, 16)
    gen, gt, notes = align_pair(generated, ground_truth, DISCO, 5)
    assert gen.shape == gt.shape == (5, 24, 16, 3) and np.array_equal(gt, ground_truth)  # ground truth untouched
    assert any("different sizes" in n for n in notes)
    with pytest.raises(InputError, match="different frame counts: 5 generated .* vs 7 reference"):
        align_pair(generated, _video(6), DISCO, 7)


def test_dynamictrl_drops_the_reference_pose_frame_and_uses_leading_ground_truth_frames():
    generated, ground_truth = _video(5), _video(9)
    gen, gt, notes = align_pair(generated, ground_truth[:5], DYNAMICTRL, 9)
    # Generated frame k + 1 pairs with driving frame k.
    assert gen[:, 0, 0, 0].tolist() == [1, 2, 3, 4] and gt[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert notes == ["reference has 9 frames; its first 4 are used"]
    with pytest.raises(InputError, match="fewer than the 4 generated"):
        align_pair(generated, ground_truth[:3], DYNAMICTRL, 3)
    with pytest.raises(InputError, match="drops the first 1"):
        align_pair(generated[:1], ground_truth, DYNAMICTRL, 9)


def test_cover_crop_keeps_the_centre_like_the_published_preprocessing():
    frame = np.zeros((1, 40, 40, 3), np.uint8)
    frame[:, :, 15:25] = 255  # a centred vertical bar
    out = cover_crop_frames(frame, 40, 20)  # portrait target: scale 1, crop 10 px on each side
    assert out.shape == (1, 40, 20, 3)
    assert out[0, 20, 5:15].min() == 255 and out[0, 20, :4].max() == 0
    # The dynamictrl protocol compares at the generated size: the ground truth gets exactly this crop.
    _, gt, notes = align_pair(np.zeros((2, 40, 20, 3), np.uint8), frame.repeat(2, axis=0), DYNAMICTRL, 1)
    assert np.array_equal(gt[0], out[0]) and "centre-cropped" in notes[0]


def test_discovery_matches_videos_and_frame_folders(tmp_path):
    write_video(tmp_path / "clip_a.mp4", _video(3, 32, 32), 8)
    (tmp_path / "clip_b").mkdir()
    for i in range(3):
        save_image(tmp_path / "clip_b" / f"{i}.png", _video(3, 32, 32)[i])
    (tmp_path / "notes.txt").write_text("not a video")
    found = discover_videos(tmp_path)
    assert list(found) == ["clip_a", "clip_b"]
    assert read_frames(found["clip_b"]).shape == (3, 32, 32, 3)
    assert read_frames(found["clip_a"], max_frames=2).shape == (2, 32, 32, 3)


def test_pairing_by_name_lists_what_has_no_counterpart(tmp_path):
    gen, gt = tmp_path / "gen", tmp_path / "gt"
    for folder, names in ((gen, ("a", "b", "orphan")), (gt, ("a", "b", "lonely"))):
        for name in names:
            write_video(folder / f"{name}.mp4", _video(3, 32, 32), 8)
    pairing = pair_videos(gen, gt)
    assert pairing.names == ["a", "b"]
    assert pairing.unmatched == {
        "orphan": "no reference video of this name",
        "lonely": "no generated video of this name",
    }
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="--ground-truth"):
        pair_videos(gen, tmp_path / "empty")


def test_load_pair_decodes_the_ground_truth_only_as_far_as_needed(tmp_path):
    for i, frame in enumerate(_video(3, 32, 32)):
        save_image(tmp_path / "gen" / f"{i}.png", frame)
    for i, frame in enumerate(_video(9, 32, 32)):
        save_image(tmp_path / "gt" / f"{i}.png", frame)
    generated, ground_truth, notes = load_pair(tmp_path / "gen", tmp_path / "gt", DYNAMICTRL)
    assert len(generated) == len(ground_truth) == 2
    assert notes == ["reference has 9 frames; its first 2 are used"]  # the count comes from the folder, not decoding
