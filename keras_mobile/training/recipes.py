"""Per-family fine-tuning recipes: optimizer, schedule, regularisation, augmentation, callbacks.

Starting points, not tuned results. The from-scratch values follow each family's paper
(MobileNetV4: AdamW + label smoothing + EMA; MobileOne: SGD momentum, cosine LR, weight decay
cosine-annealed 1e-4 -> 1e-5, label smoothing, EMA; EfficientFormer: the DeiT recipe, AdamW
wd 0.05, mixup/cutmix); the fine-tuning values (the default, `pretrained=True`) use lower
learning rates, a short warmup and milder augmentation. Learning rates are given per 256 images
and scaled to `batch_size`: linearly for SGD, by the square root for AdamW.
"""
import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from keras_mobile.training.data import Augment

REFERENCE_BATCH = 256

# family -> (fine-tune overrides, from-scratch overrides) on top of the Recipe defaults
_FAMILIES = {
    "mobilenetv3": (dict(learning_rate=1e-3, weight_decay=0.02),
                    dict(learning_rate=4e-3, weight_decay=0.02, warmup_epochs=5,
                         augment=Augment(crop_scale=(0.08, 1.0)))),
    "mobilenetv4": (dict(learning_rate=1e-3, weight_decay=0.05),
                    dict(learning_rate=4e-3, weight_decay=0.1, warmup_epochs=5, dropout=0.3,
                         augment=Augment(crop_scale=(0.08, 1.0)))),
    "mobileone": (dict(optimizer_name="sgd", learning_rate=0.05, weight_decay=1e-4,
                       weight_decay_end=1e-5),
                  dict(optimizer_name="sgd", learning_rate=0.1, weight_decay=1e-4,
                       weight_decay_end=1e-5, warmup_epochs=3, dropout=0.0,
                       augment=Augment(crop_scale=(0.08, 1.0)))),
    "efficientformer": (dict(learning_rate=5e-4, weight_decay=0.05, drop_path_rate=0.1),
                        dict(learning_rate=2e-3, weight_decay=0.05, drop_path_rate=0.1,
                             warmup_epochs=5, clipnorm=5.0,
                             augment=Augment(crop_scale=(0.08, 1.0), mixup_alpha=0.8,
                                             cutmix_alpha=1.0))),
}


@dataclass
class Recipe:
    """Everything `model.fit` needs besides the model and the data. Fields are plain values;
    the methods build fresh Keras objects (optimizers are stateful: one per `compile`)."""
    model_name: str
    epochs: int
    steps_per_epoch: int
    batch_size: int = 64
    optimizer_name: str = "adamw"          # "adamw" or "sgd" (momentum, Nesterov)
    learning_rate: float = 1e-3            # peak LR per REFERENCE_BATCH images (scaled in `peak_lr`)
    warmup_epochs: float = 1.0             # capped at 20% of the run
    final_lr_ratio: float = 0.01           # cosine decays to this fraction of the peak
    weight_decay: float = 0.05
    weight_decay_end: Optional[float] = None   # cosine-anneal weight decay to this (MobileOne)
    momentum: float = 0.9
    clipnorm: Optional[float] = None
    label_smoothing: float = 0.1
    ema: bool = True                       # Keras optimizer use_ema, momentum from the run length
    dropout: float = 0.2
    drop_path_rate: float = 0.0
    augment: Augment = field(default_factory=Augment)
    backbone_lr_scale: float = 1.0         # <1: discriminative LR (needs keras.optimizers.MultiOptimizer)

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self):
        return int(min(self.warmup_epochs * self.steps_per_epoch, 0.2 * self.total_steps))

    @property
    def peak_lr(self):
        """`learning_rate` scaled from REFERENCE_BATCH to `batch_size`."""
        ratio = self.batch_size / REFERENCE_BATCH
        return self.learning_rate * (ratio if self.optimizer_name == "sgd" else math.sqrt(ratio))

    @property
    def ema_momentum(self):
        """EMA averaging over roughly the last 10% of the steps (no EMA below 200 steps)."""
        if not self.ema or self.total_steps < 200:
            return None
        return min(0.9999, 1.0 - 10.0 / self.total_steps)

    def schedule(self, scale=1.0):
        """Linear warmup + cosine decay (`keras.optimizers.schedules.CosineDecay`)."""
        from keras_mobile.training.schedules import cosine_with_warmup
        peak = self.peak_lr * scale
        return cosine_with_warmup(peak, self.total_steps, self.warmup_steps,
                                  final_lr=peak * self.final_lr_ratio)

    def optimizer(self, scale=1.0):
        """A new optimizer: AdamW or SGD(momentum, nesterov), cosine schedule, decoupled weight
        decay (not on variables named bias/gamma/beta: biases, BN/LN affine, LayerScale)."""
        import keras
        common = dict(learning_rate=self.schedule(scale) if scale > 0 else 0.0,
                      weight_decay=self.weight_decay, clipnorm=self.clipnorm,
                      use_ema=self.ema_momentum is not None,
                      ema_momentum=self.ema_momentum or 0.99)
        if self.optimizer_name == "adamw":
            opt = keras.optimizers.AdamW(**common)
        elif self.optimizer_name == "sgd":
            opt = keras.optimizers.SGD(momentum=self.momentum, nesterov=True, **common)
        else:
            raise ValueError(f"optimizer_name must be 'adamw' or 'sgd', got {self.optimizer_name!r}")
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return opt

    def loss(self, from_logits=False):
        """CategoricalCrossentropy with label smoothing (labels one-hot, as the pipelines make)."""
        import keras
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits,
                                                    label_smoothing=self.label_smoothing)

    def callbacks(self, checkpoint_dir=None, monitor="val_accuracy", progressive=None):
        """[WeightDecayAnnealing?, ProgressiveResizing?, BackupAndRestore, SwapEMAWeights?,
        ModelCheckpoint]: the order keeps them consistent (the weight-decay variable exists before
        a backup is restored; backups hold the raw weights, ModelCheckpoint the EMA weights)."""
        import keras

        from keras_mobile.training.callbacks import WeightDecayAnnealing, checkpoint_callbacks
        out = []
        if self.weight_decay_end is not None:
            out.append(WeightDecayAnnealing(self.weight_decay, self.weight_decay_end, self.epochs))
        if progressive is not None:
            out.append(progressive)
        if checkpoint_dir is not None:
            ckpt, backup = checkpoint_callbacks(checkpoint_dir, monitor=monitor)
            out.append(backup)   # backs up the raw weights, before the EMA swap below
            if self.ema_momentum is not None:
                out.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
            out.append(ckpt)
        elif self.ema_momentum is not None:
            out.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        return out

    def compile(self, model, metrics=("accuracy",), **compile_kwargs):
        """`model.compile` with this recipe's optimizer and loss (logits detected from the output
        activation). With `backbone_lr_scale` < 1 the classifier gets the full LR and the rest
        `backbone_lr_scale` times it. Returns the model."""
        import keras
        if self.backbone_lr_scale == 1.0:
            opt = self.optimizer()
        else:
            if not hasattr(keras.optimizers, "MultiOptimizer"):
                raise ValueError("backbone_lr_scale needs keras.optimizers.MultiOptimizer "
                                 f"(Keras >= 3.15; this is {keras.__version__})")
            from keras_mobile.training.finetune import classifier_layers
            head = "|".join(re.escape(l.name) for l in classifier_layers(model))
            opt = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
                self.optimizer(self.backbone_lr_scale), {f"({head})/.*": self.optimizer()}))
        model.compile(optimizer=opt, loss=self.loss(from_logits=outputs_logits(model)),
                      metrics=list(metrics), **compile_kwargs)
        build_compiled_metrics(model)
        return model


def recipe(model_name, epochs, steps_per_epoch, batch_size=64, pretrained=True, **overrides):
    """The fine-tuning (or, with `pretrained=False`, from-scratch) recipe for `model_name`.

    Args:
        model_name: constructor name, e.g. "MobileNetV4ConvS".
        epochs, steps_per_epoch, batch_size: the run (steps: `len(train_dataset)`).
        pretrained: True when starting from a checkpoint (lower LR, milder augmentation).
        **overrides: any `Recipe` field, e.g. `augment=Augment(flip=False)`, `ema=False`.
    """
    from keras_mobile.applications.registry import entry
    family = entry(model_name).family   # ValueError naming the known models
    for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown recipe fields {sorted(unknown)}; fields: {sorted(fields)}")
    fine, scratch = _FAMILIES[family]
    values = dict(fine if pretrained else scratch)
    values.update(overrides)
    return Recipe(model_name=model_name, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  batch_size=batch_size, **values)


def build_compiled_metrics(model):
    """Builds the compiled loss/metrics of a compiled model now.

    On the TensorFlow backend without an explicit strategy, Keras builds them inside the first
    traced train step; creating variables there makes `tf.function` trace the step twice.
    Building them first cut the first epoch of MobileNetV3Small on 2 CPU cores from ~30 s to
    ~8 s of CPU time. Best effort: any problem leaves Keras' lazy build in place.
    """
    import keras
    from keras_mobile import graph
    if keras.backend.backend() != "tensorflow":
        return
    try:
        shapes = (model.input_shape, model.output_shape)
        if any(not isinstance(s, tuple) or None in s[1:] for s in shapes):
            return
        x, y = (np.zeros((1,) + tuple(s[1:]), "float32") for s in shapes)
        graph.build_compiled_metrics(model, x, y)
    except Exception:   # private Keras API: never let it break training
        pass


def outputs_logits(model):
    """Whether a classifier's output is logits (its last layer applies no activation): the
    `from_logits` of its cross-entropy. Reads the last layer, not the last Dense: EfficientFormer
    averages two Dense heads and applies the softmax after them."""
    import keras
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    return act is None or act is keras.activations.linear
