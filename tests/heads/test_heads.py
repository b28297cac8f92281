import os
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from keras_mobile.data import shapes  # noqa: E402
from keras_mobile.heads import LRASPP, SSDLite  # noqa: E402
from keras_mobile.heads import box_coding, matching  # noqa: E402
from keras_mobile.heads.anchors import generate_anchors  # noqa: E402
from keras_mobile.heads.metrics import detection_map, mean_iou  # noqa: E402
from keras_mobile.tflite.inspect import run_tflite  # noqa: E402

FAMILIES = ["MobileNetV3Small", "MobileNetV4ConvS", "MobileOneS0", "EfficientFormerL1"]
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def run(report, images):
    """Per-image lists of a file's outputs, each with its batch axis of 1 (the layout the
    assertions below index)."""
    outs = run_tflite(report.path, images)
    outs = outs if isinstance(outs, list) else [outs]
    return [[o[i:i + 1] for o in outs] for i in range(len(images))]


def _size(backbone):
    return 224 if backbone.startswith("EfficientFormer") else 128


def test_box_coding_round_trip_and_matching():
    anchors = generate_anchors([(4, 4), (2, 2)])
    boxes = np.array([[0.1, 0.2, 0.5, 0.7]], np.float32)
    codes = box_coding.encode(np.repeat(boxes, len(anchors), 0), anchors)
    np.testing.assert_allclose(box_coding.decode(codes, anchors).numpy()[0], boxes[0], atol=1e-5)
    gt_boxes = np.array([[[0.1, 0.2, 0.5, 0.7], [0, 0, 0, 0]]], np.float32)
    box_t, cls_t = matching.assign(anchors, gt_boxes, np.array([[2, -1]]))
    assert (cls_t.numpy() == 2).sum() >= 1          # force-matched at least one anchor
    assert set(np.unique(cls_t.numpy())) <= {-2, -1, 2}


@pytest.mark.parametrize("backbone", FAMILIES)
def test_heads_build_on_every_family(backbone):
    s = _size(backbone)
    det = SSDLite(backbone, num_classes=3, input_shape=(s, s, 3))
    out = det(np.zeros((1, s, s, 3), np.float32))
    assert out["boxes"].shape == (1, len(det.anchors), 4)
    assert out["classes"].shape == (1, len(det.anchors), 3)
    seg = LRASPP(backbone, num_classes=4, input_shape=(s, s, 3))   # the backbone's best stride
    assert seg(np.zeros((1, s, s, 3), np.float32)).shape == (1, s, s, 4)
    stride = s // seg.get_layer("lraspp-cbr-conv").input.shape[1]
    assert stride == (32 if backbone.startswith("EfficientFormer") else 16)   # atrous where supported


def test_lraspp_output_stride_errors():
    with pytest.raises(ValueError, match="output_stride must be None, 16 or 32, got 8"):
        LRASPP("MobileNetV3Small", output_stride=8)
    with pytest.raises(ValueError, match="EfficientFormerL1 supports output_stride=32 only"):
        LRASPP("EfficientFormerL1", num_classes=3, input_shape=(224, 224, 3), output_stride=16)


@pytest.mark.slow   # the default tier's detect example smoke test asserts the same on this backbone
def test_ssdlite_train_step_lowers_loss():
    tf.random.set_seed(0)
    data = shapes.generate(8, 128, seed=0)
    model = SSDLite("MobileNetV4ConvS", num_classes=3, input_shape=(128, 128, 3))
    import keras
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = data["images"].astype("float32")
    y = {"boxes": data["boxes"], "classes": data["classes"]}
    before = float(model.detection_loss(y, model(x, training=False)))
    model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    after = float(model.detection_loss(y, model(x, training=False)))
    assert after < before


@pytest.mark.slow   # the default tier's segment example smoke test asserts the same on this backbone
def test_lraspp_train_step_lowers_loss():
    data = shapes.generate(8, 128, seed=0)
    model = LRASPP("MobileNetV3Small", num_classes=4, input_shape=(128, 128, 3))
    import keras
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, y = data["images"].astype("float32"), data["masks"].astype("int32")
    hist = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_tflite_matches_keras(tmp_path):
    import keras
    keras.utils.set_random_seed(0)
    data = shapes.generate(2, 128, seed=3)
    x = data["images"].astype("float32")
    det = SSDLite("MobileNetV4ConvS", num_classes=3, input_shape=(128, 128, 3))
    # random BN statistics and class predictors: an untrained head scores every anchor at its
    # prior (0.01), which would leave NMS nothing but ties to compare
    rng = np.random.default_rng(0)
    for v in det.weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
        elif "moving_mean" in v.path or "beta" in v.path:
            v.assign(rng.normal(0, 0.1, v.shape).astype("float32"))
        elif "ssd-cls" in v.path:
            v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    raw = run(det.export_tflite(str(tmp_path / "raw.tflite"), postprocess_op=False), x)
    ref = det(x, training=False)
    for i in range(len(x)):
        assert np.abs(raw[i][0] - ref["boxes"].numpy()[i:i + 1]).max() <= 1e-4
        assert np.abs(raw[i][1] - ref["classes"].numpy()[i:i + 1]).max() <= 1e-4
    # NMS on noise images: flat shape backgrounds give many anchors bit-identical scores,
    # and the order among exact ties is implementation-defined.
    noise = np.random.default_rng(0).uniform(0, 255, x.shape).astype("float32")
    report = det.export_tflite(str(tmp_path / "det.tflite"), score_threshold=0.0, max_detections=20)
    ops = set(report.ops)
    assert "TFLite_Detection_PostProcess" in ops
    outs = run(report, noise)
    keras_dets = det.predict_detections(noise, score_threshold=0.0, max_detections=20)
    for i in range(len(noise)):
        n = int(outs[i][3][0])
        assert n == int(keras_dets["num_detections"][i]) > 0
        kb, kc, ks = (keras_dets[k][i, :n] for k in ("boxes", "classes", "scores"))
        np.testing.assert_allclose(outs[i][2][0, :n], ks, atol=1e-4)   # same sorted scores
        assert ks[0] - ks[-1] > 0.01                                  # scores are not all ties
        same = 0
        for b, c, s in zip(outs[i][0][0, :n], outs[i][1][0, :n], outs[i][2][0, :n]):
            d = np.abs(kb - b).max(-1)
            j = int(np.argmin(d))
            same += bool(d[j] <= 1e-3 and kc[j] == c)
            # same box and class, unless it is a near-tie at the max_detections cut-off
            assert (d[j] <= 1e-3 and kc[j] == c) or abs(s - ks[-1]) <= 1e-4
        assert same >= n - 2

    seg = LRASPP("MobileNetV3Small", num_classes=4, input_shape=(128, 128, 3))
    out = run(seg.export_tflite(str(tmp_path / "seg.tflite")), x)
    ref = seg(x, training=False).numpy()
    assert max(np.abs(out[i][0] - ref[i:i + 1]).max() for i in range(len(x))) <= 1e-4


def test_metrics():
    gt_b = np.array([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]]], np.float32)
    gt_c = np.array([[0, 1]])
    dets = {"boxes": gt_b.copy(), "classes": np.array([[0.0, 1.0]]),
            "scores": np.array([[0.9, 0.8]]), "num_detections": np.array([2.0])}
    assert detection_map(dets, gt_b, gt_c, 2)["mAP@0.5"] == pytest.approx(1.0)
    assert mean_iou(np.array([0, 1, 1]), np.array([0, 1, 1]), 2) == pytest.approx(1.0)


def _example(name):
    sys.path.insert(0, EXAMPLES)
    try:
        return __import__(name)
    finally:
        sys.path.remove(EXAMPLES)


def test_detect_example_smoke(tmp_path):
    # train (fresh shapes every epoch) -> mAP -> int8 TFLite with the post-process op -> PNGs;
    # also the default tier's check that SSDLite training learns
    res = _example("detect").main(["--size", "64", "--num-train", "16", "--num-test", "4",
                                   "--epochs", "3", "--batch-size", "8", "--num-png", "2",
                                   "--out", str(tmp_path)])
    assert res["loss"][-1] < res["loss"][0], res["loss"]
    assert len(res["pngs"]) == 2 and all(os.path.exists(p) for p in res["pngs"])
    assert "tflite_int8" in res and os.path.exists(res["tflite_path"])


def test_segment_example_smoke(tmp_path):
    # train -> mIoU -> int8 TFLite -> PNGs; also the default tier's check that LR-ASPP learns
    res = _example("segment").main(["--size", "64", "--num-train", "16", "--num-test", "4",
                                    "--epochs", "3", "--batch-size", "8", "--num-png", "2",
                                    "--backbone", "MobileNetV3Small", "--out", str(tmp_path)])
    assert res["loss"][-1] < res["loss"][0], res["loss"]
    assert len(res["pngs"]) == 2 and all(os.path.exists(p) for p in res["pngs"])
    assert 0.0 <= res["tflite_int8_mIoU"] <= 1.0 and os.path.exists(res["tflite_path"])


def test_tfds_detection_loader_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3):
        data = shapes.load_tfds_detection("voc/2012", "train", 64, max_objects=5)
    assert data["images"].shape == (3, 64, 64, 3)
    assert data["boxes"].shape == (3, 5, 4) and data["classes"].shape == (3, 5)


@pytest.mark.slow
def test_detect_and_segment_reach_accuracy(tmp_path):
    det = _example("detect").main(["--size", "128", "--num-train", "1000", "--epochs", "40",
                                   "--out", str(tmp_path / "det")])
    assert det["keras"]["mAP@0.5"] >= 0.5
    seg = _example("segment").main(["--size", "128", "--num-train", "800", "--epochs", "15",
                                    "--out", str(tmp_path / "seg")])
    assert seg["keras_mIoU"] >= 0.7


def test_shapes_stream_draws_fresh_images_each_epoch():
    s = shapes.stream(10, 64, batch_size=4, task="detection", seed=0)
    assert len(s) == 3
    x0, y0 = s[0]
    assert x0.shape == (4, 64, 64, 3) and y0["boxes"].shape == (4, 4, 4)
    assert s[2][0].shape[0] == 2                      # last partial batch
    s.on_epoch_end()
    assert not np.array_equal(s[0][0], x0)
    m = shapes.stream(4, 64, batch_size=4, task="segmentation")[0][1]
    assert m.shape == (4, 64, 64) and m.dtype == np.int32 and m.max() <= 3
    with pytest.raises(ValueError, match="task"):
        shapes.stream(4, task="keypoints")
