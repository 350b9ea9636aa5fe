// Upstream failures as the client sees them: refused (502), hung (504),
// reset, cut mid-stream (SSE error event), and the SSE framing itself.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startMock, startGateway, stopAll, mockReply, mockRequestsWith, marker, closedPort,
  RawConn, rawRequest, httpRequest, openaiError, chatBody, sseData, sleep,
} from './lib/harness.mjs';

const UPSTREAM_TIMEOUT = 500;

let mock;
let gw; // short upstream timeout
let gwLong; // default upstream timeout, for slow streams

before(async () => {
  mock = await startMock();
  gw = await startGateway(mock.url + '/v1', {
    args: ['--upstream-timeout-ms', String(UPSTREAM_TIMEOUT)],
  });
  gwLong = await startGateway(mock.url + '/v1');
});

after(stopAll);

const T = { timeout: 20000 };
const json = { 'Content-Type': 'application/json' };
const post = (g, body, headers = {}) => httpRequest('POST', '/v1/chat/completions',
  { Authorization: `Bearer ${g.key}`, ...json, ...headers }, body);

function assertError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.ok(r.headers['x-switchyard-request-id'], 'x-switchyard-request-id');
  return openaiError(r.text);
}

test('streaming: SSE framing, every chunk valid JSON, ends with [DONE]', T, async () => {
  const text = `sse ${marker()}`;
  const r = await rawRequest(gw.port, post(gw, chatBody(text, { stream: true }),
    { 'x-mock-chunks': '4' }));
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /^text\/event-stream/);
  assert.ok(r.headers['x-switchyard-request-id']);
  const data = sseData(r.text);
  assert.equal(data[data.length - 1], '[DONE]');
  let content = '';
  for (const d of data.slice(0, -1)) {
    const j = JSON.parse(d);
    assert.equal(j.object, 'chat.completion.chunk');
    content += j.choices?.[0]?.delta?.content ?? '';
  }
  assert.equal(content, mockReply(text));
});

test('the first streamed chunk is not held back until the upstream finishes', T, async () => {
  const text = `ttft ${marker()}`;
  const c = new RawConn(gwLong.port);
  await c.connect();
  try {
    const t0 = Date.now();
    await c.write(post(gwLong, chatBody(text, { stream: true }),
      { 'x-mock-chunks': '5', 'x-mock-chunk-delay-ms': '400' }));
    await c.waitFor(() => c.buf.includes('"content"'), 1500, 'first content chunk');
    const first = Date.now() - t0;
    assert.ok(first < 1500, `first chunk after ${first} ms`);
    await c.waitFor(() => c.buf.includes('[DONE]'), 5000, '[DONE]');
    assert.ok(Date.now() - t0 >= 4 * 400 * 0.8, 'the stream took as long as the upstream');
  } finally {
    c.close();
  }
});

test('upstream cut mid-stream: the client stream ends with an error event', T, async () => {
  const text = `cut ${marker()}`;
  const r = await rawRequest(gw.port, post(gw, chatBody(text, { stream: true }),
    { 'x-mock-fault': 'cut', 'x-mock-chunks': '8' }), 8000);
  assert.equal(r.status, 200, 'headers were already sent when the upstream failed');
  const data = sseData(r.text);
  assert.ok(data.length >= 2, `some chunks before the cut: ${JSON.stringify(data)}`);
  assert.ok(!data.includes('[DONE]'), 'a cut stream must not look complete');
  const last = JSON.parse(data[data.length - 1]);
  assert.ok(last.error && typeof last.error.message === 'string',
    `last event is an error: ${data[data.length - 1]}`);
  // The chunks before it were real content.
  const first = JSON.parse(data[0]);
  assert.equal(first.object, 'chat.completion.chunk');
  await healthy();
});

test('a stream that outlives the upstream timeout ends with an error event', T, async () => {
  const t0 = Date.now();
  const r = await rawRequest(gw.port, post(gw, chatBody(`slowstream ${marker()}`, { stream: true }),
    { 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '100' }), 8000);
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  const data = sseData(r.text);
  assert.ok(!data.includes('[DONE]'), 'a timed-out stream must not look complete');
  const last = JSON.parse(data[data.length - 1]);
  assert.ok(last.error && typeof last.error.message === 'string', `last event: ${data[data.length - 1]}`);
  assert.ok(took >= UPSTREAM_TIMEOUT * 0.9 && took < UPSTREAM_TIMEOUT + 3000, `ended after ${took} ms`);
});

test('a 6 MB request body reaches the upstream intact (more than one socket write)', T, async () => {
  const text = `big request ${marker()}`;
  const pad = 'q'.repeat(6 << 20);
  const body = JSON.stringify({ model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: pad }, { role: 'user', content: text }] });
  const r = await rawRequest(gwLong.port, post(gwLong, body), 15000);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.equal(JSON.parse(r.text).choices[0].message.content, mockReply(text));
});

test('upstream hangs: 504 after the upstream timeout', T, async () => {
  const t0 = Date.now();
  const r = await rawRequest(gw.port, post(gw, chatBody(`hang ${marker()}`),
    { 'x-mock-fault': 'hang' }), UPSTREAM_TIMEOUT + 5000);
  const took = Date.now() - t0;
  const e = assertError(r, 504);
  assert.ok(e.message.length > 0);
  assert.ok(took >= UPSTREAM_TIMEOUT * 0.9 && took < UPSTREAM_TIMEOUT + 3000,
    `504 after ${took} ms (timeout ${UPSTREAM_TIMEOUT})`);
  await healthy();
});

test('upstream hangs on a stream: 504 (nothing sent yet)', T, async () => {
  const r = await rawRequest(gw.port, post(gw, chatBody(`hangs ${marker()}`, { stream: true }),
    { 'x-mock-fault': 'hang' }), UPSTREAM_TIMEOUT + 5000);
  assertError(r, 504);
});

test('upstream resets the connection: 502', T, async () => {
  const r = await rawRequest(gw.port, post(gw, chatBody(`reset ${marker()}`),
    { 'x-mock-fault': 'reset' }));
  assertError(r, 502);
  await healthy();
});

test('upstream sends malformed JSON: the client gets it or a 502, and the gateway survives', T, async () => {
  const text = `malformed ${marker()}`;
  const viaGw = await rawRequest(gw.port, post(gw, chatBody(text), { 'x-mock-fault': 'malformed' }));
  const direct = await rawRequest(mock.port, httpRequest('POST', '/v1/chat/completions',
    { ...json, 'x-mock-fault': 'malformed' }, chatBody(text)));
  if (viaGw.status === 502) {
    openaiError(viaGw.text);
  } else {
    assert.equal(viaGw.status, direct.status);
    assert.equal(viaGw.text, direct.text, 'passed through unchanged');
  }
  await healthy();
});

test('upstream 500 body and status pass through byte for byte', T, async () => {
  const text = `p500 ${marker()}`;
  const viaGw = await rawRequest(gw.port, post(gw, chatBody(text), { 'x-mock-fault': '500' }));
  const direct = await rawRequest(mock.port, httpRequest('POST', '/v1/chat/completions',
    { ...json, 'x-mock-fault': '500' }, chatBody(text)));
  assert.equal(direct.status, 500);
  assert.equal(viaGw.status, 500);
  assert.equal(viaGw.text, direct.text);
  assert.ok(viaGw.headers['x-switchyard-request-id']);
});

test('upstream refused: 502 for plain and streaming requests', T, async () => {
  const port = await closedPort();
  const down = await startGateway(`http://127.0.0.1:${port}/v1`);
  const t0 = Date.now();
  const r = await rawRequest(down.port, post(down, chatBody('down')), 8000);
  const e = assertError(r, 502);
  assert.ok(e.message.length > 0);
  assert.ok(Date.now() - t0 < 5000, 'a refused connection fails fast');
  const rs = await rawRequest(down.port, post(down, chatBody('down', { stream: true })), 8000);
  assertError(rs, 502);
  const rm = await rawRequest(down.port, httpRequest('GET', '/v1/models',
    { Authorization: `Bearer ${down.key}` }), 8000);
  assertError(rm, 502);
  // Liveness is about the gateway itself, not its upstream.
  const h = await rawRequest(down.port, httpRequest('GET', '/healthz'));
  assert.equal(h.status, 200);
  assert.equal(await down.stop(), 0);
});

test('a slow upstream does not block other requests on the same gateway', T, async () => {
  const slow = `slow ${marker()}`;
  const fast = `fast ${marker()}`;
  const t0 = Date.now();
  const slowP = rawRequest(gw.port, post(gw, chatBody(slow), { 'x-mock-latency-ms': '400' }));
  await sleep(20);
  const rf = await rawRequest(gw.port, post(gw, chatBody(fast)));
  const fastTook = Date.now() - t0;
  const rs = await slowP;
  assert.equal(JSON.parse(rf.text).choices[0].message.content, mockReply(fast));
  assert.equal(JSON.parse(rs.text).choices[0].message.content, mockReply(slow));
  assert.ok(fastTook < 350, `the fast request took ${fastTook} ms behind a slow one`);
  assert.equal((await mockRequestsWith(mock, slow)).length, 1);
});

test('a client that disconnects mid-stream frees the upstream connection', T, async () => {
  // One upstream connection only: if the aborted transfer kept running, the
  // next request would wait for the whole slow stream (about 3 s).
  const one = await startGateway(mock.url + '/v1', { workers: 1,
    args: ['--upstream-max-connections', '1'] });
  const c = new RawConn(one.port);
  await c.connect();
  await c.write(post(one, chatBody(`gone ${marker()}`, { stream: true }),
    { 'x-mock-chunks': '30', 'x-mock-chunk-delay-ms': '100' }));
  await c.waitFor(() => c.buf.includes('"content"'), 3000, 'first streamed chunk');
  c.close();
  await sleep(100);
  const text = `next ${marker()}`;
  const t0 = Date.now();
  const r = await rawRequest(one.port, post(one, chatBody(text)), 5000);
  const took = Date.now() - t0;
  assert.equal(JSON.parse(r.text).choices[0].message.content, mockReply(text));
  assert.ok(took < 1500, `next request took ${took} ms: the aborted stream still held the upstream`);
  assert.equal(await one.stop(), 0);
});

async function healthy() {
  const h = await rawRequest(gw.port, httpRequest('GET', '/healthz'));
  assert.equal(h.status, 200, 'gateway still healthy');
}

test('gateway and mock exit cleanly on SIGTERM', T, async () => {
  assert.equal(await gw.stop(), 0);
  assert.equal(await gwLong.stop(), 0);
  assert.equal(await mock.stop(), 0);
});
