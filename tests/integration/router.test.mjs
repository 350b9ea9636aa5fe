// The router end to end: switchyard with routes in its config, in front of
// one switchyard-mock that plays several upstreams (path prefixes /a, /b,
// /def). Covers the model rewrite and response headers, pass-through of
// unknown models, sticky A/B splits over 1000 users (shares, stickiness,
// key order, the same arms after a restart) and SIGHUP reloads.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startMock, stopAll, mockReply, marker, newClientKey, sleep, SLOW,
} from './lib/harness.mjs';
import { client } from './lib/sdk.mjs';
import {
  mockUpstream, startRouterGateway, restartRouterGateway, ask, post, callsWith, pool, tally,
} from './lib/router.mjs';
import { listCaptures, showCapture } from './lib/capture.mjs';

let mock;
let gw;

const T = { timeout: 120000 * SLOW };
const USERS = Array.from({ length: 1000 }, (_, i) => `user-${i}`);

const ROUTES = [
  {
    name: 'ab',
    salt: 'ab-salt-1',
    arms: [
      { name: 'a', upstream: 'a', model: 'model-a', weight_bp: 5000 },
      { name: 'b', upstream: 'b', model: 'model-b', weight_bp: 5000 },
    ],
  },
  {
    name: 'ninety',
    arms: [
      { name: 'a', upstream: 'a', model: 'n-model-a', weight_bp: 9000 },
      { name: 'b', upstream: 'b', model: 'n-model-b', weight_bp: 1000 },
    ],
  },
  {
    name: 'rand',
    sticky: [],
    arms: [
      { name: 'a', upstream: 'a', model: 'r-model-a', weight_bp: 5000 },
      { name: 'b', upstream: 'b', model: 'r-model-b', weight_bp: 5000 },
    ],
  },
  {
    name: 'ruled',
    arms: [
      { name: 'a', upstream: 'a', model: 'rule-a', weight_bp: 10000 },
      { name: 'b', upstream: 'b', model: 'rule-b', weight_bp: 0 },
    ],
    rules: [
      { arm: 'b', tools: true },
      { arm: 'b', client_keys: ['key-two'] },
      { arm: 'b', tenants: ['acme'] },
      { arm: 'b', min_prompt_bytes: 5000 },
    ],
  },
  {
    // A route named like a real model, served by a fine-tuned one.
    name: 'support-bot',
    arms: [{ name: 'ft', upstream: 'b', model: 'ft:gpt-4o-mini:acme:support:1' }],
  },
];
const ARM_MODEL = { ab: { a: 'model-a', b: 'model-b' }, ninety: { a: 'n-model-a', b: 'n-model-b' } };

function upstreams() {
  return [mockUpstream(mock, 'def'), mockUpstream(mock, 'a'), mockUpstream(mock, 'b')];
}

before(async () => {
  mock = await startMock();
  gw = await startRouterGateway({
    upstreams: upstreams(),
    routes: ROUTES,
    keys: { 'key-one': newClientKey(), 'key-two': newClientKey() },
    // Captures are not what this file tests; fsync per batch would dominate its time.
    extra: { capture: { durability: 'nosync' } },
  });
});

after(stopAll);

/** Sends one chat per user on `route` (user in x-switchyard-user); returns { user: arm }. */
async function splitRun(g, route, tag) {
  const res = await pool(USERS, 32, async (u) => {
    const r = await post(g, ask(route, `${tag} ${u}`), { headers: { 'x-switchyard-user': u } });
    assert.equal(r.status, 200, `${u}: ${r.text.slice(0, 300)}`);
    assert.equal(r.route, route);
    assert.ok(r.arm === 'a' || r.arm === 'b', `arm header ${r.arm}`);
    assert.equal(r.json.model, ARM_MODEL[route][r.arm], 'response model is the arm model');
    return r.arm;
  });
  return Object.fromEntries(USERS.map((u, i) => [u, res[i]]));
}

const byUser = {}; // route -> { user: arm } from the first gateway

test('model rewrite: the arm model goes upstream, the response names route, arm and model', T, async () => {
  const m = marker('rewrite');
  const sdk = client(gw.base, gw.key);
  const sent = ask('support-bot', `hello ${m}`, { temperature: 0.25, max_tokens: 50, user: 'u-rw' });
  const { data, response } = await sdk.chat.completions.create(sent).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-switchyard-route'), 'support-bot');
  assert.equal(response.headers.get('x-switchyard-arm'), 'ft');
  assert.match(response.headers.get('x-switchyard-capture-id') ?? '', /^\d+$/);
  assert.equal(data.model, 'ft:gpt-4o-mini:acme:support:1');
  assert.equal(data.choices[0].message.content, mockReply(`hello ${m}`));

  const calls = await callsWith(mock, m);
  assert.equal(calls.length, 1, 'exactly one upstream call');
  assert.equal(calls[0].upstream, 'b', 'the arm\'s upstream was called');
  assert.equal(calls[0].path, '/b/v1/chat/completions');
  // Only "model" changed; everything else reached the upstream as sent.
  assert.deepEqual(calls[0].body, { ...sent, model: 'ft:gpt-4o-mini:acme:support:1' });

  // Streaming through the SDK: same headers, the chunks name the arm model.
  const { data: stream, response: sr } = await sdk.chat.completions
    .create({ ...sent, stream: true }).withResponse();
  assert.equal(sr.headers.get('x-switchyard-arm'), 'ft');
  let content = '';
  const models = new Set();
  for await (const ch of stream) {
    models.add(ch.model);
    content += ch.choices?.[0]?.delta?.content ?? '';
  }
  assert.equal(content, mockReply(`hello ${m}`));
  assert.deepEqual([...models], ['ft:gpt-4o-mini:acme:support:1']);
});

test('unknown model: passed through unchanged to the default upstream, no route headers', T, async () => {
  const m = marker('pass');
  const raw = JSON.stringify(ask('gpt-4o-mini', `plain ${m}`, { temperature: 0 }));
  const r = await post(gw, raw);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.route, null, 'no x-switchyard-route on pass-through');
  assert.equal(r.arm, null, 'no x-switchyard-arm on pass-through');
  assert.equal(r.json.model, 'gpt-4o-mini');
  const calls = await callsWith(mock, m);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].path, '/def/v1/chat/completions');
  const all = await (await fetch(`${mock.url}/mock/requests`)).json();
  const rec = all.find((q) => q.seq === calls[0].seq);
  assert.equal(rec.body, raw, 'pass-through body is byte for byte the client\'s');

  // Route names are exact and case-sensitive: "AB" is not "ab".
  const m2 = marker('case');
  const r2 = await post(gw, ask('AB', `case ${m2}`));
  assert.equal(r2.status, 200);
  assert.equal(r2.route, null);
  assert.equal((await callsWith(mock, m2))[0].upstream, 'def');
});

test('1000 users on a 50/50 route: shares within 5 pp, upstream matches the arm', T, async () => {
  const tag = marker('split50');
  const arms = await splitRun(gw, 'ab', tag);
  byUser.ab = arms;
  const t = tally(Object.values(arms));
  assert.ok(Math.abs(t.a / 1000 - 0.5) <= 0.05 && Math.abs(t.b / 1000 - 0.5) <= 0.05,
    `shares a=${t.a} b=${t.b} of 1000`);
  // The mock saw each user's request at the upstream of the arm the header named,
  // with that arm's model.
  const calls = await callsWith(mock, tag);
  assert.equal(calls.length, 1000);
  for (const c of calls) {
    const u = /(user-\d+)/.exec(c.body.messages[0].content)[1];
    assert.equal(c.upstream, arms[u], `${u}: called ${c.upstream}, header said ${arms[u]}`);
    assert.equal(c.model, ARM_MODEL.ab[arms[u]]);
  }
});

test('1000 users on a 90/10 route: shares within 3 pp', T, async () => {
  const arms = await splitRun(gw, 'ninety', marker('split90'));
  byUser.ninety = arms;
  const t = tally(Object.values(arms));
  assert.ok(Math.abs(t.a / 1000 - 0.9) <= 0.03, `shares a=${t.a} b=${t.b} of 1000`);
  // Two routes, two salts: the splits are not the same partition of users.
  const bothB = USERS.filter((u) => byUser.ab[u] === 'b' && arms[u] === 'b').length;
  // Independent: about 0.5 * 0.1 * 1000 = 50 users are on b in both.
  assert.ok(bothB > 20 && bothB < 90, `${bothB} users on b in both routes`);
});

test('stickiness: 100 requests per user always land on one arm, whatever carries the key', T, async () => {
  assert.ok(byUser.ab, 'needs the 50/50 run');
  const onA = USERS.find((u) => byUser.ab[u] === 'a');
  const onB = USERS.find((u) => byUser.ab[u] === 'b');
  for (const u of [onA, onB]) {
    const viaHeader = await pool(Array.from({ length: 100 }), 16, async () =>
      (await post(gw, ask('ab', 'sticky'), { headers: { 'x-switchyard-user': u } })).arm);
    assert.deepEqual(tally(viaHeader), { [byUser.ab[u]]: 100 }, `${u} via header`);
    // The same key in the body's "user" field hashes the same.
    const viaBody = await pool(Array.from({ length: 20 }), 10, async () =>
      (await post(gw, ask('ab', 'sticky', { user: u }))).arm);
    assert.deepEqual(tally(viaBody), { [byUser.ab[u]]: 20 }, `${u} via body user`);
  }
  // Order: the header wins over the body's user.
  let r = await post(gw, ask('ab', 'order', { user: onB }), { headers: { 'x-switchyard-user': onA } });
  assert.equal(r.arm, 'a');
  r = await post(gw, ask('ab', 'order', { user: onA }), { headers: { 'x-switchyard-user': onB } });
  assert.equal(r.arm, 'b');
  // No user at all: the client key's name is the key, so each key is sticky.
  for (const name of ['key-one', 'key-two']) {
    const a = await pool(Array.from({ length: 30 }), 10, async () =>
      (await post(gw, ask('ab', 'by key'), { key: gw.keys[name] })).arm);
    assert.equal(Object.keys(tally(a)).length, 1, `${name}: ${JSON.stringify(tally(a))}`);
  }
});

test('a route with sticky [] splits at random by weight, even for one user', T, async () => {
  const arms = await pool(Array.from({ length: 200 }), 16, async () => {
    const r = await post(gw, ask('rand', 'random'), { headers: { 'x-switchyard-user': 'same-user' } });
    assert.equal(r.status, 200);
    return r.arm;
  });
  const t = tally(arms);
  assert.ok(t.a >= 60 && t.b >= 60, `200 random picks: ${JSON.stringify(t)}`);
});

test('after a restart on the same config the same users land on the same arms', T, async () => {
  assert.ok(byUser.ab && byUser.ninety, 'needs the split runs');
  gw = await restartRouterGateway(gw);
  const ab = await splitRun(gw, 'ab', marker('restart'));
  const moved = USERS.filter((u) => ab[u] !== byUser.ab[u]);
  assert.deepEqual(moved, [], 'users that changed arm after the restart (50/50)');
  // The 90/10 route too, on a sample (the machine may be busy; 1000 is enough once).
  const sample = USERS.filter((_, i) => i % 10 === 0);
  const ninety = await pool(sample, 16, async (u) =>
    (await post(gw, ask('ninety', 'restart90'), { headers: { 'x-switchyard-user': u } })).arm);
  assert.deepEqual(sample.filter((u, i) => ninety[i] !== byUser.ninety[u]), [], '90/10');
});

test('rules pick an arm from request features before the split', T, async () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
  const cases = [
    ['no feature matches', {}, {}, 'key-one', 'a'],
    ['tools present', { tools }, {}, 'key-one', 'b'],
    ['client key listed', {}, {}, 'key-two', 'b'],
    ['tenant listed', {}, { 'x-switchyard-tenant': 'acme' }, 'key-one', 'b'],
    ['other tenant', {}, { 'x-switchyard-tenant': 'globex' }, 'key-one', 'a'],
    ['large prompt', { messages: [{ role: 'user', content: 'x'.repeat(6000) }] }, {}, 'key-one', 'b'],
  ];
  for (const [what, extra, headers, key, want] of cases) {
    const m = marker('rule');
    const r = await post(gw, ask('ruled', `rule ${m}`, extra), { headers, key: gw.keys[key] });
    assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
    assert.equal(r.arm, want, what);
    assert.equal(r.json.model, `rule-${want}`, what);
  }
});

test('captures say whether the split was sticky', T, async () => {
  const sticky = await post(gw, ask('ab', 'sticky capture'), { headers: { 'x-switchyard-user': 'cap-u' } });
  const random = await post(gw, ask('rand', 'random capture'), { headers: { 'x-switchyard-user': 'cap-u' } });
  const deadline = Date.now() + 5000 * SLOW;
  const want = new Set([sticky.capId, random.capId]);
  while ((await listCaptures(gw.dataDir)).filter((r) => want.has(r.id)).length < 2) {
    assert.ok(Date.now() < deadline, 'captures did not appear');
    await sleep(50);
  }
  const s = await showCapture(gw.dataDir, sticky.capId);
  const r = await showCapture(gw.dataDir, random.capId);
  assert.equal(s.route, 'ab');
  assert.equal(s.sticky, true);
  assert.ok(s.user_hash && s.user_hash !== 'cap-u', 'the user is recorded hashed');
  assert.equal(r.route, 'rand');
  assert.equal(r.sticky, false, 'a random pick is recorded as not sticky');
});

/* ------------------------------------------------------------------ SIGHUP */

const flip = (wa, wb) => [{
  name: 'flip',
  arms: [
    { name: 'a', upstream: 'a', model: 'flip-a', weight_bp: wa },
    { name: 'b', upstream: 'b', model: 'flip-b', weight_bp: wb },
  ],
}];

/** Arms of n requests on `route` with distinct users (so no stickiness hides a change). */
async function armsOf(g, route, n, tag) {
  return pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const r = await post(g, ask(route, `${tag} ${i}`), { headers: { 'x-switchyard-user': `${tag}-${i}` } });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    return r.arm;
  });
}

test('SIGHUP: new weights apply (100/0 -> 0/100); a broken file keeps the old routes', T, async () => {
  const g = await startRouterGateway({ upstreams: upstreams(), routes: flip(10000, 0) });
  assert.deepEqual(tally(await armsOf(g, 'flip', 20, marker('before'))), { a: 20 });

  g.writeConfig({ routes: [...flip(0, 10000), { name: 'added', arms: [{ name: 'x', upstream: 'a' }] }] });
  const line = await g.reload();
  assert.match(line, /2 route/);
  const tag = marker('after');
  assert.deepEqual(tally(await armsOf(g, 'flip', 20, tag)), { b: 20 });
  const calls = await callsWith(mock, tag);
  assert.equal(calls.length, 20);
  assert.ok(calls.every((c) => c.upstream === 'b' && c.model === 'flip-b'));
  // The added route is live too (its arm model defaults to the route name).
  const added = await post(g, ask('added', 'new route'));
  assert.equal(added.route, 'added');
  assert.equal(added.json.model, 'added');

  // Not JSON: rejected, old table stays, still serving.
  g.writeRaw('{ "upstreams": [ {"name": "a", ');
  await g.reload({ expect: 'rejected' });
  assert.deepEqual(tally(await armsOf(g, 'flip', 20, marker('broken'))), { b: 20 });
  // Valid JSON, invalid route (weights sum to 9000): rejected with the field named.
  g.writeConfig({ routes: flip(4000, 5000) });
  const rej = await g.reload({ expect: 'rejected' });
  assert.match(rej, /weight/i);
  // A route naming an unknown upstream: rejected too.
  g.writeConfig({ routes: [{ name: 'flip', arms: [{ name: 'a', upstream: 'nowhere' }] }] });
  assert.match(await g.reload({ expect: 'rejected' }), /nowhere|upstream/);
  assert.deepEqual(tally(await armsOf(g, 'flip', 20, marker('still'))), { b: 20 });
  assert.equal((await post(g, ask('added', 'still there'))).route, 'added');

  // A good file again: applies, and a removed route becomes pass-through.
  g.writeConfig({ routes: flip(10000, 0) });
  await g.reload();
  assert.deepEqual(tally(await armsOf(g, 'flip', 20, marker('back'))), { a: 20 });
  const gone = await post(g, ask('added', 'gone'));
  assert.equal(gone.status, 200);
  assert.equal(gone.route, null, 'removed route is now pass-through');
  assert.equal(await g.stop(), 0);
});

test('SIGHUP during traffic: every request is answered by one complete table', T, async () => {
  const g = await startRouterGateway({ upstreams: upstreams(), routes: flip(10000, 0) });
  let stop = false;
  const seen = [];
  const load = pool(Array.from({ length: 8 }), 8, async () => {
    let i = 0;
    while (!stop) {
      const r = await post(g, ask('flip', 'load'), { headers: { 'x-switchyard-user': `l-${i++}` } });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      // Arm a always serves flip-a and b flip-b: no request mixes two tables.
      assert.equal(r.json.model, `flip-${r.arm}`);
      seen.push(r.arm);
    }
  });
  try {
    for (let k = 0; k < 6; k++) {
      g.writeConfig({ routes: k % 2 ? flip(10000, 0) : flip(0, 10000) });
      await g.reload();
      await sleep(100 * SLOW);
    }
  } finally {
    stop = true;
    await load;
  }
  assert.ok(seen.length > 0);
  assert.ok(seen.includes('a') && seen.includes('b'), JSON.stringify(tally(seen)));
  assert.equal(await g.stop(), 0);
});

test('the gateway and the mock exit cleanly', T, async () => {
  assert.equal(await gw.stop(), 0);
  assert.equal(await mock.stop(), 0);
});
