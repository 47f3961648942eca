"""DWPose on onnxruntime: YOLOX-L person detector, then the DWPose whole-body network (SimCC head), per person.

Same pre- and post-processing as the published code (https://github.com/gulucaptain/DynamiCtrl, `dwpose/onnxdet.py`,
`dwpose/onnxpose.py`, `dwpose/wholebody.py`):

- detector: letterbox into 640x640 (pad 114, image top-left, `INTER_LINEAR`), RGB as given, float32 CHW; YOLOX
  grid decoding with strides 8/16/32; score = objectness x class; NMS (IoU 0.45, score > 0.1) per class; people
  (class 0) scoring above 0.3, best first;
- pose: each box padded by 1.25, widened or heightened to the network's aspect ratio, affine-warped to the network
  input (`INTER_LINEAR`), normalised with the ImageNet mean/std; SimCC arg-max decoding (split ratio 2), score =
  min of the x and y maxima, locations of non-positive scores set to -1; back to image pixels;
- no box: the whole image is one box, so there is always one "person" (the pose check catches an empty image by
  its low scores);
- neck, OpenPose re-ordering and normalisation: `FramePose.from_wholebody`.

What differs (docs/pose.md): the weights come from a folder or the hub cache (`dynamictrl.io.hub`, like the
models) instead of a path relative to the working directory, the execution provider is chosen from a device
string, and only the person class goes through NMS (NMS is per class, so the result is the same).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ...errors import CheckpointError, ModelNotFoundError
from ...io.devices import parse_device
from ...io.hub import KNOWN_MODELS, fetch_files, find_cached_files, hub_offline
from ..types import FramePose
from .base import PoseExtractor, check_image

logger = logging.getLogger(__name__)

# The hub entry `dynamictrl download dwpose` fetches; its file list is (detector, pose network).
DWPOSE_MODEL = "dwpose"
DWPOSE_REPO = KNOWN_MODELS[DWPOSE_MODEL].repo_id
DETECTOR_FILE, POSE_FILE = KNOWN_MODELS[DWPOSE_MODEL].allow_patterns
ENV_MODEL_DIR = "DYNAMICTRL_DWPOSE_DIR"

DETECTOR_INPUT = (640, 640)  # (h, w)
LETTERBOX_PAD = 114
YOLOX_STRIDES = (8, 16, 32)
NMS_IOU = 0.45
NMS_SCORE = 0.1
PERSON_SCORE = 0.3
BOX_PADDING = 1.25
PIXEL_MEAN = np.array([123.675, 116.28, 103.53])
PIXEL_STD = np.array([58.395, 57.12, 57.375])
SIMCC_SPLIT_RATIO = 2.0
DEFAULT_POSE_INPUT = (288, 384)  # (w, h), used only if the ONNX input size is symbolic


# ------------------------------------------------------------------------------------------------ weights
def _files_in(folder: Path) -> tuple[Path, Path] | None:
    det, pose = folder / DETECTOR_FILE, folder / POSE_FILE
    return (det, pose) if det.is_file() and pose.is_file() else None


def _local_folder(model_dir: str | os.PathLike | None) -> Path | None:
    """`model_dir`, else $DYNAMICTRL_DWPOSE_DIR, else None (meaning: the hub cache)."""
    if model_dir is not None:
        return Path(model_dir).expanduser()
    env = os.environ.get(ENV_MODEL_DIR)
    return Path(env).expanduser() if env else None


def find_dwpose_weights(model_dir: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    """Paths of (detector, pose) ONNX files already on disk, or None. Never touches the network.

    Looks in `model_dir` if given (and only there), else in $DYNAMICTRL_DWPOSE_DIR, else in the hub cache.
    """
    folder = _local_folder(model_dir)
    if folder is not None:
        return _files_in(folder)
    cached = find_cached_files(DWPOSE_REPO, (DETECTOR_FILE, POSE_FILE))
    return (cached[0], cached[1]) if cached is not None else None


def resolve_dwpose_weights(model_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(detector, pose) ONNX paths: from disk, else downloaded from the hub; `ModelNotFoundError` if neither works."""
    found = find_dwpose_weights(model_dir)
    if found:
        return found
    if model_dir is not None:  # an explicit folder is the only place looked at
        folder = Path(model_dir).expanduser()
        missing = [n for n in (DETECTOR_FILE, POSE_FILE) if not (folder / n).is_file()]
        raise ModelNotFoundError(
            f"DWPose weights missing in {folder}: {', '.join(missing)}; download them from the hub repo "
            f"{DWPOSE_REPO} into that folder, or use --backend mediapipe"
        )
    # $DYNAMICTRL_DWPOSE_DIR without the files: the hub cache, then a download.
    how_to_fix = f"pass --pose-model-dir with {DETECTOR_FILE} and {POSE_FILE}, or use --backend mediapipe"
    try:
        if not hub_offline():
            logger.info("Downloading DWPose weights from the hub repo %s", DWPOSE_REPO)
        detector, pose = fetch_files(DWPOSE_MODEL, (DETECTOR_FILE, POSE_FILE))
    except ModelNotFoundError as exc:
        if hub_offline():
            why = (
                "the hub is offline (HF_HUB_OFFLINE); unset it and run "
                f"`dynamictrl download {DWPOSE_MODEL}` on a machine with internet"
            )
        else:
            cause = type(exc.__cause__ or exc).__name__
            why = (
                f"could not be downloaded from {DWPOSE_REPO} ({cause}); connect to the internet and run "
                f"`dynamictrl download {DWPOSE_MODEL}`"
            )
        raise ModelNotFoundError(f"DWPose weights are not on disk and {why}, {how_to_fix}") from exc
    return detector, pose


def _providers(device: str) -> tuple[list[str], list[dict] | None]:
    """onnxruntime providers for a device string ("auto", "cpu", "cuda", "cuda:N"; see `parse_device`).

    "auto" takes the CUDA provider when onnxruntime has one; "mps" has no onnxruntime provider and runs on the CPU.
    (The published code compared a torch.device with the string 'cpu'.)
    """
    import onnxruntime as ort

    kind, index = parse_device(device, flag="--device")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if kind == "cuda" or (kind == "auto" and has_cuda):
        if has_cuda:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], [{"device_id": index or 0}, {}]
        logger.warning("onnxruntime has no CUDA provider here (install onnxruntime-gpu); running DWPose on the CPU")
    elif kind == "mps":
        logger.info("onnxruntime has no MPS provider; running DWPose on the CPU")
    return ["CPUExecutionProvider"], None


# ------------------------------------------------------------------------------------------------ detector
def letterbox(image: npt.NDArray[np.uint8], size: tuple[int, int] = DETECTOR_INPUT) -> tuple[npt.NDArray, float]:
    """Resize into a `size` (h, w) canvas padded with 114, top-left aligned: (float32 `[3, h, w]`, ratio)."""
    padded = np.full((size[0], size[1], 3), LETTERBOX_PAD, dtype=np.uint8)
    ratio = min(size[0] / image.shape[0], size[1] / image.shape[1])
    new_w, new_h = int(image.shape[1] * ratio), int(image.shape[0] * ratio)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    padded[:new_h, :new_w] = resized
    return np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32), ratio


def yolox_grid_decode(predictions: npt.NDArray, size: tuple[int, int] = DETECTOR_INPUT) -> npt.NDArray:
    """Raw YOLOX outputs `[N, 5 + classes]` to (cx, cy, w, h, obj, cls...) in letterbox pixels (a copy)."""
    out = np.array(predictions, copy=True)
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        h, w = size[0] // stride, size[1] // stride
        xv, yv = np.meshgrid(np.arange(w), np.arange(h))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((h * w, 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    if len(out) != len(grid):
        raise CheckpointError(
            f"Detector output has {len(out)} predictions, a {size[1]}x{size[0]} YOLOX gives {len(grid)}; "
            f"{DETECTOR_FILE} is not the DWPose YOLOX-L"
        )
    out[:, :2] = (out[:, :2] + grid) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out


def nms(boxes: npt.NDArray, scores: npt.NDArray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression (pixel-inclusive areas, as the published code): kept indices, best first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(iou <= iou_threshold)[0] + 1]
    return keep


def person_boxes(predictions: npt.NDArray, ratio: float) -> npt.NDArray[np.float64]:
    """Decode one image's raw YOLOX predictions `[N, 85]` into person boxes `[k, 4]` (x0, y0, x1, y1, image pixels)."""
    decoded = yolox_grid_decode(predictions)
    centres, sizes = decoded[:, :2], decoded[:, 2:4]
    boxes = np.ones_like(decoded[:, :4])
    boxes[:, :2] = centres - sizes / 2.0
    boxes[:, 2:] = centres + sizes / 2.0
    boxes /= ratio
    person_scores = decoded[:, 4] * decoded[:, 5]
    valid = person_scores > NMS_SCORE
    if not valid.any():
        return np.zeros((0, 4))
    boxes, person_scores = boxes[valid], person_scores[valid]
    keep = nms(boxes, person_scores, NMS_IOU)
    keep = [k for k in keep if person_scores[k] > PERSON_SCORE]
    return boxes[keep].astype(np.float64).reshape(-1, 4)


# ------------------------------------------------------------------------------------------------ pose
def box_center_scale(box: npt.ArrayLike, padding: float = BOX_PADDING) -> tuple[npt.NDArray, npt.NDArray]:
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    return np.array([x0 + x1, y0 + y1]) * 0.5, np.array([x1 - x0, y1 - y0]) * padding


def fix_aspect_ratio(scale: npt.NDArray, aspect_ratio: float) -> npt.NDArray:
    """Grow the (w, h) box scale so that w / h equals `aspect_ratio`."""
    w, h = scale
    return np.array([w, w / aspect_ratio]) if w > h * aspect_ratio else np.array([h * aspect_ratio, h])


def warp_matrix(center: npt.NDArray, scale: npt.NDArray, output_size: tuple[int, int]) -> npt.NDArray:
    """2x3 affine matrix taking the box (center, scale) onto an `output_size` (w, h) image (no rotation).

    Built like mmpose from three float32 point pairs (centre, top-middle and a third point at a right angle), so the
    rounding matches the published code.
    """
    dst_w, dst_h = output_size
    src = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, scale[0] * -0.5])
    src[2] = src[1] + _perpendicular(src[0] - src[1])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5])
    dst[2] = dst[1] + _perpendicular(dst[0] - dst[1])
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def _perpendicular(direction: npt.NDArray) -> npt.NDArray:
    return np.r_[-direction[1], direction[0]]


def crop_person(
    image: npt.NDArray[np.uint8], box: npt.ArrayLike, input_size: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], npt.NDArray, npt.NDArray]:
    """Network input for one box: (float32 `[3, h, w]` normalised crop, centre, scale after the aspect fix)."""
    w, h = input_size
    center, scale = box_center_scale(box)
    scale = fix_aspect_ratio(scale, w / h)
    crop = cv2.warpAffine(image, warp_matrix(center, scale, (w, h)), (int(w), int(h)), flags=cv2.INTER_LINEAR)
    normalised = (crop - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32), center, scale


def simcc_decode(
    simcc_x: npt.NDArray, simcc_y: npt.NDArray, split_ratio: float = SIMCC_SPLIT_RATIO
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """SimCC `[n, K, Wx]`, `[n, K, Wy]` to (locations `[n, K, 2]` in input pixels, scores `[n, K]`)."""
    n, k, _ = simcc_x.shape
    flat_x, flat_y = simcc_x.reshape(n * k, -1), simcc_y.reshape(n * k, -1)
    locs = np.stack((np.argmax(flat_x, axis=1), np.argmax(flat_y, axis=1)), axis=-1).astype(np.float32)
    vals = np.minimum(np.amax(flat_x, axis=1), np.amax(flat_y, axis=1))
    locs[vals <= 0.0] = -1
    return locs.reshape(n, k, 2) / split_ratio, vals.reshape(n, k)


def keypoints_to_image(
    keypoints: npt.NDArray, input_size: tuple[int, int], center: npt.NDArray, scale: npt.NDArray
) -> npt.NDArray[np.float64]:
    """Network-input pixel coordinates back to image pixels."""
    return keypoints / np.asarray(input_size) * scale + center - scale / 2


# ------------------------------------------------------------------------------------------------ extractor
def _file_identity(path: Path) -> str:
    """Name, size and a hash of the first MiB: identifies a weight file without hashing hundreds of MB each run."""
    with open(path, "rb") as fh:
        head = hashlib.sha256(fh.read(1 << 20)).hexdigest()[:16]
    return f"{path.name}:{path.stat().st_size}:{head}"


class DWPoseExtractor(PoseExtractor):
    """The published code's DWPose whole-body estimator on onnxruntime. Sessions are created on first use."""

    name = "dwpose"

    def __init__(self, detector_path: str | os.PathLike, pose_path: str | os.PathLike, device: str = "cpu") -> None:
        self.detector_path, self.pose_path = Path(detector_path), Path(pose_path)
        for p in (self.detector_path, self.pose_path):
            if not p.is_file():
                raise ModelNotFoundError(f"DWPose weight file not found: {p}; download it from {DWPOSE_REPO}")
        self.device = device
        self._providers = _providers(device)
        self._det = None
        self._pose = None

    def _session(self, path: Path):
        import onnxruntime as ort

        providers, options = self._providers
        try:
            return ort.InferenceSession(str(path), providers=providers, provider_options=options)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise CheckpointError(
                f"{path} is not a loadable ONNX model ({type(exc).__name__}); re-download it from {DWPOSE_REPO}"
            ) from exc

    def _sessions(self):
        if self._det is None:
            self._det = self._session(self.detector_path)
            self._pose = self._session(self.pose_path)
            self._check_signatures()
        return self._det, self._pose

    def _check_signatures(self) -> None:
        det_in = self._det.get_inputs()
        pose_in, pose_out = self._pose.get_inputs(), self._pose.get_outputs()
        if len(det_in) != 1 or len(det_in[0].shape) != 4:
            raise CheckpointError(f"{self.detector_path} does not take one [1, 3, H, W] image; not the DWPose YOLOX")
        if len(pose_in) != 1 or len(pose_in[0].shape) != 4 or len(pose_out) != 2:
            raise CheckpointError(
                f"{self.pose_path} does not map one [1, 3, H, W] image to SimCC x/y outputs; not the DWPose model"
            )

    @property
    def pose_input_size(self) -> tuple[int, int]:
        """(w, h) of the pose network input, read from the ONNX model (288x384 for dw-ll_ucoco_384)."""
        _, pose = self._sessions()
        h, w = pose.get_inputs()[0].shape[2:]
        if isinstance(h, int) and isinstance(w, int):
            return w, h
        return DEFAULT_POSE_INPUT

    def detect(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """Person boxes `[k, 4]` (x0, y0, x1, y1 pixels), most confident first."""
        det, _ = self._sessions()
        tensor, ratio = letterbox(image)
        (predictions,) = det.run(None, {det.get_inputs()[0].name: tensor[None]})[:1]
        return person_boxes(np.asarray(predictions)[0], ratio)

    def wholebody(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """COCO-WholeBody keypoints `[n, 133, 2]` (image pixels) and scores `[n, 133]`, one row per person."""
        image = check_image(image)
        _, pose = self._sessions()
        boxes = self.detect(image)
        if len(boxes) == 0:
            boxes = np.array([[0, 0, image.shape[1], image.shape[0]]])
        input_size = self.pose_input_size
        input_name = pose.get_inputs()[0].name
        output_names = [o.name for o in pose.get_outputs()]
        all_points, all_scores = [], []
        for box in boxes:
            tensor, center, scale = crop_person(image, box, input_size)
            simcc_x, simcc_y = pose.run(output_names, {input_name: tensor[None]})
            locs, scores = simcc_decode(np.asarray(simcc_x), np.asarray(simcc_y))
            all_points.append(keypoints_to_image(locs, input_size, center, scale)[0])
            all_scores.append(scores[0])
        return np.stack(all_points), np.stack(all_scores)

    def __call__(self, image: npt.NDArray[np.uint8]) -> FramePose:
        keypoints, scores = self.wholebody(image)
        return FramePose.from_wholebody(keypoints, scores, image.shape[0], image.shape[1])

    def identity(self) -> str:
        return f"dwpose|{_file_identity(self.detector_path)}|{_file_identity(self.pose_path)}|{self.device}"

    def close(self) -> None:
        self._det = self._pose = None
