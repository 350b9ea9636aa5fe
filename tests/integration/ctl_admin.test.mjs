// switchyardctl's admin commands end to end: a mock upstream, the gateway with
// its gRPC admin listener (tokens from the config, hashed with
// `switchyard hash-key`), and the real switchyardctl binary (gRPC C core).
// Covers exit codes (0 ok, 1 RPC failed, 2 usage, 3 connect/deadline), auth
// and roles, every Admin RPC through its command (routes with versions and
// history, keys working over HTTP, labels, remote captures, export, report),
// UNIMPLEMENTED reporting and TLS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import {
  startMock, startGateway, stopAll, runToExit, tempDir, requireEnv, closedPort, sleep,
  assertNoSanitizerReport, mockReply, SLOW,
} from './lib/harness.mjs';

const CTL = process.env.SWITCHYARDCTL_BIN ? requireEnv('SWITCHYARDCTL_BIN') : null;
const ADMIN_TOKEN = 'ctl-admin-' + Math.random().toString(36).slice(2);
const READ_TOKEN = 'ctl-read-' + Math.random().toString(36).slice(2);
const RUN_MS = 30000 * SLOW;

let mock;
let gw;
let adminAddr;
let grpcAddr;

/** `switchyard hash-key` of a token (the documented way to fill the config). */
async function hashKey(tok) {
  const r = await runToExit(requireEnv('SWITCHYARD_BIN'), ['hash-key', tok]);
  assert.equal(r.code, 0, r.stderr);
  const h = r.stdout.trim();
  assert.match(h, /^[0-9a-f]{64}$/);
  return h;
}

function listeners(proc) {
  const out = proc.stdout();
  return {
    admin: /^switchyard grpc-admin listening on (\S+)$/m.exec(out)?.[1],
    grpc: /^switchyard grpc listening on (\S+)$/m.exec(out)?.[1],
  };
}

/** Runs switchyardctl with a clean admin environment; checks for sanitizer reports. */
async function ctl(args, { token = ADMIN_TOKEN, addr = adminAddr, env = {}, timeoutMs = RUN_MS,
  input } = {}) {
  const r = await runToExit(CTL, args, {
    env: {
      SWITCHYARD_ADMIN_ADDR: addr ?? '',
      SWITCHYARD_ADMIN_TOKEN: token ?? '',
      SWITCHYARD_TLS_CA: '',
      ...env,
    },
    timeoutMs,
    input,
  });
  assertNoSanitizerReport(`switchyardctl ${args.join(' ')}`, r.stderr);
  return r;
}

/** Runs a --json command that must succeed; returns the parsed object. */
async function ctlJson(args, opts) {
  const r = await ctl([...args, '--json'], opts);
  assert.equal(r.code, 0, `switchyardctl ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON: ${r.stdout.slice(0, 500)}`);
  }
}

/** Asserts a failed RPC: exit 1 and the one status line. */
function assertRpcError(r, code, msg) {
  assert.equal(r.code, 1, `expected exit 1 (${code}), got ${r.code}\nstdout:${r.stdout}\nstderr:${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^switchyardctl: ${code}: `, 'm'));
  if (msg) assert.match(r.stderr, msg);
  assert.equal(r.stdout, '', 'nothing on stdout when the call failed');
}

async function chat(key, text, extra = {}) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bot', messages: [{ role: 'user', content: text }], ...extra }),
    signal: AbortSignal.timeout(10000 * SLOW),
  });
  const body = await r.text();
  return { status: r.status, body, arm: r.headers.get('x-switchyard-arm'),
    captureId: r.headers.get('x-switchyard-capture-id') };
}

/** Polls `fn` until it returns a truthy value (bounded). */
async function until(fn, what, ms = 10000 * SLOW) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(100);
  }
}

const ROUTE = {
  name: 'bot',
  arms: [
    { name: 'base', upstream: 'mock', model: 'm-base', weight_bp: 9000 },
    { name: 'ft', upstream: 'mock', model: 'm-ft', weight_bp: 1000 },
  ],
};

before(async () => {
  if (!CTL) return;
  const [ha, hr] = [await hashKey(ADMIN_TOKEN), await hashKey(READ_TOKEN)];
  mock = await startMock(['--quiet']);
  gw = await startGateway(mock.url + '/v1', {
    args: ['--grpc-listen', '127.0.0.1:0'],
    config: {
      routes: [ROUTE],
      grpc: {
        admin_listen: '127.0.0.1:0',
        admin_tokens: [
          { name: 'ci', sha256: ha, role: 'admin' },
          { name: 'viewer', sha256: hr, role: 'read' },
        ],
      },
    },
  });
  ({ admin: adminAddr, grpc: grpcAddr } = listeners(gw));
  assert.ok(adminAddr && grpcAddr, `listening lines missing:\n${gw.stdout()}`);
});

after(stopAll);

const skip = !CTL && 'SWITCHYARDCTL_BIN not set (switchyardctl target missing)';

test('--help of every command exits 0 and names its usage', { skip }, async () => {
  const top = await ctl(['--help']);
  assert.equal(top.code, 0);
  for (const c of ['health', 'routes', 'report', 'captures-remote', 'label', 'export-remote', 'keys']) {
    assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'), `top-level help lists ${c}`);
    const r = await ctl([c, '--help']);
    assert.equal(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`usage: switchyardctl ${c}`));
    assert.match(r.stdout, /exit codes: 0 ok, 1 .* 2 usage error, 3 cannot connect/);
  }
  const sub = await ctl(['routes', 'split', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /routes split NAME ARM=BP/);
});

test('health: OK as a table and as JSON, with the caller and its role', { skip }, async () => {
  const t = await ctl(['health']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^status\s+ok$/m);
  assert.match(t.stdout, /^caller\s+ci \(admin\)$/m);
  assert.match(t.stdout, /^routes\s+1 \(table version \d+\)$/m);
  const j = await ctlJson(['health']);
  assert.equal(j.status, 'ok');
  assert.equal(j.caller, 'ci');
  assert.equal(j.role, 'admin');
  assert.equal(j.routes, 1);
  assert.equal(j.capture_enabled, true);
  assert.match(j.routes_version, /^\d+$/, '64-bit integers are strings in --json');
  const v = await ctlJson(['health'], { token: READ_TOKEN });
  assert.equal(v.caller, 'viewer');
  assert.equal(v.role, 'read');
  // The token comes from --token as well as from the environment.
  const flag = await ctlJson(['health', '--token', READ_TOKEN], { token: '' });
  assert.equal(flag.caller, 'viewer');
});

test('authentication: no token or a wrong one is UNAUTHENTICATED, exit 1, token never printed', { skip }, async () => {
  const none = await ctl(['health'], { token: '' });
  assertRpcError(none, 'UNAUTHENTICATED');
  const wrongTok = 'wrong-' + ADMIN_TOKEN;
  const wrong = await ctl(['routes', 'list'], { token: wrongTok });
  assertRpcError(wrong, 'UNAUTHENTICATED');
  assert.ok(!wrong.stderr.includes(wrongTok), 'the token is never printed');
  const ok = await ctl(['health', '--json']);
  assert.ok(!ok.stdout.includes(ADMIN_TOKEN) && !ok.stderr.includes(ADMIN_TOKEN));
});

test('roles: a read token may read, every mutation is PERMISSION_DENIED (exit 1)', { skip }, async () => {
  const rd = { token: READ_TOKEN };
  assert.equal((await ctl(['routes', 'list'], rd)).code, 0);
  assert.equal((await ctl(['keys', 'list'], rd)).code, 0);
  const dir = tempDir('sy-ctl-ro-');
  const file = join(dir, 'r.json');
  writeFileSync(file, JSON.stringify({ ...ROUTE, name: 'ro-route' }));
  for (const args of [
    ['routes', 'promote', 'bot', 'ft', '--reason', 'ro'],
    ['routes', 'split', 'bot', 'base=5000', 'ft=5000', '--reason', 'ro'],
    ['routes', 'rollback', 'bot', '--reason', 'ro'],
    ['routes', 'shadow', 'bot', '--off', '--reason', 'ro'],
    ['routes', 'put', file, '--reason', 'ro'],
    ['keys', 'create', 'ro-key'],
    ['keys', 'revoke', 'it'],
    ['label', '1', '--verify'],
  ]) {
    assertRpcError(await ctl(args, rd), 'PERMISSION_DENIED', /viewer|read/);
  }
  // Nothing changed.
  const r = await ctlJson(['routes', 'get', 'bot']);
  assert.equal(r.arms.find((a) => a.name === 'base').weight_bp, 9000);
});

test('cannot connect or no answer in time: exit 3', { skip }, async () => {
  const port = await closedPort();
  const t0 = Date.now();
  const r = await ctl(['health'], { addr: `127.0.0.1:${port}` });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`^switchyardctl: UNAVAILABLE: cannot reach 127\\.0\\.0\\.1:${port}`, 'm'));
  assert.ok(Date.now() - t0 < 8000 * SLOW, 'a refused connection fails fast');
  // A server that accepts TCP and never speaks: the deadline ends the call.
  const silent = net.createServer(() => {});
  await new Promise((res) => silent.listen(0, '127.0.0.1', res));
  const sockets = new Set();
  silent.on('connection', (s) => { sockets.add(s); s.on('error', () => {}); });
  try {
    const t1 = Date.now();
    const d = await ctl(['routes', 'list', '--timeout-ms', '800'],
      { addr: `127.0.0.1:${silent.address().port}` });
    const took = Date.now() - t1;
    assert.equal(d.code, 3, d.stderr);
    assert.match(d.stderr, /^switchyardctl: (DEADLINE_EXCEEDED|UNAVAILABLE): /m);
    assert.ok(took >= 700 && took < 8000 * SLOW, `deadline respected (${took} ms)`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((res) => silent.close(res));
  }
});

test('UNIMPLEMENTED is reported cleanly (exit 1), never a hang', { skip }, async () => {
  // The inference listener does not serve the Admin service: every Admin
  // method there is an unknown method.
  const r = await ctl(['routes', 'list'], { addr: grpcAddr });
  assertRpcError(r, 'UNIMPLEMENTED', /switchyard\.v1\.Admin\/ListRoutes is not served by the gateway/);
  const s = await ctl(['export-remote'], { addr: grpcAddr });
  assertRpcError(s, 'UNIMPLEMENTED', /ExportDataset/);
});

test('usage errors exit 2 before anything is sent', { skip }, async () => {
  // A refused address: if any of these reached the network they would exit 3.
  const addr = `127.0.0.1:${await closedPort()}`;
  const cases = [
    [[], /usage: switchyardctl COMMAND/],
    [['no-such-command'], /unknown command/],
    [['health', 'extra'], /takes no arguments/],
    [['health', '--timeout-ms', '0'], /--timeout-ms/],
    [['health', '--bogus'], /unknown option/],
    [['health', '--addr', 'nohostport'], /expected HOST:PORT/],
    [['routes'], /usage: switchyardctl routes/],
    [['routes', 'frobnicate'], /unknown action/],
    [['routes', 'get'], /expected NAME/],
    [['routes', 'get', 'bot', '--version', 'x'], /--version/],
    [['routes', 'split', 'bot', 'base=abc', 'ft=5000', '--reason', 'r'], /'base=abc': weight must be/],
    [['routes', 'split', 'bot', 'base=6000', 'ft=5000', '--reason', 'r'], /must sum to 10000 .* got 11000/],
    [['routes', 'split', 'bot', 'base=5000', 'base=5000', '--reason', 'r'], /given twice/],
    [['routes', 'split', 'bot', 'base', '--reason', 'r'], /expected ARM=BP/],
    [['routes', 'split', 'bot', 'b@d=10000', '--reason', 'r'], /not an arm name/],
    [['routes', 'split', 'bot', 'base=10000'], /--reason TEXT is required/],
    [['routes', 'promote', 'bot', '--reason', 'r'], /expected NAME ARM/],
    [['routes', 'promote', 'bot', 'ft', '--version', '2', '--reason', 'r'], /--version is not an option here/],
    [['routes', 'shadow', 'bot', 'ft', '0', '--reason', 'r'], /rate must be 1\.\.10000/],
    [['routes', 'shadow', 'bot', 'ft', '--off', '--reason', 'r'], /expected NAME --off/],
    [['routes', 'rollback', 'bot', '--to-version', '0', '--reason', 'r'], /--to-version/],
    [['routes', 'history', 'bot', '--limit', '-1'], /--limit/],
    [['routes', 'put', '/nonexistent/route.json', '--reason', 'r'], /cannot open/],
    [['report'], /expected NAME/],
    [['report', 'bot', '--since', 'yesterday-ish'], /--since 'yesterday-ish'/],
    [['report', 'bot', '--since', '1h', '--until', '2h'], /--since must be before --until/],
    [['label', 'abc', '--verify'], /not a capture id/],
    [['label', '12', '--verify', '--correct', 'x'], /exactly one of --verify and --correct/],
    [['label', '12'], /exactly one of --verify and --correct/],
    [['keys', 'create', 'bad name!'], /not a key name/],
    [['keys', 'list', '--no-capture'], /not an option here/],
    [['keys', 'zap'], /unknown action/],
    [['captures-remote', 'show', '0'], /not a capture id/],
    [['captures-remote', 'list', '--limit', '5000'], /--limit: expected 1\.\.1000/],
    [['export-remote', '--val-fraction', '0.2'], /needs --val-out/],
    [['export-remote', '--val-fraction', '0.9', '--val-out', '/tmp/x'], /--val-fraction: expected 0\.\.0\.5/],
    [['export-remote', '--format', 'csv'], /--format/],
  ];
  const dir = tempDir('sy-ctl-usage-');
  const notJson = join(dir, 'bad.json');
  writeFileSync(notJson, '{"name": "x", ');
  const noName = join(dir, 'noname.json');
  writeFileSync(noName, '{"arms": []}');
  cases.push([['routes', 'put', notJson, '--reason', 'r'], /not valid JSON/]);
  cases.push([['routes', 'put', noName, '--reason', 'r'], /no "name" string/]);
  for (const [args, msg] of cases) {
    const r = await ctl(args, { addr });
    assert.equal(r.code, 2, `switchyardctl ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, msg, `switchyardctl ${args.join(' ')}`);
  }
  // An unreadable CA file is the caller's mistake too.
  const ca = await ctl(['health', '--tls-ca', join(dir, 'missing.pem')], { addr });
  assert.equal(ca.code, 2);
  assert.match(ca.stderr, /missing\.pem/);
});

test('routes: list, get, promote, split with versions, rollback, shadow, put, history', { skip, timeout: 120000 }, async () => {
  const list = await ctlJson(['routes', 'list']);
  assert.equal(list.routes.length, 1);
  const v1 = list.routes[0];
  assert.equal(v1.name, 'bot');
  assert.equal(v1.source, 'config');
  const base = Number(v1.version);
  const table = await ctl(['routes', 'list']);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^NAME\s+VERSION\s+SOURCE\s+ARMS/m);
  assert.match(table.stdout, /^bot\s+\d+\s+config\s+base 90\.00%, ft 10\.00%/m);

  // Promote: ft takes 100%, recorded with who and why; traffic follows.
  const p = await ctlJson(['routes', 'promote', 'bot', 'ft', '--reason', 'ft wins']);
  assert.equal(Number(p.version), base + 1);
  assert.deepEqual(p.arms.map((a) => [a.name, a.weight_bp]), [['base', 0], ['ft', 10000]]);
  assert.equal(p.updated_by, 'ci');
  assert.equal(p.reason, 'ft wins');
  for (let i = 0; i < 5; i++) {
    const c = await chat(gw.key, `after promote ${i}`, { user: `user-${i}` });
    assert.equal(c.status, 200, c.body);
    assert.equal(c.arm, 'ft', 'every request goes to the promoted arm');
  }

  // Optimistic concurrency: a stale expected version is ABORTED, exit 1.
  const stale = await ctl(['routes', 'split', 'bot', 'base=50%', 'ft=50%',
    '--expected-version', String(base), '--reason', 'stale']);
  assertRpcError(stale, 'ABORTED', /version/);
  const s = await ctlJson(['routes', 'split', 'bot', 'base=5000', 'ft=50%',
    '--expected-version', String(base + 1), '--reason', 'half']);
  assert.equal(Number(s.version), base + 2);
  assert.deepEqual(s.arms.map((a) => a.weight_bp), [5000, 5000]);

  // The old version stays readable.
  const old = await ctlJson(['routes', 'get', 'bot', '--version', String(base)]);
  assert.equal(Number(old.version), base);
  assert.equal(old.arms[0].weight_bp, 9000);
  assert.equal(JSON.parse(old.route_json).name, 'bot');
  const human = await ctl(['routes', 'get', 'bot']);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /^version\s+\d+ \(admin\)$/m);
  assert.match(human.stdout, /^base\s+50\.00%\s+mock\s+m-base$/m);
  assert.match(human.stdout, /definition:/);

  // Rollback to the first version, as a new version.
  const rb = await ctlJson(['routes', 'rollback', 'bot', '--to-version', String(base), '--reason', 'back']);
  assert.equal(Number(rb.version), base + 3);
  assert.deepEqual(rb.arms.map((a) => a.weight_bp), [9000, 1000]);

  // Shadow on and off.
  const sh = await ctlJson(['routes', 'shadow', 'bot', 'ft', '2.5%', '--reason', 'mirror']);
  assert.deepEqual(sh.shadow, { arm: 'ft', rate_bp: 250 });
  const off = await ctlJson(['routes', 'shadow', 'bot', '--off', '--reason', 'stop']);
  assert.ok(!off.shadow || off.shadow.arm === '', 'shadow off');
  assert.equal(Number(off.version), base + 5);

  // History: newest first, with actions, who and why.
  const h = await ctlJson(['routes', 'history', 'bot']);
  const acts = h.entries.map((e) => [Number(e.version), e.action, e.reason]);
  assert.deepEqual(acts.slice(0, 5), [
    [base + 5, 'shadow', 'stop'],
    [base + 4, 'shadow', 'mirror'],
    [base + 3, 'rollback', 'back'],
    [base + 2, 'split', 'half'],
    [base + 1, 'promote', 'ft wins'],
  ]);
  assert.ok(h.entries.slice(0, 5).every((e) => e.by === 'ci'));
  const h2 = await ctlJson(['routes', 'history', 'bot', '--limit', '2']);
  assert.equal(h2.entries.length, 2);
  const ht = await ctl(['routes', 'history', 'bot', '--limit', '3']);
  assert.equal(ht.code, 0);
  assert.match(ht.stdout, /^VERSION\s+WHEN\s+BY\s+ACTION\s+SUMMARY\s+REASON$/m);
  assert.match(ht.stdout, new RegExp(`^\\s*${base + 3}\\s+\\S+ \\S+\\s+ci\\s+rollback\\s+.*back$`, 'm'));

  // Put: create a route from a file (and from stdin), then replace it.
  const dir = tempDir('sy-ctl-put-');
  const file = join(dir, 'r.json');
  const r2 = { name: 'bot-two', arms: [{ name: 'only', upstream: 'mock', model: 'm-two', weight_bp: 10000 }] };
  writeFileSync(file, JSON.stringify(r2));
  const put = await ctlJson(['routes', 'put', file, '--reason', 'new route']);
  assert.equal(put.name, 'bot-two');
  assert.equal(Number(put.version), 1);
  assertRpcError(await ctl(['routes', 'put', file, '--reason', 'again']), 'ALREADY_EXISTS');
  r2.arms[0].model = 'm-two-b';
  const put2 = await ctlJson(['routes', 'put', '-', '--expected-version', '1', '--reason', 'replace'],
    { input: JSON.stringify(r2) });
  assert.equal(Number(put2.version), 2);
  assert.equal(put2.arms[0].model, 'm-two-b');
  const c2 = await chat(gw.key, 'to bot-two', { model: 'bot-two' });
  assert.equal(c2.status, 200, c2.body);
  assert.equal(c2.arm, 'only');

  // Errors from the server keep their codes.
  assertRpcError(await ctl(['routes', 'get', 'no-such-route']), 'NOT_FOUND');
  assertRpcError(await ctl(['routes', 'promote', 'bot', 'nope', '--reason', 'x']),
    '(INVALID_ARGUMENT|NOT_FOUND)', /nope/);
  const l2 = await ctlJson(['routes', 'list']);
  assert.deepEqual(l2.routes.map((r) => r.name).sort(), ['bot', 'bot-two']);
});

test('keys: create → works over HTTP → listed → revoke → 401', { skip, timeout: 60000 }, async () => {
  const created = await ctlJson(['keys', 'create', 'app-one', '--reason', 'ci test']);
  assert.equal(created.key.name, 'app-one');
  assert.equal(created.key.capture, true);
  assert.ok(created.secret.length >= 20, 'a secret is returned');
  assert.ok(created.secret.startsWith(created.key.prefix), 'the prefix is the secret\'s start');
  const ok = await chat(created.secret, 'with a new key');
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).choices[0].message.content, mockReply('with a new key'));

  const dup = await ctl(['keys', 'create', 'app-one']);
  assertRpcError(dup, 'ALREADY_EXISTS');

  const nc = await ctl(['keys', 'create', 'app-quiet', '--no-capture']);
  assert.equal(nc.code, 0, nc.stderr);
  const secret = /^secret: (\S+)$/m.exec(nc.stdout)?.[1];
  assert.ok(secret, `text output ends with the secret:\n${nc.stdout}`);
  assert.match(nc.stderr, /only time the key is shown/);
  assert.match(nc.stdout, /^app-quiet\s+\S+\s+.*\s+no\s+-$/m);

  const list = await ctlJson(['keys', 'list']);
  const names = list.keys.map((k) => k.name);
  assert.ok(names.includes('app-one') && names.includes('app-quiet'), names.join(','));
  assert.ok(!JSON.stringify(list).includes(created.secret), 'list never shows a secret');
  assert.equal(list.keys.find((k) => k.name === 'app-quiet').capture, false);

  const rv = await ctlJson(['keys', 'revoke', 'app-one', '--reason', 'rotated']);
  assert.equal(rv.key.revoked, true);
  const denied = await chat(created.secret, 'after revoke');
  assert.equal(denied.status, 401, 'a revoked key is refused');
  const still = await chat(secret, 'other key still works');
  assert.equal(still.status, 200);

  const active = await ctlJson(['keys', 'list']);
  assert.ok(!active.keys.some((k) => k.name === 'app-one'), 'revoked keys hidden by default');
  const all = await ctlJson(['keys', 'list', '--all']);
  assert.equal(all.keys.find((k) => k.name === 'app-one').revoked, true);
  assertRpcError(await ctl(['keys', 'revoke', 'never-made']), 'NOT_FOUND');
});

test('captures-remote, label and export-remote over gRPC', { skip, timeout: 90000 }, async () => {
  const tag = 'ctl-cap-' + Date.now();
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const c = await chat(gw.key, `${tag} question ${i}`, { model: 'bot-two' });
    assert.equal(c.status, 200, c.body);
    ids.push(c.captureId);
  }
  // Captures are committed by the writer thread shortly after the answer.
  const listed = await until(async () => {
    const j = await ctlJson(['captures-remote', 'list', '--route', 'bot-two', '--limit', '1000']);
    const have = new Set(j.captures.map((c) => c.id));
    return ids.every((id) => have.has(id)) ? j : null;
  }, 'the captures to be listed');
  const mine = listed.captures.filter((c) => ids.includes(c.id));
  assert.ok(mine.every((c) => c.route === 'bot-two' && c.arm === 'only' && c.http_status === 200));
  const table = await ctl(['captures-remote', 'list', '--route', 'bot-two', '--newest', '--limit', '2']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID\s+TIME\s+ROUTE\s+ARM\s+MODEL\s+STATUS/m);
  assert.match(table.stdout, /^more: --after \d+$/m, 'paging hint when there is more');

  const show = await ctlJson(['captures-remote', 'show', ids[0]]);
  assert.equal(show.summary.id, ids[0]);
  assert.match(show.request_json, new RegExp(`${tag} question 0`));
  assert.match(show.response_json, /mock reply/);
  assertRpcError(await ctl(['captures-remote', 'show', '12345']), 'NOT_FOUND');

  // Label: verify one, correct another.
  const v = await ctlJson(['label', ids[0], '--verify', '--tag', 'ok', '--comment', 'fine']);
  assert.match(v.feedback_id, /^[1-9]\d*$/);
  const fix = `${tag} the corrected answer`;
  const c = await ctl(['label', ids[1], '--correct', fix, '--tag', 'fixed']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`^feedback \\d+ recorded on capture ${ids[1]}$`, 'm'));
  const shown = await ctlJson(['captures-remote', 'show', ids[1]]);
  assert.equal(shown.feedback.length, 1);
  assert.equal(shown.feedback[0].correction, fix);
  assert.deepEqual(shown.feedback[0].tags, ['fixed']);
  assert.equal(shown.feedback[0].labeller, 'ci');
  assertRpcError(await ctl(['label', '12345', '--verify']), 'NOT_FOUND');

  // Export to a file: every line is a chat example; the correction replaces the answer.
  const dir = tempDir('sy-ctl-exp-');
  const out = join(dir, 'train.jsonl');
  const e = await ctl(['export-remote', '--route', 'bot-two', '--out', out]);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, '');
  const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ours = lines.filter((l) => JSON.stringify(l).includes(tag));
  assert.equal(ours.length, 3, `3 exported examples for ${tag}`);
  for (const l of ours) {
    assert.equal(l.messages.at(-1).role, 'assistant');
  }
  const corrected = ours.find((l) => l.messages[0].content === `${tag} question 1`);
  assert.equal(corrected.messages.at(-1).content, fix);
  assert.match(e.stderr, new RegExp(`export: ${lines.length} lines`));

  // Split into train and validation files; --json marks each line's split.
  const tr = join(dir, 't.jsonl');
  const va = join(dir, 'v.jsonl');
  const sp = await ctl(['export-remote', '--route', 'bot-two', '--val-fraction', '0.5', '--seed', '7',
    '--out', tr, '--val-out', va]);
  assert.equal(sp.code, 0, sp.stderr);
  const nt = readFileSync(tr, 'utf8').split('\n').filter(Boolean).length;
  const nv = readFileSync(va, 'utf8').split('\n').filter(Boolean).length;
  assert.equal(nt + nv, lines.length);
  const js = await ctl(['export-remote', '--route', 'bot-two', '--val-fraction', '0.5', '--seed', '7', '--json']);
  assert.equal(js.code, 0, js.stderr);
  const recs = js.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(recs.length, lines.length);
  assert.equal(recs.filter((r) => r.split === 'validation').length, nv, 'same seed, same split');
  for (const r of recs) JSON.parse(r.json);
  const lim = await ctl(['export-remote', '--route', 'bot-two', '--limit', '1']);
  assert.equal(lim.stdout.split('\n').filter(Boolean).length, 1);

  // A failed export leaves no partial file behind.
  const gone = join(dir, 'never.jsonl');
  const bad = await ctl(['export-remote', '--out', gone], { token: '' });
  assertRpcError(bad, 'UNAUTHENTICATED');
  assert.ok(!existsSync(gone), 'no partial output file');
});

test('report: per-arm rows and a recommendation', { skip, timeout: 60000 }, async () => {
  const ids = [];
  for (let i = 0; i < 6; i++) {
    const c = await chat(gw.key, `report traffic ${i}`, { user: `report-user-${i}` });
    assert.equal(c.status, 200, c.body);
    ids.push(c.captureId);
  }
  // Once these are stored nothing else reaches route "bot": the counts hold still.
  await until(async () => {
    const l = await ctlJson(['captures-remote', 'list', '--route', 'bot', '--newest', '--limit', '1000']);
    const have = new Set(l.captures.map((c) => c.id));
    return ids.every((id) => have.has(id));
  }, 'the report traffic to be stored');
  const j = await ctlJson(['report', 'bot', '--since', '1h']);
  const total = j.arms.reduce((n, a) => n + Number(a.requests), 0);
  assert.ok(total >= 6, `the report counts the requests (${total})`);
  assert.equal(j.route, 'bot');
  assert.ok(j.arms.length >= 1);
  assert.ok(['promote', 'rollback', 'keep_testing'].includes(j.recommendation), j.recommendation);
  assert.ok(j.rule.length > 0, 'the rule applied is stated');
  const t = await ctl(['report', 'bot', '--since', '1h', '--base', 'base']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^ARM\s+REQUESTS\s+ERRORS\s+P50 MS\s+P99 MS/m);
  for (const a of j.arms) {
    assert.match(t.stdout, new RegExp(`^${a.arm}\\s+${a.requests}\\s+${a.errors}\\s`, 'm'), `row for ${a.arm}`);
  }
  assert.match(t.stdout, /^recommendation: (promote|rollback|keep_testing)/m);
  assert.match(t.stdout, /^rule: \S/m);
});

test('TLS: --tls-ca talks to a TLS admin listener; plaintext cannot', { skip, timeout: 90000 }, async () => {
  const dir = tempDir('sy-ctl-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const o = await runToExit('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { timeoutMs: 30000 });
  assert.equal(o.code, 0, o.stderr);
  const tgw = await startGateway(mock.url + '/v1', {
    config: {
      grpc: {
        admin_listen: '127.0.0.1:0', tls_cert: cert, tls_key: key,
        admin_tokens: [{ name: 'ci', sha256: await hashKey(ADMIN_TOKEN), role: 'admin' }],
      },
    },
  });
  const addr = listeners(tgw).admin;
  assert.ok(addr, tgw.stdout());
  const j = await ctlJson(['health', '--tls-ca', cert], { addr });
  assert.equal(j.status, 'ok');
  assert.equal(j.caller, 'ci');
  const env = await ctlJson(['health'], { addr, env: { SWITCHYARD_TLS_CA: cert } });
  assert.equal(env.caller, 'ci');
  const byName = await ctlJson(['health', '--tls-ca', cert, '--tls-server-name', 'localhost'],
    { addr: addr.replace('127.0.0.1', 'localhost') });
  assert.equal(byName.status, 'ok');
  const plain = await ctl(['health', '--timeout-ms', '3000'], { addr });
  assert.equal(plain.code, 3, `plaintext against TLS: ${plain.stderr}`);
  assert.match(plain.stderr, /^switchyardctl: (UNAVAILABLE|DEADLINE_EXCEEDED): /m);
  assert.equal(await tgw.stop(), 0);
});

test('the gateway stops cleanly', { skip }, async () => {
  assert.equal(await gw.stop(), 0);
  assert.equal(await mock.stop(), 0);
});
