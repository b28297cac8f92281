"""Coral EdgeTPU: compile with `edgetpu_compiler` when it is installed; predict the mapping
offline when it is not.

`analyze(path)` applies the published rules (see docs of each rule below; sources: Coral
"TensorFlow models on the Edge TPU" and compiler docs, as collected in the project's
reference notes): full int8/uint8 quantization, static shapes, tensors of at most 3 non-unit
innermost dimensions, the supported-op list with per-op limits, and the compiler's single cut
point: the first op that cannot map, and every op after it, run on the CPU. It also estimates
parameter memory against the ~8 MiB on-chip cache.
"""
import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np

from keras_mobile.tflite.edgetpu_log import CompileReport, parse_console, parse_log

ON_CHIP_BYTES = 8 * 2 ** 20
INSTALL_HINT = ("edgetpu_compiler is not on PATH. It runs on x86-64 Debian/Ubuntu only: add the Coral apt "
                "repository (https://coral.ai/docs/edgetpu/compiler) and `sudo apt-get install "
                "edgetpu-compiler`. Without it, `keras_mobile.tflite.edgetpu.analyze(path)` predicts the "
                "mapping offline.")

# ops in the published supported lists (Coral table + later additions), with per-op checks below
SUPPORTED = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6",
    "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE",
    "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM",
    "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV", "DEQUANTIZE",
}
# Op versions edgetpu_compiler is reported to reject at load time ("Didn't find op for builtin opcode
# '<OP>' version '<v>'. ... Registration failed."): {op: (first rejected version, compiler, source)}.
# A version below it is not thereby known to be accepted: no public source lists the versions the
# compiler registers, so such ops are reported "unverified" unless ACCEPTED_VERSIONS vouches for them.
REJECTED_VERSIONS = {
    "CONV_2D": (6, "16.0.384591198", "https://github.com/google-coral/edgetpu/issues/631"),
    "TRANSPOSE_CONV": (4, "16.0.384591198", "https://github.com/google-coral/edgetpu/issues/845"),
    "QUANTIZE": (3, "16.0.384591198", "https://github.com/google-coral/edgetpu/issues/879"),
    "EXP": (2, "16.0.384591198", "https://github.com/google-coral/libedgetpu/issues/71"),
    "RESIZE_BILINEAR": (3, "2.0.267685300 (no later report either way)",
                        "https://github.com/google-coral/edgetpu/issues/45"),
    "REVERSE_V2": (3, "15.0.340273435", "https://github.com/google-coral/edgetpu/issues/340"),
}
# {op: (highest version known to compile with 16.0, source)}: an entry needs a published .tflite whose op
# versions we read with op_versions() AND a 16.0 output showing that very file compiled with the op
# "Mapped to Edge TPU". A compiled *_edgetpu.tflite does not say which compiler made it (the DarwiNN
# package's compiler_version field is "cl/" in public 16.0 output), so the input is tied to the log by
# its per-op counts (and its size where the console printed it). The CPU-side ops of a compiled file are
# no evidence either: 16.0 rewrites them (yolov5n below: MUL/STRIDED_SLICE version 2 in, 1 out).
# A lower version of an op is taken as accepted too: TFLite op resolvers register every version up to
# the newest they know.
# Not counted: google-coral/test_data (pairs X.tflite / X_edgetpu.tflite @ 104342d2d3480b3e66203073dac24f4e2dbb4c41):
# no log, and the compiled files carry compiler_version "cl/" or "cl/343520747" (an internal build
# between 15.0.340273435 and 16.0.384591198), so none is shown to come from 16.0.
_RETINANET_16_0 = (
    "github.com/mathieugalle/edgetpu-compiler-pad-fail @ df17eec0386da8b6bcb1b51cc6e2341129bc7c8d: "
    "mobile_retina_net_not_padded.tflite (3,024,344 B) compiled by edgetpu_compiler 16.0.384591198 "
    "(`-m 13 -s -da`, not_padded_edgetpucompiler_output.log: input 2.88MiB, 134 ops, all "
    "\"Mapped to Edge TPU\", per-op counts equal to the file's)")
_MOBILENET_V2_16_0 = (
    "github.com/DamianOlei/ImportData @ 961b65b973db138e5743285c90ce9647adec0dfd: "
    "mobilenet_v2_1.0_224_quant.tflite compiled by edgetpu_compiler 16.0.384591198 "
    "(mobilenet_v2_1.0_224_quant_edgetpu.log, same commit: 72 ops, all \"Mapped to Edge TPU\", per-op counts "
    "equal to the file's; the compiled file holds only the edgetpu-custom-op); likewise a separately "
    "retrained copy in github.com/helder0xff/coral_transfer @ e69445d7c24bd523d643c588a118c6470affbf10")
_TCN_16_0 = (
    "github.com/fredriktegnell/edgetpu-tcn @ acd5d760c3ddb4a243a01ee708d058d77766e2ab: quantized_model.tflite "
    "compiled by edgetpu_compiler 16.0.384591198 (quantized_model_edgetpu.log, same commit: 6 ops, all \"Mapped "
    "to Edge TPU\", per-op counts equal to the file's; the compiled file holds only the edgetpu-custom-op)")
# The three files were uploaded in separate commits within 25 minutes; the log's per-op counts (256 ops
# in 11 op types, mapped and CPU rows summed) equal the input file's, which ties the log to that file.
_YOLOV5N_16_0 = (
    "github.com/Sandhya1708/modelnew @ 0e155d1508fdfd85e2c2a728807b389df4e3257c: yolov5n-int8.tflite "
    "compiled by edgetpu_compiler 16.0.384591198 (yolov5n-int8_edgetpu.log: 256 ops, per-op counts equal to "
    "the file's; MUL 69/75, LOGISTIC 60/60, STRIDED_SLICE 6/9, MAX_POOL_2D 3/3 \"Mapped to Edge TPU\", "
    "the rest of MUL and STRIDED_SLICE after the cut)")
ACCEPTED_VERSIONS = {
    "ADD": (2, _RETINANET_16_0),
    "CONCATENATION": (2, _RETINANET_16_0),
    "CONV_2D": (3, _RETINANET_16_0),
    "DEPTHWISE_CONV_2D": (3, _RETINANET_16_0),
    "FULLY_CONNECTED": (4, _MOBILENET_V2_16_0),
    "LOGISTIC": (2, _TCN_16_0),
    "MAX_POOL_2D": (2, _YOLOV5N_16_0),
    "MEAN": (2, _MOBILENET_V2_16_0),
    "MUL": (2, _YOLOV5N_16_0),
    "PAD": (2, _RETINANET_16_0),
    "QUANTIZE": (1, _RETINANET_16_0),
    "RELU": (2, _RETINANET_16_0),
    "RESHAPE": (1, _RETINANET_16_0),
    "RESIZE_NEAREST_NEIGHBOR": (3, _RETINANET_16_0),
    "SOFTMAX": (2, _MOBILENET_V2_16_0),
    "STRIDED_SLICE": (2, _YOLOV5N_16_0),
}

UNSUPPORTED_DTYPE = "Operation is working on an unsupported data type"
NOT_SUPPORTED = "Operation not supported"
AFTER_CUT = "More than one subgraph is not supported"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"


class EdgeTPUCompilerNotFound(RuntimeError):
    pass


class EdgeTPUCompileError(RuntimeError):
    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclass
class OpVerdict:
    index: int
    op: str
    mapped: bool
    reason: str


@dataclass
class VersionVerdict:
    op: str
    version: int
    status: str          # "ok" (a source shows 16.0 accepts it), "rejected" or "unverified"
    source: str = ""


def op_versions(tflite):
    """[(op name, version)] of a .tflite file's operator codes (path or bytes), read from the flatbuffer."""
    from keras_mobile.tflite.flatbuffer import read_model
    from keras_mobile.tflite.metadata_format import _schema
    schema = _schema()
    model, _ = read_model(tflite)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for c in model.operatorCodes:
        code = max(c.builtinCode, c.deprecatedBuiltinCode)
        name = names.get(code, str(code))
        out.append((c.customCode.decode() if name == "CUSTOM" and c.customCode else name, int(c.version)))
    return out


def check_op_versions(tflite):
    """A VersionVerdict per operator code of the file against REJECTED_VERSIONS / ACCEPTED_VERSIONS:
    "rejected" when the version reaches one the compiler is reported to refuse, "ok" only when a
    published 16.0 compile mapped that version or a higher one, "unverified" otherwise (never "ok" by
    default)."""
    verdicts = []
    for op, version in op_versions(tflite):
        if op in REJECTED_VERSIONS and version >= REJECTED_VERSIONS[op][0]:
            first, compiler, source = REJECTED_VERSIONS[op]
            verdicts.append(VersionVerdict(op, version, "rejected",
                                           f"compiler {compiler} rejects {op} version {first}: {source}"))
        elif op in ACCEPTED_VERSIONS and version <= ACCEPTED_VERSIONS[op][0]:
            verdicts.append(VersionVerdict(op, version, "ok", ACCEPTED_VERSIONS[op][1]))
        else:
            verdicts.append(VersionVerdict(op, version, "unverified"))
    return verdicts


def rejected_versions_error(verdicts):
    """A one-line message naming every rejected op version, or None."""
    bad = [v for v in verdicts if v.status == "rejected"]
    if not bad:
        return None
    return ("edgetpu_compiler would refuse this file at load time: " +
            "; ".join(f"{v.op} version {v.version} ({v.source})" for v in bad))


@dataclass
class AnalyzeReport:
    path: str
    ops: list = field(default_factory=list)
    fatal: list = field(default_factory=list)     # problems that make the compiler fail outright
    parameter_bytes: int = 0
    op_versions: list = field(default_factory=list)   # [VersionVerdict]

    @property
    def mapped_ops(self):
        return sum(o.mapped for o in self.ops)

    @property
    def mapped_fraction(self):
        return self.mapped_ops / len(self.ops) if self.ops and not self.fatal else 0.0

    @property
    def first_cpu_op(self):
        for o in self.ops:
            if not o.mapped and o.reason != AFTER_CUT and not _edge(o):
                return o
        return None

    @property
    def on_chip_bytes(self):
        return min(self.parameter_bytes, ON_CHIP_BYTES)

    @property
    def off_chip_bytes(self):
        return max(0, self.parameter_bytes - ON_CHIP_BYTES)

    def __str__(self):
        lines = [f"EdgeTPU analysis of {self.path}: {self.mapped_ops}/{len(self.ops)} ops predicted on the "
                 f"Edge TPU ({100 * self.mapped_fraction:.0f}%)"]
        for f in self.fatal:
            lines.append(f"  compile would fail: {f}")
        first = self.first_cpu_op
        if first:
            lines.append(f"  first op on CPU: #{first.index} {first.op} ({first.reason}); everything after it runs on CPU")
        lines.append(f"  parameters {self.parameter_bytes / 2 ** 20:.2f} MiB: ~{self.on_chip_bytes / 2 ** 20:.2f} MiB "
                     f"cached on-chip, ~{self.off_chip_bytes / 2 ** 20:.2f} MiB streamed off-chip")
        unverified = [f"{v.op} v{v.version}" for v in self.op_versions if v.status == "unverified"]
        if unverified:
            lines.append("  op versions not verified against edgetpu_compiler 16: " + ", ".join(unverified))
        reasons = {}
        for o in self.ops:
            if not o.mapped:
                reasons.setdefault(o.reason, []).append(o.op)
        for reason, ops in reasons.items():
            counts = {op: ops.count(op) for op in dict.fromkeys(ops)}
            lines.append(f"  CPU ({reason}): " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
        return "\n".join(lines)


def _edge(verdict):
    return verdict.reason.startswith("float graph edge")


def analyze(tflite_path):
    """Predicts the EdgeTPU mapping of a .tflite file without the compiler."""
    from keras_mobile.tflite.inspect import make_interpreter, op_details
    it = make_interpreter(tflite_path, delegates=False)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = op_details(it)
    graph_in = {d["index"] for d in it.get_input_details()}
    graph_out = {d["index"] for d in it.get_output_details()}
    produced = {i for o in ops for i in o["outputs"]}
    report = AnalyzeReport(str(tflite_path), op_versions=check_op_versions(tflite_path))
    rejected = rejected_versions_error(report.op_versions)
    if rejected:
        report.fatal.append(rejected)

    for t in tensors.values():
        if -1 in list(t.get("shape_signature", t["shape"])):
            report.fatal.append(f"dynamic-sized tensor {t['name']} {list(t['shape_signature'])}: "
                                f"the compiler needs static shapes (export with a fixed batch size)")
            break
    constants = [i for i in tensors if i not in produced and i not in graph_in]
    report.parameter_bytes = int(sum(int(np.prod(tensors[i]["shape"])) * np.dtype(tensors[i]["dtype"]).itemsize
                                     for i in constants if len(tensors[i]["shape"])))

    cut = False
    for o in ops:
        verdict = _verdict(o, tensors, graph_in, graph_out, produced)
        if verdict is None:
            if cut:
                report.ops.append(OpVerdict(o["index"], o["op_name"], False, AFTER_CUT))
            else:
                report.ops.append(OpVerdict(o["index"], o["op_name"], True, "Mapped to Edge TPU"))
        else:
            report.ops.append(OpVerdict(o["index"], o["op_name"], False, verdict))
            if not verdict.startswith("float graph edge"):
                cut = True
    if report.fatal:
        for o in report.ops:
            o.mapped = False
    return report


def _dtype(tensors, i):
    return np.dtype(tensors[i]["dtype"]) if i in tensors else None


def _verdict(op, tensors, graph_in, graph_out, produced):
    """None if the op can map, else the reason it runs on the CPU."""
    name = op["op_name"]
    ins = [i for i in op["inputs"] if i >= 0]
    outs = [i for i in op["outputs"] if i >= 0]
    if name == "QUANTIZE" and any(i in graph_in for i in ins) and _dtype(tensors, ins[0]).kind == "f":
        return "float graph edge: QUANTIZE of a float model input runs on the CPU"
    if name == "DEQUANTIZE" and any(i in graph_out for i in outs):
        return "float graph edge: DEQUANTIZE to a float model output runs on the CPU"
    if name in ("CUSTOM", "DELEGATE"):
        return UNSUPPORTED_DTYPE
    if any(_dtype(tensors, i).kind == "f" for i in ins + outs if i in tensors):
        return UNSUPPORTED_DTYPE
    if name not in SUPPORTED:
        return NOT_SUPPORTED
    for i in ins + outs:
        if i not in produced and i not in graph_in:
            continue        # the rank limit is on activations; weights are laid out by the compiler
        shape = list(tensors[i]["shape"])
        if len(shape) > 3 and any(d > 1 for d in shape[:-3]):
            return RANK
    if name == "SOFTMAX":
        shape = list(tensors[ins[0]]["shape"])
        if int(np.prod(shape)) > 16000 or sum(d > 1 for d in shape) > 1:
            return "Softmax: 1-D input of at most 16,000 elements only"
    if name == "FULLY_CONNECTED" and sum(d > 1 for d in tensors[outs[0]]["shape"]) > 1:
        return "FullyConnected: output must be 1-D"
    return None


def compile(tflite_path, out_dir=None, timeout=180, show_operations=True, search_delegate=False,
            extra_flags=(), compiler="edgetpu_compiler"):
    """Runs edgetpu_compiler; returns a CompileReport (console + .log parsed).

    Raises EdgeTPUCompilerNotFound (with install instructions) when the compiler is missing and
    EdgeTPUCompileError on failure or timeout; a failed run leaves no output model behind."""
    exe = shutil.which(compiler)
    if exe is None:
        raise EdgeTPUCompilerNotFound(INSTALL_HINT)
    tflite_path = str(tflite_path)
    if not os.path.isfile(tflite_path):
        raise FileNotFoundError(f"no TFLite file at {tflite_path}")
    out_dir = out_dir or os.path.dirname(os.path.abspath(tflite_path))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(tflite_path))[0]
    outputs = [os.path.join(out_dir, f"{stem}_edgetpu.tflite"), os.path.join(out_dir, f"{stem}_edgetpu.log")]
    cmd = [exe, "--out_dir", out_dir, "--timeout_sec", str(int(timeout))]
    if show_operations:
        cmd.append("--show_operations")
    if search_delegate:
        cmd.append("--search_delegate")
    cmd += list(extra_flags) + [tflite_path]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout + 30)
    except subprocess.TimeoutExpired as e:
        _remove(outputs)
        raise EdgeTPUCompileError(f"edgetpu_compiler did not finish within {timeout + 30} s on {tflite_path}") from e
    report = parse_console(proc.stdout or "")
    if proc.returncode != 0 or not report.success:
        _remove(outputs)
        detail = "; ".join(report.errors) or (proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise EdgeTPUCompileError(f"edgetpu_compiler failed on {tflite_path} (exit {proc.returncode}): "
                                  f"{detail if isinstance(detail, str) else detail[0]}", report)
    if not report.ops and os.path.isfile(outputs[1]):
        with open(outputs[1]) as f:
            report.ops = parse_log(f.read()).ops
    return report


def _remove(paths):
    for p in paths:
        if os.path.exists(p):
            os.remove(p)


__all__ = ["analyze", "compile", "AnalyzeReport", "CompileReport", "EdgeTPUCompilerNotFound",
           "EdgeTPUCompileError", "parse_console", "parse_log"]
