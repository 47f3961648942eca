"""DWPose backend: ONNX loading, detector and pose pre/post-processing, weight resolution.

The real weights are not reachable offline, so the tests build small ONNX models with the real signatures:

- detector like `yolox_l.onnx`: `images [1, 3, 640, 640]` -> `output [1, 8400, 85]` (raw YOLOX predictions: grid
  offsets, log sizes, objectness and 80 class probabilities), here constant predictions chosen by the test (the
  image still flows through the graph);
- pose like `dw-ll_ucoco_384.onnx`: `input [1, 3, 384, 288]` -> `simcc_x [1, 133, 576]`, `simcc_y [1, 133, 768]`,
  here every keypoint's x (y) distribution is the mean of the crop's first channel over each column (row),
  upsampled 2x like SimCC: the keypoints land on the brightest column and row of the crop. A bright cross in the
  image therefore tells where the affine crop, the SimCC decoding and the way back to image pixels put a point.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dynamictrl.errors import CheckpointError, InputError, ModelNotFoundError, PoseError
from dynamictrl.pose.backends import dwpose
from dynamictrl.pose.backends.dwpose import (
    DWPoseExtractor,
    crop_person,
    letterbox,
    nms,
    person_boxes,
    resolve_dwpose_weights,
    simcc_decode,
)
from dynamictrl.pose.extract import get_extractor
from dynamictrl.pose.prepare import prepare_pose_video

NUM_ANCHORS = 80 * 80 + 40 * 40 + 20 * 20


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def encode_boxes(boxes) -> np.ndarray:
    """Raw YOLOX predictions `[8400, 85]` holding (x0, y0, x1, y1, objectness, person prob, other class, prob)."""
    pred = np.zeros((NUM_ANCHORS, 85), dtype=np.float32)
    used = set()
    for x0, y0, x1, y1, obj, person_prob, *other in boxes:
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        stride, offset, size = 32, 80 * 80 + 40 * 40, 20
        gx, gy = int(cx // stride), int(cy // stride)
        while offset + gy * size + gx in used:  # two boxes in one cell: use the next cell's anchor
            gx += 1
        row = offset + gy * size + gx
        used.add(row)
        pred[row, :4] = [cx / stride - gx, cy / stride - gy, np.log(w / stride), np.log(h / stride)]
        pred[row, 4], pred[row, 5] = obj, person_prob
        if other:
            pred[row, 5 + int(other[0])] = other[1]
    return pred


def build_detector(path, boxes=()):
    """A YOLOX-L-shaped detector that always predicts `boxes` (letterbox pixels)."""
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, NUM_ANCHORS, 85])
    const = numpy_helper.from_array(encode_boxes(boxes)[None], "predictions")
    zero = numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),  # [1]
        helper.make_node("Unsqueeze", ["mean", "axes12"], ["mean3"]),  # [1, 1, 1]
        helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
        helper.make_node("Add", ["predictions", "nothing"], ["output"]),
    ]
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes12")
    return _save(helper.make_graph(nodes, "tiny_yolox", [images], [output], [const, zero, axes]), path)


def build_pose(path, num_outputs=2):
    """A DWPose-shaped SimCC network whose keypoints all sit on the crop's brightest column and row."""
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])
    outputs = [
        helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
        helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768]),
    ][:num_outputs]
    up_x = np.repeat(np.eye(288, dtype=np.float32), 2, axis=1)  # [288, 576]: column j -> bins 2j, 2j+1
    up_y = np.repeat(np.eye(384, dtype=np.float32), 2, axis=1)
    inits = [
        numpy_helper.from_array(up_x, "up_x"),
        numpy_helper.from_array(up_y, "up_y"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([1, 133, 576], np.int64), "shape_x"),
        numpy_helper.from_array(np.array([1, 133, 768], np.int64), "shape_y"),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "c0", "c1", "axis1"], ["channel0"]),  # [1, 1, 384, 288]
        helper.make_node("ReduceMean", ["channel0"], ["cols"], axes=[2], keepdims=0),  # [1, 1, 288]
        helper.make_node("ReduceMean", ["channel0"], ["rows"], axes=[3], keepdims=0),  # [1, 1, 384]
        helper.make_node("MatMul", ["cols", "up_x"], ["cols2"]),
        helper.make_node("MatMul", ["rows", "up_y"], ["rows2"]),
        helper.make_node("Expand", ["cols2", "shape_x"], ["simcc_x"]),
        helper.make_node("Expand", ["rows2", "shape_y"], ["simcc_y"]),
    ][: 5 + num_outputs]
    return _save(helper.make_graph(nodes, "tiny_dwpose", [image], outputs, inits), path)


def cross_image(h=720, w=540, x=200, y=300, half_width=2):
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[:, x - half_width : x + half_width + 1] = 255
    image[y - half_width : y + half_width + 1, :] = 255
    return image


@pytest.fixture
def model_dir(tmp_path):
    """Tiny DWPose folder: one person box around (150..390, 100..620) of a 720x540 image."""
    ratio = 640 / 720
    box = [150 * ratio, 100 * ratio, 390 * ratio, 620 * ratio, 0.95, 0.9]
    build_detector(tmp_path / dwpose.DETECTOR_FILE, [box])
    build_pose(tmp_path / dwpose.POSE_FILE)
    return tmp_path


def test_letterbox_pads_with_114_and_keeps_the_image_top_left():
    image = np.full((720, 540, 3), 7, dtype=np.uint8)
    tensor, ratio = letterbox(image)
    assert tensor.shape == (3, 640, 640) and tensor.dtype == np.float32
    assert ratio == pytest.approx(640 / 720)
    assert tensor[:, :, :480].max() == 7 and tensor[:, :, 480:].min() == 114


def test_person_boxes_decodes_yolox_grid_applies_nms_and_thresholds():
    ratio = 0.5
    pred = encode_boxes(
        [
            (100, 100, 300, 500, 0.95, 0.9),  # person, score 0.855
            (110, 105, 305, 495, 0.9, 0.85),  # overlaps the first (IoU > 0.45): suppressed
            (400, 100, 560, 400, 0.9, 0.6),  # another person, score 0.54
            (20, 20, 60, 60, 0.5, 0.5),  # score 0.25: above NMS's 0.1 but below the person threshold 0.3
            (200, 520, 400, 630, 0.95, 0.05, 3, 0.9),  # a car: not a person
        ]
    )
    boxes = person_boxes(pred, ratio)
    np.testing.assert_allclose(boxes, [[200, 200, 600, 1000], [800, 200, 1120, 800]], atol=1e-3)


def test_nms_keeps_best_first():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7], dtype=np.float32), 0.45) == [1, 2]


def test_simcc_decode_takes_argmax_halves_it_and_marks_non_positive_scores():
    sx = np.full((1, 2, 576), -1.0, np.float32)
    sy = np.full((1, 2, 768), -1.0, np.float32)
    sx[0, 0, 101], sy[0, 0, 300] = 0.8, 0.6
    sx[0, 1, 50], sy[0, 1, 60] = -0.1, -0.2
    locs, scores = simcc_decode(sx, sy)
    np.testing.assert_allclose(locs[0, 0], [50.5, 150.0])
    np.testing.assert_allclose(scores[0], [0.6, -0.2])
    np.testing.assert_allclose(locs[0, 1], [-0.5, -0.5])


def test_crop_person_pads_the_box_and_keeps_the_network_aspect():
    image = cross_image()
    tensor, center, scale = crop_person(image, [150, 100, 390, 620], (288, 384))
    assert tensor.shape == (3, 384, 288) and tensor.dtype == np.float32
    np.testing.assert_allclose(center, [270, 360])
    # 240x520 padded by 1.25 -> 300x650, widened to the 288:384 aspect -> 487.5x650.
    np.testing.assert_allclose(scale, [487.5, 650])
    # Normalised with the ImageNet mean/std: black outside the cross.
    assert tensor[0, 0, 0] == pytest.approx((0 - 123.675) / 58.395, rel=1e-6)


def test_extractor_finds_the_cross_through_the_whole_onnx_path(model_dir):
    extractor = DWPoseExtractor(model_dir / dwpose.DETECTOR_FILE, model_dir / dwpose.POSE_FILE)
    assert extractor.pose_input_size == (288, 384)
    image = cross_image(x=200, y=300)
    keypoints, scores = extractor.wholebody(image)
    assert keypoints.shape == (1, 133, 2) and scores.shape == (1, 133)
    # One crop pixel is 650/384 = 1.7 image pixels: the point is back on the cross within that.
    assert np.abs(keypoints[0] - [200, 300]).max() <= 1.8
    assert scores.min() > 0.3
    pose = extractor(image)
    assert len(pose.people) == 1 and (pose.height, pose.width) == (720, 540)
    np.testing.assert_allclose(pose.people[0].body[1], [200 / 540, 300 / 720], atol=2 / 540)
    assert pose.people[0].body_scores[1] == 1.0  # the neck, from two confident shoulders


def test_several_boxes_give_several_people_best_first(tmp_path):
    ratio = 640 / 720
    build_detector(
        tmp_path / dwpose.DETECTOR_FILE,
        [
            (300 * ratio, 50 * ratio, 500 * ratio, 700 * ratio, 0.9, 0.5),  # score 0.45
            (100 * ratio, 100 * ratio, 300 * ratio, 600 * ratio, 0.95, 0.9),  # score 0.855
        ],
    )
    build_pose(tmp_path / dwpose.POSE_FILE)
    extractor = DWPoseExtractor(tmp_path / dwpose.DETECTOR_FILE, tmp_path / dwpose.POSE_FILE)
    np.testing.assert_allclose(extractor.detect(cross_image())[:, 0], [100, 300], atol=1e-3)
    keypoints, _ = extractor.wholebody(cross_image(x=400, y=300))
    # Both crops contain the cross; each person's points come back to it from its own crop.
    assert keypoints.shape == (2, 133, 2)
    assert np.abs(keypoints - [400, 300]).max() <= 2.0


def test_no_detection_uses_the_whole_image_and_a_blank_image_is_caught_as_no_person(tmp_path):
    build_detector(tmp_path / dwpose.DETECTOR_FILE, [])
    build_pose(tmp_path / dwpose.POSE_FILE)
    extractor = get_extractor("dwpose", model_dir=tmp_path)
    image = cross_image(x=100, y=600)
    keypoints, _ = extractor.wholebody(image)
    assert np.abs(keypoints[0] - [100, 600]).max() <= 2.0  # found in the whole-image crop

    blank = np.zeros((720, 540, 3), dtype=np.uint8)
    pose = extractor(blank)
    assert len(pose.people) == 1  # the published code's garbage "person"...
    assert pose.people[0].body_scores.max() <= 0  # ...with no confident point
    ref = tmp_path / "blank.png"
    from dynamictrl.io.media import save_image, write_video

    save_image(ref, blank)
    video = write_video(tmp_path / "v.mp4", np.stack([cross_image(h=96, w=64, x=30, y=40)] * 3), fps=10)
    with pytest.raises(PoseError, match="No person found in the reference image"):
        prepare_pose_video(ref, video, 96, 64, 3, extractor=extractor, use_cache=False, progress=False)


def test_auto_prefers_dwpose_when_its_weights_are_present(model_dir, monkeypatch):
    assert get_extractor("auto", model_dir=model_dir).name == "dwpose"
    monkeypatch.setenv(dwpose.ENV_MODEL_DIR, str(model_dir))
    assert get_extractor("auto").name == "dwpose"
    monkeypatch.setenv(dwpose.ENV_MODEL_DIR, str(model_dir / "nowhere"))
    assert get_extractor("auto").name == "mediapipe"


def test_missing_weights_offline_is_a_model_not_found_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv(dwpose.ENV_MODEL_DIR, raising=False)
    assert dwpose.find_dwpose_weights() is None
    with pytest.raises(ModelNotFoundError, match="not on disk and the hub is offline") as offline:
        get_extractor("dwpose")
    assert "`dynamictrl download dwpose`" in str(offline.value) and "--backend mediapipe" in str(offline.value)
    # Online but the download fails (no network in tests, so the failure is injected): same kind of error.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    requested = []

    def unreachable(repo_id, filename, **kwargs):
        requested.append((repo_id, filename))
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(ModelNotFoundError, match="could not be downloaded from yzd-v/DWPose .OSError."):
        get_extractor("dwpose")
    assert requested == [("yzd-v/DWPose", "yolox_l.onnx")]
    (tmp_path / "partial").mkdir()
    build_pose(tmp_path / "partial" / dwpose.POSE_FILE)
    with pytest.raises(ModelNotFoundError, match="yolox_l.onnx"):
        resolve_dwpose_weights(tmp_path / "partial")


def test_weights_in_the_hub_cache_are_found_without_network(tmp_path, monkeypatch, model_dir):
    import huggingface_hub.constants

    snapshot = tmp_path / "hub" / "models--yzd-v--DWPose" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    for name in (dwpose.DETECTOR_FILE, dwpose.POSE_FILE):
        (snapshot / name).write_bytes((model_dir / name).read_bytes())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv(dwpose.ENV_MODEL_DIR, raising=False)
    found = dwpose.find_dwpose_weights()
    assert found is not None and found[0].parent == snapshot


def test_broken_or_wrong_models_are_checkpoint_errors(tmp_path, model_dir):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model")
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        DWPoseExtractor(corrupt, model_dir / dwpose.POSE_FILE)(cross_image())
    one_output = build_pose(tmp_path / "one_output.onnx", num_outputs=1)
    with pytest.raises(CheckpointError, match="SimCC"):
        DWPoseExtractor(model_dir / dwpose.DETECTOR_FILE, one_output)(cross_image())


def test_unknown_backend_and_device_list_the_valid_values(model_dir):
    with pytest.raises(InputError, match="auto, dwpose, mediapipe, mediapipe-body"):
        get_extractor("openpose")
    with pytest.raises(InputError, match="cpu, cuda or cuda:N"):
        get_extractor("dwpose", device="tpu", model_dir=model_dir)


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"], (["CPUExecutionProvider"], None)),
        ("auto", ["CPUExecutionProvider"], (["CPUExecutionProvider"], None)),
        (
            "auto",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            (["CUDAExecutionProvider", "CPUExecutionProvider"], [{"device_id": 0}, {}]),
        ),
        (
            "cuda:1",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            (["CUDAExecutionProvider", "CPUExecutionProvider"], [{"device_id": 1}, {}]),
        ),
        ("cuda", ["CPUExecutionProvider"], (["CPUExecutionProvider"], None)),  # no onnxruntime-gpu: warns, CPU
        ("mps", ["CPUExecutionProvider"], (["CPUExecutionProvider"], None)),
    ],
)
def test_device_strings_choose_the_onnxruntime_provider(monkeypatch, device, available, expected):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: available)
    assert dwpose._providers(device) == expected


def test_auto_with_an_incomplete_model_dir_is_an_error_not_a_silent_fallback(tmp_path):
    build_pose(tmp_path / dwpose.POSE_FILE)
    with pytest.raises(ModelNotFoundError, match="DWPose weights missing in .*: yolox_l.onnx"):
        get_extractor("auto", model_dir=tmp_path)
