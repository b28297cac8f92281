"""Detection mAP (COCO's own evaluation, `pycocotools`) and segmentation mIoU."""
import contextlib
import io

import numpy as np


def _coco_boxes(boxes):
    """(ymin, xmin, ymax, xmax) -> COCO (x, y, width, height)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 1], b[:, 0], b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], -1)


def detection_map(detections, gt_boxes, gt_classes, num_classes):
    """COCO box AP of `detections` against the ground truth, computed by pycocotools' COCOeval.

    Args:
        detections: dict of boxes [n, K, 4] (ymin, xmin, ymax, xmax, normalised), classes [n, K],
            scores [n, K] and num_detections [n] (rows past num_detections are ignored): the
            output of `SSDLiteModel.predict_detections` or of the exported TFLite detector.
        gt_boxes: [n, M, 4] ground-truth boxes in the same layout; gt_classes: [n, M] int,
            -1 = padding.
        num_classes: number of classes (class ids 0..num_classes-1).

    Returns:
        {"mAP@0.5": AP at IoU 0.5, "mAP@0.5:0.95": AP averaged over IoU 0.5:0.05:0.95}, both
        COCO's 101-point interpolated precision averaged over the classes that have ground
        truth (up to 100 detections per image); 0.0 without ground truth or detections.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt_boxes, gt_classes = np.asarray(gt_boxes), np.asarray(gt_classes)
    if gt_boxes.ndim != 3 or gt_boxes.shape[-1] != 4 or gt_classes.shape != gt_boxes.shape[:2]:
        raise ValueError(f"gt_boxes must be [n, M, 4] and gt_classes [n, M], got {gt_boxes.shape} and "
                         f"{gt_classes.shape}")
    if len(detections["boxes"]) != len(gt_boxes):
        raise ValueError(f"detections cover {len(detections['boxes'])} images, the ground truth "
                         f"{len(gt_boxes)}")
    annotations, results = [], []
    for i in range(len(gt_boxes)):
        keep = gt_classes[i] >= 0
        for box, c in zip(_coco_boxes(gt_boxes[i][keep]), gt_classes[i][keep]):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(c),
                                "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0})
        n = int(detections["num_detections"][i])
        for box, c, s in zip(_coco_boxes(detections["boxes"][i][:n]), detections["classes"][i][:n],
                             detections["scores"][i][:n]):
            results.append({"image_id": i, "category_id": int(c), "bbox": box.tolist(),
                            "score": float(s)})
    if not annotations or not results:
        return {"mAP@0.5": 0.0, "mAP@0.5:0.95": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):      # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {"images": [{"id": i} for i in range(len(gt_boxes))], "annotations": annotations,
                      "categories": [{"id": c} for c in range(num_classes)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[0] = AP@[.5:.95], stats[1] = AP@.5 (all areas, 100 detections); -1 = no detections
    return {"mAP@0.5": max(float(ev.stats[1]), 0.0), "mAP@0.5:0.95": max(float(ev.stats[0]), 0.0)}


def mean_iou(pred, target, num_classes, ignore_index=255):
    """Mean intersection-over-union of integer masks over the classes that appear in the target or
    the prediction.

    Target pixels equal to `ignore_index` are skipped. A predicted value outside
    [0, num_classes) (for example `ignore_index` itself) counts as a wrong prediction: it adds to
    its pixel's target class union and to no class's intersection.
    """
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same number of pixels, got {pred.size} and "
                         f"{target.size}")
    keep = target != ignore_index
    pred, target = pred[keep].astype(np.int64), target[keep].astype(np.int64)
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target holds values outside [0, {num_classes}) other than "
                         f"ignore_index={ignore_index}")
    other = num_classes                        # one extra column for out-of-range predictions
    pred = np.where((pred >= 0) & (pred < num_classes), pred, other)
    cm = np.bincount(target * (num_classes + 1) + pred,
                     minlength=num_classes * (num_classes + 1)).reshape(num_classes, num_classes + 1)
    inter = np.diag(cm[:, :num_classes])
    union = cm.sum(1) + cm[:, :num_classes].sum(0) - inter
    valid = union > 0
    return float(np.mean(inter[valid] / union[valid])) if valid.any() else 0.0
