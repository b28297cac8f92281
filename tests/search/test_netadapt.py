"""NetAdapt on a tiny MobileNetV3Small (32 px, sklearn digits): budget, shapes, inheritance,
export, determinism/resume, impossible budgets. One search is shared by the module's tests; the
EdgeTPU roofline is the latency source (analytic, so runs are reproducible). The host table's
predicted speed-ups vs LiteRT-measured ones: benchmarks/search_speedup_prediction.py."""
import importlib
import io
import json
import os
import zipfile

import h5py

import numpy as np
import pytest

import keras

from keras_mobile.applications import MobileNetV3Small
from keras_mobile.search import TableSpace, get_source, netadapt
from keras_mobile.search.inherit import inherit
from keras_mobile.search.netadapt import _kept
from tests.search.conftest import round_trip_and_export_int8

netadapt_module = importlib.import_module("keras_mobile.search.netadapt")
ROWS = (8, 9, 10)   # the last stage's group width and one expansion: few knobs keep the test fast


def _knobs(k):
    return (k.kind, k.rows) in (("mid", (10,)), ("out", ROWS))


def _search(parent, digits, out_dir, budget, **kw):
    kw = {"step": 0.1, **kw}
    return netadapt(parent, budget, digits[0], digits[1], latency="edgetpu", short_term_steps=2,
                    long_term_epochs=0, out_dir=str(out_dir), seed=0, batch_size=64, knobs=_knobs, **kw)


@pytest.fixture(scope="module")
def searched(parent, digits, tmp_path_factory):
    src = get_source("edgetpu")
    start = src.predict_ms(parent)
    budget = 0.85 * start
    out = tmp_path_factory.mktemp("netadapt")
    child = _search(parent, digits, out, budget)
    return child, budget, start, out


def test_reaches_budget_and_logs_every_proposal(searched):
    child, budget, start, out = searched
    assert get_source("edgetpu").predict_ms(child) <= budget < start
    log = json.load(open(out / "search.json"))
    assert log["done"] and log["current_ms"] <= budget and len(log["iterations"]) >= 2
    for it in log["iterations"]:
        assert it["proposals"], it
        for p in it["proposals"]:
            assert p["to"] < p["from"] and 0 <= p["accuracy"] <= 1 and p["predicted_ms"] > 0
            assert all(r in ROWS for r in p["rows"])
    assert [c["iteration"] for c in log["chosen_path"]] == [it["iteration"] for it in log["iterations"]]
    assert os.path.isfile(out / "model.keras")
    for name in ("model.keras", "current.keras"):     # saved without Adam's slots (19 -> 7 MB at full size)
        with zipfile.ZipFile(out / name) as z:
            assert "optimizer" not in h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")


def test_child_is_a_table_model_with_consistent_residual_widths(parent, searched):
    child = searched[0]
    before, after = TableSpace.from_model(parent), TableSpace.from_model(child)
    widths = after.widths()
    for i, r in enumerate(after.rows):
        assert r.skip == before.rows[i].skip            # no shortcut gained or lost
        if r.skip:
            assert widths[i + 1] == widths[i]           # a residual row keeps its input width
    changed = [i for i, (a, b) in enumerate(zip(before.rows, after.rows)) if a != b]
    assert changed and set(changed) <= set(ROWS) | {max(ROWS) + 1}   # + the row reading the group
    assert child.count_params() < parent.count_params()


def test_weights_inherited_kept_filters_and_unchanged_blocks(parent):
    space = TableSpace.from_model(parent)
    built = space.build()
    inherit(parent, built.model)
    knob = next(k for k in space.knobs() if k.kind == "mid" and k.rows == (9,))
    child_space = space.set(knob, 256)
    child = child_space.build()
    kept = _kept(built, space, knob, 256)
    inherit(built.model, child.model, kept)
    idx = kept[(576, 256)]
    # the expansion conv keeps the parent's largest-norm filters, exactly
    k_parent = np.asarray(built.expansion_conv(9).kernel.numpy())
    k_child = np.asarray(child.expansion_conv(9).kernel.numpy())
    np.testing.assert_array_equal(k_child, k_parent[..., idx])
    norms = np.sqrt((k_parent.reshape(-1, 576) ** 2).sum(0))
    assert norms[idx].min() >= np.delete(norms, idx).max()
    # rows before the change compute exactly what the parent computes
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    tap = lambda b: keras.Model(b.model.inputs, b.rows[8][-1].output)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(tap(child)(x)), np.asarray(tap(built)(x)))
    assert np.asarray(parent(x)).shape == np.asarray(child.model(x)).shape


def test_result_exports_int8_and_round_trips_keras(searched, digits, tmp_path):
    probs, ref = round_trip_and_export_int8(searched[0], digits[1][0][:16], digits[0][0][:32], tmp_path, 16)
    agree = (probs.argmax(-1) == ref.argmax(-1)).mean()
    assert agree >= 0.75


def test_interrupted_search_resumes_and_matches_the_uninterrupted_one(parent, digits, searched, tmp_path,
                                                                      monkeypatch):
    child, budget, _, first = searched
    calls = {"n": 0}
    real = netadapt_module._iteration

    def crash_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(netadapt_module, "_iteration", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        _search(parent, digits, tmp_path, budget)
    state = json.load(open(tmp_path / "state.json"))
    assert state["iteration"] == 1 and not state["done"]
    monkeypatch.setattr(netadapt_module, "_iteration", real)
    resumed = _search(parent, digits, tmp_path, budget)
    log, ref = json.load(open(tmp_path / "search.json")), json.load(open(first / "search.json"))
    assert [i["iteration"] for i in log["iterations"]] == [i["iteration"] for i in ref["iterations"]]
    assert log["chosen_path"] == ref["chosen_path"]       # same seed: same proposals, accuracies
    for a, b in zip(resumed.weights, child.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_budget_below_the_space_names_the_minimum(parent, digits, tmp_path):
    with pytest.raises(ValueError, match=r"below what the search can reach.*predicted at [0-9.]+ ms"):
        _search(parent, digits, tmp_path, 1e-6)


def test_bad_arguments(parent, digits):
    with pytest.raises(ValueError, match="budget_ms must be a positive"):
        netadapt(parent, 0, *digits)
    with pytest.raises(ValueError, match="the model takes"):
        netadapt(parent, 1.0, (digits[0][0][:, :16], digits[0][1]), digits[1], latency="edgetpu")
    with pytest.raises(ValueError, match="latency must be"):
        netadapt(parent, 1.0, *digits, latency="phone")
    other = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)],
                             name="custom")
    with pytest.raises(ValueError, match="the search supports the table models of mobilenetv3"):
        netadapt(other, 1.0, *digits)


def test_least_loss_per_ms_wins_when_no_proposal_reaches_the_target(parent, digits, tmp_path, monkeypatch):
    """A step no single knob can cut (target below every proposal): the search takes the proposal
    losing the least accuracy per ms removed (MobileNetV3's NetAdapt rule), not the most accurate.
    Accuracies are made to fall with the square root of the cut, so the smallest cut is the most
    accurate while the largest loses the least per ms."""
    src = get_source("edgetpu")
    start = src.predict_ms(parent)
    floor = src.predict_ms(TableSpace.from_model(parent).smallest(_knobs).build().model)

    def accuracy(model, data):              # the parent (nothing removed) scores 0.9
        removed = max(start - src.predict_ms(model), 0.0)
        return 0.9 - 0.2 * np.sqrt(removed / (start - floor))
    monkeypatch.setattr(netadapt_module, "evaluate", accuracy)
    _search(parent, digits, tmp_path, floor, max_iterations=1, step=0.95)
    it = json.load(open(tmp_path / "search.json"))["iterations"][0]
    rows = it["proposals"]
    assert len(rows) >= 2 and not any(r["reaches_target"] for r in rows)
    assert it["rule"] == "least_loss_per_ms"
    per_ms = [(0.9 - r["accuracy"]) / (start - r["predicted_ms"]) for r in rows]
    np.testing.assert_allclose([r["loss_per_ms"] for r in rows], per_ms, rtol=1e-6)
    assert it["chosen"] == int(np.argmin(per_ms)) != int(np.argmax([r["accuracy"] for r in rows]))


def test_training_losses_are_reported_per_fine_tuning_run(parent, digits, tmp_path):
    """on_train_loss sees every short-term run (one per proposal, its batch losses) and the long
    term, so a caller can watch the loss fall; nothing is reported without it."""
    reports = []
    train = (digits[0][0][:192], digits[0][1][:192])                # 3 batches of 64
    budget = 0.999 * get_source("edgetpu").predict_ms(parent)       # one iteration reaches it
    netadapt(parent, budget, train, digits[1], latency="edgetpu", step=0.1, short_term_steps=3,
             long_term_epochs=1, out_dir=str(tmp_path), batch_size=64,
             knobs=lambda k: (k.kind, k.rows) == ("mid", (10,)), on_train_loss=reports.append)
    log = json.load(open(tmp_path / "search.json"))
    short = [r for r in reports if r["phase"] == "short_term"]
    assert [(r["iteration"], r["knob"]) for r in short] == [(1, p["knob"]) for p in log["iterations"][0]["proposals"]]
    assert all(len(r["losses"]) == 3 and np.isfinite(r["losses"]).all() for r in short)
    assert [(r["phase"], r["iteration"], r["knob"], len(r["losses"])) for r in reports[len(short):]] == \
        [("long_term", 1, None, 3)]


def test_mobileone_stage_widths_shrink_and_the_result_reparameterizes(digits, tmp_path):
    """MobileOne rows are table rows like any other: NetAdapt narrows a stage (its residual-tied
    dw/pw pairs move together, identity branches kept), and the child still fuses exactly."""
    from keras_mobile import reparameterize
    from keras_mobile.applications import MobileOneS0
    keras.utils.set_random_seed(0)
    parent = MobileOneS0(weights=None, input_shape=(32, 32, 3), classes=10)
    space = TableSpace.from_model(parent)
    stage = next(k for k in space.knobs() if k.kind == "out" and len(k.rows) == 10)   # stage 2: 256 wide
    assert space.value(stage) == 256 and not any(k.kind == "mid" for k in space.knobs())
    src = get_source("edgetpu")
    budget = 0.97 * src.predict_ms(parent)
    child = netadapt(parent, budget, digits[0], digits[1], latency="edgetpu", step=0.03, short_term_steps=1,
                     long_term_epochs=0, out_dir=str(tmp_path), seed=0, batch_size=64,
                     knobs=lambda k: k == stage)
    assert src.predict_ms(child) <= budget
    after = TableSpace.from_model(child)
    assert after.value(stage) < 256 and after.value(stage) % 8 == 0
    assert [r.skip for r in after.rows] == [r.skip for r in space.rows]   # no identity branch lost
    x = digits[1][0][:4]
    np.testing.assert_allclose(np.asarray(reparameterize(child)(x)), np.asarray(child(x)), rtol=1e-4, atol=1e-5)
