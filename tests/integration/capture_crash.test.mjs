// kill -9 during steady load, several times, on one data dir. After each
// crash the gateway must reopen the store, every record must read back and
// export cleanly, and every capture whose response the client had fully
// received well before the kill must be there (a process crash loses only
// what was not yet committed: at most flush_ms plus one commit, in every
// durability mode; see store/store.h).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  startMock, stopAll, marker, sleep, tempDir, newClientKey, SLOW,
} from './lib/harness.mjs';
import {
  startGatewayAt, captureStats, listCaptures, exportStore, rawChat,
} from './lib/capture.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

const CAP = 'x-switchyard-capture-id';
// What "durable" may take after the response in the test's promise; the
// gateway's own bound is flush_ms (10) plus one commit.
const GRACE_MS = 1000;
const WORKERS = 4;
const PER_WORKER_MAX = 300;   // bounds each round even if the kill came late
const PACE_MS = 12;           // per worker between requests: a few hundred req/s in all

/**
 * Runs paced load until stop() is called. Returns { stop, done } where
 * done resolves to { acked: [{ id, at }], failed, sent, noHeader }.
 */
function load(gw, tag) {
  let stopping = false;
  const acked = [];
  let failed = 0;
  let sent = 0;
  let noHeader = 0;
  const worker = async (w) => {
    for (let i = 0; i < PER_WORKER_MAX && !stopping; i++) {
      const stream = (i + w) % 2 === 0;
      sent++;
      try {
        const r = await rawChat(gw, `crash ${tag} w${w} i${i} ${marker()}`,
          { stream, timeoutMs: 5000 * SLOW });
        // Fully received: the whole body, and for a stream its [DONE].
        if (r.status === 200 && (!stream || r.text.includes('data: [DONE]'))) {
          const id = r.headers.get(CAP);
          if (id) acked.push({ id, at: Date.now() });
          else noHeader++;
        } else {
          failed++;
        }
      } catch {
        failed++; // the kill cut it
      }
      await sleep(PACE_MS);
    }
  };
  const done = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
    .then(() => ({ acked, failed, sent, noHeader }));
  return { stop: () => { stopping = true; }, done, acked };
}

test('kill -9 under load, repeatedly: store reopens, records intact, acknowledged captures kept',
  { timeout: 240000 * SLOW }, async (t) => {
    const dataDir = join(tempDir('sy-crash-'), 'data');
    const configDir = tempDir('sy-crash-cfg-');
    const key = newClientKey();
    // Three rounds in the default (sync) mode, then one in nosync: a process
    // crash loses nothing committed in any mode.
    const modes = ['sync', 'sync', 'sync', 'nosync'];
    const start = (mode) => startGatewayAt(mock.url + '/v1', dataDir, {
      key, configDir, args: ['--capture-durability', mode] });
    let gw = await start(modes[0]);
    const allAcked = new Map(); // id -> time received
    let storedBefore = new Set();
    let maxIdBefore = 0n;
    const report = [];

    for (const [round, mode] of modes.entries()) {
      const l = load(gw, `r${round}`);
      // Kill somewhere in 2-3 s of load, but only once enough is acknowledged
      // long enough ago to make the check meaningful.
      const t0 = Date.now();
      const killAfter = 2000 + Math.floor(Math.random() * 1000);
      while (Date.now() - t0 < killAfter ||
        l.acked.filter((a) => a.at < Date.now() - GRACE_MS).length < 50) {
        if (Date.now() - t0 > 20000 * SLOW) break;
        await sleep(20);
      }
      const killAt = Date.now();
      gw.kill();
      const info = await gw.exited;
      assert.equal(info.signal, 'SIGKILL', `round ${round}: the gateway was killed`);
      l.stop();
      const { acked, failed, sent, noHeader } = await l.done;
      assert.equal(noHeader, 0, `round ${round}: every 200 carries ${CAP}`);
      for (const a of acked) allAcked.set(a.id, a.at);
      for (const a of acked) {
        assert.ok(BigInt(a.id) > maxIdBefore,
          `round ${round}: id ${a.id} is above every id before the restart (${maxIdBefore})`);
      }

      // Restart on the same dir: the listening line means the store opened.
      gw = await start(modes[round + 1] ?? 'sync');
      const st = await captureStats(dataDir);
      assert.equal(st.unreadable, 0, `round ${round}: no unreadable records`);
      const stored = new Set((await listCaptures(dataDir)).map((r) => r.id));
      assert.equal(stored.size, st.captures);
      for (const id of storedBefore) {
        assert.ok(stored.has(id), `round ${round}: record ${id} from an earlier round survives`);
      }
      const old = acked.filter((a) => a.at <= killAt - GRACE_MS);
      const missingOld = old.filter((a) => !stored.has(a.id));
      const recent = acked.filter((a) => a.at > killAt - GRACE_MS);
      const lostRecent = recent.filter((a) => !stored.has(a.id));
      const lostAges = lostRecent.map((a) => killAt - a.at);
      const newest = lostAges.length ? Math.max(...lostAges) : 0;
      report.push(`round ${round} (${mode}): sent ${sent}, acknowledged ${acked.length}, ` +
        `failed/cut ${failed}; acknowledged >= ${GRACE_MS} ms before the kill: ${old.length}, ` +
        `missing ${missingOld.length}; in the last ${GRACE_MS} ms: ${recent.length}, lost ` +
        `${lostRecent.length}${lostRecent.length ? ` (oldest lost acked ${newest} ms before the kill)` : ''}`);
      assert.ok(old.length >= 50, `round ${round}: only ${old.length} old acknowledged captures`);
      assert.deepEqual(missingOld.map((a) => a.id), [],
        `round ${round}: captures acknowledged >= ${GRACE_MS} ms before kill -9 are missing`);

      // Every record reads back and exports as a valid fine-tuning line.
      const exp = await exportStore(dataDir, ['--include-errors']);
      const s = exp.summary;
      assert.equal(s.corrupt, 0, `round ${round}: ${JSON.stringify(s)}`);
      assert.equal(s.scanned, stored.size);
      assert.equal(s.filtered.invalid, 0);
      assert.equal(s.filtered.unparseable, 0);
      assert.equal(s.written, stored.size, `round ${round}: every record exported: ${JSON.stringify(s)}`);
      storedBefore = stored;
      maxIdBefore = [...stored].reduce((m, id) => (BigInt(id) > m ? BigInt(id) : m), 0n);
    }
    for (const line of report) t.diagnostic(line);
    console.log(report.join('\n'));

    // The last restart serves and captures, then stops cleanly.
    const r = await rawChat(gw, `after crashes ${marker()}`);
    assert.equal(r.status, 200);
    assert.ok(BigInt(r.headers.get(CAP)) > maxIdBefore, 'ids keep increasing across restarts');
    assert.equal(await gw.stop(), 0);
    const st = await captureStats(dataDir);
    assert.equal(st.captures, storedBefore.size + 1);
    assert.equal(st.unreadable, 0);
    assert.equal(await mock.stop(), 0);
  });
