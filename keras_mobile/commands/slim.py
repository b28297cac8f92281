"""`keras-mobile slim MODEL --budget-ms X`: latency-driven slimming (EfficientFormer's method) of a
MobileNetV3/V4 or EfficientFormer to a latency budget.

MODEL is a trained `.keras` file of a package MobileNetV3/V4 or EfficientFormer, or a constructor
name (then it is first trained from scratch for --pretrain-epochs on the data). A supernet of
block choices per row is trained (--steps), slimmed by importance per ms saved to the budget, and
the chosen sub-network fine-tuned (--finetune-epochs). DIR receives `model.keras` and
`slim.json` (per row: candidates, importance, predicted ms, pick; every slimming step), plus the
supernet's weights: a rerun skips the supernet training, and with another --budget-ms or --latency
slims the same supernet again (the new result replaces the old one).
"""
from keras_mobile.commands.adapt import _fail, add_search_arguments, add_training_arguments, model_and_data

help = "slim a MobileNetV3/V4 or EfficientFormer to a latency budget (supernet of block choices, EfficientFormer's method)"


def add_arguments(p):
    add_search_arguments(p)
    p.add_argument("--steps", type=int, default=200, help="supernet training batches")
    p.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning of the slimmed model")
    add_training_arguments(p)


def run(args):
    from keras_mobile.search import slim
    if args.steps < 0 or args.finetune_epochs < 0:
        _fail(f"--steps and --finetune-epochs must be >= 0, got {args.steps}, {args.finetune_epochs}", "slim")
    model, train, val = model_and_data(args, "slim")
    try:
        slim(model, args.budget_ms, train, val, latency=args.latency, steps=args.steps,
             finetune_epochs=args.finetune_epochs, out_dir=args.out, seed=args.seed, batch_size=args.batch_size)
    except ValueError as e:
        _fail(str(e), "slim")
    import json
    import os
    with open(os.path.join(args.out, "slim.json")) as f:
        log = json.load(f)
    changed = sum(c["pick"] != 0 for c in log["choices"])
    print(f"{log['args']['model']}: {log['start_ms']:.3f} -> {log['predicted_ms']:.3f} ms predicted "
          f"({log['slim']['latency']}; budget {log['slim']['budget_ms']:g}), {changed} of {len(log['choices'])} "
          f"rows changed; accuracy {log['accuracy']:.3f}; written to {args.out}")
    return 0
