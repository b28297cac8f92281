"""tf.lite.TFLiteConverter for the heads (float32 or int8 with float I/O)."""

import numpy as np
import tensorflow as tf


def metadata_args(metadata, name, kind):
    """`add_metadata` arguments for a head export: None for no metadata (None/False), else the
    head's name and kind under the caller's dict (True: defaults only)."""
    if metadata is None or metadata is False:
        return None
    return {"name": name, "kind": kind, **(metadata if isinstance(metadata, dict) else {})}


def convert(fn, model, path, quantize=None, representative_images=None, allow_custom_ops=False,
            metadata=None):
    """Converts `fn` (a tf.function over `model`) and writes `path` atomically, with TFLite
    metadata when `metadata` is a dict of `add_metadata` arguments."""
    import tempfile

    import keras

    from keras_mobile.tflite.export import write_atomic
    # Through keras' ExportArchive (what from_keras_model does): variables are frozen (BN folds
    # into convs) and a nested experimental_implements function survives for the custom-op
    # legalisation.
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", fn)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        data = _convert(converter, quantize, representative_images, allow_custom_ops)
    if metadata is not None:
        from keras_mobile.tflite.metadata import add_metadata
        data = add_metadata(data, **metadata)
    write_atomic(path, data)
    return path


def _convert(converter, quantize, representative_images, allow_custom_ops):
    # freeze every variable (Keras 3 variables are otherwise kept as TFLite resource variables)
    converter.experimental_enable_resource_variables = False
    if allow_custom_ops:
        converter.allow_custom_ops = True
    if quantize == "int8":
        if representative_images is None:
            raise ValueError("int8 quantization needs representative_images")
        imgs = np.asarray(representative_images, np.float32)

        def rep():
            for im in imgs:
                yield [im[None]]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = rep
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif quantize is not None:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    return converter.convert()


def _output_order(d):
    name = d["name"]
    tail = name.rsplit(":", 1)[-1] if ":" in name else ""
    return (int(tail) if tail.isdigit() else 0, name, d["index"])


def run(path, images):
    """Run a .tflite file on float images [B, H, W, 3] one at a time; returns a list of output
    lists (ordered by output index)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_path=path)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = sorted(interp.get_output_details(), key=_output_order)
    results = []
    for im in np.asarray(images, np.float32):
        x = im[None]
        if inp["dtype"] != np.float32:
            s, z = inp["quantization"]
            x = np.clip(np.round(x / s + z), np.iinfo(inp["dtype"]).min,
                        np.iinfo(inp["dtype"]).max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        res = []
        for d in outs:
            y = interp.get_tensor(d["index"])
            if d["dtype"] != np.float32 and d["quantization"][0]:
                s, z = d["quantization"]
                y = (y.astype(np.float32) - z) * s
            res.append(y)
        results.append(res)
    return results
