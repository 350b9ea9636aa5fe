#!/usr/bin/env bash
# bench_capture.sh - what the capture store costs, in one run on 127.0.0.1:
#   1. maximum throughput (closed loop, $CONNS connections) of switchyard with
#      capture on and with --no-capture, interleaved $REPS times;
#   2. capture drops at 80% of the capture-on maximum: an open-loop run at that
#      rate for $HOLD seconds, then switchyard_capture_dropped_total from /metrics.
# Everything uses one switchyard-mock upstream and switchyard-load (closed and
# open loop). Client auth is on (a client key), as users run it.
#
#   loadtest/bench_capture.sh                   # REPS=3 DUR=5 HOLD=20 CONNS=64
#   REPS=1 DUR=2 HOLD=5 loadtest/bench_capture.sh
# Builds nothing: uses $BUILD (default build/) binaries. Only processes started
# here are stopped (by PID) on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
REPS=${REPS:-3}
DUR=${DUR:-5}
HOLD=${HOLD:-20}
CONNS=${CONNS:-64}
DURABILITY=${DURABILITY:-sync}
SY=$BUILD/gateway/switchyard
MOCK=$BUILD/loadtest/switchyard-mock
LOAD=$BUILD/loadtest/switchyard-load
for b in "$SY" "$MOCK" "$LOAD"; do
  [ -x "$b" ] || { echo "bench_capture: missing $b (build first)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/sy-bench-capture.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD... : runs CMD with stdout to $work/NAME.out, waits for its
# "listening on http://..." line, sets URL. (Not in a subshell: pids must stick.)
start() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    local url
    url=$(sed -n 's/.*listening on \(http:[^ ]*\)$/\1/p' "$work/$name.out" | head -n 1)
    if [ -n "$url" ]; then
      URL=$url
      return 0
    fi
    sleep 0.1
  done
  echo "bench_capture: $name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}

stop_last() {
  local p=${pids[-1]}
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset 'pids[-1]'
}

key=sy-bench-$RANDOM$RANDOM
sha=$(printf '%s\n' "$key" | "$SY" hash-key)
start mock "$MOCK" --listen 127.0.0.1:0 --quiet
mock_url=$URL
cat >"$work/config.json" <<EOF
{"listen": "127.0.0.1:0", "workers": 1,
 "upstreams": [{"name": "mock", "base_url": "$mock_url/v1"}],
 "client_keys": [{"name": "bench", "sha256": "$sha"}],
 "capture": {"durability": "$DURABILITY"}}
EOF

# gw MODE: starts a gateway (MODE capture|nocapture) with a fresh data dir; sets URL.
gw() {
  local extra=()
  [ "$1" = nocapture ] && extra=(--no-capture)
  rm -rf "$work/data"
  start "gw-$1" "$SY" --config "$work/config.json" --data-dir "$work/data" --log-level warn "${extra[@]}"
}

# rps JSON_REPORT: prints throughput from a switchyard-load JSON report.
rps() { node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(Math.round(r.throughput_rps ?? r.throughput ?? 0))' "$1"; }
field() { node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));const v=process.argv[2].split(".").reduce((o,k)=>o?.[k],r);console.log(v ?? "")' "$1" "$2"; }

declare -A results
for rep in $(seq 1 "$REPS"); do
  for mode in capture nocapture; do
    gw "$mode"
    url=$URL
    "$LOAD" "$url/v1/chat/completions" --connections "$CONNS" --duration "$DUR" --warmup 1 \
      --header "Authorization: Bearer $key" --users 1000 --quiet --json "$work/max-$mode-$rep.json"
    results[$mode]+="$(rps "$work/max-$mode-$rep.json") "
    stop_last
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max_cap=$(echo "${results[capture]}" | median)
max_nocap=$(echo "${results[nocapture]}" | median)

rate=$(( max_cap * 8 / 10 ))
gw capture
url=$URL
"$LOAD" "$url/v1/chat/completions" --rate "$rate" --connections "$CONNS" --duration "$HOLD" \
  --warmup 1 --header "Authorization: Bearer $key" --users 1000 --quiet --json "$work/hold.json"
sleep 1
metrics=$(curl -s "$url/metrics")
dropped=$(echo "$metrics" | awk '/^switchyard_capture_dropped_total/ {s += $2} END {print s + 0}')
stored=$(echo "$metrics" | awk '/^switchyard_capture_records_total/ {print $2}')
hold_done=$(field "$work/hold.json" requests.ok)
hold_failed=$(field "$work/hold.json" requests.failed)
hold_p99=$(field "$work/hold.json" latency_us.p99)
stop_last

cat <<EOF

switchyard capture cost ($(date -u +%FT%TZ), $(nproc) cores; switchyard-load
closed loop, $CONNS connections, ${DUR}s x $REPS interleaved, 1 worker, client auth on,
capture durability $DURABILITY; the load generator, gateway and mock share the cores)

| | req/s (median) | runs |
|---|--:|---|
| capture on | $max_cap | ${results[capture]}|
| --no-capture | $max_nocap | ${results[nocapture]}|
| ratio on/off | $(node -e "console.log(($max_cap/$max_nocap).toFixed(2))")x | |

80% of the capture-on maximum: open loop at $rate req/s for ${HOLD}s:
  ok $hold_done, failed $hold_failed, p99 ${hold_p99} us, captures stored $stored, dropped $dropped
EOF
