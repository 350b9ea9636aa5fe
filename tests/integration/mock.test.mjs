// Integration tests for switchyard-mock, the mock OpenAI upstream.
// Run: MOCK_BIN=build-mock/loadtest/switchyard-mock node --test tests/integration/mock.test.mjs
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MOCK_BIN = process.env.MOCK_BIN
  ? path.resolve(ROOT, process.env.MOCK_BIN)
  : path.join(ROOT, 'build-mock', 'loadtest', 'switchyard-mock');
const T = { timeout: 15000 };

// ---------------------------------------------------------------- helpers

const started = [];

function startMock(args = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(MOCK_BIN, ['--listen', '127.0.0.1:0', '--quiet', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(proc);
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`mock did not start: ${err}`)), 5000);
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mock exited ${code}: ${err}`)); });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^switchyard-mock listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({ proc, port, url: `http://127.0.0.1:${port}`, line: out });
      }
    });
  });
}

function waitExit(proc, ms) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve({ code: proc.exitCode, signal: proc.signalCode });
    const timer = setTimeout(() => resolve(null), ms);
    proc.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
  });
}

async function stopMock(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  process.kill(proc.pid, 'SIGTERM');
  if (!(await waitExit(proc, 3000))) process.kill(proc.pid, 'SIGKILL');
}

after(async () => {
  for (const p of started) await stopMock(p);
});

function runBin(args, ms = 5000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(MOCK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { process.kill(proc.pid, 'SIGKILL'); reject(new Error('timeout')); }, ms);
    proc.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

const sig = () => AbortSignal.timeout(10000);

async function post(base, p, body, headers = {}) {
  return fetch(base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: sig(),
  });
}

async function postJSON(base, p, body, headers = {}) {
  const res = await post(base, p, body, headers);
  return { res, json: await res.json() };
}

function chatBody(text, extra = {}) {
  return { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }], ...extra };
}

// Splits an SSE body into the JSON payloads of its data lines ('[DONE]' kept as a string).
function sseEvents(text) {
  assert.ok(text.endsWith('\n\n'), 'events end with a blank line');
  return text.split('\n\n').filter((e) => e.length).map((e) => {
    assert.ok(e.startsWith('data: '), `event starts with "data: ": ${e.slice(0, 40)}`);
    const d = e.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

// Sends raw bytes and collects everything until the server closes or `done(buf)` says stop.
function raw(port, chunks, { done = null, ms = 5000, gapMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let closed = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`raw timeout; got: ${buf.toString().slice(0, 300)}`)); }, ms);
    const finish = () => { clearTimeout(timer); resolve({ buf, closed, sock }); };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (done && done(buf)) { finish(); sock.destroy(); }
    });
    sock.on('end', () => { closed = true; finish(); sock.destroy(); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('connect', async () => {
      for (const c of [].concat(chunks)) {
        if (typeof c === 'function') await c(() => buf);
        else sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

// Parses back-to-back HTTP/1.1 responses (Content-Length or chunked bodies).
function parseResponses(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const lines = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    pos = end + 4;
    let body;
    if (status === 100) { out.push({ status, headers, body: '' }); continue; }
    if (headers['transfer-encoding'] === 'chunked') {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', pos);
        if (le < 0) return { out, rest: true };
        const n = parseInt(buf.subarray(pos, le).toString(), 16);
        pos = le + 2;
        if (n === 0) { pos += 2; break; }
        parts.push(buf.subarray(pos, pos + n));
        pos += n + 2;
      }
      body = Buffer.concat(parts).toString();
    } else {
      const n = Number(headers['content-length'] ?? 0);
      body = buf.subarray(pos, pos + n).toString();
      pos += n;
    }
    out.push({ status, headers, body });
  }
  return out;
}

function assertOpenAIError(json, type = 'invalid_request_error') {
  assert.equal(typeof json.error, 'object');
  assert.equal(typeof json.error.message, 'string');
  assert.ok(json.error.message.length > 0);
  assert.equal(json.error.type, type);
  assert.ok('param' in json.error && 'code' in json.error);
}

// ---------------------------------------------------------------- tests

let M; // the shared instance
before(async () => { M = await startMock(); });

describe('startup and CLI', () => {
  test('prints exactly one listening line and answers /healthz', T, async () => {
    assert.match(M.line, /^switchyard-mock listening on http:\/\/127\.0\.0\.1:\d+\n$/);
    assert.notEqual(M.port, 0);
    const res = await fetch(M.url + '/healthz', { signal: sig() });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('bad flags exit 2, --help exits 0', T, async () => {
    for (const args of [['--bogus'], ['--chunks'], ['--chunks', 'x'], ['--chunks', '0'], ['--listen', 'nohost'], ['--latency-ms', '-5']]) {
      const r = await runBin(args);
      assert.equal(r.code, 2, `args ${args.join(' ')}`);
      assert.ok(r.err.length > 0);
      assert.equal(r.out, '');
    }
    const h = await runBin(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /--chunk-delay-ms/);
  });

  test('--latency-ms, --jitter-ms and --chunks set the defaults', T, async () => {
    const m = await startMock(['--latency-ms', '150', '--jitter-ms', '100', '--chunks', '3']);
    const t0 = Date.now();
    const res = await post(m.url, '/v1/chat/completions', chatBody('defaults please', { stream: true }));
    const ev = sseEvents(await res.text());
    const took = Date.now() - t0;
    assert.ok(took >= 145 && took < 1500, `took ${took} ms`);
    assert.equal(ev.length, 1 + 3 + 1 + 1);
    // a header still overrides the configured default
    const t1 = Date.now();
    const fast = await post(m.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-latency-ms': '0' });
    await fast.json();
    assert.ok(Date.now() - t1 < 140, `override took ${Date.now() - t1} ms`);
    await stopMock(m.proc);
  });

  test('SIGTERM closes open connections and exits 0', T, async () => {
    const m = await startMock();
    const ctl = new AbortController();
    const hung = fetch(m.url + '/v1/chat/completions', {
      method: 'POST', body: JSON.stringify(chatBody('hi')), headers: { 'x-mock-fault': 'hang' }, signal: ctl.signal,
    }).catch((e) => e);
    const slow = post(m.url, '/v1/chat/completions', chatBody('hi'), { 'x-mock-latency-ms': '60000' }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(m.proc.pid, 'SIGTERM');
    const ex = await waitExit(m.proc, 5000);
    assert.deepEqual(ex, { code: 0, signal: null });
    assert.ok((await hung) instanceof Error);
    assert.ok((await slow) instanceof Error);
    ctl.abort();
  });
});

describe('chat completions', () => {
  test('non-stream answer is deterministic and OpenAI-shaped', T, async () => {
    const body = chatBody('What is   the capital of France?');
    const { res, json } = await postJSON(M.url, '/armB/v1/chat/completions', body);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/json/);
    assert.match(json.id, /^chatcmpl-mock-[0-9a-f]{16}$/);
    assert.equal(json.object, 'chat.completion');
    assert.equal(json.created, 1700000000);
    assert.equal(json.model, 'gpt-4o-mini');
    assert.equal(json.system_fingerprint, 'fp_mock');
    assert.equal(json.choices.length, 1);
    const c = json.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.logprobs, null);
    assert.deepEqual(c.message, { role: 'assistant', content: 'This is a mock reply to: What is   the capital of France?' });
    // prompt: "You are terse." (3) + 6 words; completion: 6 + 6 words
    assert.deepEqual(json.usage, { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 });
    const again = await postJSON(M.url, '/v1/chat/completions', body);
    assert.equal(again.json.id, json.id);
    const other = await postJSON(M.url, '/v1/chat/completions', chatBody('something else'));
    assert.notEqual(other.json.id, json.id);
  });

  test('array content, last user message, UTF-8 safe truncation to 200 bytes', T, async () => {
    const long = 'é'.repeat(150); // 300 bytes
    const body = {
      model: 'mock-small',
      messages: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: [{ type: 'text', text: 'part one ' }, { type: 'image_url', image_url: { url: 'x' } }, { type: 'text', text: long }] },
      ],
    };
    const { json } = await postJSON(M.url, '/v1/chat/completions', body);
    const content = json.choices[0].message.content;
    const prefix = 'This is a mock reply to: ';
    assert.ok(content.startsWith(prefix + 'part one é'));
    const echoed = Buffer.from(content.slice(prefix.length));
    assert.ok(echoed.length <= 200 && echoed.length >= 199, `echo is ${echoed.length} bytes`);
    assert.ok(!content.includes('\ufffd'));
    assert.equal(json.model, 'mock-small');
  });

  test('n > 1 gives identical choices 0..n-1, capped at 16', T, async () => {
    const { json } = await postJSON(M.url, '/v1/chat/completions', chatBody('hey', { n: 3 }));
    assert.deepEqual(json.choices.map((c) => c.index), [0, 1, 2]);
    assert.ok(json.choices.every((c) => c.message.content === 'This is a mock reply to: hey'));
    const big = await postJSON(M.url, '/v1/chat/completions', chatBody('hey', { n: 100 }));
    assert.equal(big.json.choices.length, 16);
  });

  test('stream: chunks reassemble to the non-stream content', T, async () => {
    const text = 'Stream me a reply with ünïcödé characters please, thanks';
    const plain = (await postJSON(M.url, '/v1/chat/completions', chatBody(text))).json;
    for (const chunks of [1, 5, 8, 1000]) {
      const res = await post(M.url, '/v1/chat/completions', chatBody(text, { stream: true }), { 'x-mock-chunks': String(chunks) });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/);
      assert.equal(res.headers.get('content-length'), null);
      assert.equal(res.headers.get('transfer-encoding'), 'chunked');
      const ev = sseEvents(await res.text());
      assert.equal(ev.at(-1), '[DONE]');
      const objs = ev.slice(0, -1);
      assert.match(objs[0].id, /^chatcmpl-mock-[0-9a-f]{16}$/);
      assert.ok(objs.every((o) => o.object === 'chat.completion.chunk' && o.id === objs[0].id && o.model === 'gpt-4o-mini' && o.created === 1700000000));
      assert.deepEqual(objs[0].choices[0].delta, { role: 'assistant', content: '' });
      assert.equal(objs[0].choices[0].finish_reason, null);
      const last = objs.at(-1).choices[0];
      assert.deepEqual(last.delta, {});
      assert.equal(last.finish_reason, 'stop');
      const pieces = objs.slice(1, -1).map((o) => o.choices[0].delta.content);
      assert.ok(pieces.every((p) => typeof p === 'string' && p.length > 0));
      assert.equal(pieces.join(''), plain.choices[0].message.content);
      const expected = Math.min(chunks, [...plain.choices[0].message.content].length);
      assert.ok(pieces.length <= expected && pieces.length >= Math.min(chunks, 50), `chunks=${chunks} got ${pieces.length}`);
      if (chunks <= 8) assert.equal(pieces.length, chunks);
      assert.ok(objs.every((o) => !('usage' in o)));
    }
  });

  test('stream with n = 2: every index reassembles to the content', T, async () => {
    const res = await post(M.url, '/v1/chat/completions', chatBody('two at once', { stream: true, n: 2 }), { 'x-mock-chunks': '4' });
    const ev = sseEvents(await res.text()).slice(0, -1);
    for (const idx of [0, 1]) {
      const mine = ev.filter((o) => o.choices[0].index === idx);
      assert.equal(mine.length, 1 + 4 + 1);
      assert.equal(mine.slice(1, -1).map((o) => o.choices[0].delta.content).join(''), 'This is a mock reply to: two at once');
      assert.equal(mine.at(-1).choices[0].finish_reason, 'stop');
    }
  });

  test('stream default is 8 content chunks; include_usage adds a usage chunk', T, async () => {
    const res = await post(M.url, '/v1/chat/completions', chatBody('count my words please', { stream: true, stream_options: { include_usage: true } }));
    const ev = sseEvents(await res.text());
    assert.equal(ev.at(-1), '[DONE]');
    const usage = ev.at(-2);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, { prompt_tokens: 7, completion_tokens: 10, total_tokens: 17 });
    assert.equal(ev.length, 1 + 8 + 1 + 1 + 1);
    assert.ok(ev.slice(0, -2).every((o) => o.usage === null));
  });

  test('logprobs: per-token probability from the marker, header wins, default 0.9', T, async () => {
    const text = 'rate this [[confidence=0.35]] answer';
    const { json } = await postJSON(M.url, '/v1/chat/completions', chatBody(text, { logprobs: true }));
    const content = json.choices[0].message.content;
    const lp = json.choices[0].logprobs.content;
    assert.equal(lp.map((t) => t.token).join(''), content);
    assert.equal(lp.length, json.usage.completion_tokens);
    assert.equal(lp[0].token, 'This ');
    for (const t of lp) {
      assert.ok(Math.abs(Math.exp(t.logprob) - 0.35) < 1e-12, `p=${Math.exp(t.logprob)}`);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
      assert.deepEqual(t.top_logprobs, []);
    }
    const h = await postJSON(M.url, '/v1/chat/completions', chatBody(text, { logprobs: true }), { 'x-mock-confidence': '0.6' });
    assert.ok(h.json.choices[0].logprobs.content.every((t) => Math.abs(Math.exp(t.logprob) - 0.6) < 1e-12));
    const d = await postJSON(M.url, '/v1/chat/completions', chatBody('no marker', { logprobs: true }));
    assert.ok(d.json.choices[0].logprobs.content.every((t) => Math.abs(Math.exp(t.logprob) - 0.9) < 1e-12));
    const bad = await post(M.url, '/v1/chat/completions', chatBody('x', { logprobs: true }), { 'x-mock-confidence': '1.5' });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  });

  test('logprobs in streams: each chunk carries the logprobs of exactly its text', T, async () => {
    const res = await post(M.url, '/v1/chat/completions', chatBody('stream with [[confidence=0.2]] logprobs now', { logprobs: true, stream: true }), { 'x-mock-chunks': '3' });
    const ev = sseEvents(await res.text()).slice(1, -2);
    assert.equal(ev.length, 3);
    let all = '';
    for (const o of ev) {
      const c = o.choices[0];
      assert.equal(c.logprobs.content.map((t) => t.token).join(''), c.delta.content);
      assert.ok(c.logprobs.content.every((t) => Math.abs(Math.exp(t.logprob) - 0.2) < 1e-12));
      all += c.delta.content;
    }
    assert.equal(all, 'This is a mock reply to: stream with [[confidence=0.2]] logprobs now');
  });

  test('forced tool calls, plain and streamed', T, async () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object' } } },
    ];
    const req = await postJSON(M.url, '/v1/chat/completions', chatBody('weather?', { tools, tool_choice: 'required' }));
    const c = req.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.deepEqual(c.message, {
      role: 'assistant', content: null,
      tool_calls: [{ id: 'call_mock_1', type: 'function', function: { name: 'get_weather', arguments: '{"echo":true}' } }],
    });
    const named = await postJSON(M.url, '/v1/chat/completions', chatBody('time?', { tools, tool_choice: { type: 'function', function: { name: 'get_time' } } }));
    assert.equal(named.json.choices[0].message.tool_calls[0].function.name, 'get_time');
    const auto = await postJSON(M.url, '/v1/chat/completions', chatBody('time?', { tools, tool_choice: 'auto' }));
    assert.equal(auto.json.choices[0].finish_reason, 'stop');

    const res = await post(M.url, '/v1/chat/completions', chatBody('time?', { tools, tool_choice: { type: 'function', function: { name: 'get_time' } }, stream: true }));
    const ev = sseEvents(await res.text());
    const first = ev[0].choices[0].delta;
    assert.equal(first.role, 'assistant');
    assert.equal(first.tool_calls[0].id, 'call_mock_1');
    assert.equal(first.tool_calls[0].function.name, 'get_time');
    const args = ev.slice(1, -2).map((o) => o.choices[0].delta.tool_calls[0].function.arguments).join('');
    assert.equal(args, '{"echo":true}');
    assert.equal(ev.at(-2).choices[0].finish_reason, 'tool_calls');
  });
});

describe('completions, embeddings, models', () => {
  test('text completion, plain and streamed', T, async () => {
    const { json } = await postJSON(M.url, '/v1/completions', { model: 'gpt-4o-mini', prompt: ['Once upon', 'ignored'] });
    assert.equal(json.object, 'text_completion');
    assert.match(json.id, /^cmpl-mock-[0-9a-f]{16}$/);
    assert.equal(json.choices[0].text, 'This is a mock completion of: Once upon');
    assert.equal(json.choices[0].finish_reason, 'stop');
    const res = await post(M.url, '/v1/completions', { model: 'gpt-4o-mini', prompt: 'Once upon', stream: true });
    const ev = sseEvents(await res.text());
    assert.equal(ev.at(-1), '[DONE]');
    assert.equal(ev.slice(0, -1).map((o) => o.choices[0].text).join(''), 'This is a mock completion of: Once upon');
    assert.equal(ev.at(-2).choices[0].finish_reason, 'stop');
  });

  test('embeddings: floats, normalised and deterministic; base64 decodes to the same', T, async () => {
    const { json } = await postJSON(M.url, '/v1/embeddings', { model: 'text-embedding-3-small', input: ['alpha', 'beta gamma', 'alpha'] });
    assert.equal(json.object, 'list');
    assert.equal(json.data.length, 3);
    assert.deepEqual(json.usage, { prompt_tokens: 4, total_tokens: 4 });
    for (const [i, d] of json.data.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.object, 'embedding');
      assert.equal(d.embedding.length, 8);
      const norm = Math.hypot(...d.embedding);
      assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
    }
    assert.deepEqual(json.data[0].embedding, json.data[2].embedding);
    assert.notDeepEqual(json.data[0].embedding, json.data[1].embedding);

    const b = await postJSON(M.url, '/v1/embeddings', { model: 'e', input: 'alpha', encoding_format: 'base64', dimensions: 8 });
    assert.equal(typeof b.json.data[0].embedding, 'string');
    const bytes = Buffer.from(b.json.data[0].embedding, 'base64');
    assert.equal(bytes.length, 32);
    const f32 = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    for (let i = 0; i < 8; i++) assert.equal(f32[i], Math.fround(json.data[0].embedding[i]));

    const dims = await postJSON(M.url, '/v1/embeddings', { model: 'e', input: 'x', dimensions: 5000 });
    assert.equal(dims.json.data[0].embedding.length, 4096);
    const tok = await postJSON(M.url, '/v1/embeddings', { model: 'e', input: [[1, 2, 3], [4, 5]], dimensions: 3 });
    assert.equal(tok.json.data.length, 2);
    assert.equal(tok.json.usage.prompt_tokens, 5);
    const one = await postJSON(M.url, '/v1/embeddings', { model: 'e', input: [1, 2, 3], dimensions: 3 });
    assert.equal(one.json.data.length, 1);
    assert.deepEqual(one.json.data[0].embedding, tok.json.data[0].embedding);
    const bad = await postJSON(M.url, '/v1/embeddings', { model: 'e', input: [{}] });
    assert.equal(bad.res.status, 400);
  });

  test('models list, single model, unknown model 404', T, async () => {
    const list = await (await fetch(M.url + '/v1/models', { signal: sig() })).json();
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => m.id), ['gpt-4o-mini', 'gpt-4o', 'mock-small', 'mock-large']);
    assert.ok(list.data.every((m) => m.object === 'model' && m.created === 1700000000 && m.owned_by === 'switchyard-mock'));
    const one = await fetch(M.url + '/prefix/v1/models/mock-large', { signal: sig() });
    assert.equal(one.status, 200);
    assert.equal((await one.json()).id, 'mock-large');
    const nf = await fetch(M.url + '/v1/models/gpt-5', { signal: sig() });
    assert.equal(nf.status, 404);
    assertOpenAIError(await nf.json());
  });
});

describe('errors', () => {
  test('unknown path 404, wrong method 405, malformed JSON 400, missing fields 400', T, async () => {
    const nf = await post(M.url, '/v1/nothing', {});
    assert.equal(nf.status, 404);
    assertOpenAIError(await nf.json());
    const wm = await fetch(M.url + '/v1/chat/completions', { signal: sig() });
    assert.equal(wm.status, 405);
    assertOpenAIError(await wm.json());
    const mj = await post(M.url, '/v1/chat/completions', '{"model": "x", "messages": [');
    assert.equal(mj.status, 400);
    const e = await mj.json();
    assertOpenAIError(e);
    assert.equal(e.error.param, null);
    assert.equal(e.error.code, null);
    const nm = await post(M.url, '/v1/chat/completions', { messages: [] });
    assert.equal(nm.status, 400);
    assertOpenAIError(await nm.json());
    const nmsg = await post(M.url, '/v1/chat/completions', { model: 'x' });
    assert.equal(nmsg.status, 400);
    assertOpenAIError(await nmsg.json());
  });

  test('malformed HTTP gets 400 and the connection closes', T, async () => {
    const { buf, closed } = await raw(M.port, 'GARBAGE\x01 / HTTP/1.1\r\n\r\n');
    assert.ok(closed);
    const [r] = parseResponses(buf);
    assert.equal(r.status, 400);
    assert.equal(r.headers.connection, 'close');
    assertOpenAIError(JSON.parse(r.body));
  });

  test('headers over 64 KiB get 431', T, async () => {
    const big = 'x'.repeat(70 * 1024);
    const { buf, closed } = await raw(M.port, `GET /v1/models HTTP/1.1\r\nHost: a\r\nx-big: ${big}\r\n\r\n`);
    assert.ok(closed);
    assert.equal(parseResponses(buf)[0].status, 431);
  });

  test('bodies over --max-body-bytes get 413 (Content-Length and chunked)', T, async () => {
    const m = await startMock(['--max-body-bytes', '1024']);
    const res = await post(m.url, '/v1/chat/completions', 'x'.repeat(4096));
    assert.equal(res.status, 413);
    assertOpenAIError(await res.json());
    const ok = await post(m.url, '/v1/chat/completions', chatBody('small'));
    assert.equal(ok.status, 200);
    await ok.body.cancel();
    const chunk = 'y'.repeat(600);
    const { buf, closed } = await raw(m.port, [
      'POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
      `${(600).toString(16)}\r\n${chunk}\r\n`, `${(600).toString(16)}\r\n${chunk}\r\n`, '0\r\n\r\n',
    ], { gapMs: 20 });
    assert.ok(closed);
    assert.equal(parseResponses(buf)[0].status, 413);
    await stopMock(m.proc);
  });
});

describe('HTTP/1.1 behaviour', () => {
  test('pipelined requests are answered in order on one connection', T, async () => {
    const chat = (model) => {
      const b = JSON.stringify({ model, messages: [{ role: 'user', content: model }] });
      return `POST /p/v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
    };
    const reqs = chat('one') + 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n' +
      chat('two').replace('\r\n\r\n', '\r\nx-mock-latency-ms: 100\r\n\r\n') + chat('three') +
      'GET /v1/models/gpt-4o HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
    const { buf, closed } = await raw(M.port, reqs);
    assert.ok(closed, 'Connection: close honoured');
    const rs = parseResponses(buf);
    assert.equal(rs.length, 5);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.equal(JSON.parse(rs[0].body).model, 'one');
    assert.deepEqual(JSON.parse(rs[1].body), { status: 'ok' });
    assert.equal(JSON.parse(rs[2].body).model, 'two');
    assert.equal(JSON.parse(rs[3].body).model, 'three');
    assert.equal(JSON.parse(rs[4].body).id, 'gpt-4o');
    assert.equal(rs[4].headers.connection, 'close');
  });

  test('chunked request body and Expect: 100-continue', T, async () => {
    const b = JSON.stringify(chatBody('chunked body works'));
    const half = Math.floor(b.length / 2);
    const { buf } = await raw(M.port, [
      'POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
      `${half.toString(16)}\r\n${b.slice(0, half)}\r\n`,
      `${(b.length - half).toString(16)}\r\n${b.slice(half)}\r\n0\r\n\r\n`,
    ], { gapMs: 20, done: (x) => parseResponses(x).length === 1 });
    const [r] = parseResponses(buf);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'This is a mock reply to: chunked body works');

    const b2 = JSON.stringify(chatBody('continue please'));
    const waitFor100 = async (get) => {
      const t0 = Date.now();
      while (!get().toString().includes('100 Continue')) {
        if (Date.now() - t0 > 3000) throw new Error('no 100 Continue');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const res = await raw(M.port, [
      `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${b2.length}\r\n\r\n`,
      waitFor100, b2,
    ], { done: (x) => parseResponses(x).length === 2 });
    const rs = parseResponses(res.buf);
    assert.equal(rs[0].status, 100);
    assert.equal(rs[1].status, 200);
    assert.equal(JSON.parse(rs[1].body).choices[0].message.content, 'This is a mock reply to: continue please');
  });

  test('latency and chunk-delay headers delay the answer', T, async () => {
    let t0 = Date.now();
    const r = await post(M.url, '/v1/chat/completions', chatBody('slow'), { 'x-mock-latency-ms': '250' });
    await r.json();
    assert.ok(Date.now() - t0 >= 240, `latency ${Date.now() - t0}`);
    t0 = Date.now();
    const s = await post(M.url, '/v1/chat/completions', chatBody('slow stream', { stream: true }), { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '50' });
    const ev = sseEvents(await s.text());
    // 1 role + 4 content + finish + [DONE] = 7 events, 6 gaps of 50 ms
    assert.equal(ev.length, 7);
    assert.ok(Date.now() - t0 >= 280, `stream took ${Date.now() - t0}`);
    const bad = await post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-latency-ms': 'soon' });
    assert.equal(bad.status, 400);
    await bad.body.cancel();
  });
});

describe('fault injection', () => {
  test('status faults return OpenAI-shaped errors', T, async () => {
    const r429 = await post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-fault': '429' });
    assert.equal(r429.status, 429);
    assert.equal(r429.headers.get('retry-after'), '1');
    const e429 = await r429.json();
    assert.equal(e429.error.type, 'requests');
    assert.equal(e429.error.code, 'rate_limit_exceeded');
    const r429b = await post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-fault': '429', 'x-mock-retry-after': '7' });
    assert.equal(r429b.headers.get('retry-after'), '7');
    await r429b.body.cancel();
    for (const [code, type] of [['500', 'server_error'], ['503', 'server_error'], ['400', 'invalid_request_error'], ['401', 'invalid_request_error'], ['404', 'invalid_request_error']]) {
      const r = await post(M.url, '/v1/embeddings', { model: 'e', input: 'x' }, { 'x-mock-fault': code });
      assert.equal(r.status, Number(code));
      assertOpenAIError(await r.json(), type);
    }
    const unk = await post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-fault': 'explode' });
    assert.equal(unk.status, 400);
    await unk.body.cancel();
  });

  test('malformed: 200 with a broken JSON body', T, async () => {
    const r = await post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-fault': 'malformed' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    const t = await r.text();
    assert.equal(t, '{"id": "chatcmpl-broken", "choices": [');
    assert.throws(() => JSON.parse(t));
  });

  test('hang: no answer until the client gives up; the request is recorded', T, async () => {
    await fetch(M.url + '/mock/requests', { method: 'DELETE', signal: sig() });
    const t0 = Date.now();
    await assert.rejects(
      fetch(M.url + '/hang/v1/chat/completions', { method: 'POST', body: JSON.stringify(chatBody('hang')), headers: { 'x-mock-fault': 'hang' }, signal: AbortSignal.timeout(300) }),
      (e) => e.name === 'TimeoutError' || e.name === 'AbortError');
    assert.ok(Date.now() - t0 >= 290);
    const recs = await (await fetch(M.url + '/mock/requests', { signal: sig() })).json();
    assert.equal(recs.length, 1);
    assert.equal(recs[0].path, '/hang/v1/chat/completions');
    // the server is still fine afterwards
    assert.equal((await fetch(M.url + '/healthz', { signal: sig() })).status, 200);
  });

  test('reset: the connection is reset without a response', T, async () => {
    await assert.rejects(post(M.url, '/v1/chat/completions', chatBody('x'), { 'x-mock-fault': 'reset' }));
    const sock = await raw(M.port, `GET /v1/models HTTP/1.1\r\nHost: a\r\nx-mock-fault: reset\r\n\r\n`).catch((e) => e);
    assert.ok(sock instanceof Error ? sock.code === 'ECONNRESET' : sock.buf.length === 0, String(sock));
  });

  test('cut: half a body (Content-Length kept), or half the events without the last chunk', T, async () => {
    const b = JSON.stringify(chatBody('cut me'));
    const { buf, closed } = await raw(M.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nx-mock-fault: cut\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
    assert.ok(closed);
    const s = buf.toString();
    const head = s.slice(0, s.indexOf('\r\n\r\n'));
    const body = s.slice(s.indexOf('\r\n\r\n') + 4);
    const cl = Number(head.match(/Content-Length: (\d+)/)[1]);
    assert.equal(body.length, Math.floor(cl / 2));
    assert.ok(cl > 100);
    await assert.rejects(async () => {
      const r = await post(M.url, '/v1/chat/completions', chatBody('cut me'), { 'x-mock-fault': 'cut' });
      await r.json();
    });

    const sb = JSON.stringify(chatBody('cut my stream', { stream: true }));
    const st = await raw(M.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nx-mock-fault: cut\r\nContent-Length: ${sb.length}\r\n\r\n${sb}`);
    assert.ok(st.closed);
    const text = st.buf.toString();
    assert.match(text, /Transfer-Encoding: chunked/);
    assert.ok(!text.includes('[DONE]'));
    assert.ok(!text.endsWith('0\r\n\r\n'));
    const events = (text.match(/data: /g) || []).length;
    assert.equal(events, Math.floor((1 + 8 + 1 + 1) / 2));
  });

  test('fail-times: only the first N requests with a key fail', T, async () => {
    await fetch(M.url + '/mock/faults', { method: 'DELETE', signal: sig() });
    const h = (key) => ({ 'x-mock-fault': '503', 'x-mock-fault-key': key, 'x-mock-fail-times': '2' });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(M.url, '/v1/chat/completions', chatBody('retry'), h('k1'));
      statuses.push(r.status);
      await r.body.cancel();
    }
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    const other = await post(M.url, '/v1/chat/completions', chatBody('retry'), h('k2'));
    assert.equal(other.status, 503);
    await other.body.cancel();
    const zero = await post(M.url, '/v1/chat/completions', chatBody('retry'), { 'x-mock-fault': '500', 'x-mock-fault-key': 'k3', 'x-mock-fail-times': '0' });
    assert.equal(zero.status, 200);
    await zero.body.cancel();
  });
});

describe('request recording', () => {
  test('/mock/requests records method, path, lowercase headers and body; DELETE clears', T, async () => {
    await fetch(M.url + '/mock/requests', { method: 'DELETE', signal: sig() });
    const body = JSON.stringify(chatBody('record me'));
    await (await fetch(M.url + '/armA/v1/chat/completions?x=1', { method: 'POST', body, headers: { 'X-Custom-Thing': 'Value 1', Authorization: 'Bearer sk-test' }, signal: sig() })).text();
    await (await fetch(M.url + '/healthz', { signal: sig() })).text();
    await (await fetch(M.url + '/armB/v1/models', { signal: sig() })).text();
    const recs = await (await fetch(M.url + '/mock/requests', { signal: sig() })).json();
    assert.equal(recs.length, 2);
    assert.equal(recs[0].method, 'POST');
    assert.equal(recs[0].path, '/armA/v1/chat/completions?x=1');
    assert.equal(recs[0].headers['x-custom-thing'], 'Value 1');
    assert.equal(recs[0].headers.authorization, 'Bearer sk-test');
    assert.equal(recs[0].body, body);
    assert.equal(recs[1].method, 'GET');
    assert.equal(recs[1].path, '/armB/v1/models');
    assert.equal(recs[1].body, '');
    assert.equal(recs[1].seq, recs[0].seq + 1);
    await fetch(M.url + '/mock/requests', { method: 'DELETE', signal: sig() });
    assert.deepEqual(await (await fetch(M.url + '/mock/requests', { signal: sig() })).json(), []);
  });

  test('the ring keeps the last 1000 requests, bodies capped at 64 KiB', T, async () => {
    await fetch(M.url + '/mock/requests', { method: 'DELETE', signal: sig() });
    const big = JSON.stringify(chatBody('z'.repeat(100 * 1024)));
    await (await post(M.url, '/v1/chat/completions', big)).text();
    // 1005 small requests, pipelined over a few raw connections to keep it quick
    const one = 'GET /ring/v1/models HTTP/1.1\r\nHost: a\r\n\r\n';
    for (let k = 0; k < 5; k++) {
      const n = k < 4 ? 200 : 205;
      const { buf } = await raw(M.port, one.repeat(n - 1) + one.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
      assert.equal(parseResponses(buf).length, n);
    }
    const recs = await (await fetch(M.url + '/mock/requests', { signal: sig() })).json();
    assert.equal(recs.length, 1000);
    assert.ok(recs.every((r) => r.path === '/ring/v1/models'));
    for (let i = 1; i < recs.length; i++) assert.equal(recs[i].seq, recs[i - 1].seq + 1);
    await fetch(M.url + '/mock/requests', { method: 'DELETE', signal: sig() });
    await (await post(M.url, '/v1/chat/completions', big)).text();
    const [r] = await (await fetch(M.url + '/mock/requests', { signal: sig() })).json();
    assert.equal(Buffer.byteLength(r.body), 64 * 1024);
    assert.equal(r.body, big.slice(0, 64 * 1024));
  });
});

// Last: the shared instance has served everything above; it must still shut
// down cleanly (under ASan, a leak at exit turns the exit code non-zero).
test('shared instance exits 0 on SIGTERM after the whole suite', T, async () => {
  process.kill(M.proc.pid, 'SIGTERM');
  assert.deepEqual(await waitExit(M.proc, 5000), { code: 0, signal: null });
});
