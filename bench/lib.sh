# Shared by bench/compare_ort.sh and bench/startup.sh (sourced, not run).
# Sets REPO, HERE; provides option parsing of the common options, the models' input shapes,
# engine builds, timing and peak-RSS helpers.

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

# Input shapes for the dynamic dimensions of the known models (as tests/models/run_model_checks.sh).
shape_args() {
  case "$1" in
    ppocr_det) echo "x=1x3x640x640" ;;
    ppocr_rec) echo "x=1x3x48x320" ;;
    ppocr_cls) echo "x=1x3x48x192" ;;
    resnet50|mobilenet_v2|googlenet|squeezenet1_0|squeezenet1_1) echo "input=1x3x224x224" ;;
    *) echo "" ;;  # static shapes (blazeface)
  esac
}

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

# Defaults of the common options; the scripts override some before calling parse_common.
LITHE="${LITHE:-}"
CACHE="${LITHE_MODELS_CACHE:-$REPO/models-cache}"
WORK=""
MODELS=""
THREADS="1 2"
BUILD_ARGS=""  # extra `lithe build` flags, e.g. "--precision int8 --calib random --calib-samples 8"

# parse_common "$@": consumes the common options; the rest is left in REST (array).
parse_common() {
  REST=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --lithe) LITHE="$2"; shift 2 ;;
      --cache) CACHE="$2"; shift 2 ;;
      --work) WORK="$2"; shift 2 ;;
      --build-args) BUILD_ARGS="$2"; shift 2 ;;
      --models) MODELS="$2"; shift 2 ;;
      --threads) THREADS="$2"; shift 2 ;;
      *) REST+=("$1"); shift ;;
    esac
  done
}

# After parse_common: resolves LITHE, CACHE, WORK and the model list (array MODEL_LIST).
setup_common() {
  if [ -z "$LITHE" ]; then
    for c in "$REPO/build/lithe" "$REPO/build-bench/lithe"; do
      [ -x "$c" ] && { LITHE="$c"; break; }
    done
  fi
  [ -n "$LITHE" ] && [ -x "$LITHE" ] || die "no lithe binary (build it, or give --lithe PATH)"
  LITHE="$(cd "$(dirname "$LITHE")" && pwd)/$(basename "$LITHE")"
  [ -d "$CACHE/models" ] || die "no $CACHE/models (run scripts/fetch_models.sh)"
  CACHE="$(cd "$CACHE" && pwd)"
  [ -n "$WORK" ] || WORK="$CACHE/bench"
  mkdir -p "$WORK"
  WORK="$(cd "$WORK" && pwd)"
  if [ "${NEED_ORT:-1}" = 1 ]; then  # the ORT comparisons (memory_bound.sh runs lithe only)
    [ -x /usr/bin/time ] || die "/usr/bin/time not found (apt install time): needed for peak RSS"
    command -v node >/dev/null 2>&1 || die "node not found"
    node -e "require(require.resolve('onnxruntime-node', {paths: ['$REPO/tests/models']}))" 2>/dev/null ||
      die "onnxruntime-node not installed in tests/models (run scripts/fetch_models.sh)"
  fi
  MODEL_LIST=()
  if [ -n "$MODELS" ]; then
    for m in $MODELS; do
      m="${m%.onnx}"
      [ -f "$CACHE/models/$m.onnx" ] || die "no $CACHE/models/$m.onnx"
      MODEL_LIST+=("$m")
    done
  else
    for f in "$CACHE"/models/*.onnx; do
      [ -e "$f" ] && MODEL_LIST+=("$(basename "$f" .onnx)")
    done
  fi
  [ ${#MODEL_LIST[@]} -gt 0 ] || die "no models in $CACHE/models (run scripts/fetch_models.sh)"
}

# build_engine MODEL: builds $WORK/MODEL.lithe (once per script run); returns 1 on failure
# (the log is $WORK/MODEL.build.log).
build_engine() {
  local m="$1" s
  local cmd=("$LITHE" build "$CACHE/models/$m.onnx" -o "$WORK/$m.lithe")
  for s in $(shape_args "$m"); do cmd+=(--input-shape "$s"); done
  # shellcheck disable=SC2206
  [ -n "$BUILD_ARGS" ] && cmd+=($BUILD_ARGS)
  "${cmd[@]}" >"$WORK/$m.build.log" 2>&1
}

# ort_shape_opts MODEL: prints --shape options for ort_bench.js.
ort_shape_opts() {
  local s
  for s in $(shape_args "$1"); do printf -- '--shape %s ' "$s"; done
}

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME).
now_us() { local t="${EPOCHREALTIME/./}"; echo "${t/,/}"; }

# parse_lithe_run LOG: prints "median_ms first_ms load_ms isa" from `lithe run`'s last line
# ("load X ms, first run Y ms, run (median of N) Z ms, min W ms, T thread(s), ISA kernels").
parse_lithe_run() {
  sed -n 's/^load \([0-9.]*\) ms, first run \([0-9.]*\) ms, run (median of [0-9]*) \([0-9.]*\) ms.*, \([A-Za-z0-9_]*\) kernels$/\3 \2 \1 \4/p' "$1" | tail -n1
}

# bare_node_rss_kb: peak RSS of `node -e 0` (what node itself costs, without ONNX Runtime).
bare_node_rss_kb() {
  local f="$WORK/.bare_node.rss" i vals=()
  for i in 1 2 3; do
    /usr/bin/time -f %M -o "$f" node -e 0 >/dev/null 2>&1 && vals+=("$(tail -n1 "$f")")
  done
  printf '%s\n' "${vals[@]}" | sort -n | sed -n 2p
}
