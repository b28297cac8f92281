"""Lets PyTorch (timm, torchvision) be imported after keras_mobile / TensorFlow in one process.

torch._dynamo (imported by timm and torchvision) imports triton; triton's native library
`triton/_C/libtriton.so` segfaults while loading when TensorFlow's libraries are already in the
process (TF 2.21 + triton 3.8: both carry LLVM; libtriton's static initialisers bind to TF's
copies). Loaded with RTLD_DEEPBIND, libtriton resolves its own symbols first and loads fine.
`install()` adds an import hook that changes the dlopen flags for that one extension module
only; nothing else is loaded differently, and nothing happens until something imports triton.
"""
import importlib.abc
import importlib.machinery
import os
import sys

_MODULE = "triton._C.libtriton"


class _DeepBindLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        try:
            return self._loader.create_module(spec)
        finally:
            sys.setdlopenflags(flags)

    def exec_module(self, module):
        self._loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            spec.loader = _DeepBindLoader(spec.loader)
        return spec


def install():
    """Adds the hook (Linux only; idempotent; a no-op once triton's library is loaded)."""
    if not hasattr(os, "RTLD_DEEPBIND") or _MODULE in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
