#!/usr/bin/env bash
# bench.sh - what does switchyard cost in front of an OpenAI-compatible API,
# next to nginx proxy_pass? (issue 6) One run, everything on 127.0.0.1, one
# shared switchyard-mock upstream:
#   direct       the mock itself
#   nginx-Nw     nginx proxy_pass -> mock (worker_processes N, keepalive pool)
#   sy-Nw        switchyard --workers N as users run it: client key auth, model
#                "bench" = a sticky two-arm route (50/50, both arms on the mock,
#                different model names), capture on (durability sync, default)
#   sy-Nw-nocap  the same with --no-capture (proxy path alone), first N only
# for N in $WORKERS (default "1"). switchyard-load is the driver (1 KB chat
# body of bench/chat.lua, model "bench", --users Zipf ids so the split is
# exercised); wrk -c64 is a throughput cross-check. Per rep, phase by phase,
# the targets run interleaved:
#   low     open loop LOW_RATE req/s, c=LOW_CONNS: latency p50/p99 (added = - direct)
#   max     closed loop c=64: max req/s, CPU µs/req of the proxy, RssAnon@64
#   half    open loop at 50% of this target's max (this rep): p99; then direct at
#           the same rate (added p99 = target - direct at the same offered rate)
#   c1000   1000 open connections (preconnected), open loop C1000_RATE req/s: RssAnon@1000
#   stream  stream:true, open loop STREAM_RATE req/s: time to first byte (added TTFT)
#   wrk     wrk -t1 -c64 throughput (cross-check)
# then once: capture drops of sy-Nw at 80% of its median max (open loop, HOLD s,
# /metrics switchyard_capture_dropped_total delta). Prints the table (medians
# over REPS), the switchyard/nginx ratios with PASS/MISS against the issue's
# targets, and writes the table as markdown to $WORK/table.md.
# Method: loadtest/BENCH.md.
#
#   loadtest/bench.sh                        # full run (~9 min with defaults)
#   REPS=1 DUR=2 loadtest/bench.sh           # smoke run (~2 min)
#   STRACE=1 loadtest/bench.sh               # + syscalls per request (strace -c)
#   WORKERS="1 2" loadtest/bench.sh          # + nginx-2w / sy-2w
#   PROFILE=1 loadtest/bench.sh              # + callgrind profile (bench/profile.sh)
#
# Only processes started here are stopped (by PID) on exit.
set -Eeuo pipefail
trap 'echo "bench.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SY=${SY:-$BUILD/gateway/switchyard}
MOCK=${MOCK:-$BUILD/loadtest/switchyard-mock}
LOAD=${LOAD:-$BUILD/loadtest/switchyard-load}
REPS=${REPS:-3}               # interleaved repetitions (medians reported)
DUR=${DUR:-5}                 # measured seconds per run (low, max, half, stream, wrk)
WARM=${WARM:-1}               # warm-up seconds before each measured run
CONNS_HI=${CONNS_HI:-64}      # the max-throughput run's connections
LOW_RATE=${LOW_RATE:-200}     # req/s of the low fixed-rate latency run
LOW_CONNS=${LOW_CONNS:-8}
HALF_PCT=${HALF_PCT:-50}      # the "half load" run: % of the target's own max
C1000=${C1000:-1000}          # open connections of the RSS run
C1000_RATE=${C1000_RATE:-500}
C1000_DUR=${C1000_DUR:-3}
STREAM_RATE=${STREAM_RATE:-200}
STREAM_CONNS=${STREAM_CONNS:-16}
CHUNKS=${CHUNKS:-8}           # SSE content chunks per streamed answer
CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-2}  # mock pause between SSE events: a buffering proxy would show
CAP_PCT=${CAP_PCT:-80}        # capture-drop run: % of sy-Nw's median max
HOLD=${HOLD:-10}              # its seconds
USERS=${USERS:-1000}          # Zipf-drawn end-user ids (sticky split keys)
WORKERS=${WORKERS:-1}         # nginx worker_processes = switchyard --workers, paired
NOCAP=${NOCAP:-1}             # 1: also sy-Nw-nocap (--no-capture) for the first N in $WORKERS
WRK=${WRK:-1}                 # 0: skip the wrk cross-check
STRACE=${STRACE:-0}           # 1: syscalls per request (strace -c -f) at the end
STRACE_N=${STRACE_N:-20000}
KEEP=${KEEP:-0}               # 1: keep the capture stores under $WORK
NGX_BASE_PORT=${NGX_BASE_PORT:-18380}  # nginx ports are searched upwards from here
TIMEOUT_MS=${TIMEOUT_MS:-10000}        # switchyard-load per-request timeout
PROFILE=${PROFILE:-0}
WORK=${WORK:-$(mktemp -d /tmp/switchyard-bench.XXXXXX)}
KEY=${BENCH_CLIENT_KEY:-sk-switchyard-bench-0123456789}
MODEL=bench                   # the two-arm route; direct and nginx ignore the model

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in curl node ss timeout awk; do command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"; done
[ "$WRK" = 0 ] || command -v wrk >/dev/null || die "wrk not found (scripts/install-deps.sh installs it; WRK=0 skips it)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (scripts/install-deps.sh installs nginx-light)"
for b in "$SY" "$MOCK" "$LOAD"; do
  [ -x "$b" ] || die "$b missing; build first: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target switchyard switchyard-mock switchyard-load"
done
for v in REPS CONNS_HI LOW_RATE LOW_CONNS HALF_PCT C1000 C1000_RATE STREAM_RATE STREAM_CONNS CAP_PCT USERS STRACE_N; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
awk -v d="$DUR" -v w="$WARM" -v h="$HOLD" -v c="$C1000_DUR" \
  'BEGIN { exit !(d > 0 && w >= 0 && h > 0 && c > 0 && d + w <= 300 && h + w <= 300) }' \
  || die "need DUR, HOLD, C1000_DUR > 0, WARM >= 0, DUR+WARM and HOLD+WARM <= 300"
# 1000 client sockets in switchyard-load, as many in the proxy, plus upstream ones
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((C1000 * 2 + 512)) ]; then
  ulimit -n $((C1000 * 2 + 512)) 2>/dev/null || die "ulimit -n is $(ulimit -n); need $((C1000 * 2 + 512)) for C1000=$C1000"
fi

# ---------------------------------------------------------------- processes
declare -a PIDS=()
SAMPLER="" STRACER=""
cleanup() {
  set +e; trap - ERR
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  [ -n "$STRACER" ] && kill -INT "$STRACER" 2>/dev/null
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { log "pid $p ignored SIGTERM; killing"; kill -KILL "$p" 2>/dev/null; }
  done
  wait 2>/dev/null
  [ "$KEEP" = 1 ] || rm -rf "$WORK"/sy-*/data
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
free_port() { # first free port >= $1
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); [ "$p" -lt $(($1 + 200)) ] || die "no free port near $1"; done
  echo "$p"
}
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
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }
# a server's processes: the PID we started plus its children (nginx workers)
proc_tree() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }
sum_status() { # pid field -> kB summed over the tree
  local s=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk -v f="$2:" '$1==f{print $2}' "/proc/$p/status" 2>/dev/null || true); s=$((s + ${v:-0}))
  done
  echo "$s"
}
cpu_ticks() { # utime+stime (all threads) summed over the tree
  local s=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || true); s=$((s + ${v:-0}))
  done
  echo "$s"
}

# ---------------------------------------------------------------- targets
declare -a TARGETS=()
declare -A T_PID=() T_PORT=() T_SSE=() T_KEY=() T_CAP=()
add_target() { # name pid port sse_prefix key [capture]
  TARGETS+=("$1"); T_PID[$1]=$2; T_PORT[$1]=$3; T_SSE[$1]=$4; T_KEY[$1]=$5; T_CAP[$1]=${6:-0}
}
url_of() { # target [sse]
  local pre=""
  [ "${2:-}" = sse ] && pre=${T_SSE[$1]}
  echo "http://127.0.0.1:${T_PORT[$1]}$pre/v1/chat/completions"
}

MOCK_PORT=""
start_all() {
  mkdir -p "$WORK"
  start_bg "$WORK/mock.log" "$MOCK" --listen 127.0.0.1:0 --chunks "$CHUNKS" --chunk-delay-ms "$CHUNK_DELAY_MS" --quiet
  local mock_pid=$LAST_PID
  MOCK_PORT=$(listen_port "$WORK/mock.log" "$mock_pid")
  add_target direct "$mock_pid" "$MOCK_PORT" "" ""
  log "mock pid=$mock_pid port=$MOCK_PORT (--chunks $CHUNKS --chunk-delay-ms $CHUNK_DELAY_MS)"

  local hash; hash=$("$SY" hash-key "$KEY")
  local port=$NGX_BASE_PORT w d sp
  for w in $WORKERS; do
    d=$WORK/nginx-${w}w; mkdir -p "$d/tmp"
    port=$(free_port "$port")
    sed -e "s|@PREFIX@|$d|g" -e "s|@WORKERS@|$w|g" -e "s|@PORT@|$port|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
      "$HERE/bench/nginx.conf.in" >"$d/nginx.conf"
    "$NGINX" -t -q -e "$d/error.log" -p "$d" -c "$d/nginx.conf" || die "nginx -t failed for $d/nginx.conf"
    start_bg "$d/stdout.log" "$NGINX" -g 'daemon off;' -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
    add_target "nginx-${w}w" "$LAST_PID" "$port" "/stream" ""
    wait_http "http://127.0.0.1:$port/" || die "nginx-${w}w did not start: $(tail -3 "$d/error.log")"
    log "nginx-${w}w pid=$LAST_PID port=$port (worker_processes $w)"
    port=$((port + 1))

    # As users run it: a client key, a sticky two-arm route, capture on with the
    # default durability (sync). Port 0: switchyard binds with SO_REUSEPORT, so a
    # fixed port could silently share traffic with someone else's instance.
    # limits.max_connections defaults to 10000 per process (>= C1000); gRPC is
    # off unless configured, as in a user's default config.
    d=$WORK/sy-${w}w; mkdir -p "$d"
    cat >"$d/config.json" <<EOF
{ "listen": "127.0.0.1:0", "workers": $w, "data_dir": "$d/data", "log_level": "warn",
  "upstreams": [ { "name": "mock", "base_url": "http://127.0.0.1:$MOCK_PORT/v1" } ],
  "client_keys": [ { "name": "bench", "sha256": "$hash" } ],
  "routes": [ { "name": "$MODEL", "arms": [
      { "name": "a", "upstream": "mock", "model": "gpt-4o-mini", "weight_bp": 5000 },
      { "name": "b", "upstream": "mock", "model": "gpt-4o-mini-b", "weight_bp": 5000 } ] } ] }
EOF
    start_bg "$d/switchyard.log" "$SY" --config "$d/config.json"
    sp=$(listen_port "$d/switchyard.log" "$LAST_PID")
    add_target "sy-${w}w" "$LAST_PID" "$sp" "" "$KEY" 1
    log "sy-${w}w pid=$LAST_PID port=$sp (--workers $w, auth on, two-arm route, capture on)"
    if [ "$NOCAP" = 1 ]; then
      NOCAP=done
      mkdir -p "$d-nocap"
      start_bg "$d-nocap/switchyard.log" "$SY" --config "$d/config.json" --no-capture --data-dir "$d-nocap/data"
      sp=$(listen_port "$d-nocap/switchyard.log" "$LAST_PID")
      add_target "sy-${w}w-nocap" "$LAST_PID" "$sp" "" "$KEY"
      log "sy-${w}w-nocap pid=$LAST_PID port=$sp (--workers $w, auth on, two-arm route, --no-capture)"
    fi
  done
}

# The request body: bench/chat.lua's ~1 KB chat request with model "bench";
# switchyard-load replaces "user" with a Zipf-drawn id (--users) and adds
# x-switchyard-user, so the two-arm route's sticky split sees many users.
BODY=$WORK/body.json
make_body() {
  sed -n '/^local body = \[\[/{s/^local body = \[\[//;s/\]\]$//;p}' "$HERE/bench/chat.lua" \
    | sed 's/"model":"gpt-4o-mini"/"model":"'"$MODEL"'"/' | awk '{print $0 "}"}' >"$BODY"
  node -e 'const b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (b.model !== process.argv[2] || !Array.isArray(b.messages)) process.exit(1)' "$BODY" "$MODEL" \
    || die "could not build the request body from bench/chat.lua"
}

# Every target must return the mock's answer (JSON and a complete SSE stream);
# switchyard must refuse a wrong key and split users over both arms, asking
# the mock for each arm's model.
verify() {
  local t m out k body n
  for t in "${TARGETS[@]}"; do for m in json sse; do
    k=${T_KEY[$t]:-sk-test}
    body=$(cat "$BODY"); [ "$m" = sse ] && body="${body%\}},\"stream\":true}"
    out=$(curl -sS --max-time 5 -H 'Content-Type: application/json' -H "Authorization: Bearer $k" \
      --data-binary "$body" -w '\nHTTP %{http_code} %{content_type}\n' "$(url_of "$t" "$m")" 2>&1 || true)
    if [ "$m" = json ]; then
      grep -q '"object":"chat.completion"' <<<"$out" && grep -q '^HTTP 200 application/json' <<<"$out" \
        || die "verify $t/$m: $(head -c 400 <<<"$out")"
    else
      n=$(grep -c '^data: {' <<<"$out" || true)
      grep -q '^data: \[DONE\]' <<<"$out" && grep -q '^HTTP 200 text/event-stream' <<<"$out" && [ "$n" -eq $((CHUNKS + 2)) ] \
        || die "verify $t/$m ($n events): $(head -c 400 <<<"$out")"
    fi
  done; done
  local arms a b i
  for t in "${TARGETS[@]}"; do
    [ -n "${T_KEY[$t]}" ] || continue
    out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Authorization: Bearer sk-wrong' \
      -H 'Content-Type: application/json' --data-binary "@$BODY" "$(url_of "$t")" || true)
    [ "$out" = 401 ] || die "verify $t: a wrong key got HTTP $out, not 401 (is auth on?)"
    a=0 b=0
    for i in $(seq 40); do
      arms=$(curl -sS --max-time 5 -D - -o "$WORK/verify.out" -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $KEY" -H "x-switchyard-user: verify-$i" --data-binary "@$BODY" "$(url_of "$t")" \
        | tr -d '\r' | awk -F': ' 'tolower($1)=="x-switchyard-arm"{print $2}')
      case $arms in
        a) grep -q '"model":"gpt-4o-mini"' "$WORK/verify.out" && a=$((a + 1)) ;;
        b) grep -q '"model":"gpt-4o-mini-b"' "$WORK/verify.out" && b=$((b + 1)) ;;
      esac
    done
    [ "$a" -ge 8 ] && [ "$b" -ge 8 ] && [ $((a + b)) -eq 40 ] \
      || die "verify $t: 40 users gave arm a $a times, arm b $b times (want both, with the arm's model)"
    log "verify $t: wrong key -> 401; 40 users split a=$a b=$b, each arm asks the mock for its model"
  done
  log "verify: all targets answer JSON and SSE ($CHUNKS chunks + role + stop + [DONE])"
}

# ---------------------------------------------------------------- load
RES=$WORK/results.jsonl
# sampler pid_of_target port count_conns -> writes "anon_peak_kb conns_peak" to $WORK/peak
start_sampler() {
  local pid=$1 port=$2 conns=$3 peakf=$WORK/peak base=0
  echo "0 0" >"$peakf"
  # connections already open to the port (for the mock: the proxies' upstream pools)
  [ "$conns" = 1 ] && base=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
  ( trap - ERR; set +e; pa=0 pc=0
    while :; do
      a=$(sum_status "$pid" RssAnon); c=0
      [ "$conns" = 1 ] && c=$(( $(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l) - base ))
      if [ "$a" -gt "$pa" ] || [ "$c" -gt "$pc" ]; then
        [ "$a" -gt "$pa" ] && pa=$a; [ "$c" -gt "$pc" ] && pc=$c
        echo "$pa $pc" >"$peakf.tmp" && mv -f "$peakf.tmp" "$peakf"  # atomic: the sampler is killed any time
      fi
      sleep 0.1
    done ) &
  SAMPLER=$!
}
stop_sampler() { # -> "anon_peak_kb conns_peak"
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  cat "$WORK/peak"
}
# load target json_out args... (bounded by --duration and an outer timeout)
load() {
  local t=$1 j=$2; shift 2
  # every run starts from an idle gateway: a backlog the closed-loop run left in
  # the capture queue would otherwise take CPU from the next run
  [ "${T_CAP[$t]}" = 1 ] && wait_capture_idle "http://127.0.0.1:${T_PORT[$t]}"
  timeout 400 "$LOAD" "$(url_of "$t" "${SSE:-}")" --body "$BODY" --users "$USERS" --timeout-ms "$TIMEOUT_MS" \
    --header "Authorization: Bearer ${T_KEY[$t]:-sk-test}" --json "$j" --quiet "$@" \
    || die "switchyard-load failed for $t ($*); see $j"
  kill -0 "${T_PID[$t]}" 2>/dev/null || die "$t (pid ${T_PID[$t]}) died during a run; see its log in $WORK"
}
jget() { node -e 'const d = require(process.argv[1]); let v = d;
  for (const k of process.argv[2].split(".")) v = v[k]; console.log(v)' "$1" "$2"; }
record() { # phase target rep report ticks anon_kb conns extra_json
  printf '{"phase":"%s","target":"%s","rep":%s,"report":"%s","ticks":%s,"anon_kb":%s,"conns":%s%s}\n' \
    "$1" "$2" "$3" "$4" "${5:-0}" "${6:-0}" "${7:-0}" "${8:-}" >>"$RES"
}
declare -A MAXRPS=()  # target:rep -> max req/s (closed loop, this rep)

phase_low() { # target rep
  local j=$WORK/low-$1-r$2.json
  load "$1" "$j" --rate "$LOW_RATE" --connections "$LOW_CONNS" --warmup "$WARM" --duration "$DUR"
  record low "$1" "$2" "$j"
  log "low rep=$2 $1: p50 $(jget "$j" latency_us.p50) p99 $(jget "$j" latency_us.p99) us"
}
phase_max() {
  local t=$1 j=$WORK/max-$1-r$2.json w=$WORK/maxwarm-$1-r$2.json c0 c1 pk
  awk -v w="$WARM" 'BEGIN { exit !(w > 0) }' && load "$t" "$w" --connections "$CONNS_HI" --duration "$WARM"
  # capture on: CPU from an idle writer until it has stored this run's records,
  # so the capture work of these requests is charged to them (and no other)
  [ "${T_CAP[$t]}" = 1 ] && wait_capture_idle "http://127.0.0.1:${T_PORT[$t]}"
  start_sampler "${T_PID[$t]}" "${T_PORT[$t]}" 0
  c0=$(cpu_ticks "${T_PID[$t]}")
  load "$t" "$j" --connections "$CONNS_HI" --duration "$DUR"
  pk=$(stop_sampler)
  [ "${T_CAP[$t]}" = 1 ] && wait_capture_idle "http://127.0.0.1:${T_PORT[$t]}"
  c1=$(cpu_ticks "${T_PID[$t]}")
  record max "$t" "$2" "$j" "$((c1 - c0))" "${pk% *}" 0
  MAXRPS[$t:$2]=$(jget "$j" throughput_rps)
  log "max rep=$2 $t: $(printf '%.0f' "${MAXRPS[$t:$2]}") req/s, ok $(jget "$j" requests.ok), cpu_ticks $((c1 - c0)), RssAnon peak ${pk% *} kB"
}
phase_half() {
  local t=$1 j=$WORK/half-$1-r$2.json rate
  rate=$(awk -v m="${MAXRPS[$t:$2]}" -v p="$HALF_PCT" 'BEGIN { r = int(m * p / 100); print (r < 1 ? 1 : r) }')
  load "$t" "$j" --rate "$rate" --connections "$CONNS_HI" --warmup "$WARM" --duration "$DUR"
  record half "$t" "$2" "$j" 0 0 0 ",\"rate\":$rate"
  log "half rep=$2 $t: $rate req/s, p99 $(jget "$j" latency_us.p99) us, failed $(jget "$j" requests.failed)"
  [ "$t" = direct ] && return 0
  # the reference for "added": the mock alone at the same offered rate, right after
  j=$WORK/halfref-$1-r$2.json
  load direct "$j" --rate "$rate" --connections "$CONNS_HI" --warmup "$WARM" --duration "$DUR"
  record halfref "$t" "$2" "$j" 0 0 0 ",\"rate\":$rate"
  log "half rep=$2 direct at $t's rate: p99 $(jget "$j" latency_us.p99) us"
}
phase_c1000() {
  local t=$1 j=$WORK/c1000-$1-r$2.json pk a0
  # RssAnon just before, idle: what the earlier runs left (heap the allocator kept)
  [ "${T_CAP[$t]}" = 1 ] && wait_capture_idle "http://127.0.0.1:${T_PORT[$t]}"
  a0=$(sum_status "${T_PID[$t]}" RssAnon)
  start_sampler "${T_PID[$t]}" "${T_PORT[$t]}" 1
  load "$t" "$j" --rate "$C1000_RATE" --connections "$C1000" --warmup 1 --duration "$C1000_DUR"
  pk=$(stop_sampler)
  record c1000 "$t" "$2" "$j" 0 "${pk% *}" "${pk#* }" ",\"anon_before_kb\":$a0"
  log "c$C1000 rep=$2 $t: RssAnon peak ${pk% *} kB (idle before: $a0 kB), ${pk#* } established connections seen, failed $(jget "$j" requests.failed)"
}
phase_stream() {
  local t=$1 j=$WORK/stream-$1-r$2.json
  SSE=sse load "$t" "$j" --stream --rate "$STREAM_RATE" --connections "$STREAM_CONNS" --warmup "$WARM" --duration "$DUR"
  record stream "$t" "$2" "$j"
  log "stream rep=$2 $t: ttfb p50 $(jget "$j" ttfb_us.p50) us, whole stream p50 $(jget "$j" latency_us.p50) us"
}
run_wrk() { # target secs (wrk takes whole seconds: rounded up)
  local s; s=$(awk -v d="$2" 'BEGIN { s = int(d); if (s < d) s++; print (s < 1 ? 1 : s) }')
  [ "${T_CAP[$1]}" = 1 ] && wait_capture_idle "http://127.0.0.1:${T_PORT[$1]}"
  BENCH_STREAM=0 BENCH_KEY=${T_KEY[$1]} BENCH_MODEL=$MODEL \
    timeout 400 wrk -t1 -c"$CONNS_HI" -d"$s"s --timeout 10s -s "$HERE/bench/chat.lua" "$(url_of "$1")"
}
phase_wrk() {
  local t=$1 out line
  awk -v w="$WARM" 'BEGIN { exit !(w > 0) }' && run_wrk "$t" "$WARM" >/dev/null
  out=$(run_wrk "$t" "$DUR") || die "wrk failed for $t"
  printf '### %s rep=%s\n%s\n' "$t" "$2" "$out" >>"$WORK/wrk.log"
  line=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk for $t: $out"
  line=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); printf ",\"wrk_%s\":%s", kv[1], kv[2] } }' <<<"$line")
  record wrk "$t" "$2" "" 0 0 0 "$line"
  log "wrk rep=$2 $t: $(grep -o 'rps=[0-9.]*' <<<"$out")"
}

metric_sum() { # url prefix -> sum of matching /metrics samples
  curl -s --max-time 5 "$1/metrics" | awk -v p="$2" 'index($1, p) == 1 { s += $2 } END { print s + 0 }'
}
# The capture writer takes the whole queue at once, so queue_depth 0 is not
# enough: idle = queue empty and records_total + dropped unchanged for 0.5 s.
wait_capture_idle() { # url
  local a b
  a=$(metric_sum "$1" switchyard_capture_)
  for _ in $(seq 240); do
    sleep 0.5
    b=$(metric_sum "$1" switchyard_capture_)  # queue depth + records + dropped + batches
    [ "$a" = "$b" ] && [ "$(metric_sum "$1" switchyard_capture_queue_depth)" = 0 ] && return 0
    a=$b
  done
  log "capture writer still busy after 120 s"
}
phase_capture() { # target
  local t=$1 url="http://127.0.0.1:${T_PORT[$1]}" j=$WORK/capture-$1.json rate d0 d1 s0 s1 r
  rate=$(for r in $(seq "$REPS"); do echo "${MAXRPS[$t:$r]}"; done | sort -g \
    | awk -v p="$CAP_PCT" '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print int(m * p / 100) }')
  wait_capture_idle "$url"   # the closed-loop runs may have left a backlog
  d0=$(metric_sum "$url" switchyard_capture_dropped_total); s0=$(metric_sum "$url" switchyard_capture_records_total)
  log "capture: $t open loop at $rate req/s (${CAP_PCT}% of its median max) for ${HOLD}s"
  load "$t" "$j" --rate "$rate" --connections "$CONNS_HI" --warmup "$WARM" --duration "$HOLD"
  wait_capture_idle "$url"
  d1=$(metric_sum "$url" switchyard_capture_dropped_total); s1=$(metric_sum "$url" switchyard_capture_records_total)
  record capture "$t" 0 "$j" 0 0 0 ",\"rate\":$rate,\"dropped\":$((d1 - d0)),\"stored\":$((s1 - s0))"
  log "capture: $t ok $(jget "$j" requests.ok) failed $(jget "$j" requests.failed), stored $((s1 - s0)), dropped $((d1 - d0))"
}

# strace -c -f over a fixed number of closed-loop requests: syscalls per request
phase_strace() { # target
  local t=$1 j=$WORK/strace-$1.json out=$WORK/strace-$1.txt args=() p
  for p in $(proc_tree "${T_PID[$t]}"); do args+=(-p "$p"); done
  strace -c -f -q -o "$out" "${args[@]}" 2>"$WORK/strace-$1.err" &
  STRACER=$!
  sleep 1
  kill -0 "$STRACER" 2>/dev/null || { STRACER=""; log "strace could not attach to $t: $(head -1 "$WORK/strace-$1.err")"; return 0; }
  load "$t" "$j" --connections "$CONNS_HI" --requests "$STRACE_N"
  kill -INT "$STRACER" 2>/dev/null; wait "$STRACER" 2>/dev/null || true; STRACER=""
  local n; n=$(jget "$j" requests.completed)
  echo "strace -c -f, $t, $n requests at c=$CONNS_HI:"
  # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
  awk '$NF != "total" && /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ { print $4, $NF }' "$out" | sort -rn >"$out.calls"
  awk -v n="$n" '{ s += $1; if (NR <= 5) top = top sprintf(" %s %.2f", $2, $1 / n) }
    END { printf "  syscalls per request: %.2f (%d calls)\n  top 5 (per request):%s\n", s / n, s, top }' "$out.calls"
}

main() {
  log "work dir $WORK"
  start_all
  make_body
  verify
  local t idle=""
  for t in "${TARGETS[@]}"; do idle="$idle $t=$(( $(sum_status "${T_PID[$t]}" RssAnon) / 1024 ))MiB"; done
  : >"$RES"; : >"$WORK/wrk.log"
  local per; per=$(awk -v d="$DUR" -v w="$WARM" -v c="$C1000_DUR" -v wrk="$WRK" \
    'BEGIN { print 4 * (d + w) + (wrk ? d + w : 0) + w + c + 1 + 6 }')
  local nref=$((${#TARGETS[@]} - 1))
  log "${#TARGETS[@]} targets x $REPS rep(s) x ~${per}s (+ $nref direct reference runs per rep) + capture hold ${HOLD}s: ~$(awk -v p="$per" -v n="$((${#TARGETS[@]} * REPS))" -v h="$HOLD" -v x="$((nref * REPS))" -v d="$DUR" -v w="$WARM" 'BEGIN { printf "%.1f", (p * n + x * (d + w + 0.5) + h + 20) / 60 }') min"
  local st0; st0=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  local r ph
  for r in $(seq "$REPS"); do
    for ph in low max half c1000 stream wrk; do
      [ "$ph" = wrk ] && [ "$WRK" = 0 ] && continue
      for t in "${TARGETS[@]}"; do "phase_$ph" "$t" "$r"; done
    done
  done
  for t in "${TARGETS[@]}"; do if [[ "$t" =~ ^sy-[0-9]+w$ ]]; then phase_capture "$t"; fi; done
  local st1; st1=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  local steal; steal=$(echo "$st0 $st1" | awk '{d=$4-$2; printf "%.1f", (d > 0 ? 100*($3-$1)/d : 0)}')

  local hdr="$WORK/header.txt"
  {
    echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r); $("$NGINX" -v 2>&1 | sed 's/.*: //'); $("$SY" --version 2>&1 | head -1); load average at end: $(cut -d' ' -f1-3 /proc/loadavg); CPU steal during run: ${steal}%"
    echo "driver switchyard-load (~1 KB chat body, model \"$MODEL\", --users $USERS Zipf), cross-check wrk -t1 -c$CONNS_HI; driver, mock and proxy share the $(nproc) cores; idle RssAnon:$idle"
    echo "REPS=$REPS DUR=${DUR}s WARM=${WARM}s; low: open loop $LOW_RATE req/s c=$LOW_CONNS; max: closed loop c=$CONNS_HI; half: open loop at ${HALF_PCT}% of the target's max, c=$CONNS_HI, and direct at that rate; RssAnon@$C1000: $C1000 open connections, $C1000_RATE req/s for ${C1000_DUR}s; stream: open loop $STREAM_RATE req/s c=$STREAM_CONNS, mock $CHUNKS chunks ${CHUNK_DELAY_MS} ms apart; capture: ${CAP_PCT}% of max for ${HOLD}s"
  } >"$hdr"
  echo
  cat "$hdr"
  echo
  node "$HERE/bench/summarize.mjs" "$RES" "$(getconf CLK_TCK)" "$WORK/table.md" "$hdr"
  if [ "$STRACE" = 1 ]; then
    echo
    if command -v strace >/dev/null; then
      for t in "${TARGETS[@]}"; do if [[ "$t" =~ ^(nginx|sy)-[0-9]+w$ ]]; then phase_strace "$t"; fi; done
    else
      echo "STRACE=1: strace is not installed; skipped (apt-get install strace)"
    fi
  fi
  echo
  echo "table: $WORK/table.md; raw: $RES, $WORK/*.json (switchyard-load reports), $WORK/wrk.log"
  if [ "$PROFILE" = 1 ]; then
    cleanup; PIDS=()
    "$HERE/bench/profile.sh"
  fi
  return 0
}
main "$@"; exit $?  # one line: bash has read it whole, so editing this file mid-run is safe
