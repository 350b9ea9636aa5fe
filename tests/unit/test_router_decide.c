/* sy_router_decide: pass-through, sticky sources, rules before split,
 * cascade plans, shadow sampling rate, fallback chains, no allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "common/err.h"
#include "router/router.h"
#include "router/split.h"

/* Count allocations by interposing malloc (glibc's __libc_* underneath).
 * Not under ASan, which owns malloc itself. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static size_t g_allocs;
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void *malloc(size_t n) { g_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { g_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { g_allocs++; return __libc_realloc(p, n); }
#endif

static const char *k_json =
    "[{\"name\":\"support-bot\","
    "\"arms\":[{\"name\":\"base\",\"upstream\":\"openai\",\"model\":\"gpt-4o-mini\",\"weight_bp\":5000},"
    "{\"name\":\"ft\",\"upstream\":\"vllm\",\"model\":\"ft:support-v3\",\"weight_bp\":5000},"
    "{\"name\":\"big\",\"upstream\":\"openai\",\"model\":\"gpt-4o\",\"weight_bp\":0}],"
    "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0.75},"
    "\"rules\":[{\"arm\":\"big\",\"min_prompt_tokens\":8000},"
    "{\"arm\":\"base\",\"client_keys\":[\"batch\"],\"tools\":true}],"
    "\"fallback\":[\"ft\",\"base\",\"big\"],"
    "\"shadow\":{\"arm\":\"big\",\"rate_bp\":1000}},"
    "{\"name\":\"cascade-only\",\"arms\":[{\"name\":\"ft\",\"upstream\":\"vllm\"},"
    "{\"name\":\"base\",\"upstream\":\"openai\"}],"
    "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0.9,\"method\":\"min\"}},"
    "{\"name\":\"shadow-all\",\"arms\":[{\"name\":\"a\",\"upstream\":\"openai\",\"weight_bp\":10000},"
    "{\"name\":\"s\",\"upstream\":\"vllm\"}],\"shadow\":{\"arm\":\"s\",\"rate_bp\":10000}},"
    "{\"name\":\"shadow-self\",\"arms\":[{\"name\":\"a\",\"upstream\":\"openai\",\"weight_bp\":10000}],"
    "\"shadow\":{\"arm\":\"a\",\"rate_bp\":10000}}]";

static sy_route_table *g_t;

static int setup(void **state) {
  (void)state;
  char err[256];
  if (sy_route_table_parse(k_json, strlen(k_json), NULL, &g_t, err, sizeof err)) {
    fprintf(stderr, "parse: %s\n", err);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sy_route_table_unref(g_t);
  return 0;
}

static sy_route_request req(const char *model) {
  sy_route_request q;
  memset(&q, 0, sizeof q);
  q.model = model;
  q.model_len = strlen(model);
  return q;
}

/* A user id whose bucket on support-bot lands in [lo, hi). */
static size_t user_in(unsigned lo, unsigned hi, char *buf) {
  const sy_route *r = sy_route_table_find(g_t, "support-bot", 11);
  for (int i = 0;; i++) {
    size_t n = (size_t)snprintf(buf, 32, "user-%d", i);
    uint32_t b = sy_split_bucket(r->seed, buf, n);
    if (b >= lo && b < hi) return n;
  }
}

static void test_passthrough(void **state) {
  (void)state;
  sy_route_request q = req("gpt-3.5-turbo");
  q.user = "u";
  q.user_len = 1;
  sy_route_decision d;
  memset(&d, 0xab, sizeof d); /* decide must write every field */
  assert_int_equal(sy_router_decide(g_t, &q, 1, &d), 0);
  assert_int_equal(d.pick, SY_PICK_PASSTHROUGH);
  assert_null(d.route);
  assert_null(d.arm);
  assert_int_equal(d.arm_index, -1);
  assert_int_equal(d.bucket, -1);
  assert_int_equal(d.rule, -1);
  assert_int_equal(d.key_source, -1);
  assert_false(d.cascade);
  assert_int_equal(d.shadow_arm, -1);
  assert_int_equal(d.n_fallback, 0);
  /* a prefix of a route name is not that route; names are case-sensitive */
  q = req("support-bo");
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_PASSTHROUGH);
  q = req("Support-Bot");
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_PASSTHROUGH);
  /* no table at all: pass-through */
  q = req("support-bot");
  assert_int_equal(sy_router_decide(NULL, &q, 1, &d), 0);
  assert_int_equal(d.pick, SY_PICK_PASSTHROUGH);
  assert_string_equal(sy_route_pick_name(d.pick), "passthrough");
}

static void test_sticky_sources(void **state) {
  (void)state;
  sy_route_request q = req("support-bot");
  q.header_user = "H";
  q.header_user_len = 1;
  q.user = "U";
  q.user_len = 1;
  q.client_key = "C";
  q.client_key_len = 1;
  const sy_route *r = sy_route_table_find(g_t, "support-bot", 11);
  sy_route_decision d;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_STICKY);
  assert_int_equal(d.key_source, SY_STICKY_HEADER);
  assert_int_equal(d.bucket, (int)sy_split_bucket(r->seed, "H", 1));
  q.header_user = NULL;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.key_source, SY_STICKY_USER);
  assert_int_equal(d.bucket, (int)sy_split_bucket(r->seed, "U", 1));
  q.user = NULL;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.key_source, SY_STICKY_CLIENT_KEY);
  assert_int_equal(d.bucket, (int)sy_split_bucket(r->seed, "C", 1));
}

static void test_rules_before_split(void **state) {
  (void)state;
  char u[32];
  size_t n = user_in(5000, 10000, u); /* the split alone would give "ft" + cascade */
  sy_route_request q = req("support-bot");
  q.user = u;
  q.user_len = n;
  sy_route_decision d;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.arm_index, 1);
  assert_true(d.cascade);
  /* a long prompt: rule 0 pins "big", skips the split and the cascade */
  q.prompt_bytes = 40000; /* ~10000 tokens estimated */
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_RULE);
  assert_int_equal(d.rule, 0);
  assert_int_equal(d.arm_index, 2);
  assert_string_equal(d.arm->model.s, "gpt-4o");
  assert_false(d.cascade);
  assert_int_equal(d.bucket, -1);
  /* tokens given by the caller win over the estimate */
  q.prompt_tokens = 100;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_STICKY);
  /* rule 1 needs both the client key AND tools */
  q.client_key = "batch";
  q.client_key_len = 5;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_STICKY);
  q.has_tools = 1;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_RULE);
  assert_int_equal(d.rule, 1);
  assert_int_equal(d.arm_index, 0);
  assert_false(d.cascade); /* "base" is not the cascade's first arm anyway */
}

static void test_cascade_plans(void **state) {
  (void)state;
  char u[32];
  sy_route_decision d;
  sy_route_request q = req("support-bot");
  /* split picks the cascade's first arm: the plan applies */
  q.user_len = user_in(5000, 10000, u);
  q.user = u;
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.pick, SY_PICK_STICKY);
  assert_int_equal(d.arm_index, 1);
  assert_true(d.cascade);
  assert_int_equal(d.plan.first, 1);
  assert_int_equal(d.plan.escalate, 0);
  assert_true(d.plan.threshold == 0.75);
  assert_int_equal(d.plan.method, SY_CONF_GEOMEAN);
  /* split picks the other arm: a plain call */
  q.user_len = user_in(0, 5000, u);
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.arm_index, 0);
  assert_false(d.cascade);
  /* cascade-only route: every request, with or without a key */
  q = req("cascade-only");
  for (int k = 0; k < 2; k++) {
    if (k) {
      q.user = "someone";
      q.user_len = 7;
    }
    sy_router_decide(g_t, &q, 5, &d);
    assert_int_equal(d.pick, SY_PICK_CASCADE);
    assert_int_equal(d.arm_index, 0);
    assert_true(d.cascade);
    assert_int_equal(d.plan.first, 0);
    assert_int_equal(d.plan.escalate, 1);
    assert_int_equal(d.plan.method, SY_CONF_MIN);
    assert_true(d.plan.threshold == 0.9);
    assert_int_equal(d.bucket, -1);
  }
}

static void test_fallback_chain(void **state) {
  (void)state;
  char u[32];
  sy_route_decision d;
  sy_route_request q = req("support-bot");
  q.user_len = user_in(5000, 10000, u);
  q.user = u;
  sy_router_decide(g_t, &q, 1, &d); /* chose ft (1) */
  assert_int_equal(d.n_fallback, 2);
  assert_int_equal(d.fallback[0], 0);
  assert_int_equal(d.fallback[1], 2);
  q.user_len = user_in(0, 5000, u);
  sy_router_decide(g_t, &q, 1, &d); /* chose base (0) */
  assert_int_equal(d.n_fallback, 2);
  assert_int_equal(d.fallback[0], 1);
  assert_int_equal(d.fallback[1], 2);
  q = req("cascade-only");
  sy_router_decide(g_t, &q, 1, &d);
  assert_int_equal(d.n_fallback, 0);
}

static void test_shadow_rate(void **state) {
  (void)state;
  sy_route_request q = req("support-bot");
  q.user = "fixed-user";
  q.user_len = 10;
  const uint64_t n = 100000;
  uint64_t shadowed = 0;
  uint64_t s = 12345;
  for (uint64_t i = 0; i < n; i++) {
    s += 0x9e3779b97f4a7c15ull;
    sy_route_decision d;
    sy_router_decide(g_t, &q, s, &d);
    if (d.shadow_arm >= 0) {
      assert_int_equal(d.shadow_arm, 2);
      shadowed++;
    }
  }
  /* 10% +- 0.5 pp (sd is 0.095 pp) */
  double rate = (double)shadowed / (double)n;
  if (fabs(rate - 0.10) > 0.005) fail_msg("shadow rate %.4f, want 0.10", rate);
  /* 100% mirrors every request; an arm never shadows itself */
  sy_route_decision d;
  q = req("shadow-all");
  sy_router_decide(g_t, &q, 77, &d);
  assert_int_equal(d.shadow_arm, 1);
  q = req("shadow-self");
  sy_router_decide(g_t, &q, 77, &d);
  assert_int_equal(d.shadow_arm, -1);
  /* the random split and the shadow draw are independent even from one rand:
   * among random picks of support-bot, the shadow rate is the same for both arms */
  q = req("support-bot");
  uint64_t by_arm[2] = {0}, sh_arm[2] = {0};
  for (uint64_t i = 0; i < n; i++) {
    sy_router_decide(g_t, &q, i * 0x9e3779b97f4a7c15ull, &d);
    assert_int_equal(d.pick, SY_PICK_RANDOM);
    by_arm[d.arm_index]++;
    sh_arm[d.arm_index] += d.shadow_arm >= 0;
  }
  for (int a = 0; a < 2; a++) {
    double r = (double)sh_arm[a] / (double)by_arm[a];
    if (fabs(r - 0.10) > 0.006) fail_msg("arm %d shadow rate %.4f", a, r);
  }
}

static void test_no_allocation(void **state) {
  (void)state;
#if COUNT_ALLOCS
  sy_route_request q = req("support-bot");
  q.user = "someone";
  q.user_len = 7;
  q.prompt_bytes = 100;
  sy_route_decision d;
  size_t before = g_allocs;
  for (uint64_t i = 0; i < 10000; i++) {
    sy_router_decide(g_t, &q, i, &d);
    q.model = (i & 1) ? "cascade-only" : "support-bot";
    q.model_len = strlen(q.model);
  }
  assert_int_equal(g_allocs, before);
  /* the counter works: a parse allocates */
  sy_route_table *t;
  char err[64];
  assert_int_equal(sy_route_table_parse("[]", 2, NULL, &t, err, sizeof err), 0);
  assert_true(g_allocs > before);
  sy_route_table_unref(t);
#else
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_passthrough),   cmocka_unit_test(test_sticky_sources),
      cmocka_unit_test(test_rules_before_split), cmocka_unit_test(test_cascade_plans),
      cmocka_unit_test(test_fallback_chain), cmocka_unit_test(test_shadow_rate),
      cmocka_unit_test(test_no_allocation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
