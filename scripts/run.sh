#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the
# gateway in the foreground.
#
#   ./scripts/run.sh [extra switchyard flags...]
#
# With OPENAI_API_KEY set, switchyard runs in front of https://api.openai.com/v1
# and sends that key upstream. Without it, the bundled switchyard-mock is
# started on a free loopback port and switchyard runs in front of it.
#
# State lives under the directory you run this from:
#   ./switchyard-data/          the LMDB folder
#   ./.switchyard/client-key    the key apps send (generated once, mode 600)
#   ./.switchyard/config.json   the generated config (rewritten on every run)
#   ./.switchyard/mock.log      the mock's output, when the mock is used
# SWITCHYARD_LISTEN=HOST:PORT changes the address (default 127.0.0.1:8080);
# SY_BUILD_DIR changes the build directory (default build/ in the repo).
# Ctrl-C stops the gateway (it drains in-flight requests) and the mock.
set -euo pipefail

workdir=$PWD
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

"$repo/scripts/install-deps.sh"

build=${SY_BUILD_DIR:-$repo/build}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target switchyard switchyard-mock

bin="$build/gateway/switchyard"
mock_bin="$build/loadtest/switchyard-mock"

listen=${SWITCHYARD_LISTEN:-127.0.0.1:8080}
host=${listen%:*}
port=${listen##*:}
case "$host" in
  0.0.0.0 | "") client_host=127.0.0.1 ;;
  "[::]" | "::") client_host="[::1]" ;;
  *) client_host=$host ;;
esac
if [ "$port" != 0 ] && (exec 3<>"/dev/tcp/${client_host//[\[\]]/}/$port") 2>/dev/null; then
  echo "run.sh: something already listens on $client_host:$port;" \
       "pick another address with SWITCHYARD_LISTEN=127.0.0.1:PORT" >&2
  exit 1
fi

state="$workdir/.switchyard"
mkdir -p "$state" "$workdir/switchyard-data"
chmod 700 "$state"
keyfile="$state/client-key"
if [ ! -s "$keyfile" ]; then
  (umask 077 && printf 'sy-%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$keyfile")
fi
chmod 600 "$keyfile"
key=$(head -n 1 "$keyfile")
# Through stdin, so the key never shows up in a process list.
key_sha=$("$bin" hash-key <"$keyfile")

mock_pid=
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  if [ -n "$mock_pid" ]; then
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${OPENAI_API_KEY:-}" ]; then
  upstream_name=openai
  upstream_url=https://api.openai.com/v1
  upstream_key_env=OPENAI_API_KEY
  upstream_desc="OpenAI (https://api.openai.com/v1, key from OPENAI_API_KEY)"
else
  mocklog="$state/mock.log"
  "$mock_bin" --listen 127.0.0.1:0 >"$mocklog" 2>&1 &
  mock_pid=$!
  mock_url=
  for _ in $(seq 1 100); do
    mock_url=$(sed -n 's/^switchyard-mock listening on \(http:[^ ]*\)$/\1/p' "$mocklog" | head -n 1)
    [ -n "$mock_url" ] && break
    if ! kill -0 "$mock_pid" 2>/dev/null; then
      echo "run.sh: switchyard-mock failed to start:" >&2
      cat "$mocklog" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$mock_url" ]; then
    echo "run.sh: switchyard-mock did not report its address in 10 s (see $mocklog)" >&2
    exit 1
  fi
  upstream_name=mock
  upstream_url="$mock_url/v1"
  upstream_key_env=
  upstream_desc="the bundled switchyard-mock at $mock_url (no OPENAI_API_KEY set)"
fi

config="$state/config.json"
(umask 077 && SY_LISTEN="$listen" SY_DATA="$workdir/switchyard-data" SY_UP_NAME="$upstream_name" \
  SY_UP_URL="$upstream_url" SY_UP_KEY_ENV="$upstream_key_env" SY_KEY_SHA="$key_sha" node -e '
    const e = process.env;
    const up = { name: e.SY_UP_NAME, base_url: e.SY_UP_URL };
    if (e.SY_UP_KEY_ENV) up.api_key_env = e.SY_UP_KEY_ENV;
    const cfg = {
      listen: e.SY_LISTEN,
      data_dir: e.SY_DATA,
      upstreams: [up],
      client_keys: [{ name: "local", sha256: e.SY_KEY_SHA }],
    };
    process.stdout.write(JSON.stringify(cfg, null, 2) + "\n");
  ' >"$config")

base="http://$client_host:$port/v1"
cat <<EOF

switchyard: starting in front of $upstream_desc
  config:      $config
  data (LMDB): $workdir/switchyard-data
  client key:  $key   (stored in $keyfile)

Call it with curl:

  curl $base/chat/completions \\
    -H "Authorization: Bearer \$(cat $keyfile)" \\
    -H "Content-Type: application/json" \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'

With the OpenAI SDK, change only the base URL and the key.
Node (npm install openai):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '$base', apiKey: '$key' });
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello!' }] });
  console.log(r.choices[0].message.content);

Python (pip install openai):

  from openai import OpenAI
  client = OpenAI(base_url="$base", api_key="$key")
  r = client.chat.completions.create(
      model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}])
  print(r.choices[0].message.content)

Ctrl-C stops it.

EOF

# Not exec: the EXIT trap must still stop the mock when the gateway exits.
cd "$workdir"
rc=0
"$bin" --config "$config" "$@" || rc=$?
exit "$rc"
