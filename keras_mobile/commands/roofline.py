help = "roofline latency prediction per hardware class, and the ridge-point sweep plot"


def add_arguments(p):
    p.add_argument("models", nargs="*", help="constructor names (default: every model)")
    p.add_argument("--plot", default=None, help="write the ridge-point sweep to this PNG")
    p.add_argument("--measure-host", action="store_true", help="also predict for this machine, measured")


def run(args):
    from keras_mobile.analysis import PRESETS, measure_host, plot_ridge_sweep, profile, ridge_sweep, roofline
    from keras_mobile.applications.registry import get_model, list_models
    from keras_mobile.progress import progress_bar
    names = args.models or sorted(list_models())
    hardware = dict(PRESETS)
    if args.measure_host:
        hardware["host"] = measure_host()
    profiles = []
    for name in progress_bar(names, desc="profiling", unit="model"):
        kwargs = {"weights": None}
        profiles.append(profile(get_model(name)(**kwargs), dtype_bytes=4))
    print(f"{'model':<22}" + "".join(f"{h:>12}" for h in hardware) + "   (predicted ms)")
    for p in profiles:
        print(f"{p.model:<22}" + "".join(f"{roofline(p, hw).seconds * 1e3:>12.2f}" for hw in hardware.values()))
    if args.plot:
        ridges, res = ridge_sweep(profiles, dtype_bytes=4)
        print("wrote", plot_ridge_sweep(ridges, res, args.plot))
    return 0
