// The gRPC API end to end: a mock upstream, the gateway with its gRPC
// listeners on free ports, and an independent client (Debian's python3-grpcio
// with stubs generated from proto/ at test time: tests/integration/grpc/client.py).
// Covers Inference (unary, streaming, errors, deadline, cancellation),
// FeedbackService, the Admin framework (tokens, roles, Health) and TLS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  startMock, startGateway, stopAll, mockReply, runToExit, tempDir, sha256hex, sleep,
  SLOW,
} from './lib/harness.mjs';

const ROOT = process.env.SY_SOURCE_DIR ?? process.cwd();
const PY = '/usr/bin/python3';
const CLIENT = join(ROOT, 'tests/integration/grpc/client.py');
const ADMIN_TOKEN = 'adm-' + Math.random().toString(36).slice(2);
const READ_TOKEN = 'read-' + Math.random().toString(36).slice(2);

let mock;
let gw;
let grpcAddr;
let adminAddr;
let stubs = ''; // Python stubs generated once from proto/

/** The gRPC listener addresses a gateway printed ("switchyard grpc listening on H:P"). */
function grpcListeners(proc) {
  const out = proc.stdout();
  const m = /^switchyard grpc listening on (\S+)$/m.exec(out);
  const a = /^switchyard grpc-admin listening on (\S+)$/m.exec(out);
  return { grpc: m?.[1], admin: a?.[1] };
}

/** Runs one client scenario; resolves to its JSON result. */
async function py(scenario, target, args = []) {
  const r = await runToExit(PY, [CLIENT, scenario, '--target', target, '--stubs', stubs, ...args], {
    env: { SY_SOURCE_DIR: ROOT }, timeoutMs: 30000 * SLOW,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let res;
  try {
    res = JSON.parse(line);
  } catch {
    throw new Error(`client ${scenario}: exit ${r.code}, no JSON.\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  assert.equal(res.ok, true, `client ${scenario}: ${r.stderr}`);
  return res;
}

function pyAvailable() {
  return existsSync(PY);
}

before(async () => {
  stubs = tempDir('sy-grpc-stubs-');
  const protos = readdirSync(join(ROOT, 'proto/switchyard/v1')).filter((f) => f.endsWith('.proto'))
    .map((f) => `proto/switchyard/v1/${f}`);
  const g = await runToExit(PY, ['-m', 'grpc_tools.protoc', '-I', 'proto', `--python_out=${stubs}`,
    `--grpc_python_out=${stubs}`, ...protos], { cwd: ROOT, timeoutMs: 60000 });
  assert.equal(g.code, 0, `grpc_tools.protoc failed:\n${g.stderr}`);
  mock = await startMock(['--quiet']);
  gw = await startGateway(mock.url + '/v1', {
    args: ['--grpc-listen', '127.0.0.1:0', '--grpc-admin-listen', '127.0.0.1:0'],
    config: {
      grpc: { admin_tokens: [{ name: 'ci-read', sha256: sha256hex(READ_TOKEN), role: 'read' }] },
    },
    env: { SWITCHYARD_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  ({ grpc: grpcAddr, admin: adminAddr } = grpcListeners(gw));
  assert.ok(grpcAddr && adminAddr, `listening lines missing:\n${gw.stdout()}`);
});

after(stopAll);

test('python grpcio is installed', { skip: !pyAvailable() && 'no /usr/bin/python3' }, async () => {
  const r = await runToExit(PY, ['-c', 'import grpc, grpc_tools']);
  assert.equal(r.code, 0, r.stderr);
});

test('unary ChatCompletion: same content as over HTTP, capture id, metadata', { timeout: 60000 }, async () => {
  const text = 'grpc-unary-' + Date.now();
  const g = await py('unary', grpcAddr, ['--key', gw.key, '--text', text]);
  assert.equal(g.code, 'OK', g.details);
  const http = await fetch(gw.base + '/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.key}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], temperature: 0 }),
  });
  assert.equal(http.status, 200);
  const hj = await http.json();
  assert.equal(g.content, hj.choices[0].message.content);
  assert.equal(g.content, mockReply(text));
  assert.equal(g.role, 'assistant');
  assert.equal(g.finish_reason, hj.choices[0].finish_reason);
  assert.deepEqual(g.usage, [hj.usage.prompt_tokens, hj.usage.completion_tokens, hj.usage.total_tokens]);
  assert.equal(g.raw.choices[0].message.content, g.content);
  assert.match(g.capture_id, /^[1-9]\d*$/);
  assert.equal(g.md_capture_id, g.capture_id, 'initial metadata carries the capture id');
  assert.match(g.request_id, /^[0-9a-f]{24}$/);
  assert.notEqual(http.headers.get('x-switchyard-capture-id'), g.capture_id);
});

test('streaming ChatCompletionStream: chunks reassemble to the answer', { timeout: 60000 }, async () => {
  const text = 'grpc-stream-' + Date.now();
  const s = await py('stream', grpcAddr, ['--key', gw.key, '--text', text]);
  assert.equal(s.code, 'OK', s.details);
  assert.equal(s.text, mockReply(text));
  assert.ok(s.chunks > 2, `only ${s.chunks} chunks`);
  assert.equal(s.finish_reason, 'stop');
  assert.match(s.capture_id, /^[1-9]\d*$/);
  assert.equal(s.md_capture_id, s.capture_id);
  assert.ok(s.usage > 0, 'include_usage gives a usage chunk');
});

test('auth: no key or a wrong key is UNAUTHENTICATED', { timeout: 60000 }, async () => {
  const none = await py('unary', grpcAddr, []);
  assert.equal(none.code, 'UNAUTHENTICATED');
  assert.match(none.details, /API key/);
  const wrong = await py('unary', grpcAddr, ['--key', 'sy-wrong-key']);
  assert.equal(wrong.code, 'UNAUTHENTICATED');
  const s = await py('stream', grpcAddr, ['--key', 'sy-wrong-key']);
  assert.equal(s.code, 'UNAUTHENTICATED');
});

test('invalid requests are INVALID_ARGUMENT with a message naming the field', { timeout: 60000 }, async () => {
  const nm = await py('no_messages', grpcAddr, ['--key', gw.key]);
  assert.equal(nm.code, 'INVALID_ARGUMENT');
  assert.match(nm.details, /^messages: /);
  const bj = await py('bad_json_field', grpcAddr, ['--key', gw.key]);
  assert.equal(bj.code, 'INVALID_ARGUMENT');
  assert.match(bj.details, /^tools_json: /);
  const mf = await py('malformed', grpcAddr, ['--key', gw.key]);
  assert.equal(mf.code, 'INVALID_ARGUMENT');
  assert.match(mf.details, /malformed switchyard\.v1\.ChatCompletionRequest/);
});

test('upstream errors map to gRPC codes with the OpenAI message', { timeout: 60000 }, async () => {
  const r429 = await py('unary', grpcAddr, ['--key', gw.key, '--meta', 'x-mock-fault=429']);
  assert.equal(r429.code, 'RESOURCE_EXHAUSTED');
  assert.ok(r429.details.length > 0);
  const r400 = await py('unary', grpcAddr, ['--key', gw.key, '--meta', 'x-mock-fault=400']);
  assert.equal(r400.code, 'INVALID_ARGUMENT');
  const r404 = await py('unary', grpcAddr, ['--key', gw.key, '--meta', 'x-mock-fault=404']);
  assert.equal(r404.code, 'NOT_FOUND');
});

test('unknown methods get UNIMPLEMENTED at once, on both listeners', { timeout: 60000 }, async () => {
  const u = await py('unknown_method', grpcAddr, ['--timeout', '5']);
  assert.equal(u.code, 'UNIMPLEMENTED');
  assert.ok(u.elapsed < 2, `took ${u.elapsed}s`);
  assert.match(u.details, /Nope\/Nothing/);
  const a = await py('unknown_method', adminAddr, ['--timeout', '5']);
  assert.equal(a.code, 'UNIMPLEMENTED');
  // the admin service is not served on the inference listener
  const h = await py('health', grpcAddr, ['--token', ADMIN_TOKEN, '--timeout', '5']);
  assert.equal(h.code, 'UNIMPLEMENTED');
});

test('deadline: a slow upstream gives DEADLINE_EXCEEDED and the upstream call is dropped', { timeout: 60000 }, async () => {
  const d = await py('deadline', grpcAddr,
    ['--key', gw.key, '--timeout', '0.5', '--meta', 'x-mock-latency-ms=3000']);
  assert.equal(d.code, 'DEADLINE_EXCEEDED');
  assert.ok(d.elapsed < 2.5, `took ${d.elapsed}s`);
  const ok = await py('unary', grpcAddr, ['--key', gw.key]);
  assert.equal(ok.code, 'OK');
  // The capture of the dropped call shows it ended at the deadline, not
  // when the upstream answered (3 s later).
  const ctl = process.env.SWITCHYARDCTL_BIN;
  if (ctl) {
    let found = null;
    for (let i = 0; i < 30 && !found; i++) {
      const r = await runToExit(ctl, ['captures', 'list', '--db', join(gw.dir, 'data'), '--json', '--limit', '50']);
      if (r.code === 0) {
        found = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
          .find((c) => c.http_status === 0 && c.latency_total_us >= 400000);
      }
      if (!found) await sleep(100);
    }
    assert.ok(found, 'a capture of the cancelled call');
    assert.ok(found.latency_total_us < 2500000, `upstream not dropped: ${found.latency_total_us} us`);
  }
});

test('cancelling a stream aborts it; the gateway stays healthy', { timeout: 60000 }, async () => {
  const c = await py('stream_cancel', grpcAddr,
    ['--key', gw.key, '--meta', 'x-mock-chunk-delay-ms=300', '--meta', 'x-mock-chunks=40']);
  assert.equal(c.code, 'CANCELLED');
  assert.ok(c.elapsed < 5, `took ${c.elapsed}s`);
  const s = await py('stream', grpcAddr, ['--key', gw.key, '--text', 'after-cancel']);
  assert.equal(s.code, 'OK');
  assert.equal(s.text, mockReply('after-cancel'));
  const h = await fetch(gw.url + '/healthz');
  assert.equal(h.status, 200);
});

test('FeedbackService.Submit: OK for a capture, NOT_FOUND otherwise', { timeout: 60000 }, async () => {
  const u = await py('unary', grpcAddr, ['--key', gw.key, '--text', 'feedback-me']);
  assert.equal(u.code, 'OK');
  let f;
  for (let i = 0; i < 20; i++) { // the capture commits asynchronously
    f = await py('feedback', grpcAddr, ['--key', gw.key, '--capture-id', u.capture_id]);
    if (f.code !== 'NOT_FOUND') break;
    await sleep(100);
  }
  assert.equal(f.code, 'OK', f.details);
  assert.equal(f.capture_id, u.capture_id);
  assert.match(f.feedback_id, /^[1-9]\d*$/);
  const nf = await py('feedback', grpcAddr, ['--key', gw.key, '--capture-id', '12345']);
  assert.equal(nf.code, 'NOT_FOUND');
  assert.match(nf.details, /12345/);
  const noauth = await py('feedback', grpcAddr, ['--capture-id', u.capture_id]);
  assert.equal(noauth.code, 'UNAUTHENTICATED');
  const zero = await py('feedback', grpcAddr, ['--key', gw.key, '--capture-id', '0']);
  assert.equal(zero.code, 'INVALID_ARGUMENT');
});

test('admin: tokens, roles and Health', { timeout: 60000 }, async () => {
  const h = await py('health', adminAddr, ['--token', ADMIN_TOKEN]);
  assert.equal(h.code, 'OK', h.details);
  assert.equal(h.status, 'ok');
  assert.equal(h.caller, 'env');
  assert.equal(h.role, 'admin');
  assert.equal(h.workers, 2);
  assert.match(h.version, /^switchyard /);
  const r = await py('health', adminAddr, ['--token', READ_TOKEN]);
  assert.equal(r.code, 'OK');
  assert.equal(r.caller, 'ci-read');
  assert.equal(r.role, 'read');
  const none = await py('health', adminAddr, []);
  assert.equal(none.code, 'UNAUTHENTICATED');
  const wrong = await py('health', adminAddr, ['--token', ADMIN_TOKEN + 'x']);
  assert.equal(wrong.code, 'UNAUTHENTICATED');
  // the client key is no admin token
  const ck = await py('health', adminAddr, ['--token', gw.key]);
  assert.equal(ck.code, 'UNAUTHENTICATED');
  const ro = await py('admin_mutation', adminAddr, ['--token', READ_TOKEN]);
  assert.equal(ro.code, 'PERMISSION_DENIED');
  // an admin token gets through to the handler: Promote of an unknown route
  const rw = await py('admin_mutation', adminAddr, ['--token', ADMIN_TOKEN]);
  assert.equal(rw.code, 'NOT_FOUND');
  assert.match(rw.details, /route "r"/);
});

test('TLS: both listeners serve TLS with a self-signed certificate', { timeout: 90000 }, async () => {
  const dir = tempDir('sy-grpc-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const o = await runToExit('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  assert.equal(o.code, 0, o.stderr);
  const tgw = await startGateway(mock.url + '/v1', {
    args: ['--grpc-listen', '127.0.0.1:0', '--grpc-admin-listen', '127.0.0.1:0'],
    config: { grpc: { tls_cert: cert, tls_key: key } },
    env: { SWITCHYARD_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  const l = grpcListeners(tgw);
  const u = await py('unary', l.grpc, ['--key', tgw.key, '--ca', cert, '--text', 'over tls']);
  assert.equal(u.code, 'OK', u.details);
  assert.equal(u.content, mockReply('over tls'));
  const h = await py('health', l.admin, ['--token', ADMIN_TOKEN, '--ca', cert]);
  assert.equal(h.code, 'OK', h.details);
  const plain = await py('unary', l.grpc, ['--key', tgw.key, '--timeout', '3']);
  assert.equal(plain.code, 'UNAVAILABLE', 'a plaintext client cannot talk to the TLS port');
  assert.equal(await tgw.stop(), 0);
});

test('config: a half TLS setup is refused at start-up', { timeout: 30000 }, async () => {
  const dir = tempDir('sy-grpc-cfg-');
  await assert.rejects(startGateway(mock.url + '/v1', {
    config: { grpc: { listen: '127.0.0.1:0', tls_cert: join(dir, 'c.pem') } },
  }), /grpc\.tls_key: required with grpc\.tls_cert/);
});

test('SIGTERM with gRPC streams in flight: clean exit', { timeout: 60000 }, async () => {
  const p = py('stream', grpcAddr, ['--key', gw.key, '--meta', 'x-mock-chunk-delay-ms=200',
    '--meta', 'x-mock-chunks=50', '--timeout', '20']);
  await sleep(1500);
  assert.equal(await gw.stop(), 0);
  const r = await p;
  assert.notEqual(r.code, 'OK', 'the stream was cut by the shutdown');
  assert.ok(['CANCELLED', 'UNAVAILABLE'].includes(r.code), r.code);
  assert.equal(await mock.stop(), 0);
});
