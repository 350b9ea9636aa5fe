#!/usr/bin/env bash
# bench_grpc.sh - unary gRPC inference versus HTTP through the same switchyard
# in front of the same switchyard-mock, in one run on 127.0.0.1, plus the
# admin mutation latency (Promote round trip):
#   switchyard --workers $WORKERS, client key auth on, capture on with
#   durability nosync, --grpc-listen 127.0.0.1:0, --grpc-admin-listen
#   127.0.0.1:0 with one admin token, route "flip" with arms a and b.
# bench/grpc_bench.py (python3-grpcio + http.client, the same harness for both
# protocols) sends bench/chat.lua's ~1 KB chat request:
#   - $N sequential calls per protocol (1 in flight): latency p50/p99,
#   - $CONC threads for $DUR s per protocol (closed loop): calls/s,
#   interleaved over $REPS rounds (medians), gateway CPU per call from /proc,
#   - switchyard-load (C) over HTTP as the reference client,
#   - $ADMIN_N Promote calls on one admin channel (alternating arms) and
#     $CTL_N `switchyardctl routes promote` runs (process start included).
# Prints one table with the gRPC/HTTP ratios. Python is the client and may be
# the bottleneck of the throughput rows (its CPU use is in the table).
# Method and latest results: loadtest/BENCH.md ("gRPC vs HTTP").
#
#   loadtest/bench_grpc.sh                  # full run (~2 min with defaults)
#   N=400 DUR=3 REPS=1 loadtest/bench_grpc.sh   # smoke run
#
# Only processes started here are stopped (by PID) on exit.
set -Eeuo pipefail
trap 'echo "bench_grpc.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-gb}
SY=${SY:-$BUILD/gateway/switchyard}
MOCK=${MOCK:-$BUILD/loadtest/switchyard-mock}
LOAD=${LOAD:-$BUILD/loadtest/switchyard-load}
CTL=${CTL:-$BUILD/ctl/switchyardctl}
PY=${PY:-/usr/bin/python3}      # Debian's python3 with python3-grpcio and grpc_tools
N=${N:-2000}                    # sequential calls per protocol (split over the rounds)
DUR=${DUR:-10}                  # seconds per throughput run
CONC=${CONC:-16}                # calls in flight in the throughput runs
REPS=${REPS:-2}                 # interleaved rounds
WORKERS=${WORKERS:-2}           # switchyard --workers
GRPC_CHANNELS=${GRPC_CHANNELS:-1}  # gRPC channels (HTTP/2 connections) shared by the $CONC threads
ADMIN_N=${ADMIN_N:-50}          # Promote calls on the python admin stub
CTL_N=${CTL_N:-20}              # switchyardctl routes promote runs
KEEP=${KEEP:-0}                 # 1: keep $WORK (logs, capture store, results.json)
WORK=${WORK:-$(mktemp -d /tmp/switchyard-bench-grpc.XXXXXX)}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in N DUR CONC REPS WORKERS GRPC_CHANNELS ADMIN_N CTL_N; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a positive integer"
done
[ "$DUR" -le 300 ] && [ "$N" -le 200000 ] && [ "$CONC" -le 512 ] || die "N, DUR or CONC too large"
for b in "$SY" "$MOCK" "$LOAD" "$CTL"; do
  [ -x "$b" ] || die "$b missing; build first: cmake -S . -B build-gb -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-gb -j2 --target switchyard switchyard-mock switchyard-load switchyardctl"
done
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null || die "$PY lacks grpc/grpc_tools (apt install python3-grpcio python3-grpc-tools)"

# ---------------------------------------------------------------- processes
declare -a PIDS=()
cleanup() {
  set +e
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { log "pid $p ignored SIGTERM; killing"; kill -KILL "$p" 2>/dev/null; }
  done
  wait 2>/dev/null
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() { # logfile cmd... ; sets LAST_PID
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
# waits for a line matching the extended regex $2 in log $1 of process $3;
# prints the line's last word (HOST:PORT or the URL)
wait_line() {
  local l
  for _ in $(seq 200); do
    l=$(grep -E -m1 "$2" "$1" 2>/dev/null || true)
    [ -n "$l" ] && { echo "${l##* }"; return 0; }
    kill -0 "$3" 2>/dev/null || break
    sleep 0.05
  done
  die "no line /$2/ in $1: $(tail -5 "$1")"
}

main() {
  mkdir -p "$WORK"
  log "work dir $WORK"
  mkdir -p "$WORK/stubs"
  "$PY" -m grpc_tools.protoc -I "$ROOT/proto" --python_out="$WORK/stubs" --grpc_python_out="$WORK/stubs" \
    "$ROOT"/proto/switchyard/v1/*.proto || die "grpc_tools.protoc failed"

  start_bg "$WORK/mock.log" "$MOCK" --listen 127.0.0.1:0 --quiet
  local mock_pid=$LAST_PID mock_url
  mock_url=$(wait_line "$WORK/mock.log" 'listening on http://' "$mock_pid")
  log "mock pid=$mock_pid $mock_url"

  # fresh secrets per run; only their SHA-256 goes into the config
  local key token
  key=sk-bench-grpc-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  token=adm-bench-grpc-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  cat >"$WORK/config.json" <<EOF
{ "listen": "127.0.0.1:0", "workers": $WORKERS, "data_dir": "$WORK/data", "log_level": "warn",
  "upstreams": [ { "name": "mock", "base_url": "$mock_url/v1" } ],
  "client_keys": [ { "name": "bench", "sha256": "$("$SY" hash-key "$key")" } ],
  "capture": { "durability": "nosync" },
  "routes": [ { "name": "flip", "arms": [
      { "name": "a", "upstream": "mock", "model": "m-a", "weight_bp": 10000 },
      { "name": "b", "upstream": "mock", "model": "m-b", "weight_bp": 0 } ] } ],
  "grpc": { "listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
            "admin_tokens": [ { "name": "bench", "sha256": "$("$SY" hash-key "$token")", "role": "admin" } ] } }
EOF
  # the flags say it again so the run does not depend on config defaults
  start_bg "$WORK/switchyard.log" "$SY" --config "$WORK/config.json" \
    --grpc-listen 127.0.0.1:0 --grpc-admin-listen 127.0.0.1:0 --capture-durability nosync
  local sy_pid=$LAST_PID http grpc admin
  http=$(wait_line "$WORK/switchyard.log" '^switchyard listening on http://' "$sy_pid")
  grpc=$(wait_line "$WORK/switchyard.log" '^switchyard grpc listening on ' "$sy_pid")
  admin=$(wait_line "$WORK/switchyard.log" '^switchyard grpc-admin listening on ' "$sy_pid")
  http=${http#http://}
  log "switchyard pid=$sy_pid http=$http grpc=$grpc admin=$admin (--workers $WORKERS, auth on, capture nosync)"

  # a wrong key must be refused (auth is really on); grpc_bench.py checks gRPC
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Authorization: Bearer sk-wrong' \
    -H 'Content-Type: application/json' -d '{"model":"m","messages":[{"role":"user","content":"x"}]}' \
    "http://$http/v1/chat/completions" || true)
  [ "$code" = 401 ] || die "a wrong key got HTTP $code, not 401"

  echo
  echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -r); $("$SY" --version 2>&1 | head -1); python $("$PY" -c 'import sys, grpc; print(sys.version.split()[0], "grpcio", grpc.__version__)')"
  echo "client, gateway ($WORKERS workers) and mock share the $(nproc) cores; N=$N sequential calls, $CONC in flight for ${DUR}s (gRPC: $GRPC_CHANNELS channel(s), HTTP: $CONC connections), $REPS interleaved rounds (medians); request: bench/chat.lua's JSON body"
  echo
  timeout $((DUR * REPS * 2 + DUR + N / 10 + 600)) "$PY" "$HERE/bench/grpc_bench.py" \
    --stubs "$WORK/stubs" --grpc "$grpc" --http "$http" --admin "$admin" --key "$key" \
    --token "$token" --route flip --arms a,b --sy-pid "$sy_pid" --n "$N" --dur "$DUR" \
    --conc "$CONC" --reps "$REPS" --admin-n "$ADMIN_N" --ctl "$CTL" --ctl-n "$CTL_N" \
    --grpc-channels "$GRPC_CHANNELS" --load "$LOAD" --json "$WORK/results.json"
  kill -0 "$sy_pid" 2>/dev/null || die "switchyard died during the run; see $WORK/switchyard.log"
}
main "$@"
