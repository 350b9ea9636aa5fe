/* switchyard-load's seeded generator and Zipf user-id sampler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <cmocka.h>

#include "common/err.h"
#include "loadtest/load_zipf.h"

#define DRAWS 200000

static double harmonic(size_t n, double s) {
  double h = 0;
  for (size_t k = 1; k <= n; k++) h += pow((double)k, -s);
  return h;
}

static void test_frequencies(void **state) {
  (void)state;
  sy_load_zipf z;
  assert_int_equal(sy_load_zipf_init(&z, 1000, 1.1), 0);
  sy_load_rng rng;
  sy_load_rng_seed(&rng, 42);
  size_t *hits = calloc(1001, sizeof *hits);
  assert_non_null(hits);
  for (int i = 0; i < DRAWS; i++) {
    size_t k = sy_load_zipf_sample(&z, &rng);
    assert_true(k >= 1 && k <= 1000);
    hits[k]++;
  }
  /* theory, computed here independently of the table: P(k) = k^-s / H(N, s) */
  double h = harmonic(1000, 1.1);
  double p1 = 1.0 / h, p2 = pow(2, -1.1) / h, p10 = pow(10, -1.1) / h;
  assert_true(fabs(sy_load_zipf_prob(&z, 1) - p1) < 1e-12);
  /* binomial sd of the rank-1 share is ~0.00086 here: 0.005 is ~6 sd */
  assert_true(fabs((double)hits[1] / DRAWS - p1) < 0.005);
  assert_true(fabs((double)hits[2] / DRAWS - p2) < 0.004);
  assert_true(fabs((double)hits[10] / DRAWS - p10) < 0.002);
  /* the tail: ranks 501..1000 together */
  double tail = 0, tail_theory = 0;
  for (size_t k = 501; k <= 1000; k++) {
    tail += (double)hits[k] / DRAWS;
    tail_theory += pow((double)k, -1.1) / h;
  }
  assert_true(fabs(tail - tail_theory) < 0.005);
  assert_true(hits[1] > hits[2] && hits[2] > hits[10]);
  free(hits);
  sy_load_zipf_free(&z);
}

static void test_deterministic(void **state) {
  (void)state;
  sy_load_zipf z;
  assert_int_equal(sy_load_zipf_init(&z, 5000, 1.1), 0);
  sy_load_rng a, b, c;
  sy_load_rng_seed(&a, 123);
  sy_load_rng_seed(&b, 123);
  sy_load_rng_seed(&c, 124);
  int differs = 0;
  for (int i = 0; i < 10000; i++) {
    size_t x = sy_load_zipf_sample(&z, &a), y = sy_load_zipf_sample(&z, &b);
    assert_int_equal(x, y);
    differs |= x != sy_load_zipf_sample(&z, &c);
  }
  assert_true(differs);
  sy_load_zipf_free(&z);
}

static void test_inverse_cdf_edges(void **state) {
  (void)state;
  sy_load_zipf z;
  assert_int_equal(sy_load_zipf_init(&z, 4, 1.0), 0);
  /* P = (1, 1/2, 1/3, 1/4) / (25/12) = 12/25, 6/25, 4/25, 3/25 */
  assert_true(fabs(sy_load_zipf_prob(&z, 1) - 0.48) < 1e-12);
  assert_true(fabs(sy_load_zipf_prob(&z, 4) - 0.12) < 1e-12);
  assert_int_equal(sy_load_zipf_rank(&z, 0.0), 1);
  assert_int_equal(sy_load_zipf_rank(&z, 0.4799), 1);
  assert_int_equal(sy_load_zipf_rank(&z, 0.4801), 2);
  assert_int_equal(sy_load_zipf_rank(&z, 0.7199), 2);
  assert_int_equal(sy_load_zipf_rank(&z, 0.8801), 4);
  assert_int_equal(sy_load_zipf_rank(&z, 0.9999999), 4);
  assert_int_equal(sy_load_zipf_prob(&z, 5), 0);
  sy_load_zipf_free(&z);
  /* s = 0 is uniform */
  assert_int_equal(sy_load_zipf_init(&z, 10, 0.0), 0);
  for (size_t k = 1; k <= 10; k++) assert_true(fabs(sy_load_zipf_prob(&z, k) - 0.1) < 1e-12);
  sy_load_zipf_free(&z);
}

static void test_bad_params(void **state) {
  (void)state;
  sy_load_zipf z;
  assert_int_equal(sy_load_zipf_init(&z, 0, 1.1), SY_EINVAL);
  assert_int_equal(sy_load_zipf_init(&z, SY_LOAD_ZIPF_MAX_N + 1, 1.1), SY_EINVAL);
  assert_int_equal(sy_load_zipf_init(&z, 10, -0.5), SY_EINVAL);
  assert_int_equal(sy_load_zipf_init(&z, 10, NAN), SY_EINVAL);
  assert_null(z.cdf);
  sy_load_zipf_free(&z); /* safe on a failed init */
}

static void test_rng_double(void **state) {
  (void)state;
  sy_load_rng r;
  sy_load_rng_seed(&r, 0);
  double sum = 0;
  for (int i = 0; i < 100000; i++) {
    double u = sy_load_rng_double(&r);
    assert_true(u >= 0.0 && u < 1.0);
    sum += u;
  }
  assert_true(fabs(sum / 100000 - 0.5) < 0.01);
  /* weighted search: first cumulative value above x */
  const double cum[] = {1, 4, 4, 10};
  assert_int_equal(sy_load_cum_search(cum, 4, 0.0), 0);
  assert_int_equal(sy_load_cum_search(cum, 4, 1.0), 1);
  assert_int_equal(sy_load_cum_search(cum, 4, 3.99), 1);
  assert_int_equal(sy_load_cum_search(cum, 4, 4.0), 3); /* the zero-weight entry is skipped */
  assert_int_equal(sy_load_cum_search(cum, 4, 10.0), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frequencies),       cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_inverse_cdf_edges), cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_rng_double),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
