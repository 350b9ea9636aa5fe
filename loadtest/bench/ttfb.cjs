// ttfb.cjs URL N KEY DELAY_MS: N sequential stream:true chat requests over one
// keep-alive connection; prints one RESULT line with medians/p99 (microseconds)
// of time to response headers, to the first SSE body byte, and to the end.
// The x-mock-chunk-delay-ms header makes the mock pause between events, so a
// proxy that buffered the stream would show first-byte ~= end.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const [url, nStr, key, delayStr] = process.argv.slice(2);
const N = Math.max(1, parseInt(nStr || '50', 10));
const lua = fs.readFileSync(path.join(__dirname, 'chat.lua'), 'utf8');
const m = lua.match(/local body = \[\[(.*)\]\]/);
if (!m) { console.error('ttfb.cjs: body not found in chat.lua'); process.exit(2); }
const body = Buffer.from(m[1] + ',"stream":true}');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const u = new URL(url);

function one() {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let th = 0n, tf = 0n, buf = '';
    const req = http.request({
      agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length,
        Authorization: 'Bearer ' + (key || 'sk-test'),
        'x-mock-chunk-delay-ms': String(delayStr || '2') },
    }, (res) => {
      th = process.hrtime.bigint();
      res.on('data', (d) => { if (!tf) tf = process.hrtime.bigint(); if (buf.length < 1 << 16) buf += d; });
      res.on('end', () => {
        const te = process.hrtime.bigint();
        const ok = res.statusCode === 200 && buf.startsWith('data: ') && buf.includes('data: [DONE]');
        resolve({ ok, hdr: Number(th - t0) / 1e3, first: Number(tf - t0) / 1e3, end: Number(te - t0) / 1e3 });
      });
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ ok: false }));
    req.end(body);
  });
}
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
(async () => {
  await one(); // connect + warm
  const r = [];
  let errs = 0;
  for (let i = 0; i < N; i++) { const x = await one(); if (x.ok) r.push(x); else errs++; }
  agent.destroy();
  if (!r.length) { console.log(`RESULT n=0 errors=${errs}`); return; }
  const f = (k, p) => pct(r.map((x) => x[k]), p).toFixed(0);
  console.log(`RESULT n=${r.length} errors=${errs} hdr_p50=${f('hdr', 50)} first_p50=${f('first', 50)} first_p99=${f('first', 99)} end_p50=${f('end', 50)}`);
})();
