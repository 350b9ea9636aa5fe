// summarize.cjs RESULTS.tsv TTFB.tsv HWM.tsv CLK_TCK CONNS_HI
// Prints bench.sh's result tables (markdown) as medians over the reps.
'use strict';
const fs = require('fs');
const [resFile, ttfbFile, hwmFile, tckStr, hiStr] = process.argv.slice(2);
const tck = +tckStr, HI = +hiStr;

const kvs = (s) => { const o = {}; s.trim().split(/[\t ]+/).forEach((p) => { const [k, v] = p.split('='); if (v !== undefined) o[k] = +v; }); return o; };
const lines = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()) : []);
const med = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const spread = (a) => { const m = med(a); return m ? (100 * (Math.max(...a) - Math.min(...a))) / m : 0; };

const rows = lines(resFile).map((l) => { const [mode, c, target, rep, ...rest] = l.split('\t'); return { mode, c: +c, target, rep: +rep, ...kvs(rest.join(' ')) }; });
const targets = [...new Set(rows.map((r) => r.target))];
const modes = [...new Set(rows.map((r) => r.mode))];
const get = (mode, c, t) => rows.filter((r) => r.mode === mode && r.c === c && r.target === t);
const stat = (g) => g.length ? {
  n: g.length, rps: med(g.map((r) => r.rps)), p50: med(g.map((r) => r.p50)), p99: med(g.map((r) => r.p99)),
  cpu: med(g.map((r) => (r.cpu_ticks * 1e6) / tck / Math.max(1, r.reqs))), rss: Math.max(...g.map((r) => r.rss_kb)) / 1024,
  anon: Math.max(...g.map((r) => r.anon_kb || 0)) / 1024,
  sp: spread(g.map((r) => r.rps)), err: g.reduce((s, r) => s + r.non2xx + r.connect + r.read + r.write + r.timeout, 0),
} : null;
const f0 = (x) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(0));
const f1 = (x) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(1));
const sgn = (x) => (x == null ? '-' : (x >= 0 ? '+' : '') + x.toFixed(0));
const S = {};
const warn = [];
for (const mode of modes) {
  const title = mode === 'sse' ? 'stream:true (SSE)' : 'non-streaming JSON';
  console.log(`#### ${title}\n`);
  console.log(`| target | p50 c=1 µs | p99 c=1 µs | added p50 | added p99 | req/s c=${HI} | p99 c=${HI} µs | CPU µs/req c=${HI} | CPU µs/req c=1 | peak RSS MB (anon) | rps spread | errors |`);
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  const d1 = stat(get(mode, 1, 'direct'));
  for (const t of targets) {
    const a = stat(get(mode, 1, t)), b = stat(get(mode, HI, t));
    if (!a || !b) continue;
    S[`${mode}|${t}`] = { a, b, d1 };
    const isD = t === 'direct';
    const err = a.err + b.err;
    if (err) warn.push(`${t} ${mode}: ${err} wrk errors (non-2xx/socket)`);
    console.log(`| ${t} | ${f0(a.p50)} | ${f0(a.p99)} | ${isD ? '-' : sgn(a.p50 - d1.p50)} | ${isD ? '-' : sgn(a.p99 - d1.p99)} | ${f0(b.rps)} | ${f0(b.p99)} | ${f1(b.cpu)} | ${f1(a.cpu)} | ${f1(Math.max(a.rss, b.rss))} (${f1(Math.max(a.anon, b.anon))}) | ${f0(b.sp)}% | ${err} |`);
  }
  console.log('');
}

// switchyard vs nginx at the same worker count
const ratios = [];
for (const mode of modes) for (const t of targets) {
  const m = /^sy-(\d+)w(-nocap)?$/.exec(t); if (!m) continue;
  const sy = S[`${mode}|${t}`], ng = S[`${mode}|nginx-${m[1]}w`]; if (!sy || !ng) continue;
  const dsy = sy.a.p50 - sy.d1.p50, dng = ng.a.p50 - ng.d1.p50;
  ratios.push(`| ${mode} | ${t} vs nginx-${m[1]}w | ${(sy.b.rps / ng.b.rps).toFixed(2)}x | ${(sy.b.cpu / ng.b.cpu).toFixed(2)}x | ${dng > 0 ? (dsy / dng).toFixed(2) + 'x' : '-'} (${f0(dsy)} vs ${f0(dng)} µs) |`);
}
if (ratios.length) {
  console.log('#### switchyard / nginx (same number of workers)\n');
  console.log(`| mode | targets | throughput c=${HI} | CPU µs/req c=${HI} | added p50 c=1 |`);
  console.log('|---|--:|--:|--:|--:|');
  ratios.forEach((r) => console.log(r));
  console.log('');
}

// time to first SSE byte
const tt = lines(ttfbFile).map((l) => { const [target, rep, rest] = l.split('\t'); return { target, rep: +rep, ...kvs(rest || '') }; });
if (tt.length) {
  const ts = (t) => { const g = tt.filter((r) => r.target === t && r.n > 0); return g.length ? {
    first: med(g.map((r) => r.first_p50)), p99: med(g.map((r) => r.first_p99)), hdr: med(g.map((r) => r.hdr_p50)), end: med(g.map((r) => r.end_p50)),
    err: tt.filter((r) => r.target === t).reduce((s, r) => s + (r.errors || 0), 0) } : null; };
  const d = ts('direct');
  console.log('#### stream:true, time to first byte (one connection, sequential)\n');
  console.log('| target | headers p50 µs | first SSE byte p50 µs | added p50 | first byte p99 µs | whole stream p50 µs | errors |');
  console.log('|---|--:|--:|--:|--:|--:|--:|');
  for (const t of targets) {
    const x = ts(t); if (!x) { console.log(`| ${t} | - | - | - | - | - | all failed |`); warn.push(`${t} ttfb: all failed`); continue; }
    if (x.err) warn.push(`${t} ttfb: ${x.err} failed streams`);
    console.log(`| ${t} | ${f0(x.hdr)} | ${f0(x.first)} | ${t === 'direct' || !d ? '-' : sgn(x.first - d.first)} | ${f0(x.p99)} | ${f0(x.end)} | ${x.err} |`);
  }
  console.log('');
}

const hwm = lines(hwmFile).map((l) => l.split('\t'));
if (hwm.length) console.log('VmHWM at the end (lifetime peak RSS, MB): ' + hwm.map(([t, kb]) => `${t} ${(kb / 1024).toFixed(1)}`).join(', '));
const n = Math.max(0, ...rows.map((r) => r.rep));
console.log(`Medians of ${n} interleaved run(s). "added" = target - direct at c=1. CPU µs/req = utime+stime of the target's`);
console.log('process(es) over the measured run / requests (nginx: master + workers; direct: the mock). peak RSS = VmRSS sampled');
console.log('every 0.25 s during the runs (anon = RssAnon, i.e. without mapped files such as the LMDB capture store).');
console.log('rps spread = (max-min)/median over reps.');
if (warn.length) console.log('\nWARNING: ' + warn.join('; '));
