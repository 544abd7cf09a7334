#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) timing for lithe's peer comparison (bench/compare_ort.sh,
// bench/startup.sh). Prints ONE line of JSON on stdout:
//
//   node bench/ort_bench.js MODEL.onnx [--threads T] [--runs N] [--warmup W] [--seed S]
//                           [--shape NAME=1x3x640x640 ...] [--profile PREFIX]
//
// --profile: ORT's own per-node profile of the timed runs (enableProfiling; ORT writes
// PREFIX_<date>.json, whose path goes into "profile_file"), summarized on stderr: per node the
// median kernel time over the runs, the top 25 and the totals per op type.
//
//   {"model":..., "threads":T, "ort_version":...,
//    "require_ms":  loading the onnxruntime-node addon (libonnxruntime) in this process,
//    "create_ms":   InferenceSession.create (graph optimization included),
//    "first_run_ms": the first session.run,
//    "ready_ms":    require + create + first run, measured from just before require()
//                   (node's own start-up is EXCLUDED; process_uptime_ms says how long node
//                   had been running by the end of the first run, i.e. INCLUDED),
//    "process_uptime_ms": process.uptime() at the end of the first run,
//    "warmup": W, "runs_ms": [per-run ms of the N timed runs, in order],
//    "median_ms", "min_ms", "vmhwm_kb": this process's peak RSS (VmHWM) at the end}
//
// Session options as in tests/models/ort_run.js: intraOpNumThreads=T, interOpNumThreads=1,
// executionMode sequential, default graph optimization level ('all'). Inputs: float inputs
// uniform [0, 1) from a seeded mulberry32 stream, integer inputs small non-negative values;
// dynamic dimensions must be given with --shape.
'use strict';

const tStart = process.hrtime.bigint();
const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`ort_bench.js: ${msg}\n`);
  process.exit(2);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function parseArgs(argv) {
  const o = { model: null, threads: 1, runs: 10, warmup: 2, seed: 1, shapes: {}, profile: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--threads') o.threads = parseInt(val(), 10);
    else if (a === '--runs') o.runs = parseInt(val(), 10);
    else if (a === '--warmup') o.warmup = parseInt(val(), 10);
    else if (a === '--seed') o.seed = parseInt(val(), 10);
    else if (a === '--profile') o.profile = val();
    else if (a === '--shape') {
      const v = val();
      const eq = v.lastIndexOf('=');
      if (eq <= 0) die(`--shape wants NAME=DIMS, got '${v}'`);
      const dims = v.slice(eq + 1).split(/[x,]/);
      if (dims.some((d) => !/^\d+$/.test(d))) die(`bad shape '${v}'`);
      o.shapes[v.slice(0, eq)] = dims.map(Number);
    } else if (a === '-h' || a === '--help') {
      const lines = fs.readFileSync(__filename, 'utf8').split('\n').slice(1);
      const end = lines.findIndex((l) => !l.startsWith('//'));
      process.stdout.write(lines.slice(0, end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else if (a.startsWith('--')) die(`unknown option ${a}`);
    else if (o.model === null) o.model = a;
    else die(`unexpected argument ${a}`);
  }
  if (!o.model) die('usage: ort_bench.js MODEL.onnx [--threads T] [--runs N] [--warmup W] [--shape NAME=DIMS]');
  for (const k of ['threads', 'runs', 'warmup', 'seed'])
    if (!Number.isFinite(o[k]) || o[k] < 0) die(`bad --${k}`);
  if (o.threads < 1 || o.runs < 1) die('--threads and --runs must be at least 1');
  return o;
}

const ms = (a, b) => Number(b - a) / 1e6;
const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function vmhwmKb() {
  const m = /VmHWM:\s*(\d+)\s*kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : null;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.model)) die(`no such model: ${o.model}`);
  // onnxruntime-node lives in tests/models/node_modules (scripts/fetch_models.sh installs it).
  const t0 = process.hrtime.bigint();
  let ort;
  try {
    ort = require(require.resolve('onnxruntime-node', { paths: [path.join(__dirname, '..', 'tests', 'models'), __dirname] }));
  } catch (e) {
    die(`cannot load onnxruntime-node (${e.message.split('\n')[0]}); run scripts/fetch_models.sh first`);
  }
  const t1 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(o.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
    ...(o.profile ? { enableProfiling: true, profileFilePrefix: o.profile } : {}),
  });
  const t2 = process.hrtime.bigint();

  const rng = mulberry32(o.seed);
  const feeds = {};
  const meta = session.inputMetadata || session.inputNames.map((name) => ({ name, isTensor: true, type: 'float32', shape: [] }));
  for (const m of meta) {
    const declared = m.shape || [];
    let dims = o.shapes[m.name];
    if (!dims) {
      if (declared.some((d) => typeof d !== 'number' || d <= 0))
        die(`input ${m.name} has dynamic shape [${declared.join(', ')}]; give --shape ${m.name}=DIMS`);
      dims = declared.slice();
    }
    const count = dims.reduce((a, b) => a * b, 1);
    let data;
    if (m.type === 'float32') {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = (rng() >>> 8) * 5.9604644775390625e-8;
    } else if (m.type === 'int64') {
      data = new BigInt64Array(count);
      for (let i = 0; i < count; i++) data[i] = BigInt(rng() & 3);
    } else if (m.type === 'int32') {
      data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = rng() & 3;
    } else {
      die(`input ${m.name}: type ${m.type} not supported by the benchmark`);
    }
    feeds[m.name] = new ort.Tensor(m.type, data, dims);
  }

  const t3 = process.hrtime.bigint();
  await session.run(feeds);
  const t4 = process.hrtime.bigint();
  const uptime = process.uptime() * 1000;
  for (let i = 1; i < o.warmup; i++) await session.run(feeds); // the first run counts as warm-up
  const runs = [];
  for (let i = 0; i < o.runs; i++) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    runs.push(ms(s, process.hrtime.bigint()));
  }
  let profileFile = null;
  if (o.profile) {
    await session.endProfiling();  // the node binding does not return the file: find it
    const dir = path.dirname(path.resolve(o.profile)), base = path.basename(o.profile);
    const files = fs.readdirSync(dir)
      .filter((f) => f.startsWith(base) && f.endsWith('.json'))
      .map((f) => path.join(dir, f))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
    if (!files.length) die(`no ORT profile written under ${o.profile}*.json`);
    profileFile = files[0];
    summarizeProfile(profileFile, o.warmup + o.runs, o.runs);
  }
  let version = null;
  try {
    version = require(require.resolve('onnxruntime-node/package.json', { paths: [path.join(__dirname, '..', 'tests', 'models'), __dirname] })).version;
  } catch (e) {
    /* unknown */
  }
  const out = {
    model: path.basename(o.model),
    threads: o.threads,
    ort_version: version,
    require_ms: ms(t0, t1),
    create_ms: ms(t1, t2),
    first_run_ms: ms(t3, t4),
    ready_ms: ms(t0, t4) - ms(t2, t3), // input generation excluded
    process_uptime_ms: uptime,
    script_start_ms: ms(tStart, t0),
    warmup: Math.max(o.warmup, 1),
    runs_ms: runs.map((x) => Math.round(x * 1000) / 1000),
    median_ms: median(runs),
    min_ms: Math.min(...runs),
    vmhwm_kb: vmhwmKb(),
    ...(profileFile ? { profile_file: profileFile } : {}),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

// Per node: the kernel times of the last `timed` of `total` runs (ORT's events come in run
// order; each node has one "<name>_kernel_time" event per run).
function summarizeProfile(file, total, timed) {
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  const per = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    if (!per.has(name)) per.set(name, { op: (e.args && e.args.op_name) || '?', us: [] });
    per.get(name).us.push(e.dur);
  }
  const rows = [];
  const byOp = new Map();
  let sum = 0;
  for (const [name, v] of per) {
    const t = median(v.us.slice(-Math.min(timed, v.us.length))) / 1000;
    rows.push([name, v.op, t]);
    byOp.set(v.op, (byOp.get(v.op) || 0) + t);
    sum += t;
  }
  rows.sort((a, b) => b[2] - a[2]);
  const w = process.stderr;
  w.write(`ORT profile (${file}): median kernel ms over the last ${timed} of ${total} runs\n`);
  for (const [name, op, t] of rows.slice(0, 25))
    w.write(`${name.padEnd(50).slice(0, 50)} ${op.padEnd(22)} ${t.toFixed(3).padStart(8)}\n`);
  w.write('per op type:\n');
  for (const [op, t] of [...byOp].sort((a, b) => b[1] - a[1]))
    w.write(`  ${op.padEnd(24)} ${t.toFixed(3).padStart(8)}\n`);
  w.write(`total of node medians ${sum.toFixed(3)} ms\n`);
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
