"""`weights=` handling shared by every constructor."""
import os

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
    """weights: 'imagenet', a timm tag, a timm .safetensors file or a Keras .weights.h5 file."""
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

    info = registry.resolve(timm_name, weights)
    tensors = cache.read(info.cache_name)
    if tensors is not None:
        assign(model, tensors, cache.paths(info.cache_name)[0], strict=strict)
        return model
    path = hub.download(info)
    try:
        raw = read_safetensors(path)
    except WeightsError:
        hub.forget(path)
        raise
    tensors = convert.to_keras_layout(raw, progress=progress, desc=f"converting {info.cache_name}")
    # assign first: a file of the wrong architecture raises here and never reaches the cache
    assign(model, tensors, f"{path} ({info.hf_hub_id})", strict=strict)
    cache.write(info.cache_name, tensors, source_sha256=cache.sha256(path))
    return model

