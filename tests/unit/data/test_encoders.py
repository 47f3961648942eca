"""The frozen encoders: a micro-batch of clips encoded in one VAE call gives each clip's own moments."""

from __future__ import annotations

import torch

from dynamictrl.data.encoders import encode_moments, encode_moments_batch
from dynamictrl.testing import build_tiny_vae


def test_a_batch_of_clips_gives_the_moments_of_each_clip_and_one_clip_is_exact():
    vae = build_tiny_vae().eval()
    clips = [torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(3)]
    singles = [encode_moments(vae, clip) for clip in clips]
    batched = encode_moments_batch(vae, clips)
    assert (
        [m.shape for m in batched] == [m.shape for m in singles] == [torch.Size([3, 32, 4, 6])] * 3
    )  # tiny VAE: 8x spatial, 4x temporal
    for one, many in zip(singles, batched, strict=True):
        torch.testing.assert_close(many, one, rtol=0, atol=1e-4)
    assert not torch.equal(batched[0], batched[1])  # not one clip's moments repeated
    assert torch.equal(encode_moments_batch(vae, clips[:1])[0], singles[0])
