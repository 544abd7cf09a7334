#!/usr/bin/env node
// Top-1 of an ONNX classifier under ONNX Runtime (onnxruntime-node, CPU, one thread) over a
// labelled .npy set, the figure `lithe eval` is checked against:
//
//   node ort_eval.js MODEL.onnx DATA_DIR LABELS_FILE
//
// LABELS_FILE as `lithe eval --labels` reads it: one "PATH LABEL" line per sample (PATH
// relative to DATA_DIR, LABEL a class index, the text after the last blank); empty lines
// and lines starting with '#' are skipped. Each .npy is fed as it is to the model's first
// input; the prediction is the argmax of the first output (the lowest index on ties, as
// lithe's top-k). Prints one JSON object: {"count", "top1_hits", "top1"}.
'use strict';

const path = require('path');
const fs = require('fs');
const { readNpy } = require('./ort_run.js');

function die(msg) {
  process.stderr.write(`ort_eval.js: ${msg}\n`);
  process.exit(2);
}

async function main() {
  const [model, dataDir, labelsFile] = process.argv.slice(2);
  if (!labelsFile) die('usage: node ort_eval.js MODEL.onnx DATA_DIR LABELS_FILE');
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (${e.message.split('\n')[0]})`);
  }
  const samples = [];
  fs.readFileSync(labelsFile, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const cut = line.search(/\s\S*$/);
    const label = cut < 0 ? NaN : Number(line.slice(cut + 1));
    if (!Number.isInteger(label)) die(`${labelsFile}:${i + 1}: expected "PATH LABEL"`);
    samples.push({ file: path.join(dataDir, line.slice(0, cut).trim()), label });
  });
  if (!samples.length) die(`${labelsFile}: no samples`);

  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  let hits = 0;
  for (const s of samples) {
    const x = readNpy(s.file);
    if (x.type !== 'float32') die(`${s.file}: ${x.type}, expected float32`);
    const out = await session.run({ [inName]: new ort.Tensor('float32', x.data, x.dims) });
    const scores = out[outName].data;
    let best = 0;
    for (let k = 1; k < scores.length; k++) if (scores[k] > scores[best]) best = k;
    if (best === s.label) hits++;
  }
  process.stdout.write(JSON.stringify({ count: samples.length, top1_hits: hits,
                                        top1: hits / samples.length }) + '\n');
}

main().catch((e) => die(e.message));
