"""Pose fidelity: keypoint distance, PCK, per-part stats, main-person choice, jitter; and the pose-stage glue."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dynamictrl.evaluation.pose_fidelity import (
    NUM_KEYPOINTS,
    PoseTrack,
    compare_poses,
    extract_track,
    keypoint_jitter,
    load_pose_json,
    person_sizes,
    select_main_person,
    track_from_frame_poses,
)
from dynamictrl.io.media import read_video

HEIGHT, WIDTH = 200, 100


def _track(num_frames: int = 5, seed: int = 0) -> PoseTrack:
    """A person filling x in [0.3, 0.7] (40 px) and y in [0.1, 0.9] (160 px) of a 100x200 frame, all points seen."""
    rng = np.random.default_rng(seed)
    keypoints = np.empty((num_frames, NUM_KEYPOINTS, 2))
    keypoints[..., 0] = rng.uniform(0.35, 0.65, (num_frames, NUM_KEYPOINTS))
    keypoints[..., 1] = rng.uniform(0.15, 0.85, (num_frames, NUM_KEYPOINTS))
    keypoints[:, 0] = [0.3, 0.1]  # the body box corners fix the person size at 160 px (its height)
    keypoints[:, 13] = [0.7, 0.9]
    return PoseTrack(keypoints, np.ones((num_frames, NUM_KEYPOINTS)), HEIGHT, WIDTH)


def test_a_pose_sequence_against_itself_is_perfect():
    track = _track()
    result = compare_poses(track, track)
    assert result["pose_distance"] == 0.0
    assert result["pck@0.05"] == result["pck@0.1"] == result["pose_detection_rate"] == 1.0
    assert all(part["pck@0.05"] == 1.0 for part in result["parts"].values())
    assert result["frames_with_driving_person"] == 5


def test_a_horizontal_shift_degrades_in_proportion():
    track = _track()
    assert np.allclose(person_sizes(track, 0.3), 160.0)
    distances = []
    for dx in (0.02, 0.04, 0.08):  # 2, 4, 8 px in a 100-px-wide frame
        result = compare_poses(track.shifted(dx=dx), track)
        distances.append(result["pose_distance"])
        assert result["pose_distance"] == pytest.approx(dx * WIDTH / 160.0, rel=1e-12)
        for part in result["parts"].values():
            assert part["pose_distance"] == pytest.approx(dx * WIDTH / 160.0, rel=1e-12)
    assert distances[1] == pytest.approx(2 * distances[0]) and distances[2] == pytest.approx(4 * distances[0])
    # PCK switches off exactly when the shift passes the threshold (0.05 * 160 px = 8 px).
    assert compare_poses(track.shifted(dx=0.079), track)["pck@0.05"] == 1.0
    assert compare_poses(track.shifted(dx=0.081), track)["pck@0.05"] == 0.0
    assert compare_poses(track.shifted(dx=0.081), track)["pck@0.1"] == 1.0


def test_missing_generated_keypoints_count_against_pck_but_not_distance():
    track = _track()
    generated = PoseTrack(track.keypoints.copy(), track.scores.copy(), HEIGHT, WIDTH)
    generated.scores[:, 3:5] = 0.0  # right elbow and wrist never found
    result = compare_poses(generated, track)
    assert result["pose_distance"] == 0.0
    expected = 1 - 2 / 18  # headline numbers are over the 18 body points
    assert result["pck@0.1"] == pytest.approx(expected) and result["pose_detection_rate"] == pytest.approx(expected)
    whole = result["parts"]["whole_body"]
    assert whole["pck@0.1"] == pytest.approx(1 - 2 / NUM_KEYPOINTS)
    assert result["parts"]["arms"]["pck@0.1"] == pytest.approx(0.5)
    assert result["parts"]["legs"]["pck@0.1"] == 1.0


def test_driving_keypoints_below_the_score_threshold_are_not_judged():
    track = _track()
    driving = PoseTrack(track.keypoints.copy(), track.scores.copy(), HEIGHT, WIDTH)
    driving.scores[:, 60:] = 0.1  # face not confidently seen in the driving video
    result = compare_poses(track.shifted(dx=0.5), driving)
    assert result["parts"]["face"]["keypoints"] == 0 and result["parts"]["face"]["pck@0.1"] is None
    # Frames with no driving person are skipped entirely.
    driving.scores[2] = 0.0
    assert compare_poses(track, driving)["frames_with_driving_person"] == 4


def test_keypoint_jitter():
    frames = 6
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    base = _track(1).keypoints
    steady = PoseTrack(base + t * np.array([0.01, 0.0]), np.ones((frames, NUM_KEYPOINTS)), HEIGHT, WIDTH)
    assert keypoint_jitter(steady, 0.3) == pytest.approx(0.0, abs=1e-12)  # constant velocity has no acceleration
    shaky = PoseTrack(steady.keypoints + (t % 2) * np.array([0.02, 0.0]), steady.scores, HEIGHT, WIDTH)
    # Alternating +2 px: second difference 4 px, normalised by the 160-px person.
    assert keypoint_jitter(shaky, 0.3) == pytest.approx(4.0 / 160.0)
    result = compare_poses(shaky, steady)
    assert result["keypoint_jitter"] > result["keypoint_jitter_reference"]


def _person(x0: float, x1: float, score: float = 0.9) -> dict:
    body = np.column_stack([np.linspace(x0, x1, 18), np.linspace(0.2, 0.8, 18)])
    return {
        "body": body,
        "body_scores": np.full(18, score),
        "left_hand": np.zeros((21, 2)),
        "left_hand_scores": np.zeros(21),
        "right_hand": np.zeros((21, 2)),
        "right_hand_scores": np.zeros(21),
        "face": np.zeros((68, 2)),
        "face_scores": np.zeros(68),
    }


def test_main_person_is_the_largest_and_tracks_are_built_from_frame_poses():
    small, large = _person(0.1, 0.2), _person(0.4, 0.9)
    assert select_main_person([small, large], HEIGHT, WIDTH, 0.3) == 1
    assert select_main_person([_person(0.1, 0.9, score=0.1)], HEIGHT, WIDTH, 0.3) is None
    frames = [
        SimpleNamespace(people=[SimpleNamespace(**small), SimpleNamespace(**large)], height=HEIGHT, width=WIDTH),
        SimpleNamespace(people=[], height=HEIGHT, width=WIDTH),
    ]
    track = track_from_frame_poses(frames, 0.3, HEIGHT, WIDTH)
    assert track.keypoints.shape == (2, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(track.keypoints[0, :18], large["body"])
    assert track.scores[1].sum() == 0.0


# ------------------------------------------------------------------------------------------- with the pose stage
@pytest.fixture(scope="module")
def dance(media_dir) -> np.ndarray:
    import cv2

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=5)
    return np.stack([cv2.resize(f, (270, 480), interpolation=cv2.INTER_AREA) for f in frames])


@pytest.fixture(scope="module")
def extractor():
    from dynamictrl.pose.extract import get_extractor

    ex = get_extractor("mediapipe-body")
    yield ex
    ex.close()


def test_real_extraction_self_and_shifted(dance, extractor):
    import cv2

    driving = extract_track(extractor, dance, 0.3)
    assert (driving.scores[:, :18] >= 0.3).sum() > 5 * 10  # the dancer is found in every frame
    itself = compare_poses(extract_track(extractor, dance, 0.3), driving)
    assert itself["pose_distance"] == pytest.approx(0.0, abs=1e-9) and itself["pck@0.05"] == 1.0
    size = float(np.nanmean(person_sizes(driving, 0.3)))
    distances = []
    for shift in (6, 12, 24):
        matrix = np.float32([[1, 0, shift], [0, 1, 0]])
        moved = np.stack([cv2.warpAffine(f, matrix, (270, 480), borderMode=cv2.BORDER_REPLICATE) for f in dance])
        result = compare_poses(extract_track(extractor, moved, 0.3), driving)
        distances.append(result["pose_distance"])
        # A real detector re-localises the points, so proportionality holds within a few percent, not exactly.
        assert result["pose_distance"] == pytest.approx(shift / size, rel=0.15)
    assert distances[0] < distances[1] < distances[2]


def test_keypoints_json_of_the_pose_stage(tmp_path, dance, extractor):
    from dynamictrl.pose.types import save_keypoints_json

    poses = list(extractor.extract_sequence(iter(dance)))
    save_keypoints_json(tmp_path / "a.json", poses, {"kind": "test"})
    track = load_pose_json(tmp_path / "a.json", 0.3, 480, 270)
    direct = track_from_frame_poses(poses, 0.3, 480, 270)
    np.testing.assert_allclose(track.keypoints, direct.keypoints)
    assert compare_poses(direct, track)["pck@0.05"] == 1.0
