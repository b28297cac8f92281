"""Reproduces the intermittent abort seen when training MobileOneS0 on TensorFlow's CPU (2026-12-03,
TF 2.21, Keras 3.15.1, AMD EPYC with AVX-512, 2 cores): heap corruption ("corrupted double-linked
list", "corrupted size vs. prev_size"), a segfault, or `Check failed: IsAligned()` in a BinaryOp.

    python scripts/mobileone_train_crash.py                              # crashed 3 of 5 runs
    TF_ENABLE_ONEDNN_OPTS=0 python scripts/mobileone_train_crash.py      # 0 of 5 runs

Each run: MobileOneS0 at 32 px on scikit-learn's digits, SGD momentum, 3 epochs (~80 s). Not yet
narrowed down to an op; the contrast points at TensorFlow's oneDNN kernels.
"""
import time

import keras

import keras_mobile
from keras_mobile.commands.demo import load_digits_rgb

(x, y), _ = load_digits_rgb(32)
keras.utils.set_random_seed(0)
model = keras_mobile.MobileOneS0(weights=None, input_shape=(32, 32, 3), classes=10)
model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
t = time.time()
model.fit(x, y, batch_size=32, epochs=3, verbose=2)
print(f"done in {time.time() - t:.0f} s (no crash)")
