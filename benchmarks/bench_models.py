"""Benchmark model names, their comparison groups, and how to build each one.

A benchmark name is a package constructor (`MobileNetV4ConvS`) optionally with a variant tag:
`MobileOneS0[fused]` (keras_mobile.reparameterize of the train-time model), `MobileNetV4HybridM[mha]`
(plain MHSA instead of Mobile MQA), `MobileNetV3Large[minimal]`; or a keras.applications baseline
`keras.applications.MobileNetV3Large` / `...MobileNetV3Large[minimal]`.

Models that are compared with each other form a group; workers time the members of a group in
interleaved rounds (A, B, A, B, ...) so that their ratio is fair on a loaded, shared machine.
This module imports neither TensorFlow nor torch at import time.
"""
import re

FAMILIES = ["MobileNetV3Large", "MobileNetV3Small", "MobileNetV4ConvS", "MobileNetV4ConvM",
            "MobileNetV4ConvL", "MobileNetV4HybridM", "MobileNetV4HybridL", "MobileOneS0", "MobileOneS1",
            "MobileOneS2", "MobileOneS3", "MobileOneS4", "EfficientFormerL1", "EfficientFormerL3",
            "EfficientFormerL7"]
QUICK = ["MobileNetV3Small", "MobileNetV3Large", "MobileNetV4ConvS", "MobileNetV4HybridM", "MobileOneS0",
         "EfficientFormerL1"]
TIMM = {"MobileNetV3Large": "mobilenetv3_large_100", "MobileNetV3Small": "mobilenetv3_small_100",
        "MobileNetV3Large[minimal]": "tf_mobilenetv3_large_minimal_100",
        "MobileNetV3Small[minimal]": "tf_mobilenetv3_small_minimal_100",
        "MobileNetV4ConvS": "mobilenetv4_conv_small", "MobileNetV4ConvM": "mobilenetv4_conv_medium",
        "MobileNetV4ConvL": "mobilenetv4_conv_large", "MobileNetV4HybridM": "mobilenetv4_hybrid_medium",
        "MobileNetV4HybridL": "mobilenetv4_hybrid_large",
        **{f"MobileOneS{i}": f"mobileone_s{i}" for i in range(5)},
        **{f"MobileOneS{i}[fused]": f"mobileone_s{i}" for i in range(5)},   # + timm reparameterize_model
        "EfficientFormerL1": "efficientformer_l1", "EfficientFormerL3": "efficientformer_l3",
        "EfficientFormerL7": "efficientformer_l7"}
KERAS_APPS = "keras.applications."
_NAME = re.compile(r"^(keras\.applications\.)?(\w+)(?:\[(fused|mha|minimal)\])?$")


def parse(name):
    """(is_keras_applications, constructor name, tag or None); ValueError on a malformed name."""
    m = _NAME.match(name)
    if not m:
        raise ValueError(f"bad benchmark model name {name!r}: expected e.g. MobileNetV4ConvS, "
                         f"MobileOneS0[fused], MobileNetV4HybridM[mha], keras.applications.MobileNetV3Large")
    apps, base, tag = m.groups()
    if tag == "fused" and not base.startswith("MobileOne"):
        raise ValueError(f"{name}: [fused] applies to MobileOne models only")
    if tag == "mha" and not base.startswith("MobileNetV4Hybrid"):
        raise ValueError(f"{name}: [mha] applies to MobileNetV4 hybrid models only")
    if tag == "minimal" and not base.startswith("MobileNetV3"):
        raise ValueError(f"{name}: [minimal] applies to MobileNetV3 only")
    if apps and base not in ("MobileNetV3Large", "MobileNetV3Small"):
        raise ValueError(f"{name}: only keras.applications MobileNetV3Large/Small are baselines here")
    if not apps and base not in FAMILIES:
        raise ValueError(f"unknown model {base!r}; known: {', '.join(FAMILIES)}")
    return bool(apps), base, tag


def peers(name):
    """The models `name` is compared with (measured interleaved with it)."""
    apps, base, tag = parse(name)
    if apps:
        return []
    if base.startswith("MobileNetV3"):
        return [KERAS_APPS + name]
    if base.startswith("MobileOne") and tag is None:
        return [base + "[fused]"]
    if base == "MobileNetV4HybridM" and tag is None:
        return [base + "[mha]"]
    return []


def groups(models):
    """Models + their peers, grouped; each model appears once, groups keep the given order."""
    out, seen = [], set()
    for name in models:
        parse(name)
        if name in seen:
            continue
        g = [n for n in [name] + peers(name) if n not in seen]
        seen.update(g)
        out.append(g)
    return out


def pairs(group):
    """(ours, reference) pairs inside a group, for ratios."""
    return [(group[0], p) for p in group[1:]]


def build(name, include_preprocessing=False):
    """The Keras model for a benchmark name (random weights, no preprocessing layer by default: timm and
    keras.applications baselines get the same normalised input; include_preprocessing=True builds a
    keras_mobile model as users get it, taking raw pixels)."""
    import keras
    apps, base, tag = parse(name)
    minimal = tag == "minimal"
    if apps:
        return getattr(keras.applications, base)(weights=None, input_shape=(224, 224, 3),
                                                   include_preprocessing=False, minimalistic=minimal)
    import keras_mobile
    kwargs = {"weights": None, "include_preprocessing": include_preprocessing}
    if tag == "mha":   # the ablation has no pretrained config: use the MQA model's input size
        from keras_mobile.applications.registry import entry
        size = entry(base).default_size
        kwargs.update(attention="mha", input_shape=(size, size, 3))
    if minimal:
        kwargs["minimalistic"] = True
    model = getattr(keras_mobile, base)(**kwargs)
    if tag == "fused":
        model = keras_mobile.reparameterize(model)
    return model
