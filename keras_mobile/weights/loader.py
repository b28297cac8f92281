"""`weights=` handling shared by every constructor."""
import os
import warnings

from keras_mobile.weights import cache, convert, hub, registry
from keras_mobile.weights.assign import assign
from keras_mobile.weights.errors import WeightsError

_PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl")


def read_safetensors(path):
    """Reads a .safetensors file with no code execution; WeightsError naming the file otherwise."""
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except Exception as e:  # safetensors raises SafetensorError / OSError for truncated or bad headers
        size = os.path.getsize(path) if os.path.exists(path) else 0
        raise WeightsError(f"{path} is not a readable safetensors file ({size} bytes; corrupt or "
                           f"truncated?): {e}") from e


def load_weights(model, timm_name, weights, include_top=True, progress=True):
    """Loads weights into `model`; returns it.

    weights: 'imagenet', a timm tag, a timm .safetensors file or a Keras .weights.h5 file.
    A tag is fetched from the hub, verified against the sha256 the hub publishes, converted to
    Keras layouts and cached under KERAS_HOME (one conversion per file, also across processes).
    Online, the cache is used while it matches the hub's current file; offline
    (HF_HUB_OFFLINE=1) or with the hub unreachable, any valid cached conversion is used. An
    unwritable cache location only warns. Raises WeightsError for fetch/read/match failures.
    """
    strict = include_top
    if isinstance(weights, str) and os.path.isfile(weights):
        if weights.endswith(".weights.h5") or weights.endswith(".h5"):
            try:
                model.load_weights(weights)
            except Exception as e:
                raise WeightsError(f"{weights} could not be loaded into {model.name}: {e}") from e
            return model
        if weights.endswith(_PICKLE_SUFFIXES):
            raise WeightsError(f"{weights}: PyTorch pickle checkpoints are never unpickled here. "
                               f"Convert it to .safetensors (safetensors.torch.save_file).")
        tensors = convert.to_keras_layout(read_safetensors(weights), progress=progress)
        assign(model, tensors, weights, strict=strict)
        return model

    _load_from_hub(model, registry.resolve(timm_name, weights), strict, progress)
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
