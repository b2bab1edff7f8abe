#!/usr/bin/env node
'use strict';
/**
 * An embedding service over HTTP, with LibTorch or with ONNX Runtime (no LibTorch loaded):
 *
 *   node examples/serve/server.js --backend libtorch --checkpoint runs/a/last.ckpt --images photos/
 *   node examples/serve/server.js --backend onnx --model m.onnx --embeddings emb.npy
 *
 * At start it embeds a folder of images (--images) or loads what `simclr embed` wrote (--embeddings emb.npy, with
 * emb.files.csv beside it), then answers, on 127.0.0.1:
 *   POST /embed            body: an image file (JPEG, PNG, WebP)  ->  { "dim": 512, "embedding": [...] }
 *   POST /nearest?k=5      body: an image file  ->  { "neighbours": [{ "file": "cat.png", "similarity": 0.98 }, ...] }
 * by cosine similarity. Bytes that are no image get 400 with the reason. It prints one JSON line when it listens:
 * { "url", "backend", "images", "dim" } (--port 0 takes a free port).
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseArgs } = require('util');

const USAGE = 'usage: server.js --backend libtorch --checkpoint c.ckpt | --backend onnx --model m.onnx; ' +
  '--images <folder> | --embeddings emb.npy; [--port 8080] [--max-bytes 20000000]';

/** LibTorch: the checkpoint's model, each image decoded and resized as `simclr evaluate` and `simclr embed` do. */
async function libtorchBackend(checkpoint) {
  const simclr = require('simclr');
  const { model, config } = await simclr.loadCheckpointModel(checkpoint);
  return {
    isBadImage: (err) => err instanceof simclr.SampleError,
    async embed(images) {
      const x = await simclr.imagesToModelInput(images, { size: config.imageSize, baseSize: config.baseSize });
      try {
        const h = await model.embed(x);
        const [rows, dim] = h.shape;
        const data = h.toTypedArray();
        h.dispose();
        return Array.from({ length: rows }, (_, i) => data.subarray(i * dim, (i + 1) * dim));
      } finally {
        x.dispose();
      }
    },
  };
}

/** ONNX Runtime: the exported model, its input made by simclr/preprocess as its metadata says (sharp + TypeScript). */
async function onnxBackend(file) {
  const { imageToOnnxInput, readOnnxInputSpec, SampleError } = require('simclr/preprocess');
  const ort = require('onnxruntime-node');
  const spec = readOnnxInputSpec(fs.readFileSync(file));
  const session = await ort.InferenceSession.create(file);
  return {
    isBadImage: (err) => err instanceof SampleError,
    async embed(images) {
      const { data, dims } = await imageToOnnxInput(images, spec);
      const { h } = await session.run({ [spec.name]: new ort.Tensor('float32', data, dims) });
      const [rows, dim] = h.dims;
      return Array.from({ length: rows }, (_, i) => h.data.subarray(i * dim, (i + 1) * dim));
    },
  };
}

function unitRow(v) {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  return Float32Array.from(v, (x) => x / norm);
}

/** The image files under `folder` (sorted, relative paths), embedded in batches; unreadable ones are skipped. */
async function embedFolder(backend, folder, extensions) {
  const files = fs.readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && extensions.includes(path.extname(e.name).toLowerCase()))
    .map((e) => path.relative(folder, path.join(e.parentPath ?? e.path, e.name))).sort();
  const names = [];
  const rows = [];
  for (let i = 0; i < files.length; i += 32) {
    const batch = files.slice(i, i + 32);
    const bytes = batch.map((f) => fs.readFileSync(path.join(folder, f)));
    let embedded;
    try {
      embedded = await backend.embed(bytes);
    } catch (err) {
      if (!backend.isBadImage(err)) throw err;
      embedded = []; // one bad file: embed the batch's files one by one
      for (const [j, one] of bytes.entries()) {
        embedded.push(await backend.embed([one]).then(([row]) => row, (e) => {
          if (!backend.isBadImage(e)) throw e;
          console.error(`skipped ${batch[j]}: ${e.message}`);
          return null;
        }));
      }
    }
    embedded.forEach((row, j) => row && (names.push(batch[j]), rows.push(unitRow(row))));
  }
  return { names, rows };
}

/** What `simclr embed` wrote: the float32 .npy (version 1 header, little-endian, C order) and .files.csv's paths. */
function loadEmbeddings(npyFile) {
  const bytes = fs.readFileSync(npyFile);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.toString('latin1', 10, 10 + headerLength);
  const [rows, dim] = /'shape': \((\d+), (\d+)\)/.exec(header).slice(1).map(Number);
  if (!header.includes("'descr': '<f4'") || header.includes("'fortran_order': True")) throw new Error(`${npyFile}: expected float32 C-order rows`);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + 10 + headerLength + rows * dim * 4));
  const csv = fs.readFileSync(npyFile.replace(/\.npy$/, '') + '.files.csv', 'utf8');
  // path,label,class per line after the header; a path with a comma or quote is quoted, quotes doubled.
  const names = csv.split('\n').slice(1, rows + 1).map((line) => (line.startsWith('"') ? /^"((?:[^"]|"")*)"/.exec(line)[1].replace(/""/g, '"') : line.split(',')[0]));
  return { names, rows: Array.from({ length: rows }, (_, i) => unitRow(data.subarray(i * dim, (i + 1) * dim))) };
}

function nearest(bank, query, k) {
  const q = unitRow(query);
  const scored = bank.rows.map((row, i) => {
    let dot = 0;
    for (let j = 0; j < q.length; j++) dot += q[j] * row[j];
    return { file: bank.names[i], similarity: dot };
  });
  return scored.sort((a, b) => b.similarity - a.similarity).slice(0, k);
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req, maxBytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let length = 0;
    req.on('data', (chunk) => {
      length += chunk.length;
      if (length <= maxBytes) chunks.push(chunk);
      else reject(Object.assign(new Error(`the image is larger than ${maxBytes} bytes (--max-bytes)`), { status: 413 })); // the rest is read and dropped
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function main() {
  const { values: o } = parseArgs({
    options: {
      backend: { type: 'string' }, checkpoint: { type: 'string' }, model: { type: 'string' }, images: { type: 'string' },
      embeddings: { type: 'string' }, port: { type: 'string', default: '8080' }, 'max-bytes': { type: 'string', default: '20000000' },
    },
  });
  const source = o.backend === 'libtorch' ? o.checkpoint : o.backend === 'onnx' ? o.model : undefined;
  if (!source || !(o.images || o.embeddings)) throw new Error(USAGE);
  const backend = o.backend === 'libtorch' ? await libtorchBackend(source) : await onnxBackend(source);
  const { IMAGE_EXTENSIONS } = require('simclr/preprocess');
  const bank = o.images ? await embedFolder(backend, o.images, IMAGE_EXTENSIONS) : loadEmbeddings(o.embeddings);
  const maxBytes = Number(o['max-bytes']);

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      if (url.pathname !== '/embed' && url.pathname !== '/nearest') return send(res, 404, { error: 'POST an image to /embed or /nearest?k=5' });
      if (req.method !== 'POST') return send(res, 405, { error: `${req.method} ${url.pathname}: POST the image file as the body` });
      const k = Number(url.searchParams.get('k') ?? 5);
      if (!Number.isInteger(k) || k < 1) return send(res, 400, { error: `k must be a positive integer, not '${url.searchParams.get('k')}'` });
      const body = await readBody(req, maxBytes);
      if (body.length === 0) return send(res, 400, { error: 'empty body: POST the bytes of an image file (JPEG, PNG, WebP)' });
      const [embedding] = await backend.embed([body]);
      if (url.pathname === '/embed') return send(res, 200, { dim: embedding.length, embedding: Array.from(embedding) });
      return send(res, 200, { neighbours: nearest(bank, embedding, k) });
    } catch (err) {
      if (err.status) return send(res, err.status, { error: err.message });
      if (backend.isBadImage(err)) return send(res, 400, { error: err.message });
      console.error(err);
      return send(res, 500, { error: 'internal error (logged by the server)' });
    }
  });
  server.listen(Number(o.port), '127.0.0.1', () => {
    const { port } = server.address();
    console.log(JSON.stringify({ url: `http://127.0.0.1:${port}`, backend: o.backend, images: bank.names.length, dim: bank.rows[0]?.length ?? 0 }));
  });
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
