// Process and socket helpers for switchyard's integration tests.
//
// Every process started here is tracked; call `stopAll()` from an `after()`
// hook so nothing outlives its test file, and use `proc.stop()` inside a test
// to assert a clean exit (code 0 after SIGTERM, no sanitizer report).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export const SANITIZED = process.env.SY_SANITIZE === '1';
// Instrumented binaries start and stop slower; give them more room.
export const SLOW = SANITIZED ? 3 : 1;

const SANITIZER_MARKERS = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:',
  'ThreadSanitizer', 'MemorySanitizer'];

/** Returns the sanitizer report lines found in `text` ('' when clean). */
export function sanitizerReport(text) {
  if (!SANITIZER_MARKERS.some((m) => text.includes(m))) return '';
  return text;
}

/** Throws when a process's output carries a sanitizer report. */
export function assertNoSanitizerReport(name, text) {
  const rep = sanitizerReport(text);
  if (rep) {
    throw new Error(`${name}: sanitizer report on stderr:\n${tail(rep, 8000)}`);
  }
}

function tail(s, n) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

export function requireEnv(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the integration tests through ctest ` +
      `(or set ${name} to the binary's path)`);
  }
  // Processes run in their own temp dirs, so a relative path must be made absolute.
  return name.endsWith('_BIN') ? resolve(v) : v;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with `what` if `p` does not settle within `ms`. */
export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const tracked = new Set();
const tempDirs = new Set();

/** A fresh temp dir, removed by stopAll(). */
export function tempDir(prefix = 'sy-it-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/**
 * Starts `bin args`, waits until a stdout line matches `ready` (a RegExp
 * whose group 1 is the URL). Resolves to a handle:
 *   { url, port, pid, child, name, stdout(), stderr(), exited, stop(), kill() }
 * Rejects (after killing the process) if it exits or the line does not
 * appear within `timeoutMs`.
 */
export async function startProcess(bin, args, { name = bin, ready, env = {},
  timeoutMs = 5000 * SLOW, cwd } = {}) {
  const child = spawn(bin, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd,
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { err += d; });

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.on('error', (e) => {
      exitInfo = { code: null, signal: null, error: e };
      resolve(exitInfo);
    });
  });

  const proc = {
    name,
    child,
    pid: child.pid,
    url: null,
    port: null,
    exited,
    stdout: () => out,
    stderr: () => err,
    get exitInfo() { return exitInfo; },
    /**
     * SIGTERM, wait up to `timeoutMs`; on timeout SIGKILL and throw. Returns
     * the exit code. With `check` (default) it also throws on a non-zero
     * exit or a sanitizer report.
     */
    async stop({ timeoutMs = 10000 * SLOW, check = true, signal = 'SIGTERM' } = {}) {
      tracked.delete(proc);
      if (!exitInfo) child.kill(signal);
      const timer = setTimeout(() => { if (!exitInfo) child.kill('SIGKILL'); }, timeoutMs);
      const info = await exited;
      clearTimeout(timer);
      await drained(child);
      if (info.signal === 'SIGKILL') {
        throw new Error(`${name} did not exit within ${timeoutMs} ms of ${signal}; killed.\n` +
          `stderr:\n${tail(err, 4000)}`);
      }
      if (check) proc.check();
      return info.code;
    },
    /** Throws unless the process exited with code 0 and printed no sanitizer report. */
    check() {
      assertNoSanitizerReport(name, err);
      if (exitInfo && exitInfo.code !== 0) {
        throw new Error(`${name} exited with code ${exitInfo.code} signal ${exitInfo.signal}` +
          `\nstderr:\n${tail(err, 4000)}`);
      }
    },
    kill() {
      tracked.delete(proc);
      if (!exitInfo) child.kill('SIGKILL');
    },
  };
  tracked.add(proc);

  let buffered = '';
  const readyP = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (proc.url) return;
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        const m = ready.exec(line);
        if (m) {
          proc.url = m[1];
          proc.port = Number(new URL(m[1]).port);
          resolve(proc);
          return;
        }
      }
    });
    exited.then((info) => reject(new Error(
      `${name} exited (code ${info.code}, signal ${info.signal}${info.error ? ', ' + info.error.message : ''}) ` +
      `before printing its listening line.\nstdout:\n${tail(out, 2000)}\nstderr:\n${tail(err, 4000)}`)));
  });
  try {
    return await withTimeout(readyP, timeoutMs, `${name} listening line`);
  } catch (e) {
    proc.kill();
    throw new Error(`${e.message}\nstdout:\n${tail(out, 2000)}\nstderr:\n${tail(err, 4000)}`);
  }
}

// 'exit' can fire before the pipes are drained; wait for them so the
// sanitizer check sees the whole report.
function drained(child) {
  const waitClose = (s) => (s && !s.closed && !s.destroyed
    ? new Promise((r) => { s.once('close', r); setTimeout(r, 2000); })
    : null);
  return Promise.all([waitClose(child.stdout), waitClose(child.stderr)].filter(Boolean));
}

/**
 * Stops every process still running (SIGTERM, then SIGKILL) and removes the
 * temp dirs. Throws if any of them exited uncleanly or printed a sanitizer
 * report, so an `after(stopAll)` hook fails the file.
 */
export async function stopAll() {
  const errors = [];
  const procs = [...tracked];
  tracked.clear();
  await Promise.all(procs.map(async (p) => {
    try {
      await p.stop();
    } catch (e) {
      errors.push(e.message);
    }
  }));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  if (errors.length) throw new Error(errors.join('\n\n'));
}

/* ---------------------------------------------------------------- mock */

export const MOCK_READY = /^switchyard-mock listening on (http:\/\/\S+)$/;
export const GATEWAY_READY = /^switchyard listening on (http:\/\/\S+)$/;

/** Starts switchyard-mock on a free loopback port. */
export function startMock(extraArgs = [], opts = {}) {
  return startProcess(requireEnv('MOCK_BIN'), ['--listen', '127.0.0.1:0', ...extraArgs],
    { name: 'switchyard-mock', ready: MOCK_READY, ...opts });
}

/** The mock's reply to a chat whose last user message is `text`. */
export function mockReply(text) {
  return `This is a mock reply to: ${text}`;
}

/** GET /mock/requests: what the mock received, oldest first. */
export async function mockRequests(mock) {
  const r = await fetch(`${mock.url}/mock/requests`, { signal: AbortSignal.timeout(5000) });
  if (r.status !== 200) throw new Error(`GET /mock/requests: status ${r.status}`);
  return r.json();
}

/** Finds the mock's recorded requests whose body contains `marker`. */
export async function mockRequestsWith(mock, marker) {
  const all = await mockRequests(mock);
  return all.filter((q) => typeof q.body === 'string'
    ? q.body.includes(marker) : JSON.stringify(q.body ?? '').includes(marker));
}

/* ------------------------------------------------------------- gateway */

export const UPSTREAM_KEY = 'sk-upstream-' + randomBytes(8).toString('hex');
export const UPSTREAM_KEY_ENV = 'SY_IT_UPSTREAM_KEY';

export function sha256hex(s) {
  return createHash('sha256').update(s).digest('hex');
}

export function newClientKey() {
  return 'sy-test-' + randomBytes(16).toString('hex');
}

/** A port that nothing listens on (bound, then closed). */
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * Starts switchyard in front of `upstreamUrl` (the upstream's base URL,
 * ending in /v1) on a free port with its own data dir and a generated config
 * holding one client key. Returns the process handle plus
 * { key, base (url + '/v1'), dir, configPath }.
 *
 * opts.args: extra flags; opts.auth=false adds --no-auth; opts.config:
 * extra top-level config keys merged into the file; opts.env: extra env.
 */
export async function startGateway(upstreamUrl, opts = {}) {
  const dir = tempDir('sy-gw-');
  const key = opts.key ?? newClientKey();
  const config = {
    listen: '127.0.0.1:0',
    log_level: 'info',
    upstreams: [{
      name: 'mock',
      base_url: upstreamUrl,
      api_key_env: UPSTREAM_KEY_ENV,
      connect_timeout_ms: 2000,
      timeout_ms: 30000,
    }],
    client_keys: [{ name: 'it', sha256: sha256hex(key) }],
    ...(opts.config ?? {}),
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const args = ['--config', configPath, '--listen', '127.0.0.1:0',
    '--data-dir', join(dir, 'data'), '--workers', String(opts.workers ?? 2)];
  if (opts.auth === false) args.push('--no-auth');
  args.push(...(opts.args ?? []));
  const proc = await startProcess(requireEnv('SWITCHYARD_BIN'), args, {
    name: 'switchyard',
    ready: GATEWAY_READY,
    env: { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY, ...(opts.env ?? {}) },
    cwd: dir,
  });
  return Object.assign(proc, { key, base: proc.url + '/v1', dir, configPath });
}

/** Runs a binary to completion: { code, signal, stdout, stderr }. */
export function runToExit(bin, args, { input, env = {}, timeoutMs = 10000 * SLOW, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, cwd,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')}: still running after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/* ---------------------------------------------------------- raw HTTP */

/**
 * Parses as many complete HTTP/1.1 responses as `buf` holds. Returns
 * { responses: [{status, reason, headers (lowercase names; repeated names
 * joined with ', '), body (Buffer), raw}], rest (Buffer) }. A response with
 * neither Content-Length nor chunked encoding ends at connection close, so
 * it is only returned when `eof` is true. 1xx responses are returned too.
 */
export function parseResponses(buf, eof = false) {
  const responses = [];
  let off = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', off);
    if (headEnd < 0) break;
    const head = buf.subarray(off, headEnd).toString('latin1');
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c <= 0) throw new Error(`bad header line: ${JSON.stringify(l)}`);
      const k = l.slice(0, c).trim().toLowerCase();
      const v = l.slice(c + 1).trim();
      headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    }
    let p = headEnd + 4;
    let body;
    if (status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      let done = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          // Trailers (none expected) end with an empty line.
          const te = buf.indexOf('\r\n\r\n', le);
          if (te < 0 && buf.indexOf('\r\n', le + 2) !== le + 2) break;
          p = te >= 0 ? te + 4 : le + 4;
          done = true;
          break;
        }
        if (buf.length < le + 2 + size + 2) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!done) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      if (!eof) break;
      body = buf.subarray(p);
      p = buf.length;
    }
    responses.push({ status, reason: m[2] ?? '', headers, body,
      text: body.toString('utf8'), raw: buf.subarray(off, p) });
    off = p;
  }
  return { responses, rest: buf.subarray(off) };
}

/**
 * A raw TCP client for HTTP tests. `await conn.connect()`, then write() and
 * read responses with readResponses(n). Everything is bounded by timeouts.
 */
export class RawConn {
  constructor(port, host = '127.0.0.1') {
    this.port = port;
    this.host = host;
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.waiters = [];
  }

  connect(timeoutMs = 3000) {
    return withTimeout(new Promise((resolve, reject) => {
      const s = net.connect(this.port, this.host);
      this.sock = s;
      s.once('connect', () => resolve(this));
      s.once('error', (e) => { this.error = e; reject(e); });
      s.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
      s.on('close', () => { this.closed = true; this.closedAt = Date.now(); this.wake(); });
      s.on('error', (e) => { this.error = e; this.wake(); });
    }), timeoutMs, `connect to ${this.host}:${this.port}`);
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Writes data; write errors (the peer closed) are recorded, not thrown. */
  write(data) {
    return new Promise((resolve) => {
      if (this.closed || this.sock.destroyed) { resolve(false); return; }
      this.sock.write(data, (e) => { if (e) this.error = e; resolve(!e); });
    });
  }

  /** Resolves when `pred()` is true, or throws after timeoutMs. */
  async waitFor(pred, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Waits for `n` complete non-1xx responses (or the close); returns them, consumed. */
  async readResponses(n = 1, timeoutMs = 5000) {
    let parsed;
    await this.waitFor(() => {
      parsed = parseResponses(this.buf, this.closed);
      return parsed.responses.filter((r) => r.status >= 200).length >= n || this.closed;
    }, timeoutMs, `${n} HTTP response(s)`);
    parsed = parseResponses(this.buf, this.closed);
    const final = parsed.responses.filter((r) => r.status >= 200);
    if (final.length < n) {
      throw new Error(`connection closed after ${final.length} of ${n} responses; ` +
        `received: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
    }
    // Consume exactly up to the n-th final response.
    let consumed = 0;
    let seen = 0;
    const out = [];
    for (const r of parsed.responses) {
      consumed += r.raw.length;
      out.push(r);
      if (r.status >= 200 && ++seen === n) break;
    }
    this.buf = this.buf.subarray(consumed);
    return out.filter((r) => r.status >= 200);
  }

  /** Waits for the peer to close; returns ms from call to close. */
  async waitClosed(timeoutMs) {
    const t0 = Date.now();
    await this.waitFor(() => this.closed, timeoutMs, 'connection close');
    return Date.now() - t0;
  }

  close() {
    if (this.sock && !this.sock.destroyed) this.sock.destroy();
  }
}

/** One request on a fresh connection; returns the parsed response. */
export async function rawRequest(port, data, timeoutMs = 5000) {
  const c = new RawConn(port);
  await c.connect();
  try {
    await c.write(data);
    const [r] = await c.readResponses(1, timeoutMs);
    return r;
  } finally {
    c.close();
  }
}

/** Builds a request: method, path, headers object, body string/Buffer. */
export function httpRequest(method, path, headers = {}, body) {
  const h = { Host: '127.0.0.1', ...headers };
  const b = body === undefined ? undefined : Buffer.from(body);
  if (b !== undefined && !Object.keys(h).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) {
    h['Content-Length'] = String(b.length);
  }
  const head = `${method} ${path} HTTP/1.1\r\n` +
    Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return b === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

/** Asserts an OpenAI-shaped error body; returns the parsed error object. */
export function openaiError(text) {
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`error body is not JSON: ${JSON.stringify(text.slice(0, 300))}`);
  }
  const e = j?.error;
  if (!e || typeof e !== 'object') throw new Error(`no "error" object in ${text.slice(0, 300)}`);
  if (typeof e.message !== 'string' || e.message.length === 0) {
    throw new Error(`error.message missing or empty in ${text.slice(0, 300)}`);
  }
  if (typeof e.type !== 'string' || e.type.length === 0) {
    throw new Error(`error.type missing or empty in ${text.slice(0, 300)}`);
  }
  for (const k of ['param', 'code']) {
    if (!(k in e)) throw new Error(`error.${k} missing (must be present, may be null) in ${text.slice(0, 300)}`);
  }
  return e;
}

/** Splits an SSE body into its `data:` payloads (strings), in order. */
export function sseData(text) {
  const out = [];
  for (const ev of text.split(/\r?\n\r?\n/)) {
    const lines = ev.split(/\r?\n/).filter((l) => l.startsWith('data:'));
    if (lines.length) out.push(lines.map((l) => l.slice(5).replace(/^ /, '')).join('\n'));
  }
  return out;
}

/** Chat request body for `text`. */
export function chatBody(text, extra = {}) {
  return JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], ...extra });
}

/** A unique marker for telling this test's requests apart in /mock/requests. */
export function marker(tag = 'm') {
  return `${tag}-${randomBytes(6).toString('hex')}`;
}
