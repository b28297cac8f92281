"""Reading TFLite metadata back: `read_metadata(path or bytes)` -> dict, `to_json`."""
import io
import json
import zipfile

from keras_mobile.tflite.metadata_format import (
    ACTIVATIONS, METADATA_NAME, SEGMENTER_METADATA_NAME, _model_bytes, _schema, _text, md, seg_md)


_ENUMS = {cls: {v: k for k, v in vars(cls).items() if not k.startswith("_")}
          for cls in (md.AssociatedFileType, md.ColorSpaceType, md.BoundingBoxType, md.CoordinateType,
                      md.ContentProperties, md.ProcessUnitOptions)}


def _tensor_dict(t, files):
    d = {"name": _text(t.name), "description": _text(t.description)}
    if t.content is not None:
        kind = _ENUMS[md.ContentProperties][t.content.contentPropertiesType]
        d["content"] = kind
        p = t.content.contentProperties
        if kind == "ImageProperties":
            d["color_space"] = _ENUMS[md.ColorSpaceType][p.colorSpace]
        if kind == "BoundingBoxProperties":
            d["bounding_box"] = {"index": [int(i) for i in p.index] if p.index is not None else None,
                                 "type": _ENUMS[md.BoundingBoxType][p.type],
                                 "coordinate_type": _ENUMS[md.CoordinateType][p.coordinateType]}
        if t.content.range is not None:
            d["range"] = (t.content.range.min, t.content.range.max)
    for u in t.processUnits or ():
        if u.optionsType == md.ProcessUnitOptions.NormalizationOptions:
            d["mean"] = [float(v) for v in u.options.mean]
            d["std"] = [float(v) for v in u.options.std]
        if u.optionsType == md.ProcessUnitOptions.ScoreThresholdingOptions:
            d["score_threshold"] = float(u.options.globalScoreThreshold)
    if t.stats is not None:
        d["min"] = [float(v) for v in t.stats.min] if t.stats.min is not None else None
        d["max"] = [float(v) for v in t.stats.max] if t.stats.max is not None else None
    d["associated_files"] = []
    for f in t.associatedFiles or ():
        fname = _text(f.name)
        d["associated_files"].append({"name": fname, "type": _ENUMS[md.AssociatedFileType][f.type]})
        if f.type in (md.AssociatedFileType.TENSOR_AXIS_LABELS, md.AssociatedFileType.TENSOR_VALUE_LABELS):
            text = files.get(fname)
            d["labels"] = None if text is None else [x for x in text.decode("utf-8").split("\n") if x]
    return d


def read_metadata(tflite):
    """The TFLite metadata of a file (path or bytes) as a dict: name, description, version,
    author, license, min_parser_version, inputs/outputs (one dict per tensor: name, content,
    mean/std, min/max, bounding_box, labels, ...), custom metadata and packed file names.
    Raises ValueError when the file has no TFLITE_METADATA."""
    schema = _schema()
    data = _model_bytes(tflite)
    model = schema.Model.GetRootAs(data, 0)
    blob = None
    for i in range(model.MetadataLength()):
        m = model.Metadata(i)
        if _text(m.Name()) == METADATA_NAME:
            blob = model.Buffers(m.Buffer()).DataAsNumpy().tobytes()
    if blob is None:
        raise ValueError("the model has no TFLite metadata (no TFLITE_METADATA buffer); add it with "
                         "keras_mobile.tflite.metadata.add_metadata or export(..., metadata=True)")
    meta = md.ModelMetadataT.InitFromPackedBuf(bytearray(blob), 0)
    files = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
    except zipfile.BadZipFile:
        pass
    sub = (meta.subgraphMetadata or [md.SubGraphMetadataT()])[0]
    custom = {}
    for c in sub.customMetadata or ():
        raw = bytes(bytearray(c.data))
        if _text(c.name) == SEGMENTER_METADATA_NAME:
            opts = seg_md.ImageSegmenterOptions.GetRootAs(raw, 0)
            names = {v: k.lower() for k, v in ACTIVATIONS.items()}
            custom[SEGMENTER_METADATA_NAME] = {"activation": names[opts.Activation()]}
        else:
            custom[_text(c.name)] = raw
    return {
        "name": _text(meta.name), "description": _text(meta.description), "version": _text(meta.version),
        "author": _text(meta.author), "license": _text(meta.license),
        "min_parser_version": _text(meta.minParserVersion), "kind": _text(sub.name),
        "inputs": [_tensor_dict(t, files) for t in sub.inputTensorMetadata or ()],
        "outputs": [_tensor_dict(t, files) for t in sub.outputTensorMetadata or ()],
        "custom_metadata": custom, "packed_files": sorted(files),
    }


def to_json(meta):
    """read_metadata's dict as indented JSON (bytes values shown by their size)."""
    return json.dumps(meta, indent=2, default=lambda o: f"<{len(o)} bytes>" if isinstance(o, bytes) else str(o))
