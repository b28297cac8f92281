"""The shared constructor docstring (keras.applications style)."""

ARGS_DOC = """
    Args:
        include_top: whether to include the classification head (pool, 1x1 conv head,
            classifier). Default True.
        weights: None (random init), "imagenet" (the default published timm checkpoint,
            downloaded once, converted and cached under KERAS_HOME), a timm tag of this
            architecture (e.g. "{example_tag}"), or a path to a timm `.safetensors` file or a
            Keras `.weights.h5` file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional (height, width, channels); default ({size}, {size}, 3).
            Any size from 32 up works; sizes that are multiples of 32 keep feature maps aligned.
        pooling: with include_top=False, None (4D feature map), "avg" or "max" (2D).
        classes: number of classes (must match the checkpoint when loading its head).
        classifier_activation: activation of the top layer ("softmax", None for logits, ...).
        include_preprocessing: if True (default) the model takes raw [0, 255] RGB pixels and
            applies the checkpoint's mean/std normalisation itself (then `preprocess_input` is a
            no-op).
        name: model name.
        dropout_rate: dropout before the classifier (training only).
        drop_path_rate: stochastic depth rate, linearly increasing over blocks (training only).
        output_stride: 32 (default) or 16 (the last downsampling becomes dilation; for
            segmentation backbones).

    Returns:
        A `keras.Model`.
"""
