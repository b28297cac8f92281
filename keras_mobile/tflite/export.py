"""Keras model -> .tflite: float32, float16, dynamic-range or full-integer int8.

The engine is `tf.lite.TFLiteConverter`. The model is traced with a fixed batch size (1 by
default) so the file has static shapes: no SHAPE/PACK ops for a dynamic batch, which phones
and the EdgeTPU both want. The file is written to a temp name and renamed into place, then
read back with the LiteRT interpreter for the report.
"""
import contextlib
import numbers
import os
import time

import numpy as np

from keras_mobile.files import write_atomic
from keras_mobile.progress import progress_bar
from keras_mobile.tflite import representative
from keras_mobile.tflite.inspect import XnnpackFiles, inspect

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "uint8", "int8")
TARGETS = (None, "edgetpu")


def check_backend():
    """TFLiteConverter traces the model as a TensorFlow graph: only the TensorFlow backend works."""
    import keras
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"keras_mobile.tflite needs the TensorFlow backend; this process runs Keras on {backend!r}. "
            "Save the model (model.save('m.keras')) and export it in a process started with "
            "KERAS_BACKEND=tensorflow (layer names and weights are the same on every backend).")


def resolve_settings(quantization=None, target=None, input_dtype=None, output_dtype=None, batch_size=1):
    """(quantization, input_dtype, output_dtype) that `export` uses for these arguments.

    The one place the defaults and the target rule are decided (the CLI asks it too): float32 by
    default, uint8 input for int8; target="edgetpu" means int8 with uint8 input, uint8 (or
    float32, dequantized on the CPU) output and batch 1. Raises ValueError for a bad target or a
    combination the target does not allow."""
    if target not in TARGETS:
        raise ValueError(f"target must be None or 'edgetpu', got {target!r}")
    if target == "edgetpu":
        if quantization not in (None, "int8") or batch_size != 1 or input_dtype not in (None, "uint8") \
                or output_dtype not in (None, "uint8", "float32"):
            raise ValueError("target='edgetpu' means int8 with uint8 input, uint8 (or float32, dequantized "
                             "on the CPU) output and batch_size=1; leave quantization, input_dtype and "
                             "batch_size at their defaults")
        return "int8", "uint8", output_dtype or "uint8"
    quantization = quantization or "float32"
    return (quantization, input_dtype or ("uint8" if quantization == "int8" else "float32"),
            output_dtype or "float32")


CLE_SETTINGS = (True, False, "weights", "activations")
CLE_DEFAULT = False     # export's cross_layer_equalization (opt-in: see its docstring for the numbers)


def _check(model, quantization, representative_data, input_dtype, output_dtype, true_calibration_ranges=False,
           cross_layer_equalization=False):
    check_backend()
    _range_quantile(true_calibration_ranges)
    if not (isinstance(cross_layer_equalization, bool) or cross_layer_equalization in CLE_SETTINGS[2:]):
        raise ValueError(f"cross_layer_equalization must be one of {CLE_SETTINGS}, got {cross_layer_equalization!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    qat = _is_qat(model)
    if quantization == "int8" and representative_data is None and not qat:
        raise ValueError("quantization='int8' needs representative_data (a few hundred typical "
                         "inputs: an array, an iterable of batches, a tf.data.Dataset or an image folder)")
    for name, value in (("true_calibration_ranges", true_calibration_ranges),
                        ("cross_layer_equalization", cross_layer_equalization)):
        if value and quantization != "int8":
            raise ValueError(f"{name}={value!r} is a step of int8 calibration; quantization={quantization!r} "
                             f"calibrates nothing (use quantization='int8' with representative_data)")
        if value and qat:
            raise ValueError(f"{name}={value!r} is for post-training int8: {model.name} is a quantize_model (QAT) "
                             f"model, whose fake-quant ranges are its int8 scales")
    for name, value in (("input_dtype", input_dtype), ("output_dtype", output_dtype)):
        if value not in IO_DTYPES:
            raise ValueError(f"{name} must be one of {IO_DTYPES}, got {value!r}")
        if value != "float32" and quantization != "int8":
            raise ValueError(f"{name}={value!r} needs quantization='int8' (integer IO of a float model "
                             f"has no scale to use)")
    if len(model.inputs) != 1:
        raise ValueError(f"export supports single-input models; {model.name} has {len(model.inputs)}")


def _xnnpack_refusal(data, xnnpack):
    """None when LiteRT's XNNPACK delegate prepares the .tflite bytes `data` (opened by `xnnpack`, an
    `inspect.XnnpackFiles`), else its message (other failures to open the file are left to the steps
    that follow)."""
    try:
        xnnpack(data)
    except RuntimeError as e:
        message = " ".join(str(e).replace("runtimeNode", "runtime. Node").split())    # LiteRT joins two lines
        return message if "XNNPACK" in message else None
    return None


def _refusal_error(model, refused, cle):
    return ValueError(f"{model.name}: LiteRT's XNNPACK delegate cannot prepare the int8 file ({refused}), "
                      f"with cross_layer_equalization={cle!r}: probably an int8 scale ratio (input x weight / "
                      f"output) beyond its kernels; export quantization='dynamic' or 'float32', or check the "
                      f"calibration data")


def _is_qat(model):
    from keras_mobile.tflite.fake_quant import is_qat_model
    return is_qat_model(model)


def fixed_batch(model, batch_size=1):
    """The same model (shared weights) behind an input of static shape (batch_size, H, W, C)."""
    import keras
    shape = (batch_size,) + tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"export needs a static input shape, {model.name} takes {shape}; rebuild it "
                         f"with input_shape=(H, W, C)")
    inp = keras.Input(batch_shape=shape, name="image")
    return keras.Model(inp, model(inp, training=False), name=model.name), shape


def converter_for(model, quantization="float32", representative_data=None, input_dtype="float32",
                  output_dtype="float32", num_calibration_steps=100, batch_size=1, progress=True,
                  drop_calibration_outliers=True, true_calibration_ranges=False):
    """A configured TFLiteConverter (exposed so heads/QAT can add options before converting).

    int8 calibration leaves out the rare samples (at most 5 %) that push some activation beyond
    10x its usual peak (`representative.outlier_samples`): min/max calibration would otherwise size
    the int8 scales by them and crush every typical input to a few steps. Needs 20+ samples.
    true_calibration_ranges: quantize with each tensor's own min/max (`calibration_ranges`: LiteRT's
    calibrator records an in-place ADD/SUB/MUL's input with the op's output range), or with a
    quantile of its per-sample extremes; off by default (see `export`).
    `representative_data` takes what `export` does, or the `representative.Samples` it already read."""
    _check(model, quantization, representative_data, input_dtype, output_dtype, true_calibration_ranges)
    return _converter(model, quantization, representative_data, input_dtype, output_dtype, num_calibration_steps,
                      batch_size, progress, drop_calibration_outliers, true_calibration_ranges)


def _converter(model, quantization, representative_data, input_dtype, output_dtype, num_calibration_steps,
               batch_size, progress, drop_calibration_outliers, true_calibration_ranges):
    """`converter_for` with arguments already checked (`export` checks them once)."""
    import tensorflow as tf
    range_quantile = _range_quantile(true_calibration_ranges)
    static, shape = fixed_batch(model, batch_size)
    if quantization == "int8" and representative_data is not None:   # checked before the slow conversion
        representative_data = representative.read(representative_data, shape[1:], num_calibration_steps, model)
    conv = tf.lite.TFLiteConverter.from_keras_model(static)
    if quantization == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.inference_input_type = getattr(tf, input_dtype)
        conv.inference_output_type = getattr(tf, output_dtype)
        if representative_data is None:   # QAT model: its fake-quant ranges are the int8 scales
            return conv                   # (INT8-only ops would demand a representative dataset)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        chosen = list(representative_data)
        if drop_calibration_outliers and len(chosen) >= 20:
            dropped = set(representative.outlier_samples(_float_bytes(model), chosen))
            chosen = [s for i, s in enumerate(chosen) if i not in dropped]

        def calibration():
            for i, s in enumerate(progress_bar(chosen, progress, total=len(chosen), desc="calibrating",
                                               unit="sample", leave=False)):
                if i == 0 and input_dtype == "uint8":
                    s = _pin_pixel_range(s)
                yield [np.repeat(s, batch_size, axis=0)]
        conv.representative_dataset = calibration
        if range_quantile is not None:
            from keras_mobile.tflite.calibration_ranges import calibrate_with_true_ranges
            calibrate_with_true_ranges(conv, range_quantile)
    return conv


def _range_quantile(true_calibration_ranges):
    """The per-sample quantile that `true_calibration_ranges` asks for: None (off), 1.0 (True: the
    plain min/max) or q in (0, 1], any real number (np.float32 too); ValueError for anything else."""
    if true_calibration_ranges is None or true_calibration_ranges is False:
        return None
    if true_calibration_ranges is True:
        return 1.0
    if isinstance(true_calibration_ranges, numbers.Real) and not isinstance(true_calibration_ranges, bool) \
            and 0 < true_calibration_ranges <= 1:
        return float(true_calibration_ranges)
    raise ValueError(f"true_calibration_ranges must be True, False or a quantile in (0, 1], "
                     f"got {true_calibration_ranges!r}")


def _float_bytes(model):
    """The float32 .tflite of `model` at batch 1 (to observe its activations in LiteRT)."""
    conv = converter_for(model, progress=False)       # its defaults: float32, batch 1 (one place states them)
    conv.allow_custom_ops = True        # a detector's post-process op: LiteRT runs it, it is not calibrated
    return convert_quietly(conv)


def _pin_pixel_range(sample):
    """A uint8 input of pixels should quantize with scale 1, zero point 0 (Android pipelines such as
    MediaPipe feed raw camera bytes to a uint8 input): calibration takes the input range from the
    observed min/max, so one pixel of the first sample is set to 0 and one to 255 when the data
    look like pixels ([0, 255], not already normalised)."""
    if sample.min() >= 0 and 1.5 < sample.max() <= 255:
        sample = sample.copy()
        sample.reshape(-1)[:2] = (0.0, 255.0)
    return sample


def convert_quietly(conv):
    """`conv.convert()` without Keras' printed signature (see `_keras_messages_to_absl`)."""
    with _keras_messages_to_absl():
        return conv.convert()


@contextlib.contextmanager
def _keras_messages_to_absl():
    """The converter saves the model through Keras' ExportArchive, which prints its whole signature
    (hundreds of TensorSpec lines) with `io_utils.print_msg`; with Keras' interactive logging off
    that goes to absl logging at INFO instead, shown only when absl's verbosity asks for it."""
    import keras
    was = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if was:
            keras.config.enable_interactive_logging()


def export(model, path, quantization=None, representative_data=None, input_dtype=None,
           output_dtype=None, num_calibration_steps=100, batch_size=1, metadata=None, labels=None,
           target=None, progress=True, allow_custom_ops=False, drop_calibration_outliers=True,
           float_islands=True, true_calibration_ranges=False, cross_layer_equalization=CLE_DEFAULT):
    """Exports `model` to `path` and returns an inspection report (`TFLiteReport`).

    Args:
        model: a single-input Keras model with a static input shape.
        path: output .tflite file (written atomically).
        quantization: "float32", "float16" (weights), "dynamic" (int8 weights, float compute) or
            "int8" (full integer: every op int8; only QUANTIZE/DEQUANTIZE at the edges when the
            IO is float). Default: "float32" ("int8" with target="edgetpu").
        representative_data: calibration inputs for int8 in the model's own input units (raw
            [0, 255] pixels for keras_mobile models): an array, an iterable of batches or
            (images, labels) pairs, a tf.data.Dataset, or a folder of images. Not needed for
            a `quantize_model` (QAT) model, whose fake-quant ranges give the int8 scales. While
            converting, weights of full and depthwise convs and dense layers that read an input
            channel which is zero on every calibration sample are set to 0 (restored after): they
            add nothing, but a huge one (MobileOne's fused identity branch on a dead channel) would
            set its output channel's int8 weight scale (and a depthwise channel's bias step, input
            scale x weight scale, with it); those of 1x1 convs and dense layers that read a
            channel constant on every sample (within 1 % of an int8 step) are folded into the bias
            (`tflite.dead_inputs`).
        input_dtype: int8 only: "uint8" (default: camera pixels map exactly), "int8" or "float32".
        output_dtype: int8 only: "float32" (default), "uint8" or "int8".
        num_calibration_steps: calibration samples used.
        batch_size: the file's fixed batch size.
        metadata: TFLite metadata for Android (MediaPipe Tasks, Task Library): True for the
            defaults (name, raw-pixel normalisation, labels; ImageNet names for a 1000-class
            package model) or a dict of `keras_mobile.tflite.metadata.add_metadata` arguments
            (name, description, labels, mean, std, kind, ...) over those defaults.
        labels: class names (list, text file or "imagenet"); implies metadata.
        target: None, or "edgetpu": full int8 with uint8 input and output (output_dtype="float32"
            keeps a float output, dequantized on the CPU, as detectors need), batch 1, Edge TPU-
            friendly lowerings (`edgetpu_lowering`), and the offline Edge TPU analysis in
            `report.extra["edgetpu"]`.
        allow_custom_ops: keep TensorFlow functions that declare a TFLite custom op (the
            detector heads' TFLite_Detection_PostProcess) as that op.
        drop_calibration_outliers: int8 PTQ calibrates without the rare samples (at most 5 %)
            that drive some activation past 10x its usual peak (see `converter_for`); False
            calibrates plain min/max over every sample.
        true_calibration_ranges: int8 PTQ only (ValueError for another quantization or a QAT
            model): quantizes each tensor with the min/max it takes on the calibration samples
            (`tflite.calibration_ranges`) instead of the range LiteRT's calibrator records, which
            for the input of an in-place ADD/SUB/MUL is the union with the op's output range (a
            LayerScale'd EfficientFormer branch gets its residual's range).
            Off by default: on the trained EfficientFormerL1 (digits) agreement with Keras fell
            from 98.89 % to 98.54 % (benchmarks/results/int8_agreement.md), presumably because the
            exact ranges, without the recorded slack, clip noisy inputs more (not measured).
            A number q in (0, 1) sizes each tensor by the q quantile of its per-sample maxima
            (minima: 1 - q), so the rarest samples clip (the model's input keeps its range); on
            two trained hard-digits MobileNetV3Small 0.9 gave 96.53 / 95.45 % agreement vs 95.15 /
            95.52 % by default (benchmarks/results/int8_levers_*.md): not a reliable gain.
        float_islands: int8 PTQ (no target): each int8 op that LiteRT's XNNPACK delegate refuses
            (no int8 kernel: GELU, SOFTMAX, AVERAGE_POOL_2D, RSQRT, ...; BATCH_MATMUL with a
            second-input zero-point; ADD/MUL beyond XNNPACK's scale ratios) runs as DEQUANTIZE
            -> float op -> QUANTIZE, so XNNPACK takes the whole graph in one partition instead of
            handing those ops to LiteRT's reference kernels between partitions. Each island is
            listed in `report.extra["float_islands"]` with its reason. False keeps the
            converter's int8 ops (a fully integer graph, e.g. for other int8 runtimes).
        cross_layer_equalization: int8 PTQ only (ValueError otherwise): while converting, rescale the
            channels between two layers joined by ReLU / padding / pooling only (exact in float,
            weights restored after; `tflite.equalization`), so one huge weight no longer sets
            an int8 weight scale. "weights": DFQ's data-free choice (sqrt of the ratio of the two
            layers' weight ranges); "activations": the tensor's per-channel peak on the
            calibration samples in place of the producer's weight range; True: "weights".
            Off by default: it does not always help; but when LiteRT's XNNPACK delegate cannot
            prepare the int8 file made without it (an int8 scale ratio beyond its kernels), the
            export converts again with "activations" and says so in the report. Agreement with Keras top-1 of the int8 file,
            off / "weights" / "activations" (digits, 2,880 held-out images; trained models of
            benchmarks/int8_agreement.py): with constant-input folding (the default since),
            MobileOneS0 (trained at peak lr 0.05, the recipe before 0.02) seed 0 97.29 / 97.40 / 97.81 %,
            seed 1 99.69 / 99.76 / 99.65 %
            (results/int8_agreement_cle_fold.md); before it, seed 0 94.76 / 94.13 / 93.06 %, seed 1
            43.26 / 97.99 / 99.55 %, a MobileOneS0 of the old training path 99.72 / 99.44 / 99.41 %,
            MobileNetV3Small 99.79 / 99.79 / 99.62 %, MobileNetV4ConvS 99.55 / 99.83 / 99.65 %,
            EfficientFormerL1 (narrow) 98.89 / 98.99 / 98.82 % (results/int8_agreement_cle.md,
            _oldpath.md; folding changes none of the last four). A poorly trained MobileOneS0 (seed
            2) whose default file XNNPACK refused (a depthwise requantization scale of 1,460: fused
            weights on stem channels that are zero on every input) prepared with it
            (results/int8_agreement_cle_fold.md); with those weights zeroed it prepares as converted
            (results/int8_agreement_mobileone_lr005.md).
    """
    quantization, input_dtype, output_dtype = resolve_settings(quantization, target, input_dtype, output_dtype,
                                                               batch_size)
    _check(model, quantization, representative_data, input_dtype, output_dtype, true_calibration_ranges,
           cross_layer_equalization)
    lowering, original = [], model
    if target == "edgetpu":
        from keras_mobile.tflite.edgetpu_lowering import edgetpu_friendly
        model, lowering = edgetpu_friendly(model)
    ptq = quantization == "int8" and not _is_qat(model)
    if ptq and target is None:
        from keras_mobile.tflite.edgetpu_lowering import xnnpack_int8_friendly
        model, lowering = xnnpack_int8_friendly(model)
    if labels is not None:
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata["labels"] = labels
    metadata = None if metadata is False else metadata
    t0 = time.time()
    if ptq and representative_data is not None:     # read once: converter_for calibrates on the same Samples
        representative_data = representative.read(representative_data, fixed_batch(model, batch_size)[1][1:],
                                                  num_calibration_steps, model)

    def convert(cle):
        dead = constant = equalize = contextlib.nullcontext([])
        if ptq and representative_data is not None:
            from keras_mobile.tflite.dead_inputs import constant_inputs_folded, dead_inputs_zeroed
            dead = dead_inputs_zeroed(model, representative_data)
            constant = constant_inputs_folded(model, representative_data)
        if ptq and cle:
            from keras_mobile.tflite.equalization import equalized
            equalize = equalized(model, representative_data if cle == "activations" else None)
        # CLE after the zeroing and folding: a dead or constant channel's weights stay 0
        with dead as zeroed, constant as folded, equalize as pairs:
            conv = _converter(model, quantization, representative_data, input_dtype, output_dtype,
                              num_calibration_steps, batch_size, progress, drop_calibration_outliers,
                              true_calibration_ranges)
            conv.allow_custom_ops = allow_custom_ops
            return convert_quietly(conv), conv, zeroed, folded, pairs

    cle = "weights" if cross_layer_equalization is True else cross_layer_equalization
    data, conv, zeroed, folded, equalized_pairs = convert(cle)
    xnnpack = XnnpackFiles()        # one interpreter for each bytes checked, rewritten and reported
    refused = _xnnpack_refusal(data, xnnpack) if ptq and target is None else None
    if refused and not cle:
        # a channel whose input x weight / output int8 scale ratio is beyond XNNPACK's kernels (a
        # trained MobileOneS0: 1,460 at a depthwise conv reading dead stem channels, before their weights were zeroed)
        cle = "activations"
        data, conv, zeroed, folded, equalized_pairs = convert(cle)
        lowering.append(f"XNNPACK could not prepare the int8 file ({refused}): converted again with "
                        f"cross-layer equalization, which it could")
        refused = _xnnpack_refusal(data, xnnpack)
    if refused:
        raise _refusal_error(model, refused, cle)
    lowering += [f"weights reading input channels that are zero on every calibration sample set to 0 "
                 f"({', '.join(zeroed)})"] * bool(zeroed)
    lowering += [f"weights reading input channels that are constant on every calibration sample (within 1 % of an "
                 f"int8 step) folded into the bias ({', '.join(folded)})"] * bool(folded)
    by = "calibration peaks" if cle == "activations" else "weight ranges (DFQ)"
    lowering += [f"cross-layer equalization by {by} rescaled the channels between {len(equalized_pairs)} layer "
                 f"pairs, exact in float ({', '.join(equalized_pairs)})"] * bool(equalized_pairs)
    corrected = getattr(conv, "true_range_changes", None)
    q = _range_quantile(true_calibration_ranges)
    if q is not None and q < 1:
        note = (f"calibration ranges of {corrected} tensors set to the {q:g} quantile of their per-sample "
                f"extremes (true_calibration_ranges={q:g}: the rarest calibration samples clip instead of "
                f"widening every step)")
    else:
        note = (f"calibration ranges of {corrected} tensors set to their own min/max (LiteRT's calibrator "
                f"recorded in-place ADD/SUB/MUL inputs with the op's output range)")
    lowering += [note] * bool(corrected)
    hard_swish = ptq and target is None
    softmax_tail = quantization == "int8" and output_dtype == "float32"     # PTQ and QAT files alike
    make_islands = ptq and target is None and float_islands
    islands = []
    if hard_swish or softmax_tail or make_islands:
        from keras_mobile.tflite.float_islands import summary
        from keras_mobile.tflite.int8_rewrites import int8_rewrites
        data, reordered, tails, islands = int8_rewrites(data, softmax_tail, make_islands, hard_swish, xnnpack)
        lowering += [f"hard-swish x{reordered}: int8 MULs rewired to x*(relu6(x+3)/6), the same integers "
                     f"(XNNPACK runs this order faster)"] * bool(reordered)
        lowering += ["int8 SOFTMAX -> DEQUANTIZE -> float SOFTMAX (XNNPACK delegates it)"] * bool(tails)
        lowering += [summary(islands)] * bool(islands)
    seconds = time.time() - t0
    if target == "edgetpu":
        from keras_mobile.tflite.edgetpu import check_op_versions, rejected_versions_error
        rejected = rejected_versions_error(check_op_versions(data))
        if rejected:        # fail before writing: the compiler would not even load the file
            raise ValueError(f"{model.name}: {rejected}")
    if metadata is not None:
        from keras_mobile.tflite.metadata import add_metadata, model_defaults
        data = add_metadata(data, **{**model_defaults(original), **(metadata if isinstance(metadata, dict) else {})})
    refused = _xnnpack_refusal(data, xnnpack) if quantization == "int8" else None
    if refused:         # the file as written (after the rewrites, for every target): fail before writing it
        raise _refusal_error(model, refused, cle)
    write_atomic(path, data)
    report = inspect(path, quantized=quantization == "int8", xnnpack_interpreter=xnnpack(data))
    report.extra.update({"quantization": quantization, "convert_seconds": round(seconds, 2),
                         "batch_size": batch_size})
    if metadata is not None:
        report.extra["metadata"] = "TFLITE_METADATA (MediaPipe Tasks / Task Library)"
    if target == "edgetpu":
        from keras_mobile.tflite import edgetpu
        report.extra.update({"target": "edgetpu", "edgetpu": edgetpu.analyze(path)})
    if target == "edgetpu" or quantization == "int8":
        report.extra["lowering"] = "; ".join(lowering) or "none needed"
    if islands:
        report.extra["float_islands"] = [f"#{i} {op}: {why}" for i, op, why in islands]
    return report
