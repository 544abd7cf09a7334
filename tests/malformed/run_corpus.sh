#!/usr/bin/env bash
# Runs the malformed-model corpus (tests/malformed/README.md) against one lithe binary.
# Usage: run_corpus.sh LITHE_BIN [OUTDIR]
#   Generates the corpus into OUTDIR (default: a temporary folder, removed afterwards) with
#   gen_corpus.py, runs every case under `timeout`, and checks: exit code exactly 2, exactly
#   one line on stderr containing every expected substring, CPU time (user + system) under
#   $LITHE_CORPUS_MAX_MS milliseconds (default 1000), no output file written. With a
#   sanitizer build, a report exits with code 99 (ASan) or 98 (UBSan), so it fails the case.
# Env: LITHE_CORPUS_FILTER=REGEX runs only the cases whose name matches.
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 LITHE_BIN [OUTDIR]" >&2
  exit 2
fi
LITHE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
MAX_MS=${LITHE_CORPUS_MAX_MS:-1000}
FILTER=${LITHE_CORPUS_FILTER:-}
WORK=$(mktemp -d)
if [ $# -eq 2 ]; then
  CORPUS=$(realpath -m "$2")
  trap 'rm -rf "$WORK"' EXIT
else
  CORPUS="$WORK/corpus"
  trap 'rm -rf "$WORK"' EXIT
fi
# A sanitizer report must show as a distinct exit code, never as the expected 2.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=98:print_stacktrace=1}

/usr/bin/python3 "$HERE/gen_corpus.py" "$CORPUS" "$LITHE" || { echo "corpus generation failed"; exit 1; }

declare -A cls_pass cls_fail
pass=0
failn=0
slow_ms=0
slow_name=""
OUTD="$WORK/out"
while IFS=$'\t' read -r name cls mode file flags expect; do
  if [ -n "$FILTER" ] && ! [[ "$name" =~ $FILTER ]]; then continue; fi
  [ "$flags" = - ] && flags=""
  rm -rf "$OUTD"
  mkdir -p "$OUTD"
  # shellcheck disable=SC2086  # flags are space-separated words
  if [ "$mode" = build ]; then
    cmd=("$LITHE" build "$CORPUS/$file" -o "$OUTD/model.lithe" $flags)
  else
    cmd=("$LITHE" run "$CORPUS/$file" --random-input -o "$OUTD" $flags)
  fi
  # The limit is on the CPU time the case used (user + system, from bash's `time`): wall time
  # moves with whatever else the machine runs (a 1M-node model took 450 ms alone and 1.2-1.5 s
  # beside a build); `timeout` still catches a hang.
  TIMEFORMAT='%3U %3S'
  cpu=$( { time { timeout 10 "${cmd[@]}" >"$WORK/stdout" 2>"$WORK/stderr"; echo $? >"$WORK/rc"; }; } 2>&1 )
  rc=$(cat "$WORK/rc")
  read -r user sys <<<"$cpu"
  ms=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')
  lines=$(grep -c '' "$WORK/stderr")
  outputs=$(find "$OUTD" -mindepth 1 | wc -l)
  why=""
  [ "$rc" -eq 2 ] || why="exit code $rc"
  [ "$lines" -eq 1 ] || why="$why${why:+, }$lines lines on stderr"
  IFS=$'\x01' read -r -a wants <<<"${expect// && /$'\x01'}"
  for w in "${wants[@]}"; do
    grep -qF -- "$w" "$WORK/stderr" || why="$why${why:+, }no '$w' in the message"
  done
  [ "$ms" -lt "$MAX_MS" ] || why="$why${why:+, }took $ms ms"
  [ "$outputs" -eq 0 ] || why="$why${why:+, }wrote $outputs output files"
  if [ "$ms" -gt "$slow_ms" ]; then slow_ms=$ms; slow_name=$name; fi
  if [ -z "$why" ]; then
    printf 'ok   %-44s %-18s %4d ms  %s\n' "$name" "$cls" "$ms" "$(head -c 300 "$WORK/stderr")"
    pass=$((pass + 1))
    cls_pass[$cls]=$((${cls_pass[$cls]:-0} + 1))
  else
    printf 'FAIL %-44s %-18s %4d ms  %s; stderr: %s\n' "$name" "$cls" "$ms" "$why" \
      "$(head -c 600 "$WORK/stderr" | tr '\n' ' ')"
    failn=$((failn + 1))
    cls_fail[$cls]=$((${cls_fail[$cls]:-0} + 1))
  fi
done <"$CORPUS/manifest.tsv"

echo "---- per class (passed / failed)"
for c in $(printf '%s\n' "${!cls_pass[@]}" "${!cls_fail[@]}" | sort -u); do
  printf '%-20s %3d / %d\n' "$c" "${cls_pass[$c]:-0}" "${cls_fail[$c]:-0}"
done
echo "slowest: $slow_name $slow_ms ms (limit $MAX_MS ms)"
echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ] && [ "$pass" -gt 0 ]
