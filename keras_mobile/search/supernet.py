"""A supernet over a package block table: rows with choices, mixed by Gumbel-softmax weights.

`SuperNet(space)` turns rows of a `TableSpace` into "choice" rows (`BlockSpec.choices`): the
row's own block first, then its alternatives, and the identity where the row has a shortcut:

    MobileNetV3 "ir"     depthwise kernel 3 / 5
    MobileNetV4 "uir"    ExtraDW / IB / ConvNext / FFN (the UIB variants; a strided row keeps a dw)
    EfficientFormer      Meta4D / Meta3D in the attention stage (a Meta3D on a map reads it as
                         tokens and gives a map back), Meta4D / Meta3D rows elsewhere: identity

The builder builds the supernet like any table (candidate k of a row at the module path
`<row>.choices.<k>`, its `ChoiceMix` at `<row>.choice`). `extract(picks)` builds the chosen
sub-network as an ordinary package model from the same table (a removed row is an "identity"
row that keeps its module index, so every other row keeps its path) and copies the weights by
timm path: `<row>.choices.<k>.<rest>` -> `<row>.<rest>`. A later TuNAS-style search adds
candidate rules (expansions, widths) over the same rows.
"""
import re
from dataclasses import replace

import numpy as np

from keras_mobile.applications.blocks import BlockSpec
from keras_mobile.layers.choice_mix import ChoiceMix
from keras_mobile.layers.naming import to_timm_path

SLIMMABLE = ("mobilenetv3", "mobilenetv4", "efficientformer")   # families with candidate rules
IDENTITY = BlockSpec("identity")
_CHOICE = re.compile(r"^(?P<row>.+)\.choices\.(?P<k>\d+)\.(?P<rest>.+)$")


def _kernel_sizes(layer):
    """What tells a layer's candidate apart whatever its widths: per weight, its rank and, for
    a conv kernel, its spatial size."""
    return tuple(tuple(w.shape[:2]) if len(w.shape) == 4 else len(w.shape) for w in layer.weights)


def _uir_variants(row):
    """ExtraDW, IB, ConvNext, FFN at the row's kernels (3 where it has none)."""
    a, k = row.start_kernel or row.kernel or 3, row.kernel or row.start_kernel or 3
    out = [(a, k), (0, k), (a, 0)] + ([] if row.stride > 1 else [(0, 0)])
    return [replace(row, start_kernel=s, kernel=m) for s, m in out]


def candidates(row, attention_stage=False):
    """The rows a supernet may put in place of `row` (a resolved table row), `row` first."""
    if row.type == "ir":
        alts = [replace(row, kernel=k) for k in (3, 5)]
    elif row.type == "uir":
        alts = _uir_variants(row)
    elif row.type == "meta4d" and attention_stage:
        alts = [replace(row, type="meta3d")]
    else:
        alts = []
    if row.type in ("ir", "uir", "ds", "er", "mqa", "meta4d", "meta3d") and row.skip and row.stride == 1:
        alts.append(IDENTITY)
    out = [row]
    for c in alts:
        if c not in out:
            out.append(c)
    return tuple(out)


def _attention_stages(spec):
    return {si for si, stage in enumerate(spec.stages) if any(r.type == "flat" for r in stage)}


class SuperNet:
    """Choice rows over a `TableSpace` (see the module doc).

    Args:
        space: a TableSpace of a SLIMMABLE family (e.g. `TableSpace.from_model(model, SLIMMABLE)`).
        rows: which rows get choices: None (every row with an alternative), an iterable of row
            indices, or a callable (index, row) -> bool.
    """

    def __init__(self, space, rows=None):
        stages = _attention_stages(space.spec)
        stage_of = [si for si, stage in enumerate(space.spec.stages) for _ in stage]
        if rows is None:
            keep = lambda i, r: True  # noqa: E731
        elif callable(rows):
            keep = rows
        else:
            wanted = set(rows)
            bad = sorted(i for i in wanted if not (isinstance(i, (int, np.integer)) and 0 <= i < len(space.rows)))
            if bad:
                raise ValueError(f"rows {bad} are not row indices of {space.spec.name} (0..{len(space.rows) - 1})")
            keep = lambda i, r: i in wanted  # noqa: E731
        self.base = space
        self.choices = {}                           # row index -> candidate rows (the row's own first)
        new_rows = list(space.rows)
        for i, r in enumerate(space.rows):
            cands = candidates(r, stage_of[i] in stages)
            if len(cands) > 1 and keep(i, r):
                self.choices[i] = cands
                new_rows[i] = BlockSpec("choice", out=r.out, stride=r.stride, skip=r.skip, choices=cands)
        if not self.choices:
            raise ValueError(f"no row of {space.spec.name} has a choice (rows={rows!r})")
        self.space = space.with_rows(new_rows)
        self.built = self.space.build()
        self.model = self.built.model
        self.mixes = {i: next(op for op in self.built.rows[i] if isinstance(op, ChoiceMix)) for i in self.choices}

    # choices -----------------------------------------------------------------------------------
    def importance(self):
        """{row: softmax of its architecture logits over its candidates} (numpy)."""
        return {i: m.probabilities() for i, m in self.mixes.items()}

    def picks(self):
        """{row: the most likely candidate still allowed}: what the supernet computes at inference."""
        return {i: int(np.argmax(p)) for i, p in self.importance().items()}

    def set_picks(self, picks):
        """Make `picks` the supernet's choices (logits one-hot, every candidate still allowed)."""
        picks = self._check(picks)
        for i, m in self.mixes.items():
            m.logits.assign(np.eye(len(self.choices[i]), dtype="float32")[picks[i]])
            m.set_alive(np.ones(len(self.choices[i]), "float32"))

    def set_temperature(self, t):
        for m in self.mixes.values():
            m.set_temperature(t)

    def _check(self, picks):
        picks = dict(self.picks() if picks is None else picks)
        for i, k in picks.items():
            if i not in self.choices or not 0 <= k < len(self.choices[i]):
                raise ValueError(f"pick {i}: {k} is not a choice of this supernet; its rows and "
                                 f"candidate counts are {({j: len(c) for j, c in self.choices.items()})}")
        return {i: picks.get(i, 0) for i in self.choices}

    def choose(self, picks=None):
        """The TableSpace of the sub-network with candidate `picks[i]` at each choice row
        (default: the supernet's current picks; rows not given keep their own block)."""
        picks = self._check(picks)
        rows = list(self.base.rows)
        for i, k in picks.items():
            rows[i] = self.choices[i][k]
        return self.base.with_rows(rows)

    def picks_of(self, model):
        """{row: candidate index} of `model`, a sub-network of this table (a slimming result, or
        a narrower child of one), read from its layers: in each choice row, the candidate with
        the same layer paths and kernel sizes (widths may differ). None when a row matches none."""
        theirs = {to_timm_path(l.name): _kernel_sizes(l) for l in model.layers if l.weights}
        picks = {}
        for i, mix in self.mixes.items():
            row = to_timm_path(mix.name).rsplit(".", 1)[0] + "."
            mine = {p[len(row):]: k for p, k in theirs.items() if p.startswith(row)}
            cands = [{} for _ in self.choices[i]]
            for op in self.built.rows[i]:
                m = _CHOICE.match(to_timm_path(op.name))
                if m is not None and op.weights:
                    cands[int(m["k"])][m["rest"]] = _kernel_sizes(op)
            k = next((k for k, c in enumerate(cands) if c == mine), None)
            if k is None:
                return None
            picks[i] = k
        return picks

    def describe(self, picks=None):
        """JSON-able: per choice row, its candidates (type, kernels) and the pick."""
        picks = self._check(picks)
        desc = lambda r: {"type": r.type, "start_kernel": r.start_kernel, "kernel": r.kernel}  # noqa: E731
        return [{"row": i, "candidates": [desc(c) for c in cands], "pick": picks[i]}
                for i, cands in self.choices.items()]

    # weights -----------------------------------------------------------------------------------
    def _sub_paths(self, picks=None):
        """{timm path in a sub-network: supernet layer} for the layers with weights: shared layers
        under their own path, a row's candidate k under the row's path (all k, or picks[row])."""
        out = {}
        in_rows = set()
        for i, ops in enumerate(self.built.rows):
            for op in ops:
                in_rows.add(id(op))
                m = _CHOICE.match(to_timm_path(op.name))
                if m is None:
                    if op.weights and not isinstance(op, ChoiceMix):
                        out[to_timm_path(op.name)] = [op]
                elif op.weights and (picks is None or int(m["k"]) == picks[i]):
                    out.setdefault(f"{m['row']}.{m['rest']}", []).append(op)
        for op in self.model.layers:
            if id(op) not in in_rows and op.weights:
                out[to_timm_path(op.name)] = [op]
        return out

    def inherit(self, model):
        """Copy `model`'s weights (a package model of the base table) into every supernet layer
        of the same path and shapes: the row's own block exactly, alternatives where they share
        a layer (e.g. a UIB variant's expansion conv). Returns the number of layers set."""
        theirs = {to_timm_path(l.name): l for l in model.layers if l.weights}
        n = 0
        for path, ops in self._sub_paths().items():
            src = theirs.get(path)
            if src is None:
                continue
            values = src.get_weights()
            for op in ops:
                if [tuple(w.shape) for w in op.weights] == [v.shape for v in values]:
                    op.set_weights(values)
                    n += 1
        return n

    def extract(self, picks=None):
        """The sub-network of `picks` (default: the current ones) as a package Functional model,
        its weights copied from the supernet by timm path."""
        picks = self._check(picks)
        model = self.choose(picks).build().model
        src = self._sub_paths(picks)
        for layer in model.layers:
            if not layer.weights:
                continue
            ops = src.get(to_timm_path(layer.name))
            if not ops or len(ops) != 1:
                raise ValueError(f"the supernet has no single layer for {layer.name!r} of the sub-network")
            layer.set_weights(ops[0].get_weights())
        return model
