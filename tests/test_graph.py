"""keras_mobile.graph: each helper (and so each private Keras attribute it reads) on small graphs."""
import keras
import numpy as np
import pytest

from keras_mobile import graph
from keras_mobile.layers.mobileone_block import MobileOneBlock

L = keras.layers


def _nested():
    """outer(inp) = fc(inner(inp) + shared(inp)); `shared` is also called in another model."""
    shared = L.Conv2D(4, 1, name="shared")
    x = keras.Input((8, 8, 3), name="inner_in")
    inner = keras.Model(x, L.ReLU(name="inner_relu")(L.Conv2D(4, 3, padding="same", name="inner_conv")(x)),
                        name="inner")
    inp = keras.Input((8, 8, 3), name="img")
    y = L.Add(name="add")([inner(inp), shared(inp)])
    y = L.GlobalAveragePooling2D(name="gap")(y)
    outer = keras.Model(inp, {"logits": L.Dense(2, name="fc")(y)}, name="outer")
    other_in = keras.Input((8, 8, 3))
    other = keras.Model(other_in, shared(other_in))       # a second call of `shared`, not in `outer`
    return outer, other, shared


def test_layer_iteration_and_topological_walk():
    outer, other, shared = _nested()
    assert [l.name for l in graph.leaf_layers(outer)] == ["img", "inner_in", "inner_conv", "inner_relu",
                                                          "shared", "add", "gap", "fc"]
    assert [l.name for l in graph.all_layers(outer)] == ["img", "inner", "inner_in", "inner_conv",
                                                         "inner_relu", "shared", "add", "gap", "fc"]
    calls = graph.layer_calls(outer)
    names = [op.name for op, _ in calls]
    assert sorted(names) == ["add", "fc", "gap", "inner", "shared"]       # shared: this model's call only
    assert names.index("add") > max(names.index("inner"), names.index("shared"))
    assert names.index("fc") == len(names) - 1
    add_node = dict((op.name, n) for op, n in calls)["add"]
    assert len(add_node.input_tensors) == 2
    (op, node), = graph.layer_calls(other)
    assert op is shared and node.input_tensors[0] is other.inputs[0]
    order = [n.operation.name for n in graph.nodes_in_order(outer)]
    assert order[0] == "img" and order[-1] == "fc"
    assert set(graph.output_structure(outer)) == {"logits"}
    assert graph.is_functional(outer) and not graph.is_functional(shared)


def test_producer_and_operations_between():
    outer, _, _ = _nested()
    fc_out = outer.outputs[0]
    op, node = graph.producer(fc_out)
    assert op.name == "fc" and node.outputs[0] is fc_out
    assert graph.producer(np.zeros(3)) is None
    between = graph.operations_between(outer.inputs[0], fc_out)
    assert sorted(l.name for l in between) == ["add", "fc", "gap", "inner", "shared"]


def test_tensor_consumers():
    outer, _, _ = _nested()
    readers = graph.tensor_consumers(outer)
    # the input feeds the nested model and `shared` (this model's call of it, not the other model's)
    assert sorted(l.name for l, _ in readers[id(outer.inputs[0])]) == ["inner", "shared"]
    add_out = [n for l, n in graph.layer_calls(outer) if l.name == "add"][0].output_tensors[0]
    assert [l.name for l, _ in readers[id(add_out)]] == ["gap"]
    assert id(outer.outputs[0]) not in readers


def test_sublayers_and_built_shape():
    block = MobileOneBlock(8, 3, se_channels=2, name="b")
    assert graph.built_input_shape(block) is None
    block.build((None, 6, 6, 8))
    assert tuple(graph.built_input_shape(block)) == (None, 6, 6, 8)
    direct = graph.sublayers(block, include_self=False, recursive=False)
    assert {"attn-fc1", "attn-fc2", "identity"} <= {l.name for l in direct} and block not in direct
    assert graph.sublayers(block)[0] is block


def test_activation_name():
    assert graph.activation_name(L.Activation("hard_swish")) == "hard_silu"
    assert graph.activation_name(L.Conv2D(2, 1)) == "linear"
    assert graph.activation_name(L.Dense(2, activation="relu6")) == "relu6"
    assert graph.activation_name(L.BatchNormalization()) is None


def test_training_internals():
    opt = keras.optimizers.AdamW(weight_decay=0.1)
    opt.build([keras.Variable(np.zeros(2, "float32"))])
    before = len(opt.variables)
    opt.weight_decay = keras.Variable(0.1, trainable=False)     # as WeightDecayAnnealing does
    assert len(opt.variables) == before + 1
    graph.untrack_variable(opt, opt.weight_decay)
    assert len(opt.variables) == before
    inp = keras.Input((3,))
    model = keras.Model(inp, L.Dense(2)(inp))
    model.compile("sgd", "mse", metrics=["mae"])
    x, y = np.ones((1, 3), "float32"), np.zeros((1, 2), "float32")
    assert graph.build_compiled_metrics(model, x, y)
    assert np.isfinite(model.train_on_batch(x, y)).all()


@pytest.mark.parametrize("se", [0, 2])
def test_mobileone_standard_layers_compute_the_block(se):
    keras.utils.set_random_seed(0)
    block = MobileOneBlock(8, 3, 2, se_channels=se, name="b")
    x = np.random.default_rng(0).standard_normal((2, 9, 9, 8)).astype("float32")
    block(x)
    fused = block.fused()
    flat = fused.standard_layers()
    assert not any(isinstance(l, MobileOneBlock) for l in flat.layers)
    np.testing.assert_allclose(flat(x), block(x), atol=1e-4)
    with pytest.raises(ValueError, match="fused"):
        block.standard_layers()
