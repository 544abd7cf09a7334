#!/usr/bin/python3
"""Exports standard torchvision architectures to ONNX with seeded random weights.

    /usr/bin/python3 scripts/export_torchvision.py CACHE_DIR [NAME ...]

Writes CACHE_DIR/models/<name>.onnx for resnet50, mobilenet_v2, googlenet and
squeezenet1_0 (or only the NAMEs given; squeezenet1_1 on request). Nothing is
downloaded: weights=None, and each model's parameters come from torchvision's own
initialisation after torch.manual_seed(0), so a model is the same whichever others are
exported (googlenet: aux_logits=False, init_weights=True).

BatchNorm statistics are then re-estimated on random inputs (running stats reset,
cumulative average over CALIB_BATCHES train-mode passes of CALIB_BATCH uniform [0,1)
images, drawn from the same seeded stream). Without that, eval-mode BatchNorm with its
initial statistics (mean 0, var 1) lets activations vanish in the deeper nets: the
MobileNetV2 logits come out ~1e-9 and GoogLeNet's are its classifier bias alone
(+-1/32), so a comparison would exercise almost nothing. After it every model has
O(0.1..1) logits that depend on the whole network. SqueezeNet has no BatchNorm.

Then eval mode, input "input" 1x3x224x224 float32, output "output", opset 13, constant
folding on (the exporter folds BatchNormalization into Conv). The recipe is recorded in
the model's metadata ("lithe.export"); a model whose file exists with the same recipe
is skipped, one with another recipe is exported again. Needs Debian's python3-torch and
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


CALIB_BATCHES = 2
CALIB_BATCH = 4
RECIPE = f"seed0-weightsNone-bnrecal{CALIB_BATCHES}x{CALIB_BATCH}-opset13-v2"

MODELS = ["resnet50", "mobilenet_v2", "googlenet", "squeezenet1_0"]  # exported by default
KNOWN = MODELS + ["squeezenet1_1"]  # on request


def export(name, dest):
    import onnx
    import torch

    torch.manual_seed(0)
    model = build(name)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration passes
        model.train()
        with torch.no_grad():
            for _ in range(CALIB_BATCHES):
                model(torch.rand(CALIB_BATCH, 3, 224, 224))
    model.eval()
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
    with torch.no_grad():
        y = model(x)
    m = onnx.load(tmp)
    m.doc_string = f"torchvision {name}, seeded random weights, not trained ({RECIPE})"
    onnx.helper.set_model_props(m, {"lithe.export": RECIPE})
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    os.replace(tmp, dest)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"exported {name}: {os.path.getsize(dest)} bytes, {len(m.graph.node)} nodes, "
          f"ops {','.join(ops)}, logits [{y.min().item():.3g}, {y.max().item():.3g}] std {y.std().item():.3g} "
          f"({time.time() - t0:.1f} s)")


def recipe_of(path):
    import onnx

    try:
        m = onnx.load(path)
    except Exception:
        return None
    return {p.key: p.value for p in m.metadata_props}.get("lithe.export")


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
    todo = [n for n in names if recipe_of(os.path.join(out, n + ".onnx")) != RECIPE]
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
