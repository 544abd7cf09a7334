#!/usr/bin/python3
"""Exports standard torchvision architectures to ONNX with seeded random weights.

    /usr/bin/python3 scripts/export_torchvision.py CACHE_DIR [NAME ...]

Writes CACHE_DIR/models/<name>.onnx for resnet50, mobilenet_v2, googlenet and
squeezenet1_0 (or only the NAMEs given; squeezenet1_1 on request). Nothing is downloaded: weights=None, and each
model's parameters come from torchvision's own initialisation after
torch.manual_seed(0), so a model is the same whichever others are exported. Eval mode,
input "input" 1x3x224x224 float32, output "output", opset 13, constant folding on.
Idempotent: a model whose file exists is skipped. Needs Debian's python3-torch and
python3-torchvision (LITHE_WITH_TORCH=1 scripts/setup.sh installs them).
"""
import os
import sys
import time


def build(name):
    import torchvision.models as tvm

    if name == "resnet50":
        return tvm.resnet50(weights=None)
    if name == "mobilenet_v2":
        return tvm.mobilenet_v2(weights=None)
    if name == "googlenet":
        return tvm.googlenet(weights=None, aux_logits=False, init_weights=True)
    if name == "squeezenet1_0":
        return tvm.squeezenet1_0(weights=None)
    if name == "squeezenet1_1":
        return tvm.squeezenet1_1(weights=None)
    raise SystemExit(f"export_torchvision.py: unknown model {name}")


MODELS = ["resnet50", "mobilenet_v2", "googlenet", "squeezenet1_0"]  # exported by default
KNOWN = MODELS + ["squeezenet1_1"]  # on request


def export(name, dest):
    import onnx
    import torch

    torch.manual_seed(0)
    model = build(name).eval()
    x = torch.rand(1, 3, 224, 224)
    tmp = dest + ".tmp"
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(
            model,
            x,
            tmp,
            opset_version=13,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    os.replace(tmp, dest)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"exported {name}: {os.path.getsize(dest)} bytes, {len(m.graph.node)} nodes, "
          f"ops {','.join(ops)} ({time.time() - t0:.1f} s)")


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    out = os.path.join(argv[1], "models")
    os.makedirs(out, exist_ok=True)
    names = argv[2:] or MODELS
    for name in names:
        if name not in KNOWN:
            raise SystemExit(f"export_torchvision.py: unknown model {name} (known: {' '.join(KNOWN)})")
    todo = [n for n in names if not os.path.exists(os.path.join(out, n + ".onnx"))]
    for name in names:
        if name not in todo:
            print(f"have {name}.onnx")
    if not todo:
        return 0
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in todo:
        export(name, os.path.join(out, name + ".onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
