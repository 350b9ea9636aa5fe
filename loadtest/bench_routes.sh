#!/usr/bin/env bash
# bench_routes.sh - what does routing cost? Gateway throughput and latency with
# a two-arm sticky split, a confidence cascade (accepting, and escalating every
# request) and a 10% shadow route, each against plain pass-through, in one run;
# then the router's decision cost (switchyard-bench_router, ns per decision).
#
# Everything on 127.0.0.1: one switchyard-mock serves as two upstreams, "base"
# (/base/v1) and "ft" (/ft/v1), and ONE switchyard runs as users run it: client
# auth on (a client key in the config file, sent as a Bearer token), capture on,
# but with --capture-durability nosync so fsync (the disk) stays out of the
# comparison. Routes in its config:
#   pass-through      model "gpt-4o-mini", which is no route: default upstream "base"
#   two-arm           base 5000 / ft 5000 bp, sticky by user (x-switchyard-user, then "user")
#   cascade           ft first (logprobs), escalate to base below 0.8; the mock's
#                     default confidence is 0.9, so every request is accepted on ft
#   cascade-escalate  the same with threshold 0.95: every request asks ft, then base
#   shadow10          base 10000 bp, 10% (rate_bp 1000) mirrored to ft
# switchyard-load runs closed loop against each route, interleaved REPS times,
# at CONNS_HI connections (throughput) and at 1 connection (latency), with
# --users USERS so sticky keys vary. The table shows medians over the reps.
# The shadow10 row answers "is the client's latency unchanged with shadow on":
# compare its p50/p99 with two-arm and pass-through.
# Method and latest results: loadtest/BENCH.md, "Routing overhead".
#
#   loadtest/bench_routes.sh                 # full run (~4 min with defaults)
#   REPS=1 DUR=2 loadtest/bench_routes.sh    # smoke run (~1 min)
#
# Only processes started here are stopped (by PID) on exit.
set -Eeuo pipefail
trap 'echo "bench_routes.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-rb}
SY=${SY:-$BUILD/gateway/switchyard}
MOCK=${MOCK:-$BUILD/loadtest/switchyard-mock}
LOAD=${LOAD:-$BUILD/loadtest/switchyard-load}
BENCH_ROUTER=${BENCH_ROUTER:-$BUILD/loadtest/switchyard-bench_router}
REPS=${REPS:-3}               # interleaved repetitions
DUR=${DUR:-5}                 # measured seconds per load run
WARM=${WARM:-1}               # warm-up seconds before each measured run (same invocation)
CONNS_HI=${CONNS_HI:-32}      # the throughput run's connections (the latency run is c=1)
USERS=${USERS:-1000}          # distinct end-user ids (sticky keys), Zipf-drawn by switchyard-load
WORKERS=${WORKERS:-1}         # switchyard worker loops
ROUTER_N=${ROUTER_N:-10000000} # switchyard-bench_router decisions per case
TIMEOUT_MS=${TIMEOUT_MS:-10000} # switchyard-load per-request timeout
KEEP=${KEEP:-0}               # 1: keep the capture store under $WORK
WORK=${WORK:-$(mktemp -d /tmp/switchyard-bench-routes.XXXXXX)}
KEY=${BENCH_CLIENT_KEY:-sk-switchyard-bench-routes-0123456789}

# target name -> the "model" the client sends
TARGETS=(pass-through two-arm cascade cascade-escalate shadow10)
declare -A MODEL=([pass-through]=gpt-4o-mini [two-arm]=two-arm [cascade]=cascade
                  [cascade-escalate]=cascade-escalate [shadow10]=shadow10)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in curl node timeout; do command -v "$t" >/dev/null || die "$t not found"; done
for b in "$SY" "$MOCK" "$LOAD" "$BENCH_ROUTER"; do
  [ -x "$b" ] || die "$b missing; build first: cmake -S . -B build-rb -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rb -j2 --target switchyard switchyard-mock switchyard-load switchyard-bench_router"
done
[[ "$REPS" =~ ^[1-9][0-9]*$ && "$CONNS_HI" =~ ^[1-9][0-9]*$ && "$USERS" =~ ^[1-9][0-9]*$ ]] \
  || die "REPS, CONNS_HI and USERS must be positive integers"
# switchyard-load refuses more than 600 s per run; keep each run well inside that
awk -v d="$DUR" -v w="$WARM" 'BEGIN { exit !(d > 0 && w >= 0 && d + w <= 300) }' \
  || die "need DUR > 0, WARM >= 0, DUR + WARM <= 300"

# ---------------------------------------------------------------- processes
declare -a PIDS=()
cleanup() {
  set +e
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { log "pid $p ignored SIGTERM; killing"; kill -KILL "$p" 2>/dev/null; }
  done
  wait 2>/dev/null
  [ "$KEEP" = 1 ] || rm -rf "$WORK/data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() { # logfile cmd... ; sets LAST_PID
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
listen_port() { # logfile pid -> PORT from "... listening on http://HOST:PORT"
  local l
  for _ in $(seq 100); do
    l=$(grep -o 'listening on http://[^ ]*' "$1" 2>/dev/null | head -1 || true)
    [ -n "$l" ] && { echo "${l##*:}"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  die "no 'listening on' line in $1: $(tail -3 "$1")"
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime, all threads

MOCK_PORT="" GW_PORT="" GW_PID="" MOCK_PID=""
start_all() {
  start_bg "$WORK/mock.log" "$MOCK" --listen 127.0.0.1:0 --quiet
  MOCK_PID=$LAST_PID
  MOCK_PORT=$(listen_port "$WORK/mock.log" "$MOCK_PID")
  log "mock pid=$MOCK_PID port=$MOCK_PORT"

  local hash; hash=$("$SY" hash-key "$KEY")
  local base="{ \"name\": \"base\", \"upstream\": \"base\", \"model\": \"gpt-4o-mini\""
  local ft="{ \"name\": \"ft\", \"upstream\": \"ft\", \"model\": \"ft-v1\""
  cat >"$WORK/config.json" <<EOF
{ "listen": "127.0.0.1:0", "workers": $WORKERS, "data_dir": "$WORK/data", "log_level": "warn",
  "default_upstream": "base",
  "upstreams": [ { "name": "base", "base_url": "http://127.0.0.1:$MOCK_PORT/base/v1" },
                 { "name": "ft",   "base_url": "http://127.0.0.1:$MOCK_PORT/ft/v1" } ],
  "client_keys": [ { "name": "bench", "sha256": "$hash" } ],
  "routes": [
    { "name": "two-arm", "sticky": ["header", "user"],
      "arms": [ $base, "weight_bp": 5000 }, $ft, "weight_bp": 5000 } ] },
    { "name": "cascade", "arms": [ $ft }, $base } ],
      "cascade": { "first": "ft", "escalate": "base", "threshold": 0.8, "method": "geomean" } },
    { "name": "cascade-escalate", "arms": [ $ft }, $base } ],
      "cascade": { "first": "ft", "escalate": "base", "threshold": 0.95, "method": "geomean" } },
    { "name": "shadow10", "arms": [ $base, "weight_bp": 10000 }, $ft } ],
      "shadow": { "arm": "ft", "rate_bp": 1000 } } ] }
EOF
  # port 0: switchyard binds with SO_REUSEPORT, a fixed port could share traffic
  # with someone else's instance. gRPC listeners off: not measured here.
  start_bg "$WORK/switchyard.log" "$SY" --config "$WORK/config.json" \
    --capture-durability nosync --grpc-listen "" --grpc-admin-listen ""
  GW_PID=$LAST_PID
  GW_PORT=$(listen_port "$WORK/switchyard.log" "$GW_PID")
  log "switchyard pid=$GW_PID port=$GW_PORT (--workers $WORKERS, auth on, capture on, durability nosync)"
}

# The mock numbers every recorded request and returns it as x-mock-seq; one
# probe request gives the count so far (the probe itself is one of them).
mock_seq() {
  local s
  s=$(curl -sS --max-time 5 -o /dev/null -D - -H 'Content-Type: application/json' \
    --data '{"model":"probe","messages":[{"role":"user","content":"probe"}]}' \
    "http://127.0.0.1:$MOCK_PORT/base/v1/chat/completions" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-mock-seq"{print $2}')
  [[ "$s" =~ ^[0-9]+$ ]] || die "mock probe: no x-mock-seq"
  echo "$s"
}
# chat model user [key] -> "HTTP_CODE ARM OBJECT" (ARM "-" when the header is absent)
chat() {
  local out
  out=$(curl -sS --max-time 5 -D - -H 'Content-Type: application/json' -H "Authorization: Bearer ${3:-$KEY}" \
    -H "x-switchyard-user: $2" \
    --data "{\"model\":\"$1\",\"user\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in one short sentence.\"}]}" \
    "http://127.0.0.1:$GW_PORT/v1/chat/completions" | tr -d '\r') || true
  awk 'NR==1{code=$2} tolower($1)=="x-switchyard-arm:"{arm=$2}
       /"object":"chat.completion"/{obj="chat.completion"}
       END{print code+0, (arm==""?"-":arm), (obj==""?"-":obj)}' <<<"$out"
}

# Every route must answer through the arm it should, with the number of
# upstream calls it should make; a wrong key must get 401.
verify() {
  local t want calls r code arm obj s0 s1 n=20
  [ "$(chat gpt-4o-mini u-1 sk-wrong | cut -d' ' -f1)" = 401 ] || die "verify: a wrong key did not get 401 (is auth on?)"
  for t in "${TARGETS[@]}"; do
    case $t in
      pass-through) want="-"; calls=1 ;; two-arm) want="base|ft"; calls=1 ;;
      cascade) want=ft; calls=1 ;; cascade-escalate) want=base; calls=2 ;;
      shadow10) want=base; calls="" ;;
    esac
    s0=$(mock_seq)
    for i in $(seq "$n"); do
      read -r code arm obj <<<"$(chat "${MODEL[$t]}" "verify-$i")"
      [ "$code" = 200 ] && [ "$obj" = chat.completion ] || die "verify $t: HTTP $code, object $obj"
      [[ "$arm" =~ ^($want)$ ]] || die "verify $t: served by arm '$arm', expected $want"
    done
    sleep 0.2 # let shadow calls land
    s1=$(mock_seq)
    r=$((s1 - s0 - 1))
    if [ -n "$calls" ]; then
      [ "$r" -eq $((n * calls)) ] || die "verify $t: $r upstream calls for $n requests, expected $((n * calls))"
    else
      [ "$r" -ge "$n" ] && [ "$r" -le $((n * 2)) ] || die "verify $t: $r upstream calls for $n requests"
    fi
  done
  # stickiness and split: 100 users, each asked twice
  local ft=0 a b
  for i in $(seq 100); do
    a=$(chat two-arm "sticky-$i" | cut -d' ' -f2); b=$(chat two-arm "sticky-$i" | cut -d' ' -f2)
    [ "$a" = "$b" ] || die "verify two-arm: user sticky-$i got $a then $b"
    [ "$a" = ft ] && ft=$((ft + 1))
  done
  [ "$ft" -ge 30 ] && [ "$ft" -le 70 ] || die "verify two-arm: $ft of 100 users on ft, expected ~50"
  log "verify: every route answers via its arm with the expected upstream calls; two-arm sticky, $ft/100 users on ft; wrong key -> 401"
}

RES=$WORK/results.tsv
measure() { # target conns rep
  local t=$1 c=$2 r=$3 j="$WORK/load-$1-c$2-r$3.json" s0 s1 c0 c1
  s0=$(mock_seq); c0=$(cpu_ticks "$GW_PID")
  timeout "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN{printf "%d", w+d+60}')" "$LOAD" "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
    --connections "$c" --duration "$DUR" --warmup "$WARM" --timeout-ms "$TIMEOUT_MS" \
    --model "${MODEL[$t]}" --users "$USERS" --header "Authorization: Bearer $KEY" \
    --json "$j" --quiet || die "switchyard-load failed for $t c=$c rep=$r"
  c1=$(cpu_ticks "$GW_PID")
  sleep 0.2 # shadow calls start after the primary answer; let them land
  s1=$(mock_seq)
  kill -0 "$GW_PID" 2>/dev/null || die "switchyard (pid $GW_PID) died during $t c=$c; see $WORK/switchyard.log"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$c" "$r" "$j" "$((c1 - c0))" "$((s1 - s0 - 1))" >>"$RES"
  log "c=$c rep=$r $t: $(node -e 'const d=require(process.argv[1]);
    console.log(`${d.throughput_rps.toFixed(0)} req/s p50 ${d.latency_us.p50} us p99 ${d.latency_us.p99} us failed ${d.requests.failed}`)' "$j")"
}

summarize() { # results.tsv clk_tck conns_hi
  node - "$@" <<'JS'
const fs = require('fs');
const [res, clk, hi] = [process.argv[2], +process.argv[3], +process.argv[4]];
const rows = fs.readFileSync(res, 'utf8').trim().split('\n').map(l => {
  const [t, c, r, j, ticks, calls] = l.split('\t');
  const d = JSON.parse(fs.readFileSync(j, 'utf8'));
  const total = d.requests.sent + d.requests.warmup; // ticks and calls span warm-up too
  return { t, c: +c, rps: d.throughput_rps, p50: d.latency_us.p50, p99: d.latency_us.p99,
           failed: d.requests.failed + d.requests.unfinished,
           cpu: total ? (+ticks * 1e6 / clk) / total : NaN, calls: total ? +calls / total : NaN };
});
const med = a => { const s = [...a].sort((x, y) => x - y), m = s.length >> 1;
                   return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const targets = [...new Set(rows.map(r => r.t))];
const agg = {};
for (const t of targets) for (const c of [1, hi]) {
  const rs = rows.filter(r => r.t === t && r.c === c);
  const rps = rs.map(r => r.rps);
  agg[t + c] = { rps: med(rps), p50: med(rs.map(r => r.p50)), p99: med(rs.map(r => r.p99)),
                 cpu: med(rs.map(r => r.cpu)), calls: med(rs.map(r => r.calls)),
                 spread: (Math.max(...rps) - Math.min(...rps)) / med(rps),
                 failed: rs.reduce((s, r) => s + r.failed, 0) };
}
const P = 'pass-through', f0 = x => x.toFixed(0), sgn = x => (x >= 0 ? '+' : '') + f0(x);
console.log(`| route | upstream calls/req | req/s c=${hi} | vs pass | p50 c=1 µs | p99 c=1 µs | p50 c=${hi} µs | p99 c=${hi} µs | added p50 c=1 | added p50 c=${hi} | gateway CPU µs/req c=${hi} | vs pass | rps spread | errors |`);
console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const t of targets) {
  const a1 = agg[t + 1], ah = agg[t + hi], p1 = agg[P + 1], ph = agg[P + hi];
  const vs = (x, y) => (x / y).toFixed(2) + 'x';
  console.log(`| ${t} | ${ah.calls.toFixed(2)} | ${f0(ah.rps)} | ${vs(ah.rps, ph.rps)} | ${a1.p50} | ${a1.p99} | ` +
    `${ah.p50} | ${ah.p99} | ${t === P ? '-' : sgn(a1.p50 - p1.p50)} | ${t === P ? '-' : sgn(ah.p50 - ph.p50)} | ` +
    `${f0(ah.cpu)} | ${vs(ah.cpu, ph.cpu)} | ${f0(ah.spread * 100)}% | ${a1.failed + ah.failed} |`);
}
if (agg['shadow101'] && agg['two-arm1']) {
  const s1 = agg['shadow101'], sh = agg['shadow10' + hi];
  const d = (k, c) => `${sgn(agg['shadow10' + c][k] - agg[P + c][k])} / ${sgn(agg['shadow10' + c][k] - agg['two-arm' + c][k])}`;
  console.log(`\nshadow10 client latency minus pass-through / minus two-arm (µs): ` +
    `c=1 p50 ${d('p50', 1)}, p99 ${d('p99', 1)}; c=${hi} p50 ${d('p50', hi)}, p99 ${d('p99', hi)}` +
    ` (shadow calls made: ${((s1.calls + sh.calls) / 2 - 1).toFixed(3)} per request)`);
}
JS
}

main() {
  log "work dir $WORK"
  mkdir -p "$WORK"
  start_all
  verify
  : >"$RES"
  local nrun=$((2 * REPS * ${#TARGETS[@]})) c r t
  log "running $nrun load runs of ${WARM}s+${DUR}s (~$(awk -v n="$nrun" -v w="$WARM" -v d="$DUR" 'BEGIN{printf "%d", n*(w+d+1.5)/60+1}') min)"
  local st0 st1 steal
  st0=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  for c in 1 "$CONNS_HI"; do
    for r in $(seq "$REPS"); do for t in "${TARGETS[@]}"; do measure "$t" "$c" "$r"; done; done
  done
  st1=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  steal=$(echo "$st0 $st1" | awk '{d=$4-$2; printf "%.1f", (d > 0 ? 100*($3-$1)/d : 0)}')
  log "router microbenchmark ($ROUTER_N decisions per case)"
  timeout 300 "$BENCH_ROUTER" "$ROUTER_N" >"$WORK/bench_router.txt" || die "switchyard-bench_router failed"

  echo
  echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r); $("$SY" --version 2>&1 | head -1); load average at end: $(cut -d' ' -f1-3 /proc/loadavg); CPU steal during run: ${steal}%"
  echo "one switchyard (--workers $WORKERS, client auth on, capture on with durability nosync), one mock, switchyard-load: all on the same $(nproc) cores"
  echo "REPS=$REPS DUR=${DUR}s WARM=${WARM}s closed loop c=1 and c=$CONNS_HI; --users $USERS; non-streaming; medians over reps"
  echo
  summarize "$RES" "$(getconf CLK_TCK)" "$CONNS_HI" | tee "$WORK/summary.md"
  echo
  tee -a "$WORK/summary.md" <"$WORK/bench_router.txt"
  echo
  echo "raw: $RES and $WORK/load-*.json; logs: $WORK/*.log"
}
main "$@"
