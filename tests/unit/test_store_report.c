/* store/report: the statistics against hand-computed values, the
 * recommendation rules and their edge cases, and a report over a small
 * synthetic store (every counted quantity checked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>

#include "common/err.h"
#include "store/report.h"
#include "tests/unit/test_store_util.h"

#define NEAR(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) < (eps))

/* ---- statistics --------------------------------------------------------- */

static void test_wilson(void **state) {
  (void)state;
  double lo, hi;
  sy_report_wilson(8, 10, SY_REPORT_Z95, &lo, &hi);
  NEAR(lo, 0.490, 0.0005);
  NEAR(hi, 0.943, 0.0005);
  NEAR(lo, 0.4901625, 1e-6);
  NEAR(hi, 0.9433178, 1e-6);
  sy_report_wilson(0, 10, SY_REPORT_Z95, &lo, &hi);
  NEAR(lo, 0, 1e-12);
  NEAR(hi, 0.2775328, 1e-6);
  sy_report_wilson(10, 10, SY_REPORT_Z95, &lo, &hi);
  NEAR(lo, 0.7224672, 1e-6);
  assert_true(hi <= 1.0);
  NEAR(hi, 1.0, 1e-9);
  sy_report_wilson(0, 0, SY_REPORT_Z95, &lo, &hi);
  assert_true(lo == 0 && hi == 0);
}

static void test_two_prop(void **state) {
  (void)state;
  double z, p;
  /* 45/100 vs 30/100: pooled 0.375, se 0.068465, z 2.19089, p 0.028460 */
  sy_report_two_prop(45, 100, 30, 100, &z, &p);
  NEAR(z, 2.1908902, 1e-6);
  NEAR(p, 0.0284597, 1e-6);
  sy_report_two_prop(30, 100, 45, 100, &z, &p);
  NEAR(z, -2.1908902, 1e-6);
  NEAR(p, 0.0284597, 1e-6);
  /* identical proportions */
  sy_report_two_prop(50, 100, 50, 100, &z, &p);
  NEAR(z, 0, 1e-12);
  NEAR(p, 1, 1e-12);
  /* degenerate: nothing to test */
  sy_report_two_prop(0, 0, 5, 10, &z, &p);
  assert_true(z == 0 && p == 1);
  sy_report_two_prop(10, 10, 20, 20, &z, &p);
  assert_true(z == 0 && p == 1);
}

static void test_percentile_and_normalise(void **state) {
  (void)state;
  uint64_t v[100];
  for (int i = 0; i < 100; i++) v[i] = (uint64_t)i + 1;
  assert_int_equal(sy_report_percentile(v, 100, 0.50), 50);
  assert_int_equal(sy_report_percentile(v, 100, 0.99), 99);
  assert_int_equal(sy_report_percentile(v, 100, 1.0), 100);
  uint64_t w[4] = {10, 20, 30, 40};
  assert_int_equal(sy_report_percentile(w, 4, 0.50), 20);
  assert_int_equal(sy_report_percentile(w, 4, 0.99), 40);
  assert_int_equal(sy_report_percentile(w, 1, 0.99), 10);
  assert_int_equal(sy_report_percentile(w, 0, 0.5), 0);

  sy_buf b;
  sy_buf_init(&b, 1024);
  const char *s = "  Hello,\t\n  WORLD \r\n";
  assert_int_equal(sy_report_normalise(s, strlen(s), &b), 0);
  assert_string_equal(b.data, "hello, world");
  sy_buf_reset(&b);
  assert_int_equal(sy_report_normalise("   ", 3, &b), 0);
  assert_int_equal(b.len, 0);
  sy_buf_free(&b);
}

/* ---- recommendation rules on made-up counts ------------------------------ */

static sy_report_arm *add_arm(sy_report *r, const char *name, uint64_t requests, uint64_t errors,
                              uint64_t rated, uint64_t approved) {
  sy_report_arm *a = &r->arms[r->n_arms++];
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  a->requests = requests;
  a->errors = errors;
  a->rated = rated;
  a->approved = approved;
  return a;
}

static void new_report(sy_report *r, const char *base) {
  memset(r, 0, sizeof *r);
  snprintf(r->route, sizeof r->route, "support-bot");
  snprintf(r->base_arm, sizeof r->base_arm, "%s", base);
}

static void test_rules_promote_and_rollback(void **state) {
  (void)state;
  sy_report r;
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 10, 200, 140);
  add_arm(&r, "ft", 1000, 10, 200, 170);
  sy_report_finish(&r);
  assert_true(r.arms[0].is_base);
  assert_false(r.arms[0].has_comparison);
  sy_report_arm *ft = &r.arms[1];
  assert_true(ft->has_comparison);
  NEAR(ft->approval, 0.85, 1e-12);
  NEAR(ft->approval_diff, 0.15, 1e-12);
  NEAR(ft->z, 3.5921060, 1e-6);
  NEAR(ft->p_value, 0.000328016, 1e-8);
  assert_int_equal(ft->verdict, SY_REPORT_PROMOTE);
  assert_string_equal(ft->rule, "promote: ft approval 0.85 [0.79,0.89] vs base (base) 0.70 "
                                "[0.63,0.76], p=0.00033 < 0.05 with >= 100 rated answers per arm");
  assert_int_equal(r.verdict, SY_REPORT_PROMOTE);
  assert_string_equal(r.target_arm, "ft");
  assert_string_equal(r.rule, ft->rule);

  new_report(&r, "base");
  add_arm(&r, "base", 1000, 10, 200, 170);
  add_arm(&r, "ft", 1000, 10, 200, 140);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_ROLL_BACK);
  assert_string_equal(r.rule, "roll back: ft approval 0.70 [0.63,0.76] vs base (base) 0.85 "
                              "[0.79,0.89], p=0.00033 < 0.05 with >= 100 rated answers per arm");

  /* not significant */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 0, 100, 50);
  add_arm(&r, "ft", 1000, 0, 100, 60);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_non_null(strstr(r.rule, "keep testing: no significant difference"));
  assert_non_null(strstr(r.rule, "p=0.16 >= 0.05"));
}

static void test_rules_errors(void **state) {
  (void)state;
  sy_report r;
  /* 10% errors vs 1%: roll back even without ratings */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 10, 0, 0);
  add_arm(&r, "ft", 200, 20, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_ROLL_BACK);
  assert_string_equal(r.rule, "roll back: ft error rate 0.100 > 2x base (base) 0.010 (and >= "
                              "0.01 above it) with >= 100 requests");
  /* 0.5% vs 0%: more than twice, but under one percentage point */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 0, 0, 0);
  add_arm(&r, "ft", 200, 1, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  /* too few candidate requests for the error rule */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 0, 0, 0);
  add_arm(&r, "ft", 99, 50, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  NEAR(r.arms[1].error_rate, 50.0 / 99, 1e-12);
}

static void test_rules_edge_cases(void **state) {
  (void)state;
  sy_report r;
  /* no feedback at all */
  new_report(&r, "base");
  add_arm(&r, "base", 500, 0, 0, 0);
  add_arm(&r, "ft", 500, 0, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r.rule, "keep testing: fewer than 100 rated answers per arm (ft 0, base 0)");
  assert_true(r.arms[1].approval == 0 && r.arms[1].approval_lo == 0 && r.arms[1].p_value == 1);
  /* enough on the candidate only */
  new_report(&r, "base");
  add_arm(&r, "base", 500, 0, 99, 10);
  add_arm(&r, "ft", 500, 0, 400, 390);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r.rule,
                      "keep testing: fewer than 100 rated answers per arm (ft 400, base 99)");
  /* one arm only */
  new_report(&r, "base");
  add_arm(&r, "base", 500, 0, 300, 200);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r.target_arm, "");
  assert_string_equal(r.rule, "keep testing: no candidate arm has requests in the window");
  /* nothing at all */
  new_report(&r, "");
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_int_equal(r.n_arms, 0);
  /* the base arm had no traffic */
  new_report(&r, "base");
  add_arm(&r, "base", 0, 0, 0, 0);
  add_arm(&r, "ft", 500, 0, 300, 200);
  sy_report_finish(&r);
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r.rule, "keep testing: base arm base has no requests in the window");
  /* no base named: the busiest arm is the base */
  new_report(&r, "");
  add_arm(&r, "ft", 100, 0, 0, 0);
  add_arm(&r, "gpt", 900, 0, 0, 0);
  sy_report_finish(&r);
  assert_string_equal(r.base_arm, "gpt");
  assert_true(r.arms[1].is_base);
  assert_false(r.arms[0].is_base);
}

static void test_rules_several_candidates(void **state) {
  (void)state;
  sy_report r;
  /* p = 0.044: promote against one candidate ... */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 0, 200, 100);
  add_arm(&r, "ft", 1000, 0, 200, 120);
  sy_report_finish(&r);
  NEAR(r.arms[1].p_value, 0.0444232, 1e-6);
  assert_int_equal(r.verdict, SY_REPORT_PROMOTE);
  /* ... but not with two (Bonferroni alpha 0.025) */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 0, 200, 100);
  add_arm(&r, "ft", 1000, 0, 200, 120);
  add_arm(&r, "ft2", 10, 0, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.arms[1].verdict, SY_REPORT_KEEP_TESTING);
  assert_non_null(strstr(r.arms[1].rule, "p=0.044 >= 0.025 (0.05 / 2 candidates)"));
  assert_int_equal(r.verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r.target_arm, "ft"); /* the busiest candidate's rule */
  /* a roll back wins over a promote */
  new_report(&r, "base");
  add_arm(&r, "base", 1000, 10, 200, 140);
  add_arm(&r, "good", 1000, 10, 200, 190);
  add_arm(&r, "bad", 1000, 300, 0, 0);
  sy_report_finish(&r);
  assert_int_equal(r.arms[1].verdict, SY_REPORT_PROMOTE);
  assert_int_equal(r.arms[2].verdict, SY_REPORT_ROLL_BACK);
  assert_int_equal(r.verdict, SY_REPORT_ROLL_BACK);
  assert_string_equal(r.target_arm, "bad");
}

/* ---- a report over a synthetic store ------------------------------------ */

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
  sy_store *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  sy_store_opts o = {0};
  o.path = f->path;
  o.durability = SY_DURABLE_NOSYNC;
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  assert_int_equal(sy_store_open(&o, &f->s), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sy_store_close(f->s);
  test_rmtree(f->dir);
  free(f);
  return 0;
}

#define T0 1000000u /* window [T0, T1) */
#define T1 2000000u

static void put(fixture *f, uint64_t id, const char *route, const char *arm, int kind,
                uint32_t status, uint64_t latency, const char *answer, uint64_t parent,
                int accepted) {
  sy_capture c;
  switchyard__v1__capture__init(&c);
  c.id = id;
  c.route = (char *)route;
  c.arm = (char *)arm;
  c.kind = (Switchyard__V1__Capture__Kind)kind;
  c.http_status = status;
  c.latency_total_us = latency;
  c.parent_id = parent;
  c.accepted = accepted;
  if (status < 400) {
    c.prompt_tokens = 10;
    c.completion_tokens = 5;
    c.total_tokens = 15;
  }
  char body[512];
  if (answer) {
    if (answer[0] == '{') /* a raw message object (tool calls) */
      snprintf(body, sizeof body, "{\"choices\":[{\"message\":%s}]}", answer);
    else
      snprintf(body, sizeof body, "{\"choices\":[{\"message\":{\"role\":\"assistant\","
                                  "\"content\":\"%s\"}}]}", answer);
    c.response_body.data = (uint8_t *)body;
    c.response_body.len = strlen(body);
  }
  const sy_capture *p = &c;
  assert_int_equal(sy_store_put_captures_keep_ids(f->s, &p, 1), 0);
}

static void rate(fixture *f, uint64_t id, int rating, double score, const char *correction) {
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = id;
  fb.rating = (Switchyard__V1__Feedback__Rating)rating;
  fb.score = score;
  if (correction) fb.correction = (char *)correction;
  assert_int_equal(sy_store_put_feedback(f->s, &fb), 0);
}

enum { P = 0, S = 1, C = 2 };
enum { UP = 1, DOWN = 2, SCORE = 3 };

static void test_report_over_store(void **state) {
  fixture *f = *state;
  const char *R = "support-bot";
  /* base: 10 answers, latency 1..10 ms, and one 500 */
  for (uint64_t i = 1; i <= 10; i++)
    put(f, T0 + i, R, "base", P, 200, i * 1000, i == 1 ? "Hello  World" : "the answer", 0, 0);
  put(f, T0 + 11, R, "base", P, 500, 99999999, NULL, 0, 0);
  /* ft: 4 answers served by the cascade, and 2 rejected cascade attempts */
  for (uint64_t i = 1; i <= 4; i++) put(f, T0 + 100 + i, R, "ft", P, 200, i * 100, "x", 0, 1);
  put(f, T0 + 110, R, "ft", C, 200, 0, "y", T0 + 3, 0);
  put(f, T0 + 111, R, "ft", C, 200, 0, "y", T0 + 4, 0);
  /* shadows on ft: agrees (after normalisation), disagrees, parent gone,
   * failed, tool calls equal up to their ids */
  put(f, T0 + 12, R, "base", P, 200, 500, "{\"tool_calls\":[{\"id\":\"call_1\",\"function\":"
                                        "{\"name\":\"f\",\"arguments\":\"{}\"}}]}", 0, 0);
  put(f, T0 + 201, R, "ft", S, 200, 0, " hello world\\n", T0 + 1, 0);
  put(f, T0 + 202, R, "ft", S, 200, 0, "something else", T0 + 5, 0);
  put(f, T0 + 203, R, "ft", S, 200, 0, "orphan", 42, 0);
  put(f, T0 + 204, R, "ft", S, 503, 0, NULL, T0 + 6, 0);
  put(f, T0 + 205, R, "ft", S, 200, 0, "{\"tool_calls\":[{\"id\":\"call_9\",\"function\":"
                                       "{\"name\":\"F\",\"arguments\":\"{}\"}}]}", T0 + 12, 0);
  /* outside the window or another route: ignored */
  put(f, T0 - 1, R, "base", P, 500, 1, NULL, 0, 0);
  put(f, T1, R, "base", P, 500, 1, NULL, 0, 0);
  put(f, T0 + 300, "other", "base", P, 500, 1, NULL, 0, 0);

  /* feedback: base #1 up, #3 down, #4 score 0.5 and down (mean < 0), #5 a
   * correction only; ft #1 up twice */
  rate(f, T0 + 1, UP, 0, NULL);
  rate(f, T0 + 3, DOWN, 0, NULL);
  rate(f, T0 + 4, SCORE, 0.5, NULL);
  rate(f, T0 + 4, DOWN, 0, NULL);
  rate(f, T0 + 5, 0, 0, "the real answer");
  rate(f, T0 + 101, UP, 0, NULL);
  rate(f, T0 + 101, UP, 0, NULL);

  sy_report *r = calloc(1, sizeof *r);
  assert_int_equal(sy_report_compute(f->s, R, T0, T1, "base", r), 0);
  assert_int_equal(r->captures, 11 + 1 + 4 + 2 + 5);
  assert_int_equal(r->n_arms, 2);
  sy_report_arm *b = &r->arms[0], *ft = &r->arms[1];
  assert_string_equal(b->name, "base");
  assert_true(b->is_base);
  assert_int_equal(b->requests, 12);
  assert_int_equal(b->errors, 1);
  NEAR(b->error_rate, 1.0 / 12, 1e-12);
  /* latencies of the 11 good answers: 500, 1000..10000 */
  assert_int_equal(b->latency_n, 11);
  assert_true(b->latency_exact);
  assert_int_equal(b->latency_p50_us, 5000);  /* rank ceil(5.5) = 6 */
  assert_int_equal(b->latency_p99_us, 10000); /* rank 11 */
  assert_int_equal(b->prompt_tokens, 110);
  assert_int_equal(b->completion_tokens, 55);
  assert_int_equal(b->total_tokens, 165);
  assert_int_equal(b->feedback, 5);
  assert_int_equal(b->corrections, 1);
  assert_int_equal(b->rated, 3);
  assert_int_equal(b->approved, 1);
  NEAR(b->approval, 1.0 / 3, 1e-12);
  assert_int_equal(b->cascade_decisions, 0);
  assert_int_equal(b->shadows, 0);

  assert_string_equal(ft->name, "ft");
  assert_int_equal(ft->requests, 4);
  assert_int_equal(ft->errors, 0);
  assert_int_equal(ft->latency_p50_us, 200);
  assert_int_equal(ft->latency_p99_us, 400);
  assert_int_equal(ft->cascade_decisions, 6);
  assert_int_equal(ft->cascade_accepted, 4);
  NEAR(ft->cascade_acceptance, 4.0 / 6, 1e-12);
  assert_int_equal(ft->shadows, 5);
  assert_int_equal(ft->shadow_errors, 1);
  assert_int_equal(ft->shadow_compared, 3);
  assert_int_equal(ft->shadow_agreed, 2);
  NEAR(ft->shadow_agreement, 2.0 / 3, 1e-12);
  assert_int_equal(ft->feedback, 2);
  assert_int_equal(ft->rated, 1);
  assert_int_equal(ft->approved, 1);
  assert_true(ft->has_comparison);
  NEAR(ft->approval_diff, 1 - 1.0 / 3, 1e-12);
  assert_int_equal(r->verdict, SY_REPORT_KEEP_TESTING);
  assert_string_equal(r->rule, "keep testing: fewer than 100 rated answers per arm (ft 1, base 3)");

  /* the JSON rendering parses and carries the same numbers */
  sy_buf jb;
  sy_buf_init(&jb, 1 << 20);
  assert_int_equal(sy_report_to_json(r, &jb), 0);
  cJSON *j = cJSON_Parse(jb.data);
  assert_non_null(j);
  cJSON *arms = cJSON_GetObjectItem(j, "arms");
  assert_int_equal(cJSON_GetArraySize(arms), 2);
  cJSON *j0 = cJSON_GetArrayItem(arms, 0), *j1 = cJSON_GetArrayItem(arms, 1);
  assert_string_equal(cJSON_GetObjectItem(j0, "name")->valuestring, "base");
  assert_int_equal(cJSON_GetObjectItem(j0, "requests")->valueint, 12);
  assert_int_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j0, "latency_us"), "p50")->valueint, 5000);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j0, "cascade"), "acceptance")));
  NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(j1, "shadow"), "agreement")->valuedouble,
       2.0 / 3, 1e-5);
  cJSON *ci = cJSON_GetObjectItem(cJSON_GetObjectItem(j1, "feedback"), "ci95");
  assert_int_equal(cJSON_GetArraySize(ci), 2);
  assert_non_null(cJSON_GetObjectItem(j1, "vs_base"));
  assert_null(cJSON_GetObjectItem(j0, "vs_base"));
  cJSON *rec = cJSON_GetObjectItem(j, "recommendation");
  assert_string_equal(cJSON_GetObjectItem(rec, "verdict")->valuestring, "keep testing");
  assert_string_equal(cJSON_GetObjectItem(rec, "rule")->valuestring, r->rule);
  cJSON_Delete(j);
  sy_buf_free(&jb);

  /* an empty window is not an error; a base that never answered is listed */
  assert_int_equal(sy_report_compute(f->s, R, T1 + 10, T1 + 20, "base", r), 0);
  assert_int_equal(r->n_arms, 1);
  assert_int_equal(r->arms[0].requests, 0);
  assert_int_equal(r->verdict, SY_REPORT_KEEP_TESTING);
  /* no end of window: the capture at T1 is counted too */
  assert_int_equal(sy_report_compute(f->s, R, T0, 0, NULL, r), 0);
  assert_string_equal(r->base_arm, "base");
  assert_int_equal(r->arms[0].requests, 13);

  assert_int_equal(sy_report_compute(f->s, R, T1, T0, "base", r), SY_EINVAL);
  assert_int_equal(sy_report_compute(f->s, "", T0, T1, "base", r), SY_EINVAL);
  free(r);
}

static void test_report_many_arms(void **state) {
  fixture *f = *state;
  for (int i = 0; i < SY_REPORT_MAX_ARMS + 3; i++) {
    char arm[16];
    snprintf(arm, sizeof arm, "arm%d", i);
    put(f, T0 + (uint64_t)i, "r", arm, P, 200, 100, "a", 0, 0);
  }
  sy_report *r = calloc(1, sizeof *r);
  assert_int_equal(sy_report_compute(f->s, "r", T0, T1, "arm0", r), 0);
  assert_int_equal(r->n_arms, SY_REPORT_MAX_ARMS);
  assert_int_equal(r->other_arm_captures, 3);
  assert_int_equal(r->captures, SY_REPORT_MAX_ARMS + 3);
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wilson),
      cmocka_unit_test(test_two_prop),
      cmocka_unit_test(test_percentile_and_normalise),
      cmocka_unit_test(test_rules_promote_and_rollback),
      cmocka_unit_test(test_rules_errors),
      cmocka_unit_test(test_rules_edge_cases),
      cmocka_unit_test(test_rules_several_candidates),
      cmocka_unit_test_setup_teardown(test_report_over_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_report_many_arms, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
