"""Profile results: per-layer rows (`LayerProfile`), the model's `Profile` with totals,
grouping by type and the markdown / text report."""
import dataclasses
from typing import List

# layers a mobile compiler fuses into the preceding conv/dense (no separate memory pass)
FUSABLE = ("BatchNormalization", "Activation", "ReLU", "ZeroPadding2D", "Reshape", "Dropout",
           "LayerScale", "StochasticDepth", "Identity", "InputLayer", "HardSwish", "Rescaling",
           "Normalization")


@dataclasses.dataclass
class LayerProfile:
    name: str
    type: str
    input_shapes: list
    output_shapes: list
    macs: int = 0
    params: int = 0          # trainable parameters
    weight_bytes: int = 0    # all variables (incl. BN statistics) * dtype_bytes
    read_bytes: int = 0      # activations read
    write_bytes: int = 0     # activations written
    depth: int = 0           # 0 = top level (counted in totals); >0 = breakdown of a composite
    children: list = dataclasses.field(default_factory=list)   # breakdown of a composite layer

    @property
    def activation_bytes(self):
        return self.read_bytes + self.write_bytes

    @property
    def memory_bytes(self):
        return self.weight_bytes + self.activation_bytes

    @property
    def bytes(self):
        return self.memory_bytes

    @property
    def intensity(self):
        """Arithmetic intensity: MACs per byte moved (weights + activations)."""
        return self.macs / self.memory_bytes if self.memory_bytes else 0.0

    @property
    def fusable(self):
        return self.type in FUSABLE

    def as_dict(self):
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "children"}
        d.update(memory_bytes=self.memory_bytes, intensity=self.intensity)
        if self.children:
            d["children"] = [c.as_dict() for c in self.children]
        return d


@dataclasses.dataclass
class Profile:
    model_name: str
    input_shape: tuple
    rows: List[LayerProfile]          # top-level layers (each MAC counted once)
    dtype_bytes: int = 4

    @property
    def model(self):
        return self.model_name

    @property
    def top(self):
        return self.rows

    def flat_rows(self):
        """Top-level rows with the breakdown of composite layers interleaved (depth > 0)."""
        out = []

        def walk(r):
            out.append(r)
            for c in r.children:
                walk(c)
        for r in self.rows:
            walk(r)
        return out

    @property
    def totals(self):
        top = self.top
        t = {k: sum(getattr(r, k) for r in top)
             for k in ("macs", "params", "weight_bytes", "read_bytes", "write_bytes")}
        t["activation_bytes"] = t["read_bytes"] + t["write_bytes"]
        t["memory_bytes"] = t["weight_bytes"] + t["activation_bytes"]
        t["intensity"] = t["macs"] / t["memory_bytes"] if t["memory_bytes"] else 0.0
        t["layers"] = len(top)
        return t

    # model totals by name: profile.macs, .params, .weight_bytes, .activation_bytes
    macs, params, weight_bytes, activation_bytes = (
        property(lambda self, k=k: self.totals[k], doc=f"The model's total {k}.")
        for k in ("macs", "params", "weight_bytes", "activation_bytes"))

    def by_type(self):
        out = {}
        for r in self.top:
            d = out.setdefault(r.type, {"count": 0, "macs": 0, "params": 0, "memory_bytes": 0})
            d["count"] += 1
            d["macs"] += r.macs
            d["params"] += r.params
            d["memory_bytes"] += r.memory_bytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["macs"]))

    def to_dict(self):
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "dtype_bytes": self.dtype_bytes, "totals": self.totals,
                "rows": [r.as_dict() for r in self.rows]}

    def find(self, name):
        for r in self.flat_rows():
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self):
        return self.summary()

    def to_markdown(self, min_macs=0, include_children=True, max_rows=None, top=None):
        """Markdown table; `top=N` keeps the N layers with the most MACs (in graph order)."""
        keep = None
        if top:
            keep = {id(r) for r in sorted(self.rows, key=lambda r: -r.macs)[:top]}
        lines = [f"### {self.model_name} @ {tuple(self.input_shape)}", "",
                 "| layer | type | output | MACs | params | weight KB | act KB (r+w) | MACs/byte |",
                 "|---|---|---|---:|---:|---:|---:|---:|"]
        n = 0
        for r in self.flat_rows():
            if r.depth and not include_children:
                continue
            if keep is not None and (r.depth or id(r) not in keep):
                continue
            if r.macs < min_macs:
                continue
            if max_rows is not None and n >= max_rows:
                lines.append("| ... | | | | | | | |")
                break
            out = r.output_shapes[0] if len(r.output_shapes) == 1 else r.output_shapes
            name = ("&nbsp;&nbsp;" * r.depth + ("└ " if r.depth else "")) + r.name
            lines.append(f"| {name} | {r.type} | {_fmt_shape(out)} | {r.macs:,} | {r.params:,} | "
                         f"{r.weight_bytes / 1024:.1f} | {r.activation_bytes / 1024:.1f} | {r.intensity:.2f} |")
            n += 1
        t = self.totals
        lines.append(f"| **total** ({t['layers']} layers) | | | **{t['macs']:,}** | **{t['params']:,}** | "
                     f"{t['weight_bytes'] / 1024:.1f} | {t['activation_bytes'] / 1024:.1f} | "
                     f"{t['intensity']:.2f} |")
        return "\n".join(lines)

    def summary(self):
        t = self.totals
        return (f"{self.model_name}: {t['macs'] / 1e6:,.2f} M MACs, {t['params'] / 1e6:,.3f} M params, "
                f"weights {t['weight_bytes'] / 2**20:.2f} MiB, activations {t['activation_bytes'] / 2**20:.2f} MiB, "
                f"{t['intensity']:.2f} MACs/byte")


def _fmt_shape(s):
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return ", ".join(_fmt_shape(x) for x in s)
    return "x".join("?" if d is None else str(d) for d in s)
