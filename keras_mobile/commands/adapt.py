"""`keras-mobile adapt MODEL --budget-ms X`: NetAdapt a MobileNetV3/V4, MobileOne or EfficientFormer to a
latency budget.

MODEL is a trained `.keras` file of a package MobileNetV3/V4, MobileOne or EfficientFormer, or a
constructor name (then it is
first trained from scratch for --pretrain-epochs on the data). DIR receives `model.keras`,
`search.json` (every proposal: block, widths, predicted ms, short-term accuracy; the chosen
path) and `pareto.png` (accuracy vs predicted latency of every proposal, the chosen path
marked; start and result at their LiteRT-measured latency when the source is this host).
"""
import os

help = "shrink a MobileNetV3/V4, MobileOne or EfficientFormer to a latency budget with NetAdapt (host LiteRT, int8, EdgeTPU roofline or a table)"


def add_search_arguments(p):
    """The arguments `adapt` and `slim` share: the model, budget, latency source, data, output."""
    p.add_argument("model", help="a trained .keras file, or a constructor name (trained from scratch first)")
    p.add_argument("--budget-ms", type=float, required=True, help="latency budget in ms of the --latency source")
    p.add_argument("--latency", default="host", help="host | host-int8 | edgetpu | a latency-table .json")
    p.add_argument("--data", default="digits", help="digits | folder:PATH | tfds:NAME")
    p.add_argument("--out", required=True, help="output folder (a second run with the same arguments resumes)")
    p.add_argument("--image-size", type=int, default=None, help="input size for a constructor name (default 64; EfficientFormer: 224, "
                   "the only size it builds at)")


def add_arguments(p):
    add_search_arguments(p)
    p.add_argument("--step", type=float, default=0.05, help="fraction of the start latency cut per iteration")
    p.add_argument("--short-term-steps", type=int, default=100)
    p.add_argument("--long-term-epochs", type=int, default=3)
    add_training_arguments(p)


def add_training_arguments(p):
    p.add_argument("--pretrain-epochs", type=int, default=5, help="for a constructor name only")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)


def _fail(msg, command="adapt"):
    """A user error: one line on stderr, exit code 2."""
    import sys
    print(f"keras-mobile {command}: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def load_data(spec, size, batch_size, seed=0, command="adapt"):
    """(train, val, num_classes) for --data: digits (sklearn, 80/20 split), folder:PATH, tfds:NAME."""
    import numpy as np
    if spec == "digits":
        from sklearn.datasets import load_digits
        import tensorflow as tf
        d = load_digits()
        x = d.images[..., None].repeat(3, -1) * (255 / 16.0)
        x = tf.image.resize(x.astype("float32"), (size, size), method="nearest").numpy()
        order = np.random.default_rng(seed).permutation(len(x))
        cut = int(0.8 * len(x))
        tr, va = order[:cut], order[cut:]
        return (x[tr], d.target[tr]), (x[va], d.target[va]), 10
    from keras_mobile.training import data as D
    if spec.startswith("folder:"):
        path = spec[len("folder:"):]
        if not os.path.isdir(path):
            _fail(f"--data folder {path} does not exist", command)
        train = D.image_folder_dataset(path, size, batch_size, validation_split=0.2, training=True)
        val = D.image_folder_dataset(path, size, batch_size, validation_split=0.2, training=False)
        return train, val, int(train.element_spec[1].shape[-1])
    if spec.startswith("tfds:"):
        name = spec[len("tfds:"):]
        train = D.tfds_dataset(name, "train", size, batch_size, training=True)
        val = D.tfds_dataset(name, "test", size, batch_size, training=False)
        return train, val, int(train.element_spec[1].shape[-1])
    _fail(f"--data must be digits, folder:PATH or tfds:NAME, got {spec!r}", command)


def _from_scratch(args, ctor, size, classes, train):
    """A constructor's model trained from scratch for --pretrain-epochs."""
    import keras
    keras.utils.set_random_seed(args.seed)
    model = ctor(weights=None, input_shape=(size, size, 3), classes=classes)
    model.compile("adam", "sparse_categorical_crossentropy")
    if isinstance(train, tuple):
        model.fit(*train, epochs=args.pretrain_epochs, batch_size=args.batch_size, verbose=0)
    else:
        import tensorflow as tf
        model.fit(train.map(lambda x, y: (x, tf.argmax(y, -1))), epochs=args.pretrain_epochs, verbose=0)
    return model


def plot(log, measured, path, same_axis):
    """Accuracy vs predicted latency of every proposal, the chosen path joined; the LiteRT-measured
    start and result on the same axis only when the source is this host (else in the title)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    props = [p for it in log["iterations"] for p in it["proposals"]]
    ax.scatter([p["predicted_ms"] for p in props], [p["accuracy"] for p in props], s=10, c="0.6",
               label="proposals (short-term tuned)")
    path_pts = [(log["start_ms"], log["start_accuracy"])] + [(c["predicted_ms"], c["accuracy"])
                                                             for c in log["chosen_path"]]
    ax.plot(*zip(*path_pts), "o-", c="C0", label="chosen path")
    if same_axis:
        for label, (ms, acc) in measured.items():
            ax.scatter([ms], [acc], marker="*", s=80, label=f"{label} (LiteRT measured)")
    else:
        ax.set_title("LiteRT measured here: " + ", ".join(f"{k} {v[0]:.2f} ms" for k, v in measured.items()),
                     fontsize=8)
    ax.axvline(log["budget_ms"], ls="--", c="C3", label="budget")
    ax.set_xlabel(f"latency (ms, {log['latency']})")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    from keras_mobile.files import save_atomic
    save_atomic(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)


def model_and_data(args, command="adapt"):
    """(model, train, val) of a search command: checks the shared arguments, loads a .keras model or
    trains a constructor's model from scratch on --data."""
    if args.budget_ms <= 0:
        _fail(f"--budget-ms must be positive, got {args.budget_ms}", command)
    if not (args.data == "digits" or args.data.startswith(("folder:", "tfds:"))):
        _fail(f"--data must be digits, folder:PATH or tfds:NAME, got {args.data!r}", command)
    model = model_entry = None
    if args.model.endswith(".keras"):
        if not os.path.isfile(args.model):
            _fail(f"{args.model} does not exist", command)
        import keras
        model = keras.models.load_model(args.model)
        size = int(model.inputs[0].shape[1])
    else:
        from keras_mobile.applications.registry import entry
        try:
            model_entry = entry(args.model)
        except ValueError as e:
            _fail(str(e), command)
        # EfficientFormer builds at one size only (224)
        size = args.image_size or model_entry.spec().fixed_size or 64
    train, val, classes = load_data(args.data, size, args.batch_size, args.seed, command)
    if model is None:
        model = _from_scratch(args, model_entry.constructor, size, classes, train)
    return model, train, val


def run(args):
    import json

    from keras_mobile.analysis.latency_table import measure_model_latency
    from keras_mobile.search import netadapt
    model, train, val = model_and_data(args)
    try:
        result = netadapt(model, args.budget_ms, train, val, latency=args.latency, step=args.step,
                          short_term_steps=args.short_term_steps, long_term_epochs=args.long_term_epochs,
                          out_dir=args.out, seed=args.seed, batch_size=args.batch_size)
    except ValueError as e:
        _fail(str(e))
    with open(os.path.join(args.out, "search.json")) as f:
        log = json.load(f)
    q = "int8" if args.latency == "host-int8" else "float32"
    measured = {"start": (measure_model_latency(model, quantization=q) * 1e3, log["start_accuracy"]),
                "result": (measure_model_latency(result, quantization=q) * 1e3, log["final_accuracy"])}
    log["measured_ms"] = {k: v[0] for k, v in measured.items()}
    from keras_mobile.files import write_atomic
    write_atomic(os.path.join(args.out, "search.json"), json.dumps(log, indent=1).encode())
    plot(log, measured, os.path.join(args.out, "pareto.png"), args.latency in ("host", "host-int8"))
    print(f"{log['model']}: {log['start_ms']:.2f} -> {log['current_ms']:.2f} ms predicted ({log['latency']}), "
          f"LiteRT {q} measured {measured['start'][0]:.2f} -> {measured['result'][0]:.2f} ms; accuracy "
          f"{log['start_accuracy']:.3f} -> {log['final_accuracy']:.3f}; written to {args.out}")
    return 0
