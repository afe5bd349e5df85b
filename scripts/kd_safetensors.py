"""Reading and writing kd model files (safetensors: 8-byte little-endian header length, JSON header,
raw little-endian data; PyTorch's module names) from Python, with numpy only, for the scripts
that move models between kd and PyTorch."""
import json, struct

import numpy as np

DTYPES = {"F32": np.float32, "I32": np.int32, "I8": np.int8, "U8": np.uint8}


def read(path):
    """(header, {name: numpy array}) of a safetensors file; the header keeps __metadata__."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return header, out


def write_like(template, arrays, path, metadata=None):
    """A file with the template's tensors (names, shapes, order) and metadata, the values taken from
    `arrays` (float32, by name); `metadata` entries replace the template's."""
    header, _ = read(template)
    chunks, offset = [], 0
    for k in [k for k in header if k != "__metadata__"]:
        a = np.ascontiguousarray(arrays[k], dtype=np.float32)
        assert header[k]["dtype"] == "F32" and list(a.shape) == header[k]["shape"], (k, a.shape, header[k])
        chunks.append(a.tobytes())
        header[k]["data_offsets"] = [offset, offset + len(chunks[-1])]
        offset += len(chunks[-1])
    header.setdefault("__metadata__", {}).update(metadata or {})
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
