#!/usr/bin/env bash
# Top-1 of examples/fashion_mnist_cnn.onnx (scripts/train_fashion_mnist.py) on the 10,000
# Fashion-MNIST test images, through `lithe build` and `lithe eval --json`:
#
#   fashion_mnist.sh [--ort-tolerance P] [--calib N] LITHE_BIN CACHE_DIR MIN_TOP1 [BUILD_ARGS...]
#
# BUILD_ARGS go to `lithe build` (e.g. --precision fp16). --calib N writes the first N
# training images (cached like the test set) and adds `--calib DIR` to them (INT8 builds). Passes when top-1 >= MIN_TOP1 (a
# fraction, e.g. 0.89) and, when ONNX Runtime is installed (tests/models/node_modules, see
# README.md), when it is within P points (default 0.1) of ONNX Runtime's top-1 on the FP32
# ONNX model; without ONNX Runtime that check is skipped and said so.
# CACHE_DIR keeps the .npy images (scripts/fashion_mnist_data.py, rewritten when that script
# changes) and ONNX Runtime's figure (redone when the model or ort_eval.js changes), so only
# the first run pays for them. Exit 0 pass, 1 fail, 2 usage error. FASHION_MNIST_ORT_MODEL
# gives ONNX Runtime another model to score (default: the one lithe builds). FASHION_MNIST_MODEL
# overrides the model (e.g. a retrained one before it is committed).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
MODEL="${FASHION_MNIST_MODEL:-$SRC/examples/fashion_mnist_cnn.onnx}"
ORT_MODEL="${FASHION_MNIST_ORT_MODEL:-$MODEL}"

ORT_TOL=0.1
CALIB_N=0
while [ "${1:-}" = "--ort-tolerance" ] || [ "${1:-}" = "--calib" ]; do
  [ "$1" = "--ort-tolerance" ] && ORT_TOL="$2" || CALIB_N="$2"
  shift 2
done
if [ $# -lt 3 ]; then
  echo "usage: fashion_mnist.sh [--ort-tolerance P] [--calib N] LITHE_BIN CACHE_DIR MIN_TOP1 [BUILD_ARGS...]" >&2
  exit 2
fi
LITHE="$1"
CACHE="$2"
MIN_TOP1="$3"
shift 3

mkdir -p "$CACHE"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

# The data set, once per CACHE_DIR. Several cases may run at once under `ctest -j`: the lock
# lets one write it while the others wait.
DATA="$CACHE/test"
stamp="$(sha256sum "$SRC/scripts/fashion_mnist_data.py" | cut -c1-16) test 10000"
exec 9>"$CACHE/lock"
flock 9
if [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$DATA"
  "$PY" "$SRC/scripts/fashion_mnist_data.py" "$DATA" --split test >/dev/null
  echo "$stamp" >"$DATA/stamp"
fi
CALIB_ARGS=()
if [ "$CALIB_N" != 0 ]; then
  CALIB="$CACHE/calib-$CALIB_N"
  cstamp="$(sha256sum "$SRC/scripts/fashion_mnist_data.py" | cut -c1-16) train $CALIB_N"
  if [ "$(cat "$CALIB/stamp" 2>/dev/null)" != "$cstamp" ]; then
    rm -rf "$CALIB"
    "$PY" "$SRC/scripts/fashion_mnist_data.py" "$CALIB" --split train --count "$CALIB_N" >/dev/null
    echo "$cstamp" >"$CALIB/stamp"
  fi
  CALIB_ARGS=(--calib "$CALIB")
fi

# ONNX Runtime's top-1 on ORT_MODEL, cached by the model's and the script's hashes.
ort_top1=""
if command -v node >/dev/null 2>&1 && [ -d "$HERE/node_modules/onnxruntime-node" ]; then
  ort_key="$(cat "$ORT_MODEL" "$HERE/ort_eval.js" "$DATA/labels.txt" | sha256sum | cut -c1-16)"
  ort_json="$CACHE/ort-$ort_key.json"
  if [ ! -s "$ort_json" ]; then
    node "$HERE/ort_eval.js" "$ORT_MODEL" "$DATA" "$DATA/labels.txt" >"$T/ort.json"
    mv "$T/ort.json" "$ort_json"
  fi
  ort_top1="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["top1"])' "$ort_json")"
fi
flock -u 9

"$LITHE" build "$MODEL" -o "$T/model.lithe" "$@" "${CALIB_ARGS[@]+"${CALIB_ARGS[@]}"}" >"$T/build.log" 2>&1 ||
  { cat "$T/build.log"; echo "FAIL: lithe build $* failed" >&2; exit 1; }
start=$(date +%s.%N)
"$LITHE" eval "$T/model.lithe" --data "$DATA" --labels "$DATA/labels.txt" --json \
  >"$T/eval.json" 2>"$T/eval.err" ||
  { cat "$T/eval.err"; echo "FAIL: lithe eval failed" >&2; exit 1; }
end=$(date +%s.%N)

"$PY" - "$T/eval.json" "$MIN_TOP1" "$ort_top1" "$ORT_TOL" "$start" "$end" "$(basename "$ORT_MODEL")" "$*" <<'PY'
import json, sys
path, min_top1, ort, tol, start, end, ort_model, args = sys.argv[1:]
r = json.load(open(path))
top1 = r["top1"]
what = "build " + (args or "(fp32 defaults)")
print(f"fashion_mnist [{what}]: lithe top-1 {top1:.4f} ({r['top1_hits']}/{r['labelled']}), "
      f"eval {float(end) - float(start):.1f} s, median {r['latency_ms']['median']:.3f} ms/image "
      f"({r['isa']})")
ok = True
if r["labelled"] != 10000:
    print(f"FAIL: {r['labelled']} labelled samples, expected 10000")
    ok = False
if top1 < float(min_top1):
    print(f"FAIL: top-1 {top1:.4f} below {min_top1}")
    ok = False
if ort:
    diff = abs(top1 - float(ort)) * 100
    print(f"ONNX Runtime top-1 on {ort_model} {float(ort):.4f}: {diff:.2f} points apart "
          f"(at most {tol})")
    if diff > float(tol) + 1e-9:
        print(f"FAIL: {diff:.2f} points from ONNX Runtime")
        ok = False
else:
    print("ONNX Runtime check skipped (no tests/models/node_modules/onnxruntime-node; "
          "scripts/fetch_models.sh installs it)")
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
