// Helpers for the router integration tests (router*.test.mjs): a gateway
// started from a generated config with several upstreams and routes, where
// every upstream is the same switchyard-mock under a different path prefix
// ("http://127.0.0.1:P/a/v1" is upstream "a"), so the mock's recorded path
// tells which upstream a call went to and the recorded body's "model" which
// arm model was asked for.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  requireEnv, startProcess, tempDir, GATEWAY_READY, UPSTREAM_KEY, UPSTREAM_KEY_ENV,
  newClientKey, sha256hex, sleep, SLOW, mockRequests,
} from './harness.mjs';

/** An upstream entry pointing at `mock` under the path prefix `name`. */
export function mockUpstream(mock, name, extra = {}) {
  return {
    name,
    base_url: `${mock.url}/${name}/v1`,
    api_key_env: UPSTREAM_KEY_ENV,
    connect_timeout_ms: 2000,
    timeout_ms: 30000,
    ...extra,
  };
}

/**
 * Builds the config object. opts:
 *   upstreams: array of upstream entries (the first is the default unless
 *              opts.defaultUpstream names another)
 *   routes:    the "routes" array
 *   keys:      { clientKeyName: secret } (the secrets are hashed into the file)
 *   extra:     more top-level keys
 */
export function routerConfig({ upstreams, routes = [], keys, defaultUpstream, extra = {} }) {
  return {
    listen: '127.0.0.1:0',
    log_level: 'info',
    default_upstream: defaultUpstream ?? upstreams[0].name,
    upstreams,
    client_keys: Object.entries(keys).map(([name, k]) => ({ name, sha256: sha256hex(k) })),
    routes,
    ...extra,
  };
}

/**
 * Starts switchyard on a generated config. opts: upstreams, routes, keys
 * (default { it: <new key> }), defaultUpstream, extra (config keys),
 * workers (default 2), dataDir (kept across restarts when given), configDir,
 * args. Returns the process handle plus:
 *   key (the first key's secret), keys, base, dir, dataDir, configPath, opts,
 *   writeConfig(partial)  rewrites the file with `partial` merged over opts,
 *   writeRaw(text)        writes any text as the config file,
 *   reload({expect})      SIGHUP, then waits for the log line saying the
 *                         routes were reloaded (expect 'ok') or rejected
 *                         ('rejected'); returns that line.
 */
export async function startRouterGateway(opts) {
  const keys = opts.keys ?? { it: newClientKey() };
  const dir = opts.configDir ?? tempDir('sy-rt-');
  const dataDir = opts.dataDir ?? join(dir, 'data');
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(routerConfig({ ...opts, keys }), null, 2));
  const args = ['--config', configPath, '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--workers', String(opts.workers ?? 2), ...(opts.args ?? [])];
  const proc = await startProcess(requireEnv('SWITCHYARD_BIN'), args, {
    name: 'switchyard',
    ready: GATEWAY_READY,
    env: { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY },
    cwd: dir,
  });
  const logs = () => proc.stdout() + proc.stderr();
  return Object.assign(proc, {
    key: Object.values(keys)[0],
    keys,
    base: proc.url + '/v1',
    dir,
    dataDir,
    configPath,
    opts: { ...opts, keys, dataDir, configDir: dir },
    writeConfig(partial) {
      writeFileSync(configPath, JSON.stringify(routerConfig({ ...opts, ...partial, keys }), null, 2));
    },
    writeRaw(text) {
      writeFileSync(configPath, text);
    },
    async reload({ expect = 'ok', timeoutMs = 5000 * SLOW } = {}) {
      const re = expect === 'ok' ? /SIGHUP: routes reloaded[^\n]*/g
        : /SIGHUP: configuration rejected[^\n]*/g;
      const before = (logs().match(re) ?? []).length;
      proc.child.kill('SIGHUP');
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = logs().match(re) ?? [];
        if (m.length > before) return m[m.length - 1];
        if (Date.now() > deadline) {
          throw new Error(`no "${re.source}" log line within ${timeoutMs} ms of SIGHUP; ` +
            `log tail:\n${logs().slice(-2000)}`);
        }
        await sleep(20);
      }
    },
  });
}

/** Restarts a gateway started by startRouterGateway on the same config file and data dir. */
export async function restartRouterGateway(gw) {
  await gw.stop();
  return startRouterGateway(gw.opts);
}

/** A chat body for `model` whose only (last) user message is `text`. */
export function ask(model, text, extra = {}) {
  return { model, messages: [{ role: 'user', content: text }], ...extra };
}

/**
 * POSTs `body` to the gateway's /v1/chat/completions with fetch. Returns
 * { status, headers, text, json (null if not JSON), ms, route, arm, capId }.
 */
export async function post(gw, body, { headers = {}, key = gw.key, timeoutMs = 15000 * SLOW,
  path = '/chat/completions' } = {}) {
  const t0 = Date.now();
  const r = await fetch(gw.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* SSE or an error page: the caller asserts */ }
  return {
    status: r.status,
    headers: r.headers,
    text,
    json,
    ms: Date.now() - t0,
    route: r.headers.get('x-switchyard-route'),
    arm: r.headers.get('x-switchyard-arm'),
    capId: r.headers.get('x-switchyard-capture-id'),
  };
}

/**
 * The mock's recorded calls whose body contains `marker`, oldest first, as
 * { seq, upstream (the path prefix), path, model (the body's), body (parsed), headers }.
 */
export async function callsWith(mock, marker) {
  const all = await mockRequests(mock);
  const out = [];
  for (const q of all) {
    const raw = typeof q.body === 'string' ? q.body : JSON.stringify(q.body ?? '');
    if (!raw.includes(marker)) continue;
    let body = null;
    try { body = typeof q.body === 'string' ? JSON.parse(q.body) : q.body; } catch { /* keep null */ }
    out.push({ seq: q.seq, upstream: q.path.split('/')[1], path: q.path, model: body?.model,
      body, headers: q.headers });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Runs `fn(item, i)` over `items` with at most `n` in flight; results in order. */
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, run));
  return out;
}

/** Counts values: { value: count }. */
export function tally(values) {
  const t = {};
  for (const v of values) t[v] = (t[v] ?? 0) + 1;
  return t;
}
