#!/usr/bin/env node
// A WebSocket client that socks did not write: the `ws` library on Node.
// The e2e tests (../../e2e/node_test.go) drive it; it is also handy by hand:
//
//   npm ci
//   node client.mjs 'ws://127.0.0.1:8765/?geek=alice&id=SECRET&topic=updates' --count 3
//
// Usage: node client.mjs URL [--count N] [--timeout MS] [--subscribe T1,T2]
//
// Once connected it sends {"action":"subscribe","topics":[...]} (default
// topic "extra"; --subscribe '' sends nothing), then every line read on
// standard input as one text frame. Every frame received is printed as one
// line on standard output; progress goes to standard error.
//
// Exit codes: 0 after N frames (--count, default 1); 1 on an error; 2 on bad
// arguments; 3 when --timeout (default 10000 ms) passed first; 4 when the
// server closed the connection first; 5 when the server refused the upgrade.

import { createInterface } from 'node:readline';
import WebSocket from 'ws';

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\nusage: node client.mjs URL [--count N] [--timeout MS] [--subscribe T1,T2]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let url = '';
let count = 1;
let timeoutMs = 10000;
let subscribe = ['extra'];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    if (i + 1 >= args.length) usage(`${a} needs a value`);
    return args[++i];
  };
  switch (a) {
    case '--count':
      count = Number.parseInt(value(), 10);
      if (!(count >= 1)) usage('--count must be at least 1');
      break;
    case '--timeout':
      timeoutMs = Number.parseInt(value(), 10);
      if (!(timeoutMs >= 1)) usage('--timeout must be at least 1 (milliseconds)');
      break;
    case '--subscribe':
      subscribe = value().split(',').filter((t) => t !== '');
      break;
    default:
      if (a.startsWith('--') || url !== '') usage(`unexpected argument ${a}`);
      url = a;
  }
}
if (url === '') usage('no URL');

let done = false;
function finish(code, msg) {
  if (done) return;
  done = true;
  clearTimeout(timer);
  if (msg) process.stderr.write(`${msg}\n`);
  try {
    ws.terminate();
  } catch {
    // already gone
  }
  // Let stdout drain before exiting.
  process.stdout.write('', () => process.exit(code));
}

const timer = setTimeout(() => finish(3, `timeout: ${received} of ${count} frames within ${timeoutMs} ms`), timeoutMs);

let received = 0;
const pending = [];
const ws = new WebSocket(url);

ws.on('unexpected-response', (_req, res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => finish(5, `refused: ${res.statusCode} ${body.trim()}`));
});

ws.on('open', () => {
  process.stderr.write('connected\n');
  if (subscribe.length > 0) {
    ws.send(JSON.stringify({ action: 'subscribe', topics: subscribe }));
  }
  for (const line of pending.splice(0)) ws.send(line);
});

ws.on('message', (data, isBinary) => {
  const text = isBinary ? Buffer.from(data).toString('base64') : data.toString('utf8');
  process.stdout.write(`${text.replace(/\n/g, '\\n')}\n`);
  received++;
  if (received >= count) {
    ws.close(1000, 'done');
    finish(0);
  }
});

ws.on('close', (code, reason) => finish(4, `closed: ${code} ${reason.toString()}`));
ws.on('error', (err) => finish(1, `error: ${err.message}`));

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  if (ws.readyState === WebSocket.OPEN) ws.send(line);
  else pending.push(line);
});
