#!/usr/bin/env bash
# Memory bound of the runtime, planned against measured, for every real model.
#
#   bench/memory_bound.sh [--runs 10000] [--threads 1] [--models "..."] [--quick]
#                         [--lithe PATH] [--cache DIR] [--work DIR]
#
# Per model: `lithe build` an engine, then one `lithe bench ENGINE --json` process (warm-up
# 10 runs, then --runs timed runs) reports its resident memory before loading, after warm-up
# and after the runs (/proc/self/status), and what the engine planned: the arena, weights
# copied or packed on the heap at load, weights read from the file mapping. Checks:
#   private  RssAnon after the runs - RssAnon before loading <= arena + heap weights + 16 MiB
#   peak     VmHWM - VmRSS before loading <= arena + heap weights + engine file + 16 MiB
#            (weights read from the mapping are file pages of the engine: resident once
#            touched, shared with the page cache and reclaimable; the kernel also maps
#            neighbouring cached pages on a fault, so up to the whole file can show up in
#            RSS even where only part of it is read: it is counted apart, at its size)
#   growth   VmRSS after the runs - VmRSS after warm-up <= 1 MiB
# Exits 1 when a check fails on a model, 2 on bad usage. --quick: 300 runs.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=10000
THREADS=1
parse_common "$@"
set -- "${REST[@]+"${REST[@]}"}"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --quick) RUNS=300; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "--runs wants a number >= 1"
[[ "$THREADS" =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] || die "--threads takes one number >= 1"
NEED_ORT=0 setup_common

echo "lithe: $LITHE, $RUNS runs per model after 10 warm-up runs, $THREADS thread(s)"
for m in "${MODEL_LIST[@]}"; do
  if ! build_engine "$m"; then
    echo "$m: build failed (see $WORK/$m.build.log)"
    continue
  fi
  if ! "$LITHE" bench "$WORK/$m.lithe" --runs "$RUNS" --warmup 10 --threads "$THREADS" --json \
      >"$WORK/$m.memory.json" 2>"$WORK/$m.memory.log"; then
    echo "$m: lithe bench failed: $(head -c 300 "$WORK/$m.memory.log")"
    continue
  fi
  echo "$WORK/$m.memory.json"
done | /usr/bin/python3 -c '
import json, sys
MIB = 1 << 20
SLACK = 16 * MIB
rows, bad = [], 0
for line in sys.stdin:
    path = line.strip()
    if not path.endswith(".json"):
        print(path); bad = 1; continue
    j = json.load(open(path))
    m = j["models"][0]
    base, warm, end = j["resident_before_load"], m["resident"]["after_warmup"], m["resident"]["after_runs"]
    mem = m["memory"]
    arena = mem["arena_bytes_per_context"] * mem["contexts"]
    heap, mapped, file = mem["heap_weight_bytes"], mem["mapped_weight_bytes"], mem["file_bytes"]
    private = end["anon_bytes"] - base["anon_bytes"]
    private_bound = arena + heap + SLACK
    peak = j["peak_rss_bytes"] - base["rss_bytes"]
    peak_bound = arena + heap + file + SLACK
    growth = end["rss_bytes"] - warm["rss_bytes"]
    ok = private <= private_bound and peak <= peak_bound and growth <= MIB
    bad |= not ok
    name = path.rsplit("/", 1)[-1].replace(".memory.json", "")
    rows.append((name, arena, heap, mapped, file, private, private_bound, peak, peak_bound,
                 m["inferences"], growth, ok))
f = lambda b: "%.1f" % (b / MIB)
print("%-14s %7s %7s %7s %7s | %8s %8s | %8s %8s | %6s %8s | %s" % (
    "model", "arena", "heap w", "mapped", "file", "private", "bound", "peak", "bound", "runs",
    "growth", "check"))
print("%-14s %7s %7s %7s %7s | %8s %8s | %8s %8s | %6s %8s |" % (
    "", "MiB", "MiB", "MiB", "MiB", "MiB", "MiB", "MiB", "MiB", "", "KiB"))
for r in rows:
    print("%-14s %7s %7s %7s %7s | %8s %8s | %8s %8s | %6d %8.0f | %s" % (
        r[0], f(r[1]), f(r[2]), f(r[3]), f(r[4]), f(r[5]), f(r[6]), f(r[7]), f(r[8]), r[9],
        r[10] / 1024, "ok" if r[11] else "FAIL"))
print("private = RssAnon after the runs - before loading (bound: arena + heap weights + 16 MiB); "
      "peak = VmHWM - VmRSS before loading (bound: + the engine file); growth over the timed "
      "runs (bound 1 MiB)")
sys.exit(1 if bad else 0)
'
