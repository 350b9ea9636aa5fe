#!/usr/bin/env bash
# bench.sh - what does switchyard cost in front of an OpenAI-compatible API,
# next to nginx proxy_pass?  One run, everything on 127.0.0.1, one shared
# switchyard-mock upstream:
#   direct      the mock itself
#   nginx-Nw    nginx proxy_pass -> mock (worker_processes N, keepalive pool)
#   sy-Nw       switchyard --workers N -> mock, client auth ON (a client key),
#               capture store on (the default, as users run it)
#   sy-Nw-nocap the same with --no-capture (proxy path alone), first N only
# for N in $WORKERS (default "1 2"). wrk (-t1, loadtest/bench/chat.lua, ~1 KB
# chat request) runs against the targets interleaved, REPS times; the table
# shows medians: added latency at one connection, throughput at $CONNS_HI
# connections, CPU per request and peak RSS of the proxy process(es), and for
# stream:true the added time to the first SSE byte (node ttfb.cjs).
# Method and latest results: loadtest/BENCH.md.
#
#   loadtest/bench.sh                       # full run (~8 min with defaults)
#   REPS=1 DUR=2 loadtest/bench.sh          # smoke run (~2 min)
#   WORKERS=1 MODES=json loadtest/bench.sh  # subset
#   PROFILE=1 loadtest/bench.sh             # + callgrind profile (bench/profile.sh)
#
# Only processes started here are stopped (by PID) on exit.
set -Eeuo pipefail
trap 'echo "bench.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SY=${SY:-$BUILD/gateway/switchyard}
MOCK=${MOCK:-$BUILD/loadtest/switchyard-mock}
REPS=${REPS:-3}               # interleaved repetitions
DUR=${DUR:-5}                 # measured seconds per wrk run
WARM=${WARM:-1}               # warm-up seconds before each measured run
CONNS_HI=${CONNS_HI:-64}      # the throughput run's connections (the latency run is c=1)
MODES=${MODES:-"json sse"}    # json = non-streaming; sse = "stream":true (mock --chunks $CHUNKS)
WORKERS=${WORKERS:-"1 2"}     # nginx worker_processes = switchyard --workers, paired
NOCAP=${NOCAP:-1}             # 1: also sy-Nw-nocap (--no-capture) for the first N in $WORKERS
KEEP=${KEEP:-0}               # 1: keep the capture stores under $WORK (they grow ~100 MB/run)
CHUNKS=${CHUNKS:-8}           # SSE content chunks per streamed answer
TTFB_N=${TTFB_N:-50}          # sequential stream requests per TTFB sample (0 = skip)
TTFB_DELAY_MS=${TTFB_DELAY_MS:-2}  # mock pause between SSE events in the TTFB runs
NGX_BASE_PORT=${NGX_BASE_PORT:-18380}  # nginx ports are searched upwards from here
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
PROFILE=${PROFILE:-0}
WORK=${WORK:-$(mktemp -d /tmp/switchyard-bench.XXXXXX)}
KEY=${BENCH_CLIENT_KEY:-sk-switchyard-bench-0123456789}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in wrk curl node ss; do command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (scripts/install-deps.sh installs nginx-light)"
[ -x "$SY" ] && [ -x "$MOCK" ] || die "build first: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target switchyard switchyard-mock"

# ---------------------------------------------------------------- processes
declare -a PIDS=()
SAMPLER=""
cleanup() {
  set +e
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
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
# start_bg logfile cmd... ; sets LAST_PID
start_bg() {
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
# wait for "... listening on http://HOST:PORT" in a log; prints PORT
listen_port() { # logfile pid
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
cpu_ticks() { local s=0 p v; for p in $(proc_tree "$1"); do
  v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || true); s=$((s + ${v:-0})); done; echo "$s"; }

# ---------------------------------------------------------------- targets
declare -a TARGETS=()
declare -A T_PID=() T_BASE=() T_SSE_PREFIX=() T_KEY=()
add_target() { # name pid base_url sse_prefix key
  TARGETS+=("$1"); T_PID[$1]=$2; T_BASE[$1]=$3; T_SSE_PREFIX[$1]=$4; T_KEY[$1]=$5
}
url_of() { # target mode
  if [ "$2" = sse ]; then echo "${T_BASE[$1]}${T_SSE_PREFIX[$1]}/v1/chat/completions"
  else echo "${T_BASE[$1]}/v1/chat/completions"; fi
}

start_all() {
  mkdir -p "$WORK"
  start_bg "$WORK/mock.log" "$MOCK" --listen 127.0.0.1:0 --chunks "$CHUNKS" --quiet
  local mock_pid=$LAST_PID mock_port
  mock_port=$(listen_port "$WORK/mock.log" "$mock_pid")
  add_target direct "$mock_pid" "http://127.0.0.1:$mock_port" "" ""
  log "mock pid=$mock_pid port=$mock_port"

  local hash; hash=$("$SY" hash-key "$KEY")
  local port=$NGX_BASE_PORT w d
  for w in $WORKERS; do
    d=$WORK/nginx-${w}w; mkdir -p "$d/tmp"
    port=$(free_port "$port")
    sed -e "s|@PREFIX@|$d|g" -e "s|@WORKERS@|$w|g" -e "s|@PORT@|$port|g" -e "s|@MOCK_PORT@|$mock_port|g" \
      "$HERE/bench/nginx.conf.in" >"$d/nginx.conf"
    "$NGINX" -t -q -e "$d/error.log" -p "$d" -c "$d/nginx.conf" || die "nginx -t failed for $d/nginx.conf"
    start_bg "$d/stdout.log" "$NGINX" -g 'daemon off;' -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
    add_target "nginx-${w}w" "$LAST_PID" "http://127.0.0.1:$port" "/stream" ""
    wait_http "http://127.0.0.1:$port/" || die "nginx-${w}w did not start: $(tail -3 "$d/error.log")"
    log "nginx-${w}w pid=$LAST_PID port=$port (worker_processes $w)"
    port=$((port + 1))

    # port 0: the kernel picks; switchyard listens with SO_REUSEPORT, so a
    # fixed port could silently share traffic with someone else's instance.
    d=$WORK/sy-${w}w; mkdir -p "$d"
    cat >"$d/config.json" <<EOF
{ "listen": "127.0.0.1:0", "workers": $w, "data_dir": "$d/data", "log_level": "warn",
  "upstreams": [ { "name": "mock", "base_url": "http://127.0.0.1:$mock_port/v1" } ],
  "client_keys": [ { "name": "bench", "sha256": "$hash" } ] }
EOF
    start_bg "$d/switchyard.log" "$SY" --config "$d/config.json"
    local sp; sp=$(listen_port "$d/switchyard.log" "$LAST_PID")
    add_target "sy-${w}w" "$LAST_PID" "http://127.0.0.1:$sp" "" "$KEY"
    log "sy-${w}w pid=$LAST_PID port=$sp (--workers $w, auth on, capture on)"
    if [ "$NOCAP" = 1 ]; then
      NOCAP=done
      mkdir -p "$d-nocap"
      start_bg "$d-nocap/switchyard.log" "$SY" --config "$d/config.json" --no-capture --data-dir "$d-nocap/data"
      sp=$(listen_port "$d-nocap/switchyard.log" "$LAST_PID")
      add_target "sy-${w}w-nocap" "$LAST_PID" "http://127.0.0.1:$sp" "" "$KEY"
      log "sy-${w}w-nocap pid=$LAST_PID port=$sp (--workers $w, auth on, --no-capture)"
    fi
  done
}

# Every target must return the mock's answer (JSON and a complete SSE stream),
# and switchyard must refuse a wrong key.
body_of() { # mode
  local b; b=$(sed -n '/^local body = \[\[/{s/^local body = \[\[//;s/\]\]$//;p}' "$HERE/bench/chat.lua")
  if [ "$1" = sse ]; then echo "$b,\"stream\":true}"; else echo "$b}"; fi
}
verify() {
  local t m out k
  for t in "${TARGETS[@]}"; do for m in json sse; do
    k=${T_KEY[$t]:-sk-test}
    out=$(curl -sS --max-time 5 -H 'Content-Type: application/json' -H "Authorization: Bearer $k" \
      --data-binary "$(body_of "$m")" -w '\nHTTP %{http_code} %{content_type}\n' "$(url_of "$t" "$m")" 2>&1 || true)
    if [ "$m" = json ]; then
      grep -q '"object":"chat.completion"' <<<"$out" && grep -q '^HTTP 200 application/json' <<<"$out" \
        || die "verify $t/$m: $(head -c 400 <<<"$out")"
    else
      local n; n=$(grep -c '^data: {' <<<"$out" || true)
      grep -q '^data: \[DONE\]' <<<"$out" && grep -q '^HTTP 200 text/event-stream' <<<"$out" && [ "$n" -eq $((CHUNKS + 2)) ] \
        || die "verify $t/$m ($n events): $(head -c 400 <<<"$out")"
    fi
  done; done
  for t in "${TARGETS[@]}"; do
    [ -n "${T_KEY[$t]}" ] || continue
    out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Authorization: Bearer sk-wrong' \
      -H 'Content-Type: application/json' --data-binary "$(body_of json)" "$(url_of "$t" json)" || true)
    [ "$out" = 401 ] || die "verify $t: a wrong key got HTTP $out, not 401 (is auth on?)"
  done
  log "verify: all targets answer JSON and SSE ($CHUNKS chunks + role + stop + [DONE]); wrong key -> 401"
}

# ---------------------------------------------------------------- load
RES=$WORK/results.tsv
TTFB=$WORK/ttfb.tsv
run_wrk() { # target mode conns secs
  BENCH_STREAM=$([ "$2" = sse ] && echo 1 || echo 0) BENCH_KEY=${T_KEY[$1]} \
    wrk -t1 -c"$3" -d"$4"s --timeout "$WRK_TIMEOUT" -s "$HERE/bench/chat.lua" "$(url_of "$1" "$2")"
}
measure() { # target mode conns rep
  local t=$1 m=$2 c=$3 r=$4 pid=${T_PID[$1]} out line c0 c1 peakf=$WORK/rss.peak
  run_wrk "$t" "$m" "$c" "$WARM" >/dev/null
  echo "0 0" >"$peakf"
  ( pk=0; pa=0
    while :; do
      v=$(sum_status "$pid" VmRSS); a=$(sum_status "$pid" RssAnon)
      if [ "$v" -gt "$pk" ] || [ "$a" -gt "$pa" ]; then
        [ "$v" -gt "$pk" ] && pk=$v; [ "$a" -gt "$pa" ] && pa=$a
        echo "$pk $pa" >"$peakf.tmp" && mv -f "$peakf.tmp" "$peakf"  # atomic: the sampler is killed any time
      fi
      sleep 0.25
    done ) &
  SAMPLER=$!
  c0=$(cpu_ticks "$pid")
  out=$(run_wrk "$t" "$m" "$c" "$DUR")
  c1=$(cpu_ticks "$pid")
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  printf '### %s %s c=%s rep=%s\n%s\n' "$t" "$m" "$c" "$r" "$out" >>"$WORK/wrk.log"
  line=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk for $t/$m/c$c: $out"
  kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) died during the run; see its log in $WORK"
  local pk=0 pa=0; read -r pk pa <"$peakf" || true
  printf '%s\t%s\t%s\t%s\t%s rss_kb=%s anon_kb=%s cpu_ticks=%s\n' "$m" "$c" "$t" "$r" "${line#RESULT }" "$pk" "$pa" "$((c1 - c0))" >>"$RES"
  log "$m c=$c rep=$r $t: $(awk '{print $3, $4, $6, $10}' <<<"${line#RESULT }") cpu_ticks=$((c1 - c0))"
}
measure_ttfb() { # target rep
  local out
  out=$(node "$HERE/bench/ttfb.cjs" "$(url_of "$1" sse)" "$TTFB_N" "${T_KEY[$1]:-sk-test}" "$TTFB_DELAY_MS")
  printf '%s\t%s\t%s\n' "$1" "$2" "${out#RESULT }" >>"$TTFB"
  log "ttfb rep=$2 $1: ${out#RESULT }"
}

main() {
  log "work dir $WORK"
  start_all
  verify
  local t idle=""
  for t in "${TARGETS[@]}"; do idle="$idle $t=$(( $(sum_status "${T_PID[$t]}" VmRSS) / 1024 ))MB"; done
  : >"$RES"; : >"$TTFB"
  local nrun=0 m c r
  for m in $MODES; do nrun=$((nrun + 2 * REPS * ${#TARGETS[@]})); done
  log "running $nrun measurements of ${WARM}s+${DUR}s (~$(( nrun * (WARM + DUR + 1) / 60 + 1 )) min)"
  local st0; st0=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  for m in $MODES; do for c in 1 "$CONNS_HI"; do
    for r in $(seq "$REPS"); do for t in "${TARGETS[@]}"; do measure "$t" "$m" "$c" "$r"; done; done
  done; done
  if [[ " $MODES " == *" sse "* ]] && [ "$TTFB_N" -gt 0 ]; then
    for r in $(seq "$REPS"); do for t in "${TARGETS[@]}"; do measure_ttfb "$t" "$r"; done; done
  fi
  local st1; st1=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  local steal; steal=$(echo "$st0 $st1" | awk '{d=$4-$2; printf "%.1f", (d > 0 ? 100*($3-$1)/d : 0)}')
  # VmHWM: each process's own lifetime peak (for nginx, master + workers summed)
  : >"$WORK/hwm.tsv"
  for t in "${TARGETS[@]}"; do printf '%s\t%s\n' "$t" "$(sum_status "${T_PID[$t]}" VmHWM)" >>"$WORK/hwm.tsv"; done

  echo
  echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r); $("$NGINX" -v 2>&1 | sed 's/.*: //'); $("$SY" --version 2>&1 | head -1); CPU steal during run: ${steal}%"
  echo "wrk -t1 shares the $(nproc) cores with the mock and the proxy; idle RSS:$idle"
  echo "REPS=$REPS DUR=${DUR}s WARM=${WARM}s c=1 and c=$CONNS_HI; mock --chunks $CHUNKS; TTFB: $TTFB_N sequential streams, ${TTFB_DELAY_MS} ms between events"
  echo
  node "$HERE/bench/summarize.cjs" "$RES" "$TTFB" "$WORK/hwm.tsv" "$(getconf CLK_TCK)" "$CONNS_HI" | tee "$WORK/summary.md"
  echo
  echo "raw: $RES $TTFB, wrk output: $WORK/wrk.log"
  if [ "$PROFILE" = 1 ]; then
    cleanup; PIDS=()
    "$HERE/bench/profile.sh"
  fi
}
main "$@"
