"""The TFLite metadata format: names, the flatbuffer schemas and the model's IO tensors, shared by
`metadata_write` (add_metadata) and `metadata_read` (read_metadata)."""
from keras_mobile.tflite import _metadata_schema_py_generated as md  # noqa: F401
from keras_mobile.tflite import _segmenter_metadata_schema_py_generated as seg_md  # noqa: F401

METADATA_NAME = "TFLITE_METADATA"
SEGMENTER_METADATA_NAME = "SEGMENTER_METADATA"
KINDS = ("classifier", "detector", "segmenter")
ACTIVATIONS = {"none": 0, "sigmoid": 1, "softmax": 2}
DETECTOR_OUTPUTS = ("location", "category", "score", "number of detections")
LABELS_FILE = "labels.txt"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)     # fixed: the same model and labels give the same bytes


def _schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def _model_bytes(tflite):
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        return bytes(tflite)
    with open(tflite, "rb") as f:
        return f.read()


def _io(model):
    """[(name, shape, dtype name, (scale, zero_point))] of the main subgraph's inputs/outputs."""
    schema = _schema()
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    sg = model.subgraphs[0]

    def info(i):
        t = sg.tensors[i]
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        return {"index": int(i), "name": name, "shape": [int(d) for d in t.shape],
                "dtype": types[t.type], "quantization": (scale, zp)}
    return [info(i) for i in sg.inputs], [info(i) for i in sg.outputs]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value
