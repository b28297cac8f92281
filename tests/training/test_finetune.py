"""Fine-tuning helpers: new classifiers over checkpoint files (timm layout and Keras .weights.h5),
freezing with BatchNorm kept in inference mode, partial unfreezing, discriminative LR."""
import keras
import numpy as np
import pytest

from keras_mobile import training

SMALL = dict(name="MobileNetV3Small", input_size=32, minimalistic=True)


def small(num_classes, weights=None, **kw):
    return training.build_finetune_model(SMALL["name"], num_classes, weights=weights,
                                         input_size=SMALL["input_size"], minimalistic=True, **kw)


def randomise(model, seed=0):
    """Random weights and BN statistics, so a round trip cannot pass by accident."""
    rng = np.random.default_rng(seed)
    model.set_weights([np.abs(rng.normal(0.5, 0.2, w.shape)).astype("float32") + 0.1
                       if "variance" in v.path else rng.normal(0, 0.1, w.shape).astype("float32")
                       for v, w in zip(model.weights, model.get_weights())])
    return model


def by_name(model):
    return {v.path: v.numpy() for v in model.weights}


@pytest.fixture(scope="module")
def mobileone32():
    """One MobileOneS0 (slow to build: several branches per block) shared by two tests."""
    return training.build_finetune_model("MobileOneS0", 7, weights=None, input_size=32, dropout=0)


@pytest.mark.parametrize("name, size, heads", [
    ("MobileNetV3Small", 32, ["classifier"]),
    pytest.param("MobileOneS0", 32, ["head-fc"], marks=pytest.mark.slow),
    pytest.param("EfficientFormerL1", 224, ["head", "head_dist"], marks=pytest.mark.slow),
])
def test_new_classifier_over_a_timm_layout_checkpoint(tmp_path, name, size, heads, request):
    kw = dict(minimalistic=True) if name == "MobileNetV3Small" else {}
    source = request.getfixturevalue("mobileone32") if name == "MobileOneS0" else \
        training.build_finetune_model(name, 7, weights=None, input_size=size, dropout=0, **kw)
    randomise(source)
    path = training.save_timm_checkpoint(source, str(tmp_path / "ckpt.safetensors"))
    if name == "MobileNetV3Small":   # same classes: the file reproduces the model exactly
        same = training.build_finetune_model(name, 7, weights=path, input_size=size, dropout=0, **kw)
        x = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
        np.testing.assert_allclose(same(x, training=False), source(x, training=False), rtol=1e-5, atol=1e-6)

    new = training.build_finetune_model(name, 3, weights=path, input_size=size, dropout=0, **kw)
    assert [l.name for l in training.classifier_layers(new)] == heads
    assert all(l.units == 3 for l in training.classifier_layers(new))
    assert tuple(new.output.shape) == (None, 3)
    src, dst = by_name(source), by_name(new)
    trunk = [p for p in dst if not p.startswith(tuple(h + "/" for h in heads))]
    assert len(trunk) == len(src) - 2 * len(heads)
    for p in trunk:
        np.testing.assert_array_equal(dst[p], src[p])


def test_keras_weights_file_with_another_classifier_size(tmp_path):
    source = randomise(small(5))
    source.save_weights(tmp_path / "five.weights.h5")
    model = small(10, weights=str(tmp_path / "five.weights.h5"))
    src, dst = by_name(source), by_name(model)
    assert model.output.shape[-1] == 10
    same = [p for p in dst if src[p].shape == dst[p].shape and np.array_equal(src[p], dst[p])]
    assert set(dst) - set(same) == {"classifier/kernel", "classifier/bias"}
    other = training.build_finetune_model("MobileNetV3Small", 5, weights=None, input_size=32)   # hard-swish + SE
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError, match="does not match"):   # Keras alone would only warn
        small(10, weights=str(tmp_path / "other.weights.h5"))
    with pytest.raises(ValueError, match="not found"):
        small(10, weights=str(tmp_path / "missing.weights.h5"))


@pytest.mark.slow
def test_checkpoint_classes_of_a_published_tag():
    from keras_mobile.applications import MobileNetV4ConvM
    from keras_mobile.weights.source import parse
    probe = lambda: MobileNetV4ConvM(weights=None, include_top=False, input_shape=(64, 64, 3)).timm_name  # noqa: E731
    assert parse(probe, "e180_r384_in12k").num_classes == 11821


def batchnorm_stats(model):
    return {v.path: v.numpy() for v in model.non_trainable_weights if "moving" in v.path}


def fit_steps(model, steps=1, seed=0, **recipe_kw):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (8 * steps, 32, 32, 3)).astype("float32")
    y = np.eye(model.output.shape[-1], dtype="float32")[rng.integers(0, model.output.shape[-1], 8 * steps)]
    r = training.recipe(SMALL["name"], 1, steps, batch_size=8, warmup_epochs=0, **recipe_kw)
    r.compile(model, run_eagerly=True)      # a few eager steps: no tracing cost in the test
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def changed(before, model, path):
    now = {v.path: v.numpy() for v in model.weights}
    return not np.array_equal(before[path], now[path])


def test_freeze_then_unfreeze_keeps_batchnorm_statistics():
    model = small(4)
    training.freeze_backbone(model)
    before, stats = by_name(model), batchnorm_stats(model)
    fit_steps(model)
    assert stats and all(np.array_equal(v, batchnorm_stats(model)[k]) for k, v in stats.items())
    assert changed(before, model, "classifier/kernel")
    assert not changed(before, model, "conv_head/kernel") and not changed(before, model, "conv_stem/kernel")

    training.unfreeze(model, from_layer="blocks.3")                 # BN stays frozen by default
    before = by_name(model)
    fit_steps(model, seed=1)
    assert all(np.array_equal(v, batchnorm_stats(model)[k]) for k, v in stats.items())
    assert changed(before, model, "blocks-4-0-conv_pw/kernel") and changed(before, model, "conv_head/kernel")
    assert not changed(before, model, "blocks-2-0-conv_pw/kernel")


@pytest.mark.slow
def test_unfreeze_reaches_batchnorm_inside_mobileone_blocks(mobileone32):
    model = mobileone32
    training.unfreeze(training.freeze_backbone(model), from_layer="stages-3")   # layer-name form
    block = model.get_layer("stages-3-0")
    inner = [l for l in block._flatten_layers(include_self=False) if isinstance(l, keras.layers.BatchNormalization)]
    assert block.trainable and inner and not any(l.trainable for l in inner)
    assert not model.get_layer("stages-2-0").trainable


def test_backbone_lr_scale_zero_trains_only_the_classifier():
    model = small(4)
    before = by_name(model)
    fit_steps(model, steps=1, backbone_lr_scale=0.0)
    assert changed(before, model, "classifier/kernel")
    assert not changed(before, model, "conv_head/kernel") and not changed(before, model, "blocks-4-0-conv_pw/kernel")


def test_errors():
    with pytest.raises(ValueError, match="unknown model"):
        training.build_finetune_model("ResNet50", 3, weights=None)
    with pytest.raises(ValueError, match="num_classes"):
        small(0)
    model = small(3)
    with pytest.raises(ValueError, match="no layers named"):
        training.freeze_backbone(model, trainable=["nope"])
    with pytest.raises(ValueError, match="no layer named"):
        training.unfreeze(model, from_layer="blocks.99")
    headless = keras.Model(model.input, model.get_layer("flatten").output)
    with pytest.raises(ValueError, match="no classifier"):
        training.classifier_layers(headless)


TIMM_SCRIPT = r"""
import sys, numpy as np, torch, timm
from safetensors.torch import load_file
name, path, classes, x_path, out_path = sys.argv[1:6]
model = timm.create_model(name, num_classes=int(classes), pretrained=False)
missing, unexpected = model.load_state_dict(load_file(path), strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
model.eval()
with torch.no_grad():
    np.save(out_path, model(torch.from_numpy(np.load(x_path))).numpy())
"""


@pytest.mark.slow
@pytest.mark.parametrize("name, timm_name, size, kw", [
    ("MobileNetV3Small", "tf_mobilenetv3_small_minimal_100", 64, dict(minimalistic=True)),
    ("MobileOneS0", "mobileone_s0", 64, {}),
])
def test_timm_runs_a_saved_checkpoint_like_keras(tmp_path, name, timm_name, size, kw):
    """A fine-tuned model saved with save_timm_checkpoint loads into timm (PyTorch) and gives the
    same logits: the file is a real timm state_dict."""
    import os
    import subprocess
    import sys

    from keras_mobile.weights import registry
    from tests.timm_fixture import HAVE_TIMM   # never import torch here: it crashes next to TF
    if not HAVE_TIMM:
        pytest.skip("torch/timm not installed (they are in the test extra)")
    model = training.build_finetune_model(name, 7, weights=None, input_size=size, dropout=0,
                                          classifier_activation=None, **kw)
    # random weights with BN statistics that keep activations O(1)
    rng = np.random.default_rng(0)
    for v in model.weights:
        if "moving_variance" in v.path:
            v.assign(rng.uniform(0.5, 1.5, v.shape))
        elif "moving_mean" in v.path or "beta" in v.path:
            v.assign(rng.normal(0, 0.1, v.shape))
    path = training.save_timm_checkpoint(model, str(tmp_path / "ft.safetensors"))
    x = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
    info = registry.preprocessing_info(timm_name, None)
    normalised = ((x / 255.0 - np.array(info["mean"])) / np.array(info["std"])).transpose(0, 3, 1, 2)
    np.save(tmp_path / "x.npy", normalised.astype("float32"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_")}
    subprocess.run([sys.executable, "-c", TIMM_SCRIPT, timm_name, path, "7", str(tmp_path / "x.npy"),
                    str(tmp_path / "y.npy")], check=True, env=env)
    expected = np.asarray(model(x, training=False))
    got = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(got, expected, atol=1e-4 * max(1.0, np.abs(expected).max()))
