"""Latency-driven slimming on tiny models (32 px MobileNets, sklearn digits): the supernet's chosen
path equals the extracted sub-network, gradients reach the architecture logits, the budget is
reached by predicted latency, determinism and resume, export. One slimming run is shared by the
module's tests; the EdgeTPU roofline is the latency source (analytic, reproducible)."""
import importlib
import json

import numpy as np
import pytest

import keras

from keras_mobile.applications import MobileNetV3Small, MobileNetV4ConvS
from keras_mobile.applications.blocks import BlockSpec
from keras_mobile.layers import ChoiceMix
from keras_mobile.search import SuperNet, TableSpace, get_source, slim, slim_path
from keras_mobile.search.slimming import price_choices
from keras_mobile.search.supernet import SLIMMABLE
from tests.search.conftest import round_trip_and_export_int8

slimming = importlib.import_module("keras_mobile.search.slimming")
X = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")


def _slim(parent, digits, out_dir, budget, seed=0):
    train = (digits[0][0][:128], digits[0][1][:128])         # fine-tuning: 4 batches
    return slim(parent, budget, train, digits[1], latency="edgetpu", steps=3, finetune_epochs=1,
                out_dir=str(out_dir), seed=seed, batch_size=32)


@pytest.fixture(scope="module")
def slimmed(parent, digits, tmp_path_factory):
    start = get_source("edgetpu").predict_ms(parent)
    budget = 0.6 * start
    out = tmp_path_factory.mktemp("slim")
    return _slim(parent, digits, out, budget), budget, start, out


@pytest.mark.parametrize("ctor", [MobileNetV3Small, MobileNetV4ConvS])
def test_extracted_subnetwork_equals_the_supernets_chosen_path(ctor):
    keras.utils.set_random_seed(1)
    model = ctor(weights=None, input_shape=(32, 32, 3), classes=10)
    net = SuperNet(TableSpace.from_model(model, SLIMMABLE))
    assert net.inherit(model) > 0
    # zero logits pick every row's own block: the supernet computes the parent exactly
    np.testing.assert_array_equal(np.asarray(net.model(X, training=False)), np.asarray(model(X, training=False)))
    rng = np.random.default_rng(2)
    picks = {i: int(rng.integers(len(c))) for i, c in net.choices.items()}
    removed = max(i for i, c in net.choices.items() if c[-1].type == "identity")
    picks[removed] = len(net.choices[removed]) - 1                                  # one row removed
    net.set_picks(picks)
    sub = net.extract()
    assert sub.count_params() < net.model.count_params()
    np.testing.assert_allclose(np.asarray(sub(X, training=False)), np.asarray(net.model(X, training=False)),
                               atol=1e-5)
    # the sub-network reads back as its table (kernels, UIB variants, the removed row)
    block = lambda r: (r.type, r.start_kernel, r.kernel)  # noqa: E731
    assert [block(r) for r in TableSpace.from_model(sub).rows] == [block(r) for r in net.choose(picks).rows]


def test_efficientformer_meta3d_candidates_in_the_attention_stage():
    from keras_mobile.applications import EfficientFormerL1
    keras.utils.set_random_seed(1)
    model = EfficientFormerL1(weights=None, classes=10)
    net = SuperNet(TableSpace.from_model(model, SLIMMABLE), rows=range(14, 19))
    kinds = {i: [c.type for c in cands] for i, cands in net.choices.items()}
    assert kinds == {14: ["meta4d", "meta3d", "identity"], 15: ["meta4d", "meta3d", "identity"],
                     16: ["meta4d", "meta3d", "identity"], 18: ["meta3d", "identity"]}
    net.inherit(model)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    net.set_picks({14: 0, 15: 1, 16: 1, 18: 0})           # Meta4D, then two Meta3D on the map
    sub = net.extract()
    np.testing.assert_allclose(np.asarray(sub(x)), np.asarray(net.model(x, training=False)), atol=1e-5)


def test_choice_mix_gradients_reach_the_logits_and_inference_takes_the_argmax():
    keras.utils.set_random_seed(0)
    x = keras.Input((4,))
    mix = ChoiceMix(2, temperature=1.0, name="mix")
    y = mix([keras.layers.Dense(1, name="a")(x), keras.layers.Dense(1, name="b")(x)])
    model = keras.Model(x, y)
    xs = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    ys = xs @ np.asarray(model.get_layer("b").kernel)          # branch b is right as it is
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    for _ in range(20):
        model.train_on_batch(xs, ys)
    p = mix.probabilities()
    assert p[1] > 0.6, p                                       # the logits learned to prefer b
    np.testing.assert_allclose(np.asarray(model(xs, training=False)),
                               np.asarray(model.get_layer("b")(xs)), atol=1e-6)
    mix.set_alive([1, 0])                                      # b dropped: inference takes a
    np.testing.assert_allclose(np.asarray(model(xs, training=False)),
                               np.asarray(model.get_layer("a")(xs)), atol=1e-6)


def test_slimming_reaches_the_budget_and_logs_choices(slimmed):
    child, budget, start, out = slimmed
    log = json.load(open(out / "slim.json"))
    assert log["done"] and log["predicted_ms"] <= budget < start == pytest.approx(log["start_ms"])
    assert log["steps"], "the budget needed slimming steps"
    ms = [s["predicted_ms"] for s in log["steps"]]
    assert ms == sorted(ms, reverse=True) and all(s["ms_saved"] > 0 for s in log["steps"])
    for c in log["choices"]:
        assert len(c["importance"]) == len(c["candidates"]) == len(c["latency_ms"])
        assert abs(sum(c["importance"]) - 1) < 1e-4
    # the roofline of the extracted model agrees with the row-by-row prediction
    assert get_source("edgetpu").predict_ms(child) == pytest.approx(log["predicted_ms"], rel=0.02)
    assert 0 <= log["accuracy"] <= 1


def test_deterministic_under_a_seed_resumes_and_reslims_the_trained_supernet(parent, digits, slimmed, tmp_path,
                                                                    monkeypatch):
    child, budget, _, first = slimmed
    real = slimming.slim_path

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(slimming, "slim_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _slim(parent, digits, tmp_path, budget)
    with np.load(tmp_path / "supernet.npz") as a, np.load(first / "supernet.npz") as b:
        assert a.files == b.files
        for k in a.files:                                     # same seed: the same trained supernet
            np.testing.assert_array_equal(a[k], b[k])
    monkeypatch.setattr(slimming, "slim_path", real)
    monkeypatch.setattr(slimming, "train_supernet", lambda *a, **k: pytest.fail("trained again"))
    resumed = _slim(parent, digits, tmp_path, budget)
    log, ref = json.load(open(tmp_path / "slim.json")), json.load(open(first / "slim.json"))
    assert log["choices"] == ref["choices"] and log["steps"] == ref["steps"]
    for u, v in zip(resumed.weights, child.weights):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    # another budget re-slims the trained supernet (still not trained again)
    tighter = _slim(parent, digits, tmp_path, budget * 0.9)
    log = json.load(open(tmp_path / "slim.json"))
    assert log["slim"]["budget_ms"] == budget * 0.9 and log["predicted_ms"] <= budget * 0.9
    assert get_source("edgetpu").predict_ms(tighter) < get_source("edgetpu").predict_ms(child)
    with pytest.raises(ValueError, match="other arguments"):
        _slim(parent, digits, tmp_path, budget, seed=1)


def test_result_round_trips_keras_and_exports_int8(slimmed, digits, tmp_path):
    probs, ref = round_trip_and_export_int8(slimmed[0], digits[1][0][:16], digits[0][0][:32], tmp_path, 16)
    assert (probs.argmax(-1) == ref.argmax(-1)).mean() >= 0.75


def test_budget_below_the_minimum_names_it(parent, digits, tmp_path):
    net = SuperNet(TableSpace.from_model(parent, SLIMMABLE))
    floor = price_choices(net, "edgetpu").min_ms
    with pytest.raises(ValueError, match=rf"below what slimming can reach.*predicted at {floor:.3f} ms"):
        slim_path(net, floor * 0.99, "edgetpu")
    with pytest.raises(ValueError, match=rf"predicted at {floor:.3f} ms"):
        _slim(parent, digits, tmp_path, floor * 0.99)
    assert not (tmp_path / "supernet.npz").exists()         # failed before training


def test_bad_arguments(parent, digits):
    with pytest.raises(ValueError, match="budget_ms must be a positive"):
        slim(parent, 0, *digits)
    with pytest.raises(ValueError, match="slim supports the table models of"):
        slim("MobileOneS0", 1.0, *digits)
    with pytest.raises(ValueError, match="the search supports the table models of"):
        slim(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]),
             1.0, *digits)
    with pytest.raises(ValueError, match="the model takes"):
        slim(parent, 1.0, (digits[0][0][:, :16], digits[0][1]), digits[1], latency="edgetpu")
    with pytest.raises(ValueError, match=r"rows \[99\] are not row indices"):
        SuperNet(TableSpace.from_model(parent, SLIMMABLE), rows=[1, 99])
    net = SuperNet(TableSpace.from_model(parent, SLIMMABLE), rows=[1])
    with pytest.raises(ValueError, match="is not a choice of this supernet"):
        net.extract({1: 7})
    with pytest.raises(ValueError, match="only a choice row lists candidate rows"):
        BlockSpec("ir", 16, choices=(BlockSpec("ir", 16),))
    with pytest.raises(ValueError, match="temperature must be two positive"):
        slimming.train_supernet(net, digits[0], steps=1, temperature=(1.0, 0))


def test_a_model_name_slims_a_fresh_model_sized_by_the_data(digits, tmp_path):
    train = (digits[0][0][:64], digits[0][1][:64])
    start = get_source("edgetpu").predict_ms(MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10))
    child = slim("MobileNetV3Small", start, train, digits[1], latency="edgetpu", steps=1, finetune_epochs=0,
                 out_dir=str(tmp_path), rows=(i for i in (1, 2)))     # any iterable of rows
    assert tuple(child.inputs[0].shape[1:]) == (32, 32, 3) and child.outputs[0].shape[-1] == 10
    assert [c["row"] for c in json.load(open(tmp_path / "slim.json"))["choices"]] == [1, 2]


def test_a_whole_model_source_prices_candidates_by_whole_model_differences(parent):
    def params_ms(model):                        # a callable source: whole models only
        return model.count_params() / 1e5
    net = SuperNet(TableSpace.from_model(parent, SLIMMABLE), rows=[2, 4])
    prices = price_choices(net, params_ms)
    assert not prices.rowwise and prices.start_ms == params_ms(parent)
    for i, cands in net.choices.items():
        assert prices.costs[i][0] == 0 and prices.costs[i][-1] < 0       # the identity saves parameters
    path = slim_path(net, prices.min_ms, prices=prices)
    assert path.predicted_ms == pytest.approx(params_ms(net.extract(path.picks))) and path.predicted_ms <= prices.min_ms


def test_whole_model_prices_that_do_not_add_up_are_checked_on_the_model(parent):
    """A convex whole-model cost: the sum of per-row savings over-promises, so a pick that fits by
    the sum can miss the budget. Slimming re-prices the model and keeps going; where even the
    cheapest picks miss, the result says so (budget_met False) instead of claiming the budget."""
    def convex_ms(model):
        return 10 * (model.count_params() / parent.count_params()) ** 8
    net = SuperNet(TableSpace.from_model(parent, SLIMMABLE), rows=[2, 4])
    prices = price_choices(net, convex_ms)
    cheapest = convex_ms(net.extract({i: int(np.argmin(c)) for i, c in prices.costs.items()}))
    assert cheapest > prices.min_ms * 1.01                        # the sum over-promises
    path = slim_path(net, cheapest, prices=prices)
    assert path.budget_met and convex_ms(net.extract(path.picks)) <= cheapest
    short = slim_path(net, (cheapest + prices.min_ms) / 2, prices=prices)
    assert not short.budget_met and short.predicted_ms == pytest.approx(cheapest)


@pytest.mark.parametrize("bad", [True, 0, -1.0, "5", None])
def test_budget_must_be_a_positive_number(bad, digits):
    with pytest.raises(ValueError, match="budget_ms must be a positive number"):
        slim("MobileNetV3Small", bad, digits[0], digits[1])
    slimming._check_budget(np.float32(2.5))                        # numpy scalars are numbers


def test_a_different_parent_does_not_reuse_the_trained_supernet(parent, slimmed, digits, tmp_path):
    """Same family and arguments, other weights: the trained supernet and result in out_dir belong
    to the first parent, so the run refuses (clear error) instead of slimming the wrong network."""
    import shutil
    budget, first = slimmed[1], slimmed[3]
    shutil.copytree(first, tmp_path / "run")
    other = keras.models.clone_model(parent)
    other.set_weights([w + 0.01 for w in parent.get_weights()])
    with pytest.raises(ValueError, match="other arguments"):
        _slim(other, digits, tmp_path / "run", budget)


def test_a_slimmed_model_reads_back_as_its_space_and_enters_netadapt(parent, digits, tmp_path):
    """A slimming result (rows removed, other kernels) is a table model NetAdapt can shrink further:
    `TableSpace.from_model` finds each row's block from its layers (the removed row tied to its
    input width), the space rebuilds it exactly, and an output width that spans a removed row shrinks."""
    from keras_mobile.search import netadapt
    from keras_mobile.search.inherit import inherit
    net = SuperNet(TableSpace.from_model(parent, SLIMMABLE))
    net.inherit(parent)
    picks = {i: len(c) - 1 for i, c in net.choices.items()}   # the identity where a row has one, else the other kernel
    picks[1] = 0
    child = net.extract(picks)
    space = TableSpace.from_model(child)
    chosen = net.choose(picks)
    assert [(r.type, r.kernel) for r in space.rows] == [(r.type, r.kernel) for r in chosen.rows]
    assert space.rows[2].type == "identity" and space.rows[2].out == space.rows[1].out == 24
    rebuilt = space.build().model
    inherit(child, rebuilt)
    np.testing.assert_array_equal(np.asarray(rebuilt(X)), np.asarray(child(X)))

    src = get_source("edgetpu")
    across = lambda k: k.kind == "out" and 2 in k.rows  # noqa: E731  (rows 1 and 2: ir + the removed row)
    start, floor = src.predict_ms(child), src.predict_ms(space.smallest(across).build().model)
    few = lambda d: (d[0][:64], d[1][:64])  # noqa: E731
    adapted = netadapt(child, (start + floor) / 2, few(digits[0]), few(digits[1]), latency="edgetpu",
                       short_term_steps=1, long_term_epochs=0, knobs=across, out_dir=str(tmp_path), batch_size=32)
    after = TableSpace.from_model(adapted)
    assert [(r.type, r.kernel) for r in after.rows] == [(r.type, r.kernel) for r in space.rows]
    assert after.rows[2].out == after.rows[1].out < 24
    assert src.predict_ms(adapted) <= (start + floor) / 2


def test_a_model_no_slimming_explains_is_refused_naming_the_layer():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, name="stem")],
                             name="MobileNetV3Small")
    with pytest.raises(ValueError, match="MobileNetV3Small has no layer .* of its table"):
        TableSpace.from_model(model)
