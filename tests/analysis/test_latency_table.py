"""Latency lookup table: block grouping, key reuse, predict on a tiny model."""
import json

import keras
import pytest

from keras_mobile.analysis import latency_table as lt


def _tiny():
    x = keras.Input((16, 16, 3), name="input")
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_stem")(x)
    y = keras.layers.BatchNormalization(name="bn1")(y)
    for i in range(2):   # two identical residual blocks -> one LUT entry
        h = keras.layers.Conv2D(8, 1, name=f"blocks-0-{i}-conv_pw")(y)
        h = keras.layers.ReLU(name=f"blocks-0-{i}-act")(h)
        h = keras.layers.DepthwiseConv2D(3, padding="same", name=f"blocks-0-{i}-conv_dw")(h)
        y = keras.layers.Add(name=f"blocks-0-{i}-add")([y, h])
    y = keras.layers.GlobalAveragePooling2D(name="global_pool")(y)
    y = keras.layers.Dense(4, name="classifier")(y)
    return keras.Model(x, y, name="tiny")


def test_block_names():
    assert lt.block_of("blocks.2.0.dw_mid.conv") == "blocks.2.0"
    assert lt.block_of("stages.1.blocks.3.mlp.fc1") == "stages.1.blocks.3"
    assert lt.block_of("stages.0.downsample.conv") == "stages.0.downsample"
    assert lt.block_of("conv_stem") == "conv_stem"
    assert lt.block_of("blocks-2-0-dw_mid-conv") == "blocks.2.0"          # layer-name form


def test_blocks_and_shared_keys():
    m = _tiny()
    bs = lt.blocks(m)
    assert [b.name for b in bs] == ["conv_stem..bn1", "blocks.0.0", "blocks.0.1", "global_pool..classifier"]
    assert bs[1].key() == bs[2].key() and bs[0].key() != bs[1].key()
    sub = bs[1].to_model()
    assert tuple(sub.inputs[0].shape) == (1, 8, 8, 8) and tuple(sub.outputs[0].shape) == (1, 8, 8, 8)


def test_predict_tiny(tmp_path):
    m = _tiny()
    table = lt.LatencyTable(num_threads=1)
    assert table.measure_model(m, runs=3) == 3          # the repeated block is measured once
    assert table.measure_model(m, runs=3) == 0
    pred, rows = table.predict(m, breakdown=True)
    assert len(rows) == 4 and pred > 0
    assert pred == pytest.approx(sum(s for _, s in rows) + table.overhead)
    path = table.save(str(tmp_path / "lut.json"))
    again = lt.LatencyTable.load(path)
    assert again.predict(m) == pytest.approx(pred)
    assert json.load(open(path))["num_threads"] == 1
    with pytest.raises(KeyError, match="blocks not in the latency table"):
        lt.LatencyTable(num_threads=1).predict(m)


def test_a_two_input_head_is_one_block_and_is_timed(tmp_path):
    """EfficientFormer's top: two Dense heads averaged (`head_average` reads two tensors). Each
    block is timed as a single-input file, so the average joins the heads it reads: one block
    with the pooled features as its input, which the host table measures. (The layers carry
    module indices here: un-indexed head layers are one block anyway.)"""
    x = keras.Input((8, 8, 3), name="input")
    y = keras.layers.Conv2D(8, 3, name="conv_stem")(x)
    y = keras.layers.Conv2D(8, 1, name="stages-0-blocks-0-conv")(y)
    y = keras.layers.GlobalAveragePooling2D(name="stages-0-blocks-1-pool")(y)
    y = keras.layers.Average(name="stages-0-blocks-4-average")(
        [keras.layers.Dense(4, name="stages-0-blocks-2-head")(y), keras.layers.Dense(4, name="stages-0-blocks-3-dist")(y)])
    m = keras.Model(x, keras.layers.Activation("softmax", name="predictions")(y))
    bs = lt.blocks(m)
    assert [b.name for b in bs] == ["conv_stem", "stages.0.blocks.0", "stages.0.blocks.1", "stages.0.blocks.2",
                                    "predictions"]
    assert [len(b.external_inputs()) for b in bs] == [1, 1, 1, 1, 1]
    assert [type(l).__name__ for l, _ in bs[3].items] == ["Dense", "Dense", "Average"]
    table = lt.LatencyTable(num_threads=1)
    assert table.measure_model(m, runs=3) == 5 and table.predict(m) > 0


def _stem_model():
    x = keras.Input((32, 32, 3), name="image")
    y = keras.layers.Rescaling(scale=[0.02, 0.02, 0.02], offset=[-1.0, -1.0, -1.0], name="preprocessing")(x)
    y = keras.layers.ZeroPadding2D(1, name="conv_stem-pad")(y)
    y = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv_stem")(y)
    y = keras.layers.BatchNormalization(name="bn1")(y)
    y = keras.layers.Activation("hard_swish", name="act1")(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="blocks-0-0-conv_dw")(y)
    y = keras.layers.GlobalAveragePooling2D(name="global_pool")(y)
    return keras.Model(x, keras.layers.Dense(4, name="classifier")(y), name="stem_model")


def test_stem_and_head_layers_are_one_block_each_as_the_whole_file_runs_them():
    """The un-indexed stem layers (preprocessing, pad, conv, BN, activation) are one block: in the
    whole file BN is folded into the conv and the activation fused, so slices cut between them
    would time ops the model does not run (a lone bn1 MUL, an unfused PAD). The stem slice runs
    exactly the whole file's first ops."""
    from keras_mobile.tflite.inspect import make_interpreter, op_details
    m = _stem_model()
    bs = lt.blocks(m)
    assert [b.name for b in bs] == ["preprocessing..act1", "blocks.0.0", "global_pool..classifier"]

    def ops(model):
        return [d["op_name"] for d in op_details(make_interpreter(lt.to_tflite(model), delegates=False))]
    whole, stem = ops(m), ops(bs[0].to_model())
    assert whole[:len(stem)] == stem and whole[len(stem)] == "DEPTHWISE_CONV_2D"
    assert "HARD_SWISH" in stem and stem.count("MUL") == whole.count("MUL") == 1   # the preprocessing's
    assert ops(_bn_only(m)) == ["MUL"]         # bn1 cut out alone: an op the whole file does not have


def _bn_only(m):
    """bn1 cut out alone, as the table cut it before the stem was one block."""
    b = lt.Block("bn1")
    b.items = [(l, n) for blk in lt.blocks(m) for l, n in blk.items if l.name == "bn1"]
    return b.to_model()


def test_int8_slices_pass_int8_tensors_as_the_whole_file_does(tmp_path):
    """An int8 file quantizes once at its input and dequantizes once at its output; its blocks pass
    int8 tensors. A slice with float IO would add a QUANTIZE and a DEQUANTIZE at every cut, so int8
    table slices have int8 IO; float32 slices keep float IO, and deployed files (`to_tflite`) too."""
    from keras_mobile.tflite.inspect import make_interpreter, op_details
    block = lt.blocks(_tiny())[1].to_model()
    for q, io in (("int8", "int8"), ("float32", "float32")):
        it = make_interpreter(lt.block_tflite(block, q), delegates=False)
        ops = [d["op_name"] for d in op_details(it)]
        assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops, (q, ops)
        assert [d["dtype"].__name__ for d in it.get_input_details() + it.get_output_details()] == [io, io]
    deployed = make_interpreter(lt.to_tflite(block, "int8"), delegates=False)
    assert deployed.get_input_details()[0]["dtype"].__name__ == "float32"
    with pytest.raises(ValueError, match="io_dtype must be"):
        lt.to_tflite(block, "float32", io_dtype="int8")
    # an int8 table saved before slices had int8 IO (no block_io) is not reused
    old = lt.LatencyTable(num_threads=1, quantization="int8", entries={"k": {"seconds": 1.0}})
    d = old.to_dict()
    del d["block_io"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert lt.LatencyTable.load_or_new(str(tmp_path / "old.json"), 1, "int8").entries == {}
    assert lt.LatencyTable.load_or_new(old.save(str(tmp_path / "new.json")), 1, "int8").entries == old.entries


def test_new_blocks_are_timed_with_the_table_s_own_block_io(tmp_path, monkeypatch):
    """A table loaded by path (a user's JSON, never re-measured) keeps one measuring method: an old
    int8 table with float-IO slices times the blocks it lacks with float IO too, and saves as such."""
    d = lt.LatencyTable(num_threads=1, quantization="int8", overhead=0.0).to_dict()
    d["block_io"] = "float32"
    (tmp_path / "old.json").write_text(json.dumps(d))
    table = lt.LatencyTable.load(str(tmp_path / "old.json"))
    seen = []
    monkeypatch.setattr(lt, "to_tflite", lambda m, q, io_dtype=None: seen.append((q, io_dtype)) or b"")
    monkeypatch.setattr(lt, "open_for_timing", lambda content, threads: None)
    monkeypatch.setattr(lt, "times_in_turn", lambda its, threads, runs: [[1e-4]] * len(its))
    table.measure_model(_tiny(), runs=1)
    assert set(seen) == {("int8", "float32")} and len(seen) == 3       # one conversion per distinct block
    assert json.loads(open(table.save(str(tmp_path / "old.json"))).read())["block_io"] == "float32"


def _fake_timing(monkeypatch, table, seconds):
    """Slices stand for their block names; each name gets the times in `seconds`. Returns the turns."""
    turns = []
    monkeypatch.setattr(table, "_slice", lambda b: b.name)
    monkeypatch.setattr(lt, "open_for_timing", lambda content, threads: content)
    monkeypatch.setattr(lt, "times_in_turn", lambda its, threads, runs: turns.append(list(its)) or
                        [seconds[name] for name in its])
    return turns


def test_blocks_are_timed_in_their_model_s_turn_and_each_time_goes_to_its_block(monkeypatch):
    m = _tiny()
    table = lt.LatencyTable(num_threads=1, overhead=0.0)
    turns = _fake_timing(monkeypatch, table, {"conv_stem..bn1": [3.0, 1.0, 2.0], "blocks.0.0": [4.0, 4.0, 5.0],
                                               "blocks.0.1": [6.0, 6.0, 6.0], "global_pool..classifier": [1.0] * 3})
    assert table.measure_model(m, runs=3) == 3
    assert turns == [["conv_stem..bn1", "blocks.0.0", "blocks.0.1", "global_pool..classifier"]]   # model order
    by_block = {e["block"]: e["seconds"] for e in table.entries.values()}
    # the medians over rounds; the two blocks of one key share an entry: the mean of their medians
    assert by_block == {"conv_stem..bn1": 2.0, "blocks.0.0": 5.0, "global_pool..classifier": 1.0}
    assert table.predict(m) == pytest.approx(2.0 + 5.0 + 5.0 + 1.0)
    assert table.measure_model(m, runs=3) == 0 and len(turns) == 1          # nothing timed again


def test_a_block_the_context_lacks_is_timed_after_the_context_s_blocks(monkeypatch):
    """A searched variant of one row is timed in the turn of the model it belongs to: the context's
    blocks in order, then the variant (the context's blocks are added too: they were timed in their
    own model's turn); a function context is only built when something is measured."""
    x = keras.Input((8, 8, 8), name="input")
    h = keras.layers.Conv2D(16, 1, name="blocks-0-0-conv_pw")(x)
    row = keras.Model(x, keras.layers.Add(name="blocks-0-0-add")([x, keras.layers.Conv2D(8, 1, name="blocks-0-0-conv_pwl")(h)]))
    table = lt.LatencyTable(num_threads=1, overhead=0.0)
    turns = _fake_timing(monkeypatch, table, {n: [1.0] for n in
                                              ("conv_stem..bn1", "blocks.0.0", "blocks.0.1", "global_pool..classifier")})
    built = []
    assert table.measure_model(row, runs=1, context=lambda: built.append(1) or _tiny()) == 4
    assert turns == [["conv_stem..bn1", "blocks.0.0", "blocks.0.1", "global_pool..classifier", "blocks.0.0"]]
    assert table.measure_model(row, runs=1, context=lambda: built.append(1) or _tiny()) == 0 and built == [1]


def test_a_table_of_another_format_is_refused_by_load_and_measured_again_by_load_or_new(tmp_path):
    """Unversioned tables timed each block alone (weights resident in cache): their times, and the
    `correction` fitted on them, mean something else."""
    old = {"num_threads": 1, "quantization": "float32", "block_io": "float32", "overhead_seconds": 1e-6,
           "correction": {"scale": 1.1, "per_block_s": 0.0, "fitted_on": ["net"]}, "entries": {"k": {"seconds": 1e-4}}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"format version 1, this package reads version 2.*Measure it again"):
        lt.LatencyTable.load(str(path))
    with pytest.warns(UserWarning, match="format version 1.*Re-measuring it"):
        fresh = lt.LatencyTable.load_or_new(str(path), 1, "float32")
    assert fresh.entries == {} and fresh.correction is None
    assert json.loads(open(fresh.save(str(path))).read())["version"] == lt.FORMAT_VERSION
    assert lt.LatencyTable.load(str(path)).entries == {}


@pytest.mark.parametrize("text,match", [
    ('{"a": 1}', "is not a latency table"),
    ("not json", "Expecting value"),
    ('{"version": 3, "entries": {}}', "format version 3, newer than this package reads"),
])
def test_load_or_new_refuses_what_it_would_overwrite(tmp_path, text, match):
    """Only an older table format is re-measured: a file that is no table, not JSON, or of a newer
    format raises instead of being replaced by an empty table (and overwritten on save)."""
    path = tmp_path / "lut.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        lt.LatencyTable.load_or_new(str(path), 1, "float32")
    assert path.read_text() == text


def test_rank_metrics():
    assert lt.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert lt.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert lt.mape([110, 90], [100, 100]) == pytest.approx(10.0)


def test_wrapped_model_is_unwrapped():
    from keras_mobile.tflite.export import fixed_batch
    m = _tiny()
    wrapped, _ = fixed_batch(m, 1)
    assert [b.name for b in lt.blocks(wrapped)] == [b.name for b in lt.blocks(m)]


def test_block_names_any_separator():
    assert lt.block_of("blocks_2_0_conv_pw") == "blocks_2_0"
    assert lt.block_of("stages/1/blocks/3/mlp/fc1") == "stages/1/blocks/3"
    assert lt.block_of("stages_0_downsample_conv") == "stages_0_downsample"
    assert lt.block_of("conv_stem") == "conv_stem" and lt.block_of("bn1") == "bn1"


def test_fit_correction_recovers_scale_and_per_block_cost():
    feats = [(0.010, 10), (0.020, 15), (0.005, 30), (0.040, 20)]
    ys = [1.08 * s + 2e-5 * n for s, n in feats]
    c = lt.fit_correction(feats, ys)
    assert c["scale"] == pytest.approx(1.08) and c["per_block_s"] == pytest.approx(2e-5)
    only = lt.fit_correction(feats, [s + 3e-5 * n for s, n in feats], terms=("per_block",))
    assert only == {"scale": 1.0, "per_block_s": pytest.approx(3e-5)}
    # a fit that wants a negative term drops it instead of predicting negative costs
    neg = lt.fit_correction(feats, [1.5 * s - 1e-5 * n for s, n in feats])
    assert neg["per_block_s"] >= 0 and neg["scale"] > 0


def test_correction_is_applied_and_saved(tmp_path):
    m = _tiny()
    table = lt.LatencyTable(num_threads=1)
    table.measure_model(m, runs=3)
    plain = table.predict(m)
    total, rows = table.block_sum(m)
    table.calibrate([(m, 2 * total + table.overhead)], terms=("scale",))
    assert table.predict(m) == pytest.approx(2 * total + table.overhead)
    assert table.predict(m, corrected=False) == pytest.approx(plain)
    again = lt.LatencyTable.load(table.save(str(tmp_path / "lut.json")))
    assert again.predict(m) == pytest.approx(table.predict(m)) and again.correction["fitted_on"] == ["tiny"]


def test_int8_table_and_bad_files(tmp_path):
    m = _tiny()
    table = lt.LatencyTable(num_threads=1, quantization="int8")
    table.measure_model(m, runs=2)
    assert table.predict(m) > 0 and lt.LatencyTable.load(table.save(str(tmp_path / "q.json"))).quantization == "int8"
    assert lt.LatencyTable.load_or_new(str(tmp_path / "q.json"), 1, "float32").entries == {}
    with pytest.raises(ValueError, match="quantization must be one of"):
        lt.LatencyTable(quantization="float16")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a latency table"):
        lt.LatencyTable.load(str(tmp_path / "bad.json"))


def test_one_thread_invokes_are_timed_by_cpu_time_not_by_time_off_the_core():
    import time
    from keras_mobile.analysis.latency_timing import invoke_clock, invoke_times
    # a 30 ms sleep stands for a preemption: it costs wall time but no CPU time of the caller
    cpu = invoke_times(lambda: time.sleep(0.03), num_threads=1, runs=3, warmup=0)
    wall = invoke_times(lambda: time.sleep(0.03), num_threads=2, runs=3, warmup=0)
    assert max(cpu) < 0.005 and min(wall) >= 0.03
    # and real work is counted by both clocks
    busy = invoke_times(lambda: sum(i * i for i in range(200_000)), num_threads=1, runs=3, warmup=0)
    assert min(busy) > 0.002
    assert invoke_clock(1) is time.thread_time and invoke_clock(4) is time.perf_counter
