"""Person masks and masked references (what the masked-background and masked-clothes models are given)."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.io.images import cover_crop
from dynamictrl.io.media import load_image
from dynamictrl.pose.segmentation import PersonSegmenter, apply_mask, binarise


def test_apply_mask_blacks_out_what_the_mask_does_not_keep():
    image = np.full((4, 6, 3), 200, np.uint8)
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 255
    out = apply_mask(image, mask)
    assert (out[1:3, 2:5] == 200).all() and out.sum() == 200 * 3 * 6
    assert np.array_equal(apply_mask(image, np.repeat(mask[..., None], 3, -1)), out)
    with pytest.raises(InputError, match="the mask is 3x4 but the image is 6x4"):
        apply_mask(image, mask[:, :3])


def test_binarise_keeps_the_first_channel_over_127():
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    frames[0, 0, 0] = (128, 0, 0)
    frames[0, 1, 1] = (127, 255, 255)
    out = binarise(frames)
    assert out[0, 0, 0].tolist() == [255, 255, 255] and out[0, 1, 1].tolist() == [0, 0, 0]


def test_selfie_segmentation_finds_the_person_in_a_real_photo(media_dir):
    photo = cover_crop(load_image(media_dir / "human2.jpg"), 320, 192)
    segmenter = PersonSegmenter()
    try:
        mask = segmenter(photo[None])[0][..., 0] > 127
    finally:
        segmenter.close()
    assert 0.05 < mask.mean() < 0.7  # a person, not the whole picture
    assert mask[120:200, 80:112].mean() > 0.5  # the runway model stands in the middle
    assert mask[:, :12].mean() < 0.2 and mask[:, -12:].mean() < 0.2  # the sides are background
