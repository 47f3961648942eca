"""Keypoint structure: COCO-WholeBody conversion and (de)serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.pose.types import (
    BODY_NAMES,
    FramePose,
    frames_from_arrays,
    frames_to_arrays,
    load_keypoints_json,
    save_keypoints_json,
)


def _wholebody(n=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 400, (n, 133, 2)), rng.uniform(0, 1, (n, 133))


def test_from_wholebody_inserts_neck_and_reorders_to_openpose():
    kpts, scores = _wholebody()
    scores[0, 5], scores[0, 6] = 0.9, 0.8
    pose = FramePose.from_wholebody(kpts, scores, height=400, width=200)
    person = pose.people[0]
    # COCO: 0 nose, 1/2 eyes (left/right), 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips ...
    coco_for_openpose = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
    for slot, coco in enumerate(coco_for_openpose):
        if coco is None:
            continue
        np.testing.assert_allclose(person.body[slot], kpts[0, coco] / [200, 400], err_msg=BODY_NAMES[slot])
        assert person.body_scores[slot] == scores[0, coco]
    np.testing.assert_allclose(person.body[1], (kpts[0, 5] + kpts[0, 6]) / 2 / [200, 400])
    assert person.body_scores[1] == 1.0
    np.testing.assert_allclose(person.face, kpts[0, 23:91] / [200, 400])
    np.testing.assert_allclose(person.left_hand, kpts[0, 91:112] / [200, 400])
    np.testing.assert_allclose(person.right_hand_scores, scores[0, 112:133])


def test_neck_score_is_zero_unless_both_shoulders_are_confident():
    kpts, scores = _wholebody()
    scores[0, 5], scores[0, 6] = 0.9, 0.3  # exactly 0.3 is not above the threshold
    assert FramePose.from_wholebody(kpts, scores, 10, 10).people[0].body_scores[1] == 0.0


def test_json_round_trip(tmp_path):
    kpts, scores = _wholebody(n=2)
    frames = [FramePose.from_wholebody(kpts, scores, 400, 200), FramePose([], 400, 200)]
    path = save_keypoints_json(tmp_path / "k.json", frames, {"fps": 16})
    loaded, meta = load_keypoints_json(path)
    assert meta == {"fps": 16}
    assert [len(f.people) for f in loaded] == [2, 0]
    np.testing.assert_array_equal(loaded[0].people[1].face, frames[0].people[1].face)
    assert (loaded[1].height, loaded[1].width) == (400, 200)


def test_loading_a_foreign_json_is_an_input_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a dynamictrl keypoints file"):
        load_keypoints_json(path)


def test_array_packing_round_trip():
    kpts, scores = _wholebody(n=3, seed=1)
    frames = [FramePose([], 8, 9), FramePose.from_wholebody(kpts, scores, 8, 9), FramePose([], 8, 9)]
    back = frames_from_arrays(frames_to_arrays(frames))
    assert [len(f.people) for f in back] == [0, 3, 0]
    np.testing.assert_array_equal(back[1].people[2].body_scores, frames[1].people[2].body_scores)
    assert frames_from_arrays(frames_to_arrays([FramePose([], 1, 2)]))[0].width == 2


def test_person_shapes_are_validated():
    kpts, scores = _wholebody()
    person = FramePose.from_wholebody(kpts, scores, 1, 1).people[0]
    data = person.to_dict()
    data["body"] = data["body"][:17]
    with pytest.raises(ValueError, match="body must have shape"):
        type(person).from_dict(data)
