/* switchyard-load's latency histogram: percentiles against known inputs,
 * the bucket precision bound, clamping and merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loadtest/load_hist.h"
#include "loadtest/load_zipf.h"

static sy_load_hist *new_hist(void) {
  sy_load_hist *h = malloc(sizeof *h);
  assert_non_null(h);
  sy_load_hist_init(h);
  return h;
}

/* |got - want| within the width of want's bucket (1/128 of the value). */
static void assert_within_bucket(uint64_t got, uint64_t want) {
  uint64_t tol = want / 128 + 1;
  uint64_t d = got > want ? got - want : want - got;
  if (d > tol) fail_msg("got %llu, want %llu +- %llu", (unsigned long long)got,
                        (unsigned long long)want, (unsigned long long)tol);
}

static void test_uniform(void **state) {
  (void)state;
  sy_load_hist *h = new_hist();
  for (uint64_t v = 1; v <= 100000; v++) sy_load_hist_record(h, v);
  assert_int_equal(h->count, 100000);
  assert_int_equal(h->min, 1);
  assert_int_equal(h->max, 100000);
  assert_within_bucket(sy_load_hist_percentile(h, 50), 50000);
  assert_within_bucket(sy_load_hist_percentile(h, 90), 90000);
  assert_within_bucket(sy_load_hist_percentile(h, 99), 99000);
  assert_within_bucket(sy_load_hist_percentile(h, 99.9), 99900);
  assert_within_bucket(sy_load_hist_percentile(h, 10), 10000);
  assert_int_equal(sy_load_hist_percentile(h, 100), 100000);
  assert_int_equal(sy_load_hist_percentile(h, 0), 1);
  /* the reported value is the top of the bucket, never below the true one */
  assert_true(sy_load_hist_percentile(h, 50) >= 50000);
  assert_true(sy_load_hist_mean(h) > 50000.49 && sy_load_hist_mean(h) < 50000.51);
  free(h);
}

static void test_small_exact(void **state) {
  (void)state;
  /* below 256 every value has its own bucket: percentiles are exact ranks */
  sy_load_hist *h = new_hist();
  for (uint64_t v = 100; v >= 1; v--) sy_load_hist_record(h, v);
  assert_int_equal(sy_load_hist_percentile(h, 50), 50);
  assert_int_equal(sy_load_hist_percentile(h, 90), 90);
  assert_int_equal(sy_load_hist_percentile(h, 99), 99);
  assert_int_equal(sy_load_hist_percentile(h, 99.9), 100);
  assert_int_equal(sy_load_hist_percentile(h, 1), 1);
  assert_int_equal(sy_load_hist_percentile(h, 50.5), 51);
  free(h);
}

static void test_single_and_empty(void **state) {
  (void)state;
  sy_load_hist *h = new_hist();
  assert_int_equal(sy_load_hist_percentile(h, 50), 0);
  assert_int_equal(sy_load_hist_percentile(h, 100), 0);
  assert_true(sy_load_hist_mean(h) == 0.0);
  assert_int_equal(h->count, 0);
  sy_load_hist_record(h, 12345);
  /* one value: every percentile is that value (clamped to min and max) */
  assert_int_equal(sy_load_hist_percentile(h, 0), 12345);
  assert_int_equal(sy_load_hist_percentile(h, 50), 12345);
  assert_int_equal(sy_load_hist_percentile(h, 99.9), 12345);
  assert_int_equal(sy_load_hist_percentile(h, 100), 12345);
  assert_true(sy_load_hist_mean(h) == 12345.0);
  free(h);
}

static void test_max_and_clamp(void **state) {
  (void)state;
  sy_load_hist *h = new_hist();
  sy_load_hist_record_n(h, 1000, 999);
  sy_load_hist_record(h, SY_LOAD_HIST_MAX + 5000000); /* an hour and five seconds */
  assert_int_equal(h->count, 1000);
  assert_int_equal(h->clamped, 1);
  assert_int_equal(h->max, SY_LOAD_HIST_MAX + 5000000);
  assert_int_equal(sy_load_hist_percentile(h, 100), SY_LOAD_HIST_MAX + 5000000);
  assert_within_bucket(sy_load_hist_percentile(h, 99.9), 1000);
  /* the outlier lands in the top bucket */
  assert_int_equal(h->counts[sy_load_hist_index(SY_LOAD_HIST_MAX)], 1);
  assert_true(sy_load_hist_index(SY_LOAD_HIST_MAX) < SY_LOAD_HIST_BUCKETS);
  sy_load_hist_record(h, 2000000);
  assert_int_equal(h->max, SY_LOAD_HIST_MAX + 5000000);
  free(h);
}

static void check_bucket(uint64_t v) {
  size_t i = sy_load_hist_index(v);
  uint64_t lo = sy_load_hist_lowest(i), hi = sy_load_hist_highest(i);
  if (!(lo <= v && v <= hi))
    fail_msg("%llu not in its bucket [%llu, %llu]", (unsigned long long)v,
             (unsigned long long)lo, (unsigned long long)hi);
  if (v < SY_LOAD_HIST_SUB) {
    assert_int_equal(lo, hi);
  } else if ((hi - lo + 1) * 128 > lo) {
    /* 2 significant digits: a bucket is at most 1/128 of its lowest value */
    fail_msg("bucket of %llu too wide: [%llu, %llu]", (unsigned long long)v,
             (unsigned long long)lo, (unsigned long long)hi);
  }
}

static void test_precision_bound(void **state) {
  (void)state;
  for (uint64_t v = 0; v < (1u << 20); v++) check_bucket(v);
  sy_load_rng rng;
  sy_load_rng_seed(&rng, 7);
  for (int k = 0; k < 200000; k++) check_bucket(sy_load_rng_next(&rng) % (SY_LOAD_HIST_MAX + 1));
  check_bucket(SY_LOAD_HIST_MAX);
  /* buckets tile the range: each starts right after the previous one ends */
  size_t last = sy_load_hist_index(SY_LOAD_HIST_MAX);
  for (size_t i = 0; i < last; i++) {
    assert_int_equal(sy_load_hist_lowest(i + 1), sy_load_hist_highest(i) + 1);
    assert_int_equal(sy_load_hist_index(sy_load_hist_highest(i)), i);
    assert_int_equal(sy_load_hist_index(sy_load_hist_highest(i) + 1), i + 1);
  }
}

static void test_merge(void **state) {
  (void)state;
  sy_load_hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *empty = new_hist();
  for (uint64_t v = 1; v <= 100000; v++) {
    sy_load_hist_record(v <= 30000 ? a : b, v * 3);
    sy_load_hist_record(all, v * 3);
  }
  sy_load_hist_merge(a, b);
  sy_load_hist_merge(a, empty);
  assert_int_equal(a->count, all->count);
  assert_int_equal(a->min, 3);
  assert_int_equal(a->max, 300000);
  assert_memory_equal(a->counts, all->counts, sizeof a->counts);
  const double ps[] = {1, 50, 90, 99, 99.9, 100};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
    assert_int_equal(sy_load_hist_percentile(a, ps[i]), sy_load_hist_percentile(all, ps[i]));
  assert_true(sy_load_hist_mean(a) == sy_load_hist_mean(all));
  /* merging into an empty histogram takes min along */
  sy_load_hist_merge(empty, b);
  assert_int_equal(empty->min, 90003);
  free(a);
  free(b);
  free(all);
  free(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uniform),       cmocka_unit_test(test_small_exact),
      cmocka_unit_test(test_single_and_empty), cmocka_unit_test(test_max_and_clamp),
      cmocka_unit_test(test_precision_bound), cmocka_unit_test(test_merge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
