"""The README's main job: the bundled small model animates a character it has never seen, beside the ground truth.

The small model (docs/small_model.md) was trained here on the synthetic world (`dynamictrl.synthetic`, seed 0).
The examples come from seeds it was not trained on, so their characters and motions are new to it, and the world
gives the ground truth of every frame:

- `synthetic`: sample 0 of seed 1000 (a held-out character doing a held-out synthetic motion);
- `real`: sample 0 of seed 2000, a held-out character driven by the motion of a real dance video
  (`assets/real_motion.json`: the keypoints the pose stage extracted from it, retargeted to the character).

The reference image is the sample's first frame and the pose video its pose render; `jobs.animate.animate` then
runs as for any user (the pose drawing is the model folder's `pose_render`). Besides the animate outputs the job
writes the ground truth and an enlarged side-by-side: reference | pose | result | ground truth.

Without the bundled model (a checkout that has not run recipes/small_model.sh) `dynamictrl demo` falls back to
the tiny random model (`TINY_MODEL_LABEL`), and says so: its output is noise.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..options import AnimateOptions, DemoOptions

# (world seed, sample index) of each example: never trained on (the small model trained on seed 0).
EXAMPLES: dict[str, tuple[int, int]] = {"synthetic": (1000, 0), "real": (2000, 0)}
SMALL_MODEL_LABEL = (
    "SMALL MODEL trained on this CPU on synthetic 64-px characters (docs/small_model.md): it shows pose-guided "
    "animation working end to end, not the quality of the released 5B DynamiCtrl"
)
TINY_MODEL_LABEL = (
    "TINY RANDOM MODEL (untrained weights; the bundled small model is missing, see recipes/small_model.sh): the "
    "output shows the pipeline working, not DynamiCtrl quality"
)
ENLARGE = 4  # nearest-neighbour enlargement of the side-by-side panels (64 px → 256 px)


def bundled_model() -> Path | None:
    """The small model folder shipped in the package (`dynamictrl/assets/small_model`), or None if absent."""
    folder = Path(str(resources.files("dynamictrl") / "assets" / "small_model"))
    return folder if (folder / "model_index.json").is_file() else None


def real_motion() -> list:
    """The keypoints of the bundled real dance motion (`assets/real_motion.json`, one `FramePose` per frame)."""
    from ..pose.types import load_keypoints_json

    with resources.as_file(resources.files("dynamictrl") / "assets" / "real_motion.json") as path:
        return load_keypoints_json(path)[0]


def demo_sample(example: str, frames: int, height: int = 64, width: int = 64):
    """The `synthetic.world.Sample` of an example (deterministic: the same arrays on every machine)."""
    from ..synthetic.world import make_sample

    seed, index = EXAMPLES[example]
    motion = real_motion() if example == "real" else None
    return make_sample(seed, index, frames=frames, height=height, width=width, motion=motion)


def enlarge(video: npt.NDArray[np.uint8], factor: int = ENLARGE) -> npt.NDArray[np.uint8]:
    """`[F, H, W, 3]` → `[F, factor·H, factor·W, 3]`, nearest neighbour (pixels stay visible as pixels)."""
    return np.repeat(np.repeat(video, factor, axis=1), factor, axis=2)


@dataclass
class DemoResult:
    label: str
    caption: str
    written: dict[str, Path] = field(default_factory=dict)
    animate: object = None  # the animate job's `AnimateResult`


def run_demo(demo: DemoOptions, model: str, label: str | None = None) -> DemoResult:
    """Write the example's reference, pose and ground truth, animate them with `model` (a pipeline folder), and
    write the enlarged side-by-side; `label` (default: what the model is) goes into the output and sidecar."""
    from ..io.media import save_image, side_by_side, write_video
    from ..io.outputs import check_outputs
    from .animate import animate

    out = Path(demo.out_dir)
    paths = {
        "reference": out / "reference.png",
        "pose": out / "pose.mp4",
        "ground_truth": out / "ground_truth.mp4",
        "comparison": out / "demo_comparison.mp4",
    }
    check_outputs({f"--out-dir ({p.name})": p for p in paths.values()}, {})

    if label is None:
        bundled = bundled_model()
        is_bundled = bundled is not None and Path(model).expanduser().resolve() == bundled.resolve()
        label = SMALL_MODEL_LABEL if is_bundled else f"model {model}"

    sample = demo_sample(demo.example, demo.num_frames)
    # The inputs are written to a scratch folder and moved into --out-dir only when the animation succeeded: a
    # failed demo leaves nothing behind.
    with tempfile.TemporaryDirectory(prefix="dynamictrl-demo-") as scratch:
        inputs = {key: Path(scratch) / path.name for key, path in paths.items() if key != "comparison"}
        save_image(inputs["reference"], sample.frames[0])
        write_video(inputs["pose"], sample.pose, sample.fps, crf=10, pix_fmt="yuv444p")  # as `dynamictrl synth`
        write_video(inputs["ground_truth"], sample.frames, sample.fps)
        options = AnimateOptions(
            image=inputs["reference"],
            pose_video=inputs["pose"],
            prompt=sample.caption,
            out=out / "demo.mp4",
            model=model,
            num_frames=demo.num_frames,
            height=sample.frames.shape[1],
            width=sample.frames.shape[2],
            steps=demo.steps,
            guidance=demo.guidance,
            seed=demo.seed,
            fps=sample.fps,
            side_by_side=False,
            device="cpu",
            note=label,
            quiet=demo.quiet,
        )
        result = animate(options)
        generated = result.frames[0]
        reference = np.repeat(sample.frames[:1], len(generated), axis=0)
        panels = side_by_side(*(enlarge(v) for v in (reference, sample.pose, generated, sample.frames)))
        write_video(paths["comparison"], panels, sample.fps)
        for key, path in inputs.items():
            shutil.move(path, paths[key])
    written = {"video": result.videos[0], **paths, "settings": result.sidecar}
    return DemoResult(label=label, caption=sample.caption, written=written, animate=result)
