#!/usr/bin/env bash
# Runs every model in CACHE_DIR/models through lithe and through ONNX Runtime on the same
# deterministic inputs, and compares the outputs.
#
#   tests/models/run_model_checks.sh LITHE_BIN CACHE_DIR [MODEL ...]
#
# MODEL names (e.g. resnet50) restrict the run; default: every CACHE_DIR/models/*.onnx.
# Per model, under CACHE_DIR/checks/<model>/:
#   inputs/  generated once by ort_run.js --gen-inputs (seeded; cached): uniform [0,1)
#            noise, except a synthetic text-like page for ppocr_det (--pattern text)
#   ort/     ONNX Runtime's outputs (cached; redone when the model file, the inputs or the
#            onnxruntime-node version change)
#   lithe/   `LITHE_BIN run MODEL --input NAME=FILE.npy ... --output-dir lithe/` (always
#            redone), its log in lithe.log, the comparison in compare.log
# Prints a table and a last line `N passed, M failed` (M counts models that failed or
# errored). Exit 0 when all pass, 1 otherwise, 2 on usage errors, 77 (skip) when there
# is no model (run scripts/fetch_models.sh first).
# Environment: LITHE_CHECK_SEED (1), LITHE_CHECK_TIMEOUT (seconds per lithe run, 600),
# LITHE_MIN_COSINE (0.9999), LITHE_MAX_REL_ABS (1e-3), PYTHON (a python3 with numpy).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ]; then
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
fi
LITHE="$1"; CACHE="$2"; shift 2
SEED="${LITHE_CHECK_SEED:-1}"
TIMEOUT="${LITHE_CHECK_TIMEOUT:-600}"
MIN_COS="${LITHE_MIN_COSINE:-0.9999}"
MAX_REL="${LITHE_MAX_REL_ABS:-1e-3}"
# Optimized engine vs the unoptimized reference run (the build phase must not change results).
EQ_COS="${LITHE_EQ_MIN_COSINE:-0.99999}"
EQ_REL="${LITHE_EQ_MAX_REL_ABS:-1e-4}"

# Input shapes for the dynamic dimensions of the known models.
shape_args() {
  case "$1" in
    ppocr_det) echo "x=1x3x640x640" ;;
    ppocr_rec) echo "x=1x3x48x320" ;;
    ppocr_cls) echo "x=1x3x48x192" ;;
    resnet50|mobilenet_v2|googlenet|squeezenet1_0|squeezenet1_1) echo "input=1x3x224x224" ;;
    *) echo "" ;;  # static shapes (e.g. blazeface)
  esac
}

# Extra input-generation options: the text detector gets a synthetic text-like page (on
# uniform noise its sigmoid output is all far tail, ~1e-5, where ONNX Runtime's
# approximate logistic flushes to 0 and the comparison would measure that, not lithe).
gen_args() {
  case "$1" in
    ppocr_det|ppocr_cls) echo "--pattern text" ;;
    *) echo "" ;;
  esac
}

if [ -z "${PYTHON:-}" ]; then
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy' >/dev/null 2>&1; then PYTHON="$p"; break; fi
  done
fi
[ -n "${PYTHON:-}" ] || { echo "run_model_checks.sh: no python3 with numpy found (set PYTHON)" >&2; exit 2; }

models=()
if [ $# -gt 0 ]; then
  for m in "$@"; do
    m="${m%.onnx}"
    if [ -f "$CACHE/models/$m.onnx" ]; then models+=("$m")
    else echo "run_model_checks.sh: no $CACHE/models/$m.onnx" >&2; exit 2; fi
  done
else
  for f in "$CACHE"/models/*.onnx; do
    [ -e "$f" ] && models+=("$(basename "$f" .onnx)")
  done
fi
if [ ${#models[@]} -eq 0 ]; then
  echo "run_model_checks.sh: no models in $CACHE/models (run scripts/fetch_models.sh $CACHE); skipping"
  exit 77
fi
if [ ! -x "$LITHE" ]; then
  echo "run_model_checks.sh: lithe binary '$LITHE' not found or not executable" >&2
  exit 2
fi
LITHE="$(cd "$(dirname "$LITHE")" && pwd)/$(basename "$LITHE")"
CACHE="$(cd "$CACHE" && pwd)"

ORT_VERSION="$(cd "$HERE" && node -p "require('onnxruntime-node/package.json').version" 2>/dev/null || echo none)"

now_ms() { date +%s%3N; }

passed=0; failed=0
rows=()
for m in "${models[@]}"; do
  model="$CACHE/models/$m.onnx"
  work="$CACHE/checks/$m"
  mkdir -p "$work"
  read -r -a shapes <<<"$(shape_args "$m")"
  shape_opts=()
  for s in "${shapes[@]}"; do shape_opts+=(--shape "$s"); done
  read -r -a gen_opts <<<"$(gen_args "$m")"
  model_sum="$(sha256sum "$model" | cut -d' ' -f1)"
  echo "== $m"

  # 1. inputs (cached)
  in_stamp="model=$model_sum seed=$SEED shapes=${shapes[*]:-} gen=${gen_opts[*]:-}"
  if [ "$(cat "$work/inputs/.stamp" 2>/dev/null)" != "$in_stamp" ]; then
    rm -rf "$work/inputs" "$work/inputs.tmp" "$work/ort"
    if ! node "$HERE/ort_run.js" "$model" --gen-inputs "$work/inputs.tmp" --seed "$SEED" "${shape_opts[@]}" "${gen_opts[@]}" >"$work/gen.log" 2>&1; then
      rows+=("$m|ERROR|input generation failed: $(tail -n1 "$work/gen.log")|||")
      failed=$((failed + 1)); continue
    fi
    printf '%s' "$in_stamp" >"$work/inputs.tmp/.stamp"
    mv "$work/inputs.tmp" "$work/inputs"
  fi
  in_args=()
  while IFS= read -r line; do
    [ -n "$line" ] && in_args+=("${line%%=*}=$work/inputs/${line#*=}")
  done <"$work/inputs/inputs.args"

  # 2. ONNX Runtime reference (cached)
  ort_stamp="$in_stamp ort=$ORT_VERSION"
  if [ "$(cat "$work/ort/.stamp" 2>/dev/null)" != "$ort_stamp" ]; then
    rm -rf "$work/ort" "$work/ort.tmp"
    if ! node "$HERE/ort_run.js" "$model" "$work/ort.tmp" "${in_args[@]}" >"$work/ort.log" 2>&1; then
      rows+=("$m|ERROR|ONNX Runtime failed: $(tail -n1 "$work/ort.log")|||")
      failed=$((failed + 1)); continue
    fi
    printf '%s' "$ort_stamp" >"$work/ort.tmp/.stamp"
    mv "$work/ort.tmp" "$work/ort"
  fi

  # 3. lithe: the unoptimized reference run of the ONNX file, then `lithe build` (passes,
  #    memory plan, engine file) and a run of the engine.
  run_lithe() {  # run_lithe LOG OUTDIR ARGS... ; sets rc
    rm -rf "$2"
    mkdir -p "$2"
    local log="$1" out="$2"
    shift 2
    local cmd=("$@")
    for a in "${in_args[@]}"; do cmd+=(--input "$a"); done
    timeout "$TIMEOUT" "${cmd[@]}" --output-dir "$out" >"$log" 2>&1
    rc=$?
  }
  fail_row() {  # fail_row WHAT LOG
    local why="exit $rc"; [ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s"
    local last
    last="$(grep -v '^[[:space:]]*$' "$2" | tail -n1 | cut -c1-160)"
    rows+=("$m|ERROR|$1 $why: $last|||$ms")
    failed=$((failed + 1))
  }
  t0=$(now_ms)
  run_lithe "$work/lithe_ref.log" "$work/lithe_ref" "$LITHE" run "$model" --no-optimize
  ms=$(( $(now_ms) - t0 ))
  if [ $rc -ne 0 ]; then fail_row "lithe (reference)" "$work/lithe_ref.log"; continue; fi
  build_cmd=("$LITHE" build "$model" -o "$work/model.lithe")
  for s in "${shapes[@]}"; do build_cmd+=(--input-shape "$s"); done
  timeout "$TIMEOUT" "${build_cmd[@]}" >"$work/build.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then fail_row "lithe build" "$work/build.log"; continue; fi
  run_lithe "$work/lithe.log" "$work/lithe" "$LITHE" run "$work/model.lithe"
  if [ $rc -ne 0 ]; then fail_row "lithe (engine)" "$work/lithe.log"; continue; fi

  # 4. compare: the reference run against ONNX Runtime, and the engine (optimized graph,
  #    planned memory) against the reference run with the build phase's tighter bounds.
  "$PYTHON" "$HERE/compare_npy.py" "$work/ort" "$work/lithe_ref" --min-cosine "$MIN_COS" --max-rel-abs "$MAX_REL" >"$work/compare.log" 2>&1
  rc=$?
  "$PYTHON" "$HERE/compare_npy.py" "$work/lithe_ref" "$work/lithe" --min-cosine "$EQ_COS" --max-rel-abs "$EQ_REL" >"$work/equivalence.log" 2>&1
  rc_eq=$?
  summary="$(grep '^summary:' "$work/compare.log" | tail -n1)"
  read -r _ nout _ nfail _ _ mincos _ worst <<<"${summary//,/}"
  eq_summary="$(grep '^summary:' "$work/equivalence.log" | tail -n1)"
  read -r _ _ _ _ _ _ eq_cos _ eq_worst <<<"${eq_summary//,/}"
  size_ratio="$("$PYTHON" -c "import os,sys; print('%.3f' % (os.path.getsize(sys.argv[1]) / os.path.getsize(sys.argv[2])))" "$work/model.lithe" "$model")"
  nodes="$(grep -m1 '^nodes:' "$work/build.log" | sed 's/^nodes: //; s/ (.*//')"
  detail="${nout:-?} outputs; engine vs reference: cosine ${eq_cos:-?}, rel err ${eq_worst:-?}; engine ${size_ratio}x ONNX; nodes $nodes"
  if [ $rc -eq 0 ] && [ $rc_eq -eq 0 ]; then
    rows+=("$m|PASS|$detail|${mincos:-}|${worst:-}|$ms")
    passed=$((passed + 1))
  else
    log="$work/compare.log"; [ $rc -eq 0 ] && log="$work/equivalence.log"
    note="$(grep -m1 'FAIL' "$log" | sed 's/  */ /g' | cut -c1-160)"
    [ -n "$note" ] || note="$(tail -n1 "$log")"
    rows+=("$m|FAIL|$(basename "$log" .log): $note; $detail|${mincos:-}|${worst:-}|$ms")
    failed=$((failed + 1))
  fi
done

printf '\n%-16s %-6s %12s %13s %9s  %s\n' model result min_cosine worst_rel_err lithe_ms detail
for r in "${rows[@]}"; do
  IFS='|' read -r m res detail mincos worst ms <<<"$r"
  printf '%-16s %-6s %12s %13s %9s  %s\n' "$m" "$res" "${mincos:--}" "${worst:--}" "${ms:--}" "$detail"
done
echo "(logs and outputs under $CACHE/checks/<model>/; seed $SEED; reference vs ONNX Runtime: cosine >= $MIN_COS, max abs err <= $MAX_REL * range; engine vs reference: cosine >= $EQ_COS, max abs err <= $EQ_REL * range; onnxruntime-node $ORT_VERSION; lithe_ms is the reference run)"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
