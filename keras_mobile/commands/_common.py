"""Shared CLI helpers."""
from keras_mobile.applications.registry import get_model


def weights_arg(value):
    """`--weights` value: 'none'/'None' (any case) means random initialisation."""
    return None if value.strip().lower() == "none" else value


def add_model_arguments(p):
    p.add_argument("model", help="constructor name, e.g. MobileNetV4ConvS (see `keras-mobile list`)")
    p.add_argument("--image-size", type=int, default=None, help="square input size (default: the model's)")
    p.add_argument("--weights", type=weights_arg, default=None,
                   help="None (random; the default), imagenet, a timm tag or a file")
    p.add_argument("--classes", type=int, default=1000)


def build(args, **kwargs):
    ctor = get_model(args.model)
    shape = (args.image_size, args.image_size, 3) if args.image_size else None
    return ctor(weights=args.weights, input_shape=shape, classes=args.classes, **kwargs)
