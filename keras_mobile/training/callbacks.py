"""Callbacks Keras does not have: weight-decay annealing and progressive resizing; plus the
checkpoint pair (ModelCheckpoint + BackupAndRestore) every fine-tuning run wants.

EMA of the weights needs no callback: Keras optimizers take `use_ema=True` (the recipes set it),
and `keras.callbacks.SwapEMAWeights` evaluates with the averaged weights.
"""
import contextlib
import os

import keras

from keras_mobile import graph
from keras_mobile.training.schedules import cosine_anneal


class WeightDecayAnnealing(keras.callbacks.Callback):
    """Cosine-anneals the optimizer's weight decay per epoch, e.g. MobileOne's 1e-4 -> 1e-5
    (Vasu et al. 2023, sec. 4: small models need regularisation early, less later).

    Keras bakes a float `optimizer.weight_decay` into the traced train step, so the callback
    swaps it for a variable at the start of training (read every step, on every backend) and
    puts a float back at the end (so `model.save` writes a plain config). Resuming with
    `BackupAndRestore` recomputes the value from the restored epoch.

    Args:
        start: weight decay in the first epoch.
        end: weight decay in the last epoch.
        epochs: length of the annealing; default: the `epochs` given to `fit`.
    """

    def __init__(self, start=1e-4, end=1e-5, epochs=None):
        super().__init__()
        if start < 0 or end < 0:
            raise ValueError(f"weight decay must be >= 0, got start={start}, end={end}")
        self.start, self.end, self.epochs = float(start), float(end), epochs
        self.history = []

    def value(self, epoch, epochs):
        """Weight decay used during `epoch` (0-based) of an `epochs`-long run."""
        return cosine_anneal(epoch, max(epochs - 1, 0), self.start, self.end)

    def on_train_begin(self, logs=None):
        self._epochs = self.epochs or self.params.get("epochs") or 1
        self._targets = _base_optimizers(self.model.optimizer)
        if not self._targets:
            raise ValueError("WeightDecayAnnealing needs a compiled model whose optimizer has "
                             "weight_decay set (e.g. AdamW, or SGD(weight_decay=1e-4))")
        swapped = False
        for opt in self._targets:
            if not isinstance(opt.weight_decay, keras.Variable):
                strategy = getattr(self.model, "distribute_strategy", None)
                with strategy.scope() if strategy is not None else contextlib.nullcontext():
                    opt.weight_decay = keras.Variable(self.start, dtype="float32", trainable=False,
                                                      name="weight_decay")
                swapped = True
        if swapped:
            self.model.make_train_function(force=True)   # retrace reading the variable

    def on_epoch_begin(self, epoch, logs=None):
        wd = self.value(epoch, self._epochs)
        for opt in self._targets:
            opt.weight_decay.assign(wd)
        self.history.append((epoch, wd))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["weight_decay"] = float(self._targets[0].weight_decay.numpy())

    def on_train_end(self, logs=None):
        for opt in self._targets:
            if isinstance(opt.weight_decay, keras.Variable):
                var = opt.weight_decay
                graph.untrack_variable(opt, var)   # drop it from optimizer.variables
                opt.weight_decay = float(var.numpy())
        self.model.make_train_function(force=True)


def _base_optimizers(opt):
    """The optimizers that apply weight decay, through LossScaleOptimizer / MultiOptimizer."""
    if opt is None:
        return []
    if hasattr(opt, "inner_optimizer"):
        return _base_optimizers(opt.inner_optimizer)
    if hasattr(opt, "optimizers"):
        return [o for inner in opt.optimizers for o in _base_optimizers(inner)]
    return [opt] if getattr(opt, "weight_decay", None) is not None else []


class ProgressiveResizing(keras.callbacks.Callback):
    """Progressive learning (EfficientNetV2; used by MobileOne): low-resolution images in early
    epochs, full resolution at the end. Data-side only: pass the callback both to a
    `keras_mobile.training.data` pipeline (`progressive=`) and to `fit(callbacks=...)`.

    keras_mobile models (and their TFLite files) have a static input size, so each training
    image is resized down to the current size and back up to the model's size: early epochs see
    low-resolution content (the curriculum), but a step costs the same at every size. The
    compute saving of the paper's recipe would need a model per size; not done here.

    Args:
        start_size: image side in the first epoch.
        end_size: image side from `epochs - 1` on (usually the model's size).
        epochs: epochs over which the size grows linearly (rounded to multiples of `multiple`).
        multiple: intermediate sizes are rounded to multiples of this.
    """

    def __init__(self, start_size, end_size, epochs, multiple=8):
        super().__init__()
        if not 8 <= start_size <= end_size:
            raise ValueError(f"need 8 <= start_size <= end_size, got {start_size}, {end_size}")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        import tensorflow as tf   # the size is read inside tf.data map functions
        self.start_size, self.end_size, self.epochs, self.multiple = start_size, end_size, epochs, multiple
        self.size = tf.Variable(self.size_at(0), trainable=False, dtype=tf.int32, name="progressive_size")

    def size_at(self, epoch):
        """Image side used in `epoch` (0-based)."""
        if self.epochs <= 1 or epoch >= self.epochs - 1:
            return self.end_size
        s = self.start_size + (self.end_size - self.start_size) * epoch / (self.epochs - 1)
        return int(min(self.end_size, max(self.start_size, round(s / self.multiple) * self.multiple)))

    def on_epoch_begin(self, epoch, logs=None):
        self.size.assign(self.size_at(epoch))

    def on_train_end(self, logs=None):
        self.size.assign(self.end_size)   # evaluation/predict pipelines see the final size


def checkpoint_callbacks(directory, monitor="val_accuracy", mode="max"):
    """[ModelCheckpoint(best weights), BackupAndRestore(resume)] writing under `directory`.

    `directory/best.weights.h5` holds the best weights by `monitor` (load with
    `model.load_weights` or `build_finetune_model(..., weights=path)`); `directory/backup/`
    lets an interrupted `fit` (Colab disconnect, Kaggle time limit) continue from the last epoch
    when the same script runs again. Both are plain Keras callbacks.
    """
    os.makedirs(directory, exist_ok=True)
    return [
        keras.callbacks.ModelCheckpoint(os.path.join(directory, "best.weights.h5"), monitor=monitor,
                                        mode=mode, save_best_only=True, save_weights_only=True),
        keras.callbacks.BackupAndRestore(os.path.join(directory, "backup")),
    ]
