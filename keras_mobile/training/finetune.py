"""Fine-tuning helpers: a pretrained model with a new classifier, freezing and unfreezing.

Keras gives the mechanics (`layer.trainable`; a BatchNormalization layer with
`trainable=False` runs in inference mode, so its moving statistics stay put); these helpers
know which layers of a keras_mobile model are the classifier and the timm layer names, so
"train the head, then everything from `blocks.3` on" is two calls. Change `trainable` before
`compile` (Keras reads it when the train step is built).
"""
import re
import warnings

import keras

from keras_mobile import graph
from keras_mobile.layers.naming import SEP, to_timm_path


def classifier_paths(model):
    """timm module paths of the Dense layer(s) holding the classes of `model`, from the model
    registry (`ModelEntry.classifier`: MobileNetV3/V4 `classifier`, MobileOne `head.fc`,
    EfficientFormer `head` + distillation `head_dist`); for a model not named after a
    constructor, those of every registered model."""
    from keras_mobile.applications import registry
    try:
        return registry.spec_of(model.name)[0].classifier
    except ValueError:
        return registry.classifier_paths()


def classifier_layers(model):
    """The Dense layer(s) producing the class logits (see `classifier_paths`)."""
    paths = classifier_paths(model)
    found = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Dense) and to_timm_path(layer.name) in paths]
    if not found:
        raise ValueError(f"{model.name} has no classifier layer named one of {paths}; "
                         f"was it built with include_top=False?")
    return found


def build_finetune_model(name, num_classes, weights="imagenet", input_size=None, dropout=0.2,
                         drop_path_rate=0.0, classifier_activation="softmax", **kwargs):
    """A keras_mobile model with pretrained weights and a new `num_classes` classifier.

    Everything the checkpoint has is kept (for MobileNets this includes the 1x1 `conv_head`
    before the classifier); only the classifier Dense layer(s) are new (randomly initialised).

    Args:
        name: constructor name, e.g. "MobileNetV4ConvS" (see `keras_mobile.applications.list_models`).
        num_classes: classes of the new task.
        weights: "imagenet", a timm tag (e.g. "e180_r384_in12k"), a timm-layout `.safetensors`
            file (e.g. from `save_timm_checkpoint`), a Keras `.weights.h5` file of the same
            architecture (layers whose shape differs, such as another task's classifier, are
            skipped), or None (random init).
        input_size: square input side (default: the checkpoint's size).
        dropout: dropout rate before the classifier.
        drop_path_rate: stochastic depth rate of the blocks.
        classifier_activation: "softmax" (default) or None for logits.
        **kwargs: other constructor arguments (e.g. `minimalistic=True` for MobileNetV3).
    """
    from keras_mobile.applications.registry import entry
    model_entry = entry(name)
    ctor = model_entry.constructor
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    from keras_mobile.weights.source import parse
    kw = dict(kwargs, dropout_rate=dropout, drop_path_rate=drop_path_rate,
              classifier_activation=classifier_activation)
    if input_size is not None:
        kw["input_shape"] = (int(input_size), int(input_size), 3)
    # the architecture (which selects a tag's checkpoint) is only needed for tags; the table
    # names it (from the family's arguments, e.g. minimalistic), no model is built for it
    family_kw = {k: v for k, v in kw.items() if k in model_entry.defaults}
    source = parse(lambda: model_entry.spec(**family_kw).timm_name, weights)
    if source.kind == "none":
        return ctor(weights=None, classes=num_classes, **kw)
    if source.kind == "keras_file":
        model = ctor(weights=None, classes=num_classes, **kw)
        _load_keras_weights_except_classifier(model, source.path)
        return model
    ckpt_classes = source.num_classes or _file_classes(source.path, model_entry)
    # the parsed source itself for a tag (parsing it again would resolve the tag again)
    model = ctor(weights=source if source.kind == "hub" else source.path, classes=ckpt_classes, **kw)
    if ckpt_classes == num_classes:
        return model
    return replace_classifier(model, num_classes)


def replace_classifier(model, num_classes):
    """The same model (sharing every layer and weight) with new `num_classes` classifier(s)."""
    old = {layer.name for layer in classifier_layers(model)}

    def clone(layer):
        if layer.name in old:
            cfg = layer.get_config()
            cfg["units"] = num_classes
            return keras.layers.Dense.from_config(cfg)
        return layer   # shared: keeps the loaded weights
    return keras.models.clone_model(model, clone_function=clone)


def freeze_backbone(model, trainable=None):
    """Freezes every layer except the classifier (or the layers in `trainable`: layer names
    such as "head-fc" or their timm module paths such as "head.fc").

    Frozen BatchNormalization layers run in inference mode (Keras semantics), so their moving
    mean/variance are not updated. Returns the model; compile it afterwards.
    """
    names = trainable if trainable is not None else [l.name for l in classifier_layers(model)]
    keep = {to_timm_path(n) for n in names}
    unknown = keep - {to_timm_path(layer.name) for layer in model.layers}
    if unknown:
        raise ValueError(f"{model.name} has no layers named {sorted(unknown)}")
    for layer in model.layers:
        layer.trainable = to_timm_path(layer.name) in keep
    return model


def unfreeze(model, from_layer=None, freeze_batchnorm=True):
    """Makes layers trainable from `from_layer` on (all layers when None).

    Args:
        from_layer: a layer name or a module-path prefix, as timm path ("blocks.4", "stages.3")
            or layer name ("blocks-4"): the first layer whose timm path equals it or starts with
            it + "." and everything after it in the graph
            become trainable; earlier layers keep their current state.
        freeze_batchnorm: keep BatchNormalization layers (also inside blocks such as MobileOne's)
            frozen, i.e. in inference mode with fixed statistics; usually better when
            fine-tuning on a small dataset with small batches.
    Returns the model; compile it again afterwards.
    """
    layers = model.layers
    start = 0
    if from_layer is not None:
        prefix = to_timm_path(from_layer)
        matches = [i for i, l in enumerate(layers)
                   if to_timm_path(l.name) == prefix or to_timm_path(l.name).startswith(prefix + ".")]
        if not matches:
            raise ValueError(f"{model.name} has no layer named {from_layer!r} or starting with "
                             f"{from_layer + SEP!r}")
        start = matches[0]
    for layer in layers[start:]:
        layer.trainable = True
        if freeze_batchnorm:
            for sub in graph.sublayers(layer):
                if isinstance(sub, keras.layers.BatchNormalization):
                    sub.trainable = False
    return model


def _load_keras_weights_except_classifier(model, path):
    """`load_weights(skip_mismatch=True)`, but only the classifier may be skipped: anything else
    not loading means the file is another architecture (Keras would only warn)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path, skip_mismatch=True)
    text = " ".join(str(w.message) for w in caught)
    skipped = set(re.findall(r"<\w+ name=([^,>]+)", text.split("could not be loaded:")[-1])) \
        if "could not be loaded" in text else set()
    classifier = classifier_paths(model)        # one registry lookup, not one per skipped layer
    others = {n for n in skipped if to_timm_path(n) not in classifier}
    if others:
        raise ValueError(f"{path} does not match {model.name}: {len(others)} layers could not be "
                         f"loaded (e.g. {sorted(others)[:3]}); is it a checkpoint of another model?")
    for w in caught:
        if "could not be loaded" not in str(w.message) and "Skipping" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _file_classes(path, model_entry):
    """Classes of a timm-layout checkpoint's classifier, from the file's header (the classifier
    paths of the model's registry entry)."""
    from safetensors import safe_open
    paths = model_entry.classifier
    try:
        with safe_open(path, "np") as f:
            for key in (p + ".weight" for p in paths):
                if key in f.keys():
                    return int(f.get_slice(key).get_shape()[0])
    except Exception:   # unreadable: the constructor raises WeightsError naming the file
        return 1000
    raise ValueError(f"{path} has no classifier weights ({', '.join(paths)}); "
                     f"build the model with include_top=False and add a head yourself")
