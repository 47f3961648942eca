"""MediaPipe backend on real media (offline, models from the wheel), and the alignment acceptance on motion1."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import skimage.data

from dynamictrl.io.images import cover_crop
from dynamictrl.io.media import iter_video_frames, load_image
from dynamictrl.pose.align import FIT_IDS, align_poses, is_person
from dynamictrl.pose.backends.mediapipe import (
    FACE_MESH_TO_68,
    POSE_TO_OPENPOSE,
    _NativeLogFilter,
    person_from_landmarks,
)
from dynamictrl.pose.extract import get_extractor
from dynamictrl.pose.types import SCORE_THRESHOLD


@pytest.fixture(scope="session")
def holistic():
    extractor = get_extractor("mediapipe")
    yield extractor
    extractor.close()


@pytest.fixture(scope="session")
def motion1_poses(media_dir, holistic):
    """Every frame of motion1.mp4 through Holistic in tracking mode, once per session (~10 s)."""
    return list(holistic.extract_sequence(iter_video_frames(media_dir / "motion1.mp4")))


def test_motion1_has_one_person_in_every_frame_in_anatomical_order(motion1_poses):
    assert len(motion1_poses) == 83
    for i, frame in enumerate(motion1_poses):
        assert (frame.height, frame.width) == (1920, 1080)
        assert len(frame.people) == 1, f"frame {i}"
        p = frame.people[0]
        assert is_person(p)
        core = [0, 1, 2, 5, 8, 11, 10, 13]  # nose, neck, shoulders, hips, ankles: the dancer shows them all
        assert (p.body_scores[core] > SCORE_THRESHOLD).all(), f"frame {i}"
        y = p.body[:, 1]
        assert y[0] < y[1] < min(y[8], y[11]) < min(y[9], y[12]) < min(y[10], y[13]), f"frame {i}"
        assert p.body_scores[2] > 0 and p.body[2, 0] < p.body[5, 0]  # her right shoulder is on the image left
        visible = p.body[p.body_scores > SCORE_THRESHOLD]
        assert (visible >= 0).all() and (visible <= 1).all(), f"frame {i}"
        # She dances in the middle of the studio, full height.
        assert 0.3 < p.body[1, 0] < 0.7 and y[10] - y[0] > 0.4


def test_motion1_hands_and_face_are_mapped_to_the_right_places(motion1_poses):
    with_left = [f.people[0] for f in motion1_poses if f.people[0].left_hand_scores[0] > 0]
    assert len(with_left) > 60
    for p in with_left:  # the left hand's wrist point sits at the body's left wrist
        assert np.linalg.norm((p.left_hand[0] - p.body[7]) * [1080, 1920]) < 60
    for f in motion1_poses:
        p = f.people[0]
        assert (p.face_scores > 0).all()
        face_box = p.face.min(axis=0), p.face.max(axis=0)
        assert (face_box[0] <= p.body[0]).all() and (p.body[0] <= face_box[1]).all()  # the nose is inside the face
        assert p.face[36, 0] < p.face[45, 0]  # right eye's outer corner is left of the left eye's, on the image


@pytest.mark.parametrize("name", ["human1.jpg", "human2.jpg"])
def test_photos_have_one_person(media_dir, holistic, name):
    pose = holistic(load_image(media_dir / name))
    assert len(pose.people) == 1 and is_person(pose.people[0])
    body = pose.people[0].body
    assert body[0, 1] < body[1, 1] < body[8, 1]


def test_no_person_in_a_blank_image_or_a_landscape(holistic):
    assert holistic(np.zeros((640, 480, 3), dtype=np.uint8)).people == []
    assert holistic(skimage.data.rocket()).people == []
    assert get_extractor("mediapipe-body")(skimage.data.coffee()).people == []


def test_aligning_motion1_to_human2_keeps_the_reference_height_and_stays_in_the_frame(
    media_dir, holistic, motion1_poses
):
    reference = cover_crop(load_image(media_dir / "human2.jpg"), 640, 384)
    ref_pose = holistic(reference)
    result = align_poses(ref_pose, motion1_poses)
    ids = list(FIT_IDS)

    def height(p):
        y = p.body[ids][p.body_scores[ids] > SCORE_THRESHOLD][:, 1]
        return y.max() - y.min()

    ref_height = height(ref_pose.people[0])
    for i, frame in enumerate(result.frames):
        p = frame.people[0]
        assert height(p) == pytest.approx(ref_height, rel=0.1), f"frame {i}"
        visible = p.body[p.body_scores > SCORE_THRESHOLD]
        assert (visible >= 0).all() and (visible <= 1).all(), f"frame {i}"


def test_landmark_mapping_follows_openpose_order():
    pose = np.zeros((33, 3))
    pose[:, 0] = np.arange(33) / 100  # x encodes the MediaPipe index
    pose[:, 2] = 0.9
    pose[12, 2] = 0.2  # right shoulder barely visible: the neck is not confident
    face = np.stack([np.arange(468) / 1000, np.zeros(468)], axis=1)
    hand = np.full((21, 3), 0.5)
    person = person_from_landmarks(pose, face=face, left_hand=hand)
    for slot, index in POSE_TO_OPENPOSE.items():
        assert person.body[slot, 0] == pytest.approx(index / 100)
    assert person.body[1, 0] == pytest.approx((11 + 12) / 200) and person.body_scores[1] == 0.0
    assert person.face[8, 0] == pytest.approx(152 / 1000)  # chin
    assert person.face[3, 0] == pytest.approx((132 + 58) / 2000)  # a jaw point between two mesh vertices
    assert len(FACE_MESH_TO_68) == 68 and all(0 <= i < 468 for ids in FACE_MESH_TO_68 for i in ids)
    assert (person.left_hand_scores == 1.0).all() and (person.right_hand_scores == 0).all()


def test_native_log_lines_written_while_a_graph_lives_are_dropped_and_ours_kept(capfd):
    """MediaPipe's graph threads log to fd 2 after `process()` returns; those lines must not reach the user, while
    our own lines (and a progress bar redrawn with \\r) written in the same window still do, in order."""
    native_logs = _NativeLogFilter()  # not the module's: a session-scoped graph may hold that one
    native_logs.acquire()
    try:
        writer = threading.Thread(
            target=os.write,
            args=(2, b"W0000 00:00:1796161139.825601    4195 inference_feedback_manager.cc:114] Feedback\n"),
        )
        writer.start()
        writer.join()
        os.write(2, b"ours: first\n")
        os.write(2, b"I0000 00:00:1.5  42 gl_context.cc:369] GL version\nours: second\n")
        os.write(2, b"\r 50%|#####     |")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    finally:
        native_logs.release()
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert err == "ours: first\nours: second\n\r 50%|#####     |after\n"
