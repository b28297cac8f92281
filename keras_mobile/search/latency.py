"""Latency sources for the search, one interface: `get_source(spec).predict_ms(model)`.

    "host"       LiteRT float32 on this machine, 1 thread, through the block latency table
    "host-int8"  the same with full-integer int8 files
    "edgetpu"    the roofline preset of `analysis.hardware` (Coral EdgeTPU class, int8)
    "path.json"  a user latency table (`LatencyTable` JSON, e.g. per-block phone times)
    callable     `model -> ms`

Table sources measure blocks they lack on this machine (LiteRT) and cache them in the table
file, so a search pays for each new block shape once. `row_ms` prices a single table row cut
out as its own model, which lets the search predict a child as parent - old row + new row
without building the whole child.
"""
import os

from keras_mobile.analysis import latency_table as lt

HOST_SOURCES = {"host": "float32", "host-int8": "int8"}


class LatencySource:
    """Predicts batch-1 latency in milliseconds."""

    name = "latency"

    def predict_ms(self, model):
        raise NotImplementedError

    def row_ms(self, row_model, context=None):
        """Latency of one table row as a standalone model, or None when only whole models are priced.

        context: the model the row belongs to (or a function returning it), for sources that
        measure a row inside its model."""
        return None

    def save(self):
        """Persist caches (no-op unless the source has one)."""


class TableLatency(LatencySource):
    """A `LatencyTable`; blocks it lacks are measured with LiteRT on this machine and cached."""

    def __init__(self, table, path=None, name=None, runs=20):
        self.table, self.path, self.runs = table, path, runs
        self.name = name or (os.path.basename(path) if path else "table")

    def predict_ms(self, model):
        if self.table.measure_model(model, runs=self.runs):
            self.save()
        return self.table.predict(model) * 1e3

    def row_ms(self, row_model, context=None):
        # a row the table lacks is timed in the turn of the model it belongs to, as every block is
        if self.table.measure_model(row_model, runs=self.runs, context=context):
            self.save()
        total, rows = self.table.block_sum(row_model)
        c = self.table.correction
        if c:
            total = c["scale"] * total + c["per_block_s"] * len(rows)
        return total * 1e3

    def calibrate(self, model, runs=30):
        """Fit the table's whole-model scale on `model` measured whole with LiteRT on this machine.

        The sum of the blocks, each timed in its model's turn, over-predicts float32 models by a
        few percent (see `LatencyTable`); one whole-model measurement of the model being searched
        fixes its scale for its children."""
        from keras_mobile.analysis.latency_table import measure_model_latency
        self.table.measure_model(model, runs=self.runs)
        measured = measure_model_latency(model, self.table.num_threads, runs, self.table.quantization)
        self.table.calibrate([(model, measured)], terms=("scale",))
        self.save()
        return measured * 1e3

    def save(self):
        if self.path:
            self.table.save(self.path)


class RooflineLatency(LatencySource):
    """Roofline time on a hardware preset (analysis.roofline); analytic, nothing is measured."""

    def __init__(self, hardware="edgetpu"):
        self.hardware = hardware
        self.name = hardware if isinstance(hardware, str) else hardware.name

    def predict_ms(self, model):
        from keras_mobile.analysis.roofline import roofline
        return roofline(model, self.hardware).seconds * 1e3

    def row_ms(self, row_model, context=None):
        return self.predict_ms(row_model)


class CallableLatency(LatencySource):
    """A user function `model -> ms` (whole models only)."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "callable")

    def predict_ms(self, model):
        ms = float(self.fn(model))
        if not ms > 0:
            raise ValueError(f"latency callable {self.name} returned {ms!r} ms; it must return a positive number")
        return ms


class RowPricer:
    """Predicted latency of spaces (`TableSpace`), row by row when the source prices single rows
    (table, roofline), each distinct row priced once."""

    def __init__(self, source):
        self.source = source
        self.rowwise = type(source).row_ms is not LatencySource.row_ms
        self.rows = {}

    def row(self, space, i, in_shape):
        """ms of row i of `space` on an input of `in_shape` (None when the source prices whole models only)."""
        if not self.rowwise:
            return None
        if space.rows[i].type == "identity":       # a removed row: no layers, nothing to time
            return 0.0
        key = (repr(space.rows[i]), tuple(in_shape), space.spec.act, space.spec.bn_eps, space.spec.padding)
        if key not in self.rows:
            self.rows[key] = self.source.row_ms(space.row_model(i, in_shape), context=lambda: space.build().model)
        return self.rows[key]

    def whole(self, space):
        """ms of the whole model of `space`."""
        return self.source.predict_ms(space.build().model)


def host_table_path(quantization="float32", num_threads=1):
    from keras_mobile.weights.cache import cache_dir
    return os.path.join(cache_dir(), "latency", f"host_t{num_threads}_{quantization}.json")


def get_source(latency="host", num_threads=1, cache_path=None):
    """A `LatencySource` from "host", "host-int8", "edgetpu", a table JSON path, a callable, or a source.

    cache_path: where host tables are kept (default `$KERAS_HOME/keras_mobile/latency/`)."""
    if isinstance(latency, LatencySource):
        return latency
    if callable(latency):
        return CallableLatency(latency)
    if not isinstance(latency, (str, os.PathLike)):
        raise ValueError(f"latency must be 'host', 'host-int8', 'edgetpu', a latency-table JSON path or "
                         f"a callable model -> ms, got {latency!r}")
    latency = os.fspath(latency)
    if latency in HOST_SOURCES:
        q = HOST_SOURCES[latency]
        path = cache_path or host_table_path(q, num_threads)
        return TableLatency(lt.LatencyTable.load_or_new(path, num_threads, q), path, name=latency)
    if latency == "edgetpu":
        return RooflineLatency("edgetpu")
    if latency.endswith(".json"):
        if not os.path.isfile(latency):
            raise ValueError(f"latency table {latency} does not exist")
        return TableLatency(lt.LatencyTable.load(latency), latency)
    raise ValueError(f"latency must be 'host', 'host-int8', 'edgetpu', a latency-table .json path or a "
                     f"callable model -> ms, got {latency!r}")
