help = "list the model constructors with their timm architecture and default weights"


def add_arguments(p):
    pass


def run(args):
    import inspect
    from keras_mobile.applications.registry import list_models
    print(f"{'model':<22} description")
    for name, fn in sorted(list_models().items()):
        doc = (inspect.getdoc(fn) or "").splitlines()[0] if inspect.getdoc(fn) else ""
        print(f"{name:<22} {doc}")
    return 0
