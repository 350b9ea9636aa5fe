#!/usr/bin/env bash
# Configures and builds switchyard.
#   scripts/build.sh [BUILD_DIR] [extra cmake -D options...]
# BUILD_DIR defaults to build/. Example: scripts/build.sh build-asan -DSY_SANITIZE=ON
# Does not install packages (scripts/install-deps.sh does).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-build}
[ $# -gt 0 ] && shift

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${SY_BUILD_TYPE:-RelWithDebInfo}" "$@"
cmake --build "$dir" -j"$jobs"
