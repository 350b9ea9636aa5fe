#!/usr/bin/python3
"""gRPC vs HTTP measurements for loadtest/bench_grpc.sh (see loadtest/BENCH.md).

Against one running switchyard (gRPC inference + admin listeners, HTTP
listener) in front of one switchyard-mock, sends the SAME chat request
(loadtest/bench/chat.lua's ~1 KB body) as
  grpc  unary switchyard.v1.Inference/ChatCompletion (one channel = one
        HTTP/2 connection, calls multiplexed on it), and
  http  POST /v1/chat/completions (http.client, one keep-alive connection
        per thread),
with the same Python harness: sequential calls for latency (1 in flight) and
C threads in a closed loop for throughput. The two are interleaved over
--reps rounds; medians of the rounds are reported. Python is the client on
both sides and is likely the bottleneck of the throughput runs (its CPU use
is printed); switchyard-load (C, HTTP only) gives the HTTP reference.
Then the admin mutation latency: Promote round trips on one admin channel
(alternating two arms of a route) and the same through `switchyardctl
routes promote` (a process per call: start, connect, call).

Prints a markdown table (ratios gRPC/HTTP) on stdout and writes every
number to --json. Exits 1 when a check fails (wrong answer, errors).

usage: grpc_bench.py --stubs DIR --grpc H:P --http H:P --admin H:P --key K
         --token T --route R --arms A,B --sy-pid PID [--n 2000] [--dur 10]
         [--conc 16] [--reps 2] [--admin-n 50] [--ctl PATH] [--ctl-n 20]
         [--load PATH] [--json OUT]
"""
import argparse
import http.client
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf('SC_CLK_TCK')
TIMEOUT_S = 30.0  # per call: a hang shows as an error, never a stuck run


def log(msg):
    print(time.strftime('[%H:%M:%S] ') + msg, file=sys.stderr, flush=True)


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_vals:
        return 0
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def median(vals):
    v = sorted(vals)
    if not v:
        return 0.0
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2.0


def proc_cpu_ticks(pid):
    """utime + stime of a whole process (all threads), in clock ticks."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def chat_body():
    """The exact request body of bench/chat.lua (non-streaming)."""
    with open(os.path.join(HERE, 'chat.lua')) as f:
        m = re.search(r'^local body = \[\[(.*)\]\]$', f.read(), re.M)
    if not m:
        raise SystemExit('grpc_bench: no body in chat.lua')
    return (m.group(1) + '}').encode()


def grpc_request(inf, body):
    """The same request as a ChatCompletionRequest (every field set in the body)."""
    d = json.loads(body)
    known = {'model', 'messages', 'temperature', 'max_tokens', 'top_p', 'presence_penalty',
             'frequency_penalty', 'user'}
    extra = set(d) - known
    if extra:
        raise SystemExit('grpc_bench: body fields not mapped to the proto: %s' % sorted(extra))
    return inf.ChatCompletionRequest(
        model=d['model'],
        messages=[inf.ChatMessage(role=m['role'], content=m['content']) for m in d['messages']],
        temperature=d['temperature'], max_tokens=d['max_tokens'], top_p=d['top_p'],
        presence_penalty=d['presence_penalty'], frequency_penalty=d['frequency_penalty'],
        user=d['user'])


class Grpc:
    """Unary ChatCompletion on one shared channel (thread-safe)."""
    name = 'grpc'

    def __init__(self, target, key, inf, inf_grpc, req, channels=1):
        # a local subchannel pool: each channel its own HTTP/2 connection
        self.chs = [grpc.insecure_channel(target, options=[('grpc.use_local_subchannel_pool', 1)])
                    for _ in range(channels)]
        self.stubs = [inf_grpc.InferenceStub(c) for c in self.chs]
        self.stub = self.stubs[0]
        self.md = [('authorization', 'Bearer ' + key)]
        self.req = req
        self.next = 0
        self.lock = threading.Lock()

    def client(self):
        # threads share the channels round-robin (default: one channel, all
        # calls multiplexed on one HTTP/2 connection, as gRPC clients do)
        if len(self.stubs) == 1:
            return self
        with self.lock:
            st = self.stubs[self.next % len(self.stubs)]
            self.next += 1
        c = Grpc.__new__(Grpc)
        c.stub, c.md, c.req = st, self.md, self.req
        return c

    def call(self):
        r = self.stub.ChatCompletion(self.req, metadata=self.md, timeout=TIMEOUT_S)
        return r.choices[0].message.content if r.choices else None

    def first(self):
        r, c = self.stub.ChatCompletion.with_call(self.req, metadata=self.md, timeout=TIMEOUT_S)
        return r.choices[0].message.content, r.capture_id, dict(c.initial_metadata())

    def close(self):
        for c in getattr(self, 'chs', []):
            c.close()


class HttpClient:
    """One keep-alive HTTP/1.1 connection; not shared between threads."""

    def __init__(self, host, port, key, body):
        self.conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        self.hdr = {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + key}
        self.body = body

    def call(self):
        self.conn.request('POST', '/v1/chat/completions', self.body, self.hdr)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError('HTTP %d: %s' % (r.status, data[:200]))
        return data, r

    def close(self):
        self.conn.close()


class Http:
    name = 'http'

    def __init__(self, target, key, body):
        host, port = target.rsplit(':', 1)
        self.args = (host, int(port), key, body)

    def client(self):
        return HttpClient(*self.args)

    def first(self):
        c = self.client()
        data, r = c.call()
        c.close()
        j = json.loads(data)
        return j['choices'][0]['message']['content'], r.getheader('x-switchyard-capture-id'), {}

    def close(self):
        pass


def run_seq(side, n, sy_pid):
    """n sequential calls on one client: latencies (µs), errors, CPU."""
    c = side.client()
    lat = []
    errors = 0
    g0, p0, t0 = proc_cpu_ticks(sy_pid), time.process_time(), time.perf_counter()
    for _ in range(n):
        s = time.perf_counter_ns()
        try:
            c.call()
            lat.append((time.perf_counter_ns() - s) / 1000.0)
        except Exception:  # noqa: BLE001 - counted; the run goes on
            errors += 1
    wall = time.perf_counter() - t0
    g1, p1 = proc_cpu_ticks(sy_pid), time.process_time()
    if c is not side and side.name == 'http':
        c.close()
    lat.sort()
    ok = len(lat)
    return {'n': n, 'ok': ok, 'errors': errors, 'wall_s': wall,
            'p50_us': pct(lat, 50), 'p90_us': pct(lat, 90), 'p99_us': pct(lat, 99),
            'mean_us': sum(lat) / ok if ok else 0,
            'gw_cpu_us_per_req': (g1 - g0) * 1e6 / CLK_TCK / max(ok, 1),
            'client_cpu_us_per_req': (p1 - p0) * 1e6 / max(ok, 1),
            'client_cpu_pct': 100.0 * (p1 - p0) / wall}


def run_conc(side, conc, dur, sy_pid):
    """conc threads in a closed loop for dur seconds: req/s, latencies, CPU."""
    stop = threading.Event()
    start = threading.Barrier(conc + 1)
    per = [[] for _ in range(conc)]
    errs = [0] * conc

    def worker(i):
        c = side.client()
        start.wait()
        while not stop.is_set():
            s = time.perf_counter_ns()
            try:
                c.call()
                per[i].append((time.perf_counter_ns() - s) / 1000.0)
            except Exception:  # noqa: BLE001
                errs[i] += 1
        if c is not side and side.name == 'http':
            c.close()

    th = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(conc)]
    for t in th:
        t.start()
    start.wait()
    g0, p0, t0 = proc_cpu_ticks(sy_pid), time.process_time(), time.perf_counter()
    time.sleep(dur)
    stop.set()
    n_at_stop = sum(len(p) for p in per)
    wall = time.perf_counter() - t0
    g1, p1 = proc_cpu_ticks(sy_pid), time.process_time()

    for t in th:
        t.join(TIMEOUT_S + 5)
    lat = sorted(x for p in per for x in p)
    return {'conc': conc, 'dur_s': wall, 'ok': n_at_stop, 'errors': sum(errs),
            'rps': n_at_stop / wall, 'p50_us': pct(lat, 50), 'p99_us': pct(lat, 99),
            'gw_cpu_us_per_req': (g1 - g0) * 1e6 / CLK_TCK / max(n_at_stop, 1),
            'client_cpu_us_per_req': (p1 - p0) * 1e6 / max(n_at_stop, 1),
            'client_cpu_pct': 100.0 * (p1 - p0) / wall}


def switchyard_load(load, http_target, key, body, conc, n, dur):
    """switchyard-load (C client) for HTTP: c=1 with n requests, c=conc for dur s."""
    out = {}
    with tempfile.TemporaryDirectory(prefix='sy-gb-load-') as d:
        bf = os.path.join(d, 'body.json')
        with open(bf, 'wb') as f:
            f.write(body)
        url = 'http://%s/v1/chat/completions' % http_target
        for tag, args in (('seq', ['--connections', '1', '--requests', str(n)]),
                          ('conc', ['--connections', str(conc), '--duration', str(dur)])):
            jf = os.path.join(d, tag + '.json')
            subprocess.run([load, url, '--body', bf, '--header', 'Authorization: Bearer ' + key,
                            '--warmup', '1', '--quiet', '--json', jf] + args,
                           check=True, timeout=dur + n * 0.05 + 60)
            with open(jf) as f:
                j = json.load(f)
            rq = j['requests']
            out[tag] = {'rps': j['throughput_rps'], 'ok': rq['ok'], 'errors': rq['failed'],
                        'p50_us': j['latency_us']['p50'], 'p99_us': j['latency_us']['p99']}
    return out


def promote_stub(target, token, adm, adm_grpc, route, arms, n):
    """n Promote calls on one admin channel, alternating arms; latencies (µs)."""
    ch = grpc.insecure_channel(target)
    st = adm_grpc.AdminStub(ch)
    md = [('authorization', 'Bearer ' + token)]
    st.Health(adm.HealthRequest(), metadata=md, timeout=TIMEOUT_S)  # connect + warm
    lat = []
    last_version = 0
    for i in range(n):
        arm = arms[(i + 1) % 2]
        s = time.perf_counter_ns()
        r = st.Promote(adm.PromoteRequest(name=route, arm=arm, reason='bench_grpc'),
                       metadata=md, timeout=TIMEOUT_S)
        lat.append((time.perf_counter_ns() - s) / 1000.0)
        w = {a.name: a.weight_bp for a in r.arms}
        if w.get(arm) != 10000 or r.version <= last_version:
            raise SystemExit('grpc_bench: Promote %s -> %s gave version %d weights %s'
                             % (route, arm, r.version, w))
        last_version = r.version
    ch.close()
    lat.sort()
    return {'n': n, 'p50_us': pct(lat, 50), 'p99_us': pct(lat, 99), 'max_us': lat[-1],
            'last_version': last_version}


def promote_ctl(ctl, target, token, route, arms, n):
    """n `switchyardctl routes promote` processes, alternating arms; wall time (µs)."""
    env = dict(os.environ, SWITCHYARD_ADMIN_TOKEN=token)
    lat = []
    for i in range(n):
        arm = arms[(i + 1) % 2]
        s = time.perf_counter_ns()
        r = subprocess.run([ctl, 'routes', 'promote', route, arm, '--reason', 'bench_grpc ctl',
                            '--addr', target], env=env, capture_output=True, timeout=60)
        lat.append((time.perf_counter_ns() - s) / 1000.0)
        if r.returncode != 0:
            raise SystemExit('grpc_bench: switchyardctl exit %d: %s' % (r.returncode, r.stderr))
    lat.sort()
    return {'n': n, 'p50_us': pct(lat, 50), 'p99_us': pct(lat, 99), 'max_us': lat[-1]}


def ms(us):
    return '%.3f' % (us / 1000.0)


def ratio(a, b):
    return '%.2f' % (a / b) if b else '-'


def table(res, a):
    """The markdown table of the medians over the rounds."""
    def med(side, kind, field):
        return median([r[field] for r in res[side][kind]])

    rows = []
    for field, label in (('p50_us', 'latency p50, 1 in flight (ms)'),
                         ('p99_us', 'latency p99, 1 in flight (ms)')):
        g, h = med('grpc', 'seq', field), med('http', 'seq', field)
        rows.append((label, ms(g), ms(h), ratio(g, h)))
    g, h = med('grpc', 'seq', 'gw_cpu_us_per_req'), med('http', 'seq', 'gw_cpu_us_per_req')
    rows.append(('gateway CPU per call, 1 in flight (µs)', '%.0f' % g, '%.0f' % h, ratio(g, h)))
    g, h = med('grpc', 'seq', 'client_cpu_us_per_req'), med('http', 'seq', 'client_cpu_us_per_req')
    rows.append(('python client CPU per call, 1 in flight (µs)', '%.0f' % g, '%.0f' % h,
                 ratio(g, h)))
    g, h = med('grpc', 'conc', 'rps'), med('http', 'conc', 'rps')
    rows.append(('throughput, %d in flight (calls/s)' % a.conc, '%.0f' % g, '%.0f' % h,
                 ratio(g, h)))
    g, h = med('grpc', 'conc', 'p50_us'), med('http', 'conc', 'p50_us')
    rows.append(('latency p50, %d in flight (ms)' % a.conc, ms(g), ms(h), ratio(g, h)))
    g, h = med('grpc', 'conc', 'gw_cpu_us_per_req'), med('http', 'conc', 'gw_cpu_us_per_req')
    rows.append(('gateway CPU per call, %d in flight (µs)' % a.conc, '%.0f' % g, '%.0f' % h,
                 ratio(g, h)))
    g, h = med('grpc', 'conc', 'client_cpu_us_per_req'), med('http', 'conc', 'client_cpu_us_per_req')
    rows.append(('python client CPU per call, %d in flight (µs)' % a.conc, '%.0f' % g,
                 '%.0f' % h, ratio(g, h)))
    g, h = med('grpc', 'conc', 'client_cpu_pct'), med('http', 'conc', 'client_cpu_pct')
    rows.append(('python client CPU, %d in flight (%% of a core)' % a.conc, '%.0f' % g,
                 '%.0f' % h, '-'))
    if 'load' in res:
        ld = res['load']
        rows.append(('switchyard-load (C) latency p50 / p99, 1 conn (ms)', '-',
                     '%s / %s' % (ms(ld['seq']['p50_us']), ms(ld['seq']['p99_us'])), '-'))
        rows.append(('switchyard-load (C) throughput, %d conns (req/s)' % a.conc, '-',
                     '%.0f' % ld['conc']['rps'], '-'))
    ad = res['admin']
    rows.append(('admin Promote round trip p50 / p99, python stub (ms, n=%d)' % ad['stub']['n'],
                 '%s / %s' % (ms(ad['stub']['p50_us']), ms(ad['stub']['p99_us'])), '-', '-'))
    if 'ctl' in ad:
        rows.append(('`switchyardctl routes promote` p50 / p99, process start included (ms, n=%d)'
                     % ad['ctl']['n'],
                     '%s / %s' % (ms(ad['ctl']['p50_us']), ms(ad['ctl']['p99_us'])), '-', '-'))
    out = ['| measurement | gRPC | HTTP | gRPC/HTTP |', '|---|--:|--:|--:|']
    out += ['| %s | %s | %s | %s |' % r for r in rows]
    return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--stubs', required=True)
    ap.add_argument('--grpc', required=True)
    ap.add_argument('--http', required=True)
    ap.add_argument('--admin', required=True)
    ap.add_argument('--key', required=True)
    ap.add_argument('--token', required=True)
    ap.add_argument('--route', required=True)
    ap.add_argument('--arms', required=True)
    ap.add_argument('--sy-pid', type=int, required=True)
    ap.add_argument('--n', type=int, default=2000, help='sequential calls per side (all rounds)')
    ap.add_argument('--dur', type=float, default=10.0, help='seconds per throughput run')
    ap.add_argument('--conc', type=int, default=16)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--grpc-channels', type=int, default=1,
                    help='gRPC channels (connections) the threads share round-robin')
    ap.add_argument('--warm', type=int, default=200)
    ap.add_argument('--admin-n', type=int, default=50)
    ap.add_argument('--ctl', default='')
    ap.add_argument('--ctl-n', type=int, default=20)
    ap.add_argument('--load', default='')
    ap.add_argument('--json', default='')
    a = ap.parse_args()
    if not (1 <= a.n <= 1000000 and 1 <= a.conc <= 1024 and 0 < a.dur <= 600
            and 1 <= a.reps <= 20):
        raise SystemExit('grpc_bench: --n, --conc, --dur or --reps out of range')
    arms = a.arms.split(',')
    if len(arms) != 2:
        raise SystemExit('grpc_bench: --arms needs two arm names')

    sys.path.insert(0, a.stubs)
    from switchyard.v1 import inference_pb2, inference_pb2_grpc, admin_pb2, admin_pb2_grpc

    body = chat_body()
    sides = [Grpc(a.grpc, a.key, inference_pb2, inference_pb2_grpc,
                  grpc_request(inference_pb2, body), a.grpc_channels),
             Http(a.http, a.key, body)]

    # Same request, same answer, both captured.
    answers = {}
    for s in sides:
        content, cap, md = s.first()
        if not content or not cap or str(cap) == '0':
            raise SystemExit('grpc_bench: %s: no answer or no capture id (%r, %r)'
                             % (s.name, content, cap))
        if s.name == 'grpc' and md.get('x-switchyard-capture-id') != str(cap):
            raise SystemExit('grpc_bench: grpc: capture id metadata mismatch')
        answers[s.name] = content
    if answers['grpc'] != answers['http']:
        raise SystemExit('grpc_bench: answers differ:\n%r\n%r' % (answers['grpc'],
                                                               answers['http']))
    try:
        sides[0].stub.ChatCompletion(sides[0].req, metadata=[('authorization', 'Bearer sk-wrong')],
                                     timeout=TIMEOUT_S)
        raise SystemExit('grpc_bench: grpc: a wrong key was accepted (is auth on?)')
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise SystemExit('grpc_bench: grpc: a wrong key gave %s' % e.code().name)
    log('verify: gRPC and HTTP give the same answer (%d chars), both captured; '
        'a wrong key is UNAUTHENTICATED' % len(answers['grpc']))

    for s in sides:
        run_seq(s, a.warm, a.sy_pid)
    g0 = proc_cpu_ticks(a.sy_pid)
    time.sleep(2.0)
    idle_pct = 100.0 * (proc_cpu_ticks(a.sy_pid) - g0) / CLK_TCK / 2.0
    log('gateway CPU when idle: %.1f%% of a core' % idle_pct)
    res = {'grpc': {'seq': [], 'conc': []}, 'http': {'seq': [], 'conc': []}}
    per_round = max(1, a.n // a.reps)
    for rep in range(a.reps):
        order = sides if rep % 2 == 0 else sides[::-1]  # interleaved, alternating first
        for s in order:
            r = run_seq(s, per_round, a.sy_pid)
            res[s.name]['seq'].append(r)
            log('seq  rep=%d %-4s n=%d p50=%s p99=%s ms gw_cpu=%.0f us/call errors=%d'
                % (rep, s.name, r['ok'], ms(r['p50_us']), ms(r['p99_us']),
                   r['gw_cpu_us_per_req'], r['errors']))
    for rep in range(a.reps):
        order = sides if rep % 2 == 0 else sides[::-1]
        for s in order:
            r = run_conc(s, a.conc, a.dur, a.sy_pid)
            res[s.name]['conc'].append(r)
            log('conc rep=%d %-4s c=%d %.0f calls/s p50=%s p99=%s ms gw_cpu=%.0f us/call '
                'client_cpu=%.0f%% errors=%d'
                % (rep, s.name, a.conc, r['rps'], ms(r['p50_us']), ms(r['p99_us']),
                   r['gw_cpu_us_per_req'], r['client_cpu_pct'], r['errors']))
    for s in sides:
        s.close()

    if a.load:
        res['load'] = switchyard_load(a.load, a.http, a.key, body, a.conc, a.n, a.dur)
        log('switchyard-load: c=1 p50=%s p99=%s ms; c=%d %.0f req/s'
            % (ms(res['load']['seq']['p50_us']), ms(res['load']['seq']['p99_us']), a.conc,
               res['load']['conc']['rps']))

    res['admin'] = {'stub': promote_stub(a.admin, a.token, admin_pb2, admin_pb2_grpc, a.route,
                                         arms, a.admin_n)}
    log('Promote (stub) n=%d p50=%s p99=%s ms' % (a.admin_n, ms(res['admin']['stub']['p50_us']),
                                                 ms(res['admin']['stub']['p99_us'])))
    if a.ctl:
        res['admin']['ctl'] = promote_ctl(a.ctl, a.admin, a.token, a.route, arms, a.ctl_n)
        log('Promote (switchyardctl) n=%d p50=%s p99=%s ms'
            % (a.ctl_n, ms(res['admin']['ctl']['p50_us']), ms(res['admin']['ctl']['p99_us'])))

    res['gw_idle_cpu_pct'] = idle_pct
    res['params'] = {'n': a.n, 'reps': a.reps, 'dur_s': a.dur, 'conc': a.conc,
                     'warm': a.warm, 'body_bytes': len(body), 'grpc_version': grpc.__version__,
                     'python': sys.version.split()[0]}
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=1)
    print(table(res, a))
    print('\ngateway CPU when idle (both listeners open, channels connected): %.1f%% of a core'
          % idle_pct)
    bad = sum(r['errors'] for side in ('grpc', 'http') for k in ('seq', 'conc')
              for r in res[side][k])
    bad += sum(v['errors'] for v in res.get('load', {}).values())
    if bad:
        log('ERROR: %d failed calls (see the log above)' % bad)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
