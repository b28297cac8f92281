"""Slow tests run a benchmark's own measurement, so test and benchmark cannot drift apart."""
import importlib.util
from pathlib import Path


def load_benchmark(name, folder="benchmarks"):
    """<folder>/<name>.py imported as a module (benchmarks/ and scripts/ are not packages)."""
    path = Path(__file__).parents[1] / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
