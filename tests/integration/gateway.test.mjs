// switchyard in front of switchyard-mock, driven by the official `openai` npm
// package: what an app that only changed its base URL sees.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  APIError, APIConnectionError, AuthenticationError, BadRequestError,
  InternalServerError, NotFoundError, RateLimitError,
} from 'openai';
import {
  startMock, startGateway, stopAll, mockReply, mockRequestsWith, marker, sleep,
} from './lib/harness.mjs';
import { client, collectStream } from './lib/sdk.mjs';

let mock;
let gw;
let sdk; // through the gateway
let direct; // straight to the mock

before(async () => {
  mock = await startMock();
  gw = await startGateway(mock.url + '/v1');
  sdk = client(gw.base, gw.key);
  direct = client(mock.url + '/v1', 'unused');
});

after(stopAll);

const T = { timeout: 20000 };
const chat = (text, extra = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: text }],
  ...extra,
});

test('non-streaming chat returns the upstream answer unchanged', T, async () => {
  const text = `hello ${marker()}`;
  const { data, response } = await sdk.chat.completions.create(chat(text)).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, mockReply(text));
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage && data.usage.total_tokens > 0, 'usage passed through');
  assert.ok(response.headers.get('x-switchyard-request-id'), 'x-switchyard-request-id');

  const same = await direct.chat.completions.create(chat(text));
  assert.equal(same.choices[0].message.content, data.choices[0].message.content);
  assert.deepEqual(same.usage, data.usage);
});

test('the last user message decides the answer (multi-turn)', T, async () => {
  const last = `second ${marker()}`;
  const r = await sdk.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: last },
    ],
  });
  assert.equal(r.choices[0].message.content, mockReply(last));
});

test('streaming chat: chunks arrive as separate events and reassemble to the answer', T, async () => {
  const text = `stream ${marker()}`;
  const chunks = 6;
  const delay = 80;
  const s = client(gw.base, gw.key, {
    headers: { 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': String(delay) },
  });
  const t0 = Date.now();
  const stream = await s.chat.completions.create(chat(text, { stream: true }));
  const got = await collectStream(stream);
  assert.equal(got.content, mockReply(text));
  assert.equal(got.contentEvents, chunks, `expected ${chunks} content events, got ${got.contentEvents}`);
  // Not buffered to the end: the content events are spread over time like
  // the upstream sent them. The bound is generous: on a loaded 2-core machine
  // the mock's timers coalesce; a proxy that buffers to the end gives ~0 ms.
  const spread = got.times[got.times.length - 1] - got.times[0];
  assert.ok(spread >= (chunks - 1) * delay * 0.3,
    `content events spread over ${spread} ms, expected about ${(chunks - 1) * delay} ms`);
  // The first chunk reaches the client long before the last is produced.
  assert.ok(got.times[0] - t0 < (chunks - 1) * delay,
    `first content after ${got.times[0] - t0} ms: the stream was buffered`);
});

test('streaming and non-streaming give the same content', T, async () => {
  const text = `same ${marker()}`;
  const full = await sdk.chat.completions.create(chat(text));
  const got = await collectStream(await sdk.chat.completions.create(chat(text, { stream: true })));
  assert.equal(got.content, full.choices[0].message.content);
});

test('legacy completions', T, async () => {
  const prompt = `complete ${marker()}`;
  const r = await sdk.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt });
  const d = await direct.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt });
  assert.equal(r.object, 'text_completion');
  assert.ok(typeof r.choices[0].text === 'string' && r.choices[0].text.length > 0);
  assert.equal(r.choices[0].text, d.choices[0].text);
});

test('embeddings (SDK default base64 and explicit float) match the upstream', T, async () => {
  const input = ['embed one', `embed two ${marker()}`];
  const viaGw = await sdk.embeddings.create({ model: 'text-embedding-3-small', input });
  const viaMock = await direct.embeddings.create({ model: 'text-embedding-3-small', input });
  assert.equal(viaGw.data.length, 2);
  for (const [i, d] of viaGw.data.entries()) {
    assert.equal(d.index, i);
    assert.ok(Array.isArray(d.embedding) && d.embedding.length > 0, 'embedding is a float array');
    assert.ok(d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)));
  }
  assert.deepEqual(viaGw.data.map((d) => d.embedding), viaMock.data.map((d) => d.embedding));
  const asFloat = await sdk.embeddings.create({ model: 'text-embedding-3-small', input,
    encoding_format: 'float' });
  assert.equal(asFloat.data.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(asFloat.data[i].embedding.length, viaGw.data[i].embedding.length);
    // base64 carries float32; float JSON may carry more digits.
    for (let j = 0; j < asFloat.data[i].embedding.length; j++) {
      assert.ok(Math.abs(asFloat.data[i].embedding[j] - viaGw.data[i].embedding[j]) < 1e-5);
    }
  }
});

test('a large response (about 1 MB of embeddings) arrives intact', T, async () => {
  const input = Array.from({ length: 64 }, (_, i) => `big ${i}`);
  const req = { model: 'text-embedding-3-small', input, dimensions: 1024, encoding_format: 'float' };
  const viaGw = await sdk.embeddings.create(req).withResponse();
  const viaMock = await direct.embeddings.create(req);
  assert.equal(viaGw.data.data.length, 64);
  assert.equal(viaGw.data.data[0].embedding.length, 1024);
  assert.deepEqual(viaGw.data, viaMock);
});

test('models list matches the upstream', T, async () => {
  const ids = [];
  for await (const m of sdk.models.list()) ids.push(m.id);
  const want = [];
  for await (const m of direct.models.list()) want.push(m.id);
  assert.ok(ids.length > 0);
  assert.deepEqual(ids, want);
});

test('wrong client key: AuthenticationError, and nothing reaches the upstream', T, async () => {
  const m = marker('badkey');
  const bad = client(gw.base, 'sy-not-a-valid-key');
  await assert.rejects(bad.chat.completions.create(chat(m)), (e) => {
    assert.ok(e instanceof AuthenticationError, `got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, 401);
    assert.equal(typeof e.error?.message, 'string');
    return true;
  });
  assert.equal((await mockRequestsWith(mock, m)).length, 0, 'unauthenticated request was forwarded');
});

const faults = [
  ['429', RateLimitError, 429],
  ['500', InternalServerError, 500],
  ['503', InternalServerError, 503],
  ['400', BadRequestError, 400],
  ['401', AuthenticationError, 401],
  ['404', NotFoundError, 404],
];
for (const [fault, cls, status] of faults) {
  test(`upstream ${fault} surfaces as ${cls.name} with the upstream's error`, T, async () => {
    const text = marker(`fault${fault}`);
    const c = client(gw.base, gw.key, { headers: { 'x-mock-fault': fault } });
    const d = client(mock.url + '/v1', 'unused', { headers: { 'x-mock-fault': fault } });
    let want;
    await assert.rejects(d.chat.completions.create(chat(text)), (e) => { want = e; return true; });
    await assert.rejects(c.chat.completions.create(chat(text)), (e) => {
      assert.ok(e instanceof cls, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, status);
      assert.deepEqual(e.error, want.error, 'upstream error body passed through unchanged');
      return true;
    });
  });
}

test('upstream 429 keeps its Retry-After header', T, async () => {
  const c = client(gw.base, gw.key, { headers: { 'x-mock-fault': '429' } });
  const d = client(mock.url + '/v1', 'unused', { headers: { 'x-mock-fault': '429' } });
  let want;
  await assert.rejects(d.chat.completions.create(chat('ra')), (e) => { want = e; return true; });
  assert.ok(want.headers?.get('retry-after'), 'the mock sends Retry-After on 429');
  await assert.rejects(c.chat.completions.create(chat('ra')), (e) => {
    assert.ok(e instanceof RateLimitError);
    assert.equal(e.headers?.get('retry-after'), want.headers.get('retry-after'));
    return true;
  });
});

test('upstream cut mid-stream: the SDK sees an error, not a silent success', T, async () => {
  const c = client(gw.base, gw.key, { headers: { 'x-mock-fault': 'cut', 'x-mock-chunks': '8' } });
  const stream = await c.chat.completions.create(chat(`cut ${marker()}`, { stream: true }));
  await assert.rejects(collectStream(stream), (e) => {
    assert.ok(e instanceof APIError, `got ${e?.constructor?.name}: ${e?.message}`);
    assert.ok(!(e instanceof APIConnectionError),
      'the gateway should end the stream with an error event, not a broken connection');
    return true;
  });
});

test('aborted stream: the client stops early, the gateway stays healthy', T, async () => {
  const text = `abort ${marker()}`;
  const chunks = 20;
  const c = client(gw.base, gw.key, {
    headers: { 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': '100' },
  });
  const ac = new AbortController();
  const stream = await c.chat.completions.create(chat(text, { stream: true }), { signal: ac.signal });
  let content = '';
  let n = 0;
  const t0 = Date.now();
  try {
    for await (const chunk of stream) {
      const d = chunk.choices?.[0]?.delta?.content;
      if (d) {
        content += d;
        if (++n === 2) ac.abort();
      }
    }
  } catch (e) {
    assert.ok(e.name === 'AbortError' || e.constructor?.name === 'APIUserAbortError',
      `unexpected error ${e?.constructor?.name}: ${e?.message}`);
  }
  assert.ok(Date.now() - t0 < chunks * 100, 'the abort ended the stream early');
  const full = mockReply(text);
  assert.ok(content.length < full.length && full.startsWith(content),
    `partial content ${JSON.stringify(content)} is a prefix of the answer`);
  assert.equal((await mockRequestsWith(mock, text)).length, 1, 'the mock saw the request once');

  // Still serving: health and a full request right after.
  await sleep(50);
  const h = await fetch(`${gw.url}/healthz`, { signal: AbortSignal.timeout(3000) });
  assert.equal(h.status, 200);
  const after = `after abort ${marker()}`;
  const r = await sdk.chat.completions.create(chat(after));
  assert.equal(r.choices[0].message.content, mockReply(after));
});

test('concurrent requests each get their own answer', T, async () => {
  const texts = Array.from({ length: 16 }, (_, i) => `conc ${i} ${marker()}`);
  const res = await Promise.all(texts.map((t, i) => (i % 2
    ? sdk.chat.completions.create(chat(t, { stream: true })).then(collectStream)
      .then((g) => g.content)
    : sdk.chat.completions.create(chat(t)).then((r) => r.choices[0].message.content))));
  assert.deepEqual(res, texts.map(mockReply));
});

test('gateway exits cleanly on SIGTERM', T, async () => {
  const code = await gw.stop();
  assert.equal(code, 0);
});
