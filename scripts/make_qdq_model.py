#!/usr/bin/python3
"""Inserts QuantizeLinear / DequantizeLinear into a float ONNX model in ONNX Runtime's QDQ
format, with min/max ranges measured on a few samples: the input of `lithe build`'s explicit
quantization (docs/precision.md, "Explicit quantization") made without ONNX Runtime's
quantizer (PyPI is unreachable here; python3-onnx and numpy are Debian's).

    make_qdq_model.py IN.onnx OUT.onnx --calib DIR_OR_NPY... [--samples N]
                      [--activation-type uint8|int8] [--per-tensor-weights] [--lithe BIN]

What it writes, as ONNX Runtime's QDQ quantizer does (QuantFormat.QDQ, MinMax calibration):
- every float activation a node reads or writes gets Q -> DQ (per tensor, asymmetric, range
  widened to contain 0, scale = (max - min) / 255), except a Conv / Gemm output that only a
  Relu reads (the Relu's output carries the range); the outputs of MaxPool, Flatten, Reshape,
  Transpose, Squeeze and Unsqueeze take their input's parameters (their values are the
  input's);
- Conv and Gemm weights become int8 initializers (symmetric, zero point 0, per output
  channel unless --per-tensor-weights: scale = max|w| / 127) read through a DequantizeLinear
  (axis 0 for Conv and Gemm transB=1, axis 1 for Gemm transB=0);
- their biases become int32 initializers at scale x_scale * w_scale read through a
  DequantizeLinear (axis 0).
The ranges come from `lithe run --no-optimize` (the reference executor; Debian's python3-onnx
is too old for onnx.reference) running the float model, with every activation made an output,
on the first N samples (.npy files, each one input tensor; a folder is searched for *.npy,
sorted). --lithe names the binary (default: `lithe` on PATH, else build/lithe).
"""
import argparse
import glob
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import shutil
import subprocess
import tempfile

SAME_AS_INPUT = {"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze"}


def sample_files(paths, count):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(glob.glob(os.path.join(p, "**", "*.npy"), recursive=True))
        else:
            files.append(p)
    if not files:
        sys.exit("make_qdq_model.py: no .npy samples in " + " ".join(paths))
    return files[:count]


def float_activations(model):
    """Names of the float tensors nodes read or write that are not initializers or Constant
    outputs, in order."""
    inits = {t.name for t in model.graph.initializer}
    inits |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    types = {}
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        types[vi.name] = vi.type.tensor_type.elem_type
    names = []
    for n in model.graph.node:
        for t in list(n.input) + list(n.output):
            if t and t not in inits and t not in names and types.get(t) == TensorProto.FLOAT:
                names.append(t)
    return names


def fused_activation_inputs(model):
    """Conv / Gemm outputs read by one Relu or Clip only: as ONNX Runtime's quantizer, no Q/DQ there
    (the Relu's output carries the range, and an INT8 conv applies the Relu before rounding)."""
    readers, producer = {}, {}
    for n in model.graph.node:
        for t in n.input:
            readers[t] = readers.get(t, 0) + 1
        for t in n.output:
            producer[t] = n.op_type
    outputs = {o.name for o in model.graph.output}
    return {n.input[0] for n in model.graph.node
            if n.op_type in ("Relu", "Clip") and readers.get(n.input[0]) == 1 and n.input[0] not in outputs
            and producer.get(n.input[0]) in ("Conv", "Gemm")}


def ranges(model, names, files, lithe):
    """min / max of every tensor in `names` over the samples (widened to contain 0)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for i, n in enumerate(names):  # outputs named probe_I: file names whatever the tensor's
        probe.graph.node.append(helper.make_node("Identity", [n], [f"probe_{i}"]))
        probe.graph.output.append(helper.make_tensor_value_info(f"probe_{i}", TensorProto.FLOAT, None))
    lo = {n: 0.0 for n in names}
    hi = {n: 0.0 for n in names}
    in_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.onnx")
        onnx.save(probe, path)
        for f in files:
            out = os.path.join(tmp, "out")
            subprocess.run([lithe, "run", path, "--no-optimize", "-i", f"{in_name}={f}", "-o", out],
                           check=True, stdout=subprocess.DEVNULL)
            for i, n in enumerate(names):
                v = np.load(os.path.join(out, f"probe_{i}.npy"))
                lo[n] = min(lo[n], float(v.min()))
                hi[n] = max(hi[n], float(v.max()))
    return lo, hi


def act_params(lo, hi, signed):
    """ONNX Runtime's asymmetric parameters of [lo, hi] (which contains 0)."""
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    qmin = -128 if signed else 0
    zp = int(np.clip(np.rint(qmin - lo / scale), qmin, qmin + 255))
    return np.float32(scale), zp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("output")
    ap.add_argument("--calib", nargs="+", required=True, help=".npy files or folders")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--activation-type", choices=["uint8", "int8"], default="uint8")
    ap.add_argument("--per-tensor-weights", action="store_true")
    ap.add_argument("--lithe", help="the lithe binary (default: on PATH, else build/lithe)")
    a = ap.parse_args()

    model = onnx.shape_inference.infer_shapes(onnx.load(a.model))
    if len(model.graph.input) != 1:
        sys.exit("make_qdq_model.py: models with one input only")
    signed = a.activation_type == "int8"
    qtype = TensorProto.INT8 if signed else TensorProto.UINT8
    fused = fused_activation_inputs(model)
    names = [t for t in float_activations(model) if t not in fused]
    here = os.path.dirname(os.path.abspath(__file__))
    lithe = a.lithe or shutil.which("lithe") or os.path.join(here, "..", "build", "lithe")
    lo, hi = ranges(model, names, sample_files(a.calib, a.samples), lithe)

    # Parameters per activation; data movement and max pooling keep their input's.
    params = {}
    for n in model.graph.node:
        for t in n.input:
            if t in lo and t not in params:
                params[t] = act_params(lo[t], hi[t], signed)
        for t in n.output:
            if t not in lo:
                continue
            if n.op_type in SAME_AS_INPUT and n.input[0] in params:
                params[t] = params[n.input[0]]
            else:
                params[t] = act_params(lo[t], hi[t], signed)

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_inits, new_nodes = [], []
    renamed = {}  # activation -> its DQ output

    def qdq(t):
        scale, zp = params[t]
        s, z = t + "_scale", t + "_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scale, np.float32), s))
        new_inits.append(helper.make_tensor(z, qtype, [], [zp]))
        new_nodes.append(helper.make_node("QuantizeLinear", [t, s, z], [t + "_quantized"],
                                          name=t + "_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [t + "_quantized", s, z],
                                          [t + "_dequantized"], name=t + "_DequantizeLinear"))
        renamed[t] = t + "_dequantized"

    for t in names:
        qdq(t)
    graph_outputs = {o.name for o in g.output}

    def weight_dq(name, w, axis):
        if a.per_tensor_weights:
            scale = np.array(max(np.abs(w).max() / 127.0, 1e-12), np.float32)
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        else:
            red = tuple(i for i in range(w.ndim) if i != axis)
            scale = (np.abs(w).max(axis=red) / 127.0).astype(np.float32)
            scale[scale == 0] = 1.0
            shape = [1] * w.ndim
            shape[axis] = -1
            q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        new_inits.append(numpy_helper.from_array(q, name + "_quantized"))
        new_inits.append(numpy_helper.from_array(scale, name + "_scale"))
        new_inits.append(numpy_helper.from_array(np.zeros(scale.shape, np.int8), name + "_zero_point"))
        attrs = {} if a.per_tensor_weights else {"axis": axis}
        new_nodes.append(helper.make_node(
            "DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"],
            [name + "_dequantized"], name=name + "_DequantizeLinear", **attrs))
        return scale

    def bias_dq(name, b, scale):
        q = np.rint(b.astype(np.float64) / scale.astype(np.float64)).astype(np.int32)
        new_inits.append(numpy_helper.from_array(q, name + "_quantized"))
        new_inits.append(numpy_helper.from_array(scale.astype(np.float32), name + "_scale"))
        attrs = {"axis": 0} if scale.ndim == 1 else {}
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale"],
                                          [name + "_dequantized"], name=name + "_DequantizeLinear",
                                          **attrs))

    out_nodes = []
    for n in g.node:
        n2 = onnx.NodeProto()
        n2.CopyFrom(n)
        for i, t in enumerate(n2.input):
            if t in renamed:
                n2.input[i] = renamed[t]
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 1 and n.input[1] in inits:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            axis = 0
            if n.op_type == "Gemm":
                tb = next((x.i for x in n.attribute if x.name == "transB"), 0)
                axis = 0 if tb else 1
            ws = weight_dq(n.input[1], w, axis)
            n2.input[1] = n.input[1] + "_dequantized"
            if len(n.input) > 2 and n.input[2] in inits:
                xs = params[n.input[0]][0]
                bias_dq(n.input[2], numpy_helper.to_array(inits[n.input[2]]),
                        np.float32(xs) * ws)
                n2.input[2] = n.input[2] + "_dequantized"
        out_nodes.append(n2)
    # Graph outputs keep their names: the float producer's output is renamed, its DQ takes
    # the name.
    for t in names:
        if t not in graph_outputs:
            continue
        for n2 in out_nodes:
            for i, o in enumerate(n2.output):
                if o == t:
                    n2.output[i] = t + "_float"
        for nd in new_nodes:
            for i, x in enumerate(nd.input):
                if x == t:
                    nd.input[i] = t + "_float"
            for i, o in enumerate(nd.output):
                if o == t + "_dequantized":
                    nd.output[i] = t

    used = {x for n2 in out_nodes + new_nodes for x in n2.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes + out_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    del g.value_info[:]
    # Topological order: each Q/DQ right where its input is ready.
    order, ready = [], {i.name for i in g.input} | {t.name for t in g.initializer}
    pending = list(g.node)
    while pending:
        rest = []
        for n in pending:
            if all((not x) or x in ready for x in n.input):
                order.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            sys.exit("make_qdq_model.py: cannot order the nodes (a cycle?)")
        pending = rest
    del g.node[:]
    g.node.extend(order)
    if model.opset_import[0].version < 13:
        model.opset_import[0].version = 13
    onnx.checker.check_model(model)
    onnx.save(model, a.output)
    print(f"{a.output}: {len(names)} activations with Q/DQ, "
          f"{sum(1 for n in order if n.op_type in ('Conv', 'Gemm'))} conv/gemm layers with int8 weights")


if __name__ == "__main__":
    main()
