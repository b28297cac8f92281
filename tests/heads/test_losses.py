"""Detection losses against reference implementations and hand-computed values."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from keras_mobile.heads import SSDLite, box_coding, losses, matching  # noqa: E402
from keras_mobile.heads.anchors import generate_anchors  # noqa: E402
from tests.heads.tiny import tiny_ssdlite  # noqa: E402


def _softplus(x):
    return np.log1p(np.exp(x))


def test_focal_loss_equals_keras_binary_focal_crossentropy():
    rng = np.random.default_rng(0)
    num_classes = 5
    targets = rng.integers(-2, num_classes, (3, 40)).astype("int32")   # classes, background, ignored
    logits = rng.normal(0, 3, (3, 40, num_classes)).astype("float32")
    ours = losses.sigmoid_focal_loss(targets, logits, alpha=0.25, gamma=2.0).numpy()
    onehot = np.eye(num_classes, dtype="float32")[np.maximum(targets, 0)] * (targets >= 0)[..., None]
    ref = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, gamma=2.0,
                                               from_logits=True, reduction=None)(onehot, logits)
    ref = np.asarray(ref) * num_classes * (targets != -2)      # Keras averages over classes
    assert (targets == -2).any() and (targets == -1).any() and (targets >= 0).any()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert np.all(ours[targets == -2] == 0)


@pytest.mark.parametrize("delta", [1.0, 0.5])
def test_smooth_l1_equals_keras_huber(delta):
    rng = np.random.default_rng(1)
    t = rng.normal(0, 1.5, (2, 30, 4)).astype("float32")
    p = rng.normal(0, 1.5, (2, 30, 4)).astype("float32")
    cls = rng.integers(-2, 3, (2, 30)).astype("int32")
    ours = losses.smooth_l1(t, p, cls, delta=delta).numpy()
    # smooth-L1 with threshold delta (SSD, torch's SmoothL1Loss(beta)) is Huber(delta) / delta
    huber = np.asarray(keras.losses.Huber(delta=delta, reduction=None)(t, p))
    ref = huber * 4 / delta * (cls >= 0)                       # summed over the 4 coordinates
    assert (np.abs(t - p) > delta).any() and (np.abs(t - p) < delta).any()   # both branches
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_giou_loss_on_hand_made_boxes():
    # (target, prediction, 1 - GIoU computed by hand)
    cases = [
        ([0.0, 0.0, 0.4, 0.4], [0.2, 0.2, 0.6, 0.6], 1 - (0.04 / 0.28 - (0.36 - 0.28) / 0.36)),  # overlap
        ([0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7], 1 - (0.0 - (0.49 - 0.08) / 0.49)),          # disjoint
        ([0.0, 0.0, 0.4, 0.4], [0.1, 0.1, 0.3, 0.3], 1 - 0.25),                                  # inside
        ([0.1, 0.2, 0.5, 0.9], [0.1, 0.2, 0.5, 0.9], 0.0),                                       # equal
        ([0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.36], 1 - 0.72),                                 # IoU 0.72
    ]
    assert cases[0][2] == pytest.approx(1.0793651, abs=1e-6)
    assert cases[1][2] == pytest.approx(1.8367347, abs=1e-6)
    anchors = generate_anchors([(2, 3)])[: len(cases)]
    t = box_coding.encode(np.array([c[0] for c in cases], "float32"), anchors)[None]
    p = box_coding.encode(np.array([c[1] for c in cases], "float32"), anchors)[None]
    ours = losses.giou_loss(t, p, np.zeros((1, len(cases)), "int32"), anchors).numpy()[0]
    np.testing.assert_allclose(ours, [c[2] for c in cases], atol=1e-5)
    ignored = losses.giou_loss(t, p, np.array([[-1, -2, 0, -1, -2]], "int32"), anchors).numpy()[0]
    np.testing.assert_allclose(ignored, [0, 0, cases[2][2], 0, 0], atol=1e-5)


def test_hard_negative_mining_keeps_top_negatives_on_a_hand_made_case():
    # one class; image 0: one positive, five negatives, one ignored -> 3 hardest negatives kept;
    # image 1: no positive -> the single hardest negative (at least one is kept)
    targets = np.array([[0, -1, -1, -1, -1, -1, -2],
                        [-1, -1, -1, -2, -1, -1, -1]], "int32")
    logits = np.array([[0.5, 2.0, -3.0, 1.0, 0.0, -1.0, 9.0],
                       [-2.0, 0.3, -1.0, 9.0, 1.5, -0.5, 0.2]], "float32")[..., None]
    ours = losses.hard_negative_ce(targets, logits, neg_pos_ratio=3).numpy()
    want = np.zeros_like(ours)
    want[0, 0] = _softplus(-0.5)                                # positive: -log(sigmoid(0.5))
    for j in (1, 3, 4):                                         # negatives with logits 2, 1, 0
        want[0, j] = _softplus(logits[0, j, 0])                # -log(1 - sigmoid(l))
    want[1, 4] = _softplus(1.5)                                 # the ignored 9.0 never counts
    np.testing.assert_allclose(ours, want, rtol=1e-5)


def test_loss_names_are_checked_before_building():
    for kwargs, name in [({"box_loss": "smoothl1"}, "box_loss"), ({"class_loss": "Focal"}, "class_loss")]:
        with pytest.raises(ValueError, match=f"{name} must be one of .*got '"):
            SSDLite("MobileNetV4ConvS", num_classes=3, input_shape=(64, 64, 3), **kwargs)
        with pytest.raises(ValueError, match=f"{name} must be one of"):
            tiny_ssdlite(**kwargs)


@pytest.mark.parametrize("class_loss,box_loss", [("hard_negative", "giou"), ("focal", "smooth_l1")])
def test_detection_loss_combines_the_selected_losses_and_trains(class_loss, box_loss):
    det = tiny_ssdlite(class_loss=class_loss, box_loss=box_loss)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    y = {"boxes": np.array([[[0.1, 0.1, 0.5, 0.4], [0.5, 0.5, 0.9, 0.8]]] * 4, "float32"),
         "classes": np.array([[1, 2]] * 4, "int32")}
    raw = det(x, training=False)
    box_t, cls_t = matching.assign(det.anchors, y["boxes"], y["classes"])
    class_fn = {"focal": losses.sigmoid_focal_loss, "hard_negative": losses.hard_negative_ce}[class_loss]
    box_l = (losses.giou_loss(box_t, raw["boxes"], cls_t, det.anchors) if box_loss == "giou"
             else losses.smooth_l1(box_t, raw["boxes"], cls_t))
    want = (tf.reduce_sum(class_fn(cls_t, raw["classes"])) + tf.reduce_sum(box_l)) / \
        tf.reduce_sum(tf.cast(cls_t >= 0, tf.float32))
    before = float(det.detection_loss(y, raw))
    assert before == pytest.approx(float(want), rel=1e-5)
    det.compile(optimizer=keras.optimizers.Adam(1e-2))
    det.fit(x, y, batch_size=4, epochs=10, verbose=0)
    assert float(det.detection_loss(y, det(x, training=False))) < 0.7 * before
