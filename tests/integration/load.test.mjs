// Integration tests for switchyard-load against switchyard-mock: arrival-rate
// accuracy in open loop, exact counts in closed loop, streaming timings,
// latency under injected server delay, the JSON report, errors (refused
// port, HTTP errors, timeouts), keep-alive closes, and mix/export replay.
// The gRPC target (grpc:// URLs) runs against a real gateway with
// --grpc-listen in front of the mock: counts, body conversion, streaming
// timings, open-loop rate, auth errors and a dead target.
//
// Binaries: LOAD_BIN (falls back to build-load/loadtest/switchyard-load),
// MOCK_BIN (falls back to build-load/loadtest/switchyard-mock) and, for the
// gRPC tests, SWITCHYARD_BIN (falls back to build-load/gateway/switchyard;
// those tests are skipped when there is no gateway binary).
//   node --test --test-reporter=spec tests/integration/load.test.mjs
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  SLOW, assertNoSanitizerReport, closedPort, mockRequests, runToExit, startGateway, startMock,
  stopAll, tempDir,
} from './lib/harness.mjs';

const ROOT = process.env.SY_SOURCE_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
function binFromEnv(name, fallback) {
  if (process.env[name]) return resolve(process.env[name]);
  const p = join(ROOT, fallback);
  if (!existsSync(p)) throw new Error(`${name} is not set and ${p} does not exist`);
  process.env[name] = p; // the harness reads MOCK_BIN itself
  return p;
}
const LOAD_BIN = binFromEnv('LOAD_BIN', 'build-load/loadtest/switchyard-load');
binFromEnv('MOCK_BIN', 'build-load/loadtest/switchyard-mock');
// The gateway is optional here (the file is registered without it).
if (!process.env.SWITCHYARD_BIN && existsSync(join(ROOT, 'build-load/gateway/switchyard')))
  process.env.SWITCHYARD_BIN = join(ROOT, 'build-load/gateway/switchyard');
const NO_GATEWAY = !process.env.SWITCHYARD_BIN && 'no gateway binary (SWITCHYARD_BIN)';
const MIX = join(ROOT, 'tests', 'data', 'load', 'mix.jsonl');
const EXPORT = join(ROOT, 'tests', 'data', 'load', 'export.jsonl');

after(stopAll);

const dir = tempDir('sy-load-');
let seq = 0;

/** Runs switchyard-load with a JSON report; resolves to { code, stdout, stderr, report }. */
async function load(url, args, { timeoutMs = 20000 * SLOW } = {}) {
  const json = join(dir, `report-${++seq}.json`);
  const r = await runToExit(LOAD_BIN, [url, '--json', json, ...args], { timeoutMs });
  assertNoSanitizerReport('switchyard-load', r.stderr);
  assert.equal(r.code, 0, `switchyard-load exited ${r.code}: ${r.stderr}`);
  r.report = JSON.parse(readFileSync(json, 'utf8'));
  return r;
}

/** A body file whose user message carries `marker`. */
function bodyFile(marker, extra = {}) {
  const p = join(dir, `body-${++seq}.json`);
  writeFileSync(p, JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: `load test ${marker}` }],
    ...extra,
  }));
  return p;
}

const within = (got, want, frac, what) =>
  assert.ok(Math.abs(got - want) <= want * frac, `${what}: ${got} not within ${frac * 100}% of ${want}`);

function chatUrl(mock) {
  return `${mock.url}/v1/chat/completions`;
}

async function bodies(mock, marker) {
  return (await mockRequests(mock)).filter((q) => q.body.includes(marker))
    .map((q) => ({ ...q, json: JSON.parse(q.body) }));
}

describe('switchyard-load', () => {
  test('open loop holds the arrival rate (200 req/s for 3 s)', { timeout: 30000 }, async () => {
    const mock = await startMock(['--quiet']);
    const { report } = await load(chatUrl(mock), ['--rate', '200', '--duration', '3',
      '--connections', '16', '--body', bodyFile('rate-200')]);
    // the schedule itself is exact: intended times t0 + i/200 below 3 s
    assert.equal(report.requests.scheduled, 600);
    within(report.requests.ok, 600, 0.05, 'completed');
    within(report.achieved_rate_rps, 200, 0.05, 'achieved send rate');
    within(report.throughput_rps, 200, 0.05, 'throughput');
    assert.equal(report.target_rate_rps, 200);
    assert.equal(report.requests.failed, 0);
    // the server saw them all, once each
    assert.equal((await bodies(mock, 'rate-200')).length, report.requests.sent);
    await mock.stop();
  });

  test('closed loop sends exactly --requests', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const { report, stdout } = await load(chatUrl(mock), ['--requests', '500',
      '--connections', '8', '--body', bodyFile('closed-500')]);
    assert.equal(report.config.mode, 'closed');
    assert.equal(report.requests.sent, 500);
    assert.equal(report.requests.ok, 500);
    assert.equal(report.status['200'], 500);
    assert.equal(report.latency_us.count, 500);
    assert.equal((await bodies(mock, 'closed-500')).length, 500);
    assert.match(stdout, /500 ok, 0 failed/);
    await mock.stop();
  });

  test('streaming: time to first byte, gaps between chunks, total', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet', '--chunks', '5', '--chunk-delay-ms', '30']);
    const { report } = await load(chatUrl(mock), ['--requests', '12', '--connections', '4',
      '--stream', '--body', bodyFile('stream')]);
    const sent = await bodies(mock, 'stream');
    assert.equal(sent.length, 12);
    assert.ok(sent.every((q) => q.json.stream === true), '--stream sets "stream": true');
    assert.equal(report.requests.ok, 12);
    const { ttfb_us: ttfb, latency_us: lat, chunk_gap_us: gap } = report;
    assert.equal(ttfb.count, 12);
    // 5 content events + role + finish + [DONE], 30 ms apart: at least 5 gaps each
    assert.ok(gap.count >= 12 * 5, `gap count ${gap.count}`);
    assert.ok(gap.mean >= 27000 && gap.mean <= 30000 * 2 * SLOW, `gap mean ${gap.mean}`);
    assert.ok(gap.p50 >= 27000, `gap p50 ${gap.p50}`);
    assert.ok(ttfb.p50 < lat.p50, 'first byte before the end');
    assert.ok(ttfb.p50 < 25000 * SLOW, `ttfb p50 ${ttfb.p50}: the first event is not delayed`);
    assert.ok(lat.p50 >= 5 * 30000, `total p50 ${lat.p50} covers the chunk delays`);
    await mock.stop();
  });

  test('server latency shows in the percentiles (x-mock-latency-ms: 20)', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const { report } = await load(chatUrl(mock), ['--requests', '40', '--connections', '4',
      '--header', 'x-mock-latency-ms: 20', '--body', bodyFile('lat-20')]);
    assert.equal(report.requests.ok, 40);
    assert.ok(report.latency_us.p50 >= 20000, `p50 ${report.latency_us.p50}`);
    assert.ok(report.latency_us.min >= 19000, `min ${report.latency_us.min}`);
    assert.ok(report.latency_us.max >= report.latency_us.p99);
    // and in open loop, from the intended send time
    const open = await load(chatUrl(mock), ['--rate', '50', '--duration', '1',
      '--connections', '4', '--header', 'x-mock-latency-ms: 20', '--body', bodyFile('lat-20o')]);
    assert.equal(open.report.requests.ok, 50);
    assert.ok(open.report.latency_us.p50 >= 20000, `open p50 ${open.report.latency_us.p50}`);
    await mock.stop();
  });

  test('JSON report: config and every number; header values kept out', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const secret = 'sk-load-secret-' + Date.now();
    const { report, stdout } = await load(chatUrl(mock), ['--rate', '100', '--duration', '0.5',
      '--warmup', '0.2', '--connections', '2', '--timeout-ms', '5000', '--seed', '9',
      '--header', `Authorization: Bearer ${secret}`, '--body', bodyFile('json')]);
    assert.equal(report.tool, 'switchyard-load');
    assert.deepEqual(report.config.headers, ['Authorization']);
    assert.ok(!JSON.stringify(report).includes(secret), 'the header value is not in the report');
    assert.ok(!stdout.includes(secret));
    const c = report.config;
    assert.equal(c.url, chatUrl(mock));
    assert.equal(c.mode, 'open');
    assert.equal(c.rate, 100);
    assert.equal(c.connections, 2);
    assert.equal(c.duration_s, 0.5);
    assert.equal(c.warmup_s, 0.2);
    assert.equal(c.timeout_ms, 5000);
    assert.equal(c.seed, 9);
    for (const k of ['scheduled', 'sent', 'completed', 'ok', 'failed', 'unfinished', 'warmup'])
      assert.equal(typeof report.requests[k], 'number', `requests.${k}`);
    // 0.2 s of warm-up at 100/s is 20 requests, left out of the numbers
    assert.equal(report.requests.warmup, 20);
    assert.equal(report.requests.scheduled, 50);
    for (const h of ['latency_us', 'service_us', 'ttfb_us', 'chunk_gap_us'])
      for (const k of ['count', 'min', 'mean', 'p50', 'p90', 'p99', 'p99_9', 'max'])
        assert.equal(typeof report[h][k], 'number', `${h}.${k}`);
    const L = report.latency_us;
    assert.equal(L.count, 50);
    assert.ok(L.min <= L.p50 && L.p50 <= L.p90 && L.p90 <= L.p99 && L.p99 <= L.p99_9 && L.p99_9 <= L.max);
    assert.deepEqual(Object.keys(report.errors).sort(), ['client', 'connect', 'http_4xx',
      'http_5xx', 'http_other', 'parse', 'queue_full', 'reset', 'timeout']);
    for (const k of ['throughput_rps', 'achieved_rate_rps', 'target_rate_rps', 'window_s',
      'elapsed_s', 'queue_peak'])
      assert.equal(typeof report[k], 'number', k);
    assert.deepEqual(report.status, { 200: 50 });
    // the header did reach the server
    const seen = await bodies(mock, 'json');
    assert.equal(seen.length, 70);
    assert.equal(seen[0].headers.authorization, `Bearer ${secret}`);
    await mock.stop();
  });

  test('refused port: errors counted, bounded, no request left over', { timeout: 20000 }, async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/v1/chat/completions`;
    const t0 = Date.now();
    const open = await load(url, ['--rate', '100', '--duration', '1', '--connections', '4',
      '--timeout-ms', '500']);
    const r = open.report.requests;
    assert.equal(r.scheduled, 100);
    assert.equal(r.ok, 0);
    assert.ok(open.report.errors.connect >= 1);
    assert.equal(r.failed + r.unfinished, 100, 'every scheduled request is accounted for');
    assert.match(open.stdout, /connect \d+/);
    const closed = await load(url, ['--requests', '20', '--connections', '4', '--timeout-ms', '500']);
    assert.equal(closed.report.errors.connect, 20);
    assert.equal(closed.report.requests.ok, 0);
    assert.ok(Date.now() - t0 < 10000 * SLOW, 'stops by itself');
  });

  test('HTTP errors, timeouts and resets by kind', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const u = chatUrl(mock);
    const e500 = await load(u, ['--requests', '10', '--connections', '2', '--header', 'x-mock-fault: 500']);
    assert.equal(e500.report.errors.http_5xx, 10);
    assert.deepEqual(e500.report.status, { 500: 10 });
    assert.equal(e500.report.requests.completed, 10);
    const e404 = await load(u, ['--requests', '6', '--connections', '2', '--header', 'x-mock-fault: 404']);
    assert.equal(e404.report.errors.http_4xx, 6);
    assert.deepEqual(e404.report.status, { 404: 6 });
    const hang = await load(u, ['--requests', '4', '--connections', '2', '--timeout-ms', '200',
      '--header', 'x-mock-fault: hang']);
    assert.equal(hang.report.errors.timeout, 4);
    assert.equal(hang.report.requests.ok, 0);
    const cut = await load(u, ['--requests', '5', '--connections', '1', '--header', 'x-mock-fault: cut']);
    assert.equal(cut.report.errors.reset, 5);
    await mock.stop();
  });

  test('server closing keep-alive connections: reconnects, nothing lost', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const { report } = await load(chatUrl(mock), ['--requests', '60', '--connections', '3',
      '--header', 'Connection: close', '--body', bodyFile('conn-close')]);
    assert.equal(report.requests.ok, 60);
    assert.equal(report.requests.failed, 0);
    assert.equal((await bodies(mock, 'conn-close')).length, 60);
    // streamed (chunked) answers on a closing connection too
    const s = await load(chatUrl(mock), ['--requests', '10', '--connections', '2', '--stream',
      '--header', 'Connection: close', '--body', bodyFile('conn-close-s')]);
    assert.equal(s.report.requests.ok, 10);
    await mock.stop();
  });

  test('response framings and silent closes from a raw server', { timeout: 20000 }, async () => {
    // Answers in turn: Content-Length (keep-alive), chunked (keep-alive), no
    // length + Connection: close (body ends at EOF), and Content-Length
    // followed by a silent close of a connection the client may still reuse.
    let received = 0;
    const sockets = new Set();
    const server = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          buf = buf.subarray(end + 4 + len);
          const kind = received++ % 4;
          const body = '{"ok":true}';
          if (kind === 0) {
            sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          } else if (kind === 1) {
            sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n` +
              `4\r\n{"ok\r\n${(body.length - 4).toString(16)}\r\n${body.slice(4)}\r\n0\r\n\r\n`);
          } else if (kind === 2) {
            sock.end(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`);
            return;
          } else {
            sock.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
            return;
          }
        }
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${server.address().port}/v1/chat/completions`;
      const { report } = await load(url, ['--requests', '80', '--connections', '2']);
      assert.equal(report.requests.ok, 80, JSON.stringify(report.errors));
      assert.equal(report.requests.failed, 0);
      // a request lost to a silent close is sent again once, never more
      assert.ok(received >= 80 && received <= 80 + 40, `server saw ${received}`);
      const open = await load(url, ['--rate', '100', '--duration', '0.5', '--connections', '2']);
      assert.equal(open.report.requests.ok, 50, JSON.stringify(open.report.errors));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('mix replay: chat lines, export lines, weights, Zipf users, seed', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const args = ['--requests', '100', '--connections', '4', '--mix', MIX, '--model', 'replay-model',
      '--users', '50', '--seed', '7'];
    const { report } = await load(chatUrl(mock), args);
    assert.equal(report.requests.ok, 100);
    const seen = (await mockRequests(mock)).map((q) => ({ ...q, json: JSON.parse(q.body) }));
    assert.equal(seen.length, 100);
    const text = (q) => q.json.messages.map((m) => m.content).join('|');
    const A = seen.filter((q) => text(q).includes('chat line A'));
    const B = seen.filter((q) => text(q).includes('export line B'));
    const C = seen.filter((q) => text(q).includes('pair line C'));
    assert.equal(A.length + B.length + C.length, 100);
    // weights 3:1:1
    assert.ok(A.length > B.length && A.length > C.length, `A ${A.length} B ${B.length} C ${C.length}`);
    assert.ok(B.length > 0 && C.length > 0);
    assert.ok(A.every((q) => q.json.model === 'gpt-4o-mini' && q.json.temperature === 0.2));
    assert.ok(A.every((q) => !('weight' in q.json)));
    // export lines: --model, and the captured answer is not sent back
    for (const q of B) {
      assert.equal(q.json.model, 'replay-model');
      assert.equal(q.json.messages.length, 2);
      assert.equal(q.json.messages.at(-1).role, 'user');
      assert.ok(!q.body.includes('captured answer B'));
    }
    assert.ok(C.every((q) => q.json.model === 'replay-model' && !q.body.includes('good C')));
    // Zipf users: the field and the header agree; user-1 is the most frequent
    const counts = new Map();
    for (const q of seen) {
      assert.match(q.json.user, /^user-\d+$/);
      assert.equal(q.headers['x-switchyard-user'], q.json.user);
      const n = Number(q.json.user.slice(5));
      assert.ok(n >= 1 && n <= 50);
      counts.set(q.json.user, (counts.get(q.json.user) ?? 0) + 1);
    }
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
    assert.equal(top[0], 'user-1');
    assert.ok(counts.size > 10, `only ${counts.size} distinct users`);
    // the same seed draws the same requests
    const key = (qs) => qs.map((q) => `${q.json.user}/${text(q)}`).sort().join('\n');
    await fetch(`${mock.url}/mock/requests`, { method: 'DELETE' });
    await load(chatUrl(mock), args);
    const again = (await mockRequests(mock)).map((q) => ({ ...q, json: JSON.parse(q.body) }));
    assert.equal(key(again), key(seen));
    await mock.stop();
  });

  test('export file replay (--mix of switchyardctl export lines)', { timeout: 20000 }, async () => {
    const mock = await startMock(['--quiet']);
    const { report } = await load(chatUrl(mock), ['--requests', '20', '--connections', '2',
      '--mix', EXPORT, '--model', 'cand-1', '--stream']);
    assert.equal(report.requests.ok, 20);
    const seen = (await mockRequests(mock)).map((q) => JSON.parse(q.body));
    assert.equal(seen.length, 20);
    for (const b of seen) {
      assert.equal(b.model, 'cand-1');
      assert.equal(b.stream, true);
      assert.equal(b.messages.at(-1).role, 'user');
      assert.ok(b.messages.at(-1).content.startsWith('load-export:'));
    }
    // without --model an export line is refused before anything is sent
    const r = await runToExit(LOAD_BIN, [chatUrl(mock), '--requests', '1', '--mix', EXPORT]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /line 1: .*--model/);
    await mock.stop();
  });

  test('command line: bounds required, bad flags rejected', { timeout: 10000 }, async () => {
    const cases = [
      [['http://127.0.0.1:1/'], /--requests N and\/or --duration S/],
      [['http://127.0.0.1:1/', '--requests', '1', '--duration', '601'], /out of range|600/],
      [['http://127.0.0.1:1/', '--requests', '1', '--header', 'no colon'], /Name: value/],
      [['https://127.0.0.1:1/', '--requests', '1'], /https is not supported/],
      [['http://127.0.0.1:1/', '--requests', '1', '--bogus'], /unknown option/],
    ];
    for (const [args, re] of cases) {
      const r = await runToExit(LOAD_BIN, args);
      assertNoSanitizerReport('switchyard-load', r.stderr);
      assert.ok(r.code === 1 || r.code === 2, `${args.join(' ')}: exit ${r.code}`);
      assert.match(r.stderr, re);
    }
    const h = await runToExit(LOAD_BIN, ['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--rate R/);
  });
});

describe('switchyard-load over gRPC (grpc://)', { skip: NO_GATEWAY }, () => {
  let mock;
  let gw;
  let grpcUrl;
  const auth = () => ['--header', `Authorization: Bearer ${gw.key}`];

  before(async () => {
    mock = await startMock(['--quiet']);
    gw = await startGateway(mock.url + '/v1', { args: ['--grpc-listen', '127.0.0.1:0'] });
    const m = /^switchyard grpc listening on (\S+)$/m.exec(gw.stdout());
    assert.ok(m, `no gRPC listening line:\n${gw.stdout()}`);
    grpcUrl = `grpc://${m[1]}`;
  });

  test('closed loop: exactly --requests, all OK; the body arrives as sent', { timeout: 30000 }, async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    const body = bodyFile('grpc-closed', {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'load test grpc-closed' }] },
      ],
      temperature: 0.25, max_tokens: 17, stop: ['END', 'STOP'], seed: 42, tools,
      tool_choice: 'auto', response_format: { type: 'json_object' }, logit_bias: { 50256: -100 },
    });
    const { report } = await load(grpcUrl, ['--requests', '200', '--connections', '16',
      '--users', '20', '--timeout-ms', '5000', '--body', body, ...auth()]);
    assert.equal(report.requests.sent, 200);
    assert.equal(report.requests.ok, 200, JSON.stringify(report.errors));
    assert.equal(report.requests.failed, 0);
    assert.deepEqual(report.status, { 200: 200 });
    assert.equal(report.latency_us.count, 200);
    assert.ok(report.latency_us.p50 > 0 && report.ttfb_us.count === 200);
    assert.ok(report.elapsed_s < 3 * SLOW, `took ${report.elapsed_s} s`);
    // what the upstream got, through the gateway's gRPC → JSON path
    const seen = await bodies(mock, 'grpc-closed');
    assert.equal(seen.length, 200);
    for (const q of seen) {
      const b = q.json;
      assert.equal(b.model, 'gpt-4o-mini');
      assert.deepEqual(b.messages, [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'load test grpc-closed' }] },
      ]);
      assert.equal(b.temperature, 0.25);
      assert.equal(b.max_tokens, 17);
      assert.deepEqual(b.stop, ['END', 'STOP']);
      assert.equal(b.seed, 42);
      assert.deepEqual(b.tools, tools);
      assert.equal(b.tool_choice, 'auto');
      assert.deepEqual(b.response_format, { type: 'json_object' });
      assert.deepEqual(b.logit_bias, { 50256: -100 }, 'other parameters go through extra_json');
      assert.ok(!b.stream, 'unary');
      // the Zipf user id, appended to the pre-encoded request (the
      // x-switchyard-user metadata is the gateway's and not forwarded)
      assert.match(b.user, /^user-\d+$/);
      const n = Number(b.user.slice(5));
      assert.ok(n >= 1 && n <= 20, b.user);
    }
    assert.ok(new Set(seen.map((q) => q.json.user)).size > 3, 'users vary');
  });

  test('streaming: ttfb, one chunk per message, gaps', { timeout: 30000 }, async () => {
    const { report } = await load(grpcUrl, ['--requests', '12', '--connections', '4', '--stream',
      '--timeout-ms', '5000', '--header', 'x-mock-chunks: 5', '--header', 'x-mock-chunk-delay-ms: 30',
      '--body', bodyFile('grpc-stream'), ...auth()]);
    assert.equal(report.requests.ok, 12, JSON.stringify(report.errors));
    const sent = await bodies(mock, 'grpc-stream');
    assert.equal(sent.length, 12);
    assert.ok(sent.every((q) => q.json.stream === true), 'ChatCompletionStream asks for SSE');
    const { ttfb_us: ttfb, latency_us: lat, chunk_gap_us: gap } = report;
    assert.equal(ttfb.count, 12);
    assert.ok(ttfb.p50 > 0 && ttfb.p50 < lat.p50, `ttfb p50 ${ttfb.p50}, total ${lat.p50}`);
    assert.ok(ttfb.p50 < 25000 * SLOW, `ttfb p50 ${ttfb.p50}: the first message is not delayed`);
    // role + 5 content + finish = 7 messages per call (no [DONE] in gRPC): 6 gaps each
    assert.equal(gap.count, 12 * 6);
    assert.ok(gap.p50 >= 27000 && gap.mean <= 30000 * 2 * SLOW, `gap p50 ${gap.p50} mean ${gap.mean}`);
    assert.ok(lat.p50 >= 5 * 30000, `total p50 ${lat.p50} covers the chunk delays`);
  });

  test('open loop holds the rate (200 req/s for 2 s)', { timeout: 30000 }, async () => {
    const { report } = await load(grpcUrl, ['--rate', '200', '--duration', '2', '--connections', '16',
      '--timeout-ms', '5000', '--body', bodyFile('grpc-rate'), ...auth()]);
    assert.equal(report.requests.scheduled, 400);
    within(report.requests.ok, 400, 0.1, 'completed');
    within(report.achieved_rate_rps, 200, 0.1, 'achieved send rate');
    within(report.throughput_rps, 200, 0.1, 'throughput');
    assert.equal(report.requests.failed, 0, JSON.stringify(report.errors));
    assert.equal((await bodies(mock, 'grpc-rate')).length, report.requests.sent);
  });

  test('wrong key: every call is a 401, and the run ends by itself; other errors by kind', { timeout: 30000 }, async () => {
    const t0 = Date.now();
    const { report } = await load(grpcUrl, ['--requests', '30', '--connections', '4',
      '--header', 'Authorization: Bearer sy-wrong-key', '--timeout-ms', '2000']);
    assert.equal(report.requests.ok, 0);
    assert.equal(report.errors.http_4xx, 30);
    assert.deepEqual(report.status, { 401: 30 });
    assert.equal(report.requests.completed, 30);
    assert.ok(Date.now() - t0 < 3000 * SLOW, 'bounded');
    // server errors by kind, through the gateway's status mapping
    const e500 = await load(grpcUrl, ['--requests', '6', '--connections', '2',
      '--header', 'x-mock-fault: 500', ...auth()]);
    assert.equal(e500.report.errors.http_5xx, 6);
    assert.deepEqual(e500.report.status, { 500: 6 });
    const e429 = await load(grpcUrl, ['--requests', '6', '--connections', '2',
      '--header', 'x-mock-fault: 429', ...auth()]);
    assert.deepEqual(e429.report.status, { 429: 6 });
    const hang = await load(grpcUrl, ['--requests', '4', '--connections', '2', '--timeout-ms', '300',
      '--header', 'x-mock-fault: hang', ...auth()]);
    assert.equal(hang.report.errors.timeout, 4, 'the deadline is --timeout-ms');
    // the gateway's UNAVAILABLE (upstream 503) is a server answer, not a connect error
    const e503 = await load(grpcUrl, ['--requests', '4', '--connections', '2',
      '--header', 'x-mock-fault: 503', ...auth()]);
    assert.equal(e503.report.errors.http_5xx, 4, JSON.stringify(e503.report.errors));
    assert.deepEqual(e503.report.status, { 503: 4 });
    // a stream still running at the deadline is a timeout, after its first messages
    const slow = await load(grpcUrl, ['--requests', '4', '--connections', '2', '--stream',
      '--timeout-ms', '300', '--header', 'x-mock-chunks: 100', '--header', 'x-mock-chunk-delay-ms: 20',
      ...auth()]);
    assert.equal(slow.report.errors.timeout, 4, JSON.stringify(slow.report.errors));
    assert.ok(slow.report.chunk_gap_us.count > 0, 'chunks counted before the deadline');
  });

  test('target not listening: connect errors, bounded in time', { timeout: 30000 }, async () => {
    const port = await closedPort();
    const url = `grpc://127.0.0.1:${port}`;
    const t0 = Date.now();
    const closed = await load(url, ['--requests', '20', '--connections', '4', '--timeout-ms', '500']);
    assert.equal(closed.report.errors.connect, 20);
    assert.equal(closed.report.requests.ok, 0);
    const open = await load(url, ['--rate', '100', '--duration', '1', '--connections', '4',
      '--timeout-ms', '500']);
    const r = open.report.requests;
    assert.equal(r.scheduled, 100);
    assert.equal(r.ok, 0);
    assert.ok(open.report.errors.connect >= 1);
    assert.equal(r.failed + r.unfinished, 100, 'every scheduled request is accounted for');
    assert.ok(open.report.elapsed_s < 3, `open loop took ${open.report.elapsed_s} s`);
    assert.ok(Date.now() - t0 < 6000 * SLOW, 'stops by itself');
  });

  test('command line: grpc:// URL and body checks', { timeout: 10000 }, async () => {
    const bad = join(dir, `bad-${++seq}.json`);
    writeFileSync(bad, JSON.stringify({ model: 'm', messages: [{ content: 'no role' }] }));
    const cases = [
      [['grpc://127.0.0.1/', '--requests', '1'], /grpc:\/\/HOST:PORT/],
      [['grpc://127.0.0.1:1/v1/chat', '--requests', '1'], /no path/],
      [['ftp://127.0.0.1:1/', '--requests', '1'], /http:\/\/ or grpc:\/\//],
      [['grpc://127.0.0.1:1', '--requests', '1', '--body', bad], /mix item 1: .*role/],
    ];
    for (const [args, re] of cases) {
      const r = await runToExit(LOAD_BIN, args);
      assertNoSanitizerReport('switchyard-load', r.stderr);
      assert.ok(r.code === 1 || r.code === 2, `${args.join(' ')}: exit ${r.code}`);
      assert.match(r.stderr, re);
    }
    const h = await runToExit(LOAD_BIN, ['--help']);
    assert.match(h.stdout, /grpc:\/\/HOST:PORT/);
  });
});
