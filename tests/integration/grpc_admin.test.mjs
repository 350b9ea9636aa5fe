// The Admin gRPC API end to end: routes (list, get, put, split, promote,
// shadow, rollback, history), client keys, captures, labels, export and the
// report, driven from an independent client (Debian's python3-grpcio with
// stubs generated from proto/ at test time: tests/integration/grpc/admin_client.py).
// Also: promote/rollback while HTTP load runs, and a restart that keeps
// routes, history and keys.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  startMock, stopAll, runToExit, tempDir, sha256hex, sleep, SLOW,
} from './lib/harness.mjs';
import {
  mockUpstream, startRouterGateway, restartRouterGateway, ask, post, pool, tally,
} from './lib/router.mjs';

const ROOT = process.env.SY_SOURCE_DIR ?? process.cwd();
const PY = '/usr/bin/python3';
const CLIENT = join(ROOT, 'tests/integration/grpc/admin_client.py');
const ADMIN = 'adm-' + Math.random().toString(36).slice(2);
const READ = 'read-' + Math.random().toString(36).slice(2);
const T = { timeout: 120000 * SLOW };

let mock;
let gw;
let stubs = '';

function adminAddr(proc) {
  const a = /^switchyard grpc-admin listening on (\S+)$/m.exec(proc.stdout());
  assert.ok(a, `no admin listening line:\n${proc.stdout()}`);
  return a[1];
}

/** Runs Admin calls in order: [{method, req, token?}] → [{code, details, resp}]. */
async function admin(calls, { token = ADMIN } = {}) {
  const r = await runToExit(PY, [CLIENT, '--target', adminAddr(gw), '--stubs', stubs,
    '--token', token, '--calls', JSON.stringify(calls)], { timeoutMs: 60000 * SLOW });
  let res;
  try {
    res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new Error(`admin_client: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return res.results;
}

/** One call that must succeed; returns its response. */
async function ok(method, req = {}, opts = {}) {
  const [r] = await admin([{ method, req }], opts);
  assert.equal(r.code, 'OK', `${method}: ${r.code} ${r.details}`);
  return r.resp;
}

/** One call that must fail with `code`; returns the details. */
async function fails(method, req, code, opts = {}) {
  const [r] = await admin([{ method, req }], opts);
  assert.equal(r.code, code, `${method}(${JSON.stringify(req)}): ${r.code} ${r.details}`);
  return r.details;
}

const arm = (name, upstream, w) => ({ name, upstream, model: `m-${name}`, weight_bp: w });
const ROUTES = [
  { name: 'flip', arms: [arm('a', 'a', 10000), arm('b', 'b', 0)] },
  { name: 'rep', arms: [arm('base', 'a', 5000), arm('ft', 'b', 5000)] },
];

before(async () => {
  stubs = tempDir('sy-adm-stubs-');
  const protos = readdirSync(join(ROOT, 'proto/switchyard/v1')).filter((f) => f.endsWith('.proto'))
    .map((f) => `proto/switchyard/v1/${f}`);
  const g = await runToExit(PY, ['-m', 'grpc_tools.protoc', '-I', 'proto', `--python_out=${stubs}`,
    `--grpc_python_out=${stubs}`, ...protos], { cwd: ROOT, timeoutMs: 60000 });
  assert.equal(g.code, 0, `grpc_tools.protoc failed:\n${g.stderr}`);
  mock = await startMock(['--quiet']);
  gw = await startRouterGateway({
    upstreams: [mockUpstream(mock, 'a'), mockUpstream(mock, 'b')],
    routes: ROUTES,
    args: ['--grpc-admin-listen', '127.0.0.1:0'],
    extra: {
      grpc: {
        admin_tokens: [
          { name: 'ops', sha256: sha256hex(ADMIN), role: 'admin' },
          { name: 'viewer', sha256: sha256hex(READ), role: 'read' },
        ],
      },
    },
  });
  assert.match(gw.stdout() + gw.stderr(), /routes: seeded the store from the config file \(version 1\)/);
});

after(stopAll);

test('routes: list and get the config routes', T, async () => {
  const l = await ok('ListRoutes');
  assert.deepEqual(l.routes.map((r) => r.name), ['flip', 'rep']);
  assert.equal(l.table_version, '1');
  const f = await ok('GetRoute', { name: 'flip' }, { token: READ });
  assert.equal(f.version, '1');
  assert.equal(f.source, 'config');
  assert.equal(f.updated_by, 'config');
  assert.deepEqual(f.arms.map((a) => [a.name, a.upstream, a.model, a.weight_bp]),
    [['a', 'a', 'm-a', 10000], ['b', 'b', 'm-b', 0]]);
  assert.deepEqual(JSON.parse(f.route_json).name, 'flip');
  assert.match(await fails('GetRoute', { name: '' }, 'INVALID_ARGUMENT'), /^name: required/);
  assert.match(await fails('GetRoute', { name: 'nope' }, 'NOT_FOUND'), /nope/);
  assert.match(await fails('GetRoute', { name: 'flip', version: 42 }, 'NOT_FOUND'), /^version: /);
});

test('routes: PutRoute, SetSplit, SetShadow, Promote, Rollback with their error codes', T, async () => {
  const x = { name: 'extra', arms: [arm('a', 'a', 10000), arm('b', 'b', 0)] };
  const c = await ok('PutRoute', { route_json: JSON.stringify(x), expected_version: 0, reason: 'new' });
  assert.equal(c.version, '1');
  assert.equal(c.source, 'admin');
  assert.equal(c.updated_by, 'ops');
  assert.equal(c.reason, 'new');
  // live at once over HTTP
  const h = await post(gw, ask('extra', 'put-live'));
  assert.equal(h.status, 200);
  assert.equal(h.route, 'extra');
  assert.equal(h.arm, 'a');
  assert.match(await fails('PutRoute', { route_json: JSON.stringify(x), expected_version: 0 },
    'ALREADY_EXISTS'), /extra/);
  assert.match(await fails('PutRoute', { route_json: JSON.stringify(x), expected_version: 7 },
    'ABORTED'), /expected_version/);
  const bad = { name: 'extra', arms: [{ name: 'a', upstream: 'nowhere' }] };
  assert.match(await fails('PutRoute', { route_json: JSON.stringify(bad), expected_version: 1 },
    'INVALID_ARGUMENT'), /arms\[0\]\.upstream: .*nowhere/);
  assert.match(await fails('PutRoute', { route_json: '{not json' }, 'INVALID_ARGUMENT'), /^route_json: /);
  assert.match(await fails('PutRoute', { route_json: '{"arms":[]}' }, 'INVALID_ARGUMENT'), /^route_json\.name: /);
  const r2 = await ok('PutRoute', { route_json: JSON.stringify({ ...x, salt: 's2' }), expected_version: 1, reason: 'salt' });
  assert.equal(r2.version, '2');

  const s = await ok('SetSplit', { name: 'extra', weights: [{ arm: 'a', weight_bp: 3000 }, { arm: 'b', weight_bp: 7000 }], reason: 'ramp' });
  assert.equal(s.version, '3');
  assert.deepEqual(s.arms.map((a) => a.weight_bp), [3000, 7000]);
  assert.match(await fails('SetSplit', { name: 'extra', weights: [{ arm: 'a', weight_bp: 3000 }] },
    'INVALID_ARGUMENT'), /^weights: /);
  assert.match(await fails('SetSplit', { name: 'extra', weights: [{ arm: 'zz', weight_bp: 10000 }] },
    'NOT_FOUND'), /zz/);
  await fails('SetSplit', { name: 'ghost', weights: [{ arm: 'a', weight_bp: 10000 }] }, 'NOT_FOUND');

  const sh = await ok('SetShadow', { name: 'extra', arm: 'b', rate_bp: 2000, reason: 'mirror' });
  assert.equal(sh.version, '4');
  assert.deepEqual([sh.shadow.arm, sh.shadow.rate_bp], ['b', 2000]);
  assert.match(await fails('SetShadow', { name: 'extra', arm: 'b', rate_bp: 20000 }, 'INVALID_ARGUMENT'), /^rate_bp: /);

  assert.match(await fails('Promote', { name: 'extra', arm: 'b', expected_version: 3 }, 'ABORTED'), /expected_version/);
  assert.match(await fails('Promote', { name: 'extra', arm: '' }, 'INVALID_ARGUMENT'), /^arm: required/);
  assert.match(await fails('Promote', { name: 'extra', arm: 'b' }, 'PERMISSION_DENIED', { token: READ }), /viewer/);
  assert.equal(await fails('Promote', { name: 'extra', arm: 'b' }, 'UNAUTHENTICATED', { token: '' }) !== '', true);
  await fails('Promote', { name: 'extra', arm: 'b' }, 'UNAUTHENTICATED', { token: ADMIN + 'x' });
  const p = await ok('Promote', { name: 'extra', arm: 'b', expected_version: 4, reason: 'ship it' });
  assert.equal(p.version, '5');
  assert.deepEqual(p.arms.map((a) => a.weight_bp), [0, 10000]);
  const hp = await post(gw, ask('extra', 'promoted'));
  assert.equal(hp.arm, 'b');
  assert.equal(hp.json.model, 'm-b');

  // Rollback: to the previous version, then to a given one.
  const rb = await ok('Rollback', { name: 'extra', reason: 'oops' });
  assert.equal(rb.version, '6');
  assert.deepEqual(rb.arms.map((a) => a.weight_bp), [3000, 7000]);
  assert.equal(rb.shadow.arm, 'b');
  const rb1 = await ok('Rollback', { name: 'extra', to_version: 1, reason: 'start over' });
  assert.equal(rb1.version, '7');
  assert.equal(JSON.parse(rb1.route_json).salt, undefined);
  assert.ok(!rb1.shadow, "the shadow of version 4 is gone again");
  assert.match(await fails('Rollback', { name: 'extra', to_version: 99 }, 'NOT_FOUND'), /^to_version: /);
  assert.equal((await post(gw, ask('extra', 'rolled back'))).arm, 'a');

  // The history: who, when, what, why, newest first.
  const hist = (await ok('GetHistory', { name: 'extra' }, { token: READ })).entries;
  assert.deepEqual(hist.map((e) => e.version), ['7', '6', '5', '4', '3', '2', '1']);
  assert.deepEqual(hist.map((e) => e.action), ['rollback', 'rollback', 'promote', 'shadow', 'split', 'put', 'put']);
  assert.deepEqual(hist.map((e) => e.reason), ['start over', 'oops', 'ship it', 'mirror', 'ramp', 'salt', 'new']);
  assert.ok(hist.every((e) => e.by === 'ops'));
  assert.ok(hist.every((e, i) => i === 0 || BigInt(e.at_us) <= BigInt(hist[i - 1].at_us)));
  assert.match(hist[2].summary, /promote b/);
  assert.match(hist[4].summary, /3000/);
  assert.deepEqual(JSON.parse(hist[2].route_json).arms.map((a) => a.weight_bp), [0, 10000]);
  assert.equal((await ok('GetHistory', { name: 'extra', limit: 2 })).entries.length, 2);
  await fails('GetHistory', { name: 'ghost' }, 'NOT_FOUND');
  // GetRoute at an old version
  const v5 = await ok('GetRoute', { name: 'extra', version: 5 });
  assert.equal(v5.reason, 'ship it');
  assert.deepEqual(v5.arms.map((a) => a.weight_bp), [0, 10000]);
  const h2 = await ok('Health', {});
  assert.ok(Number(h2.routes_version) >= 8, `routes_version ${h2.routes_version}`);
  assert.equal(h2.routes, 3);
});

test('unknown methods are UNIMPLEMENTED at once', T, async () => {
  const r = await runToExit(PY, [CLIENT, '--target', adminAddr(gw), '--stubs', stubs,
    '--token', ADMIN, '--raw', '/switchyard.v1.Admin/NoSuchThing']);
  const [u] = JSON.parse(r.stdout.trim().split('\n').pop()).results;
  assert.equal(u.code, 'UNIMPLEMENTED');
  assert.ok(u.elapsed < 2, `took ${u.elapsed}s`);
});

test('promote and rollback while load runs: no failed request, every arm from one published version', T, async () => {
  const N = 400;
  const users = Array.from({ length: 40 }, (_, i) => `load-user-${i}`);
  const results = [];
  let done = false;
  let changesOver = false;
  const changes = [];
  const seq = ['b', 'rollback', 'b', 'a', 'b', 'rollback'];
  const load = pool(Array.from({ length: N }, (_, i) => i), 8, async (i) => {
    // Spread the requests over the changes: request i waits for its share of
    // them, so a fast gateway cannot finish the load before they happen.
    const need = Math.floor((i * seq.length) / N);
    while (changes.length < need && !changesOver) await sleep(5);
    const t0 = performance.now();
    const r = await post(gw, ask('flip', `load ${i}`), { headers: { 'x-switchyard-user': users[i % users.length] } });
    results.push({ t0, t1: performance.now(), status: r.status, arm: r.arm, model: r.json?.model });
  }).finally(() => { done = true; });
  // flips: each {before, after, arm}: requests that started after `after`
  // and ended before the next change's `before` must all be on `arm`.
  try {
    for (const step of seq) {
      if (done) break;
      await sleep(60);
      const before = performance.now();
      const res = step === 'rollback'
        ? await ok('Rollback', { name: 'flip', reason: 'load test' })
        : await ok('Promote', { name: 'flip', arm: step, reason: 'load test' });
      const after = performance.now();
      const live = res.arms.find((a) => a.weight_bp === 10000).name;
      changes.push({ before, after, arm: live });
    }
  } finally {
    changesOver = true; // a failed change must not leave the load waiting
  }
  await load;
  assert.ok(changes.length >= 3, `only ${changes.length} changes happened during the load`);
  assert.equal(results.length, N);
  const failed = results.filter((r) => r.status !== 200);
  assert.deepEqual(failed, [], 'failed requests');
  for (const r of results) {
    assert.ok(r.arm === 'a' || r.arm === 'b', `arm ${r.arm}`);
    assert.equal(r.model, `m-${r.arm}`, 'the arm header and the upstream model agree');
  }
  let checked = 0;
  for (let k = 0; k < changes.length; k++) {
    const lo = changes[k].after;
    const hi = k + 1 < changes.length ? changes[k + 1].before : Infinity;
    const inside = results.filter((r) => r.t0 > lo && r.t1 < hi);
    checked += inside.length;
    assert.deepEqual(tally(inside.map((r) => r.arm)), inside.length ? { [changes[k].arm]: inside.length } : {},
      `requests between change ${k} and ${k + 1} (${changes[k].arm})`);
  }
  assert.ok(checked > 0, 'some requests fell cleanly between changes');
  // settled: everyone on the final arm
  const final = changes[changes.length - 1].arm;
  const tail = await pool(users, 8, async (u) => (await post(gw, ask('flip', 'settled'), { headers: { 'x-switchyard-user': u } })).arm);
  assert.deepEqual(tally(tail), { [final]: users.length });
  const hist = (await ok('GetHistory', { name: 'flip' })).entries;
  assert.equal(hist.length, changes.length + 1);
});

let createdSecret = '';
test('keys: a key created over gRPC works over HTTP at once and fails after revoke', T, async () => {
  const c = await ok('CreateKey', { name: 'app2', reason: 'new app' });
  const secret = c.secret;
  assert.match(secret, /^sy-[A-Za-z0-9]{40}$/);
  assert.equal(c.key.name, 'app2');
  assert.equal(c.key.prefix, secret.slice(0, 7));
  assert.equal(c.key.created_by, 'ops');
  assert.equal(c.key.capture, true);
  const h = await post(gw, ask('flip', 'with app2'), { key: secret });
  assert.equal(h.status, 200, h.text);
  assert.match(await fails('CreateKey', { name: 'app2' }, 'ALREADY_EXISTS'), /app2/);
  assert.match(await fails('CreateKey', { name: 'it' }, 'ALREADY_EXISTS'), /config/);
  assert.match(await fails('CreateKey', { name: 'bad name' }, 'INVALID_ARGUMENT'), /^name: /);
  await fails('CreateKey', { name: 'x' }, 'PERMISSION_DENIED', { token: READ });
  const l = await ok('ListKeys', {}, { token: READ });
  assert.deepEqual(l.keys.map((k) => k.name), ['it', 'app2']);
  assert.ok(!JSON.stringify(l).includes(secret), 'the secret is never listed');
  const r = await ok('RevokeKey', { name: 'app2', reason: 'leaked' });
  assert.equal(r.key.revoked, true);
  assert.equal(r.key.name, 'app2');
  const after401 = await post(gw, ask('flip', 'revoked'), { key: secret });
  assert.equal(after401.status, 401);
  assert.deepEqual((await ok('ListKeys', {})).keys.map((k) => k.name), ['it']);
  const all = await ok('ListKeys', { include_revoked: true });
  assert.deepEqual(all.keys.map((k) => [k.name, k.revoked]), [['it', false], ['app2', true]]);
  await fails('RevokeKey', { name: 'ghost' }, 'NOT_FOUND');
  assert.match(await fails('RevokeKey', { name: 'it' }, 'FAILED_PRECONDITION'), /config/);
  // one that stays, for the restart test
  createdSecret = (await ok('CreateKey', { name: 'keeper', no_capture: true })).secret;
  assert.equal((await post(gw, ask('flip', 'keeper'), { key: createdSecret })).status, 200);
  // the old key is still refused and the config key still works
  assert.equal((await post(gw, ask('flip', 'cfg'))).status, 200);
});

test('captures, labels, export and the report', T, async () => {
  const tag = 'rep-' + Date.now();
  const users = Array.from({ length: 12 }, (_, i) => `${tag}-u${i}`);
  const sent = await pool(users, 4, async (u, i) => {
    const r = await post(gw, ask('rep', `${tag} question ${i}`), { headers: { 'x-switchyard-user': u } });
    assert.equal(r.status, 200);
    return { arm: r.arm, id: r.capId };
  });
  const byArm = tally(sent.map((s) => s.arm));
  assert.ok(byArm.base >= 1 && byArm.ft >= 1, `both arms got traffic: ${JSON.stringify(byArm)}`);
  // captures are committed asynchronously
  let list;
  for (let i = 0; i < 50; i++) {
    list = await ok('ListCaptures', { filter: { route: 'rep' }, limit: 100 });
    if (list.captures.length >= sent.length) break;
    await sleep(100);
  }
  assert.equal(list.captures.length, sent.length);
  const ids = list.captures.map((c) => BigInt(c.id));
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'oldest first by default');
  assert.deepEqual([...list.captures.map((c) => c.id)].sort(), sent.map((s) => s.id).sort());
  // newest first with paging
  const p1 = await ok('ListCaptures', { filter: { route: 'rep' }, limit: 5, newest_first: true });
  assert.equal(p1.captures.length, 5);
  assert.equal(p1.captures[0].id, list.captures[list.captures.length - 1].id);
  assert.notEqual(p1.next_after_id, '0');
  const p2 = await ok('ListCaptures', { filter: { route: 'rep' }, limit: 100, newest_first: true, after_id: p1.next_after_id });
  assert.equal(p2.captures.length, sent.length - 5);
  assert.equal(p2.next_after_id, '0');
  const ft = await ok('ListCaptures', { filter: { route: 'rep', arm: 'ft' } });
  assert.equal(ft.captures.length, byArm.ft);
  assert.ok(ft.captures.every((c) => c.arm === 'ft' && c.http_status === 200));
  await fails('ListCaptures', { limit: 5000 }, 'INVALID_ARGUMENT');
  const future = await ok('ListCaptures', { filter: { route: 'rep', from_us: String(Date.now() * 1000 + 3600e6) } });
  assert.equal(future.captures.length, 0);

  // GetCapture
  const one = sent[0];
  const g = await ok('GetCapture', { id: one.id }, { token: READ });
  assert.equal(g.summary.id, one.id);
  assert.equal(g.summary.arm, one.arm);
  assert.equal(g.kind, 'primary');
  assert.ok(g.request_json.includes(`${tag} question 0`));
  assert.ok(g.response_json.includes('mock reply'));
  assert.match(await fails('GetCapture', { id: 0 }, 'INVALID_ARGUMENT'), /^id: /);
  await fails('GetCapture', { id: 12345 }, 'NOT_FOUND');

  // Labels: every base answer verified (up), ft answers get a correction.
  const calls = sent.map((s) => (s.arm === 'base'
    ? { method: 'LabelCapture', req: { id: s.id, verified: true, tags: ['qa'] } }
    : { method: 'LabelCapture', req: { id: s.id, correction: `gold answer ${s.id}`, comment: 'wrong' } }));
  const labelled = await admin(calls);
  assert.ok(labelled.every((r) => r.code === 'OK' && r.resp.feedback_id !== '0'), JSON.stringify(labelled));
  await fails('LabelCapture', { id: one.id }, 'INVALID_ARGUMENT');
  await fails('LabelCapture', { id: one.id, verified: true, correction: 'x' }, 'INVALID_ARGUMENT');
  await fails('LabelCapture', { id: 12345, verified: true }, 'NOT_FOUND');
  await fails('LabelCapture', { id: one.id, verified: true }, 'PERMISSION_DENIED', { token: READ });
  const gl = await ok('GetCapture', { id: one.id });
  assert.equal(gl.feedback.length, 1);
  assert.equal(gl.feedback[0].labeller, 'ops');
  if (one.arm === 'base') {
    assert.equal(gl.feedback[0].rating, 'up');
    assert.deepEqual(gl.feedback[0].tags, ['qa']);
  } else {
    assert.equal(gl.feedback[0].correction, `gold answer ${one.id}`);
  }
  const corr = await ok('ListCaptures', { filter: { route: 'rep', only_corrected: true } });
  assert.equal(corr.captures.length, byArm.ft);
  const up = await ok('ListCaptures', { filter: { route: 'rep', only_rated_up: true } });
  assert.equal(up.captures.length, byArm.base);

  // Export: the chat JSONL lines, corrections as the assistant turn.
  const ex = await ok('ExportDataset', { filter: { route: 'rep' } });
  assert.equal(ex.lines.length, sent.length);
  const parsed = ex.lines.map((l) => JSON.parse(l.json));
  assert.ok(ex.lines.every((l) => l.split === 'train'));
  const golds = parsed.map((p) => p.messages[p.messages.length - 1].content).filter((c) => c.startsWith('gold answer'));
  assert.equal(golds.length, byArm.ft);
  const lim = await ok('ExportDataset', { filter: { route: 'rep' }, limit: 3 });
  assert.equal(lim.lines.length, 3);
  const val = await ok('ExportDataset', { filter: { route: 'rep' }, validation_fraction: 0.5 });
  assert.equal(val.lines.length, sent.length);
  assert.ok(val.lines.every((l) => l.split === 'train' || l.split === 'validation'));
  const onlyUp = await ok('ExportDataset', { filter: { route: 'rep', only_rated_up: true } });
  assert.equal(onlyUp.lines.length, byArm.base);
  const pref = await ok('ExportDataset', { filter: { route: 'rep' }, format: 'preference' });
  assert.equal(pref.lines.length, byArm.ft, 'one correction pair per corrected answer');
  await fails('ExportDataset', { format: 'csv' }, 'INVALID_ARGUMENT');
  await fails('ExportDataset', { validation_fraction: 0.9 }, 'INVALID_ARGUMENT');

  // Report: per-arm numbers match the traffic and the labels.
  const rep = await ok('GetReport', { name: 'rep' }, { token: READ });
  assert.equal(rep.route, 'rep');
  assert.equal(rep.base_arm, 'base');
  const arms = Object.fromEntries(rep.arms.map((a) => [a.arm, a]));
  assert.equal(Number(arms.base.requests), byArm.base);
  assert.equal(Number(arms.ft.requests), byArm.ft);
  assert.equal(Number(arms.base.errors), 0);
  assert.equal(Number(arms.base.feedback), byArm.base);
  assert.equal(arms.base.approval, 1);
  assert.ok(arms.base.approval_ci95.low > 0 && arms.base.approval_ci95.high <= 1);
  assert.ok(arms.base.latency_p50_ms > 0 && arms.base.latency_p99_ms >= arms.base.latency_p50_ms);
  assert.ok(Number(arms.base.prompt_tokens) > 0);
  assert.equal(rep.recommendation, 'keep_testing');
  assert.match(rep.rule, /keep testing/);
  const empty = await ok('GetReport', { name: 'rep', from_us: '1000', to_us: '2000' });
  assert.ok(empty.arms.every((a) => a.requests === '0'));
  await fails('GetReport', { name: '' }, 'INVALID_ARGUMENT');
  // neither a route nor in any capture: NOT_FOUND (a deleted route with
  // captures still reports)
  await fails('GetReport', { name: 'no-such-route' }, 'NOT_FOUND');
  await fails('GetReport', { name: 'rep', from_us: '5000', to_us: '4000' }, 'INVALID_ARGUMENT');

  // A label is scrubbed like everything else that reaches the disk.
  const pii = await ok('LabelCapture', { id: one.id, correction: 'write to jane.roe@example.com',
    comment: 'customer phone +1 415 555 0132' });
  assert.ok(pii.feedback_id !== '0');
  const gp = await ok('GetCapture', { id: one.id });
  const last = gp.feedback[gp.feedback.length - 1];
  assert.equal(last.correction, 'write to [EMAIL]');
  assert.equal(last.comment, 'customer phone [PHONE]');
});

test('restart: routes, history and keys survive; the store wins over the file', T, async () => {
  const before = await ok('GetRoute', { name: 'extra' });
  const histBefore = (await ok('GetHistory', { name: 'flip' })).entries;
  const flipBefore = await ok('GetRoute', { name: 'flip' });
  gw = await restartRouterGateway(gw);
  assert.match(gw.stdout() + gw.stderr(), /routes: using the store's version \d+ \(changed through the admin API by 'ops'\)/);
  const afterR = await ok('GetRoute', { name: 'extra' });
  assert.deepEqual(afterR, before);
  assert.deepEqual((await ok('GetHistory', { name: 'flip' })).entries, histBefore);
  assert.deepEqual(await ok('GetRoute', { name: 'flip' }), flipBefore);
  const live = flipBefore.arms.find((a) => a.weight_bp === 10000).name;
  assert.equal((await post(gw, ask('flip', 'after restart'))).arm, live);
  assert.equal((await post(gw, ask('extra', 'after restart'))).route, 'extra');
  assert.equal((await post(gw, ask('flip', 'keeper again'), { key: createdSecret })).status, 200);
  const keys = await ok('ListKeys', { include_revoked: true });
  assert.deepEqual(keys.keys.map((k) => [k.name, k.revoked, k.capture]),
    [['it', false, true], ['app2', true, true], ['keeper', false, false]]);
  const h = await ok('Health', {});
  assert.equal(h.caller, 'ops');
  assert.equal(await gw.stop(), 0);
});
