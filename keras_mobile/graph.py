"""Walking Keras models: the one module that reads Keras' graph internals.

Layer iteration (`leaf_layers`, `all_layers`, `sublayers`), the topological walk of a functional
model (`layer_calls`, `nodes_in_order`), the way back from a tensor to the layer that made it
(`producer`) and forward to the calls reading it (`tensor_consumers`), and activation lookup
(`activation_name`) live here, so the rest of the package never touches private Keras API. Every private attribute is marked `# private API, checked on
Keras <KERAS_CHECKED>`: when a Keras upgrade breaks one, this file is the only place to look
(`tests/test_graph.py` exercises each of them).
"""
import keras

KERAS_CHECKED = "3.15.1"   # the Keras version every private use below was checked against


# --- layers ------------------------------------------------------------------------------------
def leaf_layers(model):
    """The layers of `model` in order, nested models replaced by their own layers (recursively)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def all_layers(model):
    """Every layer of `model` in order, nested models included (each followed by its layers)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def sublayers(layer, include_self=True, recursive=True):
    """The layers a layer tracks (its attributes, lists of layers...), e.g. a composite block's
    convs and norms; `recursive=False`: only the direct ones."""
    # private API, checked on Keras 3.15.1: Layer._flatten_layers (public Layer.layers is
    # only defined on Model)
    return list(layer._flatten_layers(include_self=include_self, recursive=recursive))


def built_input_shape(layer):
    """The input shape a layer was built with (the first build argument), or None if unbuilt."""
    # private API, checked on Keras 3.15.1: Layer._build_shapes_dict {build arg name: shape}
    shapes = getattr(layer, "_build_shapes_dict", None)
    return next(iter(shapes.values())) if shapes else None


# --- functional graphs -------------------------------------------------------------------------
def is_functional(model):
    """True for a functional keras.Model (a graph of layer calls), False for subclassed models
    and for layers."""
    # private API, checked on Keras 3.15.1: Functional._nodes_by_depth
    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def nodes_in_order(model):
    """The nodes (layer calls, input nodes included) of a functional model, inputs first."""
    # private API, checked on Keras 3.15.1: Functional._nodes_by_depth {depth: [Node]},
    # depth 0 = the output nodes
    by_depth = model._nodes_by_depth
    return [n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]]


def layer_calls(model):
    """[(layer, node)] for every call of every layer of a functional model, in topological order,
    input layers left out. A layer reused in another model also has nodes there: only this
    model's own calls are listed."""
    # private API, checked on Keras 3.15.1: keras.src.ops.function.make_node_key,
    # Functional._nodes (the keys of this model's nodes) and Operation._inbound_nodes
    from keras.src.ops.function import make_node_key
    keys = getattr(model, "_nodes", None)
    keys = keys if isinstance(keys, (set, frozenset, dict)) else None
    out = []
    for op in getattr(model, "operations", None) or model.layers:
        if isinstance(op, keras.layers.InputLayer):
            continue
        for i, node in enumerate(op._inbound_nodes):
            if keys is None or make_node_key(op, i) in keys:
                out.append((op, node))
    return out


def tensor_consumers(model):
    """{id(symbolic tensor): [(layer, node)] of this model's layer calls that read it}."""
    readers = {}
    for layer, node in layer_calls(model):
        for t in node.input_tensors:
            readers.setdefault(id(t), []).append((layer, node))
    return readers


def call_input_shapes(layer):
    """The (first) input shape of each call of `layer`, in every model it was called in."""
    # private API, checked on Keras 3.15.1: Operation._inbound_nodes, Node.arguments.keras_tensors
    return [node.arguments.keras_tensors[0].shape for node in layer._inbound_nodes if node.arguments.keras_tensors]


def output_structure(model):
    """The nesting (dict / list / single tensor) of a functional model's outputs."""
    # private API, checked on Keras 3.15.1: Functional._outputs_struct
    return model._outputs_struct


def producer(tensor):
    """(layer, node) that computed a symbolic tensor, or None (an eager tensor, a constant)."""
    # private API, checked on Keras 3.15.1: KerasTensor._keras_history
    # (operation, node_index, tensor_index) and Operation._inbound_nodes
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    op = history.operation
    return op, op._inbound_nodes[history.node_index]


def operations_between(x_in, x_out):
    """Layers computing symbolic tensor `x_out` from `x_in` (walking back from `x_out`, input
    layers left out), in no particular order."""
    ops, stack, seen = [], [x_out], set()
    while stack:
        t = stack.pop()
        if t is x_in or id(t) in seen:
            continue
        seen.add(id(t))
        made = producer(t)
        if made is None or isinstance(made[0], keras.layers.InputLayer):
            continue
        if made[0] not in ops:
            ops.append(made[0])
        stack.extend(made[1].input_tensors)
    return ops


# --- layer attributes --------------------------------------------------------------------------
def activation_name(layer):
    """Name of the activation function a layer applies ("relu", "hard_silu", "linear", a
    registered custom function's name ...), or None for a layer without one."""
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None) if act is not None else None


# --- training internals ------------------------------------------------------------------------
def untrack_variable(optimizer, variable):
    """Drops `variable` from `optimizer.variables` (by identity)."""
    # private API, checked on Keras 3.15.1: Optimizer._tracker (a keras Tracker)
    optimizer._tracker.untrack(variable)


def build_compiled_metrics(model, x, y):
    """Builds a compiled model's loss and metrics on one (x, y) batch now; False if this Keras
    has no such hook."""
    # private API, checked on Keras 3.15.1: Trainer._symbolic_build(data_batch=...)
    if not hasattr(model, "_symbolic_build"):
        return False
    model._symbolic_build(data_batch=(x, y))
    return True
