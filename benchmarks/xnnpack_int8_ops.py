"""Which int8 ops LiteRT's XNNPACK delegate takes: tiny single-op .tflite files, one op at a time.

    python benchmarks/xnnpack_int8_ops.py [--out results/xnnpack_int8_ops]

Each case is a small Keras model around one op (a 1x1 conv feeds two-input ops, so both inputs
are activations), converted with the package's int8 PTQ converter (float input and output:
QUANTIZE/DEQUANTIZE at the edges, which XNNPACK delegates) and as float32. An op "is delegated"
when `inspect.xnnpack_partitions` finds it inside a delegate partition. Conditions that depend
on quantization parameters are probed by editing those parameters in the int8 flatbuffer
(delegation is decided from them when the interpreter is prepared, nothing runs):
BATCH_MATMUL's second-input zero-point, and the scale ratios of ADD, SUB (input/output) and MUL
(input1*input2/output) swept over powers of two. No timing: the answers do not depend on load.
The findings are the rules `keras_mobile/tflite/float_islands.py` uses.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _setup import host_line, write_result  # noqa: E402
from keras_mobile.analysis.hardware import describe_host  # noqa: E402

RATIOS = [2.0 ** e for e in (-18, -17, -16, -15, -11, -10, -9, -1, 0, 1, 7, 8, 9)]


def _cases():
    import keras
    from keras import layers, ops
    L = layers.Lambda

    def image(build, shape=(8, 8, 16)):
        x = keras.Input(shape)
        return keras.Model(x, build(x))

    def pair(op):
        # two activations of the same shape: the input and a 1x1 conv of it
        return image(lambda x: op(x, layers.Conv2D(16, 1)(x)))

    def tokens(build):
        x = keras.Input((16, 32))
        return keras.Model(x, build(x))

    return {
        "CONV_2D": image(lambda x: layers.Conv2D(16, 3, padding="same")(x)),
        "DEPTHWISE_CONV_2D": image(lambda x: layers.DepthwiseConv2D(3, padding="same")(x)),
        "FULLY_CONNECTED": tokens(lambda x: layers.Dense(32)(x)),
        "AVERAGE_POOL_2D": image(lambda x: layers.AveragePooling2D(3, 1, padding="same")(x)),
        "MAX_POOL_2D": image(lambda x: layers.MaxPooling2D(3, 1, padding="same")(x)),
        "MEAN": image(lambda x: layers.GlobalAveragePooling2D(keepdims=True)(x)),
        "ADD": pair(lambda a, b: layers.Add()([a, b])),
        "SUB": pair(lambda a, b: layers.Subtract()([a, b])),
        "MUL": pair(lambda a, b: layers.Multiply()([a, b])),
        "SOFTMAX": tokens(lambda x: layers.Softmax()(x)),
        "GELU": image(lambda x: layers.Activation("gelu")(x)),
        "HARD_SWISH": image(lambda x: L(lambda t: t * ops.relu6(t + 3.0) / 6.0)(x)),
        "LOGISTIC": image(lambda x: layers.Activation("sigmoid")(x)),
        "TANH": image(lambda x: layers.Activation("tanh")(x)),
        "RSQRT": image(lambda x: L(lambda t: ops.rsqrt(ops.relu(t) + 1.0))(x)),
        "SQUARED_DIFFERENCE": tokens(lambda x: layers.LayerNormalization()(x)),
        "BATCH_MATMUL": tokens(lambda x: L(lambda ab: ops.matmul(ab[0], ops.transpose(ab[1], (0, 2, 1))))(
            [x, layers.Dense(32)(x)])),
        "TRANSPOSE": tokens(lambda x: layers.Permute((2, 1))(x)),
        "CONCATENATION": pair(lambda a, b: layers.Concatenate()([a, b])),
        "PAD": image(lambda x: layers.ZeroPadding2D(1)(x)),
        "RESIZE_BILINEAR": image(lambda x: layers.UpSampling2D(2, interpolation="bilinear")(x)),
    }


def _convert(model, quantization):
    from keras_mobile.tflite.export import converter_for
    x = np.random.default_rng(0).standard_normal((16,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    return converter_for(model, quantization, x if quantization == "int8" else None, "float32", "float32", 16,
                         progress=False).convert()


def _delegation(data, op):
    """(present, delegated) of the ops named `op` in a .tflite (bytes): every such op inside a
    delegate partition counts as delegated."""
    from keras_mobile.tflite.inspect import make_interpreter, op_details, xnnpack_partitions
    names = [o["op_name"] for o in op_details(make_interpreter(data, delegates=False))]
    _, outside = xnnpack_partitions(data)
    return op in names, op in names and op not in {name for _, name in outside}


def _edited(data, op, edit):
    """`data` with `edit(subgraph, operator)` applied to the first operator named `op`."""
    from keras_mobile.tflite.flatbuffer import op_name, read_model, write_model
    model, _ = read_model(data)
    sg = model.subgraphs[0]
    edit(sg, next(o for o in sg.operators if op_name(model, o) == op))
    return write_model(model, len(data))


def _set_quant(sg, t, scale=None, zero_point=None):
    q = sg.tensors[int(t)].quantization
    if scale is not None:
        q.scale = [float(scale)]
    if zero_point is not None:
        q.zeroPoint = [int(zero_point)]


def _zero_point_probe(data):
    rows = []
    for zp in (None, 0, 10):
        edited = data if zp is None else _edited(data, "BATCH_MATMUL",
                                                lambda sg, o: _set_quant(sg, o.inputs[1], zero_point=zp))
        rows.append({"second_input_zero_point": "as calibrated" if zp is None else zp,
                     "delegated": _delegation(edited, "BATCH_MATMUL")[1]})
    return rows


def _ratio_probe(data, op):
    """Delegation of `op` with its output scale set so that the op's scale ratio is each of RATIOS
    (ADD/SUB: both inputs given the same scale, ratio = input / output; MUL: input1*input2/output)."""
    rows = []
    for r in RATIOS:
        def edit(sg, o):
            s = 0.05
            for t in o.inputs:
                _set_quant(sg, t, scale=s)
            _set_quant(sg, o.outputs[0], scale=(s * s if op == "MUL" else s) / r)
        rows.append({"ratio": r, "delegated": _delegation(_edited(data, op, edit), op)[1]})
    return rows


def measure():
    import keras
    keras.utils.set_random_seed(0)
    rows = {}
    for op, model in _cases().items():
        int8, fp32 = _convert(model, "int8"), _convert(model, "float32")
        present, delegated = _delegation(int8, op)
        row = {"int8_present": present, "int8_delegated": delegated, "float32_delegated": _delegation(fp32, op)[1]}
        if op == "BATCH_MATMUL" and present:
            row["zero_point_probe"] = _zero_point_probe(int8)
        if op in ("ADD", "SUB", "MUL") and present:
            row["scale_ratio_probe"] = _ratio_probe(int8, op)
        rows[op] = row
        print(json.dumps({op: row}), flush=True)
    return rows


def _limits(probe):
    ok = [p["ratio"] for p in probe if p["delegated"]]
    if not ok:
        return "none of the ratios tried"
    low = [p["ratio"] for p in probe if not p["delegated"] and p["ratio"] < min(ok)]
    high = [p["ratio"] for p in probe if not p["delegated"] and p["ratio"] > max(ok)]
    refused = [f"2^{np.log2(x):.0f}" for x in low[-1:] + high[:1]]
    return (f"2^{np.log2(min(ok)):.0f} .. 2^{np.log2(max(ok)):.0f}"
            + (f", refused at {' and '.join(refused)}" if refused else ""))


def render(r):
    lines = ["# Which int8 ops LiteRT's XNNPACK delegate takes (single-op files)", "",
             f"{r['litert']}, {host_line(r)}. One small model per op, int8 PTQ with float IO and float32; "
             "'delegated' = the op sits inside an XNNPACK partition (`inspect.xnnpack_partitions`).", "",
             "| op | int8 delegated | float32 delegated | condition (probed by editing the int8 file) |",
             "|---|---|---|---|"]
    for op, row in r["ops"].items():
        if not row["int8_present"]:
            lines.append(f"| {op} | (converter emitted no int8 {op}) | {row['float32_delegated']} | |")
            continue
        cond = ""
        if "zero_point_probe" in row:
            cond = "second input zero-point: " + ", ".join(f"{p['second_input_zero_point']} -> "
                                                          f"{'yes' if p['delegated'] else 'no'}"
                                                          for p in row["zero_point_probe"])
        if "scale_ratio_probe" in row:
            what = "input1*input2/output" if op == "MUL" else "input/output"
            cond = f"{what} scale ratio: delegated for {_limits(row['scale_ratio_probe'])}"
        lines.append(f"| {op} | {'yes' if row['int8_delegated'] else '**no**'} | "
                     f"{'yes' if row['float32_delegated'] else 'no'} | {cond} |")
    lines += ["", f"Ratios tried: {', '.join(f'2^{np.log2(x):.0f}' for x in RATIOS)}. The limits are XNNPACK's "
              "own checks (google/XNNPACK src/operators/binary-elementwise-nd.c: int8 ADD input-to-output scale "
              "ratio in [2^-10, 2^8), MUL product-to-output ratio in [2^-16, 2^8)); the delegate admits "
              "AVERAGE_POOL_2D with float32 tensors only (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc, "
              "VisitAveragePool2DNode: CheckTensorFloat32Type). keras_mobile's int8 export runs each refused op "
              "as a float island (keras_mobile/tflite/float_islands.py)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(HERE, "results", "xnnpack_int8_ops"))
    args = p.parse_args(argv)
    from importlib.metadata import version
    r = {"command": " ".join(["xnnpack_int8_ops.py"] + (argv or sys.argv[1:])),
         "litert": f"ai-edge-litert {version('ai-edge-litert')}", **describe_host(),
         "date": time.strftime("%Y-%m-%d %H:%M"), "ops": measure()}
    write_result(args.out, r, render(r))
    print(render(r))


if __name__ == "__main__":
    main()
