/* Circuit breaker transitions, driven by a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "router/breaker.h"

static sy_breaker_conf conf(uint32_t consecutive, uint32_t window, uint32_t min, uint32_t pct,
                            uint32_t open_ms) {
  sy_breaker_conf c = {consecutive, window, min, pct, open_ms};
  return c;
}

static void test_consecutive(void **state) {
  (void)state;
  sy_breaker b;
  sy_breaker_conf c = conf(3, 0, 0, 0, 1000);
  sy_breaker_init(&b, &c, 0);
  uint64_t now = 10;
  assert_int_equal(sy_breaker_state_at(&b, now), SY_BREAKER_CLOSED);
  /* successes in between reset the run */
  sy_breaker_record(&b, 1, now);
  sy_breaker_record(&b, 1, now);
  sy_breaker_record(&b, 0, now);
  sy_breaker_record(&b, 1, now);
  sy_breaker_record(&b, 1, now);
  assert_int_equal(sy_breaker_state_at(&b, now), SY_BREAKER_CLOSED);
  assert_true(sy_breaker_allow(&b, now));
  sy_breaker_record(&b, 1, now);
  assert_int_equal(sy_breaker_state_at(&b, now), SY_BREAKER_OPEN);
  assert_int_equal(b.times_opened, 1);
  /* open: refused until the cooling period ends */
  assert_false(sy_breaker_allow(&b, now));
  assert_false(sy_breaker_allow(&b, now + 999));
  /* late results while open change nothing */
  sy_breaker_record(&b, 0, now + 500);
  assert_int_equal(sy_breaker_state_at(&b, now + 500), SY_BREAKER_OPEN);
  /* half-open: exactly one probe */
  assert_int_equal(sy_breaker_state_at(&b, now + 1000), SY_BREAKER_HALF_OPEN);
  assert_true(sy_breaker_allow(&b, now + 1000));
  assert_false(sy_breaker_allow(&b, now + 1001));
  assert_false(sy_breaker_allow(&b, now + 1500));
  /* probe fails: open again, cooling restarts from now */
  sy_breaker_record(&b, 1, now + 1600);
  assert_int_equal(sy_breaker_state_at(&b, now + 1600), SY_BREAKER_OPEN);
  assert_int_equal(b.times_opened, 2);
  assert_false(sy_breaker_allow(&b, now + 2599));
  assert_true(sy_breaker_allow(&b, now + 2600));
  /* probe succeeds: closed, and the failure count starts from zero */
  sy_breaker_record(&b, 0, now + 2700);
  assert_int_equal(sy_breaker_state_at(&b, now + 2700), SY_BREAKER_CLOSED);
  assert_true(sy_breaker_allow(&b, now + 2700));
  assert_true(sy_breaker_allow(&b, now + 2701));
  sy_breaker_record(&b, 1, now + 2800);
  sy_breaker_record(&b, 1, now + 2800);
  assert_int_equal(sy_breaker_state_at(&b, now + 2800), SY_BREAKER_CLOSED);
  sy_breaker_record(&b, 1, now + 2800);
  assert_int_equal(sy_breaker_state_at(&b, now + 2800), SY_BREAKER_OPEN);
}

static void test_lost_probe(void **state) {
  (void)state;
  sy_breaker b;
  sy_breaker_conf c = conf(1, 0, 0, 0, 100);
  sy_breaker_init(&b, &c, 0);
  sy_breaker_record(&b, 1, 0);
  assert_true(sy_breaker_allow(&b, 100)); /* the probe, never reported */
  assert_false(sy_breaker_allow(&b, 150));
  assert_true(sy_breaker_allow(&b, 200)); /* another open_ms later: a new probe */
  assert_false(sy_breaker_allow(&b, 201));
}

static void test_failure_rate(void **state) {
  (void)state;
  sy_breaker b;
  /* consecutive rule off; 50% of >= 10 results within 1 s */
  sy_breaker_conf c = conf(0, 1000, 10, 50, 500);
  sy_breaker_init(&b, &c, 0);
  /* alternating: never 2 in a row, but 50% */
  for (int i = 0; i < 9; i++) sy_breaker_record(&b, i % 2 == 0, 10);
  assert_int_equal(sy_breaker_state_at(&b, 10), SY_BREAKER_CLOSED); /* 9 results: below minimum */
  sy_breaker_record(&b, 0, 10); /* 10 results, 5 failures = 50%: at the rate opens */
  assert_int_equal(sy_breaker_state_at(&b, 10), SY_BREAKER_OPEN);

  /* just under the rate stays closed */
  sy_breaker_init(&b, &c, 0);
  for (int i = 0; i < 10; i++) sy_breaker_record(&b, i < 4, 10); /* 4 of 10 */
  assert_int_equal(sy_breaker_state_at(&b, 10), SY_BREAKER_CLOSED);
  sy_breaker_record(&b, 1, 10); /* 5 of 11 = 45% */
  assert_int_equal(sy_breaker_state_at(&b, 10), SY_BREAKER_CLOSED);
  sy_breaker_record(&b, 1, 10); /* 6 of 12 = 50% */
  assert_int_equal(sy_breaker_state_at(&b, 10), SY_BREAKER_OPEN);

  /* below the rate: stays closed over many results */
  sy_breaker_init(&b, &c, 0);
  for (int i = 0; i < 1000; i++) sy_breaker_record(&b, i % 3 == 0, (uint64_t)i / 10); /* 33% */
  assert_int_equal(sy_breaker_state_at(&b, 100), SY_BREAKER_CLOSED);

  /* the window tumbles: old failures are forgotten */
  sy_breaker_init(&b, &c, 0);
  for (int i = 0; i < 9; i++) sy_breaker_record(&b, 1, 100); /* 9 failures, under the minimum */
  sy_breaker_record(&b, 1, 1100);                            /* new window: 1 result */
  assert_int_equal(sy_breaker_state_at(&b, 1100), SY_BREAKER_CLOSED);
  assert_int_equal(b.window_results, 1);
}

static void test_names(void **state) {
  (void)state;
  sy_breaker_conf c;
  sy_breaker_conf_default(&c);
  assert_int_equal(c.consecutive_failures, 5);
  assert_string_equal(sy_breaker_state_name(SY_BREAKER_HALF_OPEN), "half_open");
  assert_string_equal(sy_breaker_state_name(SY_BREAKER_OPEN), "open");
  assert_string_equal(sy_breaker_state_name(SY_BREAKER_CLOSED), "closed");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_consecutive),
      cmocka_unit_test(test_lost_probe),
      cmocka_unit_test(test_failure_rate),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
