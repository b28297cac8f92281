"""Atomic file writes that keep the user's umask.

`tempfile.mkstemp` creates files with mode 0600 (private), and a rename keeps that mode, so a
.tflite or cache file written through it would be unreadable to other users, web servers or
some adb flows. Every write goes to a unique temp file in the target folder, gets the mode a
plain `open(path, "w")` would give (0666 minus the umask), and is renamed into place.
"""
import contextlib
import os
import tempfile
import threading

_umask_lock = threading.Lock()


def umask_mode():
    """The mode a newly created file gets (0o666 & ~umask); 0o644 under the usual umask 022."""
    with _umask_lock:   # the umask can only be read by setting it; restore it at once
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def temp_path(path, keep_extension=False):
    """A new empty file next to `path` with the umask's mode; the caller renames or removes it.
    keep_extension: the name ends like `path` (".keras", ".png"), for writers that pick the
    format from the file name."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = ".tmp" + (os.path.splitext(path)[1] if keep_extension else "")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, umask_mode())
    return tmp


@contextlib.contextmanager
def atomic_path(path, keep_extension=False):
    """Yields a temp path to write; on success it replaces `path`, on an error it is removed.
    keep_extension: as for `temp_path` (`model.save`, `savefig` and PIL need the extension)."""
    tmp = temp_path(path, keep_extension)
    try:
        yield tmp
        os.chmod(tmp, umask_mode())   # again: some writers (safetensors) replace the file they are given
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, data):
    """Writes `data` (bytes) to `path` atomically, with the umask's mode."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def save_atomic(path, save):
    """Calls `save(temp path)` (e.g. `model.save`, `fig.savefig`, `image.save`: writers that
    take a file name and pick the format from its extension), then renames it to `path`."""
    with atomic_path(path, keep_extension=True) as tmp:
        save(tmp)
    return path
