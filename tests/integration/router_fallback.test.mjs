// Retries, fallbacks and the circuit breaker, end to end. One
// switchyard-mock plays upstreams /a and /b; "dead" points at a closed port.
// Faults are injected with the mock's headers, which the gateway forwards
// to every attempt: x-mock-fault-key + x-mock-fail-times N makes only the
// first N calls with that key fail, so "first try fails, the next one
// works" is exact. Each test starts its own gateway so no breaker state
// leaks between tests; the breaker tests use one worker (breakers are per
// worker) so the failure count is deterministic.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startMock, stopAll, mockReply, marker, closedPort, openaiError, sleep, sseData, SLOW,
} from './lib/harness.mjs';
import { client } from './lib/sdk.mjs';
import { mockUpstream, startRouterGateway, ask, post, callsWith } from './lib/router.mjs';

let mock;
let deadPort;

const T = { timeout: 60000 * SLOW };

before(async () => {
  mock = await startMock();
  deadPort = await closedPort();
});

after(stopAll);

function upstreams() {
  return [
    mockUpstream(mock, 'def'), mockUpstream(mock, 'a'), mockUpstream(mock, 'b'),
    { name: 'dead', base_url: `http://127.0.0.1:${deadPort}/v1`, connect_timeout_ms: 1000 },
  ];
}

/** A gateway with one route "r": arm `first` takes all traffic, "b" is the fallback. */
function gateway({ retry, fallback = ['b'], first = 'a', workers = 1 } = {}) {
  return startRouterGateway({
    upstreams: upstreams(),
    workers,
    routes: [{
      name: 'r',
      arms: [
        { name: first, upstream: first, model: `${first}-model`, weight_bp: 10000 },
        ...(first === 'b' ? [] : [{ name: 'b', upstream: 'b', model: 'b-model', weight_bp: 0 }]),
      ],
      retry: { attempts: 1, per_try_timeout_ms: 10000, deadline_ms: 20000, backoff_base_ms: 10,
        backoff_max_ms: 20, jitter: false, ...retry },
      fallback,
    }],
  });
}

/** Headers making the first `times` calls carrying them fail with `fault`. */
function failFirst(fault, times = 1, extra = {}) {
  return { 'x-mock-fault': fault, 'x-mock-fault-key': `k-${randomBytes(8).toString('hex')}`,
    'x-mock-fail-times': String(times), ...extra };
}

/** One chat on route "r"; returns the response plus the upstream calls it made, in order. */
async function run(gw, headers, tag = 'fb', opts = {}) {
  const m = marker(tag);
  const r = await post(gw, ask('r', `${tag} ${m}`), { headers, ...opts });
  const calls = await callsWith(mock, m);
  return { ...r, m, calls, path: calls.map((c) => c.upstream) };
}

test('injected 500 on the chosen arm: falls back to the next arm, which answers', T, async () => {
  const gw = await gateway();
  const r = await run(gw, failFirst('500'), 'f500');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'b', 'the fallback arm served');
  assert.equal(r.json.model, 'b-model');
  assert.equal(r.json.choices[0].message.content, mockReply(`f500 ${r.m}`));
  assert.deepEqual(r.path, ['a', 'b']);
  assert.deepEqual(r.calls.map((c) => c.model), ['a-model', 'b-model']);
  await gw.stop();
});

test('injected 500 and 503 with attempts 2: retried on the same arm first', T, async () => {
  const gw = await gateway({ retry: { attempts: 2 } });
  for (const fault of ['500', '503']) {
    const r = await run(gw, failFirst(fault), `retry${fault}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.arm, 'a');
    assert.deepEqual(r.path, ['a', 'a']);
  }
  // Every arm keeps failing: attempts x arms calls, then the last error goes to the client.
  const r = await run(gw, { 'x-mock-fault': '500' }, 'exhaust');
  assert.equal(r.status, 500);
  assert.equal(openaiError(r.text).type, 'server_error', 'the upstream error is passed on');
  assert.deepEqual(r.path, ['a', 'a', 'b', 'b']);
  await gw.stop();
});

test('429 with Retry-After: the retry waits at least Retry-After', T, async () => {
  const gw = await gateway({ retry: { attempts: 2 } });
  const r = await run(gw, failFirst('429', 1, { 'x-mock-retry-after': '1' }), 'ra1');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'a');
  assert.deepEqual(r.path, ['a', 'a']);
  assert.ok(r.ms >= 1000, `answered after ${r.ms} ms, Retry-After was 1 s`);
  // Control: Retry-After 0 and a 10..20 ms backoff retry at once.
  const fast = await run(gw, failFirst('429', 1, { 'x-mock-retry-after': '0' }), 'ra0');
  assert.equal(fast.status, 200, fast.text);
  assert.deepEqual(fast.path, ['a', 'a']);
  assert.ok(fast.ms < 900, `Retry-After 0 still took ${fast.ms} ms`);
  await gw.stop();
});

test('429 whose Retry-After runs past the deadline: falls back at once instead of waiting', T, async () => {
  const gw = await gateway({ retry: { attempts: 2, deadline_ms: 1500 } });
  const r = await run(gw, failFirst('429', 1, { 'x-mock-retry-after': '30' }), 'ralong');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'b');
  assert.deepEqual(r.path, ['a', 'b']);
  assert.ok(r.ms < 1500, `took ${r.ms} ms`);
  await gw.stop();
});

test('a hung upstream: the per-try timeout fires and the fallback answers', T, async () => {
  const gw = await gateway({ retry: { per_try_timeout_ms: 300 } });
  const r = await run(gw, failFirst('hang'), 'hang');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'b');
  assert.deepEqual(r.path, ['a', 'b']);
  assert.ok(r.ms >= 300, `fell back after ${r.ms} ms, before the 300 ms per-try timeout`);
  assert.ok(r.ms < 5000 * SLOW, `took ${r.ms} ms`);
  // No fallback left and every try hangs: 504 once the tries are used up.
  const g2 = await gateway({ retry: { per_try_timeout_ms: 200, attempts: 2 }, fallback: [] });
  const t = await run(g2, { 'x-mock-fault': 'hang' }, 'hang2');
  assert.equal(t.status, 504, t.text);
  assert.equal(openaiError(t.text).code, 'upstream_timeout');
  assert.deepEqual(t.path, ['a', 'a']);
  assert.ok(t.ms >= 400, `${t.ms} ms for two 200 ms tries`);
  await g2.stop();
  await gw.stop();
});

test('a reset connection is retried like a connect error', T, async () => {
  const gw = await gateway();
  const r = await run(gw, failFirst('reset'), 'reset');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.arm, 'b');
  assert.deepEqual(r.path, ['a', 'b']);
  await gw.stop();
});

test('connection refused: the dead arm is retried, then the fallback answers', T, async () => {
  const gw = await gateway({ first: 'dead', retry: { attempts: 2 } });
  const sdk = client(gw.base, gw.key);
  const m = marker('refused');
  const { data, response } = await sdk.chat.completions.create(ask('r', `refused ${m}`)).withResponse();
  assert.equal(response.headers.get('x-switchyard-arm'), 'b');
  assert.equal(data.model, 'b-model');
  assert.equal(data.choices[0].message.content, mockReply(`refused ${m}`));
  assert.deepEqual((await callsWith(mock, m)).map((c) => c.upstream), ['b']);
  // Without a fallback the client gets a 502 naming the problem.
  const g2 = await gateway({ first: 'dead', fallback: [] });
  const r = await run(g2, {}, 'refused2');
  assert.equal(r.status, 502, r.text);
  assert.equal(openaiError(r.text).code, 'upstream_unreachable');
  assert.deepEqual(r.path, []);
  await g2.stop();
  await gw.stop();
});

test('a 4xx other than 429 is never retried: exactly one upstream call', T, async () => {
  const gw = await gateway({ retry: { attempts: 3 } });
  for (const fault of ['400', '401', '404']) {
    const r = await run(gw, { 'x-mock-fault': fault }, `no${fault}`);
    assert.equal(r.status, Number(fault), r.text);
    openaiError(r.text);
    assert.deepEqual(r.path, ['a'], `${fault}: upstream calls`);
  }
  await gw.stop();
});

test('a stream cut after bytes reached the client ends with an error event, no silent switch', T, async () => {
  const gw = await gateway({ retry: { attempts: 2 } });
  const m = marker('cut');
  const r = await post(gw, ask('r', `cut ${m}`, { stream: true }),
    { headers: failFirst('cut', 1, { 'x-mock-chunks': '8' }) });
  assert.equal(r.status, 200);
  assert.equal(r.arm, 'a');
  const events = sseData(r.text);
  assert.ok(!events.includes('[DONE]'), 'a cut stream must not end with [DONE]');
  const last = JSON.parse(events[events.length - 1]);
  assert.ok(last.error, `last event is not an error: ${events[events.length - 1]}`);
  assert.deepEqual((await callsWith(mock, m)).map((c) => c.upstream), ['a'], 'not retried');
  await gw.stop();
});

/* --------------------------------------------------------- circuit breaker */

test('circuit breaker: opens after 5 failures, skips the arm, probes after cooling, closes', T, async () => {
  const gw = await gateway({ workers: 1 });
  // Five requests whose first call (arm a) fails: each is saved by b.
  let lastFailure = 0;
  for (let i = 0; i < 5; i++) {
    const r = await run(gw, failFirst('500'), `open${i}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.path, ['a', 'b'], `request ${i}`);
    lastFailure = Date.now();
  }
  // Open: a is not called at all, even by healthy requests.
  for (let i = 0; i < 3; i++) {
    const r = await run(gw, {}, `skip${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.arm, 'b');
    assert.deepEqual(r.path, ['b'], 'the open upstream was called');
  }
  // After the 5 s cooling period one probe goes to a; it succeeds and traffic returns.
  await sleep(Math.max(0, lastFailure + 5300 - Date.now()));
  const probe = await run(gw, {}, 'probe');
  assert.equal(probe.arm, 'a', 'the probe went to the cooled upstream');
  assert.deepEqual(probe.path, ['a']);
  for (let i = 0; i < 3; i++) {
    const r = await run(gw, {}, `closed${i}`);
    assert.equal(r.arm, 'a');
    assert.deepEqual(r.path, ['a']);
  }
  await gw.stop();
});

test('circuit breaker: a failed probe opens it again for another cooling period', T, async () => {
  const gw = await gateway({ workers: 1 });
  for (let i = 0; i < 5; i++) assert.deepEqual((await run(gw, failFirst('500'), `o${i}`)).path, ['a', 'b']);
  await sleep(5300);
  const probe = await run(gw, failFirst('500'), 'badprobe');
  assert.equal(probe.status, 200);
  assert.deepEqual(probe.path, ['a', 'b'], 'one probe to a, which failed');
  const reopened = Date.now();
  const r = await run(gw, {}, 'after-bad-probe');
  assert.deepEqual(r.path, ['b'], 'open again after the failed probe');
  await sleep(Math.max(0, reopened + 5300 - Date.now()));
  assert.deepEqual((await run(gw, {}, 'good-probe')).path, ['a']);
  await gw.stop();
});

test('circuit breaker: every arm open -> 503 upstream_circuit_open without calling anyone', T, async () => {
  const gw = await gateway({ workers: 1 });
  for (let i = 0; i < 5; i++) {
    const r = await run(gw, { 'x-mock-fault': '500' }, `both${i}`);
    assert.equal(r.status, 500);
    assert.deepEqual(r.path, ['a', 'b']);
  }
  const r = await run(gw, {}, 'allopen');
  assert.equal(r.status, 503, r.text);
  assert.equal(openaiError(r.text).code, 'upstream_circuit_open');
  assert.deepEqual(r.path, [], 'no upstream was called');
  // Pass-through traffic does not use route breakers: the default upstream still answers.
  const m = marker('pt');
  const pt = await post(gw, ask('gpt-4o-mini', `pt ${m}`));
  assert.equal(pt.status, 200);
  await gw.stop();
});

test('the mock exits cleanly', T, async () => {
  assert.equal(await mock.stop(), 0);
});
