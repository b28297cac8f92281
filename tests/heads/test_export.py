"""Heads exported through keras_mobile.tflite.export: uint8 IO, the report, target="edgetpu"."""
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from keras_mobile.tflite import run_tflite  # noqa: E402
from tests.heads.tiny import tiny_segmenter, tiny_ssdlite  # noqa: E402


def _images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_detector_int8_has_uint8_input_float_detections_close_to_keras(tmp_path):
    det = tiny_ssdlite()
    x = _images(16, 64)
    report = det.export_tflite(str(tmp_path / "det.tflite"), quantization="int8", representative_data=x,
                               score_threshold=0.0, max_detections=10, progress=False)
    assert report.extra["quantization"] == "int8" and report.ops["TFLite_Detection_PostProcess"] == 1
    (inp,) = report.inputs
    assert (inp.dtype, inp.scale, inp.zero_point) == ("uint8", 1.0, 0)      # raw camera bytes
    assert [o.dtype for o in report.outputs] == ["float32"] * 4
    boxes, classes, scores, count = run_tflite(report.path, x[:4])
    ref = det.predict_detections(x[:4], score_threshold=0.0, max_detections=10)
    np.testing.assert_array_equal(count, ref["num_detections"])
    assert np.abs(scores - ref["scores"]).max() <= 0.02                   # int8 head, same NMS
    assert np.mean(classes[:, 0] == ref["classes"][:, 0]) >= 0.75


def test_detector_edgetpu_target_keeps_float_detections_and_checks_output_dtype(tmp_path):
    det = tiny_ssdlite()
    x = _images(16, 64)
    report = det.export_tflite(str(tmp_path / "tpu.tflite"), representative_data=x, target="edgetpu",
                               score_threshold=0.0, max_detections=10, progress=False)
    assert report.extra["target"] == "edgetpu" and "Edge TPU" in str(report.extra["edgetpu"])
    assert report.inputs[0].dtype == "uint8"
    assert [o.dtype for o in report.outputs] == ["float32"] * 4           # class ids, count exact
    boxes, classes, scores, count = run_tflite(report.path, x[:2])
    assert np.all(classes == np.round(classes)) and np.all(count == 10)
    with pytest.raises(ValueError, match="TFLite_Detection_PostProcess outputs are float32"):
        det.export_tflite(str(tmp_path / "bad.tflite"), representative_data=x, quantization="int8",
                          output_dtype="uint8")
    raw = det.export_tflite(str(tmp_path / "raw.tflite"), representative_data=x, quantization="int8",
                            output_dtype="uint8", postprocess_op=False, progress=False)
    assert [o.dtype for o in raw.outputs] == ["uint8", "uint8"] and "TFLite_Detection_PostProcess" not in raw.ops
    codes, logits = run_tflite(raw.path, x[:2])
    keras_out = det(x[:2], training=False)
    assert np.abs(codes - keras_out["boxes"].numpy()).max() <= 0.1
    assert np.abs(logits - keras_out["classes"].numpy()).max() <= 0.1


def test_segmenter_int8_and_edgetpu_exports_agree_with_keras(tmp_path):
    seg = tiny_segmenter()
    x = _images(16, 48)
    ref = np.argmax(seg(x[:4], training=False).numpy(), -1)
    for kwargs in ({"quantization": "int8"}, {"target": "edgetpu"}):
        report = seg.export_tflite(str(tmp_path / "seg.tflite"), representative_data=x, progress=False,
                                   **kwargs)
        assert report.inputs[0].dtype == "uint8"
        assert report.outputs[0].dtype == ("uint8" if "target" in kwargs else "float32")
        agree = np.mean(np.argmax(run_tflite(report.path, x[:4]), -1) == ref)
        assert agree >= 0.95, (kwargs, agree)
    assert report.extra["target"] == "edgetpu" and report.fully_integer
    with pytest.raises(TypeError):
        seg.export_tflite(str(tmp_path / "old.tflite"), quantize="int8")    # the package's names only


def test_detector_concatenations_stay_inside_xnnpack(tmp_path):
    """A 320 px SSDLite predicts on 6 maps; XNNPACK delegates a CONCATENATION of at most 5
    inputs, so the box/class concatenations are grouped (a single 6-input concat ran on the
    reference kernel, float32 and int8 alike)."""
    from keras_mobile.heads import SSDLite
    from keras_mobile.tflite.inspect import xnnpack_partitions
    det = SSDLite("MobileNetV3Small", num_classes=3, input_shape=(320, 320, 3))
    assert det.anchors.shape[0] == 2156          # 20x20 ... 1x1: six maps
    report = det.export_tflite(str(tmp_path / "det.tflite"), postprocess_op=False, progress=False)
    partitions, outside = xnnpack_partitions(report.path)
    assert (partitions, outside) == (1, [])
    x = _images(2, 320)
    codes, logits = run_tflite(report.path, x)
    ref = det(x, training=False)
    assert codes.shape == (2, 2156, 4) and logits.shape == (2, 2156, 3)
    np.testing.assert_allclose(codes, ref["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(logits, ref["classes"].numpy(), atol=1e-3)
