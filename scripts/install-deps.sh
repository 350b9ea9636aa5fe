#!/usr/bin/env bash
# Installs everything switchyard's build, tests and benchmarks need on Debian 12:
# the Debian packages (apt-get, through sudo when not root) and the pinned Node
# packages of package-lock.json (npm ci into ./node_modules).
#
# Safe to run again: when every package is already installed it does not touch
# apt at all (no network), and npm ci only runs when node_modules is missing or
# package-lock.json changed since the last install.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive

# Build: compiler, cmake, pkg-config and the libraries the top-level
# CMakeLists.txt finds. Tests: cmocka, node (openai SDK), curl, python grpc
# (admin API checks). Benchmarks: nginx (proxy_pass baseline), wrk, procps (ps).
PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libcurl4-openssl-dev libcjson-dev liblmdb-dev lmdb-utils
  libprotobuf-c-dev protobuf-c-compiler libgrpc-dev libhttp-parser-dev
  libxxhash-dev libssl-dev libpcre2-dev libcmocka-dev
  curl python3 python3-grpcio python3-grpc-tools
  nginx-light wrk openssl procps ca-certificates
)
# Node: keep a node/npm that is already on PATH (for example from NodeSource,
# whose nodejs package bundles npm and conflicts with Debian's npm); install
# Debian's only when missing.
if ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "install-deps: Debian packages already installed"
fi

for tool in node npm cmake cc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-deps: '$tool' still not on PATH after installing" >&2
    exit 1
  fi
done

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "install-deps: node $(node --version) is too old; the tests need node >= 18" >&2
  exit 1
fi

# npm ci only when needed: the stamp records the lock file it installed from.
stamp=node_modules/.switchyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ ! -d node_modules/openai ] || [ "$want" != "$have" ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
else
  echo "install-deps: node_modules up to date"
fi
