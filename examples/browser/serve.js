#!/usr/bin/env node
// Serves the browser example on 127.0.0.1: the page, ONNX Runtime Web's files and protobufjs from node_modules, and
// the model given. Usage: node examples/browser/serve.js --model encoder.onnx [--port 8080] [--images <folder>]
// (--images: files the page may fetch by name under /images/, for scripts; the page itself embeds what you pick).
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseArgs } = require('util');

const { values } = parseArgs({ options: { model: { type: 'string' }, port: { type: 'string', default: '8080' }, images: { type: 'string' } } });
if (!values.model) {
  console.error('usage: node examples/browser/serve.js --model encoder.onnx [--port 8080] [--images <folder>]');
  process.exit(2);
}

const ortDist = path.dirname(require.resolve('onnxruntime-web'));
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.onnx': 'application/octet-stream', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };

/** The file a URL path names, or undefined: only these folders, nothing above them. */
function fileFor(urlPath) {
  const inside = (folder, rest) => {
    const file = path.resolve(folder, `.${path.posix.normalize(`/${rest}`)}`);
    return file.startsWith(path.resolve(folder) + path.sep) ? file : undefined;
  };
  if (urlPath === '/' || urlPath === '/index.html') return path.join(__dirname, 'index.html');
  if (urlPath === '/embed.mjs') return path.join(__dirname, 'embed.mjs');
  if (urlPath === '/model.onnx') return path.resolve(values.model);
  if (urlPath === '/protobuf.min.js') return require.resolve('protobufjs/dist/protobuf.min.js');
  if (urlPath.startsWith('/ort/')) return inside(ortDist, urlPath.slice('/ort/'.length));
  if (values.images && urlPath.startsWith('/images/')) return inside(values.images, decodeURIComponent(urlPath.slice('/images/'.length)));
  return undefined;
}

const server = http.createServer((req, res) => {
  const file = fileFor(new URL(req.url, 'http://localhost').pathname);
  if (!file || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
server.listen(Number(values.port), '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/`));
