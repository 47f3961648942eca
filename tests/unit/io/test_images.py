"""Image transforms: cover-resize and centre-crop to the target size (how the reference photo is prepared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.io.images import cover_crop, cover_size


@pytest.mark.parametrize(
    ("image_hw", "target_hw", "expected"),
    [
        ((1920, 1084), (1360, 768), (1361, 768)),  # slightly taller than the target: fit the width
        ((1080, 1920), (1360, 768), (1360, 2418)),  # landscape into portrait: fit the height, ceil
        ((100, 100), (64, 32), (64, 64)),
    ],
)
def test_cover_size_covers_the_target(image_hw, target_hw, expected):
    assert cover_size(*image_hw, *target_hw) == expected


def test_cover_crop_keeps_the_centre_and_the_aspect():
    # Landscape 200x400 with a vertical stripe in the middle: a portrait crop keeps the stripe, centred.
    image = np.zeros((200, 400, 3), dtype=np.uint8)
    image[:, 190:210] = 255
    out = cover_crop(image, 100, 50)
    assert out.shape == (100, 50, 3) and out.dtype == np.uint8
    # Resized by 0.5 to 100x200, then columns 75..125 kept: the stripe (95..105) is at 20..30.
    assert out[:, 21:29].min() == 255 and out[:, :18].max() == 0 and out[:, 32:].max() == 0


def test_cover_crop_is_torch_bilinear_without_antialias_then_centre_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    out = cover_crop(image, 64, 32)
    # Independent path: torchvision's tensor resize is F.interpolate(bilinear, align_corners=False) + round.
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    resized = torch.nn.functional.interpolate(t, size=(64, 50), mode="bilinear", align_corners=False, antialias=False)
    resized = resized.round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert cover_size(90, 70, 64, 32) == (64, 50)
    np.testing.assert_array_equal(out, resized[:, 9:41])


def test_image_of_the_target_size_is_unchanged():
    image = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cover_crop(image, 48, 80), image)


def test_rejects_non_rgb_input():
    with pytest.raises(InputError, match="uint8"):
        cover_crop(np.zeros((10, 10), dtype=np.uint8), 5, 5)
