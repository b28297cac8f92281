"""Detection mAP (VOC all-point interpolation, COCO-style 0.5:0.95) and segmentation mIoU."""
import numpy as np


def _iou(a, b):
    ih = np.maximum(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0)
    iw = np.maximum(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0)
    inter = ih * iw
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + ab[None] - inter, 1e-12)


def average_precision(detections, gt_boxes, gt_classes, num_classes, iou_threshold=0.5):
    """detections: dict boxes [n, K, 4], classes [n, K], scores [n, K], num_detections [n];
    gt_boxes [n, M, 4], gt_classes [n, M] (-1 padding). Returns mean AP over classes present."""
    aps = []
    for c in range(num_classes):
        recs, npos = [], 0
        for i in range(len(gt_boxes)):
            g = gt_boxes[i][gt_classes[i] == c]
            npos += len(g)
            n = int(detections["num_detections"][i])
            sel = detections["classes"][i][:n] == c
            db, ds = detections["boxes"][i][:n][sel], detections["scores"][i][:n][sel]
            used = np.zeros(len(g), bool)
            ious = _iou(db, g) if len(g) and len(db) else np.zeros((len(db), len(g)))
            for k in np.argsort(-ds):
                tp = 0
                if len(g):
                    j = int(np.argmax(ious[k]))
                    if ious[k, j] >= iou_threshold and not used[j]:
                        used[j] = True
                        tp = 1
                recs.append((ds[k], tp))
        if npos == 0:
            continue
        if not recs:
            aps.append(0.0)
            continue
        recs.sort(key=lambda t: -t[0])
        tp = np.cumsum([t for _, t in recs])
        fp = np.cumsum([1 - t for _, t in recs])
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, 1e-12)
        mrec = np.concatenate([[0], rec, [1]])
        mpre = np.concatenate([[0], prec, [0]])
        for k in range(len(mpre) - 2, -1, -1):
            mpre[k] = max(mpre[k], mpre[k + 1])
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0


def detection_map(detections, gt_boxes, gt_classes, num_classes):
    """{"mAP@0.5": ..., "mAP@0.5:0.95": ...}"""
    m50 = average_precision(detections, gt_boxes, gt_classes, num_classes, 0.5)
    coco = np.mean([average_precision(detections, gt_boxes, gt_classes, num_classes, t)
                    for t in np.arange(0.5, 0.96, 0.05)])
    return {"mAP@0.5": m50, "mAP@0.5:0.95": float(coco)}


def mean_iou(pred, target, num_classes, ignore_index=255):
    """Mean IoU over classes that appear in target or prediction."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    cm = np.bincount(target * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    valid = union > 0
    return float(np.mean(inter[valid] / union[valid]))
