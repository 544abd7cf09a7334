#!/usr/bin/env bash
# Speed of lithe against ONNX Runtime (onnxruntime-node 1.30, CPU) on the real models, same
# input shape, same thread count, processes interleaved.
#
#   bench/compare_ort.sh [--threads "1 2"] [--rounds R] [--runs N] [--warmup W]
#                        [--models "resnet50 mobilenet_v2 ..."] [--quick]
#                        [--lithe PATH] [--kernels-bench PATH] [--peak GFLOPS]
#                        [--cache DIR] [--work DIR] [--build-args "LITHE BUILD FLAGS"]
#
# --build-args passes flags to `lithe build`, e.g. an INT8 engine against ONNX Runtime FP32:
#   bench/compare_ort.sh --build-args "--precision int8 --calib random --calib-samples 8"
#
# Per model: `lithe build MODEL -o ENGINE [--input-shape ...]` once, `lithe run ENGINE
# --profile` once for the model's MACs, then for each thread count T, R rounds of one lithe
# process (`lithe run ENGINE --random-input --warmup W --runs N --threads T`) and one ORT
# process (`node bench/ort_bench.js MODEL --warmup W --runs N --threads T`), alternating which
# goes first. Defaults: threads "1 2", 5 rounds x 5 runs (25 timed runs per engine), warm-up 2;
# --quick: 3 rounds x 3 runs, warm-up 1. Each process runs under /usr/bin/time for its peak RSS.
#
# Prints two tables (docs/benchmarks.md explains the columns):
#   speed:  model, threads, lithe median ms, ORT median ms, ORT/lithe (target >= 1.25),
#           lithe GFLOP/s (2 x MACs / median), share of peak (T x the per-core peak of
#           lithe_bench_kernels' peak/<isa>, or --peak)
#   memory: peak RSS of the lithe and ORT processes while benchmarking, and the ratio
#           (target lithe <= 0.6x ORT; ORT counted without node's own bare start-up RSS)
# Medians: lithe's CLI prints the median of a process's runs, so each engine's figure is the
# median over the R processes of their medians (ORT's per-run times are kept too, in
# WORK/compare.jsonl). Defaults: lithe = build/lithe (else build-bench/lithe), cache =
# models-cache, work = models-cache/bench. Exit 0; 1 when a model failed to build or run.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=5; RUNS=5; WARMUP=2; KBENCH=""; PEAK=""
parse_common "$@"
set -- "${REST[@]+"${REST[@]}"}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --quick) ROUNDS=3; RUNS=3; WARMUP=1; shift ;;
    --kernels-bench) KBENCH="$2"; shift 2 ;;
    --peak) PEAK="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in ROUNDS RUNS WARMUP; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v,,} wants a number"
done
[ "$ROUNDS" -ge 1 ] && [ "$RUNS" -ge 1 ] || die "--rounds and --runs must be at least 1"
setup_common

OUT="$WORK/compare.jsonl"
: >"$OUT"
failed=0
ISA=""
echo "lithe: $LITHE"
echo "work:  $WORK ($ROUNDS rounds x $RUNS runs, warm-up $WARMUP, threads: $THREADS)"

for m in "${MODEL_LIST[@]}"; do
  model="$CACHE/models/$m.onnx"
  engine="$WORK/$m.lithe"
  printf '== %s: build' "$m"
  if ! build_engine "$m"; then
    echo " FAILED ($(tail -n1 "$WORK/$m.build.log"))"
    printf '{"kind":"error","model":"%s","what":"build"}\n' "$m" >>"$OUT"
    failed=1; continue
  fi
  # MACs from the profile (a separate run: profiling adds per-node timing overhead).
  printf ', profile'
  gmac=null
  if "$LITHE" run "$engine" --random-input --runs 1 --profile >"$WORK/$m.profile.log" 2>&1; then
    g="$(sed -n 's/^total .* ms per run, \([0-9.]*\) GMAC.*/\1/p' "$WORK/$m.profile.log" | tail -n1)"
    [ -n "$g" ] && gmac="$g"
  fi
  printf '{"kind":"meta","model":"%s","gmac":%s,"engine_bytes":%s,"onnx_bytes":%s}\n' "$m" "$gmac" \
    "$(stat -c %s "$engine")" "$(stat -c %s "$model")" >>"$OUT"
  read -r -a ort_shape <<<"$(ort_shape_opts "$m")"
  for t in $THREADS; do
    printf ', %s thread(s):' "$t"
    for ((r = 1; r <= ROUNDS; r++)); do
      order="lithe ort"; [ $((r % 2)) -eq 0 ] && order="ort lithe"
      for who in $order; do
        if [ "$who" = lithe ]; then
          log="$WORK/$m.t$t.lithe.log"
          if /usr/bin/time -f %M -o "$WORK/.rss" timeout 600 "$LITHE" run "$engine" --random-input \
              --warmup "$WARMUP" --runs "$RUNS" --threads "$t" >"$log" 2>&1; then
            read -r med first load isa <<<"$(parse_lithe_run "$log")"
            if [ -n "${med:-}" ]; then
              ISA="$isa"
              printf '{"kind":"lithe","model":"%s","threads":%s,"round":%s,"median_ms":%s,"first_ms":%s,"load_ms":%s,"isa":"%s","rss_kb":%s}\n' \
                "$m" "$t" "$r" "$med" "$first" "$load" "$isa" "$(tail -n1 "$WORK/.rss")" >>"$OUT"
              printf ' L'
              continue
            fi
          fi
          printf '{"kind":"error","model":"%s","threads":%s,"what":"lithe run"}\n' "$m" "$t" >>"$OUT"
          printf ' L!'; failed=1
        else
          log="$WORK/$m.t$t.ort.log"
          if /usr/bin/time -f %M -o "$WORK/.rss" timeout 600 node "$HERE/ort_bench.js" "$model" \
              "${ort_shape[@]}" --warmup "$WARMUP" --runs "$RUNS" --threads "$t" >"$log" 2>"$log.err" &&
              [ -s "$log" ]; then
            printf '{"kind":"ort","model":"%s","threads":%s,"round":%s,"rss_kb":%s,"r":%s}\n' \
              "$m" "$t" "$r" "$(tail -n1 "$WORK/.rss")" "$(tail -n1 "$log")" >>"$OUT"
            printf ' O'
          else
            printf '{"kind":"error","model":"%s","threads":%s,"what":"ort"}\n' "$m" "$t" >>"$OUT"
            printf ' O!'; failed=1
          fi
        fi
      done
    done
  done
  echo
done

# Per-core peak of the GEMM microkernel at the ISA the engines ran with.
if [ -z "$PEAK" ] && [ -n "$ISA" ]; then
  if [ -z "$KBENCH" ]; then
    for c in "$(dirname "$LITHE")/bench/lithe_bench_kernels" "$REPO/build-bench/bench/lithe_bench_kernels" \
             "$REPO/build/bench/lithe_bench_kernels"; do
      [ -x "$c" ] && { KBENCH="$c"; break; }
    done
  fi
  if [ -n "$KBENCH" ] && [ -x "$KBENCH" ]; then
    # The VNNI levels run the avx2 / avx512 FP32 kernels: their peak is that level's.
    PISA="$ISA"
    case "$ISA" in avx512vnni) PISA=avx512 ;; avxvnni) PISA=avx2 ;; esac
    "$KBENCH" --benchmark_filter="^peak/$PISA\$" --benchmark_repetitions=5 \
      --benchmark_format=json >"$WORK/peak.json" 2>/dev/null &&
      PEAK="$(node -e '
        let j;
        try { j = require(process.argv[1]); } catch (e) { process.exit(0); }  // no such level
        const v = j.benchmarks.filter((b) => b.run_type === "iteration").map((b) => b["FLOPS"]).sort((a, b) => a - b);
        if (v.length) console.log((v[v.length >> 1] / 1e9).toFixed(1));' "$WORK/peak.json")"
  else
    echo "(no lithe_bench_kernels found: build it, or give --kernels-bench PATH or --peak GFLOPS; share column left empty)"
  fi
fi
[ -n "$PEAK" ] && printf '{"kind":"peak","isa":"%s","gflops_per_core":%s}\n' "$ISA" "$PEAK" >>"$OUT"
printf '{"kind":"node_rss","kb":%s}\n' "$(bare_node_rss_kb)" >>"$OUT"

node "$HERE/summarize.js" compare "$OUT"
echo "(medians over $ROUNDS interleaved processes per engine of $RUNS timed runs each after $WARMUP warm-up; raw data: $OUT)"
exit $failed
