#!/usr/bin/env bash
# lithe-run (runtime only) against `lithe run` on the same engine files: the same output
# lines and the same .npy files byte for byte, at 1 and 3 threads, FP32 and INT8 engines.
# Usage: test_runner.sh LITHE_BIN SOURCE_DIR LITHE_RUN_BIN
set -u
LITHE="$1"
SRC="$2"
RUNNER="$3"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failn=0
M="$SRC/examples/tiny_cnn.onnx"
"$LITHE" build "$M" -o "$T/fp32.lithe" >/dev/null || exit 1
"$LITHE" build "$M" -o "$T/int8.lithe" --precision int8 --calib random --calib-samples 4 >/dev/null ||
  exit 1
for e in fp32 int8; do
  for t in 1 3; do
    "$LITHE" run "$T/$e.lithe" --random-input --seed 7 --threads "$t" -o "$T/a_$e$t" >"$T/a.txt" || exit 1
    "$RUNNER" "$T/$e.lithe" --random-input --seed 7 --threads "$t" -o "$T/b_$e$t" >"$T/b.txt" || exit 1
    n=$(ls "$T/a_$e$t" | wc -l)
    if [ "$n" -lt 1 ] || ! diff -r "$T/a_$e$t" "$T/b_$e$t" >/dev/null ||
       ! diff <(grep '^output' "$T/a.txt") <(grep '^output' "$T/b.txt") >/dev/null; then
      echo "FAIL $e, $t thread(s): lithe-run differs from lithe run"
      failn=$((failn + 1))
    else
      echo "ok   $e, $t thread(s): $n output file(s) identical; $(grep -m1 '^output' "$T/b.txt")"
    fi
  done
done
# Winograd weights stored by the builder (default) or made at load (--no-winograd-weights):
# one portable transform, so the same output bytes; the stored ones make the file larger.
F="$SRC/examples/fashion_mnist_cnn.onnx"
"$LITHE" build "$F" -o "$T/wstored.lithe" >"$T/ws.txt" 2>&1 || exit 1
"$LITHE" build "$F" -o "$T/wload.lithe" --no-winograd-weights >/dev/null 2>&1 || exit 1
for e in wstored wload; do
  "$RUNNER" "$T/$e.lithe" --random-input --seed 3 --threads 2 -o "$T/o_$e" >/dev/null || exit 1
done
if ! grep -q "Winograd weights of [1-9]" "$T/ws.txt" ||
   [ "$(stat -c %s "$T/wstored.lithe")" -le "$(stat -c %s "$T/wload.lithe")" ] ||
   ! diff -r "$T/o_wstored" "$T/o_wload" >/dev/null; then
  echo "FAIL stored Winograd weights: not stored, or outputs differ from the load-time transform"
  failn=$((failn + 1))
else
  echo "ok   stored Winograd weights: outputs identical to the load-time transform"
fi
# What a device ships: no shared library beyond the C library's own (static by default).
if ldd "$RUNNER" 2>&1 | grep -qE 'protobuf|onnx|crypto|stb'; then
  echo "FAIL lithe-run links $(ldd "$RUNNER" | grep -oE 'lib(protobuf|onnx|crypto|stb)[^ ]*' | tr '\n' ' ')"
  failn=$((failn + 1))
fi
[ "$failn" -eq 0 ]
