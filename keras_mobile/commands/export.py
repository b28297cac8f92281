help = ("export a model to TFLite (float32/float16/dynamic/int8), print the report; --metadata adds Android "
        "metadata; --edgetpu exports for the Edge TPU, analyzes and compiles")


def add_arguments(p):
    from keras_mobile.commands._common import add_model_arguments
    add_model_arguments(p)
    p.add_argument("--quant", default=None, choices=["float32", "float16", "dynamic", "int8"],
                   help="default float32 (int8 with --edgetpu)")
    p.add_argument("--out", default=None, help="output .tflite (default: <model>_<quant>.tflite)")
    p.add_argument("--calib-dir", default=None, help="folder of calibration images for int8")
    p.add_argument("--calib-synthetic", type=int, default=64,
                   help="without --calib-dir: N random images (only checks the pipeline; use real images)")
    p.add_argument("--reparameterize", action="store_true", help="fuse MobileOne blocks before export")
    p.add_argument("--metadata", action="store_true",
                   help="add TFLite metadata for MediaPipe Tasks / Task Library (name, normalisation, labels; "
                        "ImageNet names for 1000 classes)")
    p.add_argument("--labels", default=None,
                   help="class names: a text file with one name per line, or 'imagenet' (implies --metadata)")
    p.add_argument("--no-float-islands", dest="float_islands", action="store_false",
                   help="int8: keep every op in int8 (a fully integer file, e.g. for NPU/DSP/microcontroller "
                        "runtimes) instead of running the ops XNNPACK has no int8 kernel for in float")
    p.add_argument("--edgetpu", action="store_true",
                   help="export for the Edge TPU (int8, uint8 IO, EdgeTPU-friendly lowerings), analyze the "
                        "mapping offline, and compile when edgetpu_compiler is installed")


def run(args):
    import shutil

    import numpy as np

    from keras_mobile.commands._common import build
    from keras_mobile.tflite import edgetpu, export
    from keras_mobile.tflite.export import resolve_settings
    target = "edgetpu" if args.edgetpu else None
    try:
        quant = resolve_settings(args.quant, target)[0]     # export's own rule for the target
    except ValueError:
        raise ValueError(f"--edgetpu exports full int8; drop --quant {args.quant}") from None
    if args.calib_dir and quant == "int8":
        from keras_mobile.tflite.representative import image_files
        image_files(args.calib_dir)   # a missing or empty folder fails before the model is built
    model = build(args)
    if args.reparameterize:
        from keras_mobile.reparameterize import reparameterize
        model = reparameterize(model)
    out = args.out or f"{args.model}_{'edgetpu' if args.edgetpu else quant}.tflite"
    data = None
    if quant == "int8":
        if args.calib_dir:
            data = args.calib_dir
        else:
            print(f"note: calibrating on {args.calib_synthetic} random images; pass --calib-dir for real ranges")
            shape = (args.calib_synthetic,) + tuple(model.input_shape[1:])
            data = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    metadata = True if (args.metadata or args.labels) else None
    report = export(model, out, quant, representative_data=data, metadata=metadata, labels=args.labels,
                    target=target, float_islands=args.float_islands)
    print(report)
    if args.edgetpu:
        if shutil.which("edgetpu_compiler"):
            print(edgetpu.compile(out))
        else:
            print("edgetpu_compiler not installed: offline analysis only. " + edgetpu.INSTALL_HINT)
    return 0
