// The capture store seen from outside: switchyard in front of switchyard-mock,
// driven by the official `openai` package, the store read back with
// switchyardctl (read-only, while the gateway runs). Each test starts its own
// gateway on a fresh data dir so record counts are exact.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import {
  startMock, startGateway, stopAll, mockReply, mockRequestsWith, marker, sleep, openaiError,
  newClientKey, sha256hex, SLOW,
} from './lib/harness.mjs';
import { client } from './lib/sdk.mjs';
import {
  dataDirOf, listCaptures, showCapture, captureStats, waitForCaptures, exportStore,
  postFeedback, metrics, rawChat,
} from './lib/capture.mjs';

let mock;

before(async () => {
  mock = await startMock();
});

after(stopAll);

const T = { timeout: 60000 * SLOW };
const CAP = 'x-switchyard-capture-id';
// Long enough for several group commits (flush_ms is 10 ms by default).
const SETTLE_MS = 300 * SLOW;

/** Collects an SDK chat stream: content, chunk id, finish reason, usage. */
async function drain(stream) {
  const out = { content: '', id: null, model: null, finish: null, usage: null, role: null };
  for await (const ch of stream) {
    out.id ??= ch.id;
    out.model ??= ch.model;
    if (ch.usage) out.usage = ch.usage;
    const c = ch.choices?.[0];
    if (!c) continue;
    if (c.delta?.role) out.role = c.delta.role;
    if (c.delta?.content) out.content += c.delta.content;
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}

/** One chat through the SDK; returns { sent, capId, seen, stream }. */
async function sdkChat(sdk, i, text, stream) {
  const messages = i % 3 === 0
    ? [{ role: 'system', content: `be brief ${i}` }, { role: 'user', content: 'earlier question' },
      { role: 'assistant', content: 'earlier answer' }, { role: 'user', content: text }]
    : [{ role: 'user', content: text }];
  const sent = { model: i % 4 === 1 ? 'gpt-4.1-nano' : 'gpt-4o-mini', messages };
  if (stream) {
    sent.stream = true;
    if (i % 4 === 3) sent.stream_options = { include_usage: true };
  } else if (i % 5 === 0) {
    sent.temperature = 0.5;
  }
  const { data, response } = await sdk.chat.completions.create(sent).withResponse();
  assert.equal(response.status, 200);
  const seen = stream ? await drain(data) : data;
  return { sent, capId: response.headers.get(CAP), seen, stream };
}

test('N mixed streaming and non-streaming chats produce exactly N matching records', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const sdk = client(gw.base, gw.key);
  const N = 40;
  const results = [];
  // Eight at a time: concurrent enough to share group commits across workers.
  for (let b = 0; b < N; b += 8) {
    results.push(...await Promise.all(Array.from({ length: 8 }, (_, k) => {
      const i = b + k;
      return sdkChat(sdk, i, `capture ${i} ${marker()}`, i % 2 === 1);
    })));
  }
  for (const r of results) {
    assert.match(r.capId ?? '', /^[1-9][0-9]*$/, `${CAP} header is a decimal id`);
    const text = r.sent.messages.at(-1).content;
    const content = r.stream ? r.seen.content : r.seen.choices[0].message.content;
    assert.equal(content, mockReply(text), 'the client saw the mock answer');
  }
  const ids = results.map((r) => r.capId);
  assert.equal(new Set(ids).size, N, 'capture ids are unique');

  const recs = await waitForCaptures(dir, (rs) => rs.length >= N, { what: `${N} records` });
  await sleep(SETTLE_MS);
  const final = await listCaptures(dir);
  assert.equal(final.length, N, `exactly ${N} records (got ${final.length})`);
  assert.deepEqual(new Set(final.map((r) => r.id)), new Set(ids),
    'every capture-id header names a stored record and nothing else is stored');
  assert.ok(recs.every((r) => r.http_status === 200));

  for (const r of results) {
    const rec = await showCapture(dir, r.capId);
    assert.equal(rec.id, r.capId);
    assert.equal(rec.http_status, 200);
    assert.equal(rec.endpoint, '/v1/chat/completions');
    assert.equal(rec.stream, r.stream);
    assert.equal(rec.model, r.sent.model);
    assert.equal(rec.route, r.sent.model, 'route is the requested model (no router yet)');
    assert.equal(rec.client_key_id, 'it', 'the client key name, not the key');
    assert.equal(rec.truncated, false);
    assert.equal(rec.finish_reason, 'stop');
    assert.ok(!JSON.stringify(rec).includes(gw.key), 'the client key is never captured');
    assert.deepEqual(rec.request, r.sent, 'stored request is what the client sent');
    if (!r.stream) {
      assert.deepEqual(rec.response, JSON.parse(JSON.stringify(r.seen)),
        'stored response is what the client received');
      assert.ok(rec.total_tokens > 0 && rec.total_tokens === r.seen.usage.total_tokens);
    } else {
      const resp = rec.response;
      assert.equal(resp.object, 'chat.completion', 'stream stored as one chat.completion');
      assert.equal(resp.id, r.seen.id);
      assert.equal(resp.model, r.seen.model);
      assert.equal(resp.choices.length, 1);
      assert.deepEqual(resp.choices[0].message, { role: 'assistant', content: r.seen.content });
      assert.equal(resp.choices[0].finish_reason, r.seen.finish);
      if (r.sent.stream_options?.include_usage) {
        assert.ok(r.seen.usage, 'the mock sent usage');
        assert.deepEqual(resp.usage, r.seen.usage, 'stream usage is kept');
        assert.equal(rec.total_tokens, r.seen.usage.total_tokens);
      }
    }
  }

  const st = await captureStats(dir);
  assert.equal(st.captures, N);
  assert.equal(st.unreadable, 0);
  assert.equal(st.by_model['gpt-4.1-nano'], N / 4);
  assert.equal(await gw.stop(), 0);
});

test('legacy completions are captured; embeddings and other paths are not', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const sdk = client(gw.base, gw.key);
  const prompt = `legacy ${marker()}`;
  const { data, response } = await sdk.completions.create({ model: 'gpt-3.5-turbo-instruct',
    prompt }).withResponse();
  const id = response.headers.get(CAP);
  assert.match(id ?? '', /^[1-9][0-9]*$/);
  const emb = await sdk.embeddings.create({ model: 'text-embedding-3-small',
    input: `embed ${marker()}` }).withResponse();
  assert.equal(emb.response.status, 200);
  assert.equal(emb.response.headers.get(CAP), null, 'embeddings are not captured');
  const models = await fetch(`${gw.base}/models`, { headers: { authorization: `Bearer ${gw.key}` } });
  assert.equal(models.status, 200);
  assert.equal(models.headers.get(CAP), null);

  await waitForCaptures(dir, (rs) => rs.length >= 1);
  await sleep(SETTLE_MS);
  const recs = await listCaptures(dir);
  assert.deepEqual(recs.map((r) => r.id), [id], 'only the completion is stored');
  const rec = await showCapture(dir, id);
  assert.equal(rec.endpoint, '/v1/completions');
  assert.equal(rec.request.prompt, prompt);
  assert.deepEqual(rec.response, JSON.parse(JSON.stringify(data)));
  assert.equal(await gw.stop(), 0);
});

test('inline base64 images are stored by reference (hash of the decoded bytes)', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const img = randomBytes(6000);
  const b64 = img.toString('base64');
  const text = `what is in this image ${marker()}`;
  const sent = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [
    { type: 'text', text },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}`, detail: 'low' } },
  ] }] };
  const { response } = await client(gw.base, gw.key).chat.completions.create(sent).withResponse();
  const id = response.headers.get(CAP);
  assert.ok(id);
  await waitForCaptures(dir, (rs) => rs.some((r) => r.id === id));
  const rec = await showCapture(dir, id);
  const parts = rec.request.messages[0].content;
  assert.deepEqual(parts[0], { type: 'text', text });
  assert.equal(parts[1].image_url.url, `sy-ref:sha256:${createHash('sha256').update(img).digest('hex')}`);
  assert.equal(parts[1].image_url.detail, 'low');
  assert.equal(rec.binary_refs.length, 1);
  assert.equal(await gw.stop(), 0);
  const raw = readFileSync(join(dir, 'data.mdb'));
  assert.ok(!raw.includes(b64.slice(0, 200)), 'the base64 payload is not in the store');
});

test('feedback and corrections flow into the export', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const sdk = client(gw.base, gw.key);
  const names = ['up', 'down', 'corrected', 'corrected_up', 'plain', 'comment', 'down_corrected'];
  const c = {};
  for (const [i, n] of names.entries()) {
    const text = `fb ${n} ${marker()}`;
    const stream = i % 2 === 1;
    const r = await sdkChat(sdk, 1 + 3 * i /* never the multi-turn shape */, text, stream);
    c[n] = { id: r.capId, text, answer: mockReply(text) };
  }
  await waitForCaptures(dir, (rs) => rs.length >= names.length);
  const corr = (n) => `The corrected answer for ${n}.`;
  const fb = [
    { capture_id: c.up.id, rating: 'up', tags: ['summarise'], labeller: 'lab-a' },
    { capture_id: c.down.id, rating: 'down', tags: ['summarise'], labeller: 'lab-b',
      comment: 'wrong' },
    { capture_id: c.corrected.id, correction: corr('corrected'), labeller: 'lab-a' },
    { capture_id: c.corrected_up.id, rating: 'up', correction: corr('corrected_up'), tags: ['draft'], user: 'end-user-7' },
    { capture_id: c.comment.id, comment: 'just a note' },
    { capture_id: c.down_corrected.id, rating: 'down', correction: corr('down_corrected') },
    { capture_id: c.up.id, rating: 4.5, labeller: 'lab-b' }, // several entries per capture
  ];
  for (const body of fb) {
    const r = await postFeedback(gw, body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'feedback');
    assert.equal(r.json.capture_id, body.capture_id);
    assert.match(r.json.id, /^[1-9][0-9]*$/);
    // Durable when the call returns: visible to a reader right away, no polling.
    const rec = await showCapture(dir, body.capture_id);
    const got = rec.feedback.find((f) => f.id === r.json.id);
    assert.ok(got, `feedback ${r.json.id} is in the store when 200 returns`);
    assert.equal(got.correction, body.correction ?? '');
    assert.equal(got.comment, body.comment ?? '');
    assert.deepEqual(got.tags, body.tags ?? []);
    assert.equal(got.labeller, body.labeller ?? '');
    if (body.user) {
      assert.ok(got.user_id_hash && got.user_id_hash !== body.user, 'the end user is hashed');
    }
  }
  assert.equal((await showCapture(dir, c.up.id)).feedback.length, 2);

  const byPrompt = (lines) => new Map(lines.map((l) => [l.messages.find((m) => m.role === 'user').content,
    l.messages.at(-1)]));
  // Everything (only the unrated ones and captured answers by default).
  const all = await exportStore(dir);
  assert.equal(all.summary.corrupt, 0);
  assert.equal(all.summary.scanned, names.length);
  assert.equal(all.train.length, names.length, JSON.stringify(all.summary));
  const m = byPrompt(all.train);
  for (const n of names) {
    const a = m.get(c[n].text);
    assert.ok(a, `${n} exported`);
    assert.equal(a.role, 'assistant');
    const want = n.includes('corrected') ? corr(n) : c[n].answer;
    assert.equal(a.content, want, `${n}: the assistant turn is the correction when there is one`);
  }
  assert.equal(all.summary.from_corrected, 3);
  assert.equal(all.summary.from_captured, names.length - 3);
  // Correction pairs: preferred = correction, non-preferred = the captured answer.
  const pairs = new Map(all.pairs.map((p) => [p.input.messages.at(-1).content, p]));
  for (const n of ['corrected', 'corrected_up', 'down_corrected']) {
    const p = pairs.get(c[n].text);
    assert.ok(p, `a preference pair for ${n}`);
    assert.deepEqual(p.preferred_output, [{ role: 'assistant', content: corr(n) }]);
    assert.deepEqual(p.non_preferred_output, [{ role: 'assistant', content: c[n].answer }]);
  }
  assert.equal(all.summary.pairs_correction, 3);

  const noNeg = await exportStore(dir, ['--exclude-negative']);
  const mn = byPrompt(noNeg.train);
  assert.ok(!mn.has(c.down.text), 'down-rated dropped');
  assert.ok(!mn.has(c.down_corrected.text), 'down-rated dropped even with a correction');
  assert.equal(noNeg.train.length, names.length - 2);
  assert.equal(noNeg.summary.filtered.negative, 2);

  const onlyCorr = await exportStore(dir, ['--only-corrected']);
  assert.deepEqual(new Set(onlyCorr.train.map((l) => l.messages.at(-2).content)),
    new Set([c.corrected.text, c.corrected_up.text, c.down_corrected.text]));

  const pos = await exportStore(dir, ['--only-positive']);
  assert.deepEqual(new Set(pos.train.map((l) => l.messages.at(-2).content)),
    new Set([c.up.text, c.corrected_up.text]));

  const st = await captureStats(dir);
  assert.equal(st.feedback, fb.length);
  assert.equal(st.corrected, 3);
  assert.equal(st.feedback_by_labeller['lab-a'], 2);
  assert.equal(await gw.stop(), 0);
});

test('feedback errors: 404 unknown id, 400 bad bodies (OpenAI-shaped), nothing stored', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const r0 = await rawChat(gw, `fb errors ${marker()}`);
  const id = r0.headers.get(CAP);
  assert.ok(id);
  await waitForCaptures(dir, (rs) => rs.length === 1);

  const nf = await postFeedback(gw, { capture_id: '12345', rating: 'up' });
  assert.equal(nf.status, 404, nf.text);
  assert.equal(openaiError(nf.text).code, 'capture_not_found');
  // An id that looks like ours but is one off.
  const nf2 = await postFeedback(gw, { capture_id: (BigInt(id) + 1n).toString(), rating: 'up' });
  assert.equal(nf2.status, 404, nf2.text);

  const bad = [
    ['no capture_id', { rating: 'up' }],
    ['capture_id not decimal', { capture_id: 'abc', rating: 'up' }],
    ['capture_id zero', { capture_id: '0', rating: 'up' }],
    ['capture_id negative', { capture_id: -5, rating: 'up' }],
    ['capture_id fraction', { capture_id: 1.5, rating: 'up' }],
    ['capture_id object', { capture_id: { id }, rating: 'up' }],
    ['bad rating word', { capture_id: id, rating: 'meh' }],
    ['rating bool', { capture_id: id, rating: true }],
    ['nothing to say', { capture_id: id }],
    ['only tags', { capture_id: id, tags: ['x'] }],
    ['tags not an array', { capture_id: id, rating: 'up', tags: 'x' }],
    ['tags with a number', { capture_id: id, rating: 'up', tags: ['x', 3] }],
    ['correction a number', { capture_id: id, correction: 42 }],
    ['comment an object', { capture_id: id, comment: { a: 1 } }],
    ['labeller a number', { capture_id: id, rating: 'up', labeller: 7 }],
    ['body an array', [{ capture_id: id, rating: 'up' }]],
    ['malformed JSON', `{"capture_id": "${id}", "rating": "up"`],
    ['empty body', ''],
  ];
  for (const [what, body] of bad) {
    const r = await postFeedback(gw, body);
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    openaiError(r.text);
  }
  const ct = await fetch(`${gw.url}/v1/feedback`, { method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Bearer ${gw.key}` },
    body: JSON.stringify({ capture_id: id, rating: 'up' }) });
  assert.equal(ct.status, 400);
  openaiError(await ct.text());

  const rec = await showCapture(dir, id);
  assert.equal(rec.feedback.length, 0, 'no rejected feedback was stored');
  assert.equal((await metrics(gw)).switchyard_feedback_total, 0);
  assert.equal(await gw.stop(), 0);

  // Capture off: feedback cannot be stored, so 503.
  const off = await startGateway(mock.url + '/v1', { args: ['--no-capture'] });
  const r = await postFeedback(off, { capture_id: id, rating: 'up' });
  assert.equal(r.status, 503, r.text);
  openaiError(r.text);
  assert.equal(await off.stop(), 0);
});

test('feedback sent right after the response finds its capture', T, async () => {
  // A client may rate an answer the moment it arrives, before the capture's
  // batch is committed; the id in the header must already be usable.
  const gw = await startGateway(mock.url + '/v1');
  for (let i = 0; i < 20; i++) {
    const r = await rawChat(gw, `quick fb ${i} ${marker()}`, { stream: i % 2 === 1 });
    const id = r.headers.get(CAP);
    assert.ok(id);
    const f = await postFeedback(gw, { capture_id: id, rating: i % 3 ? 'up' : 'down' });
    assert.equal(f.status, 200, `feedback ${i} right after its response: ${f.text}`);
  }
  const st = await captureStats(dataDirOf(gw));
  assert.equal(st.captures, 20);
  assert.equal(st.feedback, 20);
  assert.equal(await gw.stop(), 0);
});

test('opt-out header and a capture:false client key leave no record and no header', T, async () => {
  const key = newClientKey();
  const privateKey = newClientKey();
  const gw = await startGateway(mock.url + '/v1', { key, config: { client_keys: [
    { name: 'it', sha256: sha256hex(key) },
    { name: 'private', sha256: sha256hex(privateKey), capture: false },
  ] } });
  const dir = dataDirOf(gw);
  const kept = `kept ${marker()}`;
  const secret = [];
  const seen = [];
  for (const stream of [false, true]) {
    const t1 = `optout header ${stream} ${marker()}`;
    const r1 = await rawChat(gw, t1, { stream, headers: { 'x-switchyard-capture': 'off' } });
    const t2 = `optout key ${stream} ${marker()}`;
    const r2 = await rawChat(gw, t2, { stream, key: privateKey });
    for (const [t, r] of [[t1, r1], [t2, r2]]) {
      assert.equal(r.status, 200, r.text);
      assert.ok(r.text.includes(stream ? 'This' : mockReply(t)), 'the request was served');
      assert.equal(r.headers.get(CAP), null, `no ${CAP} header when capture is off`);
      assert.equal((await mockRequestsWith(mock, t)).length, 1, 'it reached the upstream');
      secret.push(t);
    }
    seen.push(r1, r2);
  }
  // The header is case-insensitive and the value too (OFF).
  const t3 = `optout upper ${marker()}`;
  const r3 = await rawChat(gw, t3, { headers: { 'X-Switchyard-Capture': 'OFF' } });
  assert.equal(r3.headers.get(CAP), null);
  secret.push(t3);
  // The same key without the header is captured.
  const rk = await rawChat(gw, kept);
  const keptId = rk.headers.get(CAP);
  assert.ok(keptId, 'a normal request is captured');
  await waitForCaptures(dir, (rs) => rs.length >= 1);
  await sleep(SETTLE_MS);
  const recs = await listCaptures(dir);
  assert.deepEqual(recs.map((r) => r.id), [keptId], 'only the normal request is stored');
  const m = await metrics(gw);
  assert.equal(m.switchyard_capture_records_total, 1);
  assert.equal(await gw.stop(), 0);
  const raw = readFileSync(join(dir, 'data.mdb'));
  assert.ok(raw.includes(kept), 'the captured prompt is in the file (the grep below can see text)');
  for (const t of secret) assert.ok(!raw.includes(t), `opted-out prompt ${t} is not in data.mdb`);
});

test('--no-capture stores nothing and sends no capture header', T, async () => {
  const gw = await startGateway(mock.url + '/v1', { args: ['--no-capture'] });
  const dir = dataDirOf(gw);
  const sdk = client(gw.base, gw.key);
  const texts = [];
  for (let i = 0; i < 6; i++) {
    const t = `nocap ${i} ${marker()}`;
    texts.push(t);
    const r = await sdkChat(sdk, 1, t, i % 2 === 1);
    assert.equal(r.capId, null);
    assert.equal(r.stream ? r.seen.content : r.seen.choices[0].message.content, mockReply(t));
  }
  await sleep(SETTLE_MS);
  const m = await metrics(gw);
  assert.ok(!m.switchyard_capture_records_total, 'no records counted');
  assert.equal(await gw.stop(), 0);
  if (existsSync(join(dir, 'data.mdb'))) {
    assert.equal((await captureStats(dir)).captures, 0);
    const raw = readFileSync(join(dir, 'data.mdb'));
    for (const t of texts) assert.ok(!raw.includes(t));
  }
});

test('metrics: records, batches, drops and feedback counters move as expected', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const m0 = await metrics(gw);
  for (const k of ['switchyard_capture_records_total', 'switchyard_feedback_total',
    'switchyard_capture_batches_total']) {
    assert.equal(m0[k], 0, `${k} starts at 0`);
  }
  const drops = Object.keys(m0).filter((k) => k.startsWith('switchyard_capture_dropped_total{'));
  assert.ok(drops.some((k) => k.includes('reason="queue_full"')), 'queue_full drop counter exported');
  const sdk = client(gw.base, gw.key);
  const ids = [];
  for (let i = 0; i < 12; i++) {
    ids.push((await sdkChat(sdk, 1, `metrics ${i} ${marker()}`, i % 3 === 0)).capId);
  }
  await rawChat(gw, `metrics optout ${marker()}`, { headers: { 'x-switchyard-capture': 'off' } });
  await sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'not captured' });
  await waitForCaptures(dir, (rs) => rs.length >= 12);
  // The counter is bumped after the commit; allow a moment.
  let m1;
  const deadline = Date.now() + 3000 * SLOW;
  do {
    m1 = await metrics(gw);
    if (m1.switchyard_capture_records_total >= 12) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assert.equal(m1.switchyard_capture_records_total, 12);
  assert.ok(m1.switchyard_capture_batches_total >= 1 && m1.switchyard_capture_batches_total <= 12,
    `batches ${m1.switchyard_capture_batches_total}`);
  for (const k of drops) assert.equal(m1[k], 0, `${k} stays 0`);
  assert.equal(m1.switchyard_capture_queue_depth ?? 0, 0);

  for (const id of ids.slice(0, 5)) {
    assert.equal((await postFeedback(gw, { capture_id: id, rating: 'up' })).status, 200);
  }
  assert.equal((await postFeedback(gw, { capture_id: '777', rating: 'up' })).status, 404);
  assert.equal((await postFeedback(gw, { capture_id: ids[0] })).status, 400);
  const m2 = await metrics(gw);
  assert.equal(m2.switchyard_feedback_total, 5, 'only stored feedback counts');
  assert.equal(m2.switchyard_capture_records_total, 12, 'feedback is not a capture record');
  assert.equal(await gw.stop(), 0);
});

test('upstream errors and cut streams are captured as such and kept out of the export', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const cases = [
    ['ok', false, {}, 200],
    ['500', false, { 'x-mock-fault': '500' }, 500],
    ['429', true, { 'x-mock-fault': '429' }, 429],
    ['reset', false, { 'x-mock-fault': 'reset' }, 502],
    ['cut', true, { 'x-mock-fault': 'cut', 'x-mock-chunks': '8' }, 200],
  ];
  const got = {};
  for (const [name, stream, headers, status] of cases) {
    const text = `fault ${name} ${marker()}`;
    const r = await rawChat(gw, text, { stream, headers });
    assert.equal(r.status, status, `${name}: ${r.text.slice(0, 200)}`);
    const id = r.headers.get(CAP);
    assert.ok(id, `${name}: failed exchanges are captured too`);
    got[name] = { id, text, body: r.text };
  }
  await waitForCaptures(dir, (rs) => rs.length >= cases.length);
  for (const [name, , , status] of cases) {
    const rec = await showCapture(dir, got[name].id);
    assert.equal(rec.http_status, status, name);
    assert.equal(rec.request.messages[0].content, got[name].text);
  }
  const e500 = await showCapture(dir, got['500'].id);
  assert.deepEqual(e500.response, JSON.parse(got['500'].body), 'the upstream error body is kept');
  const reset = await showCapture(dir, got.reset.id);
  assert.ok(reset.error.length > 0, 'a transport failure records its error');
  const cut = await showCapture(dir, got.cut.id);
  assert.equal(cut.truncated, true, 'a cut stream is marked truncated');
  assert.ok(cut.error.length > 0);
  const partial = cut.response.choices[0].message.content;
  assert.ok(partial.length > 0 && mockReply(got.cut.text).startsWith(partial) &&
    partial.length < mockReply(got.cut.text).length, `partial answer ${JSON.stringify(partial)}`);

  const ex = await exportStore(dir);
  assert.equal(ex.summary.scanned, cases.length);
  assert.deepEqual(ex.train.map((l) => l.messages[0].content), [got.ok.text],
    'only the good exchange is training data');
  assert.equal(ex.summary.filtered.error + ex.summary.filtered.truncated, cases.length - 1);

  // A correction turns a failed exchange into training data.
  const f = await postFeedback(gw, { capture_id: got['500'].id, correction: 'What it should have said.' });
  assert.equal(f.status, 200, f.text);
  const ex2 = await exportStore(dir);
  assert.equal(ex2.train.length, 2);
  assert.ok(ex2.train.some((l) => l.messages.at(-1).content === 'What it should have said.'));
  assert.equal(await gw.stop(), 0);
});

test('export --include-errors keeps a truncated answer', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const dir = dataDirOf(gw);
  const text = `include errors ${marker()}`;
  const r = await rawChat(gw, text, { stream: true,
    headers: { 'x-mock-fault': 'cut', 'x-mock-chunks': '8' } });
  assert.equal(r.status, 200);
  await waitForCaptures(dir, (rs) => rs.length >= 1);
  assert.equal(await gw.stop(), 0);
  const ex = await exportStore(dir, ['--include-errors']);
  assert.equal(ex.train.length, 1, `summary: ${JSON.stringify(ex.summary)}`);
  const a = ex.train[0].messages.at(-1).content;
  assert.ok(a.length > 0 && mockReply(text).startsWith(a), 'the partial answer is exported');
});

test('a full capture queue drops and counts records; every answer is still served', T, async () => {
  // queue_size 16 and a writer that waits 3 s for a batch that never fills:
  // the first 16 records wait in the queue, the rest find it full.
  const gw = await startGateway(mock.url + '/v1', {
    config: { capture: { queue_size: 16, batch_max: 100000, flush_ms: 3000 } }, workers: 1 });
  const dir = dataDirOf(gw);
  const n = 40;
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const r = await rawChat(gw, `queue full ${i} ${marker()}`);
    assert.equal(r.status, 200, r.text);
  }
  const sent = Date.now() - t0;
  const m = await metrics(gw);
  const full = m['switchyard_capture_dropped_total{reason="queue_full"}'];
  if (sent < 2500) { // all 40 inside the writer's 3 s wait: exactly 16 fit
    assert.equal(full, n - 16, JSON.stringify(m));
  } else {
    assert.ok(full > 0 && full < n, `some dropped: ${full}`);
  }
  await waitForCaptures(dir, (rs) => rs.length >= n - full);
  assert.equal((await listCaptures(dir)).length, n - full, 'stored + dropped = answered');
  assert.equal(await gw.stop(), 0);
});

test('mock exits cleanly on SIGTERM', T, async () => {
  assert.equal(await mock.stop(), 0);
});
