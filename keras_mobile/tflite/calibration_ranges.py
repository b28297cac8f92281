"""Int8 PTQ calibration with the ranges tensors really take.

LiteRT's calibrator (the `representative_dataset` pass of TFLiteConverter, TensorFlow 2.21) records
an op's inputs after the op has run. An ADD, SUB or MUL whose output the interpreter writes into the
buffer of an input used nowhere else (in place) has by then overwritten that input, so the input's
recorded range is the union of its own and the op's output range. A residual branch scaled down
by a LayerScale (EfficientFormer: |branch| <= 0.14) is quantized with the range of the residual
ADD it feeds ([-0.085, 4.25]): its int8 values are 0 or +-1 step.

`calibrate_with_true_ranges(converter)` makes a converter replace each recorded range by the min/max
the tensor takes when the calibrated model runs again over the same samples in LiteRT with every
tensor kept (no buffer shared), before the quantizer reads them. `export(...,
true_calibration_ranges=True)` uses it; it is not the default because it did not pay: on the trained
EfficientFormerL1 of benchmarks/int8_agreement.py the branches' own error fell (relative RMSE of
ls1's product 0.55 -> 0.34) but agreement with Keras fell too, 98.89 % -> 98.54 % (2,880 inputs;
benchmarks/results/int8_agreement.md). The residual stream's error there is set by clipping at the
stem (noisy held-out inputs beyond the calibration images' range); that the exact ranges, without the
accidental slack, clip those inputs more is the presumed cause, not measured.
"""
import contextlib
import functools

import numpy as np

from keras_mobile.tflite.metadata_format import _schema

TENSORFLOW_CHECKED = "2.21.0"   # the TensorFlow version whose private converter API is used below


def true_ranges(calibrated, dataset_gen, quantile=1.0):
    """`calibrated` (a float .tflite's bytes carrying calibration min/max per tensor) with each
    recorded min/max replaced by the tensor's min/max over the samples of `dataset_gen` (a function
    returning an iterable of [input arrays], as a converter's representative_dataset), measured with
    every tensor kept. quantile < 1: a tensor's max is that quantile of its per-sample maxima (its
    min the 1 - quantile of the per-sample minima), so the rarest samples clip instead of widening
    every step; the model's inputs keep their recorded range. Returns (bytes, number of tensors
    whose range changed)."""
    from keras_mobile.tflite.inspect import make_interpreter
    buf = bytearray(calibrated)
    recorded = _recorded_ranges(buf)
    it = make_interpreter(bytes(buf), delegates=False, preserve_all_tensors=True)
    inputs = it.get_input_details()
    model_inputs = {d["index"] for d in inputs}
    adjusted = [i for i in recorded if quantile >= 1.0 or i not in model_inputs]
    lo, hi = {i: [] for i in adjusted}, {i: [] for i in adjusted}
    for sample in dataset_gen():
        for detail, x in zip(inputs, sample):
            it.set_tensor(detail["index"], np.asarray(x, detail["dtype"]))
        it.invoke()
        for i in adjusted:
            t = it.get_tensor(i)
            lo[i].append(float(t.min()))
            hi[i].append(float(t.max()))
    changed = 0
    for i in adjusted:
        if not lo[i]:
            continue
        mins, maxs = recorded[i]
        new_lo, new_hi = float(np.quantile(lo[i], 1.0 - quantile)), float(np.quantile(hi[i], quantile))
        if mins[0] != new_lo or maxs[0] != new_hi:
            mins[0], maxs[0] = new_lo, new_hi          # views into `buf`: written in place
            changed += 1
    return bytes(buf), changed


def _recorded_ranges(buf):
    """{tensor index: (min view, max view)} of the main subgraph's float tensors with one recorded
    min/max each, as writable numpy views into the flatbuffer `buf` (a bytearray; no repacking,
    which is slow for big models)."""
    schema = _schema()
    sg = schema.Model.GetRootAs(buf, 0).Subgraphs(0)
    out = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        if t.Type() != schema.TensorType.FLOAT32 or q is None or q.MinLength() != 1 or q.MaxLength() != 1:
            continue
        out[i] = (q.MinAsNumpy(), q.MaxAsNumpy())
    return out


def calibrate_with_true_ranges(converter, quantile=1.0):
    """Makes an int8 TFLiteConverter quantize with the true ranges (`true_ranges`) instead of the
    ones its calibrator recorded. Returns the converter; `converter.true_range_changes` holds how many
    tensors' ranges were corrected after `convert()`."""
    # private API, checked on TensorFlow 2.21.0: TFLiteConverterBase._quantize calibrates with
    # optimize.calibrator.Calibrator(...).calibrate(representative_dataset.input_gen) and hands the
    # calibrated bytes to the MLIR quantizer
    quantize = converter._quantize
    converter.true_range_changes = None

    @functools.wraps(quantize)
    def quantize_with_true_ranges(*args, **kwargs):
        with _calibrator_returning_true_ranges(converter, quantile):
            return quantize(*args, **kwargs)

    converter._quantize = quantize_with_true_ranges
    return converter


@contextlib.contextmanager
def _calibrator_returning_true_ranges(converter, quantile):
    from tensorflow.lite.python.optimize import calibrator
    original = calibrator.Calibrator.calibrate

    def calibrate(self, dataset_gen):
        data, converter.true_range_changes = true_ranges(original(self, dataset_gen), dataset_gen, quantile)
        return data

    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        calibrator.Calibrator.calibrate = original
