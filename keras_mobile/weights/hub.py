"""Fetches `model.safetensors` of a timm checkpoint from the Hugging Face hub.

huggingface_hub does the transfer (resume, ETag and size checks, its own cache, progress bar,
auth via HF_TOKEN). HF_ENDPOINT and HF_HUB_OFFLINE are read at call time, not import time,
so a process can point at a mirror (or a test server) after importing keras_mobile.
"""
import os

from keras_mobile.weights.errors import WeightsError

FILENAME = "model.safetensors"


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def endpoint():
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_cache_dir():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None  # huggingface_hub's default


def download(info):
    """Local path of `model.safetensors` for a WeightsInfo; WeightsError on any failure."""
    import huggingface_hub as hh
    from huggingface_hub import errors as hh_errors

    url = f"{endpoint()}/{info.hf_hub_id}/resolve/main/{FILENAME}"
    offline = _truthy(os.environ.get("HF_HUB_OFFLINE", "0"))
    try:
        return hh.hf_hub_download(info.hf_hub_id, FILENAME, endpoint=endpoint(),
                                  cache_dir=hub_cache_dir(), local_files_only=offline)
    except hh_errors.LocalEntryNotFoundError as e:
        if offline:
            raise WeightsError(
                f"HF_HUB_OFFLINE is set and {info.hf_hub_id}/{FILENAME} is not in the local "
                f"Hugging Face cache. Unset HF_HUB_OFFLINE, or pass weights=<path to a .safetensors file>.") from e
        raise WeightsError(f"could not download {url}: {e}. Check the network/HF_ENDPOINT, or pass "
                           f"weights=<path to a .safetensors file>.") from e
    except hh_errors.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        raise WeightsError(f"could not download {url} (HTTP {status}): {str(e).splitlines()[0]}") from e
    except Exception as e:  # transport errors (connection reset, truncated body) come from httpx
        raise WeightsError(f"could not download {url}: {type(e).__name__}: {e}") from e


def forget(path):
    """Removes a downloaded file that turned out unreadable, so the next call fetches it again."""
    try:
        real = os.path.realpath(path)
        for p in {path, real}:
            if os.path.lexists(p):
                os.remove(p)
    except OSError:
        pass
