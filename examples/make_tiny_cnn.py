#!/usr/bin/env python3
"""Writes examples/tiny_cnn.onnx: a small image classifier (Conv-BN-Relu blocks, a
depthwise conv, a residual Add, pooling, Gemm, Softmax) with seeded random weights, used by
the README quick start. Run with Debian's python3 (python3-onnx, python3-numpy)."""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(7)
inits, nodes = [], []


def w(name, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    s = scale if scale is not None else (2.0 / fan_in) ** 0.5
    inits.append(numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name))
    return name


def conv_bn_relu(x, cin, cout, k, stride, name, group=1):
    nodes.append(helper.make_node(
        "Conv", [x, w(name + ".w", cout, cin // group, k, k), w(name + ".b", cout, scale=0.1)],
        [name + ".conv"], kernel_shape=[k, k], strides=[stride, stride],
        pads=[k // 2] * 4, group=group, name=name))
    inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, cout).astype(np.float32), name + ".g"))
    inits.append(numpy_helper.from_array(rng.uniform(-0.1, 0.1, cout).astype(np.float32), name + ".beta"))
    inits.append(numpy_helper.from_array(rng.uniform(-0.1, 0.1, cout).astype(np.float32), name + ".mean"))
    inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, cout).astype(np.float32), name + ".var"))
    nodes.append(helper.make_node(
        "BatchNormalization", [name + ".conv", name + ".g", name + ".beta", name + ".mean", name + ".var"],
        [name + ".bn"], name=name + "_bn"))
    nodes.append(helper.make_node("Relu", [name + ".bn"], [name + ".out"], name=name + "_relu"))
    return name + ".out"


x = conv_bn_relu("image", 3, 16, 3, 2, "stem")              # 16x32x32
y = conv_bn_relu(x, 16, 16, 3, 1, "dw", group=16)           # depthwise
y = conv_bn_relu(y, 16, 16, 1, 1, "pw")
nodes.append(helper.make_node("Add", [x, y], ["res"], name="residual"))
z = conv_bn_relu("res", 16, 32, 3, 2, "down")               # 32x16x16
nodes.append(helper.make_node("MaxPool", [z], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"))
nodes.append(helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"))
nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"))
nodes.append(helper.make_node("Gemm", ["flat", w("fc.w", 10, 32), w("fc.b", 10, scale=0.1)], ["logits"],
                              transB=1, name="fc"))
nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"))

graph = helper.make_graph(
    nodes, "tiny_cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 64, 64])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="lithe-examples")
onnx.checker.check_model(model)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_cnn.onnx")
onnx.save(model, out)
print("wrote", out)
