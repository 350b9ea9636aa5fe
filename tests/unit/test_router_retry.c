/* Retry/fallback policy: classification table, backoff bounds and
 * Retry-After, next-action table, Retry-After parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "router/retry.h"

static void test_classify(void **state) {
  (void)state;
  static const struct {
    sy_outcome_kind kind;
    int status, committed;
    sy_retry_action want;
  } t[] = {
      {SY_OUTCOME_CONNECT_ERROR, 0, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_TIMEOUT, 0, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 200, 0, SY_RETRY_SUCCESS},
      {SY_OUTCOME_HTTP, 204, 0, SY_RETRY_SUCCESS},
      {SY_OUTCOME_HTTP, 304, 0, SY_RETRY_SUCCESS},
      {SY_OUTCOME_HTTP, 400, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 401, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 403, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 404, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 408, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 413, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 422, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 428, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 429, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 499, 0, SY_RETRY_FAIL},
      {SY_OUTCOME_HTTP, 500, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 501, 0, SY_RETRY_FALLBACK},
      {SY_OUTCOME_HTTP, 502, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 503, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 504, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 505, 0, SY_RETRY_FALLBACK},
      {SY_OUTCOME_HTTP, 599, 0, SY_RETRY_RETRY},
      {SY_OUTCOME_HTTP, 0, 0, SY_RETRY_RETRY},   /* garbage status */
      {SY_OUTCOME_HTTP, 600, 0, SY_RETRY_RETRY},
      /* once bytes reached the client, nothing is retried */
      {SY_OUTCOME_HTTP, 500, 1, SY_RETRY_FAIL},
      {SY_OUTCOME_TIMEOUT, 0, 1, SY_RETRY_FAIL},
      {SY_OUTCOME_CONNECT_ERROR, 0, 1, SY_RETRY_FAIL},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    sy_retry_outcome o = {t[i].kind, t[i].status, t[i].committed};
    sy_retry_action a = sy_retry_classify(&o);
    if (a != t[i].want)
      fail_msg("case %zu (status %d): %s, want %s", i, t[i].status, sy_retry_action_name(a),
               sy_retry_action_name(t[i].want));
  }
}

static void test_backoff_bounds(void **state) {
  (void)state;
  sy_retry_policy p = {3, 1000, 0, 100, 1000, 1};
  /* caps: 100, 200, 400, 800, 1000, 1000 ... */
  const int64_t caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (uint32_t retry = 1; retry <= 7; retry++) {
    int64_t lo = INT64_MAX, hi = -1;
    uint64_t s = retry;
    for (int i = 0; i < 20000; i++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int64_t d = sy_retry_backoff_ms(retry, &p, -1, -1, s);
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    /* full jitter spans [0, cap] */
    assert_int_equal(lo, 0);
    assert_int_equal(hi, caps[retry - 1]);
  }
  /* no jitter: exactly the cap; huge retry numbers do not overflow */
  p.jitter = 0;
  assert_int_equal(sy_retry_backoff_ms(1, &p, -1, -1, 123), 100);
  assert_int_equal(sy_retry_backoff_ms(3, &p, -1, -1, 123), 400);
  assert_int_equal(sy_retry_backoff_ms(1000000, &p, -1, -1, 123), 1000);
  p.backoff_base_ms = 0;
  assert_int_equal(sy_retry_backoff_ms(5, &p, -1, -1, 123), 0);
}

static void test_backoff_retry_after(void **state) {
  (void)state;
  sy_retry_policy p = {3, 1000, 0, 100, 1000, 1};
  for (uint64_t r = 0; r < 1000; r++) {
    /* never less than Retry-After, even above backoff_max */
    assert_true(sy_retry_backoff_ms(1, &p, 2500, -1, r * 7919) == 2500);
    int64_t d = sy_retry_backoff_ms(4, &p, 300, -1, r * 7919);
    assert_true(d >= 300 && d <= 800);
    /* capped by the remaining deadline */
    d = sy_retry_backoff_ms(4, &p, -1, 150, r * 7919);
    assert_true(d >= 0 && d <= 150);
  }
  /* Retry-After longer than what is left: cannot retry here */
  assert_int_equal(sy_retry_backoff_ms(1, &p, 5000, 4999, 1), -1);
  assert_int_equal(sy_retry_backoff_ms(1, &p, 5000, 5000, 1), 5000);
  p.jitter = 0;
  assert_int_equal(sy_retry_backoff_ms(4, &p, -1, 300, 1), 300); /* 800 cut to 300 */
}

static void test_next(void **state) {
  (void)state;
  sy_retry_policy p = {2, 1000, 10000, 100, 1000, 1};
  static const struct {
    sy_retry_action verdict;
    uint32_t tries;
    int64_t wait, remaining;
    int has_fb;
    sy_retry_action want;
  } t[] = {
      {SY_RETRY_SUCCESS, 1, 0, 5000, 1, SY_RETRY_SUCCESS},
      {SY_RETRY_FAIL, 1, 0, 5000, 1, SY_RETRY_FAIL},             /* 4xx never moves on */
      {SY_RETRY_RETRY, 1, 50, 5000, 1, SY_RETRY_RETRY},
      {SY_RETRY_RETRY, 1, 50, -1, 0, SY_RETRY_RETRY},             /* no deadline */
      {SY_RETRY_RETRY, 2, 50, 5000, 1, SY_RETRY_FALLBACK},        /* tries used up */
      {SY_RETRY_RETRY, 2, 50, 5000, 0, SY_RETRY_FAIL},            /* ... and no fallback */
      {SY_RETRY_RETRY, 1, -1, 5000, 1, SY_RETRY_FALLBACK},        /* Retry-After past deadline */
      {SY_RETRY_RETRY, 1, 5000, 5000, 1, SY_RETRY_FALLBACK},      /* no time left after the wait */
      {SY_RETRY_RETRY, 1, 50, 0, 1, SY_RETRY_FAIL},               /* deadline passed */
      {SY_RETRY_FALLBACK, 1, 50, 5000, 1, SY_RETRY_FALLBACK},     /* 501: never the same arm */
      {SY_RETRY_FALLBACK, 1, 50, 5000, 0, SY_RETRY_FAIL},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    sy_retry_action a = sy_retry_next(&p, t[i].verdict, t[i].tries, t[i].wait, t[i].remaining, t[i].has_fb);
    if (a != t[i].want)
      fail_msg("case %zu: %s, want %s", i, sy_retry_action_name(a), sy_retry_action_name(t[i].want));
  }
  assert_int_equal(sy_retry_try_timeout_ms(&p, -1), 1000);
  assert_int_equal(sy_retry_try_timeout_ms(&p, 5000), 1000);
  assert_int_equal(sy_retry_try_timeout_ms(&p, 250), 250);
}

static void test_retry_after_parse(void **state) {
  (void)state;
  const int64_t t0 = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
  static const struct {
    const char *v;
    int64_t now;
    int rc;
    int64_t ms;
  } t[] = {
      {"120", 0, 0, 120000},
      {"0", 0, 0, 0},
      {"  7\t", 0, 0, 7000},
      {"99999999999999999999", 0, 0, SY_RETRY_AFTER_MAX_MS}, /* clamped, no overflow */
      {"Sun, 06 Nov 1994 08:49:37 GMT", t0 - 120000, 0, 120000},
      {"Sun, 06 Nov 1994 08:49:37 GMT", t0 + 5000, 0, 0},    /* in the past */
      {"Sunday, 06-Nov-94 08:49:37 GMT", t0 - 1500, 0, 1500},
      {"Sun Nov  6 08:49:37 1994", t0 - 2000, 0, 2000},
      {"Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000LL - 30000, 0, 30000},
      {"Tue, 29 Feb 2000 23:59:60 GMT", 951868800000LL - 1000, 0, 1000}, /* leap day + leap second */
      {"Tuesday, 01-Jan-69 00:00:00 GMT", 3124224000000LL - 1000, 0, 1000}, /* 69 -> 2069 */
      {"", 0, SY_EINVAL, 0},
      {"   ", 0, SY_EINVAL, 0},
      {"-5", 0, SY_EINVAL, 0},
      {"1.5", 0, SY_EINVAL, 0},
      {"12abc", 0, SY_EINVAL, 0},
      {"Sun, 06 Nov 1994 08:49:37 UTC", 0, SY_EINVAL, 0},
      {"Sun, 6 Nov 1994 08:49:37 GMT", 0, SY_EINVAL, 0},
      {"Sun, 06 Foo 1994 08:49:37 GMT", 0, SY_EINVAL, 0},
      {"Sun, 06 Nov 1994 25:49:37 GMT", 0, SY_EINVAL, 0},
      {"Sun, 06 Nov 1994 08:49:37 GMT x", 0, SY_EINVAL, 0},
      {"Xyz, 06 Nov 1994 08:49:37 GMT", 0, SY_EINVAL, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    int64_t ms = -42;
    int rc = sy_retry_parse_after(t[i].v, strlen(t[i].v), t[i].now, &ms);
    if (rc != t[i].rc || (rc == 0 && ms != t[i].ms))
      fail_msg("case %zu \"%s\": rc %d ms %lld, want rc %d ms %lld", i, t[i].v, rc, (long long)ms,
               t[i].rc, (long long)t[i].ms);
  }
  /* the value is read only within len */
  int64_t ms;
  assert_int_equal(sy_retry_parse_after("12345", 2, 0, &ms), 0);
  assert_int_equal(ms, 12000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),       cmocka_unit_test(test_backoff_bounds),
      cmocka_unit_test(test_backoff_retry_after), cmocka_unit_test(test_next),
      cmocka_unit_test(test_retry_after_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
