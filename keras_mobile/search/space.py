"""Search spaces as block-table rows with choices.

A `TableSpace` is a package model's table resolved to exact widths (one row per built block,
repeats expanded, strides and residuals made explicit so a narrower child never gains or loses
a shortcut), plus `Knob`s: the choices a search may make. NetAdapt uses two kinds:

    Knob("mid", rows=(i,))            expansion width of an ir/er/uir row
    Knob("out", rows=(...), stem=..)  the output width of residual-tied rows (and the stem when
                                      the first row adds onto it): one width for the whole group

A knob names table positions, never layer names; `set(knob, value)` returns a new space. Later
searches add knob kinds over the same rows (TuNAS fine stage: `Knob("variant")` choosing a
UIB variant per row; EfficientFormer slimming: Meta4D / Meta3D / identity per row) without
changing this interface. Layers of a row are found in the built graph from the builder's
`on_block` hook, so nothing depends on how a backend spells layer names.
"""
import functools
from dataclasses import asdict, dataclass, replace

import keras

from keras_mobile import graph
from keras_mobile.applications import builder

DIVISOR = 8                      # widths stay multiples of 8 (SIMD lanes, EdgeTPU channel tiles)
EXPANDABLE = ("ir", "er", "uir")


@dataclass(frozen=True)
class Knob:
    kind: str                    # "mid" | "out"
    rows: tuple                  # table positions (expanded row indices)
    stem: bool = False           # "out" knob: the stem conv shares the width

    @property
    def label(self):
        sep = "-" if len(self.rows) > 2 else ","
        rows = sep.join(str(r) for r in (self.rows[:1] + self.rows[-1:] if len(self.rows) > 1 else self.rows))
        return f"{self.kind}[{'stem' if self.stem else ''}{',' if self.stem and rows else ''}{rows}]"


def _family_spec(name):
    """The package ModelSpec behind a model name (MobileNetV3/V4 tables)."""
    from keras_mobile.applications.mobilenetv3 import mobilenetv3_spec
    from keras_mobile.applications.mobilenetv4 import VARIANTS, mobilenetv4_spec
    v3 = {"MobileNetV3Small": ("small", False), "MobileNetV3Large": ("large", False),
          "MobileNetV3SmallMinimal": ("small", True), "MobileNetV3LargeMinimal": ("large", True)}
    if name in v3:
        return mobilenetv3_spec(v3[name][0], 1.0, v3[name][1])
    if name in VARIANTS:
        return mobilenetv4_spec(name)
    raise ValueError(f"the search supports MobileNetV3/V4 table models (named MobileNetV3Small, "
                     f"MobileNetV4ConvS, ...); got a model named {name!r}")


def _build_kwargs(model):
    """Constructor arguments that rebuild `model`'s input and head (weights not included)."""
    layers = model.layers
    types = [type(l).__name__ for l in layers]
    out = model.outputs[0]
    kw = dict(input_shape=tuple(model.inputs[0].shape[1:]), weights=None,
              include_preprocessing="Rescaling" in types, name=model.name)
    dense = [l for l in layers if type(l).__name__ == "Dense"]
    if dense and len(out.shape) == 2:
        act = keras.activations.serialize(dense[-1].activation)
        act = act if isinstance(act, str) else act.get("config", {}).get("name", "linear")
        kw.update(include_top=True, classes=int(dense[-1].units),
                  classifier_activation=None if act == "linear" else act)
        drop = [l for l in layers if type(l).__name__ == "Dropout"]
        kw["dropout_rate"] = float(drop[0].rate) if drop else 0.0
    else:
        kw["include_top"] = False
        kw["pooling"] = ("avg" if "GlobalAveragePooling2D" in types[-2:] else
                         "max" if "GlobalMaxPooling2D" in types[-2:] else None)
    return kw


class Built:
    """A model built from a space, with each row's layers (and the stem's) found in its graph."""

    def __init__(self, model, rows, stem):
        self.model = model
        order = {id(op): i for i, op in enumerate(model.operations)}
        key = lambda op: order.get(id(op), -1)  # noqa: E731
        self.rows = [sorted(ops, key=key) for ops in rows["ops"]]
        self.row_inputs = rows["in_shapes"]
        self.stem = sorted(stem, key=key)

    def expansion_conv(self, i):
        """The conv that produces row i's expanded channels (first full conv of the row)."""
        return next(l for l in self.rows[i] if type(l).__name__ == "Conv2D")

    def output_conv(self, i):
        """The last full conv of row i (its projection), or of the stem for i = -1."""
        ops = self.stem if i < 0 else self.rows[i]
        return [l for l in ops if type(l).__name__ == "Conv2D"][-1]


class TableSpace:
    """A MobileNetV3/V4 table at exact widths plus the knobs a search may turn."""

    def __init__(self, spec, rows, build_kwargs):
        self.spec = spec                 # ModelSpec (stages hold the resolved rows)
        self.rows = tuple(rows)          # flat resolved BlockSpec rows, stage structure in spec
        self.build_kwargs = dict(build_kwargs)

    # construction --------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model):
        """The space of a package MobileNetV3/V4 model at the widths it has (any width multiplier,
        or a child of an earlier search). Raises ValueError for other models."""
        base = _family_spec(model.name)
        kw = _build_kwargs(model)
        ref = cls._resolve(base, kw)
        built = ref.build()
        names = {l.name: l for l in model.layers}

        def width(layer, out=True):
            other = names.get(layer.name)
            if other is None:
                raise ValueError(f"{model.name} has no layer {layer.name!r} of its table; it was not "
                                 f"built by keras_mobile (or by another version)")
            return int(other.kernel.shape[-1] if not out else other.output.shape[-1])

        stem = width(built.output_conv(-1), out=False)
        rows = []
        for i, r in enumerate(ref.rows):
            last = built.rows[i][-1]
            upd = {"out": width(last)}
            if r.type in EXPANDABLE:
                upd["mid"] = width(built.expansion_conv(i), out=False)
            rows.append(replace(r, **upd))
        space = ref.with_rows(rows, stem=stem)
        same = tuple(rows) == ref.rows and stem == ref.spec.stem
        space.check_matches(model, built.model if same else None)
        return space

    @classmethod
    def _resolve(cls, spec, kw):
        """Expand repeats, fix strides/residuals and widths of `spec` as the builder would build it."""
        stem = spec.stem if spec.fix_stem else builder.round_channels(spec.stem, spec.channel_multiplier)
        in_ch, stages, flat = stem, [], []
        for stage in spec.stages:
            rows = []
            for b in stage:
                for r in range(b.repeat):
                    s = b.stride if r == 0 else 1
                    out = builder.round_channels(b.out, spec.channel_multiplier)
                    mid = None
                    if b.type in EXPANDABLE:
                        mid = b.mid or builder.make_divisible(in_ch * b.expand)
                    residual = (bool(b.skip) if b.type == "cn" else
                                b.skip is not False and in_ch == out and (s == 1 or b.type in ("mqa", "mha")))
                    row = replace(b, out=out, stride=s, repeat=1, mid=mid, skip=True if residual else False)
                    rows.append(row)
                    flat.append(row)
                    in_ch = out
            stages.append(tuple(rows))
        spec = replace(spec, stages=tuple(stages), stem=stem, fix_stem=True, channel_multiplier=1.0)
        return cls(spec, flat, kw)

    def with_rows(self, rows, stem=None):
        it = iter(rows)
        stages = tuple(tuple(next(it) for _ in st) for st in self.spec.stages)
        spec = replace(self.spec, stages=stages, stem=self.spec.stem if stem is None else stem)
        return TableSpace(spec, rows, self.build_kwargs)

    # building ------------------------------------------------------------------------------
    def build(self):
        """A `Built`: the Functional model of this space (fresh weights) and its row layers."""
        rec = {"io": [], "in_shapes": []}

        def on_block(index, x_in, x_out):
            rec["io"].append((x_in, x_out))
            rec["in_shapes"].append(tuple(x_in.shape[1:]))

        trunk = functools.partial(builder.mobilenet_trunk, on_block=on_block)
        model = builder.build_model(self.spec, trunk_fn=trunk, **self.build_kwargs)
        rec["ops"] = [graph.operations_between(a, b) for a, b in rec["io"]]
        stem = graph.operations_between(model.inputs[0], rec["io"][0][0])
        return Built(model, rec, stem)

    def row_model(self, i, in_shape):
        """Row i alone as a batch-1 model (input of `in_shape`), for pricing its latency."""
        r = self.rows[i]
        x = keras.Input(batch_shape=(1,) + tuple(in_shape))
        y = builder._block(x, r, r.stride, self.spec, 0.0, f"row{i}")
        return keras.Model(x, y, name=f"row{i}")

    def check_matches(self, model, built=None):
        """ValueError unless every weight of `model` has the shape this space builds."""
        built = built or self.build().model
        mine = {l.name: [tuple(w.shape) for w in l.weights] for l in built.layers}
        for l in model.layers:
            theirs = [tuple(w.shape) for w in l.weights]
            if mine.get(l.name, theirs if not theirs else None) != theirs:
                raise ValueError(f"{model.name}: layer {l.name!r} has weights {theirs}, its table "
                                 f"builds {mine.get(l.name)}; not a keras_mobile {self.spec.name} table model")

    # knobs ---------------------------------------------------------------------------------
    def widths(self):
        """Chain of tensor widths: [stem, out of row 0, out of row 1, ...]."""
        return [self.spec.stem] + [r.out for r in self.rows]

    def knobs(self):
        """Every choice NetAdapt may turn: each expansion width, each residual-tied width group
        (the stem starts the first group; a row with a shortcut joins the group of its input)."""
        knobs = [Knob("mid", (i,)) for i, r in enumerate(self.rows) if r.type in EXPANDABLE]
        groups, group, stem = [], [], True
        for i, r in enumerate(self.rows):
            if r.skip:
                group.append(i)
                continue
            groups.append((tuple(group), stem))
            group, stem = [i], False
        groups.append((tuple(group), stem))
        return knobs + [Knob("out", g, stem=s) for g, s in groups]

    def value(self, knob):
        if knob.kind == "out" and not knob.rows:
            return self.spec.stem
        r = self.rows[knob.rows[0]]
        return r.mid if knob.kind == "mid" else r.out

    def choices(self, knob):
        """Smaller values the knob may take, largest first (multiples of DIVISOR)."""
        v = self.value(knob)
        return [c for c in range((v - 1) // DIVISOR * DIVISOR, DIVISOR - 1, -DIVISOR)]

    def set(self, knob, value):
        """A new space with the knob at `value` (residual-tied widths move together)."""
        rows = list(self.rows)
        for i in knob.rows:
            rows[i] = replace(rows[i], **{knob.kind: int(value)})
        return self.with_rows(rows, stem=int(value) if knob.stem else None)

    def smallest(self, keep=None):
        """Every knob (that `keep` accepts) at its smallest choice: the floor the search can reach."""
        s = self
        for k in self.knobs():
            if (keep is None or keep(k)) and s.choices(k):
                s = s.set(k, DIVISOR)
        return s

    def describe(self):
        return {"stem": self.spec.stem, "rows": [{k: v for k, v in asdict(r).items()
                                                  if k in ("type", "out", "mid", "stride", "kernel", "skip")}
                                                 for r in self.rows]}
