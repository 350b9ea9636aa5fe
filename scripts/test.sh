#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs
# every test (cmocka unit tests and the Node integration tests) twice:
#   build/       plain RelWithDebInfo build
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer build (-DSY_SANITIZE=ON)
# Exits non-zero if either build or either test run fails.
#
# Environment: SY_TEST_SKIP_DEPS=1 skips scripts/install-deps.sh;
# SY_TEST_ONLY=plain|asan runs one of the two; CTEST_ARGS adds ctest options
# (for example CTEST_ARGS="-R integration/gateway"); SY_BUILD_DIR and
# SY_ASAN_BUILD_DIR change the two build directories.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

if [ "${SY_TEST_SKIP_DEPS:-0}" != 1 ]; then
  ./scripts/install-deps.sh || { echo "test.sh: install-deps failed" >&2; exit 1; }
fi

jobs=$(nproc 2>/dev/null || echo 2)
# Integration tests use their own free ports, so test files may run in
# parallel; keep it modest since several time-sensitive cases run at once.
ctest_jobs=$(( jobs < 4 ? jobs : 4 ))

# run NAME BUILD_DIR [cmake options...]: configure, build, ctest. Returns
# 0 when all passed; sets RESULT_<NAME> to a one-line outcome.
run() {
  local name=$1 dir=$2
  shift 2
  local t0=$SECONDS
  echo
  echo "==== $name build in $dir/ ===="
  if ! ./scripts/build.sh "$dir" "$@"; then
    printf -v "RESULT_$name" '%s' "$name: BUILD FAILED"
    return 1
  fi
  echo "==== $name tests ===="
  local log="$dir/ctest-summary.log"
  # shellcheck disable=SC2086  # CTEST_ARGS is a word list on purpose
  (cd "$dir" && ctest --output-on-failure -j"$ctest_jobs" ${CTEST_ARGS:-}) | tee "$log"
  local rc=${PIPESTATUS[0]}
  local summary
  summary=$(grep -E 'tests passed|tests failed' "$log" | tail -n 1)
  [ -n "$summary" ] || summary="no tests ran (ctest exit $rc)"
  printf -v "RESULT_$name" '%s' "$name: $summary ($((SECONDS - t0)) s)"
  return "$rc"
}

RESULT_plain="plain: not run"
RESULT_asan="asan: not run"
rc_plain=0
rc_asan=0
only=${SY_TEST_ONLY:-}

if [ -z "$only" ] || [ "$only" = plain ]; then
  run plain "${SY_BUILD_DIR:-build}" || rc_plain=$?
fi
if [ -z "$only" ] || [ "$only" = asan ]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  run asan "${SY_ASAN_BUILD_DIR:-build-asan}" -DSY_SANITIZE=ON || rc_asan=$?
fi

echo
if [ "$rc_plain" -eq 0 ] && [ "$rc_asan" -eq 0 ]; then
  echo "test.sh: PASS | $RESULT_plain | $RESULT_asan"
  exit 0
fi
echo "test.sh: FAIL | $RESULT_plain | $RESULT_asan"
exit 1
