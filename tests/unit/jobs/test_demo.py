"""The demo's examples: held out from the small model's training seed, deterministic, enlarged for viewing."""

from __future__ import annotations

import numpy as np

from dynamictrl.jobs.demo import EXAMPLES, demo_sample, enlarge, real_motion


def test_examples_are_held_out_and_deterministic():
    assert all(seed != 0 for seed, _ in EXAMPLES.values())  # the small model trains on seed 0
    a, b = demo_sample("synthetic", 9), demo_sample("synthetic", 9)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.pose, b.pose) and a.caption == b.caption
    assert enlarge(a.frames).shape == (9, 256, 256, 3)
    assert np.array_equal(enlarge(a.frames)[:, ::4, ::4], a.frames)  # nearest neighbour: pixels stay pixels


def test_the_real_example_is_driven_by_the_bundled_dance_motion():
    motion = real_motion()
    assert len(motion) >= 21 and all(len(frame.people) <= 1 for frame in motion)
    sample = demo_sample("real", 21)
    assert "moving" in sample.caption and sample.frames.shape == (21, 64, 64, 3)
    # The character moves: its person mask is not the same in every frame.
    assert (sample.person_mask[1:] != sample.person_mask[:1]).mean() > 0.01
