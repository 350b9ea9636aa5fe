// The gateway's HTTP/1.1 front end over raw sockets: keep-alive, pipelining,
// chunked bodies, Expect: 100-continue, limits, validation, auth, and what
// reaches the upstream.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startMock, startGateway, stopAll, mockReply, mockRequests, mockRequestsWith, marker,
  RawConn, rawRequest, httpRequest, openaiError, chatBody, sleep, UPSTREAM_KEY, parseResponses,
} from './lib/harness.mjs';

const MAX_HEADER = 8192;
const MAX_BODY = 65536;

let mock;
let gw;

before(async () => {
  mock = await startMock();
  gw = await startGateway(mock.url + '/v1', {
    args: ['--max-header-bytes', String(MAX_HEADER), '--max-body-bytes', String(MAX_BODY)],
  });
});

after(stopAll);

const T = { timeout: 20000 };
const auth = () => ({ Authorization: `Bearer ${gw.key}` });
const json = { 'Content-Type': 'application/json' };
const chatReq = (text, headers = {}, extra = {}) => httpRequest('POST', '/v1/chat/completions',
  { ...auth(), ...json, ...headers }, chatBody(text, extra));

function assertChatOk(r, text) {
  assert.equal(r.status, 200, `status ${r.status}: ${r.text.slice(0, 300)}`);
  assert.equal(JSON.parse(r.text).choices[0].message.content, mockReply(text));
}

function requestId(r) {
  const id = r.headers['x-switchyard-request-id'];
  assert.ok(id && id.length > 0, `x-switchyard-request-id missing on a ${r.status} response`);
  return id;
}

/** Asserts an OpenAI-shaped error with the status; returns the error object. */
function assertError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  requestId(r);
  assert.match(r.headers['content-type'] ?? '', /application\/json/);
  return openaiError(r.text);
}

test('GET /healthz and /readyz answer 200 with a request id', T, async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await rawRequest(gw.port, httpRequest('GET', p));
    assert.equal(r.status, 200, p);
    requestId(r);
  }
});

test('request ids differ between requests', T, async () => {
  const a = await rawRequest(gw.port, httpRequest('GET', '/healthz'));
  const b = await rawRequest(gw.port, httpRequest('GET', '/healthz'));
  assert.notEqual(requestId(a), requestId(b));
});

test('unknown non-/v1 path: 404, OpenAI-shaped', T, async () => {
  const r = await rawRequest(gw.port, httpRequest('GET', '/nope', auth()));
  assertError(r, 404);
});

test('keep-alive: several requests on one connection', T, async () => {
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    for (let i = 0; i < 3; i++) {
      const text = `ka ${i} ${marker()}`;
      await c.write(chatReq(text));
      const [r] = await c.readResponses(1);
      assertChatOk(r, text);
      requestId(r);
    }
    assert.equal(c.closed, false, 'connection kept open');
  } finally {
    c.close();
  }
});

test('pipelining: two requests in one write, answers in order', T, async () => {
  const a = `pipe-a ${marker()}`;
  const b = `pipe-b ${marker()}`;
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    // The first answer is slower upstream; it must still come first.
    await c.write(Buffer.concat([chatReq(a, { 'x-mock-latency-ms': '300' }), chatReq(b),
      httpRequest('GET', '/healthz')]));
    const rs = await c.readResponses(3, 8000);
    assert.equal(rs.length, 3);
    assertChatOk(rs[0], a);
    assertChatOk(rs[1], b);
    assert.equal(rs[2].status, 200);
    assert.notEqual(requestId(rs[0]), requestId(rs[1]));
  } finally {
    c.close();
  }
});

test('Connection: close is honoured, even with a request pipelined behind it', T, async () => {
  const a = `close-a ${marker()}`;
  const b = `close-b ${marker()}`;
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    await c.write(Buffer.concat([chatReq(a, { Connection: 'close' }), chatReq(b)]));
    const [r] = await c.readResponses(1);
    assertChatOk(r, a);
    await c.waitClosed(3000);
    assert.equal(parseResponsesCount(c.buf), 0, 'nothing answered after Connection: close');
  } finally {
    c.close();
  }
  assert.equal((await mockRequestsWith(mock, b)).length, 0, 'the request after close was not run');
});

function parseResponsesCount(buf) {
  return buf.length === 0 ? 0 : buf.toString('latin1').split('HTTP/1.1 ').length - 1;
}

test('HTTP/1.0 request gets an answer and a close', T, async () => {
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    await c.write('GET /healthz HTTP/1.0\r\n\r\n');
    await c.waitClosed(3000);
    const { responses } = parseResponses(c.buf, true);
    assert.equal(responses.length, 1);
    assert.equal(responses[0].status, 200);
  } finally {
    c.close();
  }
});

test('chunked request body, split across writes', T, async () => {
  const text = `chunked ${marker()}`;
  const body = Buffer.from(chatBody(text));
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    await c.write(httpRequest('POST', '/v1/chat/completions',
      { ...auth(), ...json, 'Transfer-Encoding': 'chunked' }));
    const parts = [body.subarray(0, 10), body.subarray(10, 25), body.subarray(25)];
    for (const p of parts) {
      await sleep(30);
      await c.write(Buffer.concat([Buffer.from(p.length.toString(16) + '\r\n'), p, Buffer.from('\r\n')]));
    }
    await c.write('0\r\n\r\n');
    const [r] = await c.readResponses(1);
    assertChatOk(r, text);
  } finally {
    c.close();
  }
  const seen = await mockRequestsWith(mock, text);
  assert.equal(seen.length, 1);
  assert.deepEqual(bodyJson(seen[0]), JSON.parse(body.toString()), 'upstream got the whole body');
});

test('Expect: 100-continue gets 100 Continue before the body is sent', T, async () => {
  const text = `expect ${marker()}`;
  const body = chatBody(text);
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    await c.write(httpRequest('POST', '/v1/chat/completions', { ...auth(), ...json,
      Expect: '100-continue', 'Content-Length': String(Buffer.byteLength(body)) }));
    await c.waitFor(() => /^HTTP\/1\.1 100 /.test(c.buf.toString('latin1')), 3000,
      '100 Continue');
    await c.write(body);
    const [r] = await c.readResponses(1);
    assertChatOk(r, text);
  } finally {
    c.close();
  }
});

test(`header block just under the limit is accepted`, T, async () => {
  const text = `bigheader-ok ${marker()}`;
  const r = await rawRequest(gw.port, chatReq(text, { 'x-padding': 'a'.repeat(MAX_HEADER - 1500) }));
  assertChatOk(r, text);
});

test('oversized header block: 431', T, async () => {
  const text = `bigheader ${marker()}`;
  const r = await rawRequest(gw.port, chatReq(text, { 'x-padding': 'a'.repeat(MAX_HEADER + 100) }));
  assertError(r, 431);
  assert.equal((await mockRequestsWith(mock, text)).length, 0);
});

test('many headers past the limit: 431', T, async () => {
  const h = {};
  for (let i = 0; i < 400; i++) h[`x-pad-${i}`] = 'b'.repeat(30);
  const r = await rawRequest(gw.port, chatReq('many headers', h));
  assertError(r, 431);
});

test('body just under the limit is accepted', T, async () => {
  const text = `bigbody-ok ${marker()}`;
  const pad = 'p'.repeat(MAX_BODY - 500);
  const body = JSON.stringify({ model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: pad }, { role: 'user', content: text }] });
  assert.ok(body.length < MAX_BODY);
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, body));
  assertChatOk(r, text);
});

test('oversized body (Content-Length): 413 without reading it all', T, async () => {
  const text = `bigbody ${marker()}`;
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    // Only the headers: the declared length alone must be enough to refuse.
    await c.write(httpRequest('POST', '/v1/chat/completions', { ...auth(), ...json,
      'Content-Length': String(MAX_BODY + 1) }));
    const [r] = await c.readResponses(1, 3000);
    assertError(r, 413);
  } finally {
    c.close();
  }
  assert.equal((await mockRequestsWith(mock, text)).length, 0);
});

test('oversized chunked body: 413', T, async () => {
  const c = new RawConn(gw.port);
  await c.connect();
  try {
    await c.write(httpRequest('POST', '/v1/chat/completions',
      { ...auth(), ...json, 'Transfer-Encoding': 'chunked' }));
    const chunk = 'x'.repeat(16384);
    const frame = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    // Keep sending until the gateway answers (or refuses more data).
    for (let i = 0; i < (MAX_BODY / chunk.length) * 4 && !c.closed && c.buf.length === 0; i++) {
      if (!(await c.write(frame))) break;
      await sleep(5);
    }
    const [r] = await c.readResponses(1, 3000);
    assertError(r, 413);
  } finally {
    c.close();
  }
});

test('malformed JSON: 400, OpenAI-shaped, not forwarded', T, async () => {
  const m = marker('badjson');
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${m}"}`));
  const e = assertError(r, 400);
  assert.equal(e.type, 'invalid_request_error');
  assert.equal((await mockRequestsWith(mock, m)).length, 0);
});

test('JSON body that is not an object: 400', T, async () => {
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, '[1,2,3]'));
  assertError(r, 400);
});

test('wrong content type: 400; application/json with charset: accepted', T, async () => {
  const m = marker('ctype');
  for (const ep of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']) {
    const r = await rawRequest(gw.port, httpRequest('POST', ep,
      { ...auth(), 'Content-Type': 'text/plain' }, chatBody(m, { prompt: m, input: m })));
    const e = assertError(r, 400);
    assert.match(e.message, /content.type|json/i, `${ep}: message names the problem: ${e.message}`);
  }
  const r0 = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    auth(), chatBody(m)));
  assertError(r0, 400);
  assert.equal((await mockRequestsWith(mock, m)).length, 0);

  const ok = `ctype-ok ${marker()}`;
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), 'Content-Type': 'application/json; charset=utf-8' }, chatBody(ok)));
  assertChatOk(r, ok);
});

test('missing model or messages: 400 naming the field', T, async () => {
  const m = marker('missing');
  const cases = [
    ['/v1/chat/completions', { messages: [{ role: 'user', content: m }] }, 'model'],
    ['/v1/chat/completions', { model: 'gpt-4o-mini', note: m }, 'messages'],
    ['/v1/completions', { prompt: m }, 'model'],
    ['/v1/embeddings', { input: m }, 'model'],
  ];
  for (const [ep, body, field] of cases) {
    const r = await rawRequest(gw.port, httpRequest('POST', ep, { ...auth(), ...json },
      JSON.stringify(body)));
    const e = assertError(r, 400);
    assert.ok(e.message.includes(field) || e.param === field,
      `${ep} without ${field}: error names it (${JSON.stringify(e)})`);
  }
  assert.equal((await mockRequestsWith(mock, m)).length, 0);
});

test('model that is empty, not a string or "\\u0000": 400; escaped model names and RFC 8259 edge cases', T, async () => {
  const m = marker('model');
  const msgs = `"messages":[{"role":"user","content":"${m}"}]`;
  for (const model of ['""', '"\\u0000"', '"\\u0000x"', '42', 'null', '["gpt"]']) {
    const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
      { ...auth(), ...json }, `{"model":${model},${msgs}}`));
    const e = assertError(r, 400);
    assert.equal(e.param, 'model', `model ${model}: ${JSON.stringify(e)}`);
  }
  /* not JSON by RFC 8259: a raw control character in a string, numbers like 01, trailing data */
  for (const body of [`{"model":"gpt-4o-mini",${msgs},"x":"a\tb"}`, `{"model":"gpt-4o-mini",${msgs},"n":01}`,
    `{"model":"gpt-4o-mini",${msgs}} {}`, `{"model":"gpt-4o-mini",${msgs},"s":"\\ud800"}`]) {
    const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
      { ...auth(), ...json }, body));
    const e = assertError(r, 400);
    assert.match(e.message, /parse the JSON/, body);
  }
  assert.equal((await mockRequestsWith(mock, m)).length, 0);
  /* an escaped model name is decoded like any JSON string */
  const ok = `escaped-model ${marker()}`;
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, `{"model":"gpt-4o-\\u006dini","messages":[{"role":"user","content":"${ok}"}]}`));
  assertChatOk(r, ok);
});

test('missing or wrong client key: 401, not forwarded', T, async () => {
  const m = marker('noauth');
  const variants = [{}, { Authorization: 'Bearer wrong-key' }, { Authorization: gw.key },
    { Authorization: `Basic ${Buffer.from('u:' + gw.key).toString('base64')}` },
    { Authorization: `Bearer ${gw.key}x` }];
  for (const h of variants) {
    const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
      { ...json, ...h }, chatBody(m)));
    const e = assertError(r, 401);
    assert.ok(!e.message.includes(gw.key), 'the key is not echoed back');
  }
  const r = await rawRequest(gw.port, httpRequest('GET', '/v1/models', {}));
  assertError(r, 401);
  assert.equal((await mockRequestsWith(mock, m)).length, 0);
});

test('upstream gets its own key, never the client key or x-switchyard-* headers', T, async () => {
  const text = `headers ${marker()}`;
  const r = await rawRequest(gw.port, chatReq(text, {
    'x-switchyard-debug': 'must-not-pass', 'x-custom-app': 'kept', 'x-mock-latency-ms': '1',
  }));
  assertChatOk(r, text);
  const [q] = await mockRequestsWith(mock, text);
  assert.ok(q, 'the mock saw the request');
  assert.equal(q.method, 'POST');
  assert.equal(q.path, '/v1/chat/completions');
  assert.equal(q.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.equal(q.headers['x-custom-app'], 'kept');
  assert.equal(q.headers['x-mock-latency-ms'], '1');
  for (const k of Object.keys(q.headers)) {
    assert.ok(!k.startsWith('x-switchyard-'), `header ${k} reached the upstream`);
  }
  assert.notEqual(q.headers.host, '127.0.0.1', 'client Host header not forwarded');
  // Nowhere in anything the mock ever received.
  const all = JSON.stringify(await mockRequests(mock));
  assert.ok(!all.includes(gw.key), 'client key reached the upstream');
});

test('other /v1 paths pass through to the upstream', T, async () => {
  const m = marker('passthru');
  const body = JSON.stringify({ model: 'gpt-4o-mini', input: m });
  const viaGw = await rawRequest(gw.port, httpRequest('POST', '/v1/responses',
    { ...auth(), ...json }, body));
  const direct = await rawRequest(mock.port, httpRequest('POST', '/v1/responses', json, body));
  assert.equal(viaGw.status, direct.status);
  assert.equal(viaGw.text, direct.text);
  requestId(viaGw);
  const seen = await mockRequestsWith(mock, m);
  assert.ok(seen.some((q) => q.path === '/v1/responses' && q.method === 'POST'));
});

test('multimodal and tool requests pass through unchanged', T, async () => {
  const m = marker('mm');
  const png = Buffer.alloc(3000, 7).toString('base64');
  const req = {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You see images.' },
      { role: 'user', content: [
        { type: 'text', text: `describe ${m}` },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
      ] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":3}' },
      { role: 'user', content: `and now? ${m}` },
    ],
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } },
        required: ['city'] } } }],
    tool_choice: 'auto',
    n: 2,
    logprobs: true,
    top_logprobs: 2,
    response_format: { type: 'json_object' },
    temperature: 0.25,
    seed: 42,
    user: 'u-123',
  };
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, JSON.stringify(req)));
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const [q] = await mockRequestsWith(mock, m);
  assert.deepEqual(bodyJson(q), req);

  const sreq = { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `so ${m}x` }] };
  const rs = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions',
    { ...auth(), ...json }, JSON.stringify(sreq)));
  assert.equal(rs.status, 200);
  const [qs] = await mockRequestsWith(mock, `so ${m}x`);
  assert.deepEqual(bodyJson(qs), sreq);
});

function bodyJson(q) {
  return typeof q.body === 'string' ? JSON.parse(q.body) : q.body;
}

test('gateway and mock exit cleanly on SIGTERM', T, async () => {
  assert.equal(await gw.stop(), 0);
  assert.equal(await mock.stop(), 0);
});
