"""EdgeTPU: parser on real compiler outputs (compiler 2.0-16), the compile wrapper through a fake
compiler on PATH, and the offline analyzer on TFLite files made here."""
import glob
import os
import stat
import textwrap

import keras
import numpy as np
import pytest

from keras_mobile.tflite import edgetpu
from keras_mobile.tflite.edgetpu_log import parse_console, parse_log, parse_size

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "edgetpu")


def sample(prefix):
    (path,) = glob.glob(os.path.join(DATA, prefix + "_*.txt"))
    with open(path, newline="") as f:
        return f.read()


# (sample, version, success, subgraphs, total ops, ops on TPU, on-chip used, off-chip used)
CONSOLE = [
    ("01", "16.0.384591198", True, 1, 134, 134, parse_size("3.86MiB"), 0),
    ("02", "16.0.384591198", True, 3, 135, 132, parse_size("3.86MiB"), 0),
    ("03", "16.0.384591198", True, 2, 294, 289, parse_size("6.08MiB"), parse_size("1.70MiB")),
    ("04", "16.0.384591198", True, 1, 50, 50, parse_size("604.50KiB"), parse_size("3.45MiB")),
    ("11", "15.0.340273435", True, 1, 36, 2, None, 0),
    ("12", "15.0.340273435", True, 1, 294, 1, None, 0),
    ("21", "2.0.267685300", True, 1, 64, 63, parse_size("5.66MiB"), 0),
    ("24", "16.0.384591198", True, 0, 9, 0, 0, 0),
]


@pytest.mark.parametrize("sid,version,success,subgraphs,total,tpu,on_chip,off_chip", CONSOLE,
                         ids=[c[0] for c in CONSOLE])
def test_console_samples(sid, version, success, subgraphs, total, tpu, on_chip, off_chip):
    r = parse_console(sample(sid))
    m = r.model
    assert (r.version, r.success, m.subgraphs, m.total_ops, m.tpu_ops) == (version, success, subgraphs, total, tpu)
    assert m.cpu_ops == total - tpu
    if on_chip is not None:
        assert m.on_chip_used == on_chip
    assert m.off_chip_used == off_chip
    if r.ops:   # the -s table adds up to the summary counts
        assert sum(x.count for x in r.ops) == total and r.mapped_ops() == tpu


def test_2_0_layout_has_available_not_remaining():
    m = parse_console(sample("21")).model
    assert m.on_chip_available == parse_size("7.62MiB") and m.on_chip_remaining is None


def test_delegate_search_final_outcome_counts():
    r = parse_console(sample("02"))          # several "Compilation failed!" tries, then success
    assert r.success and r.cpu_ops_by_reason()["More than one subgraph is not supported"]["CONCATENATION"] == 2


def test_crlf_sample_parses():
    assert "\r\n" in sample("03")
    assert parse_console(sample("03")).model.off_chip_used == parse_size("1.70MiB")


@pytest.mark.parametrize("sid,error", [("05", "dynamic-sized tensors"), ("06", "libc++abi"),
                                       ("19", "Internal compiler error"), ("16", "Internal compiler error"),
                                       ("22", "Restored original execution plan")])
def test_failures(sid, error):
    r = parse_console(sample(sid))
    assert not r.success and any(error in e for e in r.errors)


def test_segments_and_cocompile():
    seg = parse_console(sample("22"))
    assert seg.models[0].input_model.endswith("segment_0_of_2.tflite") and seg.models[0].tpu_ops == 84
    co = parse_console(sample("23"))
    assert co.success and [m.total_ops for m in co.models] == [57, 6]


# (log sample, version, total ops, mapped, {status: count})
LOGS = [("07", "16.0.384591198", 259, 257, {"Operation is working on an unsupported data type": 1}),
        ("08", "16.0.384591198", 513, 510, None), ("09", "16.0.384591198", 4, 0, None),
        ("10", "16.0.384591198", 262, 262, None), ("13", "15.0.340273435", 3, 3, None),
        ("14", "15.0.340273435", 64, 63, None), ("15", "14.1.317412892", 25, 19, None),
        ("17", "2.1.302470888", 99, 98, None), ("18", "2.1.302470888", 77, 75, None)]


@pytest.mark.parametrize("sid,version,total,mapped,by_status", LOGS, ids=[l[0] for l in LOGS])
def test_log_samples(sid, version, total, mapped, by_status):
    r = parse_log(sample(sid))
    assert (r.version, r.model.total_ops, r.mapped_ops()) == (version, total, mapped)
    if by_status:
        for status, n in by_status.items():
            assert sum(x.count for x in r.ops if x.status == status) == n


def test_custom_op_log():
    r = parse_log(sample("14"))
    assert any(x.op == "CUSTOM" and not x.mapped for x in r.ops)


def test_sizes():
    assert parse_size("0.00B") == 0 and parse_size("1.00KiB") == 1024
    assert parse_size("8.05MiB") == int(round(8.05 * 2 ** 20)) and parse_size("12 MB") is None


# --- the compile wrapper, through a fake compiler ------------------------------------------------

def fake_compiler(tmp_path, monkeypatch, body):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / "edgetpu_compiler"
    exe.write_text("#!/usr/bin/env python3\n" + textwrap.dedent(body))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


SUCCESS = f"""
import os, sys
args = sys.argv[1:]
out = args[args.index("--out_dir") + 1]
model = args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
open(os.path.join(out, stem + "_edgetpu.tflite"), "wb").write(b"compiled")
open(os.path.join(out, stem + "_edgetpu.log"), "w").write(open({os.path.join(DATA, '13_v15_log_all_mapped_small.txt')!r}).read())
print(open({os.path.join(DATA, '01_v16_console_all_mapped_search_delegate.txt')!r}).read())
"""


def test_compile_success(tmp_path, monkeypatch):
    fake_compiler(tmp_path, monkeypatch, SUCCESS)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"tflite")
    report = edgetpu.compile(model, out_dir=str(tmp_path / "out"))
    assert report.success and report.model.total_ops == 134
    assert (tmp_path / "out" / "m_edgetpu.tflite").exists()


def test_compile_failure_leaves_nothing(tmp_path, monkeypatch):
    fake_compiler(tmp_path, monkeypatch, f"""
import os, sys
args = sys.argv[1:]
out = args[args.index("--out_dir") + 1]
open(os.path.join(out, "m_edgetpu.tflite"), "wb").write(b"half")
print(open({os.path.join(DATA, '05_v16_failed_dynamic_shape.txt')!r}).read())
sys.exit(1)
""")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"tflite")
    with pytest.raises(edgetpu.EdgeTPUCompileError, match="dynamic-sized tensors") as e:
        edgetpu.compile(model)
    assert e.value.report is not None and not (tmp_path / "m_edgetpu.tflite").exists()


def test_compile_timeout(tmp_path, monkeypatch):
    fake_compiler(tmp_path, monkeypatch, "import time; time.sleep(60)\n")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"tflite")
    monkeypatch.setattr(edgetpu, "subprocess", edgetpu.subprocess)
    with pytest.raises(edgetpu.EdgeTPUCompileError, match="did not finish"):
        edgetpu.compile(model, timeout=-29)      # the wrapper allows timeout + 30 s: 1 s here


def test_missing_compiler_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(edgetpu.EdgeTPUCompilerNotFound, match="apt-get install edgetpu-compiler"):
        edgetpu.compile(tmp_path / "m.tflite")


# --- the offline analyzer -------------------------------------------------------------------------

def _convert(model, int8, tmp_path, name):
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shape = (1,) + tuple(model.input_shape[1:])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([np.random.default_rng(i).random(shape, np.float32)] for i in range(8))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(conv.convert())
    return path


def _net(middle=None, batch=1):
    x = keras.Input(batch_shape=(batch, 16, 16, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    if middle:
        y = middle(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(4)(y))


def test_analyze_int8_all_mapped(tmp_path):
    r = edgetpu.analyze(_convert(_net(), True, tmp_path, "ok"))
    assert r.mapped_fraction == 1.0 and r.first_cpu_op is None and not r.fatal


def test_analyze_float_model_maps_nothing(tmp_path):
    r = edgetpu.analyze(_convert(_net(), False, tmp_path, "float"))
    assert r.mapped_ops == 0 and all(o.reason == edgetpu.UNSUPPORTED_DTYPE for o in r.ops)


def test_analyze_cuts_at_first_unsupported_op(tmp_path):
    """An op outside the supported list mid-graph: it and everything after it run on the CPU."""
    hswish = keras.layers.Activation("hard_silu")   # int8 in TFLite, not in the EdgeTPU op list
    r = edgetpu.analyze(_convert(_net(middle=hswish), True, tmp_path, "hswish"))
    first = r.first_cpu_op
    assert first is not None and first.op == "HARD_SWISH" and first.reason == edgetpu.NOT_SUPPORTED
    after = [o for o in r.ops if o.index > first.index]
    assert after and all(not o.mapped and o.reason == edgetpu.AFTER_CUT for o in after)
    assert all(o.mapped for o in r.ops if o.index < first.index)


def test_analyze_flags_dynamic_batch(tmp_path):
    r = edgetpu.analyze(_convert(_net(batch=None), True, tmp_path, "dyn"))
    assert r.fatal and "static shapes" in r.fatal[0] and r.mapped_fraction == 0.0


# --- op versions against edgetpu_compiler 16 ------------------------------------------------------

def _with_version(path, op, version, out):
    """A copy of the file with `op`'s operator-code version set to `version` (a crafted file)."""
    from ai_edge_litert import schema_py_generated as schema

    from keras_mobile.tflite.flatbuffer import read_model, write_model
    model, _ = read_model(str(path))
    code = getattr(schema.BuiltinOperator, op)
    for c in model.operatorCodes:
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
            c.version = version
    out.write_bytes(write_model(model))
    return out


def test_op_versions_are_read_from_the_flatbuffer(tmp_path):
    path = _convert(_net(), True, tmp_path, "v")
    versions = dict(edgetpu.op_versions(path))
    assert versions["CONV_2D"] == 3 and versions["DEPTHWISE_CONV_2D"] == 3   # int8 per-channel forms
    crafted = dict(edgetpu.op_versions(_with_version(path, "CONV_2D", 6, tmp_path / "v6.tflite")))
    assert crafted["CONV_2D"] == 6 and crafted["DEPTHWISE_CONV_2D"] == 3


def test_rejected_op_version_is_fatal_and_unknown_limits_are_unverified(tmp_path, monkeypatch):
    path = _convert(_net(), True, tmp_path, "v")
    monkeypatch.setattr(edgetpu, "ACCEPTED_VERSIONS", {})
    r = edgetpu.analyze(path)
    assert not r.fatal and r.op_versions
    assert {v.status for v in r.op_versions} == {"unverified"}     # no source vouches: never "ok"
    assert "not verified against edgetpu_compiler 16" in str(r)
    bad = edgetpu.analyze(_with_version(path, "CONV_2D", 6, tmp_path / "v6.tflite"))
    assert bad.mapped_fraction == 0.0 and len(bad.fatal) == 1
    assert "CONV_2D version 6" in bad.fatal[0] and "edgetpu/issues/631" in bad.fatal[0]
    verdict = next(v for v in bad.op_versions if v.op == "CONV_2D")
    assert verdict.status == "rejected"


def test_accepted_version_needs_a_source(tmp_path, monkeypatch):
    path = _convert(_net(), True, tmp_path, "v")
    monkeypatch.setattr(edgetpu, "ACCEPTED_VERSIONS", {"CONV_2D": (3, "a 16.0 log")})
    statuses = {v.op: v.status for v in edgetpu.check_op_versions(path)}
    assert statuses["CONV_2D"] == "ok" and statuses["DEPTHWISE_CONV_2D"] == "unverified"


def test_version_tables_agree():
    """Each op's highest accepted version lies below its lowest rejected one, and every entry names a
    16.0 source (repo + commit, or URL)."""
    for op, (version, source) in edgetpu.ACCEPTED_VERSIONS.items():
        assert op in edgetpu.SUPPORTED and isinstance(version, int) and version >= 1, op
        assert "16.0.384591198" in source and ("@ " in source or "https://" in source), op
        if op in edgetpu.REJECTED_VERSIONS:
            assert version < edgetpu.REJECTED_VERSIONS[op][0], op
    for op, (first, compiler, source) in edgetpu.REJECTED_VERSIONS.items():
        assert first >= 2 and source.startswith("https://"), op


def test_published_16_0_versions_report_ok_on_a_real_file(tmp_path):
    """A file made by the TFLite converter (int8 CONV_2D / DEPTHWISE_CONV_2D v3, MEAN v2,
    FULLY_CONNECTED v4: versions of published files 16.0 mapped) is "ok" throughout,
    each verdict naming its source; a version above the accepted one stays "unverified"."""
    path = _convert(_net(), True, tmp_path, "v")
    verdicts = {v.op: v for v in edgetpu.check_op_versions(path)}
    assert {op: (v.version, v.status) for op, v in verdicts.items()} == {
        "CONV_2D": (3, "ok"), "DEPTHWISE_CONV_2D": (3, "ok"), "MEAN": (2, "ok"), "FULLY_CONNECTED": (4, "ok")}
    assert "mathieugalle/edgetpu-compiler-pad-fail" in verdicts["CONV_2D"].source
    assert "DamianOlei/ImportData" in verdicts["FULLY_CONNECTED"].source
    assert "not verified" not in str(edgetpu.analyze(path))
    v4 = _with_version(path, "CONV_2D", 4, tmp_path / "v4.tflite")
    newer = {v.op: v.status for v in edgetpu.check_op_versions(v4)}
    assert newer["CONV_2D"] == "unverified" and newer["DEPTHWISE_CONV_2D"] == "ok"


def test_edgetpu_export_fails_early_on_a_rejected_op_version(tmp_path, monkeypatch):
    """export(target="edgetpu") checks the converted bytes and writes nothing the compiler would refuse."""
    from keras_mobile.tflite import export
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    monkeypatch.setitem(edgetpu.REJECTED_VERSIONS, "CONV_2D", (3, "16.0", "a report"))
    with pytest.raises(ValueError, match="CONV_2D version 3"):
        export(_net(), tmp_path / "m.tflite", target="edgetpu", representative_data=images, progress=False)
    assert not (tmp_path / "m.tflite").exists()
