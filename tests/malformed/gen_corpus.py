#!/usr/bin/python3
"""Writes the malformed-model corpus (issue 7): one file per case, the side files some cases
need (external data, symlinks), and manifest.tsv. Every case must make `lithe` exit with
code 2 and one line on stderr that contains the case's expected substrings.

Usage: gen_corpus.py OUTDIR [LITHE_BIN]

ONNX cases are written with Debian's onnx module (python3-onnx). Engine cases start from a
small valid engine that `LITHE_BIN build` writes (LITHE_BIN defaults to $LITHE_BIN, then
`lithe` on PATH) and edit its bytes: header fields, the FlatBuffers structure (walked here
with a few lines of table/vtable arithmetic), then the checksum (XXH3-64 from format 4 on,
XXH64 before; both through Debian's libxxhash0) is recomputed so that the checks behind the
checksum are the ones reached.

manifest.tsv columns (tab-separated, one case a line, no header):
  name  class  mode  file  flags  expect
mode is `build` (lithe build FILE -o OUT.lithe FLAGS) or `run` (lithe run FILE
--random-input -o OUTDIR FLAGS); flags are space-separated, `-` for none; expect is one or
more substrings separated by ` && `, all of which the error line must contain.
"""
import ctypes
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64
U8 = TensorProto.UINT8
I8 = TensorProto.INT8
I32 = TensorProto.INT32

OUT = None
CASES = []  # (name, class, mode, file, flags, expect)


def case(name, cls, mode, fname, expect, flags=""):
    assert all(c[0] != name for c in CASES), name
    if isinstance(expect, str):
        expect = [expect]
    CASES.append((name, cls, mode, fname, flags or "-", " && ".join(expect)))


def vi(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def graph_model(nodes, inputs, outputs, inits=(), opset=13, extra_opsets=(), name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m


def write(fname, data):
    path = os.path.join(OUT, fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, onnx.ModelProto):
        data = data.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return fname


def onnx_case(name, cls, model, expect, mode="build", flags="", fname=None):
    fname = write(fname or f"{name}.onnx", model)
    case(name, cls, mode, fname, expect, flags)


def single(op, in_shapes, out_shape=None, inits=(), attrs=None, opset=13, node_name=None,
           extra_inputs=(), in_elem=F, out_elem=F, n_outputs=1):
    """One node `op` named `node_name` (default: the op in lower case) reading graph inputs
    x0.. (shapes `in_shapes`) then `extra_inputs` (initializer names); outputs y0.."""
    node_name = node_name or op.lower()
    ins = [f"x{i}" for i in range(len(in_shapes))] + list(extra_inputs)
    outs = [f"y{i}" for i in range(n_outputs)]
    n = helper.make_node(op, ins, outs, name=node_name, **(attrs or {}))
    inputs = [vi(f"x{i}", in_elem, s) for i, s in enumerate(in_shapes)]
    outputs = [vi(o, out_elem, out_shape) for o in outs]
    return graph_model([n], inputs, outputs, inits, opset)


def relu_model(x_dims=(1, 4), inits=(), extra_nodes=(), opset=13):
    """x -> Relu -> y, plus optional initializers/nodes (for container and tensor cases)."""
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")] + list(extra_nodes)
    return graph_model(nodes, [vi("x", F, list(x_dims))], [vi("y", F, list(x_dims))], inits, opset)


def weight_model(t, op="Add"):
    """x[1,4] op W -> y: a model whose initializer W is the tensor `t`."""
    n = helper.make_node(op, ["x", t.name], ["y"], name="use_w")
    return graph_model([n], [vi("x", F, [1, 4])], [vi("y", F, None)], [t])


# ----------------------------------------------------------------------------- container
def onnx_container():
    good = relu_model().SerializeToString()
    onnx_case("onnx_truncated_half", "container", good[: len(good) // 2],
              ["onnx_truncated_half.onnx", "not a valid ONNX model"])
    onnx_case("onnx_truncated_1byte", "container", good[:-1],
              ["onnx_truncated_1byte.onnx", "not a valid ONNX model"])
    onnx_case("onnx_empty_file", "container", b"", ["onnx_empty_file.onnx", "no graph"])
    rng = np.random.default_rng(7)
    onnx_case("onnx_random_bytes", "container", rng.integers(0, 256, 3000, np.uint8).tobytes(),
              ["onnx_random_bytes.onnx", "not a valid ONNX model"])
    onnx_case("onnx_engine_magic", "container", b"LITHENG\0" + good,
              ["onnx_engine_magic.onnx", "not a valid ONNX model"])
    # A length-delimited field (the graph, field 7) whose length runs past the end.
    onnx_case("onnx_field_length_past_end", "container", good + b"\x3a\xff\xff\xff\x0f",
              ["onnx_field_length_past_end.onnx", "not a valid ONNX model"])
    m = onnx.ModelProto()
    m.ir_version = 8
    m.opset_import.add().version = 13
    onnx_case("onnx_no_graph", "container", m, ["onnx_no_graph.onnx", "has no graph"])
    onnx_case("onnx_opset_99", "container", relu_model(opset=99),
              ["onnx_opset_99.onnx", "opset 99"])
    m = relu_model()
    m.opset_import[0].version = -3
    onnx_case("onnx_opset_negative", "container", m, ["onnx_opset_negative.onnx", "opset -3"])
    m = relu_model()
    m.ir_version = 99
    onnx_case("onnx_ir_version_99", "container", m, ["onnx_ir_version_99.onnx", "IR version 99"])
    m = relu_model()
    m.ir_version = -1
    onnx_case("onnx_ir_version_negative", "container", m, ["IR version -1"])


# ----------------------------------------------------------------------------- engines
# Header: magic[8] version:u32 header_size:u32 fb_offset fb_size data_offset data_size
# file_size checksum (u64 each), 64 bytes (src/engine/engine_format.hpp).
HDR = {"version": (8, "<I"), "header_size": (12, "<I"), "fb_offset": (16, "<Q"),
       "fb_size": (24, "<Q"), "data_offset": (32, "<Q"), "data_size": (40, "<Q"),
       "file_size": (48, "<Q"), "checksum": (56, "<Q")}


def hget(b, f):
    off, fmt = HDR[f]
    return struct.unpack_from(fmt, b, off)[0]


def hset(b, f, v):
    off, fmt = HDR[f]
    struct.pack_into(fmt, b, off, v)


# xxHash from Debian's libxxhash0 (what the engine's checksum is computed with).
_LIBXXHASH = None


def _xxhash(fn, data, seed):
    global _LIBXXHASH
    if _LIBXXHASH is None:
        _LIBXXHASH = ctypes.CDLL("libxxhash.so.0")
        for name in ("XXH64", "XXH3_64bits_withSeed"):
            f = getattr(_LIBXXHASH, name)
            f.restype = ctypes.c_uint64
            f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    return getattr(_LIBXXHASH, fn)(data, len(data), seed)


def xxh64(data, seed=0):
    return _xxhash("XXH64", data, seed)


def xxh3(data, seed=0):
    return _xxhash("XXH3_64bits_withSeed", data, seed)


def reseal(b):
    h = xxh3 if hget(b, "version") >= 4 else xxh64  # src/engine/engine.cpp, engine_checksum
    seed = h(bytes(b[:56]))
    hset(b, "checksum", h(bytes(b[hget(b, "header_size"):]), seed))
    return b


class FB:
    """Positions inside the engine's FlatBuffers root (absolute file offsets). Field ids
    follow the declaration order in src/engine/engine.fbs."""
    ENGINE = {"info": 0, "graph": 1, "blobs": 2, "plan": 3}
    GRAPH = {"name": 0, "values": 1, "nodes": 2, "inputs": 3, "outputs": 4}
    VALUE = {"name": 0, "dtype": 1, "has_shape": 2, "dims": 3, "blob": 4}
    NODE = {"name": 0, "op_type": 1, "inputs": 4, "outputs": 5, "attrs": 6}
    ATTR = {"name": 0, "kind": 1, "i": 3, "ints": 8}
    PLAN = {"arena_bytes": 0, "offset": 1, "bytes": 2, "alias_of": 3}

    def __init__(self, b):
        self.b = b
        base = hget(b, "fb_offset")
        self.root = base + self.u32(base)

    def u32(self, p):
        return struct.unpack_from("<I", self.b, p)[0]

    def field(self, table, fid):
        """Position of field `fid` of the table at `table`, or None when it is absent."""
        vt = table - struct.unpack_from("<i", self.b, table)[0]
        vt_size = struct.unpack_from("<H", self.b, vt)[0]
        if 4 + 2 * fid >= vt_size:
            return None
        off = struct.unpack_from("<H", self.b, vt + 4 + 2 * fid)[0]
        return table + off if off else None

    def ref(self, table, fid):
        p = self.field(table, fid)
        return None if p is None else p + self.u32(p)

    def vector(self, table, fid):
        """(length, position of the length field, position of element 0)."""
        v = self.ref(table, fid)
        return (self.u32(v), v, v + 4) if v is not None else (0, None, None)

    def tables(self, table, fid):
        n, _, data = self.vector(table, fid)
        return [data + 4 * i + self.u32(data + 4 * i) for i in range(n)]

    def string(self, table, fid):
        s = self.ref(table, fid)
        return bytes(self.b[s + 4: s + 4 + self.u32(s)]).decode() if s is not None else ""

    def graph(self):
        return self.ref(self.root, self.ENGINE["graph"])

    def values(self):
        return self.tables(self.graph(), self.GRAPH["values"])

    def nodes(self):
        return self.tables(self.graph(), self.GRAPH["nodes"])

    def value_named(self, name):
        for v in self.values():
            if self.string(v, self.VALUE["name"]) == name:
                return v
        raise KeyError(name)

    def node_of_type(self, op):
        for n in self.nodes():
            if self.string(n, self.NODE["op_type"]) == op:
                return n
        raise KeyError(op)


def engine_source():
    """The model every engine case starts from: x[1,3,8,8] -> Conv(W, B) -> Relu -> Add(c)
    -> Flatten -> y (W, B and c are constants in the engine's data section)."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["conv_out"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("Add", ["relu_out", "c"], ["add_out"], name="add"),
        helper.make_node("Flatten", ["add_out"], ["y"], name="flatten"),
    ]
    inits = [init("W", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             init("B", rng.standard_normal(4).astype(np.float32)),
             init("c", rng.standard_normal((1, 4, 1, 1)).astype(np.float32))]
    return graph_model(nodes, [vi("x", F, [1, 3, 8, 8])], [vi("y", F, [1, 256])], inits)


def engine_cases(lithe):
    src = write("engine_source/model.onnx", engine_source())
    base_path = os.path.join(OUT, "engine_source", "model.lithe")
    # --no-optimize keeps every node (Relu and Add are not fused away).
    r = subprocess.run([lithe, "build", os.path.join(OUT, src), "-o", base_path, "--no-optimize"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gen_corpus: `{lithe} build` of the engine source failed: {r.stderr.strip()}")
    with open(base_path, "rb") as f:
        good = bytes(f.read())
    os.remove(base_path)
    assert xxh64(b"") == 0xEF46DB3751D8E999, "xxh64 self-check"
    assert xxh3(b"abc") == 0x78AF5F94892F3950, "xxh3 self-check"
    assert bytes(reseal(bytearray(good))) == good, "reseal of the untouched engine changed it"

    def eng(name, cls, data, expect):
        fname = write(f"{name}.lithe", bytes(data))
        case(name, cls, "run", fname, expect)

    def edited(fn, seal=True):
        b = bytearray(good)
        fn(b, FB(b))
        return reseal(b) if seal else b

    # Container: the header and the sections it points at.
    eng("engine_empty_file", "container", b"", ["engine_empty_file.lithe", "too small"])
    eng("engine_truncated_header", "container", good[:40],
        ["engine_truncated_header.lithe", "too small"])
    eng("engine_truncated_half", "container", good[: len(good) // 2],
        ["engine_truncated_half.lithe", "truncated"])
    eng("engine_bad_magic", "container", b"LITHENX\0" + good[8:], ["bad magic"])
    eng("engine_version_99", "container", edited(lambda b, f: hset(b, "version", 99)),
        ["format version 99", "rebuild"])
    eng("engine_version_0", "container", edited(lambda b, f: hset(b, "version", 0)),
        ["format version 0"])
    eng("engine_header_size", "container", edited(lambda b, f: hset(b, "header_size", 128)),
        ["header size 128"])
    eng("engine_file_size_field", "container",
        edited(lambda b, f: hset(b, "file_size", len(good) + 4096)), ["its header says"])
    eng("engine_fb_offset_past_end", "container",
        edited(lambda b, f: hset(b, "fb_offset", len(good) + 64)), ["structure section"])
    eng("engine_fb_size_past_end", "container",
        edited(lambda b, f: hset(b, "fb_size", 1 << 40)), ["structure section"])
    eng("engine_data_offset_past_end", "container",
        edited(lambda b, f: hset(b, "data_offset", len(good) + 64)), ["data section"])
    eng("engine_data_size_wrong", "container",
        edited(lambda b, f: hset(b, "data_size", hget(b, "data_size") + 64)), ["data section"])
    eng("engine_checksum", "container",
        edited(lambda b, f: b.__setitem__(len(b) - 1, b[-1] ^ 0x5A), seal=False),
        ["checksum mismatch"])

    def root_offset_garbage(b, f):
        struct.pack_into("<I", b, hget(b, "fb_offset"), 0x7FFFFFF0)
    eng("engine_root_offset_past_end", "container", edited(root_offset_garbage),
        ["FlatBuffers verifier"])

    def blob_field(b, f, k, fld, v):
        n, _, data = f.vector(f.root, FB.ENGINE["blobs"])
        assert n >= 1
        struct.pack_into("<Q", b, data + 16 * k + (0 if fld == "offset" else 8), v)
    eng("engine_blob_offset_past_end", "container",
        edited(lambda b, f: blob_field(b, f, 0, "offset", hget(b, "data_size") + 64)),
        ["blob 0", "outside the data section"])
    eng("engine_blob_size_past_end", "container",
        edited(lambda b, f: blob_field(b, f, 0, "size", hget(b, "data_size") * 2)),
        ["blob 0", "outside the data section"])
    eng("engine_blob_offset_wrap", "container",
        edited(lambda b, f: blob_field(b, f, 0, "offset", (1 << 64) - 64)),
        ["blob 0", "outside the data section"])

    # Indices: every index in the structure.
    def node_index(b, f, which, v):
        n = f.node_of_type("Relu")
        cnt, _, data = f.vector(n, FB.NODE[which])
        assert cnt >= 1
        struct.pack_into("<i", b, data, v)
    eng("engine_node_input_index", "indices", edited(lambda b, f: node_index(b, f, "inputs", 1000)),
        ["(Relu) inputs", "value index 1000 out of range"])
    eng("engine_node_input_negative", "indices",
        edited(lambda b, f: node_index(b, f, "inputs", -7)),
        ["(Relu) inputs", "value index -7 out of range"])
    eng("engine_node_output_index", "indices",
        edited(lambda b, f: node_index(b, f, "outputs", 1 << 30)),
        ["(Relu) outputs", "out of range"])

    def value_blob(b, f, v):
        p = f.field(f.value_named("W"), FB.VALUE["blob"])
        struct.pack_into("<i", b, p, v)
    eng("engine_value_blob_index", "indices", edited(lambda b, f: value_blob(b, f, 77)),
        ["value", "'W'", "blob index 77 out of range"])
    eng("engine_value_blob_negative", "indices", edited(lambda b, f: value_blob(b, f, -2)),
        ["'W'", "blob index -2 out of range"])

    def graph_io(b, f, which, v):
        cnt, _, data = f.vector(f.graph(), FB.GRAPH[which])
        struct.pack_into("<i", b, data, v)
    eng("engine_graph_output_index", "indices", edited(lambda b, f: graph_io(b, f, "outputs", 999)),
        ["graph outputs", "value index 999 out of range"])
    eng("engine_graph_input_index", "indices", edited(lambda b, f: graph_io(b, f, "inputs", -1)),
        ["graph inputs", "value index -1 out of range"])

    def plan_vec(b, f, which, k, v, fmt):
        p = f.ref(f.root, FB.ENGINE["plan"])
        cnt, _, data = f.vector(p, FB.PLAN[which])
        assert cnt > k
        struct.pack_into(fmt, b, data + k * struct.calcsize(fmt), v)

    def plan_index_of(f, name):
        return [f.string(v, FB.VALUE["name"]) for v in f.values()].index(name)
    eng("engine_plan_alias_index", "indices",
        edited(lambda b, f: plan_vec(b, f, "alias_of", plan_index_of(f, "relu_out"), 5000, "<i")),
        ["memory plan", "'relu_out'", "aliases value index 5000"])
    eng("engine_plan_offset_past_arena", "container",
        edited(lambda b, f: plan_vec(b, f, "offset", plan_index_of(f, "relu_out"), 1 << 40, "<q")),
        ["memory plan", "'relu_out'", "outside the arena"])
    eng("engine_plan_bytes_negative", "shapes",
        edited(lambda b, f: plan_vec(b, f, "bytes", plan_index_of(f, "relu_out"), -64, "<q")),
        ["memory plan", "'relu_out'", "outside the arena"])

    # Shapes.
    def value_dim(b, f, name, k, v):
        cnt, _, data = f.vector(f.value_named(name), FB.VALUE["dims"])
        assert cnt > k
        struct.pack_into("<i", b, data + 4 * k, v)
    eng("engine_value_dim_negative", "shapes", edited(lambda b, f: value_dim(b, f, "W", 0, -5)),
        ["'W'", "invalid dimension -5"])
    # W's dims [4,3,3,3] -> [4,3,3,2]: the blob no longer holds elements x 4 bytes.
    eng("engine_blob_bytes_mismatch", "shapes", edited(lambda b, f: value_dim(b, f, "W", 3, 2)),
        ["'W'", "holds 432 bytes", "needs 288"])

    def rank_nine(b, f):
        # y's dims vector lies early enough in the structure that 9 entries stay inside it.
        _, lenpos, _ = f.vector(f.value_named("y"), FB.VALUE["dims"])
        struct.pack_into("<I", b, lenpos, 9)
    eng("engine_value_rank_9", "shapes", edited(rank_nine), ["'y'", "rank 9 exceeds the limit of 8"])
    # Stored shapes that no longer agree with what the nodes compute: the plan and the fast
    # steps are sized by the stored ones.
    eng("engine_input_dims_grown", "shapes", edited(lambda b, f: value_dim(b, f, "x", 3, 16)),
        ["node 'conv'", "'conv_out' is stored as float32[1x4x8x8]", "1x4x8x16"])
    eng("engine_output_dims_grown", "shapes", edited(lambda b, f: value_dim(b, f, "y", 1, 512)),
        ["node 'flatten'", "'y' is stored as float32[1x512]"])

    def value_dtype(b, f, name, v):
        p = f.field(f.value_named(name), FB.VALUE["dtype"])
        assert p is not None, "dtype field absent"
        struct.pack_into("<i", b, p, v)
    eng("engine_dims_overflow", "shapes",
        edited(lambda b, f: [value_dim(b, f, "W", k, 0x7FFFFFFF) for k in range(4)]),
        ["'W'", "elements"])
    eng("engine_arena_negative", "shapes",
        edited(lambda b, f: struct.pack_into(
            "<q", b, f.field(f.ref(f.root, FB.ENGINE["plan"]), FB.PLAN["arena_bytes"]), -1)),
        ["memory plan", "negative arena size"])

    # Attributes as stored in the engine: Conv's strides edited to 0 after the build.
    def conv_attr_ints(b, f, attr, v):
        n = f.node_of_type("Conv")
        for a in f.tables(n, FB.NODE["attrs"]):
            if f.string(a, FB.ATTR["name"]) == attr:
                cnt, _, data = f.vector(a, FB.ATTR["ints"])
                for k in range(cnt):
                    struct.pack_into("<q", b, data + 8 * k, v)
                return
        raise KeyError(attr)
    eng("engine_conv_pads_negative", "attributes",
        edited(lambda b, f: conv_attr_ints(b, f, "pads", -4)), ["'conv'", "pads"])
    eng("engine_conv_pads_grown", "attributes",
        edited(lambda b, f: conv_attr_ints(b, f, "pads", 3)),
        ["'conv'", "'conv_out' is stored as float32[1x4x8x8]", "1x4x12x12"])


    # Constants in the data section edited after the build: each must be caught where it is
    # used (the index check of the kernel, or the stored shapes no longer matching).
    def blob_engine(name, model, value, edit):
        src_name = write(f"engine_source/{name}.onnx", model)
        path = os.path.join(OUT, "engine_source", f"{name}.lithe")
        r = subprocess.run([lithe, "build", os.path.join(OUT, src_name), "-o", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"gen_corpus: `{lithe} build` of {src_name} failed: {r.stderr.strip()}")
        with open(path, "rb") as fh:
            b = bytearray(fh.read())
        os.remove(path)
        f = FB(b)
        k = struct.unpack_from("<i", b, f.field(f.value_named(value), FB.VALUE["blob"]))[0]
        _, _, blobs = f.vector(f.root, FB.ENGINE["blobs"])
        edit(b, hget(b, "data_offset") + struct.unpack_from("<Q", b, blobs + 16 * k)[0])
        return reseal(b)
    eng("engine_gather_index_blob", "indices", blob_engine(
        "gather", single("Gather", [[3, 4]], None, [init("I", np.array([0, 2], np.int64))],
                         extra_inputs=["I"], node_name="gather"), "I",
        lambda b, p: struct.pack_into("<q", b, p + 8, 7)), ["'gather'", "index value 7"])
    eng("engine_slice_end_blob", "shapes", blob_engine(
        "slice", single("Slice", [[4, 4]], None, [init("s", np.array([1], np.int64)),
                                                  init("e", np.array([3], np.int64))],
                        extra_inputs=["s", "e"], node_name="slice"), "e",
        lambda b, p: struct.pack_into("<q", b, p, 4)),
        ["'slice'", "stored as float32[2x4]", "makes float32[3x4]"])
    eng("engine_pad_blob", "shapes", blob_engine(
        "pad", single("Pad", [[4, 4]], None, [init("pads", np.array([1, 1, 1, 1], np.int64))],
                      extra_inputs=["pads"], node_name="pad"), "pads",
        lambda b, p: struct.pack_into("<q", b, p, 5)), ["'pad'", "makes float32[10x6]"])
    eng("engine_quantize_scale_blob_zero", "quantization", blob_engine(
        "quantize", single("QuantizeLinear", [[1, 4]], None,
                           [init("s", np.float32(0.5)), init("z", np.uint8(3))],
                           extra_inputs=["s", "z"], out_elem=U8, node_name="quantize"), "s",
        lambda b, p: struct.pack_into("<f", b, p, 0.0)), ["'quantize'", "y_scale", "got 0"])


# ----------------------------------------------------------------------------- indices
def indices():
    c = "indices"
    data = init("D", np.arange(12, dtype=np.float32).reshape(3, 4))
    onnx_case("gather_const_index_past_end", c,
              single("Gather", [], [2, 4], [data, init("I", np.array([0, 3], np.int64))],
                     extra_inputs=["D", "I"], node_name="gather_oob"),
              ["'gather_oob'", "3"])
    onnx_case("gather_const_index_negative", c,
              single("Gather", [], [1, 4], [data, init("I", np.array([-4], np.int64))],
                     extra_inputs=["D", "I"], node_name="gather_neg"),
              ["'gather_neg'", "-4"])
    # Data from a graph input: the index check happens when the node runs.
    onnx_case("gather_runtime_index", c,
              single("Gather", [[3, 4]], [1, 4], [init("I", np.array([7], np.int64))],
                     extra_inputs=["I"], node_name="gather_rt"),
              ["'gather_rt'", "7"], mode="run")
    onnx_case("gather_int32_index_axis1", c,
              single("Gather", [[3, 4]], [3, 1], [init("I", np.array([4], np.int32))],
                     extra_inputs=["I"], node_name="gather_ax1", attrs={"axis": 1}),
              ["'gather_ax1'", "4"], mode="run")
    onnx_case("gather_elements_index", c,
              single("GatherElements", [[3, 4]], [3, 1],
                     [init("I", np.array([[0], [9], [1]], np.int64))], extra_inputs=["I"],
                     node_name="gel", attrs={"axis": 1}),
              ["'gel'", "9"], mode="run")
    onnx_case("gather_nd_index", c,
              single("GatherND", [[3, 4]], [1],
                     [init("I", np.array([[2, 5]], np.int64))], extra_inputs=["I"],
                     node_name="gnd"),
              ["'gnd'", "5"], mode="run")
    onnx_case("scatter_elements_index", c,
              single("ScatterElements", [[3, 4]], [3, 4],
                     [init("I", np.array([[0, 11]], np.int64)),
                      init("U", np.ones((1, 2), np.float32))], extra_inputs=["I", "U"],
                     node_name="sel", attrs={"axis": 1}),
              ["'sel'", "11"], mode="run")
    onnx_case("scatter_nd_index", c,
              single("ScatterND", [[3, 4]], [3, 4],
                     [init("I", np.array([[3]], np.int64)),
                      init("U", np.ones((1, 4), np.float32))], extra_inputs=["I", "U"],
                     node_name="snd"),
              ["'snd'", "3"], mode="run")
    onnx_case("gather_elements_negative", c,
              single("GatherElements", [[3, 4]], [1, 4],
                     [init("I", np.array([[-4, 0, 0, 0]], np.int64))], extra_inputs=["I"],
                     node_name="gel_neg", attrs={"axis": 0}),
              ["'gel_neg'", "-4"], mode="run")
    onnx_case("topk_k_past_axis", c,
              single("TopK", [[3, 4]], [3, 9], [init("K", np.array([9], np.int64))],
                     extra_inputs=["K"], node_name="topk", n_outputs=2),
              ["'topk'", "9"])
    onnx_case("roialign_batch_index", c,
              single("RoiAlign", [[1, 1, 4, 4]], None,
                     [init("rois", np.array([[0, 0, 2, 2]], np.float32)),
                      init("bi", np.array([5], np.int64))], extra_inputs=["rois", "bi"],
                     node_name="roi"), ["'roi'", "batch index 5"], mode="run")
    onnx_case("maxunpool_index", c,
              single("MaxUnpool", [[1, 1, 2, 2]], None,
                     [init("I", np.array([[[[0, 1], [2, 99]]]], np.int64))], extra_inputs=["I"],
                     node_name="unpool", attrs={"kernel_shape": [2, 2], "strides": [2, 2]}),
              ["'unpool'", "index 99"], mode="run")
    onnx_case("compress_condition_past_axis", c,
              single("Compress", [[3]], None, [init("c", np.array([1, 0, 1, 1, 1], np.bool_))],
                     extra_inputs=["c"], node_name="compress", attrs={"axis": 0}),
              ["'compress'", "index 3"])
    onnx_case("gather_int64_const_fold_index", c,
              single("Gather", [], [2], [init("D", np.arange(4, dtype=np.int64)),
                                         init("I", np.array([1, 1 << 40], np.int64))],
                     extra_inputs=["D", "I"], node_name="g64", out_elem=I64),
              ["'g64'", str(1 << 40)])


# ----------------------------------------------------------------------------- shapes
def shapes():
    c = "shapes"
    onnx_case("input_dim_negative", c, relu_model((1, -3)), ["'x'", "negative dimension -3"])
    onnx_case("input_rank_9", c, relu_model((1,) * 9), ["'x'", "rank 9"])
    onnx_case("input_elements_overflow", c, relu_model((1 << 32, 1 << 32)), ["'x'", "elements"])
    t = TensorProto(name="W", data_type=F, dims=[2, -2])
    onnx_case("init_dim_negative", c, weight_model(t), ["'W'", "-2"])
    t = TensorProto(name="W", data_type=F, dims=[1] * 9)
    t.float_data.append(1.0)
    onnx_case("init_rank_9", c, weight_model(t), ["'W'", "rank 9"])
    t = TensorProto(name="W", data_type=F, dims=[1 << 62, 8])
    onnx_case("init_dims_overflow", c, weight_model(t), ["'W'", "elements"])
    t = TensorProto(name="W", data_type=F, dims=[4], raw_data=b"\0" * 10)
    onnx_case("init_raw_bytes_mismatch", c, weight_model(t),
              ["'W'", "raw_data holds 10 bytes, expected 16"])
    t = TensorProto(name="W", data_type=F, dims=[4])
    t.float_data.extend([1.0, 2.0, 3.0])
    onnx_case("init_float_data_count", c, weight_model(t), ["'W'", "float_data holds 3 values"])
    t = TensorProto(name="W", data_type=I64, dims=[4], raw_data=b"\0" * 12)
    onnx_case("init_int64_raw_bytes", c, weight_model(t), ["'W'", "raw_data holds 12 bytes"])
    onnx_case("reshape_two_minus_one", c,
              single("Reshape", [[2, 6]], None, [init("S", np.array([-1, -1], np.int64))],
                     extra_inputs=["S"], node_name="reshape2"), ["'reshape2'", "-1"])
    onnx_case("reshape_count_mismatch", c,
              single("Reshape", [[2, 6]], None, [init("S", np.array([5, 5], np.int64))],
                     extra_inputs=["S"], node_name="reshape_cnt"), ["'reshape_cnt'", "12"])
    onnx_case("reshape_dim_minus_two", c,
              single("Reshape", [[2, 6]], None, [init("S", np.array([-2, 6], np.int64))],
                     extra_inputs=["S"], node_name="reshape_neg"), ["'reshape_neg'", "-2"])
    onnx_case("reshape_zero_with_allowzero_and_minus_one", c,
              single("Reshape", [[0, 6]], None, [init("S", np.array([0, -1], np.int64))],
                     extra_inputs=["S"], node_name="reshape_az", attrs={"allowzero": 1},
                     opset=14), ["'reshape_az'"])
    onnx_case("conv_zero_spatial_input", c,
              single("Conv", [[1, 1, 0, 5]], None, [init("W", np.ones((1, 1, 3, 3), np.float32))],
                     extra_inputs=["W"], node_name="conv_h0"), ["'conv_h0'"])
    onnx_case("argmax_empty_axis", c,
              single("ArgMax", [[2, 0]], None, attrs={"axis": 1}, node_name="argmax0"),
              ["'argmax0'", "empty axis"])
    onnx_case("pad_edge_empty_axis", c,
              single("Pad", [[1, 0]], None, [init("pads", np.array([0, 2, 0, 2], np.int64))],
                     extra_inputs=["pads"], attrs={"mode": "edge"}, node_name="pad_edge"),
              ["'pad_edge'", "empty axis 1"])
    onnx_case("expand_negative_dim", c,
              single("Expand", [[1, 2]], None, [init("s", np.array([-3, 2], np.int64))],
                     extra_inputs=["s"], node_name="expand_neg"), ["'expand_neg'", "-3"])
    onnx_case("constant_of_shape_negative_dim", c,
              single("ConstantOfShape", [], None, [init("s", np.array([4, -1], np.int64))],
                     extra_inputs=["s"], node_name="cos_neg"), ["'cos_neg'", "-1"])
    onnx_case("tile_negative_repeat", c,
              single("Tile", [[2, 2]], None, [init("r", np.array([-1, 2], np.int64))],
                     extra_inputs=["r"], node_name="tile_neg"), ["'tile_neg'", "-1"])
    onnx_case("matmul_rank_mismatch", c,
              single("MatMul", [[2, 3], [4, 5]], None, node_name="mm"), ["'mm'", "3", "4"])


# ----------------------------------------------------------------------------- attributes
def attributes():
    c = "attributes"
    w = init("W", np.ones((4, 4, 3, 3), np.float32))

    def conv(name, attrs, x=(1, 4, 8, 8), wt=w, op="Conv", expect=()):
        onnx_case(name, c, single(op, [list(x)], None, [wt], extra_inputs=[wt.name],
                                  node_name=name, attrs=attrs), [f"'{name}'"] + list(expect))
    conv("conv_stride_0", {"strides": [0, 1]}, expect=["strides"])
    conv("conv_stride_negative", {"strides": [1, -2]}, expect=["strides"])
    conv("conv_dilation_0", {"dilations": [0, 0]}, expect=["dilations"])
    conv("conv_group_0", {"group": 0}, expect=["group"])
    conv("conv_group_not_dividing", {"group": 3}, expect=["group"])
    conv("conv_kernel_larger_than_padded_input", {"pads": [0, 1, 1, 1]}, x=(1, 4, 1, 8),
         expect=["larger than the padded input"])
    conv("conv_pads_negative", {"pads": [-1, 0, 0, 0]}, expect=["pads"])
    conv("conv_pads_huge", {"pads": [1 << 62, 1 << 62, 1 << 62, 1 << 62]}, expect=["pads"])
    conv("conv_dilation_huge", {"dilations": [1 << 61, 1]}, expect=["dilations"])
    conv("conv_stride_count", {"strides": [1, 1, 1]}, expect=["strides"])
    wt = init("WT", np.ones((4, 4, 3, 3), np.float32))
    conv("convtranspose_stride_0", {"strides": [0, 0]}, wt=wt, op="ConvTranspose",
         expect=["strides"])

    def pool(name, op, attrs, x=(1, 2, 6, 6), opset=13, expect=()):
        onnx_case(name, c, single(op, [list(x)], None, node_name=name, attrs=attrs, opset=opset),
                  [f"'{name}'"] + list(expect))
    pool("maxpool_stride_0", "MaxPool", {"kernel_shape": [2, 2], "strides": [0, 0]},
         expect=["strides"])
    pool("maxpool_kernel_0", "MaxPool", {"kernel_shape": [0, 2]}, expect=["kernel_shape"])
    pool("avgpool_kernel_past_input", "AveragePool", {"kernel_shape": [9, 9]})
    pool("maxpool_dilation_0", "MaxPool", {"kernel_shape": [2, 2], "dilations": [0, 1]},
         expect=["dilations"])
    pool("lppool_stride_0", "LpPool", {"kernel_shape": [2, 2], "strides": [0, 1]},
         expect=["strides"])
    pool("softmax_axis_out_of_range", "Softmax", {"axis": 5}, expect=["axis"])
    pool("flatten_axis_out_of_range", "Flatten", {"axis": 9}, expect=["axis"])
    pool("concat_axis_out_of_range", "Concat", {"axis": -7}, expect=["axis"])
    pool("transpose_perm_duplicate", "Transpose", {"perm": [0, 0, 2, 3]}, expect=["perm"])
    pool("transpose_perm_out_of_range", "Transpose", {"perm": [0, 1, 2, 4]}, expect=["perm"])
    pool("depth_to_space_blocksize_0", "DepthToSpace", {"blocksize": 0}, expect=["blocksize"])
    pool("space_to_depth_blocksize_0", "SpaceToDepth", {"blocksize": 0}, expect=["blocksize"])
    pool("split_axis_out_of_range", "Split", {"axis": 4}, expect=["axis"])
    pool("argmax_axis_out_of_range", "ArgMax", {"axis": -5}, expect=["axis"])
    pool("lrn_size_0", "LRN", {"size": 0}, expect=["size"])
    pool("maxpool_pads_past_kernel", "MaxPool", {"kernel_shape": [2, 2], "pads": [3, 3, 3, 3]},
         expect=["pads value 3", "kernel extent 2"])
    pool("avgpool_pads_past_kernel", "AveragePool", {"kernel_shape": [3, 3], "pads": [0, 0, 3, 0]},
         expect=["pads value 3", "kernel extent 3"])
    pool("cast_to_unknown_type", "Cast", {"to": 100}, expect=["'to'", "100"])
    onnx_case("gathernd_batch_dims_past_rank", c,
              single("GatherND", [[2, 3]], None, [init("I", np.array([[0], [1]], np.int64))],
                     extra_inputs=["I"], attrs={"batch_dims": 3}, node_name="gnd_bd"),
              ["'gnd_bd'", "batch_dims 3"])
    onnx_case("slice_step_zero", c,
              single("Slice", [[4, 4]], None, [init("s", np.array([0], np.int64)),
                                               init("e", np.array([4], np.int64)),
                                               init("a", np.array([0], np.int64)),
                                               init("st", np.array([0], np.int64))],
                     extra_inputs=["s", "e", "a", "st"], node_name="slice0"),
              ["'slice0'", "step"])
    onnx_case("resize_scale_nan", c,
              single("Resize", [[1, 1, 2, 2]], None,
                     [init("roi", np.zeros(0, np.float32)),
                      init("sc", np.array([1, 1, np.nan, 2], np.float32))],
                     extra_inputs=["roi", "sc"], node_name="resize_nan"),
              ["'resize_nan'", "scale nan"])
    onnx_case("range_limit_inf", c,
              single("Range", [], None, [init("s", np.array(0, np.float32)),
                                         init("l", np.array(np.inf, np.float32)),
                                         init("d", np.array(1, np.float32))],
                     extra_inputs=["s", "l", "d"], node_name="range_inf"),
              ["'range_inf'", "finite"])
    onnx_case("range_delta_zero", c,
              single("Range", [], None, [init("s", np.array(0, np.float32)),
                                         init("l", np.array(10, np.float32)),
                                         init("d", np.array(0, np.float32))],
                     extra_inputs=["s", "l", "d"], node_name="range0"),
              ["'range0'", "delta"])


# ----------------------------------------------------------------------------- quantization
def quantization():
    c = "quantization"

    def q(name, op, xshape, scale, zp, attrs=None, in_elem=F, opset=13, expect=()):
        inits = [init("s", np.asarray(scale, np.float32))]
        extra = ["s"]
        if zp is not None:
            inits.append(init("z", zp))
            extra.append("z")
        onnx_case(name, c, single(op, [list(xshape)], None, inits, extra_inputs=extra,
                                  node_name=name, attrs=attrs, in_elem=in_elem, opset=opset),
                  [f"'{name}'"] + list(expect))
    q("quantize_scale_0", "QuantizeLinear", (1, 4), 0.0, np.uint8(0), expect=["y_scale"])
    q("quantize_scale_negative", "QuantizeLinear", (1, 4), -0.5, np.uint8(0), expect=["y_scale"])
    q("quantize_scale_nan", "QuantizeLinear", (1, 4), np.nan, np.uint8(0), expect=["y_scale"])
    q("quantize_scale_inf", "QuantizeLinear", (1, 4), np.inf, np.int8(0), expect=["y_scale"])
    q("dequantize_scale_0", "DequantizeLinear", (1, 4), 0.0, np.uint8(3), in_elem=U8,
      expect=["x_scale"])
    q("dequantize_scale_nan", "DequantizeLinear", (1, 4), np.nan, None, in_elem=I8,
      expect=["x_scale"])
    q("quantize_per_axis_count", "QuantizeLinear", (1, 4, 2), [0.1, 0.2, 0.3],
      np.zeros(3, np.uint8), attrs={"axis": 1}, expect=["y_scale"])
    q("dequantize_per_axis_zp_count", "DequantizeLinear", (4, 2), [0.1] * 4,
      np.zeros(3, np.uint8), attrs={"axis": 0}, in_elem=U8, expect=["x_zero_point"])
    q("quantize_axis_out_of_range", "QuantizeLinear", (1, 4), [0.1] * 4, np.zeros(4, np.uint8),
      attrs={"axis": 3}, expect=["axis"])
    q("dequantize_int32_zero_point", "DequantizeLinear", (1, 4), 0.5, np.int32(7), in_elem=I32,
      expect=["x_zero_point"])
    # A uint8 zero point written through int32_data with a value no uint8 can hold.
    zt = TensorProto(name="z", data_type=U8, dims=[])
    zt.int32_data.append(300)
    n = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="quantize_zp_300")
    onnx_case("quantize_zero_point_out_of_type_range", c,
              graph_model([n], [vi("x", F, [1, 4])], [vi("y", U8, [1, 4])],
                          [init("s", np.float32(0.1)), zt]), ["'z'", "300"])

    # QLinearConv: x[1,2,5,5] uint8, w[4,2,3,3] uint8.
    def qconv(name, x_scale=0.1, w_scale=(0.2,), y_scale=0.3, w_zp=None, x_zp=np.uint8(0),
              expect=()):
        w_zp = np.zeros(len(w_scale), np.uint8) if w_zp is None else w_zp
        inits = [init("xs", np.float32(x_scale)), init("xz", x_zp),
                 init("w", np.ones((4, 2, 3, 3), np.uint8)),
                 init("ws", np.asarray(w_scale, np.float32)), init("wz", w_zp),
                 init("ys", np.float32(y_scale)), init("yz", np.uint8(0))]
        n = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                             name=name)
        onnx_case(name, c, graph_model([n], [vi("x", U8, [1, 2, 5, 5])], [vi("y", U8, None)],
                                       inits), [f"'{name}'"] + list(expect))
    qconv("qlinearconv_x_scale_0", x_scale=0.0, expect=["x_scale"])
    qconv("qlinearconv_w_scale_negative", w_scale=(-0.2,), expect=["w_scale"])
    qconv("qlinearconv_y_scale_nan", y_scale=np.nan, expect=["y_scale"])
    qconv("qlinearconv_w_scale_inf_per_channel", w_scale=(0.1, np.inf, 0.1, 0.1),
          expect=["w_scale"])
    qconv("qlinearconv_per_channel_count", w_scale=(0.1, 0.1, 0.1), expect=["w_scale"])
    qconv("qlinearconv_w_zp_count", w_scale=(0.1,) * 4, w_zp=np.zeros(2, np.uint8),
          expect=["w_zero_point"])
    qconv("qlinearconv_x_zp_type", x_zp=np.int8(0), expect=["x_zero_point"])

    def qmm(name, a_scale=0.1, b_scale=0.1, y_scale=0.1, expect=()):
        inits = [init("as", np.float32(a_scale)), init("az", np.uint8(0)),
                 init("b", np.ones((4, 3), np.uint8)), init("bs", np.float32(b_scale)),
                 init("bz", np.uint8(0)), init("ys", np.float32(y_scale)),
                 init("yz", np.uint8(0))]
        n = helper.make_node("QLinearMatMul", ["x", "as", "az", "b", "bs", "bz", "ys", "yz"],
                             ["y"], name=name)
        onnx_case(name, c, graph_model([n], [vi("x", U8, [2, 4])], [vi("y", U8, None)], inits),
                  [f"'{name}'"] + list(expect))
    qmm("qlinearmatmul_a_scale_inf", a_scale=np.inf, expect=["a_scale"])
    qmm("qlinearmatmul_y_scale_0", y_scale=0.0, expect=["y_scale"])
    qmm("qlinearmatmul_b_scale_negative", b_scale=-1.0, expect=["b_scale"])


# ----------------------------------------------------------------------------- graph
def graph():
    c = "graph"
    X = [vi("x", F, [1, 4])]
    Y = [vi("y", F, [1, 4])]
    R = helper.make_node
    onnx_case("cycle_two_nodes", c, graph_model(
        [R("Add", ["x", "b"], ["a"], name="n_a"), R("Relu", ["a"], ["b"], name="n_b"),
         R("Identity", ["a"], ["y"], name="n_y")], X, Y), ["cycle", "input 'b' from node 'n_b'"])
    onnx_case("cycle_three_nodes", c, graph_model(
        [R("Add", ["x", "c"], ["a"], name="n_a"), R("Relu", ["a"], ["b"], name="n_b"),
         R("Neg", ["b"], ["c"], name="n_c"), R("Identity", ["c"], ["y"], name="n_y")], X, Y),
        ["cycle", "input 'c' from node 'n_c'"])
    onnx_case("self_loop", c, graph_model(
        [R("Relu", ["s"], ["s"], name="n_self"), R("Add", ["x", "s"], ["y"], name="n_y")], X, Y),
        ["n_self", "'s' is both an input and an output"])
    onnx_case("input_and_output_of_one_node", c, graph_model(
        [R("Add", ["x", "t"], ["t"], name="n_io"), R("Identity", ["t"], ["y"], name="n_y")], X, Y),
        ["n_io", "'t' is both an input and an output"])
    onnx_case("dangling_input", c, graph_model(
        [R("Add", ["x", "ghost"], ["y"], name="n_dangle")], X, Y), ["n_dangle", "'ghost'"])
    onnx_case("dangling_graph_output", c, graph_model(
        [R("Relu", ["x"], ["y"], name="relu")], X, Y + [vi("phantom", F, [1])]),
        ["graph output 'phantom'"])
    onnx_case("duplicate_node_output", c, graph_model(
        [R("Relu", ["x"], ["y"], name="n1"), R("Neg", ["x"], ["y"], name="n2")], X, Y),
        ["'n2'", "'y'", "already defined"])
    onnx_case("output_redefines_input", c, graph_model(
        [R("Relu", ["x"], ["x"], name="n_redef"), R("Identity", ["x"], ["y"], name="n_y")], X, Y),
        ["'n_redef'", "'x'"])
    onnx_case("output_redefines_initializer", c, graph_model(
        [R("Relu", ["x"], ["w"], name="n_w"), R("Add", ["x", "w"], ["y"], name="n_y")], X, Y,
        [init("w", np.ones((1, 4), np.float32))]), ["'n_w'", "'w'"])
    onnx_case("duplicate_graph_input", c, graph_model(
        [R("Relu", ["x"], ["y"], name="relu")], X + [vi("x", F, [1, 4])], Y),
        ["input 'x'", "duplicate"])
    onnx_case("duplicate_initializer", c, graph_model(
        [R("Add", ["x", "w"], ["y"], name="n_y")], X, Y,
        [init("w", np.ones((1, 4), np.float32)), init("w", np.zeros((1, 4), np.float32))]),
        ["initializer 'w'", "duplicate"])
    onnx_case("unknown_domain", c, graph_model(
        [R("Relu", ["x"], ["y"], name="n_dom", domain="com.example")], X, Y),
        ["'n_dom'", "com.example"])
    onnx_case("empty_op_type", c, graph_model([R("", ["x"], ["y"], name="n_empty")], X, Y),
              ["'n_empty'", "no op_type"])
    onnx_case("unknown_op", c, graph_model([R("Frobnicate", ["x"], ["y"], name="n_frob")], X, Y),
              ["'n_frob'", "Frobnicate"])
    # An If branch reads a value nothing defines.
    then_g = helper.make_graph([R("Add", ["x", "nowhere"], ["t"], name="then_add")], "then", [],
                               [vi("t", F, [1, 4])])
    else_g = helper.make_graph([R("Identity", ["x"], ["e"], name="else_id")], "else", [],
                               [vi("e", F, [1, 4])])
    # An If whose else branch has two outputs for a node with one (the run may never take it).
    two = helper.make_graph([R("Identity", ["x"], ["e1"], name="else_1"),
                             R("Identity", ["x"], ["e2"], name="else_2")], "else2", [],
                            [vi("e1", F, [1, 4]), vi("e2", F, [1, 4])])
    one = helper.make_graph([R("Identity", ["x"], ["t1"], name="then_1")], "then1", [],
                            [vi("t1", F, [1, 4])])
    onnx_case("if_branch_output_count", c, graph_model(
        [R("If", ["cond"], ["y"], name="n_if2", then_branch=one, else_branch=two)],
        X + [vi("cond", TensorProto.BOOL, [])], Y),
        ["'n_if2'", "'else_branch' has 2 outputs, the node has 1"])
    body = helper.make_graph([R("Identity", ["ci"], ["co"], name="body_id")], "body",
                             [vi("i", I64, []), vi("ci", TensorProto.BOOL, [])],
                             [vi("co", TensorProto.BOOL, [])])
    onnx_case("loop_body_input_count", c, graph_model(
        [R("Loop", ["M", "c", "x"], ["y"], name="n_loop", body=body)], X, Y,
        [init("M", np.array(3, np.int64)), init("c", np.array(True))]),
        ["'n_loop'", "body takes 2 inputs, expected 3"])
    onnx_case("subgraph_dangling_input", c, graph_model(
        [R("If", ["cond"], ["y"], name="n_if", then_branch=then_g, else_branch=else_g)],
        X + [vi("cond", TensorProto.BOOL, [])], Y,
        [numpy_helper.from_array(np.array(True), "cond")]), ["'then_add'", "'nowhere'"])


# ----------------------------------------------------------------------------- attr vs init
def attr_init():
    c = "attr_init_mismatch"
    R = helper.make_node

    def m(name, op, xshape, inits, attrs=None, opset=13, expect=(), n_out=1):
        onnx_case(name, c, single(op, [list(xshape)], None, inits,
                                  extra_inputs=[i.name for i in inits], node_name=name,
                                  attrs=attrs, opset=opset, n_outputs=n_out),
                  [f"'{name}'"] + list(expect))
    w = init("W", np.ones((4, 3, 3, 3), np.float32))
    m("conv_kernel_shape_vs_weight", "Conv", (1, 3, 8, 8), [w], {"kernel_shape": [5, 5]},
      expect=["kernel_shape"])
    m("conv_weight_channels", "Conv", (1, 2, 8, 8), [w])
    m("conv_bias_size", "Conv", (1, 3, 8, 8), [w, init("B", np.ones(3, np.float32))],
      expect=["bias B"])
    m("convtranspose_kernel_shape_vs_weight", "ConvTranspose", (1, 4, 5, 5),
      [init("W", np.ones((4, 2, 3, 3), np.float32))], {"kernel_shape": [2, 2]},
      expect=["kernel_shape"])
    m("gemm_inner_dim", "Gemm", (2, 5), [init("B", np.ones((4, 3), np.float32))])
    m("gemm_transb_inner_dim", "Gemm", (2, 4), [init("B", np.ones((4, 3), np.float32))],
      {"transB": 1})
    m("matmul_inner_dim", "MatMul", (2, 5), [init("B", np.ones((4, 3), np.float32))])
    C = 4
    bn = [init(n, np.ones(3, np.float32)) for n in ("scale", "bias", "mean", "var")]
    m("batchnorm_param_size", "BatchNormalization", (1, C, 2, 2), bn)
    m("instancenorm_scale_size", "InstanceNormalization", (1, C, 2, 2),
      [init("scale", np.ones(5, np.float32)), init("bias", np.ones(C, np.float32))])
    m("layernorm_scale_size", "LayerNormalization", (2, 6),
      [init("scale", np.ones(5, np.float32))], opset=17)
    m("prelu_slope_shape", "PRelu", (1, 4, 2, 2), [init("slope", np.ones(3, np.float32))])
    m("pad_pads_length", "Pad", (1, 4), [init("pads", np.zeros(3, np.int64))], expect=["pads"])
    m("tile_repeats_length", "Tile", (1, 4), [init("repeats", np.ones(3, np.int64))],
      expect=["repeats"])
    m("resize_scales_length", "Resize", (1, 1, 2, 2),
      [init("roi", np.zeros(0, np.float32)), init("scales", np.ones(3, np.float32))],
      expect=["scales"])
    m("slice_starts_ends_length", "Slice", (4, 4),
      [init("starts", np.zeros(2, np.int64)), init("ends", np.ones(1, np.int64))])
    m("split_sizes_sum", "Split", (6, 2), [init("split", np.array([2, 2], np.int64))],
      n_out=2, expect=["split"])
    m("expand_shape_incompatible", "Expand", (3, 4), [init("shape", np.array([2, 4], np.int64))])
    lstm_w = init("W", np.ones((1, 4 * 5, 3), np.float32))
    lstm_r = init("R", np.ones((1, 4 * 6, 6), np.float32))
    m("lstm_hidden_size_vs_weight", "LSTM", (2, 1, 3), [lstm_w, lstm_r], {"hidden_size": 6})


# ----------------------------------------------------------------------------- external data
def external_data():
    c = "external_data"
    ext_dir = os.path.join(OUT, "ext")
    os.makedirs(ext_dir, exist_ok=True)
    with open(os.path.join(ext_dir, "weights.bin"), "wb") as f:
        f.write(np.arange(4, dtype=np.float32).tobytes())  # 16 bytes
    os.makedirs(os.path.join(OUT, "outside"), exist_ok=True)
    with open(os.path.join(OUT, "outside", "secret.bin"), "wb") as f:
        f.write(b"\0" * 16)
    os.makedirs(os.path.join(ext_dir, "sub"), exist_ok=True)
    for link, target in [("link_out.bin", "../outside/secret.bin"),
                         ("link_abs.bin", os.path.abspath(os.path.join(OUT, "outside", "secret.bin"))),
                         ("linkdir", "../outside")]:
        p = os.path.join(ext_dir, link)
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)

    def ext(name, kv, expect, dims=(1, 4), dtype=F):
        t = TensorProto(name="W", data_type=dtype, dims=list(dims))
        t.data_location = TensorProto.EXTERNAL
        for k, v in kv.items():
            e = t.external_data.add()
            e.key, e.value = k, v
        onnx_case(name, c, weight_model(t), ["'W'"] + expect, fname=f"ext/{name}.onnx")
    ext("ext_dotdot", {"location": "../outside/secret.bin"}, ["escapes"])
    ext("ext_dotdot_inner", {"location": "sub/../../outside/secret.bin"}, ["escapes"])
    ext("ext_absolute", {"location": "/etc/hostname"}, ["absolute"])
    ext("ext_symlink_outside", {"location": "link_out.bin"}, ["outside the model's folder"])
    ext("ext_symlink_absolute", {"location": "link_abs.bin"}, ["outside the model's folder"])
    ext("ext_symlink_dir", {"location": "linkdir/secret.bin"}, ["outside the model's folder"])
    ext("ext_offset_past_end", {"location": "weights.bin", "offset": "4096"}, ["past the end"])
    ext("ext_length_past_end", {"location": "weights.bin", "offset": "8", "length": "16"},
        ["past the end"])
    ext("ext_offset_length_wrap", {"location": "weights.bin", "offset": "8",
                                   "length": "18446744073709551608"}, ["length"])
    ext("ext_length_huge", {"location": "weights.bin", "offset": "8",
                            "length": "999999999999999999"}, ["past the end"])
    ext("ext_offset_huge", {"location": "weights.bin", "offset": "999999999999999999",
                            "length": "16"}, ["past the end"])
    ext("ext_offset_negative", {"location": "weights.bin", "offset": "-16"}, ["offset '-16'"])
    ext("ext_length_mismatch", {"location": "weights.bin", "length": "8"},
        ["holds 8 bytes, expected 16"])
    ext("ext_missing_file", {"location": "nothere.bin"}, ["not found"])
    ext("ext_no_location", {"offset": "0"}, ["no location"])
    ext("ext_location_is_dir", {"location": "sub"}, ["not a regular file"])


# ----------------------------------------------------------------------------- bombs
def bombs():
    c = "resource_bombs"
    big = 1_000_000
    onnx_case("input_1e12_elements", c, relu_model((big, big)), ["'x'", "elements"])
    t = TensorProto(name="W", data_type=F, dims=[big, big])
    onnx_case("initializer_1e12_elements", c, weight_model(t), ["'W'", "elements"])

    def const_op(name, op, inits, attrs=None, opset=13, xs=(), expect=()):
        onnx_case(name, c, single(op, [list(s) for s in xs], None, inits,
                                  extra_inputs=[i.name for i in inits], node_name=name,
                                  attrs=attrs, opset=opset), [f"'{name}'"] + list(expect))
    const_op("expand_1e12", "Expand", [init("shape", np.array([big, big], np.int64))],
             xs=[(1, 1)], expect=["elements"])
    const_op("tile_1e12", "Tile", [init("repeats", np.array([big, big], np.int64))],
             xs=[(1, 1)], expect=["elements"])
    const_op("constant_of_shape_1e12", "ConstantOfShape",
             [init("shape", np.array([big, big], np.int64))], expect=["elements"])
    const_op("range_1e12", "Range", [init("start", np.array(0, np.int64)),
                                      init("limit", np.array(10 ** 12, np.int64)),
                                      init("delta", np.array(1, np.int64))], expect=["elements"])
    const_op("range_float_1e10", "Range", [init("start", np.array(0, np.float32)),
                                            init("limit", np.array(1e10, np.float32)),
                                            init("delta", np.array(1e-3, np.float32))],
             expect=["elements"])
    const_op("resize_scales_1e5", "Resize",
             [init("roi", np.zeros(0, np.float32)),
              init("scales", np.array([1, 1, 1e5, 1e5], np.float32))],
             xs=[(1, 3, 100, 100)], expect=["elements"])
    const_op("pad_1e9", "Pad", [init("pads", np.array([0, 10 ** 9, 0, 10 ** 9], np.int64))],
             xs=[(1000, 1)], expect=["elements"])
    const_op("onehot_depth_1e12", "OneHot",
             [init("indices", np.array([1], np.int64)),
              init("depth", np.array(10 ** 12, np.int64)),
              init("values", np.array([0, 1], np.float32))], expect=["depth"])
    const_op("convtranspose_stride_1e9", "ConvTranspose",
             [init("W", np.ones((1, 1, 1, 1), np.float32))],
             attrs={"strides": [10 ** 9, 10 ** 9]}, xs=[(1, 1, 100, 100)], expect=["elements"])
    const_op("expand_rank_9", "Expand", [init("shape", np.ones(9, np.int64))], xs=[(1, 1)],
             expect=["rank"])
    const_op("upsample_bomb", "Upsample", [init("scales", np.array([1, 1, 1e6, 1e6], np.float32))],
             xs=[(1, 1, 10, 10)], opset=9, expect=["elements"])
    # A Loop whose constant trip count is 1e12 (the body only adds 1).
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
         helper.make_node("Add", ["v_in", "one"], ["v_out"], name="body_add")], "body",
        [vi("i", I64, []), vi("cond_in", TensorProto.BOOL, []), vi("v_in", F, [1])],
        [vi("cond_out", TensorProto.BOOL, []), vi("v_out", F, [1])],
        [init("one", np.ones(1, np.float32))])
    loop = helper.make_node("Loop", ["M", "cond", "x"], ["y"], name="loop_1e12", body=body)
    onnx_case("loop_trip_count_1e12", c, graph_model(
        [loop], [vi("x", F, [1])], [vi("y", F, [1])],
        [init("M", np.array(10 ** 12, np.int64)), init("cond", np.array(True))]),
        ["'loop_1e12'", "trip count", "limit"])
    # A chain of Identity nodes one over the node limit (docs/limits.md), written as raw
    # protobuf so the generator stays fast.
    write_million_nodes(c)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field, payload):  # a length-delimited protobuf field
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def write_million_nodes(c):
    n = 1_000_001
    g = helper.make_graph([], "million", [vi("t0", F, [1])], [vi(f"t{n}", F, [1])])
    parts = [g.SerializeToString()]
    for i in range(n):
        node = (_ld(1, b"t%d" % i) + _ld(2, b"t%d" % (i + 1)) + _ld(3, b"n%d" % i) +
                _ld(4, b"Identity"))
        parts.append(_ld(1, node))  # GraphProto.node = 1
    graph_bytes = b"".join(parts)
    m = onnx.ModelProto()
    m.ir_version = 8
    m.opset_import.add().version = 13
    data = m.SerializeToString() + _ld(7, graph_bytes)  # ModelProto.graph = 7
    write("million_nodes.onnx", data)
    case("million_nodes", c, "build", "million_nodes.onnx",
         ["million_nodes.onnx", "1000001 nodes, over the limit of 1000000"])


def main():
    global OUT
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    OUT = os.path.abspath(sys.argv[1])
    lithe = sys.argv[2] if len(sys.argv) == 3 else os.environ.get("LITHE_BIN") or shutil.which("lithe")
    if not lithe:
        sys.exit("gen_corpus: give the lithe binary (argument 2 or $LITHE_BIN) for the engine cases")
    os.makedirs(OUT, exist_ok=True)
    onnx_container()
    engine_cases(lithe)
    indices()
    shapes()
    attributes()
    quantization()
    graph()
    attr_init()
    external_data()
    bombs()
    with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
        for row in CASES:
            assert all("\t" not in x and "\n" not in x for x in row), row
            f.write("\t".join(row) + "\n")
    counts = {}
    for row in CASES:
        counts[row[1]] = counts.get(row[1], 0) + 1
    print(f"gen_corpus: {len(CASES)} cases in {OUT}: " +
          ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
