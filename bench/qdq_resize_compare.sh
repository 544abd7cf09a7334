#!/usr/bin/env bash
# INT8 linear Resize (lithe.QResizeLinearU8) against ONNX Runtime on the QDQ model the same
# build emits (DequantizeLinear -> Resize -> QuantizeLinear), on a small generated model
# x -> Conv -> Relu -> Resize(linear) -> Conv with outputs y, up (the Resize) and ar (its
# input), built with --precision int8 --calib random --emit-qdq-onnx, for several coordinate
# modes and scales. Prints per case: cosine and max |d| of lithe INT8 vs ORT (QDQ) on up and
# y; then the Resize alone: ORT's DQ -> Resize -> Q run on lithe's own input codes against
# lithe's output codes, and how many of the differing codes sit at a tie of the real result
# (k + 1/2 steps, where ORT's float DequantizeLinear lands on either side and lithe rounds to
# even). --check: exit 1 if a code differs away from a tie.
#
#   qdq_resize_compare.sh [--check] LITHE_BIN
#
# Exit 77 (skip) when ONNX Runtime's node_modules (tests/models) is absent.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
ORT="$SRC/tests/models/ort_run.js"
CHECK=0
[ "${1:-}" = --check ] && { CHECK=1; shift; }
[ $# -eq 1 ] || { echo "usage: qdq_resize_compare.sh [--check] LITHE_BIN" >&2; exit 2; }
LITHE="$(realpath "$1")"
if [ ! -d "$SRC/tests/models/node_modules/onnxruntime-node" ] || ! command -v node >/dev/null; then
  echo "qdq_resize_compare.sh: SKIP: ONNX Runtime (tests/models/node_modules) not installed"
  exit 77
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
status=0
for c in "half_pixel 1,1,2,2" "align_corners 1,1,2,2" "pytorch_half_pixel 1,1,1.5,2.5" \
  "asymmetric 1,1,0.5,0.75" "tf_half_pixel_for_nn 1,1,3,3"; do
  read -r coord scales <<<"$c"
  D="$WORK/$coord"
  mkdir -p "$D/lithe" "$D/qdq" "$D/iso" "$D/iso2"
  "$PY" - "$D/m.onnx" "$coord" "$scales" <<'PY'
import sys
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(3)
scales = [float(s) for s in sys.argv[3].split(",")]
H = 12
out = [int(np.floor(d * s)) for d, s in zip([1, 16, H, H], scales)]
inits = [numpy_helper.from_array((rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32), "w1"),
         numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b1"),
         numpy_helper.from_array((rng.standard_normal((4, 16, 1, 1)) * 0.3).astype(np.float32), "w2"),
         numpy_helper.from_array(np.array(scales, np.float32), "scales")]
nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["a"], ["ar"]),
         helper.make_node("Resize", ["ar", "", "scales"], ["up"], mode="linear",
                          coordinate_transformation_mode=sys.argv[2]),
         helper.make_node("Conv", ["up", "w2"], ["y"])]
vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
g = helper.make_graph(nodes, "resize8", [vi("x", [1, 8, H, H])],
                      [vi("y", [1, 4, out[2], out[3]]), vi("up", out), vi("ar", [1, 16, H, H])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
np.save(sys.argv[1] + ".in.npy", np.random.default_rng(9).standard_normal([1, 8, H, H]).astype(np.float32))
PY
  "$LITHE" build "$D/m.onnx" -o "$D/m8.lithe" --precision int8 --calib random --calib-samples 8 \
    --emit-qdq-onnx "$D/m.qdq.onnx" >"$D/build.log" 2>&1
  n="$("$LITHE" inspect "$D/m8.lithe" | grep -c QResizeLinearU8 || true)"
  "$LITHE" run "$D/m8.lithe" --input "x=$D/m.onnx.in.npy" --output-dir "$D/lithe" >/dev/null
  node "$ORT" "$D/m.qdq.onnx" "$D/qdq" "x=$D/m.onnx.in.npy" >/dev/null
  "$PY" - "$D" "$ORT" "$coord $scales" "$n" "$CHECK" <<'PY' || status=1
# The Resize alone: ORT runs DequantizeLinear -> Resize -> QuantizeLinear on lithe's own
# uint8 codes of the Resize input, and the same Resize on q - z (scale 1) to find the ties.
import os, subprocess, sys
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
d, ort, name, nodes_int8, check = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
cos = lambda a, b: float(a.ravel() @ b.ravel() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
cells = []
for f in ["up", "y"]:
    l = np.load(os.path.join(d, "lithe", f + ".npy")).astype(np.float64)
    q = np.load(os.path.join(d, "qdq", f + ".npy")).astype(np.float64)
    cells.append(f"{f} cos {cos(l, q):.6f} max|d| {np.abs(l - q).max():.4g}")
qdq = onnx.load(os.path.join(d, "m.qdq.onnx"))
init = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
rs = [n for n in qdq.graph.node if n.op_type == "Resize"][0]
attrs = {a.name: helper.get_attribute_value(a) for a in rs.attribute}
attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
s, z = float(init["ar/scale"]), int(init["ar/zero_point"])
codes = np.clip(np.round(np.load(os.path.join(d, "lithe", "ar.npy")).astype(np.float64) / s) + z, 0, 255).astype(np.uint8)
up = np.load(os.path.join(d, "lithe", "up.npy")).astype(np.float64)
lit = np.clip(np.round(up / s) + z, 0, 255).astype(int)

def run(tag, nodes, in_type, x, out_type, extra):
    g = helper.make_graph(nodes, tag, [helper.make_tensor_value_info("i", in_type, list(x.shape))],
                          [helper.make_tensor_value_info("o", out_type, list(up.shape))],
                          [numpy_helper.from_array(init["scales"], "scales")] + extra)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, os.path.join(d, tag + ".onnx"))
    np.save(os.path.join(d, tag + ".npy"), x)
    subprocess.run(["node", ort, os.path.join(d, tag + ".onnx"), os.path.join(d, tag),
                    "i=" + os.path.join(d, tag + ".npy")], check=True, stdout=subprocess.DEVNULL)
    return np.load(os.path.join(d, tag, "o.npy"))

ort_codes = run("iso", [helper.make_node("DequantizeLinear", ["i", "s", "z"], ["f"]),
                        helper.make_node("Resize", ["f", "", "scales"], ["r"], **attrs),
                        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["o"])],
                TensorProto.UINT8, codes, TensorProto.UINT8,
                [numpy_helper.from_array(np.array(s, np.float32), "s"),
                 numpy_helper.from_array(np.array(z, np.uint8), "z")]).astype(int)
steps = run("iso2", [helper.make_node("Resize", ["i", "", "scales"], ["o"], **attrs)],
            TensorProto.FLOAT, codes.astype(np.float32) - z, TensorProto.FLOAT, []).astype(np.float64)
tie = np.abs(steps - np.floor(steps) - 0.5) < 1e-4
diff = ort_codes != lit
print(f"{name:30s} QResizeLinearU8 nodes {nodes_int8}; lithe8~ortqdq: {'; '.join(cells)}\n"
      f"{'':30s} Resize alone: {diff.sum()} of {diff.size} codes differ (max {np.abs(ort_codes - lit).max()}), "
      f"{(diff & tie).sum()} at ties of the real result ({tie.sum()} ties), {(diff & ~tie).sum()} elsewhere")
if check and ((diff & ~tie).any() or nodes_int8 != "1" or np.abs(ort_codes - lit).max() > 1):
    print(f"{name}: FAIL")
    sys.exit(1)
PY
done
exit $status
