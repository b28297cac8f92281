"""Names of the public constructors (for the CLI, benchmarks and analysis sweeps)."""
import inspect as _inspect


def list_models():
    """{constructor name: constructor}, introspected from keras_mobile.applications."""
    from keras_mobile import applications
    return {n: f for n, f in vars(applications).items()
            if callable(f) and n[:1].isupper() and _inspect.isfunction(f)}


def get_model(name):
    models = list_models()
    if name not in models:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]
