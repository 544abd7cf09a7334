#!/usr/bin/env bash
# Start-up and memory of lithe against ONNX Runtime (onnxruntime-node 1.30, CPU).
#
#   bench/startup.sh [--reps 5] [--threads 1] [--models "..."] [--quick]
#                    [--lithe PATH] [--cache DIR] [--work DIR]
#
# Per model: `lithe build` once, then --reps interleaved pairs of processes:
#  - lithe: `lithe-run ENGINE --random-input --runs 1 --threads T` (the lean runner beside the
#    lithe binary: `lithe run` for engine files, runtime only, static), wall time from process
#    start to exit measured outside the process (bash EPOCHREALTIME around the exec; includes
#    exec, engine load, input generation, the first inference and exit);
#  - ORT: `node bench/ort_bench.js MODEL --runs 1 --warmup 1 --threads T`: ready_ms measured in
#    node from just before require('onnxruntime-node') to the end of the first run (session
#    creation with its graph optimization included, node's own start-up EXCLUDED), and the
#    process's wall time measured outside (node's start-up INCLUDED).
# Each timed process is run once more under /usr/bin/time for its peak RSS. Prints medians
# and the ratios: start-up lithe / ORT (target <= 0.2) and peak RSS lithe / (ORT - bare node)
# (target <= 0.6).
# --threads takes ONE thread count here (default 1). --quick: 3 reps.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=5
THREADS=1
parse_common "$@"
set -- "${REST[@]+"${REST[@]}"}"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --quick) REPS=3; shift ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$REPS" =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] || die "--reps wants a number >= 1"
[[ "$THREADS" =~ ^[0-9]+$ ]] || die "--threads takes one number here"
setup_common

# peak_rss CMD...: runs CMD once more under /usr/bin/time for its peak RSS (in $WORK/.rss):
# the timed runs go without the wrapper, whose own exec would be counted (about 7 ms here).
peak_rss() { /usr/bin/time -f %M -o "$WORK/.rss" "$@" >/dev/null 2>&1; }

OUT="$WORK/startup.jsonl"
: >"$OUT"
failed=0
RUNNER="$(dirname "$LITHE")/lithe-run"
[ -x "$RUNNER" ] || die "no lithe-run beside $LITHE (ninja -C build lithe_run)"
echo "lithe: $LITHE, runner $RUNNER"
echo "work:  $WORK ($REPS reps, $THREADS thread(s))"
for m in "${MODEL_LIST[@]}"; do
  model="$CACHE/models/$m.onnx"
  engine="$WORK/$m.lithe"
  printf '== %s: build' "$m"
  if ! build_engine "$m"; then
    echo " FAILED ($(tail -n1 "$WORK/$m.build.log"))"
    failed=1; continue
  fi
  read -r -a ort_shape <<<"$(ort_shape_opts "$m")"
  # One untimed run of each first, so that both start from a warm page cache.
  "$RUNNER" "$engine" --random-input --runs 1 >/dev/null 2>&1
  node "$HERE/ort_bench.js" "$model" "${ort_shape[@]}" --runs 1 --warmup 1 >/dev/null 2>&1
  printf ':'
  for ((r = 1; r <= REPS; r++)); do
    order="lithe ort"; [ $((r % 2)) -eq 0 ] && order="ort lithe"
    for who in $order; do
      if [ "$who" = lithe ]; then
        log="$WORK/$m.startup.lithe.log"
        cmd=("$RUNNER" "$engine" --random-input --runs 1 --threads "$THREADS")
        t0=$(now_us)
        "${cmd[@]}" >"$log" 2>&1
        rc=$?
        t1=$(now_us)
        read -r med first load isa <<<"$(parse_lithe_run "$log")"
        if [ $rc -eq 0 ] && [ -n "${med:-}" ] && peak_rss "${cmd[@]}"; then
          printf '{"kind":"lithe","model":"%s","round":%s,"wall_ms":%s,"load_ms":%s,"first_ms":%s,"rss_kb":%s}\n' \
            "$m" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1000}')" "$load" "$first" \
            "$(tail -n1 "$WORK/.rss")" >>"$OUT"
          printf ' L'
        else
          printf ' L!'; failed=1
        fi
      else
        log="$WORK/$m.startup.ort.log"
        cmd=(node "$HERE/ort_bench.js" "$model" "${ort_shape[@]}" --runs 1 --warmup 1
             --threads "$THREADS")
        t0=$(now_us)
        "${cmd[@]}" >"$log" 2>"$log.err"
        rc=$?
        t1=$(now_us)
        if [ $rc -eq 0 ] && [ -s "$log" ] && peak_rss "${cmd[@]}"; then
          printf '{"kind":"ort","model":"%s","round":%s,"wall_ms":%s,"rss_kb":%s,"r":%s}\n' \
            "$m" "$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1000}')" \
            "$(tail -n1 "$WORK/.rss")" "$(tail -n1 "$log")" >>"$OUT"
          printf ' O'
        else
          printf ' O!'; failed=1
        fi
      fi
    done
  done
  echo
done
printf '{"kind":"node_rss","kb":%s}\n' "$(bare_node_rss_kb)" >>"$OUT"

node "$HERE/summarize.js" startup "$OUT"
echo "(medians of $REPS interleaved processes each; $THREADS thread(s); raw data: $OUT)"
exit $failed
