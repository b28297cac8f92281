"""Training and IO helpers the searches share (NetAdapt, slimming): batches of (raw pixels,
labels), short Adam fine-tuning, top-1 accuracy, atomic JSON/.keras writes, a progress bar."""
import contextlib
import json
import os
import sys
import tempfile

import numpy as np

from keras_mobile.files import save_atomic, write_atomic


# data ------------------------------------------------------------------------------------------
class Data:
    """Batches of (raw pixels, labels) from (x, y) arrays or a tf.data pipeline of (x, y) batches."""

    def __init__(self, data, input_shape, batch_size, name):
        self.arrays = isinstance(data, (tuple, list))
        if self.arrays:
            if len(data) != 2:
                raise ValueError(f"{name} must be (x, y) arrays or a tf.data.Dataset of (x, y) batches")
            x, y = np.asarray(data[0], "float32"), np.asarray(data[1])
            if x.ndim == 3 and input_shape[-1] == 3:
                x = np.repeat(x[..., None], 3, -1)
            if tuple(x.shape[1:]) != tuple(input_shape):
                raise ValueError(f"{name} images have shape {x.shape[1:]}, the model takes {tuple(input_shape)}; "
                                 f"resize them first")
            if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"{name} labels must be [N] integers matching the {len(x)} images, got "
                                 f"{y.dtype} {y.shape}")
            self.x, self.y, self.batch_size = x, y.astype("int32"), batch_size
        else:
            if not hasattr(data, "as_numpy_iterator"):
                raise ValueError(f"{name} must be (x, y) arrays or a tf.data.Dataset of (x, y) batches, "
                                 f"got {type(data).__name__}")
            self.ds = data

    def epoch(self, seed):
        """One pass of batches (arrays shuffled by `seed`)."""
        if self.arrays:
            order = np.random.default_rng(seed).permutation(len(self.x))
            for i in range(0, len(order) - self.batch_size + 1, self.batch_size):
                idx = order[i:i + self.batch_size]
                yield self.x[idx], self.y[idx]
        else:
            for x, y in self.ds.as_numpy_iterator():
                yield np.asarray(x, "float32"), np.asarray(y)

    def steps(self, n, seed):
        """Exactly n batches, cycling epochs."""
        done, e = 0, 0
        while done < n:
            got = False
            for b in self.epoch(seed + e):
                got = True
                yield b
                done += 1
                if done >= n:
                    return
            if not got:
                raise ValueError("training data yielded no full batch; use more images or a smaller batch_size")
            e += 1

    def ordered(self):
        if self.arrays:
            for i in range(0, len(self.x), self.batch_size):
                yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]
        else:
            yield from self.epoch(0)


def to_labels(y):
    """Integer labels from integer or one-hot `y`."""
    y = np.asarray(y)
    return y.argmax(-1) if y.ndim == 2 else y.astype("int32")


EAGER_BELOW = 40   # tracing a train step costs ~25-40 eager steps of a small MobileNet on this CPU


def compile_classifier(model, learning_rate, eager):
    """Adam + sparse cross-entropy (from logits when the model outputs logits)."""
    import keras
    from keras_mobile.training.recipes import outputs_logits
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
                  run_eagerly=eager, jit_compile=False)


def train_batches(model, batches, learning_rate, seed, steps, on_step=None):
    """`steps` batches of Adam; a short run stays eager (each proposal is a new graph to trace).
    on_step(i), if given, runs before the i-th batch (e.g. a temperature schedule). Returns the
    training loss of every batch."""
    import keras
    keras.utils.set_random_seed(seed)
    compile_classifier(model, learning_rate, eager=steps < EAGER_BELOW)
    losses = []
    for i, (x, y) in enumerate(batches):
        if on_step is not None:
            on_step(i)
        loss = model.train_on_batch(x, to_labels(y))
        losses.append(float(loss[0] if isinstance(loss, (list, tuple)) else loss))
    return losses


def train_epochs(model, data, epochs, learning_rate, seed):
    """`epochs` passes over a `Data` (Adam), in the batch order `Data.steps` draws for `seed`;
    the batch losses (None when epochs is 0)."""
    n = int(epochs)
    if not n:
        return None
    steps = sum(1 for _ in data.epoch(0)) * n
    return train_batches(model, data.steps(steps, seed), learning_rate, seed, steps)


def evaluate(model, data):
    """Top-1 accuracy of `model` over a `Data`."""
    hits = n = 0
    for x, y in data.ordered():
        p = np.asarray(model(x, training=False)).argmax(-1)
        hits += int((p == to_labels(y)).sum())
        n += len(p)
    return hits / max(n, 1)


# files ----------------------------------------------------------------------------------------
def save_json(path, obj):
    """`obj` as indented JSON at `path`, written atomically (numpy scalars as floats)."""
    write_atomic(path, json.dumps(obj, indent=1, default=float).encode())


@contextlib.contextmanager
def run_dir(out_dir, prefix):
    """`out_dir` (created), or a temporary folder removed on exit when it is None."""
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        yield os.fspath(out_dir)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield tmp


def read_state(path, version, args, what):
    """The JSON state at `path` of an earlier run with the same `args` (None when there is none);
    ValueError when it belongs to a `what` ("search") with other arguments."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        state = json.load(f)
    if state.get("version") != version or state.get("args") != json.loads(json.dumps(args)):
        raise ValueError(f"{path} belongs to a {what} with other arguments ({state.get('args')}); "
                         f"use another out_dir or delete it")
    return state


def save_model(model, *paths):
    """`model` as .keras at each of `paths` (atomically), without its optimizer: an uncompiled
    copy, made once (Keras 3 ignores include_optimizer for .keras, and Adam's two slots per
    weight triple the file)."""
    copy = type(model).from_config(model.get_config())     # clone_model would compile it again
    copy.set_weights(model.get_weights())
    for path in paths:
        save_atomic(path, copy.save)


def progress(total, desc, unit="proposal"):
    """A transient progress bar of `total` units, shown only on a terminal."""
    from keras_mobile.progress import progress_bar
    return progress_bar(enabled=sys.stderr.isatty(), total=total, desc=desc, unit=unit, leave=False)
