// Helpers for the capture-store integration tests (capture*.test.mjs):
// switchyardctl wrappers that read a gateway's LMDB store, feedback calls,
// Prometheus parsing, and a gateway start that reuses a given data dir (for
// kill -9 / restart cycles).

import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  requireEnv, runToExit, startProcess, tempDir, GATEWAY_READY, UPSTREAM_KEY,
  UPSTREAM_KEY_ENV, newClientKey, sha256hex, sleep, SLOW,
} from './harness.mjs';

/** The LMDB folder of a gateway started by harness.startGateway(). */
export function dataDirOf(gw) {
  return gw.dataDir ?? join(gw.dir, 'data');
}

/** Runs switchyardctl; throws (with its stderr) unless it exits 0. */
export async function ctl(args, opts = {}) {
  const r = await runToExit(requireEnv('SWITCHYARDCTL_BIN'), args, { timeoutMs: 20000 * SLOW, ...opts });
  if (r.code !== 0) {
    throw new Error(`switchyardctl ${args.join(' ')}: exit ${r.code} signal ${r.signal}\n` +
      `stderr:\n${r.stderr.slice(-4000)}\nstdout:\n${r.stdout.slice(-2000)}`);
  }
  return r;
}

/** `captures list --json`: every record's summary, newest first. */
export async function listCaptures(dir, limit = 100000) {
  const r = await ctl(['captures', 'list', '--db', dir, '--json', '--limit', String(limit)]);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** `captures show ID`: the full record (request/response parsed). */
export async function showCapture(dir, id) {
  const r = await ctl(['captures', 'show', String(id), '--db', dir, '--json']);
  return JSON.parse(r.stdout);
}

/** `captures stats --json`. */
export async function captureStats(dir) {
  const r = await ctl(['captures', 'stats', '--db', dir, '--json']);
  return JSON.parse(r.stdout);
}

/**
 * Polls `captures list` until `pred(records)` holds (the writer commits
 * asynchronously, within flush_ms of a response). Returns the records.
 */
export async function waitForCaptures(dir, pred, { timeoutMs = 3000 * SLOW, what = 'captures' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let recs = [];
  for (;;) {
    recs = await listCaptures(dir);
    if (pred(recs)) return recs;
    if (Date.now() > deadline) {
      throw new Error(`timeout after ${timeoutMs} ms waiting for ${what}; ` +
        `store holds ${recs.length} records`);
    }
    await sleep(50);
  }
}

const readLines = (f) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim())
  .map((l) => JSON.parse(l));

/**
 * `switchyardctl export` into temp files. Returns { train, pairs, summary }
 * (train/pairs: parsed JSONL lines; summary: the --json-summary object).
 */
export async function exportStore(dir, extra = []) {
  const out = tempDir('sy-exp-');
  const trainF = join(out, 'train.jsonl');
  const pairsF = join(out, 'pairs.jsonl');
  const r = await ctl(['export', '--db', dir, '--out', trainF, '--pairs-out', pairsF,
    '--json-summary', ...extra]);
  const m = /\{"scanned".*\}\s*$/m.exec(r.stderr);
  if (!m) throw new Error(`export: no JSON summary on stderr:\n${r.stderr.slice(-2000)}`);
  return { train: readLines(trainF), pairs: readLines(pairsF), summary: JSON.parse(m[0]) };
}

/** POST /v1/feedback with `body` (object or raw string). Returns { status, json, text }. */
export async function postFeedback(gw, body, { key = gw.key, headers = {} } = {}) {
  const r = await fetch(`${gw.url}/v1/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5000 * SLOW),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* the caller asserts */ }
  return { status: r.status, json, text };
}

/** GET /metrics parsed into { 'name' or 'name{labels}': number }. */
export async function metrics(gw) {
  const r = await fetch(`${gw.url}/metrics`, { signal: AbortSignal.timeout(5000 * SLOW) });
  if (r.status !== 200) throw new Error(`GET /metrics: status ${r.status}`);
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(\S+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * Starts switchyard on an explicit data dir (kept across restarts), in front
 * of `upstreamUrl`. opts: key, args, config (merged), auth=false, workers,
 * configDir (where config.json goes; default a new temp dir).
 */
export async function startGatewayAt(upstreamUrl, dataDir, opts = {}) {
  const dir = opts.configDir ?? tempDir('sy-gwc-');
  const key = opts.key ?? newClientKey();
  const config = {
    listen: '127.0.0.1:0',
    log_level: 'info',
    upstreams: [{ name: 'mock', base_url: upstreamUrl, api_key_env: UPSTREAM_KEY_ENV,
      connect_timeout_ms: 2000, timeout_ms: 30000 }],
    client_keys: [{ name: 'it', sha256: sha256hex(key) }],
    ...(opts.config ?? {}),
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const args = ['--config', configPath, '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--workers', String(opts.workers ?? 2)];
  if (opts.auth === false) args.push('--no-auth');
  args.push(...(opts.args ?? []));
  const proc = await startProcess(requireEnv('SWITCHYARD_BIN'), args, {
    name: 'switchyard', ready: GATEWAY_READY, env: { [UPSTREAM_KEY_ENV]: UPSTREAM_KEY },
    cwd: dir,
  });
  return Object.assign(proc, { key, base: proc.url + '/v1', dir, dataDir, configPath });
}

/** A raw chat request through the gateway with fetch. Returns { status, headers, text }. */
export async function rawChat(gw, text, { stream = false, headers = {}, key = gw.key,
  timeoutMs = 10000 * SLOW } = {}) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream,
      messages: [{ role: 'user', content: text }] }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}
