help = "export a model to TFLite (float32/float16/dynamic/int8), print the report; --edgetpu analyzes/compiles"


def add_arguments(p):
    from keras_mobile.commands._common import add_model_arguments
    add_model_arguments(p)
    p.add_argument("--quant", default="float32", choices=["float32", "float16", "dynamic", "int8"])
    p.add_argument("--out", default=None, help="output .tflite (default: <model>_<quant>.tflite)")
    p.add_argument("--calib-dir", default=None, help="folder of calibration images for int8")
    p.add_argument("--calib-synthetic", type=int, default=64,
                   help="without --calib-dir: N random images (only checks the pipeline; use real images)")
    p.add_argument("--reparameterize", action="store_true", help="fuse MobileOne blocks before export")
    p.add_argument("--edgetpu", action="store_true",
                   help="analyze EdgeTPU mapping offline, and compile when edgetpu_compiler is installed")


def run(args):
    import shutil

    import numpy as np

    from keras_mobile.commands._common import build
    from keras_mobile.tflite import edgetpu, export
    model = build(args)
    if args.reparameterize:
        from keras_mobile.reparameterize import reparameterize
        model = reparameterize(model)
    out = args.out or f"{args.model}_{args.quant}.tflite"
    data = None
    if args.quant == "int8":
        if args.calib_dir:
            data = args.calib_dir
        else:
            print(f"note: calibrating on {args.calib_synthetic} random images; pass --calib-dir for real ranges")
            shape = (args.calib_synthetic,) + tuple(model.input_shape[1:])
            data = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    report = export(model, out, args.quant, representative_data=data)
    print(report)
    if args.edgetpu:
        print(edgetpu.analyze(out))
        if shutil.which("edgetpu_compiler"):
            print(edgetpu.compile(out))
        else:
            print("edgetpu_compiler not installed: offline analysis only. " + edgetpu.INSTALL_HINT)
    return 0
