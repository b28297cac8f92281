"""Latency sources: one interface over the host table, the roofline, a user table and a callable."""
import keras
import pytest

from keras_mobile.analysis import latency_table as lt
from keras_mobile.search import get_source
from keras_mobile.search.latency import CallableLatency, RooflineLatency, TableLatency


def _net(width=8):
    x = keras.Input((16, 16, 3), name="input")
    y = keras.layers.Conv2D(width, 3, strides=2, padding="same", name="conv_stem")(x)
    y = keras.layers.Conv2D(width, 1, name="blocks.0.0.conv_pw")(y)
    y = keras.layers.GlobalAveragePooling2D(name="global_pool")(y)
    return keras.Model(x, keras.layers.Dense(4, name="classifier")(y), name="net")


def test_host_source_measures_missing_blocks_once_and_caches(tmp_path):
    path = str(tmp_path / "host.json")
    src = get_source("host", cache_path=path)
    assert isinstance(src, TableLatency) and src.table.quantization == "float32"
    ms = src.predict_ms(_net())
    assert ms > 0 and len(src.table.entries) == 3   # conv_stem, blocks.0.0, global_pool..classifier
    again = get_source("host", cache_path=path)           # the cache file is reused
    assert len(again.table.entries) == 3 and again.predict_ms(_net()) == pytest.approx(ms)
    assert get_source("host-int8", cache_path=str(tmp_path / "q.json")).table.quantization == "int8"


def test_user_table_json_and_roofline_and_callable(tmp_path):
    table = lt.LatencyTable(num_threads=1)
    table.measure_model(_net(), runs=2)
    path = table.save(str(tmp_path / "phone.json"))
    src = get_source(path)
    assert src.predict_ms(_net()) == pytest.approx(table.predict(_net()) * 1e3)
    roof = get_source("edgetpu")
    assert isinstance(roof, RooflineLatency) and roof.predict_ms(_net(64)) > roof.predict_ms(_net(8)) > 0
    assert isinstance(get_source(lambda m: 3.0), CallableLatency) and get_source(lambda m: 3.0).predict_ms(_net()) == 3.0
    assert get_source(lambda m: 3.0).row_ms(_net()) is None


def test_bad_sources(tmp_path):
    for bad, msg in (("phone", "latency must be"), (3, "latency must be"),
                     (str(tmp_path / "none.json"), "does not exist")):
        with pytest.raises(ValueError, match=msg):
            get_source(bad)
    with pytest.raises(ValueError, match="must return a positive number"):
        get_source(lambda m: 0).predict_ms(_net())


def test_host_calibration_makes_the_table_predict_the_measured_whole_model(tmp_path):
    src = get_source("host", cache_path=str(tmp_path / "host.json"))
    m = _net(16)
    measured = src.calibrate(m, runs=10)
    assert src.table.correction["fitted_on"] == ["net"] and src.table.correction["scale"] > 0
    assert src.predict_ms(m) == pytest.approx(measured, rel=1e-6)
    reloaded = get_source("host", cache_path=str(tmp_path / "host.json"))   # the fit is kept with the table
    assert reloaded.predict_ms(m) == pytest.approx(measured, rel=1e-6)


def test_a_row_is_priced_in_the_turn_of_the_model_it_belongs_to(tmp_path, monkeypatch):
    """A row the host table lacks is timed among the blocks of its space's model, in model order
    (where it runs), not alone; a row already in the table is not timed again."""
    from keras_mobile.applications import MobileNetV3Small
    from keras_mobile.search import TableSpace
    from keras_mobile.search.latency import RowPricer
    space = TableSpace.from_model(MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10))
    src = get_source("host", cache_path=str(tmp_path / "host.json"))
    src.table.overhead = 0.0
    turns = []
    monkeypatch.setattr(src.table, "_slice", lambda b: b.name)
    monkeypatch.setattr(lt, "open_for_timing", lambda content, threads: content)
    monkeypatch.setattr(lt, "times_in_turn", lambda its, threads, runs: turns.append(list(its)) or [[1e-4]] * len(its))
    built = space.build()
    pricer = RowPricer(src)
    assert pricer.row(space, 3, built.row_inputs[3]) == pytest.approx(0.1)
    assert turns == [[b.name for b in lt.blocks(built.model)]]
    assert len(src.table.entries) == len({b.key() for b in lt.blocks(built.model)})   # the whole turn's blocks
    assert RowPricer(src).row(space, 3, built.row_inputs[3]) == pytest.approx(0.1) and len(turns) == 1
