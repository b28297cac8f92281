"""`weights=` handling shared by every constructor."""
import warnings

from keras_mobile.weights import cache, convert, hub
from keras_mobile.weights.assign import assign
from keras_mobile.weights.errors import WeightsError
from keras_mobile.weights.source import parse
from keras_mobile.weights.timm_checkpoint import read_safetensors


def load_weights(model, timm_name, weights, include_top=True, progress=True):
    """Loads weights into `model`; returns it.

    weights: 'imagenet', a timm tag, a timm .safetensors file, a Keras .weights.h5 file, or the
    WeightsSource `keras_mobile.weights.source.parse` made of one (None loads nothing).
    A tag is fetched from the hub, verified against the sha256 the hub publishes, converted to
    Keras layouts and cached under KERAS_HOME (one conversion per file, also across processes).
    Online, the cache is used while it matches the hub's current file; offline
    (HF_HUB_OFFLINE=1) or with the hub unreachable, any valid cached conversion is used. An
    unwritable cache location only warns. Raises WeightsError for fetch/read/match failures.
    """
    strict = include_top
    source = parse(timm_name, weights)
    if source.kind == "keras_file":
        try:
            model.load_weights(source.path)
        except Exception as e:
            raise WeightsError(f"{source.path} could not be loaded into {model.name}: {e}") from e
    elif source.kind == "timm_file":
        tensors = convert.to_keras_layout(read_safetensors(source.path), progress=progress)
        assign(model, tensors, source.path, strict=strict)
    elif source.kind == "hub":
        _load_from_hub(model, source.info, strict, progress)
    return model


def _load_from_hub(model, info, strict, progress):
    """Cached conversion if it matches the hub's file (or the hub is offline/unreachable);
    otherwise download (sha256-verified), convert, assign, cache. Under the entry's file lock,
    so concurrent processes download and convert once."""
    remote = remote_error = None
    if not hub.offline():
        try:
            remote = hub.remote(info)
        except WeightsError as e:  # hub unreachable: a cached conversion is still good to use
            remote_error = e
    with cache.locked(info.cache_name) as lock_error:
        entry = cache.read(info.cache_name)
        if entry is not None and (remote is None or entry.is_current(remote)):
            assign(model, entry.tensors, entry.path, strict=strict)
            return
        if remote_error is not None:
            raise remote_error
        path, source_sha256 = hub.download(info, remote)
        try:
            raw = read_safetensors(path)
        except WeightsError:
            hub.forget(path)
            raise
        tensors = convert.to_keras_layout(raw, progress=progress, desc=f"converting {info.cache_name}")
        # assign first: a file of the wrong architecture raises here and never reaches the cache
        assign(model, tensors, f"{path} ({info.hf_hub_id})", strict=strict)
        error = lock_error
        if error is None:
            try:
                cache.write(info.cache_name, tensors, source_sha256=source_sha256,
                            revision=remote.revision if remote is not None else None)
            except OSError as e:
                error = e
        if error is not None:  # the weights are loaded: an unwritable cache costs only a re-conversion
            warnings.warn(f"keras_mobile: the converted weights could not be cached in {cache.cache_dir()} "
                          f"({type(error).__name__}: {error}); they were loaded in memory and will be converted "
                          f"again next time. Set KERAS_HOME to a writable folder to cache them.", stacklevel=4)
