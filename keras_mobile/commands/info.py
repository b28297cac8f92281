help = "architecture summary: params, MACs, input size, published weight tags"


def add_arguments(p):
    from keras_mobile.commands._common import add_model_arguments
    add_model_arguments(p)


def run(args):
    from keras_mobile.analysis import profile
    from keras_mobile.commands._common import build
    from keras_mobile.weights import registry
    model = build(args)
    p = profile(model)
    print(f"{model.name}: input {model.input_shape[1:]}, {p.params:,} trainable params, "
          f"{p.macs / 1e6:,.1f} M MACs, {len(model.layers)} layers")
    arch = getattr(model, "timm_name", None)
    if arch:
        print(f"timm architecture {arch}; weight tags: {', '.join(registry.tags(arch)) or 'none'} "
              f"(default {registry.default_tag(arch)})")
    return 0
