#!/usr/bin/env bash
# profile.sh - where does switchyard's CPU go per proxied request?
#  1. callgrind: switchyard (1 worker, client auth on) runs under
#     valgrind --tool=callgrind in front of switchyard-mock; after a warm-up the
#     counters are zeroed, wrk -c$PROF_CONNS runs for $PROF_DUR s per mode, and
#     the counters are dumped. Prints user-space instructions per request by
#     library (self cost) and the top functions (self and inclusive).
#  2. natively (no valgrind): user vs kernel CPU split at c=$PROF_CONNS, and
#     syscalls per request (strace -c -f), since callgrind only sees user space.
# Usage: loadtest/bench/profile.sh   (PROF_MODES="json sse" PROF_DUR=5 PROF_CONNS=8
#        PROF_ARGS=--no-capture for the proxy path without the capture store;
#        BENCH_UNIQUE=1 makes every request's user turn unique, see chat.lua)
# Only processes started here are stopped (by PID) on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SY=${SY:-$BUILD/gateway/switchyard}
MOCK=${MOCK:-$BUILD/loadtest/switchyard-mock}
PROF_DUR=${PROF_DUR:-5}
PROF_CONNS=${PROF_CONNS:-8}
PROF_MODES=${PROF_MODES:-"json sse"}
PROF_TOP=${PROF_TOP:-15}
PROF_ARGS=${PROF_ARGS:-}      # extra switchyard flags, e.g. --no-capture (proxy path alone)
WORK=${WORK:-$(mktemp -d /tmp/switchyard-profile.XXXXXX)}
WORK=$WORK/profile
KEY=sk-switchyard-profile-0123456789

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for t in valgrind callgrind_annotate callgrind_control wrk; do command -v "$t" >/dev/null || die "$t not found (apt-get install valgrind wrk)"; done
[ -x "$SY" ] && [ -x "$MOCK" ] || die "build switchyard and switchyard-mock in $BUILD first"
mkdir -p "$WORK"

declare -a PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  rm -rf "$WORK/data"  # the capture store (grows ~100 MB per run)
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_bg() { local logf=$1; shift; "$@" >"$logf" 2>&1 & LAST_PID=$!; PIDS+=("$LAST_PID"); }
listen_port() { # logfile pid -> port from "listening on http://HOST:PORT"
  local l
  for _ in $(seq 300); do
    l=$(grep -o 'listening on http://[^ ]*' "$1" 2>/dev/null | head -1 || true)
    [ -n "$l" ] && { echo "${l##*:}"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  die "no 'listening on' line in $1: $(tail -3 "$1")"
}
stop_pid() { # pid: TERM and wait (it is one of ours)
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
wrk_run() { # mode conns secs url -> RESULT line
  BENCH_STREAM=$([ "$1" = sse ] && echo 1 || echo 0) BENCH_KEY=$KEY \
    wrk -t1 -c"$2" -d"$3"s --timeout 30s -s "$HERE/chat.lua" "$4" | grep '^RESULT'
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }

start_bg "$WORK/mock.log" "$MOCK" --listen 127.0.0.1:0 --quiet
MOCK_PID=$LAST_PID
MOCK_PORT=$(listen_port "$WORK/mock.log" "$MOCK_PID")
cat >"$WORK/config.json" <<EOF
{ "listen": "127.0.0.1:0", "workers": 1, "data_dir": "$WORK/data", "log_level": "warn",
  "upstreams": [ { "name": "mock", "base_url": "http://127.0.0.1:$MOCK_PORT/v1" } ],
  "client_keys": [ { "name": "bench", "sha256": "$("$SY" hash-key "$KEY")" } ] }
EOF

# ---------------------------------------------------------------- 1. callgrind
start_bg "$WORK/valgrind.log" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$SY" --config "$WORK/config.json" $PROF_ARGS
VG=$LAST_PID
PORT=$(listen_port "$WORK/valgrind.log" "$VG")
URL=http://127.0.0.1:$PORT/v1/chat/completions
log "switchyard under callgrind pid=$VG port=$PORT; mock port=$MOCK_PORT"
wrk_run json "$PROF_CONNS" 2 "$URL" >/dev/null   # warm-up: connections, handle cache, code paths
declare -A REQS=()
n=0
for m in $PROF_MODES; do
  callgrind_control -z "$VG" >/dev/null
  res=$(wrk_run "$m" "$PROF_CONNS" "$PROF_DUR" "$URL")
  callgrind_control -d "$m" "$VG" >/dev/null
  n=$((n + 1))
  REQS[$m]=$(field reqs "$res")
  [ "$(field non2xx "$res")" = 0 ] || log "WARNING: $m under callgrind: $res"
  log "callgrind $m: $res"
  for _ in $(seq 50); do [ -s "$WORK/callgrind.out.$n" ] && break; sleep 0.1; done
  cp "$WORK/callgrind.out.$n" "$WORK/callgrind.$m.out"
done
stop_pid "$VG"

# Self cost of every function, by library. The thread entry points that were
# on the stack when the counters were zeroed (clone, start_thread, worker_main,
# writer_main, uv_run) show their callees' cost as their own; they are skipped.
ENTRY_RE=':(clone|start_thread|worker_main|writer_main|uv_run|main) \['

by_lib() { # callgrind_annotate output -> "category Ir" lines
  awk -v entry="$ENTRY_RE" '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 + 0; next }
    /^ *[0-9,]+ +\( *[0-9.]+%\) +/ {
      ir = $1; gsub(",", "", ir); ir += 0; if ((total && ir > 0.99 * total) || $0 ~ entry) next
      line = $0; obj = ""
      if (match(line, /\[[^]]+\]$/)) obj = substr(line, RSTART + 1, RLENGTH - 2)
      cat = "other"
      if (obj ~ /libcurl/) cat = "libcurl"
      else if (obj ~ /libcjson/) cat = "cJSON"
      else if (obj ~ /http_parser/) cat = "http-parser"
      else if (obj ~ /libuv/) cat = "libuv"
      else if (obj ~ /libcrypto/) cat = "libcrypto"
      else if (obj ~ /libpcre2/) cat = "PCRE2 (PII scrub)"
      else if (obj == "???") cat = "JIT code (PCRE2 patterns)"
      else if (obj ~ /liblmdb/) cat = "LMDB"
      else if (obj ~ /libprotobuf-c/) cat = "protobuf-c"
      else if (obj ~ /libssl|libnghttp|libz|libidn|libpsl|libbrotli|libzstd/) cat = "curl deps (ssl, nghttp2, zlib...)"
      else if (line ~ /malloc\.c|arena\.c/) cat = "libc malloc/free"
      else if (obj ~ /libc\.so/ || obj == "") cat = "libc other (memcpy, getenv, sscanf, printf...)"
      else if (obj ~ /switchyard/) cat = "switchyard code"
      sum[cat] += ir; all += ir
    }
    END { for (c in sum) printf "%s\t%d\n", c, sum[c] }'
}

# the first $PROF_TOP function lines of a callgrind_annotate listing, as Ir/request
top_fns() { # total requests < listing
  awk -v t="$1" -v r="$2" -v top="$PROF_TOP" -v entry="$ENTRY_RE" '
    /PROGRAM TOTALS/ { next }
    /^ *[0-9,]+ +\( *[0-9.]+%\) +/ {
      ir = $1; gsub(",", "", ir); ir += 0; if (ir > 0.99 * t || $0 ~ entry || n >= top) next
      fn = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", fn); sub(/ \[\/usr\/lib\/x86_64-linux-gnu\//, " [", fn)
      printf "%8d %5.1f%%  %s\n", ir / r, 100 * ir / t, fn; n++ }'
}

REPORT=$WORK/profile.md
{
  echo "callgrind: $("$SY" --version 2>&1 | head -1), 1 worker, client auth on${PROF_ARGS:+, $PROF_ARGS}, wrk -t1 -c$PROF_CONNS -d${PROF_DUR}s per mode"
  echo "(counters zeroed after a 2 s warm-up). Ir = user-space instructions; kernel time is not counted."
  for m in $PROF_MODES; do
    f=$WORK/callgrind.$m.out
    callgrind_annotate --threshold=100 --auto=no "$f" >"$WORK/self.$m.txt" 2>/dev/null
    callgrind_annotate --threshold=100 --auto=no --inclusive=yes "$f" >"$WORK/incl.$m.txt" 2>/dev/null
    total=$(awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}' "$WORK/self.$m.txt")
    r=${REQS[$m]:-1}
    echo
    echo "#### $m: $r requests, $((total / r)) instructions per request"
    echo
    # per thread: the worker loop (uv_run) vs the capture writer (writer_main), inclusive
    awk -v r="$r" -v t="$total" '/^ *[0-9,]+ +\(/ && (/:uv_run \[/ || /:writer_main \[/) {
        ir = $1; gsub(",", "", ir); n = (/uv_run/ ? "worker thread (uv_run)" : "capture writer thread (writer_main)")
        if (!(n in seen)) { seen[n] = 1; printf "%s%s %d Ir/request (%.0f%%)", (k++ ? ", " : "By thread: "), n, ir / r, 100 * ir / t } }
      END { if (k) print "" }' "$WORK/incl.$m.txt"
    echo
    echo "| library (self cost) | Ir/request | share |"
    echo "|---|--:|--:|"
    by_lib <"$WORK/self.$m.txt" | sort -t$'\t' -k2,2nr | awk -F'\t' -v r="$r" -v t="$total" \
      '{printf "| %s | %d | %.1f%% |\n", $1, $2 / r, 100 * $2 / t}'
    echo
    echo "Top $PROF_TOP functions by self cost (Ir/request, % of total):"
    echo
    echo '```'
    top_fns "$total" "$r" <"$WORK/self.$m.txt"
    echo '```'
    echo
    echo "Top $PROF_TOP named functions by inclusive cost (below the thread entry; unnamed static functions of the stripped libraries left out):"
    echo
    echo '```'
    grep -v '???:0x' "$WORK/incl.$m.txt" | grep ' \[' | top_fns "$total" "$r"
    echo '```'
  done
} >"$REPORT"

# ---------------------------------------------------------------- 2. native
start_bg "$WORK/switchyard.log" "$SY" --config "$WORK/config.json" $PROF_ARGS
SYP=$LAST_PID
PORT=$(listen_port "$WORK/switchyard.log" "$SYP")
URL=http://127.0.0.1:$PORT/v1/chat/completions
wrk_run json "$PROF_CONNS" 1 "$URL" >/dev/null
{
  echo
  echo "#### native run (no valgrind), c=$PROF_CONNS"
  echo
  echo "| mode | req/s | CPU µs/req | of which user | of which kernel | syscalls/request (strace -c, separate run) |"
  echo "|---|--:|--:|--:|--:|--:|"
} >>"$REPORT"
TCK=$(getconf CLK_TCK)
for m in $PROF_MODES; do
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$SYP/stat")
  res=$(wrk_run "$m" "$PROF_CONNS" "$PROF_DUR" "$URL")
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$SYP/stat")
  r=$(field reqs "$res")
  sc="-"
  if command -v strace >/dev/null; then
    strace -c -f -q -o "$WORK/strace.$m.txt" -p "$SYP" 2>/dev/null & ST=$!
    sleep 0.5
    res2=$(wrk_run "$m" "$PROF_CONNS" 2 "$URL")
    kill -INT "$ST" 2>/dev/null; wait "$ST" 2>/dev/null || true
    calls=$(awk '$NF=="total"{print $(NF-2)}' "$WORK/strace.$m.txt" 2>/dev/null || true)
    r2=$(field reqs "$res2")
    [ -n "$calls" ] && [ "${r2:-0}" -gt 0 ] && sc=$(awk -v c="$calls" -v r="$r2" 'BEGIN{printf "%.1f", c / r}')
  fi
  awk -v m="$m" -v r="$r" -v d="$PROF_DUR" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$TCK" -v sc="$sc" 'BEGIN {
    printf "| %s | %.0f | %.1f | %.1f | %.1f | %s |\n", m, r / d, (u + s) * 1e6 / t / r, u * 1e6 / t / r, s * 1e6 / t / r, sc }' >>"$REPORT"
done
{
  echo
  for m in $PROF_MODES; do
    [ -s "$WORK/strace.$m.txt" ] || continue
    echo "strace -c -f, $m (top syscalls):"
    echo '```'
    sed -n '1,2p;3,12{/^ *[0-9]/p}' "$WORK/strace.$m.txt"
    echo '```'
  done
} >>"$REPORT"
stop_pid "$SYP"
cat "$REPORT"
echo
echo "callgrind files: $WORK/callgrind.*.out (callgrind_annotate --inclusive=yes FILE)"
