"""The frozen encoders: clips encoded a group at a time get moments that do not depend on their companions."""

from __future__ import annotations

import torch

from dynamictrl.data.encoders import encode_moments, encode_moments_batch
from dynamictrl.testing import build_tiny_vae


def _clips(count: int) -> list[torch.Tensor]:
    return [torch.rand(9, 3, 32, 48, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(count)]


def test_group_one_is_one_clip_at_a_time():
    vae = build_tiny_vae().eval()
    clips = _clips(2)
    singles = [encode_moments(vae, clip) for clip in clips]
    assert [m.shape for m in singles] == [torch.Size([3, 32, 4, 6])] * 2  # tiny VAE: 8x spatial, 4x temporal
    for one, again in zip(singles, encode_moments_batch(vae, clips), strict=True):
        assert torch.equal(one, again)


def test_a_clip_gets_the_same_moments_in_any_group_of_the_same_size():
    """What keeps 1 process x batch 2 equal to 2 processes x batch 1: the clip alone (padded) and beside another
    clip give the same numbers; and they agree with one-at-a-time encoding to float rounding."""
    vae = build_tiny_vae().eval()
    a, b, c = _clips(3)
    together = encode_moments_batch(vae, [a, b, c], group=2)  # [a, b] and [c, c]
    alone = encode_moments_batch(vae, [c], group=2)[0]
    other = encode_moments_batch(vae, [b, a], group=2)
    assert len(together) == 3 and torch.equal(together[2], alone)
    assert torch.equal(together[0], other[1]) and torch.equal(together[1], other[0])
    assert not torch.equal(together[0], together[1])
    torch.testing.assert_close(together[0], encode_moments(vae, a), rtol=0, atol=1e-4)
