/* Shadow sampling rate and the concurrency cap (also across threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <cmocka.h>

#include "router/shadow.h"

static void test_sampling_rate(void **state) {
  (void)state;
  const uint32_t rates[] = {1, 100, 1000, 2500, 5000, 9999};
  const uint64_t n = 100000;
  for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
    uint64_t hits = 0;
    for (uint64_t i = 0; i < n; i++) hits += sy_shadow_sample(rates[k], i); /* even a counter */
    double p = rates[k] / 10000.0, got = (double)hits / (double)n;
    double sd = sqrt(p * (1 - p) / (double)n);
    /* within 4.5 standard deviations (and at least 1 hit's worth) */
    if (fabs(got - p) > 4.5 * sd + 1.0 / (double)n)
      fail_msg("rate %u bp: got %.5f", (unsigned)rates[k], got);
  }
  for (uint64_t i = 0; i < 1000; i++) {
    assert_false(sy_shadow_sample(0, i));
    assert_true(sy_shadow_sample(10000, i));
    assert_true(sy_shadow_sample(20000, i));
    assert_int_equal(sy_shadow_sample(3000, i), sy_shadow_sample(3000, i)); /* deterministic */
  }
}

static void test_cap(void **state) {
  (void)state;
  sy_shadow_cap c;
  sy_shadow_cap_init(&c, 2);
  assert_true(sy_shadow_cap_try_acquire(&c));
  assert_true(sy_shadow_cap_try_acquire(&c));
  assert_false(sy_shadow_cap_try_acquire(&c));
  assert_false(sy_shadow_cap_try_acquire(&c));
  assert_int_equal(sy_shadow_cap_in_flight(&c), 2);
  assert_int_equal(sy_shadow_cap_skipped(&c), 2);
  assert_int_equal(sy_shadow_cap_started(&c), 2);
  sy_shadow_cap_release(&c);
  assert_true(sy_shadow_cap_try_acquire(&c));
  assert_int_equal(sy_shadow_cap_started(&c), 3);
  sy_shadow_cap_release(&c);
  sy_shadow_cap_release(&c);
  assert_int_equal(sy_shadow_cap_in_flight(&c), 0);
  sy_shadow_cap_init(&c, 0);
  assert_false(sy_shadow_cap_try_acquire(&c));
  assert_int_equal(sy_shadow_cap_skipped(&c), 1);
}

typedef struct targ {
  sy_shadow_cap *c;
  unsigned max_seen;
  int over;
} targ;

static void *hammer(void *p) {
  targ *a = p;
  for (int i = 0; i < 100000; i++) {
    if (sy_shadow_cap_try_acquire(a->c)) {
      unsigned f = sy_shadow_cap_in_flight(a->c);
      if (f > a->c->max) a->over = 1;
      sy_shadow_cap_release(a->c);
    }
  }
  return NULL;
}

static void test_cap_threads(void **state) {
  (void)state;
  sy_shadow_cap c;
  sy_shadow_cap_init(&c, 3);
  targ a[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (targ){&c, 0, 0};
    pthread_create(&th[i], NULL, hammer, &a[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_false(a[i].over);
  }
  assert_int_equal(sy_shadow_cap_in_flight(&c), 0);
  assert_int_equal(sy_shadow_cap_started(&c) + sy_shadow_cap_skipped(&c), 400000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sampling_rate),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_cap_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
