"""TFLite metadata (the `TFLITE_METADATA` buffer + packed label files) for Android tooling.

MediaPipe Tasks (ImageClassifier / ObjectDetector / ImageSegmenter) and the TFLite Task Library
read a `tflite.ModelMetadata` flatbuffer stored as a model buffer named "TFLITE_METADATA", and
label files stored as an uncompressed zip appended to the .tflite file. This module writes
both the way tflite-support's MetadataPopulator does, with the schema vendored as Python
(`_metadata_schema_py_generated.py`), so neither tflite-support (which breaks TF 2.21) nor
mediapipe is needed at run time.

Input normalisation: a float32 input is fed by MediaPipe as (pixel - mean) / std, so for
keras_mobile models (raw [0, 255] pixels in, normalisation inside the model) mean=0, std=1. A
uint8 input gets the raw pixels; the exporter pins its quantization to scale 1, zero point 0
so that the pixel value *is* the real value.
"""
import io
import os
import zipfile

import flatbuffers
import numpy as np

from keras_mobile.tflite.flatbuffer import read_model, write_model
from keras_mobile.tflite.metadata_format import (
    _ZIP_DATE, ACTIVATIONS, DETECTOR_OUTPUTS, KINDS, LABELS_FILE, METADATA_NAME, SEGMENTER_METADATA_NAME,
    _io, _schema, _text, md, seg_md)


def imagenet_labels():
    """The 1000 ImageNet-1k class names shipped with the package (keras.applications order)."""
    from keras_mobile.applications.imagenet_utils import class_index
    index = class_index()
    return [index[i][1] for i in range(1000)]


def _labels(labels):
    if labels is None:
        return None
    if isinstance(labels, str) and labels == "imagenet":
        return imagenet_labels()
    if isinstance(labels, (str, os.PathLike)):
        if not os.path.isfile(labels):
            raise ValueError(f"labels file not found: {labels} (give a list of names, a text file with one "
                             f"name per line, or 'imagenet')")
        with open(labels, encoding="utf-8") as f:
            labels = [line.rstrip("\r\n") for line in f if line.strip()]
    labels = [str(x) for x in labels]
    bad = [x for x in labels if "\n" in x or not x.strip()]
    if bad:
        raise ValueError(f"labels must be non-empty single-line names, got {bad[:3]}")
    return labels


def _detector_order(model, outputs):
    """Subgraph output positions of the TFLite_Detection_PostProcess outputs 0..3 (boxes,
    classes, scores, count); the converter does not keep them in that order."""
    sg = model.subgraphs[0]
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        if custom == "TFLite_Detection_PostProcess":
            positions = {o["index"]: p for p, o in enumerate(outputs)}
            if not all(int(t) in positions for t in op.outputs[:4]):
                break
            return [positions[int(t)] for t in op.outputs[:4]]
    raise ValueError("kind='detector' needs a model whose 4 outputs come from the TFLite_Detection_PostProcess "
                     "op (SSDLiteModel.export_tflite(postprocess_op=True))")


def infer_kind(tflite):
    """'detector' if the graph ends in TFLite_Detection_PostProcess, 'segmenter' for a 4-D
    output, else 'classifier'."""
    return _kind(read_model(tflite)[0])


def _kind(model):
    _, outputs = _io(model)
    try:
        _detector_order(model, outputs)
        return "detector"
    except ValueError:
        pass
    return "segmenter" if len(outputs) == 1 and len(outputs[0]["shape"]) == 4 else "classifier"


def model_defaults(model):
    """add_metadata arguments describing a Keras model: its name; mean 0 / std 1 when it takes raw
    [0, 255] pixels (keras_mobile's built-in `preprocessing` layer), else the checkpoint's
    normalisation scaled to pixels; ImageNet class names for a 1000-class package classifier."""
    out = {"name": model.name, "description": f"{model.name} exported by keras_mobile."}
    timm_name = getattr(model, "timm_name", None)
    names = {layer.name for layer in model.layers}
    if timm_name and "preprocessing" not in names:
        from keras_mobile.weights.registry import preprocessing_info
        info = preprocessing_info(timm_name, None)
        out["mean"] = [255.0 * m for m in info["mean"]]
        out["std"] = [255.0 * s for s in info["std"]]
    shape = model.outputs[0].shape
    if timm_name and len(model.outputs) == 1 and len(shape) == 2 and shape[-1] == 1000:
        out["labels"] = "imagenet"
    return out


def _process_unit(options_type, options):
    pu = md.ProcessUnitT()
    pu.optionsType, pu.options = options_type, options
    return pu


def _content(props_type, props, value_range=None):
    c = md.ContentT()
    c.contentPropertiesType, c.contentProperties = props_type, props
    if value_range is not None:
        c.range = md.ValueRangeT()
        c.range.min, c.range.max = value_range
    return c


def _tensor(name, description, content=None, files=(), process_units=None, stats=None):
    t = md.TensorMetadataT()
    t.name, t.description, t.content, t.stats = name, description, content, stats
    t.processUnits = process_units
    if files:
        t.associatedFiles = []
        for fname, ftype, fdesc in files:
            f = md.AssociatedFileT()
            f.name, f.type, f.description = fname, ftype, fdesc
            t.associatedFiles.append(f)
    return t


def _stats(lo, hi):
    s = md.StatsT()
    s.min, s.max = [float(v) for v in lo], [float(v) for v in hi]
    return s


def _input_metadata(inp, mean, std):
    mean = [float(m) for m in np.atleast_1d(mean)]
    std = [float(s) for s in np.atleast_1d(std)]
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise ValueError(f"mean and std must both have 1 or 3 values, got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std values must be positive, got {std}")
    if len(inp["shape"]) != 4 or inp["shape"][0] != 1 or inp["shape"][3] != 3:
        raise ValueError(f"image metadata needs a [1, H, W, 3] input, the model takes {inp['shape']} "
                         f"(export with batch_size=1 and an RGB input)")
    if inp["dtype"] not in ("float32", "uint8"):
        raise ValueError(f"MediaPipe/Task Library image models take float32 or uint8 input, this one takes "
                         f"{inp['dtype']}: export with input_dtype='uint8' or 'float32'")
    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.RGB
    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = mean, std
    if inp["dtype"] == "uint8":
        stats = _stats([0], [255])
        how = "uint8 RGB pixels in [0, 255], fed as they are"
    else:
        stats = _stats([(0 - m) / s for m, s in zip(mean, std)], [(255 - m) / s for m, s in zip(mean, std)])
        fmt = lambda v: ", ".join(f"{x:g}" for x in v)       # noqa: E731
        how = f"float32 RGB, (pixel - mean) / std with mean [{fmt(mean)}], std [{fmt(std)}]"
    h, w = inp["shape"][1:3]
    return _tensor("image", f"Input image {h}x{w}: {how}.",
                   _content(md.ContentProperties.ImageProperties, props),
                   [], [_process_unit(md.ProcessUnitOptions.NormalizationOptions, norm)], stats)


def _score_units(score_threshold):
    if score_threshold is None:
        return None
    opt = md.ScoreThresholdingOptionsT()
    opt.globalScoreThreshold = float(score_threshold)
    return [_process_unit(md.ProcessUnitOptions.ScoreThresholdingOptions, opt)]


def _check_label_count(labels, n, what):
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels given, but the model's {what} has {n} classes")


def _classifier_outputs(outputs, labels, score_threshold):
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 2:
        raise ValueError(f"kind='classifier' needs one [1, classes] output, the model has "
                         f"{[o['shape'] for o in outputs]}")
    _check_label_count(labels, outputs[0]["shape"][-1], "output")
    files = [(LABELS_FILE, md.AssociatedFileType.TENSOR_AXIS_LABELS, "Class names, one per output index.")] \
        if labels else []
    return [_tensor("probability", "Scores of each class.",
                    _content(md.ContentProperties.FeatureProperties, md.FeaturePropertiesT()),
                    files, _score_units(score_threshold))]


def _detector_outputs(model, outputs, labels, score_threshold):
    order = _detector_order(model, outputs)
    feature = md.ContentProperties.FeatureProperties
    box = md.BoundingBoxPropertiesT()
    box.index = [1, 0, 3, 2]     # (ymin, xmin, ymax, xmax) -> positions of left, top, right, bottom
    box.type, box.coordinateType = md.BoundingBoxType.BOUNDARIES, md.CoordinateType.RATIO
    files = [(LABELS_FILE, md.AssociatedFileType.TENSOR_VALUE_LABELS, "Class names, one per class value.")] \
        if labels else []
    by_role = [
        _tensor("location", "Boxes (ymin, xmin, ymax, xmax), fractions of the image size.",
                _content(md.ContentProperties.BoundingBoxProperties, box, (2, 2))),
        _tensor("category", "Class index of each detection.",
                _content(feature, md.FeaturePropertiesT(), (2, 2)), files),
        _tensor("score", "Score of each detection.", _content(feature, md.FeaturePropertiesT(), (2, 2)),
                process_units=_score_units(score_threshold)),
        _tensor("number of detections", "Number of valid detections.",
                _content(feature, md.FeaturePropertiesT())),
    ]
    metas = [None] * 4
    for role, position in enumerate(order):
        metas[position] = by_role[role]
    return metas


def _segmenter_outputs(outputs, labels):
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 4:
        raise ValueError(f"kind='segmenter' needs one [1, H, W, classes] output, the model has "
                         f"{[o['shape'] for o in outputs]}")
    _check_label_count(labels, outputs[0]["shape"][-1], "mask output")
    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.GRAYSCALE
    files = [(LABELS_FILE, md.AssociatedFileType.TENSOR_AXIS_LABELS, "Class names, one per mask channel.")] \
        if labels else []
    return [_tensor("segmentation_masks", "Per-pixel class scores [1, H, W, classes].",
                    _content(md.ContentProperties.ImageProperties, props, (1, 2)), files)]


def _segmenter_custom(activation):
    b = flatbuffers.Builder(64)
    version = b.CreateString("1.0.0")
    seg_md.ImageSegmenterOptionsStart(b)
    seg_md.ImageSegmenterOptionsAddActivation(b, ACTIVATIONS[activation])
    seg_md.ImageSegmenterOptionsAddMinParserVersion(b, version)
    b.Finish(seg_md.ImageSegmenterOptionsEnd(b), file_identifier=b"V001")
    c = md.CustomMetadataT()
    c.name, c.data = SEGMENTER_METADATA_NAME, list(bytes(b.Output()))
    return c


def min_parser_version(meta):
    """Oldest metadata parser that understands `meta` (a ModelMetadataT), by the rules of the
    reference metadata_version.cc: fields newer than 1.0.0 raise the version."""
    v = (1, 0, 0)

    def bump(new):
        nonlocal v
        v = max(v, new)

    def files(fs):
        for f in fs or ():
            if f.type == md.AssociatedFileType.VOCABULARY:
                bump((1, 0, 1))
            if f.type == md.AssociatedFileType.SCANN_INDEX_FILE:
                bump((1, 4, 0))
            if f.version is not None:
                bump((1, 4, 1))

    def units(us):
        for u in us or ():
            if u.optionsType in (md.ProcessUnitOptions.BertTokenizerOptions,
                                 md.ProcessUnitOptions.SentencePieceTokenizerOptions):
                bump((1, 1, 0))
            if u.optionsType == md.ProcessUnitOptions.RegexTokenizerOptions:
                bump((1, 2, 1))

    for sg in meta.subgraphMetadata or ():
        for t in (sg.inputTensorMetadata or []) + (sg.outputTensorMetadata or []):
            files(t.associatedFiles)
            units(t.processUnits)
            if t.content is not None and t.content.contentPropertiesType == md.ContentProperties.AudioProperties:
                bump((1, 3, 0))
        files(sg.associatedFiles)
        for field, version in (("inputProcessUnits", (1, 1, 0)), ("outputProcessUnits", (1, 1, 0)),
                               ("inputTensorGroups", (1, 2, 0)), ("outputTensorGroups", (1, 2, 0)),
                               ("customMetadata", (1, 5, 0))):
            if getattr(sg, field) is not None:
                bump(version)
        units(sg.inputProcessUnits)
        units(sg.outputProcessUnits)
    files(meta.associatedFiles)
    return ".".join(map(str, v))


def add_metadata(tflite, name=None, description=None, labels=None, mean=0.0, std=1.0, kind=None,
                 version="1", author="keras_mobile", license=None, score_threshold=None,
                 activation="softmax"):
    """Returns the .tflite bytes with TFLite metadata (and a packed label file) added.

    Args:
        tflite: the model, as bytes or a path.
        name, description, version, author, license: free text shown by model viewers.
        labels: class names: a list, a text file with one name per line, or "imagenet" (the
            1000 ImageNet-1k names). Classifier/segmenter: one per output channel; detector:
            one per class value of the TFLite_Detection_PostProcess output.
        mean, std: input normalisation (1 or 3 values) that MediaPipe applies to a float32
            input as (pixel - mean) / std. keras_mobile models take raw [0, 255] pixels, so
            the defaults 0 and 1 are right for them. A uint8 input is fed raw pixels.
        kind: "classifier", "detector" (4 outputs from TFLite_Detection_PostProcess) or
            "segmenter" ([1, H, W, classes] output); inferred from the graph when None.
        score_threshold: optional default score threshold (ScoreThresholdingOptions).
        activation: segmenter only: "softmax" (logit output), "sigmoid" or "none", recorded
            as MediaPipe's SEGMENTER_METADATA so confidence masks are probabilities.
    Any existing metadata and packed files are replaced.
    """
    schema = _schema()
    model, data = read_model(tflite)
    kind = kind or _kind(model)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    labels = _labels(labels)
    inputs, outputs = _io(model)
    if len(inputs) != 1:
        raise ValueError(f"image metadata needs a single-input model, this one has {len(inputs)} inputs")

    sub = md.SubGraphMetadataT()
    sub.name = kind
    sub.inputTensorMetadata = [_input_metadata(inputs[0], mean, std)]
    if kind == "classifier":
        sub.outputTensorMetadata = _classifier_outputs(outputs, labels, score_threshold)
    elif kind == "detector":
        sub.outputTensorMetadata = _detector_outputs(model, outputs, labels, score_threshold)
    else:
        sub.outputTensorMetadata = _segmenter_outputs(outputs, labels)
        sub.customMetadata = [_segmenter_custom(activation)]
    meta = md.ModelMetadataT()
    meta.name = name or f"keras_mobile {kind}"
    meta.description = description or f"Image {kind} exported by keras_mobile."
    meta.version, meta.author, meta.license = str(version), author, license
    meta.subgraphMetadata = [sub]
    meta.minParserVersion = min_parser_version(meta)

    b = flatbuffers.Builder(1024)
    b.Finish(meta.Pack(b), file_identifier=b"M001")
    blob = np.frombuffer(bytes(b.Output()), np.uint8)
    _set_metadata_buffer(model, schema, blob)
    result = write_model(model, len(data) + len(blob))
    if labels:
        result = _append_zip(result, {LABELS_FILE: "\n".join(labels) + "\n"})
    return result


def _set_metadata_buffer(model, schema, blob):
    buffer = schema.BufferT()
    buffer.data = blob
    for m in model.metadata or []:
        if _text(m.name) == METADATA_NAME:
            model.buffers[m.buffer] = buffer      # replace in place: no orphan buffer
            return
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]


def _append_zip(data, files):
    """The model followed by a stored (uncompressed) zip of the associated files, as
    tflite-support's MetadataPopulator writes it; zip readers find it from the end."""
    buf = io.BytesIO()
    buf.write(data)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as zf:
        for fname, text in files.items():
            zf.writestr(zipfile.ZipInfo(fname, date_time=_ZIP_DATE), text.encode("utf-8"))
    return buf.getvalue()
