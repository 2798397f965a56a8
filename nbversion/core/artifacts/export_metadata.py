"""The metadata Ultralytics writes into its exports, read without onnx, torch or ultralytics.

An Ultralytics ONNX file keeps it in the ModelProto's `metadata_props` (field 14, one
key/value string pair each, values written with `str()`); a TorchScript archive keeps it as
JSON in `<archive>/extra/config.txt`; folder formats (OpenVINO, NCNN, ...) keep a
`metadata.yaml` beside the model. `author` is "Ultralytics" in all of them: that, not the file
name, makes an export a YOLO model.
"""
from __future__ import annotations

import ast
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:   # annotations only; zipfile is imported by whoever opens the archive
    import zipfile

logger = logging.getLogger(__name__)

METADATA_PROPS = 14            # ModelProto.metadata_props
MAX_ENTRY = 1 << 20            # a metadata pair is a few KB (80 class names); never read a graph into memory
MAX_TOP_FIELDS = 10_000        # a ModelProto has a handful of top-level fields; garbage must not loop long
FOLDER_METADATA = "metadata.yaml"


class _Truncated(Exception):
    """The protobuf ends inside a field: what was read so far is all there is."""


def _varint(read) -> int:
    value, shift = 0, 0
    while True:
        byte = read(1)
        if not byte:
            raise _Truncated
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise _Truncated   # not a varint: not protobuf


def _string_pair(blob: bytes) -> tuple[str, str]:
    """A StringStringEntryProto: key is field 1, value field 2."""
    import io

    fields, stream = {}, io.BytesIO(blob)
    while stream.tell() < len(blob):
        key = _varint(stream.read)
        if key & 7 != 2:
            raise _Truncated
        length = _varint(stream.read)
        fields[key >> 3] = stream.read(length).decode("utf-8", "replace")
    return fields.get(1, ""), fields.get(2, "")


def onnx_metadata(path: Path) -> dict:
    """`metadata_props` of an ONNX file as {key: value string}; {} when there are none or it is not ONNX.

    Walks the top-level fields and seeks over the rest (the graph holds the weights: megabytes
    that are never read).
    """
    props = {}
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            for _ in range(MAX_TOP_FIELDS):
                if fh.tell() >= size:
                    break
                key = _varint(fh.read)
                field, wire = key >> 3, key & 7
                if field == 0:
                    break
                if wire == 0:
                    _varint(fh.read)
                elif wire == 1 or wire == 5:
                    fh.seek(8 if wire == 1 else 4, os.SEEK_CUR)
                elif wire == 2:
                    length = _varint(fh.read)
                    if fh.tell() + length > size:
                        break
                    if field == METADATA_PROPS and length <= MAX_ENTRY:
                        name, value = _string_pair(fh.read(length))
                        props[name] = value
                    else:
                        fh.seek(length, os.SEEK_CUR)
                else:
                    break   # groups (3, 4) are not in ONNX; anything else is not protobuf
        except (_Truncated, UnicodeDecodeError):
            logger.debug("the protobuf of %s ends early; metadata read so far: %s", path, list(props))
    return props


def torchscript_metadata(archive: zipfile.ZipFile) -> dict:
    """The JSON `extra/config.txt` a TorchScript archive carries (Ultralytics writes it); {} if none."""
    name = next((n for n in archive.namelist() if n.endswith("/extra/config.txt")), None)
    if name is None or archive.getinfo(name).file_size > MAX_ENTRY:
        return {}
    try:
        data = json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def folder_metadata(folder: Path) -> dict:
    """`metadata.yaml` of a folder export (OpenVINO, NCNN, ...): the flat `key: value` lines we need."""
    try:
        text = (folder / FOLDER_METADATA).read_text(errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():   # top-level scalars only; names is a nested map we skip here
        if line[:1].isalpha() and ":" in line:
            key, _, value = line.partition(":")
            if value.strip():
                found[key.strip()] = value.strip().strip("'\"")
    return found


def is_ultralytics(metadata: dict) -> bool:
    return str(metadata.get("author", "")).strip() == "Ultralytics"


def ultralytics_folder(path: Path) -> Optional[Path]:
    """The folder Ultralytics loads for a folder export (the folder itself, or the one a file is in)."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return folder if is_ultralytics(folder_metadata(folder)) else None


def _literal(value):
    """ONNX values are `str()` of Python objects ("{0: 'red'}", "[64, 64]"): read them without eval."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def class_names(metadata: dict) -> list:
    names = _literal(metadata.get("names"))
    if isinstance(names, dict):
        try:
            return [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            return [str(v) for v in names.values()]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def export_params(metadata: dict) -> dict:
    """Scalars worth keeping as a version's params: task, imgsz, stride, the exporter's switches."""
    params = {}
    if metadata.get("task"):
        params["task"] = str(metadata["task"])
    imgsz = _literal(metadata.get("imgsz"))
    if isinstance(imgsz, (list, tuple)) and imgsz:
        params["imgsz"] = int(imgsz[0]) if len(set(imgsz)) == 1 else "x".join(str(v) for v in imgsz)
    elif isinstance(imgsz, int):
        params["imgsz"] = imgsz
    stride = _literal(metadata.get("stride"))
    if isinstance(stride, int):
        params["stride"] = stride
    if metadata.get("version"):
        params["ultralytics_version"] = str(metadata["version"])
    args = _literal(metadata.get("args"))
    for key in ("half", "int8", "quantize", "dynamic", "nms"):
        if isinstance(args, dict) and isinstance(args.get(key), (bool, int, str)):
            params[key] = args[key]
    return params
