help = "per-layer MACs / params / bytes table (markdown)"


def add_arguments(p):
    from keras_mobile.commands._common import add_model_arguments
    add_model_arguments(p)
    p.add_argument("--top", type=int, default=25, help="show the N costliest layers (0 = all)")
    p.add_argument("--int8", action="store_true", help="count bytes at 1 byte per value")


def run(args):
    from keras_mobile.analysis import profile
    from keras_mobile.commands._common import build
    p = profile(build(args), dtype_bytes=1 if args.int8 else 4)
    print(p)
    print(p.to_markdown(top=args.top or None))
    return 0
