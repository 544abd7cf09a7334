#!/usr/bin/env bash
# `lithe bench --json` on the bundled example: one JSON document on stdout with every field
# and sane values; then two models with two contexts each and --profile; and the table.
# Usage: test_bench.sh LITHE_BIN SOURCE_DIR
set -eu
LITHE="$1"
SRC="$2"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
M="$SRC/examples/tiny_cnn.onnx"

"$LITHE" bench "$M" --runs 5 --json >"$T/one.json" 2>"$T/one.err"
"$LITHE" build "$M" -o "$T/tiny.lithe" >/dev/null 2>&1
"$LITHE" bench "$T/tiny.lithe" "$M" --runs 3 --warmup 1 --contexts 2 --threads 2 --profile \
  --json >"$T/two.json" 2>/dev/null
"$LITHE" bench "$T/tiny.lithe" --duration 0.2 --profile >"$T/table.txt" 2>/dev/null

/usr/bin/python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
errors = []

def check(cond, what):
    if not cond:
        errors.append(what)

def check_stats(s, count, where):
    for k in ("count", "min", "mean", "median", "p90", "p99", "max", "stddev"):
        check(k in s, f"{where}: no '{k}'")
    if errors:
        return
    check(s["count"] == count, f"{where}: count {s['count']}, expected {count}")
    check(0 < s["min"] <= s["median"] <= s["p90"] <= s["p99"] <= s["max"],
          f"{where}: min <= median <= p90 <= p99 <= max does not hold: {s}")
    check(s["min"] <= s["mean"] <= s["max"], f"{where}: mean outside [min, max]: {s}")
    check(s["stddev"] >= 0, f"{where}: negative stddev")

def check_model(m, runs, contexts, where):
    for k in ("path", "isa", "inputs", "load_ms", "first_inference_ms", "inferences", "wall_s",
              "latency_ms", "throughput_ips", "contexts", "efficiency", "memory"):
        check(k in m, f"{where}: no '{k}'")
    if errors:
        return
    check(m["inferences"] == runs * contexts, f"{where}: {m['inferences']} inferences")
    check_stats(m["latency_ms"], runs * contexts, where + " latency")
    check(len(m["contexts"]) == contexts, f"{where}: {len(m['contexts'])} contexts")
    for i, c in enumerate(m["contexts"]):
        check_stats(c["latency_ms"], runs, f"{where} context {i}")
    check(m["load_ms"] > 0 and m["first_inference_ms"] > 0 and m["wall_s"] > 0, f"{where}: times")
    # K streams of `runs` inferences each in wall_s seconds.
    check(abs(m["throughput_ips"] * m["wall_s"] - runs * contexts) < 1e-6 * runs * contexts,
          f"{where}: throughput x wall != inferences")
    check(m["throughput_ips"] * m["latency_ms"]["min"] / 1000 <= contexts * 1.0001,
          f"{where}: throughput above what the fastest run allows")
    e = m["efficiency"]
    check(e["cpu_s"] > 0 and e["cpu_s_per_inference"] > 0, f"{where}: CPU time")
    check(abs(e["cpu_s_per_inference"] * m["inferences"] - e["cpu_s"]) < 1e-9, f"{where}: CPU/inf")
    if e["joules"] is None:
        check(e["joules_per_inference"] is None and e["energy_note"].startswith("n/a ("),
              f"{where}: energy n/a without its note")
    else:
        check(e["joules"] > 0 and e["joules_per_inference"] > 0, f"{where}: energy")
    mem = m["memory"]
    check(mem["file_bytes"] > 0 and mem["arena_bytes_per_context"] > 0, f"{where}: memory")
    check(mem["mapped_weight_bytes"] >= 0 and mem["heap_weight_bytes"] >= 0, f"{where}: weights")
    check(mem["mapped_weight_bytes"] + mem["heap_weight_bytes"] > 0, f"{where}: no weights")
    check(mem["contexts"] == contexts, f"{where}: memory contexts")
    check(mem["total_bytes"] == mem["mapped_weight_bytes"] + mem["heap_weight_bytes"]
          + contexts * mem["arena_bytes_per_context"], f"{where}: total")
    check(m["inputs"] and m["inputs"][0]["name"] == "image" and m["inputs"][0]["source"] == "random",
          f"{where}: inputs")
    for when in ("after_warmup", "after_runs"):
        r = m["resident"][when]
        check(r["rss_bytes"] >= r["anon_bytes"] + r["file_bytes"] > 0, f"{where}: resident {when}")
        check(r["peak_bytes"] >= r["rss_bytes"], f"{where}: peak below rss {when}")

one = json.load(open(f"{d}/one.json"))
for k in ("lithe_version", "date", "host", "settings", "models", "memory_total",
          "resident_before_load", "peak_rss_bytes"):
    check(k in one, f"one: no '{k}'")
check(len(one["models"]) == 1, "one: not one model")
check_model(one["models"][0], 5, 1, "one")
check("profile" not in one["models"][0], "one: profile without --profile")
check(one["peak_rss_bytes"] > one["memory_total"]["arena_bytes"], "one: peak RSS below the arena")
base, end = one["resident_before_load"], one["models"][0]["resident"]["after_runs"]
check(0 < base["anon_bytes"] <= base["rss_bytes"] <= one["peak_rss_bytes"],
      "one: resident before load")
check(end["anon_bytes"] > base["anon_bytes"], "one: loading and running took no memory")
check(one["models"][0]["memory"]["mapped_weight_bytes"] == 0, "one: an ONNX file has mapped weights")

two = json.load(open(f"{d}/two.json"))
check(len(two["models"]) == 2, "two: not two models")
check(two["settings"]["contexts"] == 2 and two["settings"]["threads"] == 2, "two: settings")
for i, m in enumerate(two["models"]):
    check_model(m, 3, 2, f"two[{i}]")
    p = m.get("profile", {})
    check(p.get("nodes"), f"two[{i}]: no profile")
    ms = [n["ms"] for n in p.get("nodes", [])]
    check(ms == sorted(ms, reverse=True), f"two[{i}]: profile not slowest first")
    check(all(n["precision"] == "fp32" for n in p.get("nodes", [])), f"two[{i}]: precision")
    check(abs(sum(n["share"] for n in p.get("nodes", [])) - 1) < 1e-6, f"two[{i}]: shares")
check(two["models"][0]["memory"]["mapped_weight_bytes"] > 0, "two: an engine file maps no weights")
tot = two["memory_total"]
check(tot["total_bytes"] == sum(m["memory"]["total_bytes"] for m in two["models"]), "two: total")
check(tot["arena_bytes"] == sum(2 * m["memory"]["arena_bytes_per_context"] for m in two["models"]),
      "two: total arena")

table = open(f"{d}/table.txt").read()
for s in ("latency ms", "median", "p99", "throughput", "CPU-s per inference", "memory",
          "resident", "process RSS", "GFLOP/s", "precision"):
    check(s in table, f"table: no '{s}'")

if errors:
    print("\n".join("FAIL " + e for e in errors))
    sys.exit(1)
print("lithe bench JSON and table: every field present, values consistent")
PY
