"""Warmup + cosine schedule, cosine annealing and the per-family recipes, checked numerically."""
import math

import keras
import numpy as np
import pytest

from keras_mobile import training


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_warmup_then_cosine_values():
    s = training.cosine_with_warmup(1e-3, total_steps=110, warmup_steps=10, final_lr=1e-5)
    assert lr_at(s, 0) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(s, 5) == pytest.approx(5e-4, rel=1e-5)            # linear warmup
    assert lr_at(s, 10) == pytest.approx(1e-3, rel=1e-5)           # peak
    assert lr_at(s, 60) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5), rel=1e-5)   # cosine midpoint
    assert lr_at(s, 110) == pytest.approx(1e-5, rel=1e-4)          # final
    assert lr_at(s, 500) == pytest.approx(1e-5, rel=1e-4)          # stays there
    for step in (20, 35, 80, 100):   # the whole curve is the cosine of `cosine_anneal`
        assert lr_at(s, step) == pytest.approx(training.cosine_anneal(step - 10, 100, 1e-3, 1e-5), rel=1e-5)
    values = [lr_at(s, i) for i in range(0, 111, 5)]
    assert np.all(np.diff(values[:3]) > 0) and np.all(np.diff(values[2:]) < 0)


def test_no_warmup_starts_at_peak():
    s = training.cosine_with_warmup(0.1, total_steps=100)
    assert lr_at(s, 0) == pytest.approx(0.1)
    assert lr_at(s, 50) == pytest.approx(0.05, rel=1e-5)
    assert lr_at(s, 100) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(peak_lr=0, total_steps=10), "peak_lr"),
    (dict(peak_lr=1e-3, total_steps=0), "total_steps"),
    (dict(peak_lr=1e-3, total_steps=10, warmup_steps=10), "warmup_steps"),
    (dict(peak_lr=1e-3, total_steps=10, final_lr=1.0), "final_lr"),
])
def test_schedule_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        training.cosine_with_warmup(**kwargs)


def test_cosine_anneal_endpoints_and_midpoint():
    assert training.cosine_anneal(0, 10, 1e-4, 1e-5) == pytest.approx(1e-4)
    assert training.cosine_anneal(5, 10, 1e-4, 1e-5) == pytest.approx(5.5e-5)
    assert training.cosine_anneal(10, 10, 1e-4, 1e-5) == pytest.approx(1e-5)
    assert training.cosine_anneal(99, 10, 1e-4, 1e-5) == pytest.approx(1e-5)


def test_recipe_lr_scaling_warmup_and_ema():
    sgd = training.recipe("MobileOneS0", epochs=10, steps_per_epoch=100, batch_size=128)
    adamw = training.recipe("MobileNetV4ConvS", epochs=10, steps_per_epoch=100, batch_size=64)
    assert sgd.optimizer_name == "sgd" and adamw.optimizer_name == "adamw"
    assert sgd.peak_lr == pytest.approx(sgd.learning_rate * 128 / 256)            # linear for SGD
    assert adamw.peak_lr == pytest.approx(adamw.learning_rate * math.sqrt(64 / 256))   # sqrt for AdamW
    assert adamw.warmup_steps == 100                                              # 1 epoch
    short = training.recipe("MobileNetV4ConvS", epochs=2, steps_per_epoch=10)
    assert short.warmup_steps == 4                                               # capped at 20 %
    assert short.ema_momentum is None                                            # too short for EMA
    assert adamw.ema_momentum == pytest.approx(1 - 10 / 1000)
    opt = adamw.optimizer()
    assert isinstance(opt, keras.optimizers.AdamW) and opt.use_ema
    assert lr_at(adamw.schedule(), 100) == pytest.approx(adamw.peak_lr, rel=1e-5)
    assert lr_at(adamw.schedule(), 1000) == pytest.approx(adamw.peak_lr * adamw.final_lr_ratio, rel=1e-4)


def test_recipe_family_choices():
    mo = training.recipe("MobileOneS1", epochs=5, steps_per_epoch=10)
    assert isinstance(mo.optimizer(), keras.optimizers.SGD)
    assert [type(c).__name__ for c in mo.callbacks()] == ["WeightDecayAnnealing"]   # 1e-4 -> 1e-5
    assert (mo.weight_decay, mo.weight_decay_end) == (1e-4, 1e-5)
    ef = training.recipe("EfficientFormerL1", epochs=5, steps_per_epoch=10, pretrained=False)
    assert ef.augment.mixup_alpha > 0 and ef.augment.cutmix_alpha > 0 and ef.drop_path_rate > 0
    loss = training.recipe("MobileNetV3Large", epochs=1, steps_per_epoch=1).loss()
    assert loss.label_smoothing == pytest.approx(0.1)


@pytest.mark.parametrize("args, match", [
    (("ResNet50", 1, 1), "unknown model"),
    (("MobileNetV4ConvS", 0, 1), "epochs"),
    (("MobileNetV4ConvS", 1, 1.5), "steps_per_epoch"),
])
def test_recipe_errors(args, match):
    with pytest.raises(ValueError, match=match):
        training.recipe(*args)
    with pytest.raises(ValueError, match="unknown recipe fields"):
        training.recipe("MobileNetV4ConvS", 1, 1, learnin_rate=1.0)
