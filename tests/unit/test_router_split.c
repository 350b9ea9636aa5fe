/* Sticky consistent-hash split: golden vectors, stickiness, distribution
 * (share within 1 pp and chi-square), ramp monotonicity over 1M keys,
 * independence of salts, random split without a key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>
#include <xxhash.h>

#include "common/err.h"
#include "router/router.h"
#include "router/split.h"

/* Chi-square critical values at p = 0.001. */
#define CHI2_DF1_P001 10.828
#define CHI2_DF2_P001 13.816

static uint64_t rng_state;
static uint64_t rng(void) {
  rng_state += 0x9e3779b97f4a7c15ull;
  uint64_t z = rng_state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A random 16-hex-char key, as a user id might look. */
static size_t random_key(char *buf) {
  return (size_t)snprintf(buf, 24, "%016llx", (unsigned long long)rng());
}

static sy_route_table *parse(const char *json) {
  sy_route_table *t = NULL;
  char err[256];
  int rc = sy_route_table_parse(json, strlen(json), NULL, &t, err, sizeof err);
  if (rc) fail_msg("parse failed: %s", err);
  return t;
}

static sy_route_request req_user(const char *model, const char *user, size_t len) {
  sy_route_request q;
  memset(&q, 0, sizeof q);
  q.model = model;
  q.model_len = strlen(model);
  q.user = user;
  q.user_len = len;
  return q;
}

/* The hash definition itself: if any of these change, every user of every
 * route is reshuffled. Computed once with xxHash 0.8.1 (XXH3 is frozen). */
static void test_golden_vectors(void **state) {
  (void)state;
  /* the library's XXH3 matches the published empty-input value */
  assert_true(XXH3_64bits("", 0) == 0x2D06800538D394C2ull);
  static const struct {
    const char *salt, *key;
    uint64_t hash;
    uint32_t bucket;
  } v[] = {
      {"support-bot", "user-1", 0xe2f85d9a07b794adull, 4637u},
      {"support-bot", "user-2", 0x7be1286f32637c50ull, 5312u},
      {"support-bot", "alice@example.com", 0x88d6d13f0024fcc1ull, 8513u},
      {"support-bot", "", 0x57c796c901e7e367ull, 8119u},
      {"gpt-4o-mini", "user-1", 0x3c439ef10be52e17ull, 5975u},
      {"salt-2024-11", "user-1", 0x9560028aa1f65ac1ull, 4705u},
      {"", "", 0x412f1275e10017f3ull, 3u},
      {"a", "b", 0xe8b979c9572dc50cull, 7260u},
      {"support-bot", "0123456789012345678901234567890123456789", 0x46e39360728fc567ull, 2727u},
      {"\xc3\xbcmlaut-route", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", 0x9c3884545b20cd38ull, 392u},
      {"x", "support-bot", 0x7e7896bf6615ee67ull, 1911u},
      {"support-bot", "x", 0x95bd5f532596c62full, 8863u},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint64_t seed = sy_split_seed(v[i].salt, strlen(v[i].salt));
    assert_true(XXH3_64bits_withSeed(v[i].key, strlen(v[i].key), seed) == v[i].hash);
    assert_int_equal(sy_split_bucket(seed, v[i].key, strlen(v[i].key)), v[i].bucket);
    assert_int_equal(sy_split_bucket_salted(v[i].salt, strlen(v[i].salt), v[i].key, strlen(v[i].key)),
                     v[i].bucket);
  }
  /* and through a parsed route (salt defaults to the name) the decision
   * reports the same bucket and the arm that owns it */
  sy_route_table *t = parse("[{\"name\":\"support-bot\",\"arms\":["
                            "{\"name\":\"base\",\"upstream\":\"u\",\"weight_bp\":5000},"
                            "{\"name\":\"ft\",\"upstream\":\"u\",\"weight_bp\":5000}]}]");
  sy_route_request q = req_user("support-bot", "user-1", 6);
  sy_route_decision d;
  assert_int_equal(sy_router_decide(t, &q, 0, &d), 0);
  assert_int_equal(d.bucket, 4637);
  assert_int_equal(d.arm_index, 0); /* 4637 < 5000 */
  q = req_user("support-bot", "alice@example.com", 17);
  assert_int_equal(sy_router_decide(t, &q, 0, &d), 0);
  assert_int_equal(d.bucket, 8513);
  assert_int_equal(d.arm_index, 1);
  sy_route_table_unref(t);
}

static void test_arm_ranges(void **state) {
  (void)state;
  uint32_t w[] = {1000, 0, 2500, 6500};
  assert_int_equal(sy_split_arm(w, 4, 0), 0);
  assert_int_equal(sy_split_arm(w, 4, 999), 0);
  assert_int_equal(sy_split_arm(w, 4, 1000), 2); /* zero-weight arm owns nothing */
  assert_int_equal(sy_split_arm(w, 4, 3499), 2);
  assert_int_equal(sy_split_arm(w, 4, 3500), 3);
  assert_int_equal(sy_split_arm(w, 4, 9999), 3);
  uint32_t z[] = {0, 0};
  assert_int_equal(sy_split_arm(z, 2, 0), -1);
}

static void test_same_key_same_arm(void **state) {
  (void)state;
  const char *json = "[{\"name\":\"r\",\"arms\":["
                     "{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":3333},"
                     "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":3333},"
                     "{\"name\":\"c\",\"upstream\":\"u\",\"weight_bp\":3334}]}]";
  sy_route_table *t1 = parse(json);
  sy_route_table *t2 = parse(json); /* a "restart": a separately built table */
  rng_state = 1;
  for (int i = 0; i < 2000; i++) {
    char key[24];
    size_t n = random_key(key);
    sy_route_request q = req_user("r", key, n);
    sy_route_decision d1, d2;
    assert_int_equal(sy_router_decide(t1, &q, rng(), &d1), 0);
    assert_int_equal(d1.pick, SY_PICK_STICKY);
    assert_int_equal(d1.key_source, SY_STICKY_USER);
    for (int k = 0; k < 5; k++) {
      /* the random number must not matter for a sticky key */
      assert_int_equal(sy_router_decide(k & 1 ? t2 : t1, &q, rng(), &d2), 0);
      assert_int_equal(d2.arm_index, d1.arm_index);
      assert_int_equal(d2.bucket, d1.bucket);
    }
  }
  sy_route_table_unref(t1);
  sy_route_table_unref(t2);
}

static void test_key_order(void **state) {
  (void)state;
  sy_sticky_source order[] = {SY_STICKY_HEADER, SY_STICKY_USER, SY_STICKY_CLIENT_KEY};
  sy_sticky_inputs in = {"h", 1, "u", 1, "c", 1};
  const char *k;
  size_t n;
  assert_int_equal(sy_split_pick_key(order, 3, &in, &k, &n), SY_STICKY_HEADER);
  assert_memory_equal(k, "h", 1);
  in.header = NULL;
  assert_int_equal(sy_split_pick_key(order, 3, &in, &k, &n), SY_STICKY_USER);
  in.user_len = 0; /* empty counts as absent */
  assert_int_equal(sy_split_pick_key(order, 3, &in, &k, &n), SY_STICKY_CLIENT_KEY);
  assert_memory_equal(k, "c", 1);
  in.client_key = NULL;
  assert_int_equal(sy_split_pick_key(order, 3, &in, &k, &n), -1);
  assert_null(k);
  /* a custom order: client key before user */
  sy_sticky_source order2[] = {SY_STICKY_CLIENT_KEY, SY_STICKY_USER};
  sy_sticky_inputs in2 = {"h", 1, "u", 1, "c", 1};
  assert_int_equal(sy_split_pick_key(order2, 2, &in2, &k, &n), SY_STICKY_CLIENT_KEY);
  /* header not configured: ignored even when present */
  in2.client_key = NULL;
  in2.user = NULL;
  assert_int_equal(sy_split_pick_key(order2, 2, &in2, &k, &n), -1);
}

/* counts[] of N draws against weights: every share within 1 pp, chi-square
 * below the p=0.001 critical value. */
static void check_distribution(const uint64_t *counts, const uint32_t *w, size_t k, uint64_t n,
                               double crit) {
  double chi2 = 0;
  for (size_t i = 0; i < k; i++) {
    double share = (double)counts[i] / (double)n, want = w[i] / 10000.0;
    if (fabs(share - want) > 0.01) fail_msg("arm %zu share %.4f, weight %.4f", i, share, want);
    double e = (double)n * want;
    chi2 += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
  }
  if (chi2 >= crit) fail_msg("chi-square %.3f >= critical %.3f", chi2, crit);
}

static void test_distribution_100k(void **state) {
  (void)state;
  sy_route_table *t = parse("[{\"name\":\"r\",\"salt\":\"dist\",\"arms\":["
                            "{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":5000},"
                            "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":3000},"
                            "{\"name\":\"c\",\"upstream\":\"u\",\"weight_bp\":2000}]},"
                            "{\"name\":\"s\",\"arms\":["
                            "{\"name\":\"base\",\"upstream\":\"u\",\"weight_bp\":9000},"
                            "{\"name\":\"ft\",\"upstream\":\"u\",\"weight_bp\":1000}]}]");
  uint64_t c3[3] = {0}, c2[2] = {0};
  static uint32_t buckets[SY_SPLIT_BUCKETS];
  memset(buckets, 0, sizeof buckets);
  const uint64_t n = 100000;
  rng_state = 42;
  for (uint64_t i = 0; i < n; i++) {
    char key[24];
    size_t len = random_key(key);
    sy_route_request q = req_user("r", key, len);
    sy_route_decision d;
    assert_int_equal(sy_router_decide(t, &q, 0, &d), 0);
    c3[d.arm_index]++;
    buckets[d.bucket]++;
    q = req_user("s", key, len);
    assert_int_equal(sy_router_decide(t, &q, 0, &d), 0);
    c2[d.arm_index]++;
  }
  uint32_t w3[] = {5000, 3000, 2000}, w2[] = {9000, 1000};
  check_distribution(c3, w3, 3, n, CHI2_DF2_P001);
  check_distribution(c2, w2, 2, n, CHI2_DF1_P001);
  /* the buckets themselves are uniform: chi-square over 10000 cells,
   * critical value by Wilson-Hilferty at z(0.999) = 3.0902 */
  double e = (double)n / SY_SPLIT_BUCKETS, chi2 = 0, df = SY_SPLIT_BUCKETS - 1;
  for (unsigned b = 0; b < SY_SPLIT_BUCKETS; b++) chi2 += (buckets[b] - e) * (buckets[b] - e) / e;
  double a = 2.0 / (9.0 * df), crit = df * pow(1 - a + 3.0902 * sqrt(a), 3);
  if (chi2 >= crit) fail_msg("bucket chi-square %.1f >= %.1f", chi2, crit);
  sy_route_table_unref(t);
}

/* Ramping the candidate 10% -> 20% -> 50% -> 100% moves keys only from base
 * to candidate, never back, and moves exactly the keys whose bucket entered
 * the candidate's range. */
static void test_ramp_monotonic_1m(void **state) {
  (void)state;
  const unsigned steps[] = {1000, 2000, 5000, 10000};
  sy_route_table *t[4];
  for (int s = 0; s < 4; s++) {
    char json[512];
    snprintf(json, sizeof json,
             "[{\"name\":\"bot\",\"arms\":[{\"name\":\"base\",\"upstream\":\"u\",\"weight_bp\":%u},"
             "{\"name\":\"cand\",\"upstream\":\"u\",\"weight_bp\":%u}]}]",
             10000 - steps[s], steps[s]);
    t[s] = parse(json);
  }
  const uint64_t n = 1000000;
  uint64_t moved[3] = {0}, cand_final[4] = {0};
  rng_state = 7;
  for (uint64_t i = 0; i < n; i++) {
    char key[24];
    size_t len = random_key(key);
    sy_route_request q = req_user("bot", key, len);
    int prev = -1;
    for (int s = 0; s < 4; s++) {
      sy_route_decision d;
      sy_router_decide(t[s], &q, 0, &d);
      if (prev == 1 && d.arm_index == 0) fail_msg("key %s moved back from candidate at step %d", key, s);
      if (s > 0 && prev == 0 && d.arm_index == 1) moved[s - 1]++;
      if (d.arm_index == 1) cand_final[s]++;
      prev = d.arm_index;
    }
  }
  /* each step moves (new - old) / 10000 of the keys, within 0.2 pp */
  for (int s = 0; s < 3; s++) {
    double want = (steps[s + 1] - steps[s]) / 10000.0, got = (double)moved[s] / (double)n;
    if (fabs(got - want) > 0.002) fail_msg("step %d moved %.4f, expected %.4f", s, got, want);
  }
  assert_int_equal(cand_final[3], n);
  for (int s = 0; s < 4; s++) sy_route_table_unref(t[s]);
}

/* Two 50/50 routes with different salts: the arm in one says nothing about
 * the arm in the other (each joint cell ~25%, 2x2 independence chi-square). */
static void test_salts_independent(void **state) {
  (void)state;
  sy_route_table *t = parse(
      "[{\"name\":\"r1\",\"salt\":\"alpha\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":5000},"
      "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":5000}]},"
      "{\"name\":\"r2\",\"salt\":\"beta\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":5000},"
      "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":5000}]},"
      "{\"name\":\"r3\",\"salt\":\"alpha\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":5000},"
      "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":5000}]}]");
  uint64_t cell[2][2] = {{0}}, same_salt_agree = 0;
  const uint64_t n = 100000;
  rng_state = 99;
  for (uint64_t i = 0; i < n; i++) {
    char key[24];
    size_t len = random_key(key);
    sy_route_decision d1, d2, d3;
    sy_route_request q = req_user("r1", key, len);
    sy_router_decide(t, &q, 0, &d1);
    q = req_user("r2", key, len);
    sy_router_decide(t, &q, 0, &d2);
    q = req_user("r3", key, len);
    sy_router_decide(t, &q, 0, &d3);
    cell[d1.arm_index][d2.arm_index]++;
    same_salt_agree += d1.arm_index == d3.arm_index;
  }
  double chi2 = 0;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      double share = (double)cell[a][b] / (double)n;
      if (fabs(share - 0.25) > 0.01) fail_msg("cell %d,%d share %.4f", a, b, share);
      double row = (double)(cell[a][0] + cell[a][1]), col = (double)(cell[0][b] + cell[1][b]);
      double e = row * col / (double)n;
      chi2 += (cell[a][b] - e) * (cell[a][b] - e) / e;
    }
  if (chi2 >= CHI2_DF1_P001) fail_msg("independence chi-square %.3f", chi2);
  /* control: the same salt gives the same assignment, so the test can fail */
  assert_int_equal(same_salt_agree, n);
  sy_route_table_unref(t);
}

static void test_random_without_key(void **state) {
  (void)state;
  sy_route_table *t = parse("[{\"name\":\"r\",\"arms\":["
                            "{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":7000},"
                            "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":3000}]},"
                            "{\"name\":\"nosticky\",\"sticky\":[],\"arms\":["
                            "{\"name\":\"a\",\"upstream\":\"u\",\"weight_bp\":5000},"
                            "{\"name\":\"b\",\"upstream\":\"u\",\"weight_bp\":5000}]}]");
  uint64_t c[2] = {0};
  const uint64_t n = 100000;
  for (uint64_t i = 0; i < n; i++) {
    sy_route_request q = req_user("r", NULL, 0);
    sy_route_decision d;
    assert_int_equal(sy_router_decide(t, &q, i, &d), 0); /* a plain counter is a fine rand */
    assert_int_equal(d.pick, SY_PICK_RANDOM);
    assert_int_equal(d.key_source, -1);
    assert_true(d.bucket >= 0 && d.bucket < 10000);
    c[d.arm_index]++;
  }
  uint32_t w[] = {7000, 3000};
  check_distribution(c, w, 2, n, CHI2_DF1_P001);
  assert_string_equal(sy_route_pick_name(SY_PICK_RANDOM), "random");
  /* the same rand gives the same random pick (deterministic, testable) */
  sy_route_request q = req_user("r", NULL, 0);
  sy_route_decision d1, d2;
  sy_router_decide(t, &q, 12345, &d1);
  sy_router_decide(t, &q, 12345, &d2);
  assert_int_equal(d1.bucket, d2.bucket);
  /* a route with "sticky": [] ignores keys that are present */
  q = req_user("nosticky", "user-1", 6);
  q.header_user = "h";
  q.header_user_len = 1;
  sy_router_decide(t, &q, 1, &d1);
  assert_int_equal(d1.pick, SY_PICK_RANDOM);
  int differs = 0;
  for (uint64_t r = 2; r < 64 && !differs; r++) {
    sy_router_decide(t, &q, r, &d2);
    differs = d2.arm_index != d1.arm_index;
  }
  assert_true(differs);
  sy_route_table_unref(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_vectors),    cmocka_unit_test(test_arm_ranges),
      cmocka_unit_test(test_same_key_same_arm), cmocka_unit_test(test_key_order),
      cmocka_unit_test(test_distribution_100k), cmocka_unit_test(test_ramp_monotonic_1m),
      cmocka_unit_test(test_salts_independent), cmocka_unit_test(test_random_without_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
