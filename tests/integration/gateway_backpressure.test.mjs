// Backpressure and cancellation, black box: a client that stops reading
// must not make the gateway buffer the upstream's whole answer (the transfer
// is paused above 256 KiB unsent and resumed below 64 KiB), and a client that
// goes away must make the gateway drop its upstream request promptly, for
// streams and for plain requests alike.
//
// Two upstreams: switchyard-mock (a large embeddings body), and a small node
// HTTP server in this file that we can watch from the inside: how many bytes
// it managed to write, and when its request's connection was closed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import {
  startMock, startGateway, stopAll, mockReply, marker, rawRequest, httpRequest,
  parseResponses, RawConn, chatBody, sseData, sleep, withTimeout, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 60000 };
const PAUSE_MS = 1500;
const MIB = 1024 * 1024;

let mock;
let gwMock; // in front of switchyard-mock
let up; // the node upstream below
let gwUp; // in front of it

/* ------------------------------------------------------------- upstream */

// Requests the node upstream received, by marker: { marker, kind, startedAt,
// closedAt (connection closed before the answer was complete), finishedAt,
// sent (bytes or chunks written) }.
const seen = new Map();
const BIG_ROWS = 1300; // embeddings rows of 4096 floats: about 64 MB in all

function embeddingRow(i) {
  const v = [];
  for (let k = 0; k < 4096; k++) v.push((Math.sin(i * 4096 + k) / 7).toPrecision(9));
  return `{"object":"embedding","index":${i},"embedding":[${v.join(',')}]}`;
}

// The big body is built once, piecewise; its size is known up front so it
// goes out with a Content-Length, like the mock's.
let bigParts;
function bigBody() {
  if (!bigParts) {
    const row = embeddingRow(0);
    bigParts = ['{"object":"list","data":['];
    for (let i = 0; i < BIG_ROWS; i++) {
      // Same vector in every row (cheap), the index tells them apart.
      bigParts.push((i ? ',' : '') + row.replace('"index":0', `"index":${i}`));
    }
    bigParts.push('],"model":"big","usage":{"prompt_tokens":1,"total_tokens":1}}');
    bigParts = bigParts.map((s) => Buffer.from(s));
  }
  return bigParts;
}
const bigSize = () => bigBody().reduce((n, b) => n + b.length, 0);

function record(req, res, m, kind) {
  const rec = { marker: m, kind, startedAt: Date.now(), closedAt: null, finishedAt: null, sent: 0 };
  seen.set(m, rec);
  const onClose = () => {
    if (!rec.finishedAt && !rec.closedAt) rec.closedAt = Date.now();
  };
  res.on('close', onClose);
  req.socket.on('close', onClose);
  return rec;
}

function startUpstream() {
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      const m = /\b(bp-[0-9a-f]{12})\b/.exec(body)?.[1] ?? 'none';
      let j = {};
      try { j = JSON.parse(body); } catch { /* answered below */ }
      if (req.url === '/v1/embeddings') return big(req, res, m);
      if (req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"not here","type":"invalid_request_error","param":null,"code":null}}');
        return;
      }
      const delay = Number(req.headers['x-test-delay-ms'] ?? 0);
      if (j.stream) return slowStream(req, res, m, Number(req.headers['x-test-chunks'] ?? 5),
        Number(req.headers['x-test-chunk-delay-ms'] ?? 0));
      return slowAnswer(req, res, m, j, delay);
    });
  });
  // The gateway keeps upstream connections alive; don't let them hold up close().
  srv.keepAliveTimeout = 1000;
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    srv.url = `http://127.0.0.1:${srv.address().port}`;
    resolve(srv);
  }));
}

function chatAnswer(j) {
  const last = j.messages?.[j.messages.length - 1]?.content ?? '';
  return JSON.stringify({
    id: 'chatcmpl-node', object: 'chat.completion', created: 1, model: j.model ?? 'x',
    choices: [{ index: 0, message: { role: 'assistant', content: mockReply(last) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

function slowAnswer(req, res, m, j, delay) {
  const rec = record(req, res, m, 'plain');
  const timer = setTimeout(() => {
    if (rec.closedAt) return;
    rec.finishedAt = Date.now();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(chatAnswer(j));
  }, delay);
  res.on('close', () => clearTimeout(timer));
}

function slowStream(req, res, m, chunks, delay) {
  const rec = record(req, res, m, 'stream');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const ev = (o) => `data: ${JSON.stringify(o)}\n\n`;
  const chunk = (content, finish = null) => ev({
    id: 'chatcmpl-node', object: 'chat.completion.chunk', created: 1, model: 'x',
    choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
  });
  const tick = () => {
    if (rec.closedAt) return;
    if (rec.sent < chunks) {
      res.write(chunk(`w${rec.sent} `));
      rec.sent++;
      setTimeout(tick, delay);
      return;
    }
    rec.finishedAt = Date.now();
    res.end(chunk(null, 'stop') + 'data: [DONE]\n\n');
  };
  tick();
}

// The big body, written with backpressure (only when the socket drains), so
// rec.sent says how far the gateway let the upstream get.
function big(req, res, m) {
  const rec = record(req, res, m, 'big');
  const parts = bigBody();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bigSize()) });
  let i = 0;
  const pump = () => {
    while (i < parts.length && !rec.closedAt) {
      const b = parts[i++];
      rec.sent += b.length;
      if (i === parts.length) {
        res.end(b, () => { rec.finishedAt = Date.now(); });
        return;
      }
      if (!res.write(b)) { res.once('drain', pump); return; }
    }
  };
  pump();
}

async function waitUntil(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/* ---------------------------------------------------------------- setup */

before(async () => {
  mock = await startMock();
  gwMock = await startGateway(mock.url + '/v1', { auth: false, workers: 1 });
  up = await startUpstream();
  gwUp = await startGateway(up.url + '/v1', { auth: false, workers: 1 });
});

after(async () => {
  try {
    await stopAll();
  } finally {
    if (up) {
      up.closeAllConnections();
      await new Promise((r) => up.close(r));
    }
  }
});

const json = { 'Content-Type': 'application/json' };
const post = (path, body, headers = {}) => httpRequest('POST', path, { ...json, ...headers }, body);

/** The process's resident memory, in bytes: { rss, anon }. */
function memOf(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
}

/**
 * Sends `req` on a raw socket, reads until the first bytes of the answer
 * arrive, then reads nothing for PAUSE_MS (paused, small high-water mark),
 * sampling the gateway's memory meanwhile; then reads everything. Returns
 * { base, peak, received (bytes read before the pause, with what node
 * buffered), response, during (onPaused()'s result at the pause's end) }.
 */
async function pausedRequest(gw, req, onPaused = () => null) {
  // Settle first so the baseline is not a moment of some earlier burst.
  await sleep(200);
  const base = memOf(gw.pid);
  const s = net.connect({ port: gw.port, host: '127.0.0.1', readableHighWaterMark: 1024 });
  try {
    await withTimeout(new Promise((res, rej) => { s.once('connect', res); s.once('error', rej); }),
      3000, 'connect');
    let first;
    const firstP = new Promise((r) => { first = r; });
    const done = readOneResponse(s, () => { s.pause(); first(); });
    done.catch(() => {}); // awaited below; don't let an early failure go unhandled
    s.write(req);
    await withTimeout(Promise.race([firstP, done]), 30000 * SLOW, 'the first bytes of the answer');
    let peak = { ...base };
    const t0 = Date.now();
    while (Date.now() - t0 < PAUSE_MS) {
      await sleep(50);
      const m = memOf(gw.pid);
      peak = { rss: Math.max(peak.rss, m.rss), anon: Math.max(peak.anon, m.anon) };
    }
    const received = s.bytesRead;
    const during = onPaused();
    s.resume();
    const response = await withTimeout(done, 30000 * SLOW, 'the whole paused response');
    return { base, peak, received, response, during };
  } finally {
    s.destroy();
  }
}

/**
 * Reads one Content-Length response from socket `s` (after its head, only
 * counts bytes until the length is reached). Resolves to parseResponses'
 * shape: { status, headers, body, text }.
 */
function readOneResponse(s, onFirst = () => {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let got = 0;
    let need = -1; // head + body length once the head is in
    const check = () => {
      if (need < 0) {
        const buf = Buffer.concat(chunks);
        chunks.length = 0;
        chunks.push(buf);
        const he = buf.indexOf('\r\n\r\n');
        if (he >= 0) {
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, he).toString('latin1'));
          if (!cl) { reject(new Error(`no Content-Length: ${buf.subarray(0, he)}`)); return; }
          need = he + 4 + Number(cl[1]);
        }
      }
      if (need >= 0 && got >= need) {
        const { responses } = parseResponses(Buffer.concat(chunks).subarray(0, need), false);
        if (responses.length) resolve(responses[0]);
        else reject(new Error('unparsable response'));
      }
    };
    s.on('data', (d) => {
      if (got === 0) onFirst();
      chunks.push(d);
      got += d.length;
      check();
    });
    s.on('end', () => reject(new Error(`closed after ${got} of ${need} bytes`)));
    s.on('error', reject);
  });
}

const fmt = (n) => `${(n / MIB).toFixed(1)} MiB`;

/* ---------------------------------------------------------------- tests */

test('a client that stops reading: the gateway holds back a large embeddings body (mock)', T, async (t) => {
  const m = marker('bp');
  // 256 inputs x 4096 dimensions is the most the mock gives in one answer.
  const body = JSON.stringify({ model: 'text-embedding-3-small', dimensions: 4096,
    input: Array.from({ length: 256 }, (_, i) => `${m} input ${i}`) });
  const dr = await fetch(`${mock.url}/v1/embeddings`, { method: 'POST', headers: json, body,
    signal: AbortSignal.timeout(30000 * SLOW) });
  const directBody = Buffer.from(await dr.arrayBuffer());
  assert.equal(dr.status, 200, directBody.subarray(0, 300).toString());
  const size = directBody.length;
  assert.ok(size > 10 * MIB, `the mock's answer is large: ${size} bytes`);

  // Warm the gateway's paths up with a small request so the baseline counts them.
  const small = await rawRequest(gwMock.port, post('/v1/embeddings',
    JSON.stringify({ model: 'text-embedding-3-small', input: 'warm' })));
  assert.equal(small.status, 200);

  const r = await pausedRequest(gwMock, post('/v1/embeddings', body));
  const grew = r.peak.rss - r.base.rss;
  const grewAnon = r.peak.anon - r.base.anon;
  const msg = `gateway VmRSS ${fmt(r.base.rss)} -> peak ${fmt(r.peak.rss)} (+${fmt(grew)}), ` +
    `RssAnon +${fmt(grewAnon)}, while the client read nothing of a ${fmt(size)} response ` +
    `(the client had read ${r.received} bytes)`;
  t.diagnostic(msg);
  assert.ok(r.received < size * 0.25, `the client really was not reading: ${msg}`);
  assert.ok(grew < size * 0.25, `memory growth stays well below the response size: ${msg}`);

  assert.equal(r.response.status, 200);
  assert.equal(r.response.body.length, size, 'the whole body arrived');
  const j = JSON.parse(r.response.text);
  assert.equal(j.data.length, 256);
  assert.equal(j.data[255].embedding.length, 4096);
  assert.ok(r.response.body.equals(directBody), 'byte for byte what the mock sends');
});

test('a client that stops reading: the upstream is held back too (64 MB body)', T, async (t) => {
  const m = marker('bp');
  const size = bigSize();
  const body = JSON.stringify({ model: 'big', input: m });
  const r = await pausedRequest(gwUp, post('/v1/embeddings', body), () => ({ ...seen.get(m) }));
  const grew = r.peak.rss - r.base.rss;
  const sentPaused = r.during?.sent ?? 0;
  const msg = `gateway VmRSS ${fmt(r.base.rss)} -> peak ${fmt(r.peak.rss)} (+${fmt(grew)}), ` +
    `RssAnon +${fmt(r.peak.anon - r.base.anon)}; the upstream had written ${fmt(sentPaused)} of ` +
    `${fmt(size)} after ${PAUSE_MS} ms of a client that read nothing (it had read ${r.received} bytes)`;
  t.diagnostic(msg);
  assert.ok(r.during?.startedAt, 'the upstream got the request');
  // The control: without backpressure the gateway would have drained the
  // whole body from the upstream (a loopback copy of 64 MB takes well under
  // the pause), so this shows the stall reached the upstream. What the
  // upstream did write sits in kernel socket buffers (four of them on the
  // way, each autotuned up to several MiB on loopback), hence half, not less.
  assert.ok(sentPaused < size * 0.5, `the upstream was paused: ${msg}`);
  assert.ok(grew < size * 0.25, `memory growth stays well below the response size: ${msg}`);

  assert.equal(r.response.status, 200);
  assert.equal(r.response.body.length, size, 'the whole body arrived');
  assert.ok(r.response.body.equals(Buffer.concat(bigBody())), 'byte for byte');
  const j = JSON.parse(r.response.text);
  assert.equal(j.data.length, BIG_ROWS);
  assert.equal(j.data[BIG_ROWS - 1].index, BIG_ROWS - 1);
  assert.ok(seen.get(m).finishedAt, 'the upstream finished once the client read');
});

test('a client that disconnects mid-stream: the gateway closes the upstream request', T, async () => {
  const m = marker('bp');
  const c = new RawConn(gwUp.port);
  await c.connect();
  await c.write(post('/v1/chat/completions', chatBody(`gone ${m}`, { stream: true }),
    { 'x-test-chunks': '200', 'x-test-chunk-delay-ms': '50' }));
  await c.waitFor(() => (c.buf.toString('latin1').match(/"content"/g) ?? []).length >= 2,
    3000 * SLOW, 'the first streamed chunks');
  assert.ok(!c.buf.includes('[DONE]'), 'the stream is still going');
  assert.match(c.buf.toString('latin1'), /^HTTP\/1\.1 200 /);
  const t0 = Date.now();
  c.close();
  const rec = seen.get(m);
  assert.ok(rec, 'the upstream saw the stream');
  // Long enough for the whole stream (200 x 50 ms), so a gateway that lets
  // it run shows up as such rather than as a timeout.
  await waitUntil(() => rec.closedAt || rec.finishedAt, 12000 * SLOW, 'the upstream request to end');
  assert.equal(rec.finishedAt, null,
    `the upstream stream ran to its end (${rec.sent} chunks) after the client had gone`);
  const after = rec.closedAt - t0;
  assert.ok(after < 1000 * SLOW, `the upstream connection closed ${after} ms after the client's`);
  assert.ok(rec.sent < 200, `upstream stopped after ${rec.sent} of 200 chunks`);
});

test('a client that disconnects while a plain request waits: the upstream request is closed', T, async () => {
  const m = marker('bp');
  const c = new RawConn(gwUp.port);
  await c.connect();
  await c.write(post('/v1/chat/completions', chatBody(`wait ${m}`), { 'x-test-delay-ms': '5000' }));
  await waitUntil(() => seen.has(m), 3000 * SLOW, 'the request to reach the upstream');
  await sleep(200);
  const t0 = Date.now();
  c.close();
  const rec = seen.get(m);
  await waitUntil(() => rec.closedAt || rec.finishedAt, 6000 * SLOW, 'the upstream request to end');
  assert.equal(rec.finishedAt, null, 'the upstream answered: nobody closed its connection in 5 s');
  const after = rec.closedAt - t0;
  assert.ok(after < 1000 * SLOW, `the upstream connection closed ${after} ms after the client's`);
});

test('afterwards both gateways serve normally', T, async () => {
  for (const [gw, what] of [[gwMock, 'mock'], [gwUp, 'node upstream']]) {
    const text = `after ${marker('bp')}`;
    const r = await rawRequest(gw.port, post('/v1/chat/completions', chatBody(text)), 5000 * SLOW);
    assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
    assert.equal(JSON.parse(r.text).choices[0].message.content, mockReply(text), what);
    const s = await rawRequest(gw.port, post('/v1/chat/completions', chatBody(text, { stream: true })),
      5000 * SLOW);
    assert.equal(s.status, 200, what);
    const data = sseData(s.text);
    assert.equal(data[data.length - 1], '[DONE]', `${what}: stream complete`);
    const h = await rawRequest(gw.port, httpRequest('GET', '/healthz'));
    assert.equal(h.status, 200, `${what}: /healthz`);
  }
});

// This once caught a shutdown race in gateway/grpc_server.c (the gRPC
// completion-queue thread destroying the server while main still cancelled
// its calls); grpc_server.c now waits for every call before destroying.
test('both gateways and the mock exit 0 on SIGTERM', T, async () => {
  const codes = await Promise.allSettled([gwMock.stop(), gwUp.stop()]);
  assert.equal(await mock.stop(), 0);
  for (const c of codes) {
    if (c.status === 'rejected') throw c.reason;
    assert.equal(c.value, 0);
  }
});
