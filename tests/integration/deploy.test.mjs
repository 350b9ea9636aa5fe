// The shipped deploy files against the real gateway: every example config
// under deploy/config/ (and the config.json embedded in the Kubernetes
// ConfigMap) must start switchyard, serve /healthz, /readyz and /metrics,
// route each of its routes, and exit 0 on SIGTERM. The address, data dir
// and default upstream come from flags (they override the file), so the
// files are tested as shipped. Also checks that the stop grace periods in
// the systemd unit and the Deployment exceed the drain timeout, and that the
// Prometheus alerts only name metrics the gateway exports.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startMock, startProcess, stopAll, requireEnv, tempDir, mockRequestsWith, marker,
  GATEWAY_READY, SLOW,
} from './lib/harness.mjs';

const T = { timeout: 90000 * SLOW };
const SRC = process.env.SY_SOURCE_DIR
  ? resolve(process.env.SY_SOURCE_DIR)
  : resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = join(SRC, 'deploy');
const DEFAULT_DRAIN_MS = 30000; // SY_DEFAULT_DRAIN_TIMEOUT_MS (gateway/config.h)

let mock;
const metricsSeen = new Set(); // metric names read from a live /metrics

before(async () => {
  mock = await startMock();
});
after(stopAll);

/** The config.json block scalar of deploy/k8s/configmap.yaml, de-indented. */
function configMapJson() {
  const lines = readFileSync(join(DEPLOY, 'k8s', 'configmap.yaml'), 'utf8').split('\n');
  const at = lines.findIndex((l) => /^\s+config\.json:\s*\|-?\s*$/.test(l));
  assert.ok(at >= 0, 'configmap.yaml has a "config.json: |" block');
  const keyIndent = lines[at].search(/\S/);
  const body = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() !== '' && l.search(/\S/) <= keyIndent) break;
    body.push(l);
  }
  const ind = Math.min(...body.filter((l) => l.trim()).map((l) => l.search(/\S/)));
  return body.map((l) => l.slice(ind)).join('\n');
}

/** [{ name, path, cfg }] for every example config, the ConfigMap's included. */
function exampleConfigs() {
  const dir = join(DEPLOY, 'config');
  const out = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => ({ name: `config/${f}`, path: join(dir, f) }));
  const cmPath = join(tempDir('sy-deploy-cm-'), 'config.json');
  writeFileSync(cmPath, configMapJson());
  out.push({ name: 'k8s/configmap.yaml config.json', path: cmPath });
  for (const c of out) c.cfg = JSON.parse(readFileSync(c.path, 'utf8'));
  return out;
}

const CONFIGS = exampleConfigs();

test('deploy/config holds the three documented examples', () => {
  const names = CONFIGS.map((c) => c.name);
  for (const f of ['production.json', 'cascade.json', 'minimal.json']) {
    assert.ok(names.includes(`config/${f}`), `deploy/config/${f} exists`);
  }
});

function dummyKeys(cfg) {
  const env = { SWITCHYARD_ADMIN_TOKEN: '' }; // "" = unset for the gateway
  for (const u of cfg.upstreams ?? []) {
    if (u.api_key_env) env[u.api_key_env] = `sk-dummy-${u.api_key_env.toLowerCase()}`;
  }
  return env;
}

function defaultUpstream(cfg) {
  return cfg.default_upstream ?? cfg.upstreams[0].name;
}

/** Starts the gateway on `c`'s file with the test overrides. */
async function startWith(c, extra = []) {
  const dir = tempDir('sy-deploy-');
  const dataDir = join(dir, 'data');
  const proc = await startProcess(requireEnv('SWITCHYARD_BIN'), [
    '--config', c.path, '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--upstream-url', `${mock.url}/v1`,
    // Free ports: the files name fixed gRPC ports other tests may hold.
    '--grpc-listen', '127.0.0.1:0', '--grpc-admin-listen', '127.0.0.1:0',
    ...extra,
  ], { name: `switchyard (${c.name})`, ready: GATEWAY_READY, env: dummyKeys(c.cfg), cwd: dir });
  return Object.assign(proc, { dataDir });
}

async function get(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000 * SLOW) });
  return { status: r.status, text: await r.text() };
}

for (const c of CONFIGS) {
  test(`${c.name}: no secrets in the file`, () => {
    const text = readFileSync(c.path, 'utf8');
    assert.doesNotMatch(text, /"api_key"\s*:/, 'keys come from api_key_env, not the file');
    assert.doesNotMatch(text, /\bsk-[A-Za-z0-9]{8,}/, 'no OpenAI-style key in the file');
  });

  test(`${c.name}: starts as shipped, serves health and metrics, exits 0 on SIGTERM`, T, async () => {
    const gw = await startWith(c);
    assert.match(gw.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const h = await get(`${gw.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.text), { status: 'ok' });
    assert.equal((await get(`${gw.url}/readyz`)).status, 200);
    const m = await get(`${gw.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.text, /^switchyard_up 1$/m);
    const capture = c.cfg.capture?.enabled !== false;
    if (capture) assert.match(m.text, /^switchyard_capture_queue_depth \d+$/m);
    for (const line of m.text.split('\n')) {
      const mm = /^(switchyard_[a-z_]+)[ {]/.exec(line);
      if (mm) metricsSeen.add(mm[1]);
    }
    if (c.cfg.auth !== false) {
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
        signal: AbortSignal.timeout(5000 * SLOW),
      });
      assert.equal(r.status, 401, 'auth is on: a call without a client key is refused');
      await r.text();
    }
    assert.equal(await gw.stop(), 0);
    assert.doesNotMatch(gw.stderr(), / error /, 'no error logged');
    if (capture) assert.ok(existsSync(join(gw.dataDir, 'data.mdb')), 'the LMDB store is in --data-dir');
  });

  const routes = c.cfg.routes ?? [];
  if (routes.length === 0) continue;
  test(`${c.name}: every route answers through the default upstream`, T, async () => {
    const gw = await startWith(c, ['--no-auth']);
    const def = defaultUpstream(c.cfg);
    const defKeyEnv = c.cfg.upstreams.find((u) => u.name === def).api_key_env;
    for (const route of routes) {
      // Arms on other upstreams (e.g. vllm.internal) do not resolve here: a
      // request the split sends there must fall back (or escalate) to an arm
      // on the default upstream, which the mock stands in for.
      const onDefault = new Map(route.arms.filter((a) => a.upstream === def)
        .map((a) => [a.name, a.model ?? route.name]));
      assert.ok(onDefault.size > 0, `${route.name}: has an arm on the default upstream`);
      for (const user of ['alice', 'bob', 'carol']) {
        const mk = marker(`deploy-${route.name}`);
        const r = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-switchyard-user': user },
          body: JSON.stringify({ model: route.name, messages: [{ role: 'user', content: mk }] }),
          signal: AbortSignal.timeout(30000 * SLOW),
        });
        const text = await r.text();
        assert.equal(r.status, 200, `${route.name} (${user}): ${text.slice(0, 300)}`);
        const arm = r.headers.get('x-switchyard-arm');
        assert.ok(onDefault.has(arm), `${route.name}: answered by arm ${arm}`);
        const seen = await mockRequestsWith(mock, mk);
        assert.ok(seen.length >= 1, `${route.name}: the mock got the request`);
        const last = seen[seen.length - 1];
        const body = typeof last.body === 'string' ? JSON.parse(last.body) : last.body;
        assert.equal(body.model, onDefault.get(arm), 'the arm\'s model was asked for');
        if (defKeyEnv) {
          assert.equal(last.headers.authorization, `Bearer ${dummyKeys(c.cfg)[defKeyEnv]}`,
            'the upstream key came from api_key_env');
        }
      }
    }
    assert.equal(await gw.stop(), 0);
  });
}

function drainMs(cfg) {
  return cfg.limits?.drain_timeout_ms ?? DEFAULT_DRAIN_MS;
}

test('stop grace periods exceed the drain timeout', () => {
  const prod = CONFIGS.find((c) => c.name === 'config/production.json').cfg;
  const cm = CONFIGS.find((c) => c.name.startsWith('k8s/')).cfg;
  const unit = readFileSync(join(DEPLOY, 'switchyard.service'), 'utf8');
  const stop = /^TimeoutStopSec=(\d+)s?$/m.exec(unit);
  assert.ok(stop, 'the unit sets TimeoutStopSec in seconds');
  assert.ok(Number(stop[1]) * 1000 > drainMs(prod),
    `TimeoutStopSec ${stop[1]} s > drain ${drainMs(prod)} ms`);
  assert.match(unit, /^KillSignal=SIGTERM$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);

  const dep = readFileSync(join(DEPLOY, 'k8s', 'deployment.yaml'), 'utf8');
  const grace = /terminationGracePeriodSeconds:\s*(\d+)/.exec(dep);
  assert.ok(grace, 'the Deployment sets terminationGracePeriodSeconds');
  const pre = /sleep["', \]]+(\d+)/.exec(dep); // the preStop sleep counts against the grace too
  const preMs = pre ? Number(pre[1]) * 1000 : 0;
  assert.ok(Number(grace[1]) * 1000 > drainMs(cm) + preMs,
    `grace ${grace[1]} s > preStop ${preMs} ms + drain ${drainMs(cm)} ms`);
  assert.match(dep, /replicas:\s*1\b/, 'one replica per data volume');
  assert.match(dep, /path:\s*\/readyz/);
  assert.match(dep, /path:\s*\/healthz/);
});

test('the Prometheus rules only name metrics the gateway exports', () => {
  assert.ok(metricsSeen.has('switchyard_up'), 'a /metrics page was read first');
  const rules = readFileSync(join(DEPLOY, 'prometheus', 'switchyard-rules.yaml'), 'utf8');
  const named = new Set(rules.match(/\bswitchyard_[a-z_]+(?=[\s{[)])/g) ?? []);
  for (const want of ['switchyard_up', 'switchyard_capture_dropped_total',
    'switchyard_capture_queue_depth']) {
    assert.ok(named.has(want), `the rules use ${want}`);
  }
  for (const n of named) assert.ok(metricsSeen.has(n), `${n} is exported by /metrics`);
});

test('the mock exits cleanly on SIGTERM', async () => {
  assert.equal(await mock.stop(), 0);
});
