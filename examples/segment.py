"""Train LR-ASPP on procedural shapes (or a tensorflow-datasets segmentation set), evaluate
mIoU, export an int8 TFLite model, run it on held-out images and save mask-overlay PNGs.

    python examples/segment.py --size 128 --epochs 15 --out /tmp/segment
    python examples/segment.py --data tfds:oxford_iiit_pet --num-classes 3
"""
import os
import time

import numpy as np

import head_example

PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]], np.uint8)


def overlay(image, mask, path):
    from PIL import Image
    colours = PALETTE[np.asarray(mask) % len(PALETTE)].astype(np.float32)
    alpha = (np.asarray(mask) > 0)[..., None] * 0.55
    out = np.asarray(image, np.float32) * (1 - alpha) + colours * alpha
    both = np.concatenate([np.asarray(image, np.uint8), out.clip(0, 255).astype(np.uint8)], 1)
    Image.fromarray(both).resize((both.shape[1] * 2, both.shape[0] * 2), Image.NEAREST).save(path)


def load(args):
    from keras_mobile.data import shapes
    name = head_example.tfds_name(args)
    if name is None:
        train = shapes.generate(args.num_train, args.size, seed=1)
        test = shapes.generate(args.num_test, args.size, seed=2)
        return train, test, len(shapes.CLASS_NAMES) + 1
    kw = dict(data_dir=args.data_dir, mask_key=args.mask_key)
    train = shapes.load_tfds_segmentation(name, "train", args.size, args.num_train, **kw)
    test = shapes.load_tfds_segmentation(name, args.test_split, args.size, args.num_test, **kw)
    return train, test, args.num_classes


def main(argv=None):
    p = head_example.parser(__doc__, backbone="MobileNetV3Large", num_train=800, epochs=15, test_split="test")
    p.add_argument("--mask-key", default="segmentation_mask")
    p.add_argument("--num-classes", type=int, default=None, help="for tfds data")
    p.add_argument("--output-stride", type=int, default=None, choices=(16, 32),
                   help="default: 16 where the backbone supports atrous, else 32")
    p.add_argument("--out", default="segment_out")
    args = p.parse_args(argv)
    head_example.start(args)

    from keras_mobile.heads import LRASPP
    from keras_mobile.heads.metrics import mean_iou

    train, test, num_classes = load(args)
    if not num_classes:
        num_classes = int(max(train["masks"].max(), test["masks"].max())) + 1
    model = LRASPP(args.backbone, num_classes=num_classes, input_shape=(args.size, args.size, 3),
                   output_stride=args.output_stride)
    head_example.compile_adam_cosine(model, args, len(train["images"]))
    x = train["images"].astype("float32")
    t = time.time()
    hist = model.fit(x, train["masks"].astype("int32"), batch_size=args.batch_size,
                     epochs=args.epochs, verbose=2, shuffle=True)
    xt = test["images"].astype("float32")
    pred = model.predict_masks(xt)
    result = {"loss": [float(v) for v in hist.history["loss"]], "train_seconds": time.time() - t,
              "keras_mIoU": mean_iou(pred, test["masks"], num_classes)}
    print("keras mIoU:", result["keras_mIoU"])
    if not args.no_tflite:
        from keras_mobile.tflite import run_tflite
        path = model.export_tflite(os.path.join(args.out, "lraspp_int8.tflite"), quantization="int8",
                                   representative_data=x[:64], progress=False).path
        pred = np.argmax(run_tflite(path, xt), -1)
        result["tflite_int8_mIoU"] = mean_iou(pred, test["masks"], num_classes)
        result["tflite_path"] = path
        print("tflite int8 mIoU:", result["tflite_int8_mIoU"])
    pngs = []
    for i in range(min(args.num_png, len(xt))):
        png = os.path.join(args.out, f"masks_{i}.png")
        overlay(test["images"][i], pred[i], png)
        pngs.append(png)
    result["pngs"] = pngs
    return head_example.save_metrics(args, result)


if __name__ == "__main__":
    main()
