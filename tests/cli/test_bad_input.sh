#!/usr/bin/env bash
# The CLI's bad-input contract: every case exits with code 2, prints exactly one line on
# stderr that names the file/node/tensor, and writes no output files.
# Usage: test_bad_input.sh LITHE_BIN SOURCE_DIR [LITHE_RUN_BIN]
set -u
LITHE="$1"
SRC="$2"
RUNNER="${3:-}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
failn=0

check() {  # check NAME EXPECTED_SUBSTRING -- command...
  local name="$1" want="$2"
  shift 3
  rm -rf "$T/out"
  timeout 20 "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  local lines
  lines=$(grep -c '' "$T/stderr")
  local outputs
  outputs=$(ls -A "$T/out" 2>/dev/null | wc -l)
  if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$want" "$T/stderr" || [ "$outputs" -ne 0 ]; then
    echo "FAIL $name: rc=$rc lines=$lines stderr: $(head -c 400 "$T/stderr")"
    failn=$((failn + 1))
  else
    echo "ok   $name: $(cat "$T/stderr")"
    pass=$((pass + 1))
  fi
}

M="$SRC/examples/tiny_cnn.onnx"
head -c 1000 "$M" >"$T/truncated.onnx"
head -c 4096 /dev/urandom >"$T/random.onnx"
printf 'not numpy' >"$T/bad.npy"
/usr/bin/python3 - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto
d = sys.argv[1]
np.save(f"{d}/wrong_dtype.npy", np.zeros((1, 3, 64, 64), np.int32))
np.save(f"{d}/wrong_shape.npy", np.zeros((1, 3, 32, 32, 1), np.float32))
np.save(f"{d}/x.npy", np.zeros((1, 3, 64, 64), np.float32))
g = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], name="mystery")], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), f"{d}/unknown_op.onnx")
# lithe eval data: one valid 8x8 RGB PNG (zlib, no imaging library), an undecodable one.
import os, struct, zlib
def png(path, w, h):
    raw = b"".join(b"\0" + bytes([40, 80, 120]) * w for _ in range(h))
    chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
os.makedirs(f"{d}/imgs/cat"); os.makedirs(f"{d}/badimgs"); os.makedirs(f"{d}/empty")
png(f"{d}/imgs/cat/a.png", 8, 8)
open(f"{d}/badimgs/x.png", "w").write("not a png")
open(f"{d}/labels.txt", "w").write("cat/a.png\n")
# Explicit quantization with hostile parameters: a zero scale, a QLinearConv weight scale per
# channel of the wrong count, a weight DQ axis out of range.
I = helper.make_tensor
def qmodel(name, nodes, inits, x=[1, 2, 3, 3], y=[1, 4, 3, 3]):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), f"{d}/{name}.onnx")
common = [I("s", TensorProto.FLOAT, [], [0.05]), I("z", TensorProto.UINT8, [], [128]),
          I("w", TensorProto.INT8, [4, 2, 1, 1], [1, -2, 3, -4, 5, -6, 7, -8]),
          I("wz", TensorProto.INT8, [4], [0, 0, 0, 0])]
qmodel("qdq_zero_scale", [helper.make_node("QuantizeLinear", ["x", "s0", "z"], ["xq"], name="qx"),
                          helper.make_node("DequantizeLinear", ["xq", "s0", "z"], ["y"], name="dqx")],
       [I("s0", TensorProto.FLOAT, [], [0.0]), common[1]], y=[1, 2, 3, 3])
qmodel("qlinear_bad_wscale", [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx"),
                              helper.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz3", "s", "z"], ["yq"], name="qc"),
                              helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"], name="dqy")],
       common + [I("ws", TensorProto.FLOAT, [3], [0.1, 0.1, 0.1]), I("wz3", TensorProto.INT8, [3], [0, 0, 0])])
qmodel("qdq_bad_axis", [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], name="dqw", axis=5),
                        helper.make_node("Conv", ["x", "wf"], ["y"], name="conv")],
       common + [I("ws", TensorProto.FLOAT, [4], [0.1, 0.1, 0.1, 0.1])])
PY

check missing-file "nothere.onnx: file not found" -- "$LITHE" run "$T/nothere.onnx" --random-input -o "$T/out"
check truncated "truncated.onnx" -- "$LITHE" run "$T/truncated.onnx" --random-input -o "$T/out"
check random-bytes "random.onnx" -- "$LITHE" run "$T/random.onnx" --random-input -o "$T/out"
check unknown-op "node 'mystery' (Frobnicate): unsupported operator Frobnicate (domain ai.onnx, opset 13)" -- "$LITHE" run "$T/unknown_op.onnx" --random-input -o "$T/out"
check unknown-flag "--bogus" -- "$LITHE" run "$M" --bogus
check no-subcommand "subcommand" -- "$LITHE"
check missing-input "input 'image'" -- "$LITHE" run "$M" -o "$T/out"
check wrong-input-name "'nope' is not an input of the model (inputs: image)" -- "$LITHE" run "$M" --input nope="$T/x.npy" --random-input -o "$T/out"
check wrong-dtype "expects float32, the file holds int32" -- "$LITHE" run "$M" --input image="$T/wrong_dtype.npy" -o "$T/out"
check wrong-rank "input 'image'" -- "$LITHE" run "$M" --input image="$T/wrong_shape.npy" -o "$T/out"
check bad-npy "bad.npy: not a .npy file" -- "$LITHE" run "$M" --input image="$T/bad.npy" -o "$T/out"
check missing-npy "none.npy: cannot open file" -- "$LITHE" run "$M" --input image="$T/none.npy" -o "$T/out"
check bad-shape-flag "--input-shape 'image=1xAx3'" -- "$LITHE" run "$M" --input-shape image=1xAx3 --random-input
check huge-shape "elements" -- "$LITHE" run "$M" --input-shape image=100000x3x100000x100000 --random-input
check bad-input-flag "expected NAME=FILE.npy" -- "$LITHE" run "$M" --input image
check zero-runs "--runs must be at least 1" -- "$LITHE" run "$M" --random-input --runs 0
check zero-threads "--threads must be between 1 and 256, got 0" -- "$LITHE" run "$M" --random-input --threads 0
check bad-isa "unknown ISA level 'sse9'" -- "$LITHE" run "$M" --random-input --isa sse9

# lithe eval
check eval-no-data "nothere: no such file or folder" -- "$LITHE" eval "$M" --data "$T/nothere"
check eval-empty-dir "no .jpg, .jpeg, .png or .npy files found" -- "$LITHE" eval "$M" --data "$T/empty"
check eval-bad-image "x.png: cannot decode image" -- "$LITHE" eval "$M" --data "$T/badimgs"
check eval-bad-resize "--resize '64': expected WIDTHxHEIGHT" -- "$LITHE" eval "$M" --data "$T/imgs" --resize 64
check eval-two-resizes "--resize and --resize-short exclude each other" -- "$LITHE" eval "$M" --data "$T/imgs" --resize 64x64 --resize-short 64
check eval-bad-layout "--layout 'nhcw': expected nchw or nhwc" -- "$LITHE" eval "$M" --data "$T/imgs" --layout nhcw
check eval-bad-scale "--scale '1/x': expected a number" -- "$LITHE" eval "$M" --data "$T/imgs" --scale 1/x
check eval-mean-count "--mean/--std: 2 values for a 3-channel input" -- "$LITHE" eval "$M" --data "$T/imgs" --mean 1,2
check eval-labels-missing "nolabels.txt: cannot open --labels file" -- "$LITHE" eval "$M" --data "$T/imgs" --labels "$T/nolabels.txt"
check eval-labels-line "labels.txt:1: expected 'PATH LABEL'" -- "$LITHE" eval "$M" --data "$T/imgs" --labels "$T/labels.txt"
check eval-bad-reference "nothere.onnx: file not found" -- "$LITHE" eval "$M" --data "$T/imgs" --reference "$T/nothere.onnx"
check eval-bad-output "--output 'nope' is not an output of the model" -- "$LITHE" eval "$M" --data "$T/imgs" --output nope
# lithe compare
check compare-no-inputs "no inputs: give --input NAME=FILE.npy" -- "$LITHE" compare "$M" "$M"
check compare-missing-b "nothere.onnx: file not found" -- "$LITHE" compare "$M" "$T/nothere.onnx" --random-input
check compare-bad-input-flag "expected NAME=FILE.npy" -- "$LITHE" compare "$M" "$M" --input image
check compare-wrong-name "'nope' is not an input of the model" -- "$LITHE" compare "$M" "$M" --input nope="$T/x.npy"
check compare-bad-npy "bad.npy: not a .npy file" -- "$LITHE" compare "$M" "$M" --input image="$T/bad.npy"
check compare-bad-jump "--jump-db must be positive" -- "$LITHE" compare "$M" "$M" --random-input --jump-db 0
check compare-unknown-flag "--bogus" -- "$LITHE" compare "$M" "$M" --bogus
# lithe bench
check bench-missing-file "nothere.onnx: file not found" -- "$LITHE" bench "$T/nothere.onnx"
check bench-no-model "models is required" -- "$LITHE" bench
check bench-unknown-flag "--bogus" -- "$LITHE" bench "$M" --bogus
check bench-zero-runs "--runs must be at least 1, got 0" -- "$LITHE" bench "$M" --runs 0
check bench-bad-duration "--duration must be more than 0" -- "$LITHE" bench "$M" --duration -1
check bench-zero-contexts "--contexts must be between 1 and 256, got 0" -- "$LITHE" bench "$M" --contexts 0
check bench-zero-threads "--threads must be between 1 and 256, got 0" -- "$LITHE" bench "$M" --threads 0
check bench-bad-warmup "--warmup must be at least 0, got -1" -- "$LITHE" bench "$M" --warmup -1
check bench-bad-isa "unknown ISA level 'sse9'" -- "$LITHE" bench "$M" --isa sse9
check bench-wrong-name "'nope' is not an input of the model (inputs: image)" -- "$LITHE" bench "$M" --input-shape nope=1x3
check bench-wrong-name-models "'nope' is not an input of any model given (inputs: image)" -- "$LITHE" bench "$M" "$M" --input-shape nope=1x3
check bench-wrong-dtype "expects float32, the file holds int32" -- "$LITHE" bench "$M" --input image="$T/wrong_dtype.npy"
check bench-bad-npy "bad.npy: not a .npy file" -- "$LITHE" bench "$M" --input image="$T/bad.npy"
check bench-truncated "truncated.onnx" -- "$LITHE" bench "$M" "$T/truncated.onnx"
# lithe build --precision (no engine is written: the check comes before the import)
check build-bad-precision "unknown precision 'fp8' (expected fp32" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision fp8
# --precision best: data, and the budget (--max-accuracy-drop) only with best, finite, >= 0
check best-no-calib "--precision best needs calibration data: --calib DIR" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision best
check best-drop-without-best "--max-accuracy-drop needs --precision best (got --precision int8)" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib random --max-accuracy-drop 1
check best-drop-negative "--max-accuracy-drop must be a finite number >= 0, got '-1'" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision best --calib random --max-accuracy-drop=-1
check best-drop-nan "--max-accuracy-drop must be a finite number >= 0, got 'nan'" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision best --calib random --max-accuracy-drop nan
check best-drop-text "--max-accuracy-drop must be a finite number >= 0, got '1x'" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision best --calib random --max-accuracy-drop 1x
check build-precision-missing "--precision" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision
# --emit-qdq-onnx exports what an INT8 build quantized: only with --precision int8
check qdq-without-int8 "--emit-qdq-onnx needs --precision int8 (got --precision fp32)" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --emit-qdq-onnx "$T/out/m.qdq.onnx"
check qdq-missing-file "--emit-qdq-onnx" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib random --emit-qdq-onnx
# --precision int8: calibration flags and data (no engine is written either)
mkdir -p "$T/calib"
cp "$T/x.npy" "$T/calib/a.npy" 2>/dev/null || true
echo "not json" >"$T/bad.calib"
check int8-no-calib "precision int8 needs calibration data" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8
check qdq-zero-scale "node 'qx' (QuantizeLinear)" -- "$LITHE" build "$T/qdq_zero_scale.onnx" -o "$T/out/m.lithe"
check qlinear-bad-wscale "node 'qc' (QLinearConv)" -- "$LITHE" build "$T/qlinear_bad_wscale.onnx" -o "$T/out/m.lithe"
check qdq-bad-axis "axis 5" -- "$LITHE" build "$T/qdq_bad_axis.onnx" -o "$T/out/m.lithe"
check int8-bad-method "unknown calibration method 'bogus' (expected minmax, percentile, entropy or mse)" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/calib" --calib-method bogus
check int8-missing-data "nothere: no such file or folder" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/nothere"
check int8-not-data "not a .jpg, .jpeg, .png or .npy file" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/bad.calib"
check int8-zero-samples "--calib-samples must be between 1 and 1000000, got 0" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/calib" --calib-samples 0
check int8-bad-percentile "calibration percentile 30 must be in (50, 100]" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/calib" --calib-method percentile --calib-percentile 30
check int8-bad-cache "bad.calib: calibration cache is not valid JSON" -- "$LITHE" build "$M" -o "$T/out/m.lithe" --precision int8 --calib "$T/calib" --calib-cache "$T/bad.calib"

# lithe-run: engine files only
if [ -n "$RUNNER" ]; then
  "$LITHE" build "$M" -o "$T/m.lithe" >/dev/null || { echo "FAIL: lithe build $M"; exit 1; }
  head -c 3000 "$T/m.lithe" >"$T/truncated.lithe"
  check runner-onnx "tiny_cnn.onnx: not a lithe engine file" -- "$RUNNER" "$M" --random-input -o "$T/out"
  check runner-missing "nothere.lithe: cannot open the engine file" -- "$RUNNER" "$T/nothere.lithe" --random-input -o "$T/out"
  check runner-truncated "truncated.lithe" -- "$RUNNER" "$T/truncated.lithe" --random-input -o "$T/out"
  check runner-random "random.onnx" -- "$RUNNER" "$T/random.onnx" --random-input -o "$T/out"
  check runner-no-model "model is required" -- "$RUNNER"
  check runner-unknown-flag "--bogus" -- "$RUNNER" "$T/m.lithe" --bogus
  check runner-onnx-flag "--no-optimize" -- "$RUNNER" "$T/m.lithe" --no-optimize
  check runner-missing-input "input 'image'" -- "$RUNNER" "$T/m.lithe" -o "$T/out"
  check runner-wrong-shape "was built for shape 1x3x64x64, not 1x3x32x32" -- "$RUNNER" "$T/m.lithe" --input-shape image=1x3x32x32 --random-input -o "$T/out"
  check runner-wrong-dtype "expects float32, the file holds int32" -- "$RUNNER" "$T/m.lithe" --input image="$T/wrong_dtype.npy" -o "$T/out"
  check runner-zero-threads "--threads must be between 1 and 256, got 0" -- "$RUNNER" "$T/m.lithe" --random-input --threads 0
fi

echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
