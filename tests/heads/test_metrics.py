"""mAP against pycocotools' own evaluation and hand-computed COCO values; mIoU on imperfect
masks with ignore_index values."""
import json

import numpy as np
import pytest

from keras_mobile.heads.metrics import detection_map, mean_iou

pycocotools = pytest.importorskip("pycocotools")


def _dets(boxes, classes, scores):
    return {"boxes": np.asarray(boxes, "float32")[None], "classes": np.asarray(classes, "float32")[None],
            "scores": np.asarray(scores, "float32")[None], "num_detections": np.array([len(scores)], "float32")}


def test_map_uses_cocos_101_point_interpolation_on_a_hand_made_case():
    # one class, ground truth A and B; detections by score: A exactly (TP), a far-away box (FP),
    # then a box with IoU 0.72 to B: TP for IoU thresholds 0.5..0.7, FP for 0.75..0.95
    gt = np.array([[[0.0, 0.5, 0.4, 0.9], [0.0, 0.0, 0.5, 0.5]]], "float32")
    dets = _dets([[0.0, 0.5, 0.4, 0.9], [0.7, 0.7, 0.9, 0.9], [0.0, 0.0, 0.5, 0.36]], [0, 0, 0],
                 [0.9, 0.8, 0.7])
    # precision 1 up to recall 0.5 (51 of COCO's 101 recall points), then 2/3 up to recall 1
    ap_tp = (51 * 1.0 + 50 * 2 / 3) / 101          # 0.83498; VOC all-point would say 0.8333
    ap_fp = 51 / 101                                # recall never passes 0.5
    got = detection_map(dets, gt, np.array([[0, 0]]), num_classes=1)
    assert got["mAP@0.5"] == pytest.approx(ap_tp, abs=1e-9)
    assert got["mAP@0.5:0.95"] == pytest.approx((5 * ap_tp + 5 * ap_fp) / 10, abs=1e-9)


def _random_imperfect(seed=0, num_images=30, num_classes=4, size=200.0):
    """Ground truth with padding and detections that are jittered (some badly), some with the
    wrong class, some missed, plus false positives and padded rows beyond num_detections."""
    rng = np.random.default_rng(seed)
    m, k = 6, 12
    gt_boxes = np.zeros((num_images, m, 4), "float32")
    gt_classes = -np.ones((num_images, m), "int64")
    det = {"boxes": np.zeros((num_images, k, 4), "float32"), "classes": np.zeros((num_images, k), "float32"),
           "scores": np.zeros((num_images, k), "float32"), "num_detections": np.zeros(num_images, "float32")}
    for i in range(num_images):
        n = rng.integers(1, m + 1)
        yx = rng.uniform(0, 0.7, (n, 2))
        hw = rng.uniform(0.05, 0.3, (n, 2))
        gt_boxes[i, :n] = np.concatenate([yx, yx + hw], -1)
        gt_classes[i, :n] = rng.integers(0, num_classes, n)
        rows = []
        for box, c in zip(gt_boxes[i, :n], gt_classes[i, :n]):
            if rng.uniform() < 0.2:
                continue                                              # missed
            jitter = rng.normal(0, rng.choice([0.01, 0.05]), 4) * np.r_[hw.mean(), hw.mean(), hw.mean(), hw.mean()]
            cls = c if rng.uniform() > 0.15 else rng.integers(0, num_classes)
            rows.append((box + jitter, cls, rng.uniform(0.2, 1.0)))
        for _ in range(rng.integers(0, 4)):                           # false positives
            yx = rng.uniform(0, 0.8, 2)
            rows.append((np.r_[yx, yx + rng.uniform(0.05, 0.2, 2)], rng.integers(0, num_classes),
                         rng.uniform(0, 0.8)))
        rows = rows[:k]
        det["num_detections"][i] = len(rows)
        for j, (b, c, s) in enumerate(rows):
            det["boxes"][i, j], det["classes"][i, j], det["scores"][i, j] = b, c, s
        det["boxes"][i, len(rows):] = rng.uniform(0, 1, (k - len(rows), 4))   # garbage past num_detections
        det["scores"][i, len(rows):] = 1.0
    return det, gt_boxes, gt_classes


def _pycocotools_reference(tmp_path, det, gt_boxes, gt_classes, num_classes, size=200.0):
    """COCO files in pixels, evaluated by pycocotools as a COCO user would: a ground-truth JSON
    file, a results list, COCOeval.summarize()."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    anns, res = [], []
    for i in range(len(gt_boxes)):
        for (y0, x0, y1, x1), c in zip(gt_boxes[i] * size, gt_classes[i]):
            if c >= 0:
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1, "iscrowd": 0,
                             "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                             "area": float((x1 - x0) * (y1 - y0))})
        for j in range(int(det["num_detections"][i])):
            y0, x0, y1, x1 = det["boxes"][i, j] * size
            res.append({"image_id": i + 1, "category_id": int(det["classes"][i, j]) + 1,
                        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        "score": float(det["scores"][i, j])})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [{"id": i + 1} for i in range(len(gt_boxes))], "annotations": anns,
                                "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}))
    gt = COCO(str(path))
    ev = COCOeval(gt, gt.loadRes(res), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats[1], ev.stats[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_map_equals_pycocotools_on_random_imperfect_detections(tmp_path, seed):
    det, gt_boxes, gt_classes = _random_imperfect(seed)
    got = detection_map(det, gt_boxes, gt_classes, num_classes=4)
    ref50, ref = _pycocotools_reference(tmp_path, det, gt_boxes, gt_classes, 4)
    assert 0.2 < ref < 0.9 and 0.3 < ref50 < 0.95           # imperfect, not degenerate
    assert abs(got["mAP@0.5"] - ref50) <= 1e-3
    assert abs(got["mAP@0.5:0.95"] - ref) <= 1e-3


def test_map_edge_cases_and_bad_shapes():
    gt = np.array([[[0.1, 0.1, 0.4, 0.4]]], "float32")
    empty = _dets(np.zeros((0, 4)), [], [])
    assert detection_map(empty, gt, np.array([[0]]), 2) == {"mAP@0.5": 0.0, "mAP@0.5:0.95": 0.0}
    perfect = _dets(gt[0], [0], [0.9])
    assert detection_map(perfect, gt, np.array([[0]]), 2)["mAP@0.5"] == pytest.approx(1.0)
    wrong_class = _dets(gt[0], [1], [0.9])
    assert detection_map(wrong_class, gt, np.array([[0]]), 2)["mAP@0.5"] == 0.0
    with pytest.raises(ValueError, match="gt_boxes must be"):
        detection_map(perfect, gt[0], np.array([0]), 2)
    with pytest.raises(ValueError, match="detections cover 1 images, the ground truth 2"):
        detection_map(perfect, np.repeat(gt, 2, 0), np.array([[0], [0]]), 2)


def test_mean_iou_on_imperfect_masks_with_ignore_index():
    target = np.array([[0, 0, 1, 1], [2, 255, 255, 3]])
    pred = np.array([[0, 1, 1, 255], [2, 0, 255, 1]])
    # kept pixels (target != 255): t = 0 0 1 1 2 3, p = 0 1 1 255 2 1
    # class 0: inter 1, union 2 (targets) + 1 (preds) - 1 = 2 -> 1/2
    # class 1: inter 1, union 2 + 3 - 1 = 4 -> 1/4 (the predicted 255 is a miss of class 1)
    # class 2: 1/1; class 3: inter 0, union 1 -> 0
    assert mean_iou(pred, target, 5) == pytest.approx((0.5 + 0.25 + 1.0 + 0.0) / 4)
    assert mean_iou(np.array([0, 255]), np.array([0, 0]), 2) == 0.5      # predicting 255 is a miss
    assert mean_iou(np.array([0, 1]), np.array([0, 255]), 2) == 1.0        # ignored target pixel


def test_mean_iou_equals_keras_meaniou_on_random_masks():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, (3, 16, 16))
    pred = np.where(rng.uniform(size=target.shape) < 0.6, target, rng.integers(0, 5, target.shape))
    target[rng.uniform(size=target.shape) < 0.1] = 255
    ref = keras.metrics.MeanIoU(num_classes=5, ignore_class=255, sparse_y_true=True, sparse_y_pred=True)
    ref.update_state(target, pred)
    assert 0.2 < float(ref.result()) < 0.9
    assert mean_iou(pred, target, 5) == pytest.approx(float(ref.result()), abs=1e-6)


def test_mean_iou_bad_inputs():
    with pytest.raises(ValueError, match="same number of pixels"):
        mean_iou(np.zeros(3, int), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        mean_iou(np.zeros(3, int), np.array([0, 1, 7]), 2)
