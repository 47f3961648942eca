"""The pose job: driving video + reference image → aligned pose video, keypoints JSON and (optionally) the crop.

`run_pose_stage` maps the shared pose options (the same fields in `AnimateOptions` and `PoseOptions`) onto the pose
stage, so `dynamictrl animate --driving-video` and `dynamictrl pose` extract, align and check identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.outputs import StagedOutputs, check_outputs
from ..options import PoseOptions
from .inputs import check_input_files


def run_pose_stage(options: Any, num_frames: int | None, style: Any = None) -> Any:
    """The pose stage (`dynamictrl.pose.prepare.prepare_pose_video`) for an options object with the pose fields;
    `style` (a `PoseStyle`, default the published drawing) is how the model that will read the pose was trained."""
    from ..pose.align import AlignOptions
    from ..pose.prepare import prepare_pose_video

    align = AlignOptions(mode=options.align, people=options.people, smooth=options.smooth, retarget=options.retarget)
    return prepare_pose_video(
        options.image,
        options.driving_video,
        options.height,
        options.width,
        num_frames,
        backend=options.pose_backend,
        device=options.device,
        model_dir=options.pose_model_dir,
        fps=options.driving_fps,
        start=options.start,
        stride=options.stride,
        on_short=options.on_short,
        strict=options.strict_pose,
        align=align,
        cache_dir=options.pose_cache_dir,
        use_cache=options.pose_cache,
        progress=not options.quiet,
        style=style,
    )


@dataclass
class PoseResult:
    prepared: Any  # the pose stage's `PreparedPose`
    written: list[Path]


def extract_pose(options: PoseOptions) -> PoseResult:
    """Check outputs and inputs, run the pose stage, write the pose video, keypoints and (optionally) reference."""
    outputs = {"--out": options.out, "--keypoints": options.keypoints, "--reference-out": options.reference_out}
    inputs = {"--image": options.image, "--driving-video": options.driving_video}
    check_outputs(outputs, inputs)
    check_input_files(inputs)

    from ..io.media import save_image, write_video
    from ..pose.types import save_keypoints_json

    style = None
    if options.model is not None:
        from ..pipelines.loading import model_settings

        style = model_settings(options.model).pose_style
    prepared = run_pose_stage(options, options.num_frames, style)
    meta = prepared.metadata()
    meta.update(reference_image=str(options.image), driving_video=str(options.driving_video))
    with StagedOutputs() as staged:
        write_video(staged.path(options.out), prepared.frames, fps=prepared.fps)
        if options.reference_out:
            save_image(staged.path(options.reference_out), prepared.reference_image)
        save_keypoints_json(staged.path(options.keypoints), prepared.keypoints, meta)
    written = [Path(p) for p in (options.out, options.keypoints, options.reference_out) if p is not None]
    return PoseResult(prepared, written)
