"""Search spaces as block-table rows with choices.

A `TableSpace` is a package model's table (`ModelSpec` rows, any family the registry holds)
resolved to exact widths (one row per built block, repeats expanded, strides and residuals made
explicit so a narrower child never gains or loses a shortcut), plus `Knob`s: the choices a
search may make. NetAdapt uses two kinds:

    Knob("mid", rows=(i,))            hidden width of a row whose block type has one
                                      (`BlockType.hidden`: ir/er/uir expansion, Meta4D/3D MLP)
    Knob("out", rows=(...), stem=..)  the output width of residual-tied rows (and the stem when
                                      the first row adds onto it): one width for the whole group

A knob names table positions, never layer names; `set(knob, value)` returns a new space.
Block choices are rows too: a "choice" row (`BlockSpec.choices`) lists candidate rows, which
the builder builds side by side under a ChoiceMix; `supernet.SuperNet` makes them (slimming:
UIB variants, IR kernels, Meta4D / Meta3D / identity) and `choose(picks)` gives back a plain
space. A TuNAS-style search adds candidate rules (expansions, widths: coarse stage; UIB
variants: fine stage) over the same rows. Layers of a row are found in the built graph from the
builder's `on_block` hook, so nothing depends on how a backend spells layer names.
"""
from dataclasses import asdict, dataclass, replace

import keras

from keras_mobile import graph
from keras_mobile.applications import builder
from keras_mobile.applications.blocks import BLOCKS, BlockContext, make_divisible, round_channels

DIVISOR = 8                      # widths stay multiples of 8 (SIMD lanes, EdgeTPU channel tiles)
SEARCHABLE = ("mobilenetv3", "mobilenetv4", "mobileone", "efficientformer")   # families whose rows the knobs cover


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


def _family_spec(name, families=SEARCHABLE):
    """The package ModelSpec (block table) behind a model name, from the model registry."""
    from keras_mobile.applications import registry
    try:
        entry, spec = registry.spec_of(name)
    except ValueError:
        entry = spec = None
    if entry is None or entry.family not in families:
        raise ValueError(f"the search supports the table models of {', '.join(families)} (named "
                         f"MobileNetV3Small, MobileNetV4ConvS, ...); got a model named {name!r}")
    return spec


def _filters(layer):
    """A layer's kernel with output channels last (a MobileOne block's fused kernel), or None."""
    if hasattr(layer, "fused_kernel_and_bias"):
        return layer.fused_kernel_and_bias()[0]
    if type(layer).__name__ in ("Conv2D", "Dense"):
        return layer.kernel.numpy()
    return None


def _build_kwargs(model):
    """Constructor arguments that rebuild `model`'s input and head (weights not included)."""
    layers = model.layers
    types = [type(l).__name__ for l in layers]
    out = model.outputs[0]
    kw = dict(input_shape=tuple(model.inputs[0].shape[1:]), weights=None,
              include_preprocessing="Rescaling" in types, name=model.name)
    dense = [l for l in layers if type(l).__name__ == "Dense"]
    if dense and len(out.shape) == 2:
        # the top's last layer holds the activation (EfficientFormer/mixed precision: "predictions")
        last = layers[-1] if type(layers[-1]).__name__ == "Activation" else dense[-1]
        act = keras.activations.serialize(last.activation)
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
        """The layer that produces row i's hidden channels (first full conv or dense of the row)."""
        return next(l for l in self.rows[i] if type(l).__name__ in ("Conv2D", "Dense"))

    def output_filters(self, i):
        """Kernel (output channels last) of the last full conv of row i (its projection), or of
        the stem for i = -1; None for a row without one (EfficientFormer's flat)."""
        ops = self.stem if i < 0 else self.rows[i]
        kernels = [k for k in (_filters(l) for l in ops) if k is not None]
        return kernels[-1] if kernels else None


class TableSpace:
    """A model's block table at exact widths plus the knobs a search may turn."""

    def __init__(self, spec, rows, build_kwargs):
        self.spec = spec                 # ModelSpec (stages hold the resolved rows)
        self.rows = tuple(rows)          # flat resolved BlockSpec rows, stage structure in spec
        self.build_kwargs = dict(build_kwargs)

    # construction --------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, families=SEARCHABLE):
        """The space of a package table model (of `families`) at the widths it has (any width
        multiplier, or a child of an earlier search: NetAdapt's widths, slimming's blocks).
        Raises ValueError for other models."""
        base = _family_spec(model.name, families)
        ref = cls._resolve(base, _build_kwargs(model))
        try:
            return ref._at_widths_of(model)
        except ValueError:
            slimmed = ref._with_blocks_of(model)
            if slimmed is None:
                raise
        return slimmed._at_widths_of(model)

    def _with_blocks_of(self, model):
        """This space with the blocks `model` has in rows a slimming replaced (another kernel,
        UIB variant, Meta3D, the identity), or None when no such choice explains the model."""
        from keras_mobile.search.supernet import SuperNet
        try:
            supernet = SuperNet(self)
        except ValueError:                 # no row of this table has an alternative
            return None
        picks = supernet.picks_of(model)
        return supernet.choose(picks) if picks and any(picks.values()) else None

    def _at_widths_of(self, model):
        """This space (its blocks those of `model`) with the widths `model` has."""
        built = self.build()
        names = {l.name: l for l in model.layers}

        def width(layer, out=True):
            other = names.get(layer.name)
            if other is None:
                raise ValueError(f"{model.name} has no layer {layer.name!r} of its table; it was not "
                                 f"built by keras_mobile (or by another version)")
            return int(other.kernel.shape[-1] if not out else other.output.shape[-1])

        stem = width(built.stem[-1])
        rows = []
        for i, r in enumerate(self.rows):
            if not built.rows[i]:          # a removed row: its width is its input's, tied to it
                rows.append(replace(r, out=rows[-1].out if rows else stem, skip=True))
                continue
            last = built.rows[i][-1]
            upd = {"out": width(last)}
            if BLOCKS[r.type].hidden:
                upd["mid"] = width(built.expansion_conv(i), out=False)
            rows.append(replace(r, **upd))
        space = self.with_rows(rows, stem=stem)
        same = tuple(rows) == self.rows and stem == self.spec.stem_width
        space.check_matches(model, built.model if same else None)
        return space

    @classmethod
    def from_spec(cls, spec, **build_kwargs):
        """The space of a table (`ModelSpec`) as the builder builds it with `build_kwargs`
        (constructor arguments: input_shape, classes, ...; weights are never loaded)."""
        return cls._resolve(spec, {**build_kwargs, "weights": None})

    @classmethod
    def _resolve(cls, spec, kw):
        """Expand repeats, fix strides/residuals and widths of `spec` as the builder would build it.

        Rows that keep their input width (Meta blocks, flat, norm: `out` 0) count as tied to it."""
        stem_rows = list(spec.stem)
        last = stem_rows[-1]
        stem = last.out if spec.fix_stem else round_channels(last.out, spec.channel_multiplier)
        stem_rows[-1] = replace(last, out=stem)
        in_ch, stages, flat = stem, [], []
        for stage in spec.stages:
            rows = []
            for b in stage:
                kind = BLOCKS[b.type]
                for r in range(b.repeat):
                    s = b.stride if r == 0 else 1
                    out = round_channels(b.out, spec.channel_multiplier) if kind.needs_out else in_ch
                    mid = kind.hidden(b, in_ch) if kind.hidden else None
                    residual = kind.residual(b, in_ch, out, s) or not kind.needs_out
                    row = replace(b, out=out, stride=s, repeat=1, mid=mid, skip=True if residual else False)
                    rows.append(row)
                    flat.append(row)
                    in_ch = out
            stages.append(tuple(rows))
        spec = replace(spec, stages=tuple(stages), stem=tuple(stem_rows), fix_stem=True, channel_multiplier=1.0)
        return cls(spec, flat, kw)

    def with_rows(self, rows, stem=None):
        it = iter(rows)
        stages = tuple(tuple(next(it) for _ in st) for st in self.spec.stages)
        stem_rows = self.spec.stem
        if stem is not None:
            stem_rows = stem_rows[:-1] + (replace(stem_rows[-1], out=stem),)
        spec = replace(self.spec, stages=stages, stem=stem_rows)
        return TableSpace(spec, rows, self.build_kwargs)

    # building ------------------------------------------------------------------------------
    def build(self):
        """A `Built`: the Functional model of this space (fresh weights) and its row layers."""
        rec = {"io": [], "in_shapes": []}

        def on_block(index, x_in, x_out):
            rec["io"].append((x_in, x_out))
            rec["in_shapes"].append(tuple(x_in.shape[1:]))

        model = builder.build_model(self.spec, on_block=on_block, **self.build_kwargs)
        rec["ops"] = [graph.operations_between(a, b) for a, b in rec["io"]]
        stem = graph.operations_between(model.inputs[0], rec["io"][0][0])
        return Built(model, rec, stem)

    def row_model(self, i, in_shape):
        """Row i alone as a batch-1 model (input of `in_shape`), for pricing its latency."""
        r = self.rows[i]
        x = keras.Input(batch_shape=(1,) + tuple(in_shape))
        # named like a package block ("blocks-i-0-..."), so the latency table groups the whole
        # row (its residual add included) into one block, as it does in a full model
        kind = BLOCKS[r.type]
        names = builder.row_names(self.spec, kind, i, 0, min_names=1)
        y = kind.build(x, r, BlockContext(self.spec, names, r.stride))
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
        return [self.spec.stem_width] + [r.out for r in self.rows]

    def knobs(self):
        """Every choice NetAdapt may turn: each expansion width, each residual-tied width group
        (the stem starts the first group; a row with a shortcut joins the group of its input)."""
        knobs = [Knob("mid", (i,)) for i, r in enumerate(self.rows) if BLOCKS[r.type].hidden]
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
            return self.spec.stem_width
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

    def scaled(self, multiplier):
        """Every width times `multiplier` as the builder applies a width multiplier (timm
        channel_multiplier: stem and row outputs rounded to multiples of 8, never more than 10 %
        down; expansions = the scaled input width x the row's expand ratio): the uniform
        width-multiplier baseline for families whose constructor has no `alpha` (MobileNetV4).
        Residual ties survive, since tied widths are equal and scale alike."""
        if not 0 < multiplier <= 4:
            raise ValueError(f"multiplier must be in (0, 4], got {multiplier!r}")
        w = lambda c: round_channels(c, multiplier)  # noqa: E731
        in_ch, rows = w(self.spec.stem_width), []
        for r in self.rows:
            upd = {"out": w(r.out)}
            if r.mid:        # from the scaled input width, as the builder derives an expansion
                upd["mid"] = make_divisible(in_ch * r.expand) if r.expand else w(r.mid)
            rows.append(replace(r, **upd))
            in_ch = upd["out"]
        return self.with_rows(rows, stem=w(self.spec.stem_width))

    def smallest(self, keep=None):
        """Every knob (that `keep` accepts) at its smallest choice: the floor the search can reach."""
        s = self
        for k in self.knobs():
            if (keep is None or keep(k)) and s.choices(k):
                s = s.set(k, DIVISOR)
        return s

    def describe(self):
        return {"stem": self.spec.stem_width, "rows": [{k: v for k, v in asdict(r).items()
                                                  if k in ("type", "out", "mid", "stride", "kernel", "skip")}
                                                 for r in self.rows]}
