"""Train SSDLite on procedural shapes (or a tensorflow-datasets set), evaluate mAP, export an
int8 TFLite detector ending in TFLite_Detection_PostProcess, run it on held-out images and
save PNGs with drawn boxes.

    python examples/detect.py --size 128 --epochs 40 --out /tmp/detect
    python examples/detect.py --data tfds:voc/2012 --size 320
"""
import os
import time

import numpy as np

import head_example


def draw(image, boxes, classes, scores, names, path, color=(255, 40, 40)):
    from PIL import Image, ImageDraw
    im = Image.fromarray(np.asarray(image, np.uint8)).resize((256, 256), Image.NEAREST)
    d = ImageDraw.Draw(im)
    for b, c, s in zip(boxes, classes, scores):
        y0, x0, y1, x1 = [float(v) * 256 for v in b]
        d.rectangle([x0, y0, x1, y1], outline=color, width=2)
        d.text((x0 + 2, y0 + 1), f"{names[int(c)]} {s:.2f}", fill=color)
    im.save(path)


def load(args):
    from keras_mobile.data import shapes
    name = head_example.tfds_name(args)
    if name is None:
        train = shapes.generate(args.num_train, args.size, seed=1)
        test = shapes.generate(args.num_test, args.size, seed=2)
        return train, test, shapes.CLASS_NAMES
    train = shapes.load_tfds_detection(name, "train", args.size, num_images=args.num_train,
                                       data_dir=args.data_dir)
    test = shapes.load_tfds_detection(name, args.test_split, args.size, num_images=args.num_test,
                                      data_dir=args.data_dir)
    return train, test, train["class_names"]


def main(argv=None):
    p = head_example.parser(__doc__, backbone="MobileNetV4ConvS", num_train=1000, epochs=40,
                            test_split="validation")
    p.add_argument("--min-scale", type=float, default=0.1, help="smallest anchor (image fraction)")
    p.add_argument("--max-scale", type=float, default=0.6)
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--fixed-train-set", action="store_true",
                   help="shapes: train on one fixed set instead of fresh images every epoch")
    p.add_argument("--out", default="detect_out")
    args = p.parse_args(argv)
    head_example.start(args)

    from keras_mobile.heads import SSDLite
    from keras_mobile.heads.metrics import detection_map

    train, test, names = load(args)
    model = SSDLite(args.backbone, num_classes=len(names), input_shape=(args.size, args.size, 3),
                    min_scale=args.min_scale, max_scale=args.max_scale)
    head_example.compile_adam_cosine(model, args, len(train["images"]))
    x = train["images"].astype("float32")
    y = {"boxes": train["boxes"], "classes": train["classes"]}
    t = time.time()
    if args.data == "shapes" and not args.fixed_train_set:
        # fresh procedural images every epoch: no memorisation of a fixed set
        from keras_mobile.data import shapes
        stream = shapes.stream(args.num_train, args.size, args.batch_size, seed=1)
        hist = model.fit(stream, epochs=args.epochs, verbose=2)
    else:
        hist = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
                         shuffle=True)
    train_time = time.time() - t

    xt = test["images"].astype("float32")
    dets = model.predict_detections(xt, score_threshold=0.05, max_detections=20)
    metrics = detection_map(dets, test["boxes"], test["classes"], len(names))
    result = {"loss": [float(v) for v in hist.history["loss"]], "train_seconds": train_time,
              "keras": metrics}
    print("keras:", metrics)

    pngs = []
    if not args.no_tflite:
        from keras_mobile.tflite import run_tflite
        report = model.export_tflite(os.path.join(args.out, "ssdlite_int8.tflite"),
                                     quantization="int8", representative_data=x[:64],
                                     score_threshold=0.05, progress=False)
        path = report.path
        tdets = dict(zip(("boxes", "classes", "scores", "num_detections"), run_tflite(path, xt)))
        result["tflite_int8"] = detection_map(tdets, test["boxes"], test["classes"], len(names))
        result["tflite_path"] = path
        print("tflite int8:", result["tflite_int8"])
        dets = tdets
    for i in range(min(args.num_png, len(xt))):
        n = int(dets["num_detections"][i])
        keep = dets["scores"][i][:n] >= args.score_threshold
        png = os.path.join(args.out, f"detections_{i}.png")
        draw(test["images"][i], dets["boxes"][i][:n][keep], dets["classes"][i][:n][keep],
             dets["scores"][i][:n][keep], names, png)
        pngs.append(png)
    result["pngs"] = pngs
    return head_example.save_metrics(args, result)


if __name__ == "__main__":
    main()
