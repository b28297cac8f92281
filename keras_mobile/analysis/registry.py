"""Model registry: the public constructors of keras_mobile.applications, found by introspection.

A constructor is a public callable whose name starts with an upper-case letter and that takes a
`weights` argument (so helpers like preprocess_input are left out).
"""
import inspect


def _is_constructor(name, obj):
    if name.startswith("_") or not name[:1].isupper() or not callable(obj) or inspect.isclass(obj):
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return "weights" in params or "include_top" in params


def constructors():
    """{name: constructor} for every model in keras_mobile.applications, in module order."""
    from keras_mobile import applications
    return {n: o for n, o in vars(applications).items() if _is_constructor(n, o)}


def names():
    return list(constructors())


def family(name):
    ctor = constructors()[name]
    mod = getattr(ctor, "__module__", "") or ""
    return mod.rsplit(".", 1)[-1]


def get(name):
    table = constructors()
    if name in table:
        return table[name]
    lower = {k.lower(): k for k in table}
    if name.lower() in lower:
        return table[lower[name.lower()]]
    raise ValueError(f"unknown model {name!r}; available: {', '.join(table)}")


def default_size(name):
    """The constructor's default input size (its pretrained config), from the model it builds."""
    m = get(name)(weights=None)
    return int(m.inputs[0].shape[1])


def canonical(name):
    table = constructors()
    if name in table:
        return name
    lower = {k.lower(): k for k in table}
    if name.lower() in lower:
        return lower[name.lower()]
    raise ValueError(f"unknown model {name!r}; available: {', '.join(table)}")
