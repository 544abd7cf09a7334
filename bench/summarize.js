#!/usr/bin/env node
// Tables from the raw records of bench/compare_ort.sh and bench/startup.sh (JSON lines).
//
//   node bench/summarize.js compare WORK/compare.jsonl [--markdown]
//   node bench/summarize.js startup WORK/startup.jsonl [--markdown]
'use strict';

const fs = require('fs');

const [mode, file, ...rest] = process.argv.slice(2);
const markdown = rest.includes('--markdown');
if (!['compare', 'startup'].includes(mode) || !file) {
  process.stderr.write('usage: summarize.js compare|startup FILE.jsonl [--markdown]\n');
  process.exit(2);
}
const recs = fs
  .readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const median = (xs) => {
  if (!xs.length) return null;
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x, d) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

function table(head, rows) {
  if (markdown) {
    const out = ['', '| ' + head.join(' | ') + ' |', '|' + head.map((h, i) => (i < 2 ? ':---' : '---:')).join('|') + '|'];
    for (const r of rows) out.push('| ' + r.join(' | ') + ' |');
    console.log(out.join('\n'));
    return;
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

const models = [...new Set(recs.filter((r) => r.model).map((r) => r.model))];
const bareNode = (recs.find((r) => r.kind === 'node_rss') || {}).kb || 0;

if (mode === 'compare') {
  const peak = recs.find((r) => r.kind === 'peak');
  const meta = Object.fromEntries(recs.filter((r) => r.kind === 'meta').map((r) => [r.model, r]));
  const speed = [];
  const mem = [];
  for (const m of models) {
    const threads = [...new Set(recs.filter((r) => r.model === m && r.threads).map((r) => r.threads))];
    for (const t of threads) {
      const L = recs.filter((r) => r.kind === 'lithe' && r.model === m && r.threads === t);
      const O = recs.filter((r) => r.kind === 'ort' && r.model === m && r.threads === t);
      const errs = recs.filter((r) => r.kind === 'error' && r.model === m && r.threads === t).length;
      const lm = median(L.map((r) => r.median_ms));
      const om = median(O.map((r) => r.r.median_ms));
      const oall = median(O.flatMap((r) => r.r.runs_ms));
      const gmac = meta[m] ? meta[m].gmac : null;
      const gflops = lm && gmac ? (2 * gmac) / (lm / 1000) : null;
      const share = gflops && peak ? (100 * gflops) / (peak.gflops_per_core * t) : null;
      speed.push([m, t, f(lm, 3), f(om, 3), f(oall, 3), lm && om ? f(om / lm, 2) : '-', f(gmac, 2), f(gflops, 1),
        share === null ? '-' : f(share, 0) + '%', `${L.length}/${O.length}${errs ? ' (' + errs + ' failed)' : ''}`]);
      const lr = median(L.map((r) => r.rss_kb));
      const or = median(O.map((r) => r.rss_kb));
      const orNet = or !== null ? or - bareNode : null;
      mem.push([m, t, f(lr / 1024, 1), f(or / 1024, 1), f(orNet / 1024, 1), lr && orNet ? f(lr / orNet, 2) : '-',
        lr && or ? f(lr / or, 2) : '-']);
    }
  }
  console.log('\nspeed (ms: median over processes of per-process medians; ORT/lithe target >= 1.25)');
  table(['model', 'threads', 'lithe_ms', 'ort_ms', 'ort_all_ms', 'ort/lithe', 'GMAC', 'lithe_GFLOP/s',
    'of_peak', 'procs L/O'], speed);
  if (peak) console.log(`(peak: ${peak.gflops_per_core} GFLOP/s per core, lithe_bench_kernels peak/${peak.isa}, x threads)`);
  console.log(`\nmemory (peak RSS of the benchmarking processes, MiB; bare node = ${f(bareNode / 1024, 1)} MiB; target lithe <= 0.6x ORT)`);
  table(['model', 'threads', 'lithe_MiB', 'ort_MiB', 'ort-node_MiB', 'lithe/(ort-node)', 'lithe/ort'], mem);
} else {
  const rows = [];
  for (const m of models) {
    const L = recs.filter((r) => r.kind === 'lithe' && r.model === m);
    const O = recs.filter((r) => r.kind === 'ort' && r.model === m);
    const lw = median(L.map((r) => r.wall_ms));
    const ll = median(L.map((r) => r.load_ms));
    const lf = median(L.map((r) => r.first_ms));
    const oready = median(O.map((r) => r.r.ready_ms));
    const ocreate = median(O.map((r) => r.r.create_ms));
    const ofirst = median(O.map((r) => r.r.first_run_ms));
    const owall = median(O.map((r) => r.wall_ms));
    const lr = median(L.map((r) => r.rss_kb));
    const or = median(O.map((r) => r.rss_kb));
    rows.push([m, f(lw, 1), f(ll, 1), f(lf, 1), f(oready, 1), f(ocreate, 1), f(ofirst, 1), f(owall, 1),
      lw && oready ? f(lw / oready, 3) : '-', lw && owall ? f(lw / owall, 3) : '-',
      f(lr / 1024, 1), f(or / 1024, 1), lr && or ? f(lr / (or - bareNode), 2) : '-']);
  }
  console.log('\nstart-up to first inference done (ms, median of processes; target lithe <= 0.2x ORT)');
  table(['model', 'lithe_wall', 'load', 'first_run', 'ort_ready', 'create', 'first_run', 'ort_wall',
    'lithe/ort_ready', 'lithe/ort_wall', 'lithe_MiB', 'ort_MiB', 'rss_ratio'], rows);
  console.log(
    '(lithe_wall: `lithe-run ENGINE --random-input --runs 1`, process start to exit, measured outside;\n' +
      ' ort_ready: in node, require(onnxruntime-node) + session create + first run, node\'s own start-up EXCLUDED;\n' +
      ' ort_wall: the node process start to exit, measured outside, node start-up INCLUDED;\n' +
      ` rss_ratio: lithe peak RSS / (ORT process peak RSS - bare node ${f(bareNode / 1024, 1)} MiB))`,
  );
}
