"""Trains MobileOneS0 as the run that aborted intermittently on TensorFlow's CPU (2026-12-03, TF 2.21,
Keras 3.15.1, AMD EPYC with AVX-512, 2 cores): heap corruption ("corrupted double-linked list",
"corrupted size vs. prev_size", "double free or corruption"), a segfault (also at interpreter exit), or
`Check failed: IsAligned()` in a BinaryOp whose tensor pointer had been overwritten with float data.

    python scripts/mobileone_train_crash.py                              # "done in N s (no crash)"
    TF_ENABLE_ONEDNN_OPTS=0 python scripts/mobileone_train_crash.py      # TensorFlow without oneDNN

Each run: MobileOneS0 at 32 px on scikit-learn's digits, SGD momentum, 3 epochs (~80 s idle).
Cause: the stem's 1x1 stride-2 "scale" conv (3 input channels). oneDNN computes its weight gradient
with `jit_1x1:avx512_core` backward_weights through a "reduce to unit stride" workspace that, for
NHWC sources with fewer input channels than the 16-channel block, it indexes past its end
(uxlfoundation/oneDNN#6035, open; `ONEDNN_VERBOSE=1` lists `mb32_ic3oc48_ih32oh16kh1sh2`). Found by
ablation: replacing the depthwise scale branches or using one kxk branch still crashed (1 of 2 runs
each), and a gdb run stopped in the destructor of a cached oneDNN 1x1 backward-weights primitive.
MobileOneBlock now runs a strided 1x1 scale conv as a stride-1 conv on the subsampled input (same
numbers, same weights), so no strided 1x1 conv reaches oneDNN. Run counts, 10 runs of each package
interleaved with scripts/mobileone_crash_ab.py (2026-12-03, load 1.2-8.9): before the workaround (9d64bcc)
6 aborted (4 SIGSEGV, 2 SIGABRT: "corrupted double-linked list", a BFCAllocator check), with it 0.
"""
import time

import keras

import keras_mobile
from keras_mobile.commands.demo import load_digits_rgb

print("keras_mobile from", keras_mobile.__file__, flush=True)
(x, y), _ = load_digits_rgb(32)
keras.utils.set_random_seed(0)
model = keras_mobile.MobileOneS0(weights=None, input_shape=(32, 32, 3), classes=10)
model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
t = time.time()
model.fit(x, y, batch_size=32, epochs=3, verbose=2)
print(f"done in {time.time() - t:.0f} s (no crash)")
