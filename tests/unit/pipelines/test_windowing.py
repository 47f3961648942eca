"""Long videos: window plans, fusion weights, the windowed and chained paths of the tiny pipeline, option checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.jobs.animate import check_model_fits
from dynamictrl.options import AnimateOptions
from dynamictrl.pipelines import windowing
from dynamictrl.pipelines.pipeline_dynamictrl import DenoiseInputs

H, W = 48, 80


@pytest.fixture(scope="module")
def embeds():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 7, 20, generator=g), torch.randn(1, 7, 20, generator=g)


def _call(pipe, embeds, num_frames, output_type="np", **kwargs):
    pose = torch.rand(1, num_frames, 3, H, W, generator=torch.Generator().manual_seed(0)) * 2 - 1
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(2))
    return pipe(
        image,
        pose,
        prompt_embeds=embeds[0],
        negative_prompt_embeds=embeds[1],
        height=H,
        width=W,
        num_frames=num_frames,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type=output_type,
        **kwargs,
    ).frames


# ------------------------------------------------------------------------------------------- plans, weights
@pytest.mark.parametrize(
    ("latent_frames", "window", "overlap"), [(21, 10, 2), (41, 10, 2), (12, 10, 8), (11, 10, 2), (8, 4, 1), (30, 6, 4)]
)
def test_windows_cover_every_frame_and_weights_sum_to_one(latent_frames, window, overlap):
    plan = windowing.plan_windows(latent_frames, window, overlap)
    covered = sorted({f for k in range(plan.num_windows) for f in plan.indices(k)})
    assert covered == list(range(latent_frames))
    assert all(len(plan.indices(k)) == window and plan.indices(k)[0] == 0 for k in range(plan.num_windows))
    assert all(plan.overlap(k) >= overlap for k in range(1, plan.num_windows))
    assert plan.starts[-1] + plan.video_latents == latent_frames  # the last window ends on the last frame

    weights = windowing.fusion_weights(plan)
    torch.testing.assert_close(weights.sum(0), torch.ones(latent_frames), rtol=0, atol=1e-6)
    writers = (weights > 0).sum(0)
    assert weights[0, 0] == 1 and (weights[1:, 0] == 0).all()  # frame 0: the first window's, slots discarded
    assert torch.equal(weights.max(0).values[writers == 1], torch.ones(int((writers == 1).sum())))


@pytest.mark.parametrize(("latent_frames", "window", "overlap"), [(21, 6, 2), (41, 10, 2), (30, 6, 1)])
def test_shifted_plan_moves_every_border_and_still_covers_the_clip(latent_frames, window, overlap):
    plan = windowing.plan_windows(latent_frames, window, overlap)
    shifted = windowing.shifted_plan(plan)
    covered = sorted({f for k in range(shifted.num_windows) for f in shifted.indices(k)})
    assert covered == list(range(latent_frames))
    assert shifted.starts[0] == 1 and shifted.starts[-1] + shifted.video_latents == latent_frames
    assert set(shifted.starts[1:-1]).isdisjoint(plan.starts)  # no inner window starts where plan's does
    assert windowing.shifted_plan(windowing.plan_windows(8, 4, 2)).starts == (1, 2, 3, 4, 5)  # stride 1: unchanged


def test_fusion_of_a_stub_step_is_exact_and_discards_later_slots():
    """With a step that adds its window's number + 1 to every frame, each frame gets the weighted sum of those:
    step 0 over the plan's windows, step 1 over the shifted plan's."""
    plan = windowing.plan_windows(14, 6, 2)
    shifted = windowing.shifted_plan(plan)
    assert shifted.starts != plan.starts
    calls = []

    def denoise_step(latents, t, previous_t, inputs, guidance_scale, state):
        k = len(calls) if len(calls) < plan.num_windows else len(calls) - plan.num_windows
        calls.append(inputs.control_latents[0, :, 0, 0, 0].tolist())
        return latents + (k + 1), state

    stub = SimpleNamespace(interrupt=False, denoise_step=denoise_step)
    control = torch.arange(14.0).view(1, 14, 1, 1, 1)
    bar = SimpleNamespace(updates=0)
    bar.update = lambda: setattr(bar, "updates", bar.updates + 1)
    inputs = DenoiseInputs(torch.zeros(1), torch.zeros(1), control, do_classifier_free_guidance=False)
    latents = torch.zeros(1, 14, 1, 1, 1)
    out = windowing.denoise_windows(stub, latents, torch.tensor([999, 500]), inputs, control, plan, lambda i: 1.0, bar)
    expected = sum(
        (windowing.fusion_weights(p) * torch.arange(1.0, p.num_windows + 1)[:, None]).sum(0) for p in (plan, shifted)
    )
    torch.testing.assert_close(out.flatten(), expected)
    windows = [plan.indices(k) for k in range(plan.num_windows)] + [
        shifted.indices(k) for k in range(shifted.num_windows)
    ]
    assert calls == [[float(f) for f in index] for index in windows]
    assert bar.updates == windowing.window_steps(plan, 2, "windows") == plan.num_windows + shifted.num_windows


# ------------------------------------------------------------------------------------------------- pipeline
def test_frames_up_to_the_window_are_the_plain_path(pipe, embeds):
    plain = _call(pipe, embeds, 13)
    assert torch.equal(torch.from_numpy(plain), torch.from_numpy(_call(pipe, embeds, 13, window_frames=13)))


def test_one_window_over_the_whole_clip_reproduces_the_plain_path(pipe, embeds):
    # 13 frames → 4 latent frames; a 9-frame window is 3 latents rounded up to the temporal patch: 4, the whole clip
    plain = _call(pipe, embeds, 13, output_type="latent")
    windowed = _call(pipe, embeds, 13, output_type="latent", window_frames=9, overlap_frames=4)
    assert torch.equal(plain, windowed)


@pytest.mark.parametrize("strategy", windowing.STRATEGIES)
def test_long_video_has_every_frame_and_counts_windows_times_steps(pipe, embeds, monkeypatch, strategy):
    totals = []
    original = pipe.progress_bar

    def progress_bar(total=None, **kwargs):
        totals.append(total)
        return original(total=total, **kwargs)

    monkeypatch.setattr(pipe, "progress_bar", progress_bar)
    frames = _call(pipe, embeds, 25, window_frames=13, overlap_frames=4, long_video=strategy)
    assert frames.shape == (1, 25, H, W, 3)
    assert windowing.plan_for_frames(25, 13, 4).starts == (1, 3, 4)  # 7 latents: [0,1,2,3], [0,3,4,5], [0,4,5,6]
    assert totals == [2 * 3]


# -------------------------------------------------------------------------------------------- option checks
def _options(**kwargs):
    return AnimateOptions(image="me.png", pose_video="pose.mp4", prompt="p", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"window": 35}, "--window"),
        ({"window": 5}, "--window"),
        ({"overlap": 6}, "--overlap"),
        ({"overlap": 0}, "--overlap"),
        ({"window": 37, "overlap": 36}, "--overlap"),
        ({"window": 13, "overlap": 12}, "--overlap"),
        ({"long_video": "stitch"}, "--long-video"),
    ],
)
def test_bad_window_values_name_the_flag(kwargs, flag):
    with pytest.raises(InputError, match=flag):
        _options(**kwargs)


def test_defaults_and_sidecar_settings():
    options = _options(num_frames=161)
    assert (options.window, options.overlap, options.long_video, options.windowed) == (37, 8, "windows", True)
    assert {"window": 37, "overlap": 8, "long_video": "windows"}.items() <= options.to_json().items()
    assert not _options().windowed


def test_window_beyond_the_model_is_refused_before_loading(tmp_path):
    (tmp_path / "scheduler_config.json").write_text("{}")
    resolved = SimpleNamespace(
        config=lambda component="transformer": {"sample_frames": 17, "patch_size": 2, "patch_size_t": 2},
        components={"scheduler": tmp_path},
    )
    check_model_fits(_options(height=64, width=64, num_frames=21, window=21), resolved)  # one window: no check
    with pytest.raises(InputError, match="--window 21"):
        check_model_fits(_options(height=64, width=64, num_frames=41, window=21), resolved)
