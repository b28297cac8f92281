"""TFLite metadata round trips, read back by our reader and by MediaPipe Tasks (the Android
runtime's Python twin), and export(target="edgetpu")."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_mobile.tflite import edgetpu, export, run_tflite  # noqa: E402
from keras_mobile.tflite.metadata import (add_metadata, imagenet_labels, model_defaults,  # noqa: E402
                                          read_metadata)

COLOURS = ["red", "green", "blue"]


def _colour_classifier(size=32):
    """Softmax over 0.05 * mean RGB of raw pixels: the answer depends on the input scale, so a
    wrong normalisation in the metadata changes the scores."""
    inp = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    model = keras.Model(inp, out, name="colours")
    model.get_layer("classifier").set_weights([np.eye(3, dtype="float32") * 0.05, np.zeros(3, "float32")])
    return model


def _image(colour, size=32):
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = colour
    return img


def _mediapipe():
    mp = pytest.importorskip("mediapipe")
    from mediapipe.tasks.python import BaseOptions, vision
    return mp, BaseOptions, vision


def _mp_image(mp, img):
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img))


def test_classifier_metadata_read_back_and_mediapipe_scores(tmp_path):
    mp, BaseOptions, vision = _mediapipe()
    model = _colour_classifier()
    path = str(tmp_path / "c.tflite")
    report = export(model, path, labels=COLOURS, metadata={"description": "colour test", "version": "2"})
    meta = read_metadata(path)
    assert (meta["name"], meta["description"], meta["version"], meta["kind"]) == ("colours", "colour test", "2",
                                                                                  "classifier")
    assert meta["min_parser_version"] == "1.0.0" and meta["packed_files"] == ["labels.txt"]
    (inp,), (out,) = meta["inputs"], meta["outputs"]
    assert (inp["mean"], inp["std"], inp["min"], inp["max"], inp["color_space"]) == ([0.0], [1.0], [0.0], [255.0], "RGB")
    assert out["labels"] == COLOURS and out["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert "metadata" in report.extra

    classifier = vision.ImageClassifier.create_from_options(
        vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path)))
    try:
        for colour in [(200, 100, 50), (10, 240, 30), (60, 70, 90)]:
            img = _image(colour)
            want = model.predict(img[None].astype("float32"), verbose=0)[0]
            got = classifier.classify(_mp_image(mp, img)).classifications[0].categories
            scores = {c.category_name: c.score for c in got}
            assert got[0].category_name == COLOURS[int(np.argmax(want))]
            np.testing.assert_allclose([scores[n] for n in COLOURS], want, atol=1e-5)
    finally:
        classifier.close()


def test_uint8_classifier_gets_raw_pixels_in_mediapipe(tmp_path):
    """int8 export with uint8 input: its quantization is pinned to scale 1 / zero point 0, so the
    raw camera bytes MediaPipe feeds are the pixel values the model was calibrated on."""
    mp, BaseOptions, vision = _mediapipe()
    model = _colour_classifier()
    rng = np.random.default_rng(0)
    calib = rng.uniform(20, 230, (16, 32, 32, 3)).astype("float32")   # does not span [0, 255] by itself
    path = str(tmp_path / "q.tflite")
    report = export(model, path, "int8", representative_data=calib, num_calibration_steps=16,
                    labels=COLOURS, progress=False)
    assert (report.inputs[0].dtype, report.inputs[0].scale, report.inputs[0].zero_point) == ("uint8", 1.0, 0)
    assert read_metadata(path)["inputs"][0]["max"] == [255.0]
    classifier = vision.ImageClassifier.create_from_options(
        vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path)))
    try:
        for colour in [(200, 100, 50), (10, 240, 30)]:
            img = _image(colour)
            want = run_tflite(path, img[None].astype("float32"))[0]
            got = {c.category_name: c.score for c in
                   classifier.classify(_mp_image(mp, img)).classifications[0].categories}
            np.testing.assert_allclose([got[n] for n in COLOURS], want, atol=1e-6)
    finally:
        classifier.close()


def test_detector_metadata_with_mediapipe_object_detector(tmp_path):
    mp, BaseOptions, vision = _mediapipe()
    names = ["circle", "square", "triangle"]
    from tests.heads.tiny import tiny_ssdlite
    # class 2 ("triangle") wins everywhere: the label mapping is visible in the names
    det = tiny_ssdlite(class_bias=(-2.0, -2.0, 2.0))
    path = det.export_tflite(str(tmp_path / "det.tflite"), score_threshold=0.05, max_detections=5,
                             metadata={"labels": names}).path
    meta = read_metadata(path)
    roles = {o["name"]: o for o in meta["outputs"]}
    assert set(roles) == {"location", "category", "score", "number of detections"}
    assert roles["category"]["labels"] == names
    assert roles["category"]["associated_files"][0]["type"] == "TENSOR_VALUE_LABELS"
    assert roles["location"]["bounding_box"] == {"index": [1, 0, 3, 2], "type": "BOUNDARIES",
                                                 "coordinate_type": "RATIO"}
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], img[None].astype("float32"))
    it.invoke()
    # metadata tensor i describes the file's output i: pick LiteRT's outputs by role
    by_role = {o["name"]: it.get_tensor(d["index"]) for o, d in zip(meta["outputs"], it.get_output_details())}
    n = int(by_role["number of detections"][0])
    assert n == 5
    detector = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
        base_options=BaseOptions(model_asset_path=path), score_threshold=0.0, max_results=5))
    try:
        found = detector.detect(_mp_image(mp, img)).detections
    finally:
        detector.close()
    assert len(found) == n
    for d, box, cls, score in zip(found, by_role["location"][0], by_role["category"][0], by_role["score"][0]):
        assert d.categories[0].category_name == names[int(cls)] == "triangle"
        assert d.categories[0].score == pytest.approx(float(score), abs=1e-6)
        ymin, xmin = np.clip(box[:2], 0, 1) * 64
        assert abs(d.bounding_box.origin_x - xmin) <= 1 and abs(d.bounding_box.origin_y - ymin) <= 1


def test_segmenter_metadata_with_mediapipe_image_segmenter(tmp_path):
    from keras_mobile.heads.lraspp import LRASPPModel
    mp, BaseOptions, vision = _mediapipe()
    keras.utils.set_random_seed(2)
    inp = keras.Input((48, 48, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    logits = keras.layers.Conv2D(4, 3, padding="same", name="logits")(x)
    seg = LRASPPModel(inp, logits, num_classes=4, name="tiny_seg")
    names = ["background", "circle", "square", "triangle"]
    path = seg.export_tflite(str(tmp_path / "seg.tflite"), metadata={"labels": names}).path
    meta = read_metadata(path)
    assert meta["kind"] == "segmenter" and meta["min_parser_version"] == "1.5.0"
    assert meta["custom_metadata"]["SEGMENTER_METADATA"] == {"activation": "softmax"}
    img = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    segmenter = vision.ImageSegmenter.create_from_options(vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=path), output_category_mask=True,
        output_confidence_masks=True))
    try:
        result = segmenter.segment(_mp_image(mp, img))
        labels = segmenter.labels
        mask = result.category_mask.numpy_view()[..., 0]
        conf = np.stack([m.numpy_view()[..., 0] for m in result.confidence_masks], -1)
    finally:
        segmenter.close()
    z = run_tflite(path, img[None].astype("float32"))[0]
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert labels == names
    assert (mask == z.argmax(-1)).mean() == 1.0 and len(np.unique(mask)) > 1
    np.testing.assert_allclose(conf, probs, atol=1e-5)


def test_metadata_replaced_not_stacked_and_model_unchanged(tmp_path):
    model = _colour_classifier()
    path = str(tmp_path / "p.tflite")
    export(model, path)
    plain = open(path, "rb").read()
    once = add_metadata(plain, labels=COLOURS, name="a")
    twice = add_metadata(once, labels=COLOURS, name="b")
    assert len(twice) == len(once) and read_metadata(twice)["name"] == "b"      # replaced, not stacked
    assert read_metadata(add_metadata(once, labels=["r", "g", "b"]))["outputs"][0]["labels"] == ["r", "g", "b"]
    assert add_metadata(plain, labels=COLOURS, name="a") == once          # deterministic bytes
    with open(tmp_path / "m.tflite", "wb") as f:
        f.write(twice)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(run_tflite(str(tmp_path / "m.tflite"), x), run_tflite(path, x))


def test_bad_metadata_arguments_raise_clear_errors(tmp_path):
    model = _colour_classifier()
    path = str(tmp_path / "p.tflite")
    export(model, path)
    with pytest.raises(ValueError, match="2 labels given, but the model's output has 3 classes"):
        add_metadata(path, labels=["a", "b"])
    with pytest.raises(ValueError, match="kind must be one of"):
        add_metadata(path, kind="pose")
    with pytest.raises(ValueError, match="TFLite_Detection_PostProcess"):
        add_metadata(path, kind="detector")
    with pytest.raises(ValueError, match="labels file not found"):
        add_metadata(path, labels=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="mean and std"):
        add_metadata(path, mean=[1, 2], std=[1, 2])
    with pytest.raises(ValueError, match="no TFLite metadata"):
        read_metadata(path)
    with pytest.raises(ValueError, match="target must be"):
        export(model, path, target="gpu")
    with pytest.raises(ValueError, match="target='edgetpu' means int8"):
        export(model, path, "float16", target="edgetpu")


def test_labels_file_and_imagenet_defaults(tmp_path):
    from keras_mobile.applications import MobileNetV3Small
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    path = str(tmp_path / "p.tflite")
    export(_colour_classifier(), path, labels=str(labels))
    assert read_metadata(path)["outputs"][0]["labels"] == COLOURS
    names = imagenet_labels()
    assert len(names) == 1000 and names[:2] == ["tench", "goldfish"]
    raw = model_defaults(MobileNetV3Small(weights=None, input_shape=(32, 32, 3)))
    assert raw["labels"] == "imagenet" and "mean" not in raw        # raw pixels: mean 0, std 1
    normed = model_defaults(MobileNetV3Small(weights=None, input_shape=(32, 32, 3), include_preprocessing=False,
                                             classes=10))
    assert "labels" not in normed
    np.testing.assert_allclose(normed["mean"], [255 * 0.485, 255 * 0.456, 255 * 0.406], rtol=1e-6)


def _hard_swish_net(size=16):
    from keras_mobile.layers.activations import apply_activation
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 64.0, offset=-2)(inp)
    for i in range(3):
        x = keras.layers.Conv2D(8, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.Activation("hard_silu", name=f"act{i}")(x)
    x = apply_activation(keras.layers.Conv2D(8, 1, name="conv3")(x), "gelu", "gelu")
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4)(x), name="hs_net")


def test_edgetpu_target_lowers_hard_swish_gelu_layernorm_and_maps_every_op(tmp_path):
    keras.utils.set_random_seed(0)
    model = _hard_swish_net()
    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 255, (32, 16, 16, 3)).astype("float32")
    plain = export(model, str(tmp_path / "plain.tflite"), "int8", representative_data=calib,
                   num_calibration_steps=32, progress=False, float_islands=False)   # all int8 but NEG
    tpu = export(model, str(tmp_path / "tpu.tflite"), target="edgetpu", representative_data=calib,
                 num_calibration_steps=32, progress=False)
    before, after = edgetpu.analyze(plain.path), tpu.extra["edgetpu"]
    # the default int8 export already lowers hard-swish (for XNNPACK); GELU and LayerNorm stay
    assert "HARD_SWISH" not in plain.ops and plain.ops["GELU"] == 1
    assert [op for _, op, _ in plain.float_ops] == ["NEG"]          # Keras' LayerNorm lowering
    assert not {"HARD_SWISH", "GELU", "NEG"} & set(tpu.ops)
    assert before.first_cpu_op.op == "GELU" and after.first_cpu_op is None
    assert after.op_versions and not [v for v in after.op_versions if v.status == "rejected"]
    assert after.mapped_fraction == 1.0 > before.mapped_fraction
    assert tpu.fully_integer and [t.dtype for t in tpu.inputs + tpu.outputs] == ["uint8", "uint8"]
    assert all(k in tpu.extra["lowering"] for k in ("hard-swish x3", "GELU x1", "LayerNorm x1"))
    # the lowered int8 graph still computes the Keras model's function
    x = rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32")
    want, got = model.predict(x, verbose=0).ravel(), run_tflite(tpu.path, x).ravel()
    cosine = want @ got / np.linalg.norm(want) / np.linalg.norm(got)
    assert cosine > 0.99 and np.abs(got - want).max() < 0.1 * np.ptp(want)


@pytest.mark.slow
def test_edgetpu_target_mobilenetv3_small_maps_more_ops(tmp_path):
    from keras_mobile.applications import MobileNetV3Small
    model = MobileNetV3Small(weights=None, input_shape=(96, 96, 3))
    calib = np.random.default_rng(0).uniform(0, 255, (8, 96, 96, 3)).astype("float32")
    plain = export(model, str(tmp_path / "plain.tflite"), "int8", representative_data=calib,
                   num_calibration_steps=8, progress=False)
    tpu = export(model, str(tmp_path / "tpu.tflite"), target="edgetpu", representative_data=calib,
                 num_calibration_steps=8, progress=False, metadata=True)
    before, after = edgetpu.analyze(plain.path), tpu.extra["edgetpu"]
    # the default int8 file (hard-swish lowered) maps up to the DEQUANTIZE of its float softmax tail
    assert before.first_cpu_op.op == "DEQUANTIZE" and before.mapped_fraction > 0.9
    assert after.mapped_ops > before.mapped_ops and after.mapped_fraction == 1.0
    assert not [v for v in after.op_versions if v.status == "rejected"]
    assert read_metadata(tpu.path)["outputs"][0]["labels"][:1] == ["tench"]


def test_edgetpu_export_of_a_package_model_has_no_rejected_op_version(tmp_path):
    """MobileNetV3Small (hard-swish, squeeze-excite) at 32 px: every op maps, and every op version is one
    a published edgetpu_compiler 16.0 compile mapped (edgetpu.ACCEPTED_VERSIONS), so all are "ok"."""
    from keras_mobile.applications import MobileNetV3Small
    model = MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    calib = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    tpu = export(model, str(tmp_path / "tpu.tflite"), target="edgetpu", representative_data=calib,
                 num_calibration_steps=8, progress=False)
    report = tpu.extra["edgetpu"]
    assert not report.fatal and report.mapped_fraction == 1.0
    versions = {v.op: v for v in report.op_versions}
    assert versions["CONV_2D"].version < edgetpu.REJECTED_VERSIONS["CONV_2D"][0]
    assert {"MUL", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= set(versions)
    assert {op: v.status for op, v in versions.items() if v.status != "ok"} == {}
    assert "not verified" not in str(report)


def test_cli_export_metadata_and_labels(tmp_path, capsys):
    from keras_mobile.cli import main
    labels = tmp_path / "l.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(5)))
    out = tmp_path / "m.tflite"
    assert main(["export", "MobileNetV3Small", "--image-size", "32", "--classes", "5", "--labels", str(labels),
                 "--out", str(out)]) == 0
    assert "TFLITE_METADATA" in capsys.readouterr().out
    meta = read_metadata(str(out))
    assert meta["name"] == "MobileNetV3Small" and meta["outputs"][0]["labels"][4] == "class 4"
