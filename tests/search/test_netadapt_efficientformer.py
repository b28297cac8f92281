"""NetAdapt on a tiny EfficientFormer: its Meta4D/Meta3D MLP widths ("mid") and its stage widths
("out": a stage's downsample and the residual Meta blocks after it move together; the stem with
stage 0) are knobs like any family's rows. EfficientFormer only builds at 224 px (attention biases
learned for a 7x7 grid), so the parent is EfficientFormerL1's table at 16-32 channels (74 k
parameters), untrained; the EdgeTPU roofline prices it (analytic, reproducible)."""
import json

import numpy as np
import pytest

import keras

from keras_mobile.applications import EfficientFormerL1
from keras_mobile.search import TableSpace, get_source, netadapt
from keras_mobile.search.inherit import inherit
from keras_mobile.search.netadapt import _kept
from tests.search.conftest import round_trip_and_export_int8

STAGE1 = ("out", (3, 4, 5))        # stage 1: downsample + 2 Meta4D, one width
META3D = ("mid", (18,))            # the attention block's MLP


def _knobs(k):                     # two knobs that each cut ~4 % of this parent (few proposals: fast)
    return (k.kind, k.rows) in (("mid", (0,)), STAGE1)


@pytest.fixture(scope="module")
def parent():
    keras.utils.set_random_seed(0)
    space = TableSpace.from_model(EfficientFormerL1(weights=None, classes=10))
    for k in space.knobs():
        space = space.set(k, 32 if k.kind == "mid" else 16 + 8 * (k.rows[0] > 6))
    return space.build().model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (24, 224, 224, 3)).astype("float32")
    return (x[:16], np.arange(16) % 10), (x[16:], np.arange(8) % 10)


@pytest.fixture(scope="module")
def searched(parent, data, tmp_path_factory):
    src = get_source("edgetpu")
    budget = 0.97 * src.predict_ms(parent)
    out = tmp_path_factory.mktemp("netadapt_ef")
    child = netadapt(parent, budget, *data, latency="edgetpu", step=0.03, short_term_steps=1,
                     long_term_epochs=0, out_dir=str(out), seed=0, batch_size=8, knobs=_knobs)
    return child, budget, out


def test_search_reaches_the_budget_with_residual_widths_tied(parent, searched):
    child, budget, out = searched
    assert get_source("edgetpu").predict_ms(child) <= budget
    log = json.load(open(out / "search.json"))
    assert log["done"] and {p["kind"] for it in log["iterations"] for p in it["proposals"]} == {"mid", "out"}
    before, after = TableSpace.from_model(parent), TableSpace.from_model(child)
    widths = after.widths()
    for i, r in enumerate(after.rows):
        assert r.skip == before.rows[i].skip
        if r.skip:                                      # Meta blocks keep their stage's width
            assert widths[i + 1] == widths[i]
    assert after.rows != before.rows and child.count_params() < parent.count_params()


def test_unchanged_blocks_keep_the_parents_weights(parent):
    """A stage width and the Meta3D MLP width cut at once: rows before the stage compute exactly
    what the parent computes, rows after it hold the parent's weights, and the cut layers keep
    the parent's largest-norm channels."""
    space = TableSpace.from_model(parent)
    built = space.build()
    inherit(parent, built.model)
    stage = next(k for k in space.knobs() if (k.kind, k.rows) == STAGE1)
    mlp = next(k for k in space.knobs() if (k.kind, k.rows) == META3D)
    kept = {**_kept(built, space, stage, 8), **_kept(built, space, mlp, 16)}
    child_space = space.set(stage, 8).set(mlp, 16)
    child = child_space.build()
    inherit(built.model, child.model, kept)
    x = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    tap = lambda b: keras.Model(b.model.inputs, b.rows[2][-1].output)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(tap(child)(x)), np.asarray(tap(built)(x)))
    touched = {3, 4, 5, 6, 18}                          # the stage, the row reading it, the Meta3D
    for i, (rp, rc) in enumerate(zip(built.rows, child.rows)):
        if i not in touched:
            for lp, lc in zip(rp, rc):
                for wp, wc in zip(lp.weights, lc.weights):
                    np.testing.assert_array_equal(np.asarray(wc), np.asarray(wp))
    idx = kept[(16, 8)]
    down = built.expansion_conv(3), child.expansion_conv(3)     # the stage's downsample conv
    np.testing.assert_array_equal(np.asarray(down[1].kernel), np.asarray(down[0].kernel)[..., idx])
    fc1 = built.expansion_conv(18), child.expansion_conv(18)
    np.testing.assert_array_equal(np.asarray(fc1[1].kernel), np.asarray(fc1[0].kernel)[:, kept[(32, 16)]])
    assert np.asarray(child.model(x)).shape == (2, 10)


def test_result_round_trips_keras_and_exports_int8(searched, data, tmp_path):
    probs, ref = round_trip_and_export_int8(searched[0], data[1][0][:4], data[0][0], tmp_path, 8)
    assert probs.shape == ref.shape and np.abs(probs - ref).max() <= 0.1 * np.abs(ref).max()
