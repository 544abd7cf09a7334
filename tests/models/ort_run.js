#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) as the reference oracle for lithe's real-model checks.
//
//   node ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ... [--time N] [--warmup N] [--threads N]
//       Runs the model once on the given inputs and writes every output to
//       OUT_DIR/<sanitized output name>.npy. With --time N it then times N more runs
//       (after --warmup runs, default 2) and prints min / median / mean in ms.
//
//   node ort_run.js MODEL.onnx --gen-inputs OUT_DIR [--seed N] [--shape NAME=1x3x224x224 ...]
//                   [--pattern uniform|text]
//       Writes deterministic pseudo-random inputs (float: uniform [0,1) from a seeded
//       mulberry32 stream; --pattern text: a synthetic page of text-like marks, ImageNet-
//       normalized, for text detectors) for every model input to OUT_DIR/<sanitized name>.npy,
//       using the declared input shapes, with dynamic dims taken from --shape. Also writes
//       OUT_DIR/inputs.args: one NAME=FILE line per input (FILE relative to OUT_DIR).
//
//   node ort_run.js MODEL.onnx --info      prints the declared inputs and outputs.
//
//   --optimized FILE (with a run) also writes the graph ONNX Runtime runs after its graph
//   optimizations (e.g. to see QDQ groups fused into QLinearConv / QGemm).
//
// Sanitized name: every character outside [A-Za-z0-9._-] replaced by '_' (lithe's CLI
// writes its outputs with the same convention).
// Session options: intra-op and inter-op threads 1 (unless --threads), sequential
// execution, ONNX Runtime's default graph optimization level.
'use strict';

const fs = require('fs');
const path = require('path');

// ---------------------------------------------------------------- .npy reading / writing

const DTYPES = {
  // ort type name: [npy descr, TypedArray, element size]
  float32: ['<f4', Float32Array, 4],
  float64: ['<f8', Float64Array, 8],
  int64: ['<i8', BigInt64Array, 8],
  uint64: ['<u8', BigUint64Array, 8],
  int32: ['<i4', Int32Array, 4],
  uint32: ['<u4', Uint32Array, 4],
  int16: ['<i2', Int16Array, 2],
  uint16: ['<u2', Uint16Array, 2],
  float16: ['<f2', Uint16Array, 2], // raw IEEE half bits
  int8: ['|i1', Int8Array, 1],
  uint8: ['|u1', Uint8Array, 1],
  bool: ['|b1', Uint8Array, 1],
};
const DESCR_TO_TYPE = {};
for (const [t, [d]] of Object.entries(DTYPES)) {
  DESCR_TO_TYPE[d] = t;
  DESCR_TO_TYPE[d.replace('<', '=')] = t;
  if (d[0] === '|') {
    DESCR_TO_TYPE['<' + d.slice(1)] = t;
    DESCR_TO_TYPE['=' + d.slice(1)] = t;
  }
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
  if (buf.length < 10 || !buf.subarray(0, 6).equals(magic)) throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  let hlen, hstart;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    hlen = buf.readUInt32LE(8);
    hstart = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  const header = buf.subarray(hstart, hstart + hlen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) throw new Error(`${file}: bad .npy header: ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: fortran_order arrays are not supported`);
  const type = DESCR_TO_TYPE[descr[1]];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr[1]}`);
  const dims = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const [, Ctor, size] = DTYPES[type];
  const off = hstart + hlen;
  if (buf.length - off < count * size) throw new Error(`${file}: truncated data`);
  // Copy into a fresh, aligned ArrayBuffer.
  const ab = new ArrayBuffer(count * size);
  new Uint8Array(ab).set(buf.subarray(off, off + count * size));
  return { type, dims, data: new Ctor(ab) };
}

function writeNpy(file, type, dims, data) {
  const spec = DTYPES[type];
  if (!spec) throw new Error(`cannot write tensor of type ${type} to .npy`);
  const [descr, Ctor, size] = spec;
  const shapeStr = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Version 1.0: 10-byte preamble; pad header with spaces so data starts on a 64-byte boundary.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  if (header.length > 65535) throw new Error('npy header too long');
  const pre = Buffer.alloc(10);
  pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  pre.writeUInt16LE(header.length, 8);
  let arr = data;
  if (type === 'bool' && !(data instanceof Uint8Array)) arr = Uint8Array.from(data, (v) => (v ? 1 : 0));
  if (type === 'float16' && !(arr instanceof Uint16Array)) arr = new Uint16Array(arr.buffer, arr.byteOffset, arr.length);
  if (!(arr instanceof Ctor)) arr = Ctor.from(arr);
  const body = Buffer.from(arr.buffer, arr.byteOffset, arr.length * size);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

// ---------------------------------------------------------------- helpers

const sanitize = (name) => name.replace(/[^A-Za-z0-9._-]/g, '_');

function die(msg) {
  process.stderr.write(`ort_run.js: ${msg}\n`);
  process.exit(2);
}

// mulberry32: small, fast, well-distributed 32-bit PRNG; fully determined by the seed.
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

function parseShape(s) {
  const dims = s.split(/[x,]/).map((d) => d.trim());
  if (!dims.length || dims.some((d) => !/^\d+$/.test(d))) die(`bad shape '${s}' (want e.g. 1x3x224x224)`);
  return dims.map(Number);
}

function parseArgs(argv) {
  const o = { positional: [], inputs: [], shapes: {}, time: 0, warmup: 2, threads: 1, seed: 0, genInputs: null, pattern: 'uniform', info: false, optimized: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--time') o.time = parseInt(val(), 10);
    else if (a === '--warmup') o.warmup = parseInt(val(), 10);
    else if (a === '--threads') o.threads = parseInt(val(), 10);
    else if (a === '--optimized') o.optimized = val();
    else if (a === '--seed') o.seed = parseInt(val(), 10);
    else if (a === '--gen-inputs') o.genInputs = val();
    else if (a === '--pattern') {
      o.pattern = val();
      if (!['uniform', 'text'].includes(o.pattern)) die(`--pattern wants uniform or text, got '${o.pattern}'`);
    }
    else if (a === '--info') o.info = true;
    else if (a === '--shape') {
      const v = val();
      const eq = v.lastIndexOf('=');
      if (eq <= 0) die(`--shape wants NAME=DIMS, got '${v}'`);
      o.shapes[v.slice(0, eq)] = parseShape(v.slice(eq + 1));
    } else if (a === '-h' || a === '--help') {
      const lines = fs.readFileSync(__filename, 'utf8').split('\n').slice(1);
      const end = lines.findIndex((l) => !l.startsWith('//'));
      process.stdout.write(lines.slice(0, end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else if (a.startsWith('--')) die(`unknown option ${a}`);
    else o.positional.push(a);
  }
  for (const k of ['time', 'warmup', 'threads', 'seed']) if (!Number.isFinite(o[k]) || o[k] < 0) die(`bad --${k}`);
  return o;
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (${e.message.split('\n')[0]}); run scripts/fetch_models.sh first`);
  }
}

// --pattern text: a synthetic page of text-like marks (rows of dark glyph strokes, ~16 px
// tall, grouped into words, on a light background), normalized with the ImageNet
// mean/std that PP-OCR's detector expects. Uniform noise gives the detector nothing to
// find, so its sigmoid output sits entirely in the far tail (values ~1e-5), where ONNX
// Runtime's approximate logistic flushes to 0; a text-like image gives it a full [0, 1]
// probability map. Works on rank-4 NCHW or NHWC inputs with 3 channels.
function textImage(dims, rng, data, name) {
  if (dims.length !== 4 || (dims[1] !== 3 && dims[3] !== 3)) die(`--pattern text: input ${name} is not NCHW/NHWC with 3 channels`);
  const nchw = dims[1] === 3;
  const [N, H, W] = nchw ? [dims[0], dims[2], dims[3]] : [dims[0], dims[1], dims[2]];
  const rint = (lo, hi) => lo + (rng() % (hi - lo)); // [lo, hi)
  const img = new Float32Array(H * W);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (let n = 0; n < N; n++) {
    img.fill(0.9);
    const fill = (y0, y1, x0, x1) => {
      for (let y = Math.max(0, y0); y < Math.min(H, y1); y++)
        for (let x = Math.max(0, x0); x < Math.min(W, x1); x++) img[y * W + x] = 0.1;
    };
    for (let y = 20; y + 16 <= H; y += 30) {
      let x = 10;
      while (x < W - 40) {
        const wlen = rint(30, 120);
        let cx = x;
        while (cx < Math.min(x + wlen, W - 10)) {
          const cw = rint(3, 9);
          fill(y, y + 16, cx, cx + cw);
          if (rng() & 1) {
            const sy = y + rint(0, 14);
            fill(sy, sy + 2, cx, cx + cw + 3);
          }
          cx += cw + rint(2, 5);
        }
        x += wlen + rint(15, 40);
      }
    }
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < H * W; i++) {
        const v = (img[i] - mean[c]) / std[c];
        data[nchw ? (n * 3 + c) * H * W + i : (n * H * W + i) * 3 + c] = v;
      }
  }
}

const fmtDims = (d) => (d.length ? d.join('x') : 'scalar');

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.positional.length < 1) die('usage: ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ... | MODEL.onnx --gen-inputs DIR [--seed N] [--shape NAME=DIMS] | MODEL.onnx --info');
  const modelPath = o.positional[0];
  if (!fs.existsSync(modelPath)) die(`no such model: ${modelPath}`);
  const ort = loadOrt();
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3, // errors only; ORT warns about unused initializers in some models
    ...(o.optimized ? { optimizedModelFilePath: o.optimized } : {}),
  });
  const createMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const inMeta = session.inputMetadata || session.inputNames.map((name) => ({ name, isTensor: true, type: 'float32', shape: [] }));
  const outMeta = session.outputMetadata || session.outputNames.map((name) => ({ name }));

  if (o.info) {
    for (const m of inMeta) console.log(`input  ${m.name} ${m.type} [${(m.shape || []).join(', ')}]`);
    for (const m of outMeta) console.log(`output ${m.name} ${m.type} [${(m.shape || []).join(', ')}]`);
    return;
  }

  if (o.genInputs !== null) {
    if (o.positional.length !== 1) die('--gen-inputs takes no positional arguments besides the model');
    fs.mkdirSync(o.genInputs, { recursive: true });
    const rng = mulberry32(o.seed);
    const lines = [];
    const seen = new Set();
    for (const m of inMeta) {
      if (!m.isTensor) die(`input ${m.name} is not a tensor`);
      const declared = m.shape || [];
      const given = o.shapes[m.name];
      let dims;
      if (given) {
        if (given.length !== declared.length) die(`--shape ${m.name}: rank ${given.length}, model declares [${declared.join(', ')}]`);
        declared.forEach((d, i) => {
          if (typeof d === 'number' && d > 0 && d !== given[i]) die(`--shape ${m.name}: dim ${i} is ${given[i]}, model declares ${d}`);
        });
        dims = given;
      } else {
        if (declared.some((d) => typeof d !== 'number' || d <= 0)) die(`input ${m.name} has dynamic shape [${declared.join(', ')}]; give --shape ${m.name}=DIMS`);
        dims = declared.slice();
      }
      const count = dims.reduce((a, b) => a * b, 1);
      const spec = DTYPES[m.type];
      if (!spec) die(`input ${m.name}: cannot generate type ${m.type}`);
      const data = new spec[1](count);
      if (o.pattern === 'text' && (m.type === 'float32' || m.type === 'float64')) {
        textImage(dims, rng, data, m.name);
      } else if (m.type === 'float32' || m.type === 'float64') {
        // 24 random bits -> exactly representable float32 in [0, 1).
        for (let i = 0; i < count; i++) data[i] = (rng() >>> 8) * 5.9604644775390625e-8;
      } else if (m.type === 'bool') {
        for (let i = 0; i < count; i++) data[i] = rng() & 1;
      } else {
        // Integer inputs (indices, ids): small non-negative values in [0, 4).
        const big = spec[1] === BigInt64Array || spec[1] === BigUint64Array;
        for (let i = 0; i < count; i++) data[i] = big ? BigInt(rng() & 3) : rng() & 3;
      }
      const file = sanitize(m.name) + '.npy';
      if (seen.has(file)) die(`two inputs sanitize to the same file name ${file}`);
      seen.add(file);
      writeNpy(path.join(o.genInputs, file), m.type, dims, data);
      lines.push(`${m.name}=${file}`);
      console.log(`input ${m.name} ${m.type} ${fmtDims(dims)} -> ${file}`);
    }
    fs.writeFileSync(path.join(o.genInputs, 'inputs.args'), lines.join('\n') + '\n');
    return;
  }

  if (o.positional.length < 2) die('missing OUT_DIR');
  const outDir = o.positional[1];
  const feeds = {};
  for (const a of o.positional.slice(2)) {
    const eq = a.indexOf('=');
    if (eq <= 0) die(`input argument '${a}' is not NAME=FILE.npy`);
    const name = a.slice(0, eq);
    const file = a.slice(eq + 1);
    if (!session.inputNames.includes(name)) die(`model has no input named '${name}' (inputs: ${session.inputNames.join(', ')})`);
    let t;
    try {
      t = readNpy(file);
    } catch (e) {
      die(e.message);
    }
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  for (const n of session.inputNames) if (!(n in feeds)) die(`no value given for input '${n}'`);

  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  const seen = new Set();
  for (const name of session.outputNames) {
    const t = results[name];
    const file = sanitize(name) + '.npy';
    if (seen.has(file)) die(`two outputs sanitize to the same file name ${file}`);
    seen.add(file);
    writeNpy(path.join(outDir, file), t.type, Array.from(t.dims), t.data);
    console.log(`output ${name} ${t.type} ${fmtDims(Array.from(t.dims))} -> ${file}`);
  }

  if (o.time > 0) {
    for (let i = 0; i < o.warmup; i++) await session.run(feeds);
    const ms = [];
    for (let i = 0; i < o.time; i++) {
      const s = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    ms.sort((a, b) => a - b);
    const mid = ms.length >> 1;
    const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
    const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
    console.log(
      `time ${path.basename(modelPath)}: threads=${o.threads} runs=${ms.length} ` +
        `min=${ms[0].toFixed(3)} median=${median.toFixed(3)} mean=${mean.toFixed(3)} max=${ms[ms.length - 1].toFixed(3)} ms ` +
        `(session create ${createMs.toFixed(1)} ms)`,
    );
  }
}

module.exports = { readNpy, writeNpy, sanitize, mulberry32 };

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`ort_run.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  });
}
