"""Fetches `model.safetensors` of a timm checkpoint from the Hugging Face hub.

huggingface_hub does the transfer (resume, size check, its own cache, progress bar, auth via
HF_TOKEN) and reads the file's metadata (`get_hf_file_metadata`: commit from X-Repo-Commit,
ETag from X-Linked-Etag or ETag). For LFS files (every checkpoint) the ETag is the file's
sha256, which `download` checks, so a corrupted or substituted file is refused.
HF_ENDPOINT and HF_HUB_OFFLINE are read at call time, not import time, so a process can point
at a mirror (or a test server) after importing keras_mobile.
"""
import os
import re
from dataclasses import dataclass

from keras_mobile.weights.cache import sha256
from keras_mobile.weights.errors import WeightsError

FILENAME = "model.safetensors"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Remote:
    """What the hub publishes for a file now: its commit, and its sha256 when it is an LFS file."""
    revision: str | None
    sha256: str | None


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def offline():
    return _truthy(os.environ.get("HF_HUB_OFFLINE", "0"))


def endpoint():
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_cache_dir():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None  # huggingface_hub's default


def _url(info):
    import huggingface_hub as hh
    return hh.hf_hub_url(info.hf_hub_id, FILENAME, endpoint=endpoint())


def _error(url, e):
    """huggingface_hub / transport exception -> WeightsError naming the URL."""
    from huggingface_hub import errors as hh_errors
    if isinstance(e, hh_errors.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        return WeightsError(f"could not download {url} (HTTP {status}): {str(e).splitlines()[0]}")
    if isinstance(e, hh_errors.LocalEntryNotFoundError):
        return WeightsError(f"could not download {url}: {e}. Check the network/HF_ENDPOINT, or pass "
                            f"weights=<path to a .safetensors file>.")
    # transport errors (connection refused/reset, truncated body) come from the HTTP client
    return WeightsError(f"could not download {url}: {type(e).__name__}: {e}")


def remote(info):
    """The hub's current Remote for a WeightsInfo (one HEAD request); WeightsError if unreachable."""
    import huggingface_hub as hh
    url = _url(info)
    try:
        meta = hh.get_hf_file_metadata(url, endpoint=endpoint())
    except Exception as e:
        raise _error(url, e) from e
    etag = (meta.etag or "").lower()
    return Remote(revision=meta.commit_hash, sha256=etag if _SHA256.fullmatch(etag) else None)


def download(info, remote=None):
    """(local path, sha256) of `model.safetensors` for a WeightsInfo; WeightsError on any failure.

    With a Remote (online), the file's sha256 must equal the published one: on a mismatch the
    download is deleted and WeightsError raised. The file is fetched at `main` (not at the
    Remote's commit) so huggingface_hub records the ref and can serve it offline later; an
    upstream change between the two requests shows up as a mismatch, never as a wrong file."""
    import huggingface_hub as hh
    from huggingface_hub import errors as hh_errors

    url = _url(info)
    try:
        path = hh.hf_hub_download(info.hf_hub_id, FILENAME, endpoint=endpoint(), cache_dir=hub_cache_dir(),
                                  local_files_only=offline())
    except hh_errors.LocalEntryNotFoundError as e:
        if offline():
            raise WeightsError(
                f"HF_HUB_OFFLINE is set and {info.hf_hub_id}/{FILENAME} is not in the local "
                f"Hugging Face cache. Unset HF_HUB_OFFLINE, or pass weights=<path to a .safetensors file>.") from e
        raise _error(url, e) from e
    except Exception as e:
        raise _error(url, e) from e
    digest = sha256(path)
    if remote is not None and remote.sha256 and digest != remote.sha256:
        forget(path)
        raise WeightsError(
            f"{url}: the downloaded file's sha256 {digest} differs from the sha256 the hub publishes "
            f"for it ({remote.sha256}); the download was deleted and nothing was cached. Retry; if it "
            f"persists, a proxy or mirror (HF_ENDPOINT) serves a different file.")
    return path, digest


def forget(path):
    """Removes a downloaded file (symlink and blob) that turned out bad, so the next call fetches it again."""
    for p in {path, os.path.realpath(path)}:
        try:
            os.remove(p)
        except OSError:  # already gone (another process), or not ours to delete
            pass
