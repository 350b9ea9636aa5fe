// Connection timeouts (slowloris, slow body, idle keep-alive), graceful
// shutdown with a stream in flight, and the command line (hash-key, --help,
// config errors, --no-auth).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startMock, startGateway, startProcess, stopAll, mockReply, marker, requireEnv, runToExit,
  RawConn, rawRequest, httpRequest, chatBody, sseData, sleep, sha256hex, tempDir,
  GATEWAY_READY, SLOW,
} from './lib/harness.mjs';

let mock;

before(async () => {
  mock = await startMock();
});

after(stopAll);

const T = { timeout: 30000 };
const json = { 'Content-Type': 'application/json' };
const post = (g, body, headers = {}) => httpRequest('POST', '/v1/chat/completions',
  { Authorization: `Bearer ${g.key}`, ...json, ...headers }, body);

/* ------------------------------------------------------------ timeouts */

const HEADER_TIMEOUT = 500;
const BODY_TIMEOUT = 500;
const IDLE_TIMEOUT = 700;
const SLACK = 1500 * SLOW;

async function timeoutGateway() {
  return startGateway(mock.url + '/v1', { args: [
    '--header-timeout-ms', String(HEADER_TIMEOUT), '--body-timeout-ms', String(BODY_TIMEOUT),
    '--idle-timeout-ms', String(IDLE_TIMEOUT)] });
}

/** The connection was closed, with at most a 408 before it. */
function assertClosedQuietly(c) {
  const got = c.buf.toString('latin1');
  if (got.length) assert.match(got, /^HTTP\/1\.1 408 /, `only a 408 may be sent: ${got.slice(0, 200)}`);
}

test('slowloris: a header trickled byte by byte is cut off at the header timeout', T, async () => {
  const gw = await timeoutGateway();
  const c = new RawConn(gw.port);
  await c.connect();
  const t0 = Date.now();
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.key}\r\n` +
    'X-Slow: ' + 'z'.repeat(200);
  // One byte every 50 ms: each byte would reset a naive idle timer.
  for (let i = 0; i < head.length && !c.closed && Date.now() - t0 < HEADER_TIMEOUT + SLACK; i++) {
    await c.write(head[i]);
    await sleep(50);
  }
  await c.waitClosed(HEADER_TIMEOUT + SLACK);
  const took = c.closedAt - t0;
  assert.ok(took >= HEADER_TIMEOUT * 0.8, `closed after ${took} ms, before the header timeout`);
  assert.ok(took <= HEADER_TIMEOUT + SLACK, `closed after ${took} ms`);
  assertClosedQuietly(c);
  c.close();
  // The gateway still serves others.
  const r = await rawRequest(gw.port, post(gw, chatBody('after slowloris')));
  assert.equal(r.status, 200);
  assert.equal(await gw.stop(), 0);
});

test('half a header then silence: closed at the header timeout', T, async () => {
  const gw = await timeoutGateway();
  const c = new RawConn(gw.port);
  await c.connect();
  const t0 = Date.now();
  await c.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: abc');
  await c.waitClosed(HEADER_TIMEOUT + SLACK);
  const took = c.closedAt - t0;
  assert.ok(took >= HEADER_TIMEOUT * 0.8 && took <= HEADER_TIMEOUT + SLACK, `closed after ${took} ms`);
  assertClosedQuietly(c);
  c.close();
  assert.equal(await gw.stop(), 0);
});

test('slow body: closed at the body timeout, never forwarded', T, async () => {
  const gw = await timeoutGateway();
  const m = marker('slowbody');
  const body = chatBody(m);
  const c = new RawConn(gw.port);
  await c.connect();
  const t0 = Date.now();
  await c.write(httpRequest('POST', '/v1/chat/completions', { Authorization: `Bearer ${gw.key}`,
    ...json, 'Content-Length': String(body.length) }));
  await c.write(body.slice(0, 10));
  await c.waitClosed(BODY_TIMEOUT + SLACK);
  const took = c.closedAt - t0;
  assert.ok(took >= BODY_TIMEOUT * 0.8 && took <= BODY_TIMEOUT + SLACK, `closed after ${took} ms`);
  assertClosedQuietly(c);
  c.close();
  const seen = (await (await fetch(`${mock.url}/mock/requests`)).json())
    .filter((q) => JSON.stringify(q.body ?? '').includes(m));
  assert.equal(seen.length, 0);
  assert.equal(await gw.stop(), 0);
});

test('idle keep-alive connection: closed after the idle timeout', T, async () => {
  const gw = await timeoutGateway();
  const c = new RawConn(gw.port);
  await c.connect();
  await c.write(httpRequest('GET', '/healthz'));
  const [r] = await c.readResponses(1);
  assert.equal(r.status, 200);
  const t0 = Date.now();
  await c.waitClosed(IDLE_TIMEOUT + SLACK);
  const took = c.closedAt - t0;
  assert.ok(took >= IDLE_TIMEOUT * 0.8, `idle connection closed after ${took} ms`);
  assert.equal(c.buf.length, 0, 'nothing sent on an idle close');
  c.close();
  assert.equal(await gw.stop(), 0);
});

test('a connection that never sends anything is closed too', T, async () => {
  const gw = await timeoutGateway();
  const c = new RawConn(gw.port);
  await c.connect();
  const took = await c.waitClosed(Math.max(HEADER_TIMEOUT, IDLE_TIMEOUT) + SLACK);
  assert.ok(took >= Math.min(HEADER_TIMEOUT, IDLE_TIMEOUT) * 0.8, `closed after ${took} ms`);
  c.close();
  assert.equal(await gw.stop(), 0);
});

test('connections past --max-connections are closed; the others keep working', T, async () => {
  const gw = await startGateway(mock.url + '/v1', { workers: 1, args: ['--max-connections', '2'] });
  const held = [];
  for (let i = 0; i < 2; i++) {
    const c = new RawConn(gw.port);
    await c.connect();
    await c.write(httpRequest('GET', '/healthz'));
    assert.equal((await c.readResponses(1))[0].status, 200);
    held.push(c);
  }
  const extra = new RawConn(gw.port);
  await extra.connect();
  await extra.write(httpRequest('GET', '/healthz'));
  await extra.waitClosed(3000);
  const got = extra.buf.toString('latin1');
  assert.ok(got === '' || /^HTTP\/1\.1 503 /.test(got), `over the limit: ${got.slice(0, 100)}`);
  extra.close();
  // The held ones still work, and a slot frees up when one closes.
  await held[0].write(httpRequest('GET', '/healthz'));
  assert.equal((await held[0].readResponses(1))[0].status, 200);
  held[1].close();
  await sleep(200);
  const r = await rawRequest(gw.port, httpRequest('GET', '/healthz'));
  assert.equal(r.status, 200);
  held[0].close();
  assert.equal(await gw.stop(), 0);
});

/* ------------------------------------------------------------ shutdown */

/** Starts a slow stream on a raw connection; resolves once content is flowing. */
async function startSlowStream(gw, text, chunks, delayMs) {
  const c = new RawConn(gw.port);
  await c.connect();
  await c.write(post(gw, chatBody(text, { stream: true }),
    { 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': String(delayMs) }));
  await c.waitFor(() => c.buf.includes('"content"'), 3000, 'first streamed chunk');
  return c;
}

function streamContent(text) {
  let content = '';
  for (const d of sseData(text)) {
    if (d === '[DONE]') continue;
    content += JSON.parse(d).choices?.[0]?.delta?.content ?? '';
  }
  return content;
}

test('SIGTERM with a stream in flight: the stream completes, exit 0', T, async () => {
  const gw = await startGateway(mock.url + '/v1', { args: ['--drain-timeout-ms', '8000'] });
  const text = `drain ${marker()}`;
  const chunks = 8;
  const delay = 150;
  const c = await startSlowStream(gw, text, chunks, delay);
  const t0 = Date.now();
  gw.child.kill('SIGTERM');

  // Soon after SIGTERM new work is refused: no new connections, or 503 on /readyz.
  await sleep(100);
  const probe = new RawConn(gw.port);
  let refused = false;
  try {
    await probe.connect(1000);
    await probe.write(httpRequest('GET', '/readyz'));
    try {
      const [r] = await probe.readResponses(1, 2000);
      assert.equal(r.status, 503, '/readyz while draining');
    } catch (e) {
      if (!probe.closed) throw e;
      refused = true;
    }
  } catch (e) {
    if (e.code !== 'ECONNREFUSED' && !refused) throw e;
  } finally {
    probe.close();
  }

  const [r] = await c.readResponses(1, chunks * delay + 5000);
  c.close();
  assert.equal(r.status, 200);
  const data = sseData(r.text);
  assert.equal(data[data.length - 1], '[DONE]', 'the stream finished normally');
  assert.equal(streamContent(r.text), mockReply(text));
  const code = await gw.stop({ timeoutMs: 10000 });
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 8000, 'exited soon after the stream ended');
});

test('SIGTERM: a stream longer than the drain deadline is cut at the deadline', T, async () => {
  const drain = 600;
  const gw = await startGateway(mock.url + '/v1', { args: ['--drain-timeout-ms', String(drain)] });
  const c = await startSlowStream(gw, `long ${marker()}`, 40, 200);
  const t0 = Date.now();
  const code = await gw.stop({ timeoutMs: drain + 5000 * SLOW });
  const took = Date.now() - t0;
  assert.equal(code, 0);
  assert.ok(took < drain + 3000 * SLOW, `exited ${took} ms after SIGTERM (drain ${drain} ms)`);
  await c.waitClosed(3000);
  assert.ok(!c.buf.includes('[DONE]'), 'a cut stream must not look complete');
  c.close();
});

test('SIGTERM with idle keep-alive connections: exits promptly', T, async () => {
  const gw = await startGateway(mock.url + '/v1', { args: ['--drain-timeout-ms', '20000'] });
  const conns = [];
  for (let i = 0; i < 3; i++) {
    const c = new RawConn(gw.port);
    await c.connect();
    await c.write(httpRequest('GET', '/healthz'));
    await c.readResponses(1);
    conns.push(c);
  }
  const t0 = Date.now();
  assert.equal(await gw.stop({ timeoutMs: 15000 }), 0);
  assert.ok(Date.now() - t0 < 3000 * SLOW, 'idle connections do not hold the drain');
  for (const c of conns) c.close();
});

test('SIGINT also shuts down cleanly', T, async () => {
  const gw = await startGateway(mock.url + '/v1');
  const r = await rawRequest(gw.port, post(gw, chatBody('sigint')));
  assert.equal(r.status, 200);
  assert.equal(await gw.stop({ signal: 'SIGINT' }), 0);
});

/* ------------------------------------------------------------ command line */

test('hash-key prints the SHA-256 of the key (argument and stdin)', T, async () => {
  const bin = requireEnv('SWITCHYARD_BIN');
  const key = 'sy-' + 'ab12'.repeat(8);
  const a = await runToExit(bin, ['hash-key', key]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout.trim(), sha256hex(key));
  const b = await runToExit(bin, ['hash-key'], { input: key + '\n' });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout.trim(), sha256hex(key));
});

test('--help documents every flag', T, async () => {
  const r = await runToExit(requireEnv('SWITCHYARD_BIN'), ['--help']);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout + r.stderr;
  for (const f of ['--config', '--listen', '--workers', '--data-dir', '--log-level', '--no-auth',
    '--upstream-url', '--upstream-key-env', '--upstream-timeout-ms', '--upstream-connect-timeout-ms',
    '--upstream-max-connections', '--max-header-bytes', '--max-body-bytes', '--max-connections',
    '--idle-timeout-ms', '--header-timeout-ms', '--body-timeout-ms', '--drain-timeout-ms',
    '--help', 'hash-key']) {
    assert.ok(text.includes(f), `--help does not mention ${f}`);
  }
});

async function badStart(config, args = []) {
  const dir = tempDir('sy-bad-');
  const path = join(dir, 'config.json');
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  return runToExit(requireEnv('SWITCHYARD_BIN'),
    ['--config', path, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), ...args],
    { cwd: dir, timeoutMs: 5000 * SLOW });
}

const goodUpstream = () => [{ name: 'mock', base_url: mock.url + '/v1' }];
const goodKeys = [{ name: 'a', sha256: sha256hex('k') }];

test('a bad config file fails start-up naming the field', T, async () => {
  const cases = [
    [{ upstreams: [{ name: 'mock', base_url: 'ftp://x/v1' }], client_keys: goodKeys },
      /upstreams\[0\]\.base_url/],
    [{ upstreams: goodUpstream(), client_keys: goodKeys, listen_adress: '127.0.0.1:1' },
      /listen_adress/],
    [{ upstreams: goodUpstream(), client_keys: [{ name: 'a', sha256: 'xyz' }] },
      /client_keys\[0\]\.sha256/],
    [{ upstreams: goodUpstream(), client_keys: goodKeys, limits: { max_body_bytes: -1 } },
      /limits\.max_body_bytes/],
    [{ upstreams: [], client_keys: goodKeys }, /upstreams/],
    ['{"upstreams": [', /json|parse|config/i],
  ];
  for (const [cfg, re] of cases) {
    const r = await badStart(cfg);
    assert.notEqual(r.code, 0, `accepted ${JSON.stringify(cfg)}`);
    assert.match(r.stderr, re, `config ${JSON.stringify(cfg)}: stderr ${r.stderr.slice(0, 300)}`);
    assert.doesNotMatch(r.stdout, /listening on/);
  }
});

test('unknown flags and auth without keys fail start-up', T, async () => {
  const r1 = await badStart({ upstreams: goodUpstream(), client_keys: goodKeys }, ['--no-such-flag']);
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /--no-such-flag/);
  const r2 = await badStart({ upstreams: goodUpstream() });
  assert.notEqual(r2.code, 0, 'auth is on by default; no client keys must be an error');
  assert.match(r2.stderr, /client_keys|no-auth|key/i);
});

test('--no-auth serves without a key; --upstream-url overrides the file', T, async () => {
  const dir = tempDir('sy-noauth-');
  const path = join(dir, 'config.json');
  // The file points at a closed port; the flag must win.
  writeFileSync(path, JSON.stringify({ upstreams: [{ name: 'mock',
    base_url: 'http://127.0.0.1:9/v1' }] }));
  const gw = await startProcess(requireEnv('SWITCHYARD_BIN'), ['--config', path,
    '--listen', '127.0.0.1:0', '--no-auth', '--upstream-url', mock.url + '/v1',
    '--data-dir', join(dir, 'data'), '--workers', '1'],
  { name: 'switchyard', ready: GATEWAY_READY, cwd: dir });
  const text = `noauth ${marker()}`;
  const r = await rawRequest(gw.port, httpRequest('POST', '/v1/chat/completions', json,
    chatBody(text)));
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.equal(JSON.parse(r.text).choices[0].message.content, mockReply(text));
  assert.equal(await gw.stop(), 0);
});

test('flags alone are enough (no config file)', T, async () => {
  const dir = tempDir('sy-flags-');
  const gw = await startProcess(requireEnv('SWITCHYARD_BIN'), ['--listen', '127.0.0.1:0',
    '--no-auth', '--upstream-url', mock.url + '/v1', '--data-dir', join(dir, 'data')],
  { name: 'switchyard', ready: GATEWAY_READY, cwd: dir });
  assert.match(gw.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await rawRequest(gw.port, httpRequest('GET', '/v1/models'));
  assert.equal(r.status, 200);
  assert.ok(Array.isArray(JSON.parse(r.text).data));
  assert.equal(await gw.stop(), 0);
});

test('mock exits cleanly on SIGTERM', T, async () => {
  assert.equal(await mock.stop(), 0);
});
