"""A conv-only SSDLiteModel / LRASPPModel (seconds to build, train and export) for tests of what
the heads compute, apart from any backbone."""
import keras

from keras_mobile.heads import anchors as anchor_lib
from keras_mobile.heads.lraspp import LRASPPModel
from keras_mobile.heads.ssdlite import SSDLiteModel


def tiny_ssdlite(num_classes=3, size=64, seed=1, class_bias=None, **loss_options):
    """One 1/8 map, one anchor per cell; class_bias (one value per class) sets the class
    predictor's bias (e.g. to make one class win everywhere)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, strides=8, padding="same", activation="relu")(x)
    a = anchor_lib.anchors_per_location((1.0,))
    anchors = anchor_lib.generate_anchors([(size // 8, size // 8)], [0.3], (1.0,))
    boxes = keras.layers.Reshape((-1, 4))(keras.layers.Conv2D(a * 4, 1)(x))
    bias = "zeros" if class_bias is None else keras.initializers.Constant(list(class_bias) * a)
    cls = keras.layers.Conv2D(a * num_classes, 1, name="cls", bias_initializer=bias)(x)
    classes = keras.layers.Reshape((-1, num_classes))(cls)
    return SSDLiteModel(inp, {"boxes": boxes, "classes": classes}, anchors=anchors,
                        num_classes=num_classes, name="tiny_ssd", **loss_options)


def tiny_segmenter(num_classes=4, size=48, seed=2):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    logits = keras.layers.Conv2D(num_classes, 3, padding="same")(x)
    return LRASPPModel(inp, logits, num_classes=num_classes, name="tiny_seg")
