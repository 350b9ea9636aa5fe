// summarize.mjs - the table and the switchyard/nginx ratios of loadtest/bench.sh.
// usage: node summarize.mjs results.jsonl CLK_TCK table.md header.txt
// results.jsonl: one line per run, {phase, target, rep, report (switchyard-load
// --json file), ticks (CPU ticks of the proxy over the run), anon_kb (peak
// RssAnon), conns (peak established connections), ...phase extras}.
// Prints the markdown table and the ratios block; writes both (with the header
// lines) to table.md. Medians over reps; "added" values are medians of per-rep
// differences against direct in the same rep (the targets run interleaved).
import fs from 'node:fs';

const [resPath, clkArg, outPath, hdrPath] = process.argv.slice(2);
const clk = Number(clkArg);
const rows = fs.readFileSync(resPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
  const r = JSON.parse(l);
  r.d = r.report ? JSON.parse(fs.readFileSync(r.report, 'utf8')) : null;
  return r;
});

const med = (a) => {
  const s = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y), m = s.length >> 1;
  if (!s.length) return NaN;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const get = (phase, t) => rows.filter((r) => r.phase === phase && r.target === t);
const reps = (phase, t) => new Map(get(phase, t).map((r) => [r.rep, r]));
const medOf = (phase, t, f) => med(get(phase, t).map(f));
// median over reps of f(target run) - f(base run of the same rep)
const pairedDelta = (phase, t, base, f, phaseBase = phase) => {
  const a = reps(phase, t), b = reps(phaseBase, base), out = [];
  for (const [rep, r] of a) if (b.has(rep)) out.push(f(r) - f(b.get(rep)));
  return med(out);
};
const failed = (r) => (r.d ? r.d.requests.failed + r.d.requests.unfinished : 0) +
  (r.phase === 'wrk' ? r.wrk_non2xx + r.wrk_connect + r.wrk_read + r.wrk_write + r.wrk_timeout : 0);
const cpuPerReq = (r) => (r.ticks * 1e6 / clk) / r.d.requests.completed;

const targets = [...new Set(rows.filter((r) => r.phase !== 'capture' && r.phase !== 'halfref').map((r) => r.target))];
const D = 'direct';
const A = {};
for (const t of targets) {
  const mx = get('max', t).map((r) => r.d.throughput_rps);
  A[t] = {
    p50: medOf('low', t, (r) => r.d.latency_us.p50),
    p99: medOf('low', t, (r) => r.d.latency_us.p99),
    addP50: pairedDelta('low', t, D, (r) => r.d.latency_us.p50),
    addP99: pairedDelta('low', t, D, (r) => r.d.latency_us.p99),
    max: med(mx),
    spread: mx.length ? (Math.max(...mx) - Math.min(...mx)) / med(mx) : NaN,
    wrk: medOf('wrk', t, (r) => r.wrk_rps),
    cpu: medOf('max', t, cpuPerReq),
    halfP99: medOf('half', t, (r) => r.d.latency_us.p99),
    halfRate: medOf('half', t, (r) => r.rate),
    // against the mock alone at the same offered rate, measured right after (phase halfref)
    addHalfP99: pairedDelta('half', t, t, (r) => r.d.latency_us.p99, 'halfref'),
    ttft: medOf('stream', t, (r) => r.d.ttfb_us.p50),
    addTtft: pairedDelta('stream', t, D, (r) => r.d.ttfb_us.p50),
    streamP50: medOf('stream', t, (r) => r.d.latency_us.p50),
    anon64: Math.max(...get('max', t).map((r) => r.anon_kb)) / 1024,
    anon1000: Math.max(...get('c1000', t).map((r) => r.anon_kb)) / 1024,
    // RssAnon idle just before the c1000 run of the rep with the highest peak
    anon1000Before: (get('c1000', t).reduce((b, r) => (r.anon_kb > b.anon_kb ? r : b), { anon_kb: -1 }).anon_before_kb ?? NaN) / 1024,
    conns1000: Math.min(...get('c1000', t).map((r) => r.conns)),
    errors: rows.filter((r) => r.target === t && r.phase !== 'capture' && r.phase !== 'halfref').reduce((s, r) => s + failed(r), 0),
  };
}

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const sg = (x) => (Number.isFinite(x) ? (x >= 0 ? '+' : '') + x.toFixed(0) : '-');
const out = [];
const p = (s = '') => out.push(s);
const hi = rows.find((r) => r.phase === 'max')?.d.config.connections ?? 64;
const c1k = rows.find((r) => r.phase === 'c1000')?.d.config.connections ?? 1000;
const lowRate = rows.find((r) => r.phase === 'low')?.d.config.rate ?? '?';
p(`| target | p50 µs @${lowRate}/s | p99 µs @${lowRate}/s | added p50 | added p99 | max req/s c=${hi} | wrk req/s c=${hi} | ` +
  `CPU µs/req @max | p99 µs @50% (req/s) | added p99 @50% | TTFT p50 µs | added TTFT | ` +
  `RssAnon@${hi} MiB | RssAnon@${c1k} MiB (idle before; conns) | rps spread | errors |`);
p('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const t of targets) {
  const a = A[t], isD = t === D;
  p(`| ${t} | ${f0(a.p50)} | ${f0(a.p99)} | ${isD ? '-' : sg(a.addP50)} | ${isD ? '-' : sg(a.addP99)} | ` +
    `${f0(a.max)} | ${f0(a.wrk)} | ${f1(a.cpu)} | ${f0(a.halfP99)} (${f0(a.halfRate)}) | ${isD ? '-' : sg(a.addHalfP99)} | ` +
    `${f0(a.ttft)} | ${isD ? '-' : sg(a.addTtft)} | ${f1(a.anon64)} | ${f1(a.anon1000)} (${f1(a.anon1000Before)}; ${a.conns1000}) | ` +
    `${f0(a.spread * 100)}% | ${a.errors} |`);
}

// ratios: sy-Nw (and sy-Nw-nocap) against nginx-Nw
const ratio = (x, y) => x / y;
const verdict = (ok) => (ok ? 'PASS' : 'MISS');
const ratioLines = (sy, ngx, gated) => {
  const s = A[sy], n = A[ngx], L = [];
  const line = (text, ok) => L.push(gated ? `  ${verdict(ok)}  ${text}` : `        ${text}`);
  const thr = ratio(s.max, n.max), wrk = ratio(s.wrk, n.wrk);
  line(`throughput ${thr.toFixed(2)}x (target >= 0.9; ${f0(s.max)} vs ${f0(n.max)} req/s at c=${hi}; wrk cross-check ${Number.isFinite(wrk) ? wrk.toFixed(2) + 'x' : '-'})`, thr >= 0.9);
  const cpu = ratio(s.cpu, n.cpu);
  line(`CPU/req ${cpu.toFixed(2)}x (target <= 1.2; ${f1(s.cpu)} vs ${f1(n.cpu)} µs)`, cpu <= 1.2);
  // a ratio of added p50 means nothing when nginx adds ~nothing; then compare the µs
  const ap = n.addP50 > 0 ? ratio(s.addP50, n.addP50) : NaN;
  line(`added p50 ${Number.isFinite(ap) ? ap.toFixed(2) + 'x' : 'n/a'} (target <= 1.2; ${sg(s.addP50)} vs ${sg(n.addP50)} µs at ${lowRate} req/s)`,
    Number.isFinite(ap) ? ap <= 1.2 : s.addP50 <= n.addP50);
  line(`added p99 @50% ${(s.addHalfP99 / 1000).toFixed(3)} ms (target < 1; p99 ${f0(s.halfP99)} µs at ${f0(s.halfRate)} req/s; nginx ${(n.addHalfP99 / 1000).toFixed(3)} ms)`,
    s.addHalfP99 < 1000);
  const dt = pairedDelta('stream', sy, ngx, (r) => r.d.ttfb_us.p50);
  line(`TTFT delta ${(dt / 1000).toFixed(3)} ms (target <= 0.1; added TTFT ${sg(s.addTtft)} vs ${sg(n.addTtft)} µs)`, dt <= 100);
  line(`RssAnon@${c1k} ${f1(s.anon1000)} MiB (target < 32; ${f1(s.anon1000Before)} MiB idle just before; nginx ${f1(n.anon1000)} MiB; ${s.conns1000} connections seen)`, s.anon1000 < 32);
  const cap = rows.find((r) => r.phase === 'capture' && r.target === sy);
  if (cap) {
    const fl = failed(cap);
    line(`capture drops ${cap.dropped} (target 0; ${cap.rate} req/s open loop for ${f0(cap.d.config.duration_s)}s: ` +
      `${cap.d.requests.ok} ok, ${fl} failed, ${cap.stored} captured of ${cap.d.requests.sent + cap.d.requests.warmup} sent incl. warm-up, ` +
      `p99 ${cap.d.latency_us.p99} µs)`, cap.dropped === 0 && fl === 0);
  }
  return L;
};
for (const t of targets) {
  const m = /^sy-(\d+)w(-nocap)?$/.exec(t);
  if (!m || !A[`nginx-${m[1]}w`]) continue;
  p();
  p(m[2] ? `${t}/nginx-${m[1]}w (the proxy path alone; for information):`
         : `switchyard/nginx (${t}/nginx-${m[1]}w, as users run it):`);
  for (const l of ratioLines(t, `nginx-${m[1]}w`, !m[2])) p(l);
}
p();
p(`Medians over ${Math.max(...rows.map((r) => r.rep))} interleaved rep(s). "added" = target - direct in the same rep ` +
  `(at ${lowRate} req/s open loop; @50%: each target's p99 at 50% of its own max minus direct's p99 at that same offered rate). ` +
  `CPU µs/req = utime+stime of the target's process(es) over the max run / requests completed (nginx: master + workers). ` +
  `RssAnon = peak of the summed RssAnon, sampled every 0.1 s during the run, highest over the reps ` +
  `("idle before" = RssAnon just before that c${c1k} run: what earlier runs left). ` +
  `TTFT = time to the first body byte of a stream:true answer (switchyard-load ttfb p50, from the intended send time). ` +
  `rps spread = (max-min)/median of the max runs. errors = failed + unfinished requests (and wrk's errors).`);

const text = out.join('\n');
console.log(text);
const hdr = hdrPath ? fs.readFileSync(hdrPath, 'utf8').trim() : '';
const gated = text.split('\n').filter((l) => /^\s+(PASS|MISS) /.test(l) || /^(switchyard|sy-)/.test(l) || /^\s{8}\S/.test(l));
fs.writeFileSync(outPath, (hdr ? '```\n' + hdr + '\n```\n\n' : '') +
  out.slice(0, targets.length + 2).join('\n') + '\n\n```\n' + gated.join('\n') + '\n```\n\n' +
  out[out.length - 1] + '\n');
