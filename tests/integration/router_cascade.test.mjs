// Confidence cascades and shadow traffic, end to end. One switchyard-mock
// plays upstreams /ft (the fine-tuned model) and /base; its per-token
// probability is 0.9 unless the last user message carries
// "[[confidence=P]]", which drives accept / escalate. What the router
// decided is read back from the capture store with switchyardctl.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startMock, stopAll, mockReply, marker, closedPort, sleep, sseData, SLOW,
} from './lib/harness.mjs';
import { client, collectStream } from './lib/sdk.mjs';
import {
  listCaptures, showCapture, waitForCaptures, exportStore, postFeedback,
} from './lib/capture.mjs';
import { mockUpstream, startRouterGateway, ask, post, callsWith, pool } from './lib/router.mjs';

let mock;
let gw;
let sdk;

const T = { timeout: 60000 * SLOW };
const CAP = 'x-switchyard-capture-id';

const cascadeRoute = (name, threshold, method = 'geomean') => ({
  name,
  arms: [
    { name: 'ft', upstream: 'ft', model: 'ft-model' },
    { name: 'base', upstream: 'base', model: 'base-model' },
  ],
  cascade: { first: 'ft', escalate: 'base', threshold, method },
});

before(async () => {
  mock = await startMock();
  const dead = await closedPort();
  gw = await startRouterGateway({
    upstreams: [mockUpstream(mock, 'def'), mockUpstream(mock, 'base'), mockUpstream(mock, 'ft'),
      { name: 'dead', base_url: `http://127.0.0.1:${dead}/v1`, connect_timeout_ms: 500 }],
    routes: [
      cascadeRoute('casc', 0.8),
      cascadeRoute('casc-min', 0.5, 'min'),
      {
        name: 'shadowed',
        arms: [
          { name: 'base', upstream: 'base', model: 'base-model', weight_bp: 10000 },
          { name: 'ft', upstream: 'ft', model: 'ft-model', weight_bp: 0 },
        ],
        shadow: { arm: 'ft', rate_bp: 10000 },
      },
      { name: 'plain', arms: [{ name: 'base', upstream: 'base', model: 'base-model' }] },
      {
        name: 'half-shadow',
        sticky: [],
        arms: [
          { name: 'base', upstream: 'base', model: 'base-model', weight_bp: 10000 },
          { name: 'ft', upstream: 'ft', model: 'ft-model', weight_bp: 0 },
        ],
        shadow: { arm: 'ft', rate_bp: 5000 },
      },
      {
        name: 'shadow-dead',
        arms: [
          { name: 'base', upstream: 'base', model: 'base-model', weight_bp: 10000 },
          { name: 'gone', upstream: 'dead', model: 'gone-model', weight_bp: 0 },
        ],
        shadow: { arm: 'gone', rate_bp: 10000 },
      },
    ],
  });
  sdk = client(gw.base, gw.key);
});

after(stopAll);

/** Waits for the capture `id` and returns its full record. */
async function capture(id) {
  await waitForCaptures(gw.dataDir, (rs) => rs.some((r) => r.id === id), { what: `capture ${id}` });
  return showCapture(gw.dataDir, id);
}

/** The records whose parent is `id` (cascade attempts and shadows), full. */
async function children(id, n, what) {
  const out = [];
  let total = 0;
  const deadline = Date.now() + 3000 * SLOW;
  for (;;) {
    out.length = 0;
    const all = await listCaptures(gw.dataDir);
    total = all.length;
    for (const r of all.filter((x) => x.kind !== 'primary')) {
      const full = await showCapture(gw.dataDir, r.id);
      if (full.parent_id === id) out.push(full);
    }
    if (out.length >= n || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.equal(out.length, n, `${what}: ${out.length} linked record(s), want ${n} ` +
    `(store has ${total})`);
  return out;
}

/* ----------------------------------------------------------------- cascade */

test('cascade accept (non-streaming): the ft answer, without logprobs, one upstream call', T, async () => {
  const text = `accept ${marker('acc')}`;
  const { data, response } = await sdk.chat.completions.create(ask('casc', text)).withResponse();
  assert.equal(response.headers.get('x-switchyard-route'), 'casc');
  assert.equal(response.headers.get('x-switchyard-arm'), 'ft');
  assert.equal(data.model, 'ft-model');
  assert.equal(data.choices[0].message.content, mockReply(text));
  assert.ok(data.choices[0].logprobs == null, 'logprobs removed: the client did not ask');
  const calls = await callsWith(mock, text);
  assert.deepEqual(calls.map((c) => c.upstream), ['ft']);
  assert.equal(calls[0].body.logprobs, true, 'the first arm is asked for logprobs');
  assert.equal(calls[0].body.stream, undefined);

  const rec = await capture(response.headers.get(CAP));
  assert.equal(rec.kind, 'primary');
  assert.equal(rec.arm, 'ft');
  assert.equal(rec.accepted, true);
  assert.ok(Math.abs(rec.confidence - 0.9) < 1e-6, `confidence ${rec.confidence}`);
  assert.equal(rec.parent_id, '0');
  // The first request of this file: an accepted cascade is one record, no attempt.
  await sleep(200 * SLOW);
  assert.deepEqual((await listCaptures(gw.dataDir)).map((x) => x.id), [rec.id]);

  // The client asked for logprobs itself: it gets them.
  const withLp = await sdk.chat.completions.create(ask('casc', `lp ${marker()}`, { logprobs: true }));
  assert.ok(Array.isArray(withLp.choices[0].logprobs?.content) &&
    withLp.choices[0].logprobs.content.length > 0, 'logprobs kept when asked for');
});

test('cascade escalate (non-streaming): base answers; both attempts captured and linked', T, async () => {
  const text = `escalate [[confidence=0.3]] ${marker('esc')}`;
  const { data, response } = await sdk.chat.completions.create(ask('casc', text, { user: 'esc-user' }))
    .withResponse();
  assert.equal(response.headers.get('x-switchyard-arm'), 'base');
  assert.equal(data.model, 'base-model');
  assert.equal(data.choices[0].message.content, mockReply(text));
  assert.ok(data.choices[0].logprobs == null);
  const calls = await callsWith(mock, text);
  assert.deepEqual(calls.map((c) => c.upstream), ['ft', 'base']);
  assert.equal(calls[0].body.logprobs, true);
  // The escalation gets the client's own request, only the model rewritten.
  assert.deepEqual(calls[1].body, { ...ask('casc', text, { user: 'esc-user' }), model: 'base-model' });

  const id = response.headers.get(CAP);
  const primary = await capture(id);
  assert.equal(primary.kind, 'primary');
  assert.equal(primary.arm, 'base');
  const [att] = await children(id, 1, 'escalated cascade');
  assert.equal(att.kind, 'cascade_attempt');
  assert.equal(att.arm, 'ft');
  assert.equal(att.accepted, false);
  assert.ok(Math.abs(att.confidence - 0.3) < 1e-6, `attempt confidence ${att.confidence}`);
  assert.equal(att.response.choices[0].message.content, mockReply(text));
});

test('threshold and method: 0.81 accepted and 0.79 escalated at 0.8; "min" at 0.5', T, async () => {
  for (const [route, p, arm] of [['casc', 0.81, 'ft'], ['casc', 0.79, 'base'],
    ['casc-min', 0.55, 'ft'], ['casc-min', 0.45, 'base']]) {
    const r = await post(gw, ask(route, `t [[confidence=${p}]] ${marker()}`));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.arm, arm, `${route} at confidence ${p}`);
  }
});

test('cascade first arm fails (500): escalated, the client still gets an answer', T, async () => {
  const text = `ftfail ${marker('ftfail')}`;
  const r = await post(gw, ask('casc', text), { headers: { 'x-mock-fault': '500',
    'x-mock-fault-key': marker('k'), 'x-mock-fail-times': '1' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'base');
  assert.equal(r.json.choices[0].message.content, mockReply(text));
  assert.deepEqual((await callsWith(mock, text)).map((c) => c.upstream), ['ft', 'base']);
});

test('cascade accept (streaming): replayed as SSE from the held ft answer, ending [DONE]', T, async () => {
  const text = `sacc ${marker('sacc')}`;
  const { data: stream, response } = await sdk.chat.completions
    .create(ask('casc', text, { stream: true })).withResponse();
  assert.equal(response.headers.get('x-switchyard-arm'), 'ft');
  let content = '';
  let finish = null;
  const models = new Set();
  for await (const ch of stream) {
    models.add(ch.model);
    content += ch.choices?.[0]?.delta?.content ?? '';
    finish = ch.choices?.[0]?.finish_reason ?? finish;
    assert.ok(ch.choices?.[0]?.logprobs == null, 'no logprobs in the replay');
  }
  assert.equal(content, mockReply(text));
  assert.equal(finish, 'stop');
  assert.deepEqual([...models], ['ft-model']);
  const calls = await callsWith(mock, text);
  assert.deepEqual(calls.map((c) => c.upstream), ['ft']);
  assert.equal(calls[0].body.stream, undefined, 'the first arm is asked without streaming');

  // The raw SSE: content type, framing, [DONE] last.
  const raw = await post(gw, ask('casc', `raw ${marker()}`, { stream: true,
    stream_options: { include_usage: true } }));
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('content-type'), /^text\/event-stream/);
  const ev = sseData(raw.text);
  assert.equal(ev.at(-1), '[DONE]');
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.ok(chunks.some((c) => c.usage?.total_tokens > 0), 'usage chunk when include_usage');

  const rec = await capture(response.headers.get(CAP));
  assert.equal(rec.accepted, true);
  assert.equal(rec.arm, 'ft');
});

test('cascade escalate (streaming): base streams live, the SDK reassembles it', T, async () => {
  const text = `sesc [[confidence=0.2]] ${marker('sesc')}`;
  const chunks = 6;
  const delay = 80;
  const s = client(gw.base, gw.key, {
    headers: { 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': String(delay) },
  });
  const { data: stream, response } = await s.chat.completions
    .create(ask('casc', text, { stream: true })).withResponse();
  assert.equal(response.headers.get('x-switchyard-arm'), 'base');
  const got = await collectStream(stream);
  assert.equal(got.content, mockReply(text));
  assert.equal(got.contentEvents, chunks, 'the upstream\'s chunks, not one replayed block');
  const spread = got.times.at(-1) - got.times[0];
  assert.ok(spread >= (chunks - 1) * delay * 0.6, `events spread over ${spread} ms: not live`);
  const calls = await callsWith(mock, text);
  assert.deepEqual(calls.map((c) => c.upstream), ['ft', 'base']);
  assert.equal(calls[0].body.stream, undefined);
  assert.equal(calls[1].body.stream, true);

  const id = response.headers.get(CAP);
  const [att] = await children(id, 1, 'streamed escalation');
  assert.equal(att.kind, 'cascade_attempt');
  assert.equal(att.accepted, false);
  assert.ok(Math.abs(att.confidence - 0.2) < 1e-6);
  const primary = await capture(id);
  assert.equal(primary.arm, 'base');
  assert.equal(primary.stream, true);
});

test('an escalation is exported as a cascade preference pair', T, async () => {
  const text = `pair [[confidence=0.25]] ${marker('pair')}`;
  const r = await post(gw, ask('casc', text));
  assert.equal(r.arm, 'base');
  await children(r.capId, 1, 'pair escalation');
  // The mock answers both arms with the same text, and a pair of equal
  // answers teaches nothing: the exporter considers every escalation so far
  // and skips them all.
  const before = await exportStore(gw.dataDir);
  assert.equal(before.summary.pairs_cascade, 0, JSON.stringify(before.summary));
  assert.ok(before.summary.pairs_skipped >= 1, JSON.stringify(before.summary));
  // A reviewer's correction on the final answer makes the preferred side
  // differ: now this escalation is a cascade pair (plus the correction's own pair).
  const corrected = `A reviewed answer for ${text}.`;
  const fb = await postFeedback(gw, { capture_id: r.capId, correction: corrected });
  assert.equal(fb.status, 200, fb.text);
  const { pairs, summary } = await exportStore(gw.dataDir);
  assert.equal(summary.pairs_cascade, 1, `summary: ${JSON.stringify(summary)}`);
  assert.equal(summary.pairs_correction, 1, `summary: ${JSON.stringify(summary)}`);
  const mine = pairs.filter((p) => p.input.messages.at(-1).content === text);
  assert.equal(mine.length, 2, JSON.stringify(mine));
  for (const p of mine) {
    assert.deepEqual(p.preferred_output, [{ role: 'assistant', content: corrected }]);
    assert.deepEqual(p.non_preferred_output, [{ role: 'assistant', content: mockReply(text) }]);
  }
});

/* ------------------------------------------------------------------ shadow */

test('shadow: the client answer equals the no-shadow route\'s; the shadow is captured and linked', T, async () => {
  const text = `shadow ${marker('sh')}`;
  const { data, response } = await sdk.chat.completions.create(ask('shadowed', text)).withResponse();
  const plain = await sdk.chat.completions.create(ask('plain', text));
  assert.equal(response.headers.get('x-switchyard-arm'), 'base');
  assert.equal(data.model, 'base-model');
  assert.deepEqual(data.choices, plain.choices, 'same answer with and without shadow');
  assert.deepEqual(data.usage, plain.usage);

  const id = response.headers.get(CAP);
  const [sh] = await children(id, 1, 'shadow');
  assert.equal(sh.kind, 'shadow');
  assert.equal(sh.arm, 'ft');
  assert.equal(sh.route, 'shadowed');
  assert.equal(sh.response.model, 'ft-model');
  assert.equal(sh.response.choices[0].message.content, mockReply(text));
  const primary = await capture(id);
  assert.equal(primary.kind, 'primary');
  assert.equal(primary.arm, 'base');

  // The mirror went to the shadow arm's upstream with its model, after the primary.
  const calls = await callsWith(mock, text);
  // (two primaries: "shadowed" and "plain"; one mirror)
  assert.deepEqual(calls.map((c) => [c.upstream, c.model]).sort(),
    [['base', 'base-model'], ['base', 'base-model'], ['ft', 'ft-model']].sort());
  const shadowCall = calls.find((c) => c.upstream === 'ft');
  assert.ok(shadowCall.seq > calls[0].seq, 'the shadow started after the primary');
});

test('shadow with a streaming client: the stream is unchanged, the shadow still captured', T, async () => {
  const text = `shstream ${marker('shs')}`;
  const { data: stream, response } = await sdk.chat.completions
    .create(ask('shadowed', text, { stream: true })).withResponse();
  const got = await collectStream(stream);
  const plain = await collectStream(await sdk.chat.completions.create(ask('plain', text, { stream: true })));
  assert.equal(got.content, mockReply(text));
  assert.equal(got.contentEvents, plain.contentEvents);
  const [sh] = await children(response.headers.get(CAP), 1, 'streaming shadow');
  assert.equal(sh.kind, 'shadow');
  assert.equal(sh.arm, 'ft');
});

test('a failing shadow never fails the client\'s answer', T, async () => {
  const texts = Array.from({ length: 5 }, (_, i) => `shdead ${i} ${marker()}`);
  const rs = await pool(texts, 5, (t) => post(gw, ask('shadow-dead', t)));
  for (const [i, r] of rs.entries()) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.arm, 'base');
    assert.equal(r.json.choices[0].message.content, mockReply(texts[i]));
  }
});

test('shadow rate 50%: about half of the requests are mirrored', T, async () => {
  const tag = marker('half');
  const N = 80;
  const rs = await pool(Array.from({ length: N }, (_, i) => i), 8,
    (i) => post(gw, ask('half-shadow', `${tag} ${i}`)));
  assert.ok(rs.every((r) => r.status === 200 && r.arm === 'base'));
  await sleep(300 * SLOW); // shadows finish after their primaries
  const calls = await callsWith(mock, tag);
  assert.equal(calls.filter((c) => c.upstream === 'base').length, N);
  const mirrored = calls.filter((c) => c.upstream === 'ft').length;
  assert.ok(mirrored >= 20 && mirrored <= 60, `${mirrored} of ${N} mirrored at 50%`);
});

test('the gateway and the mock exit cleanly', T, async () => {
  assert.equal(await gw.stop(), 0);
  assert.equal(await mock.stop(), 0);
});
