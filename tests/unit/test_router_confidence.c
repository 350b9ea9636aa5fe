/* Confidence from logprobs, extraction from chat.completion JSON, and the
 * cascade accept/escalate decision table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "common/err.h"
#include "router/confidence.h"

#define EPS 1e-12

static void test_compute(void **state) {
  (void)state;
  double lp[] = {log(0.9), log(0.5), log(0.8)};
  double gm = cbrt(0.9 * 0.5 * 0.8);
  assert_true(fabs(sy_confidence_geomean(lp, 3) - gm) < EPS);
  assert_true(fabs(sy_confidence_min(lp, 3) - 0.5) < EPS);
  assert_true(fabs(sy_confidence(SY_CONF_GEOMEAN, lp, 3) - gm) < EPS);
  assert_true(fabs(sy_confidence(SY_CONF_MIN, lp, 3) - 0.5) < EPS);
  /* certain tokens: confidence 1 */
  double one[] = {0.0, 0.0};
  assert_true(sy_confidence_geomean(one, 2) == 1.0);
  /* tiny positive rounding noise is tolerated as 0 */
  double noise[] = {1e-9};
  assert_true(sy_confidence_min(noise, 1) == 1.0);
  /* no tokens, NaN, +inf, clearly positive: NaN */
  assert_true(isnan(sy_confidence_geomean(lp, 0)));
  double bad[] = {log(0.9), NAN};
  assert_true(isnan(sy_confidence_geomean(bad, 2)));
  assert_true(isnan(sy_confidence_min(bad, 2)));
  double pinf[] = {INFINITY};
  assert_true(isnan(sy_confidence_min(pinf, 1)));
  double pos[] = {0.5};
  assert_true(isnan(sy_confidence_geomean(pos, 1)));
  /* -inf (probability 0) is a real token: confidence 0 */
  double ninf[] = {log(0.9), -INFINITY};
  assert_true(sy_confidence_geomean(ninf, 2) == 0.0);
  assert_true(sy_confidence_min(ninf, 2) == 0.0);
  /* the accumulator equals the array form */
  sy_conf_acc a;
  sy_conf_acc_init(&a);
  for (int i = 0; i < 3; i++) sy_conf_acc_add(&a, lp[i]);
  assert_int_equal(a.n, 3);
  assert_true(fabs(sy_conf_acc_value(&a, SY_CONF_GEOMEAN) - gm) < EPS);
}

static void test_extract(void **state) {
  (void)state;
  const char *ok =
      "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
      "\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"},"
      "\"logprobs\":{\"content\":[{\"token\":\"Hi\",\"logprob\":-0.1,\"bytes\":[72,105],\"top_logprobs\":[]},"
      "{\"token\":\" there\",\"logprob\":-0.7,\"top_logprobs\":[]}]},\"finish_reason\":\"stop\"}]}";
  sy_conf_acc a;
  char err[128];
  sy_conf_acc_init(&a);
  assert_int_equal(sy_confidence_from_chat_json(ok, strlen(ok), &a, err, sizeof err), 0);
  assert_int_equal(a.n, 2);
  assert_true(fabs(sy_conf_acc_value(&a, SY_CONF_GEOMEAN) - exp(-0.4)) < EPS);
  assert_true(fabs(sy_conf_acc_value(&a, SY_CONF_MIN) - exp(-0.7)) < EPS);

  static const struct {
    const char *json;
    int rc;
    const char *msg;
  } bad[] = {
      {"not json", SY_EINVAL, "response is not JSON"},
      {"{}", SY_ENOTFOUND, "choices: absent"},
      {"{\"choices\":{}}", SY_EINVAL, "choices: not an array"},
      {"{\"choices\":[]}", SY_ENOTFOUND, "choices: empty"},
      {"{\"choices\":[1]}", SY_EINVAL, "choices[0]: not an object"},
      {"{\"choices\":[{\"message\":{}}]}", SY_ENOTFOUND, "choices[0].logprobs: absent"},
      {"{\"choices\":[{\"logprobs\":null}]}", SY_ENOTFOUND, "choices[0].logprobs: absent"},
      {"{\"choices\":[{\"logprobs\":[]}]}", SY_EINVAL, "choices[0].logprobs: not an object"},
      {"{\"choices\":[{\"logprobs\":{\"content\":null}}]}", SY_ENOTFOUND,
       "choices[0].logprobs.content: absent"},
      {"{\"choices\":[{\"logprobs\":{\"refusal\":[]}}]}", SY_ENOTFOUND,
       "choices[0].logprobs.content: absent"},
      {"{\"choices\":[{\"logprobs\":{\"content\":{}}}]}", SY_EINVAL,
       "choices[0].logprobs.content: not an array"},
      {"{\"choices\":[{\"logprobs\":{\"content\":[]}}]}", SY_ENOTFOUND,
       "choices[0].logprobs.content: empty"},
      {"{\"choices\":[{\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-1},{\"token\":\"b\"}]}}]}",
       SY_EINVAL, "choices[0].logprobs.content[]: entry without a numeric logprob"},
      {"{\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":\"-1\"}]}}]}", SY_EINVAL,
       "choices[0].logprobs.content[]: entry without a numeric logprob"},
      {"{\"choices\":[{\"logprobs\":{\"content\":[3]}}]}", SY_EINVAL,
       "choices[0].logprobs.content[]: entry without a numeric logprob"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sy_conf_acc_init(&a);
    err[0] = '\0';
    int rc = sy_confidence_from_chat_json(bad[i].json, strlen(bad[i].json), &a, err, sizeof err);
    if (rc != bad[i].rc || strcmp(err, bad[i].msg))
      fail_msg("case %zu: rc %d \"%s\", want %d \"%s\"", i, rc, err, bad[i].rc, bad[i].msg);
  }
  /* a positive logprob is accepted by the walk but poisons the value */
  const char *pos = "{\"choices\":[{\"logprobs\":{\"content\":[{\"logprob\":0.5}]}}]}";
  sy_conf_acc_init(&a);
  assert_int_equal(sy_confidence_from_chat_json(pos, strlen(pos), &a, NULL, 0), 0);
  assert_true(isnan(sy_conf_acc_value(&a, SY_CONF_GEOMEAN)));
  /* too large */
  assert_int_equal(sy_confidence_from_chat_json(ok, SY_CONF_MAX_JSON_BYTES + 1, &a, err, sizeof err),
                   SY_ETOOBIG);
}

/* Decision table: accept iff confidence >= threshold; NaN escalates. */
static void test_cascade_table(void **state) {
  (void)state;
  static const struct {
    double conf, threshold;
    int accept;
  } t[] = {
      {0.90, 0.80, 1},          {0.80, 0.80, 1}, /* exactly at threshold: accept */
      {0.7999999, 0.80, 0},     {0.0, 0.0, 1},   {1.0, 1.0, 1},
      {0.999999, 1.0, 0},       {0.0, 0.01, 0},  {NAN, 0.5, 0},
      {NAN, 0.0, 0}, /* even a zero threshold does not accept NaN */
      {0.5, NAN, 0},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (sy_cascade_accept(t[i].conf, t[i].threshold) != t[i].accept)
      fail_msg("case %zu: conf %g thr %g", i, t[i].conf, t[i].threshold);
  /* end to end: geomean vs min on the same answer can decide differently */
  double lp[] = {log(0.99), log(0.99), log(0.99), log(0.4)};
  double thr = 0.7;
  assert_true(sy_cascade_accept(sy_confidence(SY_CONF_GEOMEAN, lp, 4), thr));  /* ~0.79 */
  assert_false(sy_cascade_accept(sy_confidence(SY_CONF_MIN, lp, 4), thr));     /* 0.4 */
  assert_false(sy_cascade_accept(sy_confidence(SY_CONF_GEOMEAN, lp, 0), 0.0)); /* no tokens */
}

static void test_method_names(void **state) {
  (void)state;
  sy_conf_method m;
  assert_int_equal(sy_conf_method_parse("geomean", &m), 0);
  assert_int_equal(m, SY_CONF_GEOMEAN);
  assert_int_equal(sy_conf_method_parse("min", &m), 0);
  assert_int_equal(m, SY_CONF_MIN);
  assert_int_equal(sy_conf_method_parse("mean", &m), SY_EINVAL);
  assert_string_equal(sy_conf_method_name(SY_CONF_MIN), "min");
  assert_string_equal(sy_conf_method_name(SY_CONF_GEOMEAN), "geomean");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compute),
      cmocka_unit_test(test_extract),
      cmocka_unit_test(test_cascade_table),
      cmocka_unit_test(test_method_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
