/* Route table: parsing (full and defaults), every rejected case by its
 * message, serialisation round trip, lookup, refcount, publication slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "router/route.h"
#include "router/router.h"
#include "router/slot.h"

static int known_upstream(void *ctx, const char *name) {
  (void)ctx;
  return !strcmp(name, "openai") || !strcmp(name, "vllm");
}

static const sy_route_parse_opts k_opts = {7, known_upstream, NULL};

static const char *k_full =
    "[{\"name\":\"support-bot\",\"salt\":\"sb-2024\","
    "\"arms\":[{\"name\":\"base\",\"upstream\":\"openai\",\"model\":\"gpt-4o-mini\",\"weight_bp\":9000},"
    "{\"name\":\"ft\",\"upstream\":\"vllm\",\"model\":\"ft:support-v3\",\"weight_bp\":1000},"
    "{\"name\":\"big\",\"upstream\":\"openai\",\"model\":\"gpt-4o\",\"weight_bp\":0}],"
    "\"sticky\":[\"user\",\"client_key\"],\"capture\":false,"
    "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0.8,\"method\":\"min\"},"
    "\"rules\":[{\"arm\":\"big\",\"min_prompt_tokens\":8000},"
    "{\"arm\":\"base\",\"client_keys\":[\"app1\",\"app2\"],\"tools\":true},"
    "{\"arm\":\"ft\",\"tenants\":[\"acme\"],\"min_prompt_bytes\":10,\"max_prompt_bytes\":4096}],"
    "\"retry\":{\"attempts\":3,\"per_try_timeout_ms\":5000,\"deadline_ms\":20000,"
    "\"backoff_base_ms\":50,\"backoff_max_ms\":800,\"jitter\":false},"
    "\"fallback\":[\"base\",\"big\"],"
    "\"shadow\":{\"arm\":\"big\",\"rate_bp\":250}},"
    "{\"name\":\"gpt-4o\",\"arms\":[{\"name\":\"only\",\"upstream\":\"openai\"}]}]";

static void test_parse_full(void **state) {
  (void)state;
  sy_route_table *t;
  char err[256];
  assert_int_equal(sy_route_table_parse(k_full, strlen(k_full), &k_opts, &t, err, sizeof err), 0);
  assert_int_equal(sy_route_table_version(t), 7);
  assert_int_equal(sy_route_table_count(t), 2);
  /* sorted by name: "gpt-4o" < "support-bot" */
  assert_string_equal(sy_route_table_at(t, 0)->name.s, "gpt-4o");
  assert_null(sy_route_table_at(t, 2));
  const sy_route *r = sy_route_table_find(t, "support-bot", 11);
  assert_non_null(r);
  assert_string_equal(r->salt.s, "sb-2024");
  assert_true(r->seed == sy_split_seed("sb-2024", 7));
  assert_int_equal(r->n_arms, 3);
  assert_string_equal(r->arms[1].name.s, "ft");
  assert_string_equal(r->arms[1].upstream.s, "vllm");
  assert_string_equal(r->arms[1].model.s, "ft:support-v3");
  assert_int_equal(r->arms[1].weight_bp, 1000);
  assert_int_equal(r->weights[0], 9000);
  assert_int_equal(r->weight_sum, 10000);
  assert_int_equal(r->n_sticky, 2);
  assert_int_equal(r->sticky[0], SY_STICKY_USER);
  assert_int_equal(r->sticky[1], SY_STICKY_CLIENT_KEY);
  assert_false(r->capture);
  assert_true(r->has_cascade);
  assert_int_equal(r->cascade.first, 1);
  assert_int_equal(r->cascade.escalate, 0);
  assert_true(r->cascade.threshold == 0.8);
  assert_int_equal(r->cascade.method, SY_CONF_MIN);
  assert_int_equal(r->n_rules, 3);
  assert_int_equal(r->rules[0].conds, SY_RULE_PROMPT_TOKENS);
  assert_int_equal(r->rules[0].min_tokens, 8000);
  assert_int_equal(r->rules[0].arm, 2);
  assert_int_equal(r->rules[1].conds, SY_RULE_CLIENT_KEY | SY_RULE_TOOLS);
  assert_int_equal(r->rules[1].n_client_keys, 2);
  assert_string_equal(r->rules[1].client_keys[1].s, "app2");
  assert_int_equal(r->rules[2].conds, SY_RULE_TENANT | SY_RULE_PROMPT_BYTES);
  assert_int_equal(r->rules[2].max_bytes, 4096);
  assert_int_equal(r->retry.attempts, 3);
  assert_int_equal(r->retry.per_try_timeout_ms, 5000);
  assert_int_equal(r->retry.deadline_ms, 20000);
  assert_int_equal(r->retry.backoff_base_ms, 50);
  assert_int_equal(r->retry.backoff_max_ms, 800);
  assert_false(r->retry.jitter);
  assert_int_equal(r->n_fallback, 2);
  assert_int_equal(r->fallback[0], 0);
  assert_int_equal(r->fallback[1], 2);
  assert_true(r->has_shadow);
  assert_int_equal(r->shadow_arm, 2);
  assert_int_equal(r->shadow_rate_bp, 250);
  assert_int_equal(sy_route_arm_index(r, "big", 3), 2);
  assert_int_equal(sy_route_arm_index(r, "bi", 2), -1);

  /* defaults */
  r = sy_route_table_find(t, "gpt-4o", 6);
  assert_non_null(r);
  assert_string_equal(r->salt.s, "gpt-4o");
  assert_string_equal(r->arms[0].model.s, "gpt-4o"); /* model defaults to the route name */
  assert_int_equal(r->arms[0].weight_bp, 10000);     /* lone arm */
  assert_int_equal(r->n_sticky, 3);
  assert_int_equal(r->sticky[0], SY_STICKY_HEADER);
  assert_int_equal(r->sticky[1], SY_STICKY_USER);
  assert_int_equal(r->sticky[2], SY_STICKY_CLIENT_KEY);
  assert_true(r->capture);
  assert_false(r->has_cascade);
  assert_false(r->has_shadow);
  assert_int_equal(r->shadow_arm, -1);
  assert_int_equal(r->n_rules, 0);
  assert_int_equal(r->n_fallback, 0);
  sy_retry_policy def;
  sy_retry_policy_default(&def);
  assert_memory_equal(&r->retry, &def, sizeof def);
  assert_null(sy_route_table_find(t, "gpt-4", 5));
  assert_null(sy_route_table_find(t, "gpt-4o ", 7));
  assert_null(sy_route_table_find(t, NULL, 0));
  sy_route_table_unref(t);
}

static void test_round_trip(void **state) {
  (void)state;
  sy_route_table *t1, *t2;
  char err[256];
  assert_int_equal(sy_route_table_parse(k_full, strlen(k_full), &k_opts, &t1, err, sizeof err), 0);
  sy_buf a, b;
  sy_buf_init(&a, SY_ROUTE_MAX_JSON_BYTES);
  sy_buf_init(&b, SY_ROUTE_MAX_JSON_BYTES);
  assert_int_equal(sy_route_table_to_json(t1, &a), 0);
  assert_int_equal(sy_route_table_parse(a.data, a.len, &k_opts, &t2, err, sizeof err), 0);
  assert_int_equal(sy_route_table_to_json(t2, &b), 0);
  assert_string_equal(a.data, b.data);
  /* one route, spot-check the canonical form */
  sy_buf_reset(&a);
  assert_int_equal(sy_route_to_json(sy_route_table_find(t1, "gpt-4o", 6), &a), 0);
  assert_string_equal(a.data,
                      "{\"name\":\"gpt-4o\",\"salt\":\"gpt-4o\",\"arms\":[{\"name\":\"only\","
                      "\"upstream\":\"openai\",\"model\":\"gpt-4o\",\"weight_bp\":10000}],"
                      "\"sticky\":[\"header\",\"user\",\"client_key\"],\"capture\":true,"
                      "\"retry\":{\"attempts\":2,\"per_try_timeout_ms\":60000,\"deadline_ms\":120000,"
                      "\"backoff_base_ms\":100,\"backoff_max_ms\":2000,\"jitter\":true},\"fallback\":[]}");
  sy_buf_reset(&a);
  assert_int_equal(sy_route_to_json(sy_route_table_find(t1, "support-bot", 11), &a), 0);
  assert_non_null(strstr(a.data, "\"threshold\":0.8,\"method\":\"min\""));
  assert_non_null(strstr(a.data, "{\"arm\":\"big\",\"min_prompt_tokens\":8000,"
                                 "\"max_prompt_tokens\":1000000000000000}"));
  /* a cap too small fails cleanly */
  sy_buf small;
  sy_buf_init(&small, 16);
  assert_int_equal(sy_route_to_json(sy_route_table_find(t1, "gpt-4o", 6), &small), SY_ETOOBIG);
  sy_buf_free(&small);
  sy_buf_free(&a);
  sy_buf_free(&b);
  sy_route_table_unref(t1);
  sy_route_table_unref(t2);
}

static void test_empty_and_cascade_only(void **state) {
  (void)state;
  sy_route_table *t;
  char err[256];
  assert_int_equal(sy_route_table_parse("[]", 2, NULL, &t, err, sizeof err), 0);
  assert_int_equal(sy_route_table_count(t), 0);
  assert_null(sy_route_table_find(t, "x", 1));
  sy_route_table_unref(t);
  const char *j = "[{\"name\":\"c\",\"arms\":[{\"name\":\"ft\",\"upstream\":\"vllm\"},"
                  "{\"name\":\"base\",\"upstream\":\"openai\"}],"
                  "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0}}]";
  assert_int_equal(sy_route_table_parse(j, strlen(j), &k_opts, &t, err, sizeof err), 0);
  const sy_route *r = sy_route_table_find(t, "c", 1);
  assert_int_equal(r->weight_sum, 0);
  assert_int_equal(r->cascade.method, SY_CONF_GEOMEAN); /* default */
  sy_route_table_unref(t);
}

typedef struct bad_case {
  const char *json;
  const char *msg;
} bad_case;

#define ARM(n, w) "{\"name\":\"" n "\",\"upstream\":\"openai\",\"weight_bp\":" #w "}"
#define TWO "[" ARM("a", 5000) "," ARM("b", 5000) "]"

static const bad_case k_bad[] = {
    {"[{\"name\":", "routes: not valid JSON"},
    {"{}", "routes: must be an array"},
    {"[1]", "routes[0]: must be an object"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"colour\":1}]", "routes[0].colour: unknown key"},
    {"[{\"name\":\"r\",\"name\":\"s\",\"arms\":" TWO "}]", "routes[0].name: duplicate key"},
    {"[{\"arms\":" TWO "}]", "routes[0].name: required"},
    {"[{\"name\":\"\",\"arms\":" TWO "}]", "routes[0].name: must be 1..128 characters"},
    {"[{\"name\":\"a b\",\"arms\":" TWO "}]", "routes[0].name: must be printable ASCII without spaces"},
    {"[{\"name\":7,\"arms\":" TWO "}]", "routes[0].name: must be a string"},
    {"[{\"name\":\"x\",\"arms\":" TWO "},{\"name\":\"y\",\"arms\":" TWO "},{\"name\":\"x\",\"arms\":" TWO "}]",
     "routes[2].name: duplicate route \"x\""},
    {"[{\"name\":\"r\",\"salt\":\"a\\u0001\",\"arms\":" TWO "}]",
     "routes[0].salt: must be without control characters"},
    {"[{\"name\":\"r\"}]", "routes[0].arms: required"},
    {"[{\"name\":\"r\",\"arms\":[]}]", "routes[0].arms: must have 1..16 entries"},
    {"[{\"name\":\"r\",\"arms\":{}}]", "routes[0].arms: must be an array"},
    {"[{\"name\":\"r\",\"arms\":[7]}]", "routes[0].arms[0]: must be an object"},
    {"[{\"name\":\"r\",\"arms\":[{\"upstream\":\"openai\"}]}]", "routes[0].arms[0].name: required"},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a/b\",\"upstream\":\"openai\"}]}]",
     "routes[0].arms[0].name: must be [A-Za-z0-9_.:-]"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 5000) "," ARM("a", 5000) "]}]",
     "routes[0].arms[1].name: duplicate arm \"a\""},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a\"}]}]", "routes[0].arms[0].upstream: required"},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"nope\"}]}]",
     "routes[0].arms[0].upstream: unknown upstream \"nope\""},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"open ai\"}]}]",
     "routes[0].arms[0].upstream: must be [A-Za-z0-9_.-]"},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"openai\",\"model\":\"\"}]}]",
     "routes[0].arms[0].model: must be 1..128 characters"},
    {"[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"openai\",\"wieght_bp\":1}]}]",
     "routes[0].arms[0].wieght_bp: unknown key"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 0) "," ARM("b", 10001) "]}]",
     "routes[0].arms[1].weight_bp: must be 0..10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 10500) "," ARM("b", -500) "]}]",
     "routes[0].arms[0].weight_bp: must be 0..10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 5000.5) "," ARM("b", 4999.5) "]}]",
     "routes[0].arms[0].weight_bp: must be 0..10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", "5000") "," ARM("b", 5000) "]}]",
     "routes[0].arms[0].weight_bp: must be 0..10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 5000) "," ARM("b", 4000) "]}]",
     "routes[0].arms: weights sum to 9000, must be 10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 0) "," ARM("b", 0) "]}]",
     "routes[0].arms: weights sum to 0, must be 10000"},
    {"[{\"name\":\"r\",\"arms\":[" ARM("a", 5000) "," ARM("b", 0) "],"
     "\"cascade\":{\"first\":\"a\",\"escalate\":\"b\",\"threshold\":0.5}}]",
     "routes[0].arms: weights sum to 5000, must be 10000 (or all 0 for a cascade-only route)"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"zz\",\"escalate\":\"b\",\"threshold\":0.5}}]",
     "routes[0].cascade.first: no arm named \"zz\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"escalate\":\"b\",\"threshold\":0.5}}]",
     "routes[0].cascade.first: required"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"a\",\"escalate\":\"a\",\"threshold\":0.5}}]",
     "routes[0].cascade.escalate: must differ from first"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"a\",\"escalate\":\"b\",\"threshold\":1.5}}]",
     "routes[0].cascade.threshold: must be a number in 0..1"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"a\",\"escalate\":\"b\",\"threshold\":-0.1}}]",
     "routes[0].cascade.threshold: must be a number in 0..1"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"a\",\"escalate\":\"b\"}}]",
     "routes[0].cascade.threshold: required"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":{\"first\":\"a\",\"escalate\":\"b\",\"threshold\":0.5,"
     "\"method\":\"mean\"}}]",
     "routes[0].cascade.method: must be \"geomean\" or \"min\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"cascade\":[]}]", "routes[0].cascade: must be an object"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"sticky\":[\"user\",\"cookie\"]}]",
     "routes[0].sticky[1]: must be \"header\", \"user\" or \"client_key\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"sticky\":[\"user\",\"user\"]}]",
     "routes[0].sticky[1]: duplicate \"user\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"sticky\":[\"user\",\"header\",\"client_key\",\"user\"]}]",
     "routes[0].sticky: must have 0..3 entries"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"capture\":1}]", "routes[0].capture: must be true or false"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\"}]}]",
     "routes[0].rules[0]: needs at least one condition"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"tools\":true}]}]", "routes[0].rules[0].arm: required"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"c\",\"tools\":true}]}]",
     "routes[0].rules[0].arm: no arm named \"c\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"min_prompt_bytes\":10,\"max_prompt_bytes\":9}]}]",
     "routes[0].rules[0].max_prompt_bytes: must be >= min_prompt_bytes"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"min_prompt_tokens\":-1}]}]",
     "routes[0].rules[0].min_prompt_tokens: must be 0..1000000000000000"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"client_keys\":[]}]}]",
     "routes[0].rules[0].client_keys: must have 1..64 entries"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"tenants\":[\"ok\",\"\"]}]}]",
     "routes[0].rules[0].tenants[1]: must be 1..128 characters"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"tools\":\"yes\"}]}]",
     "routes[0].rules[0].tools: must be true or false"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"rules\":[{\"arm\":\"a\",\"tools\":true,\"gpu\":1}]}]",
     "routes[0].rules[0].gpu: unknown key"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"attempts\":0}}]", "routes[0].retry.attempts: must be 1..10"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"attempts\":11}}]", "routes[0].retry.attempts: must be 1..10"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"per_try_timeout_ms\":0}}]",
     "routes[0].retry.per_try_timeout_ms: must be 1..3600000"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"deadline_ms\":3600001}}]",
     "routes[0].retry.deadline_ms: must be 0..3600000"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"backoff_base_ms\":500,\"backoff_max_ms\":100}}]",
     "routes[0].retry.backoff_max_ms: must be >= backoff_base_ms"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"jitter\":\"full\"}}]", "routes[0].retry.jitter: must be true or false"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"retry\":{\"tries\":2}}]", "routes[0].retry.tries: unknown key"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"fallback\":[\"x\"]}]", "routes[0].fallback[0]: no arm named \"x\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"fallback\":[\"a\",\"a\"]}]", "routes[0].fallback[1]: duplicate arm \"a\""},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"fallback\":\"a\"}]", "routes[0].fallback: must be an array"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"shadow\":{\"rate_bp\":100}}]", "routes[0].shadow.arm: required"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"shadow\":{\"arm\":\"b\"}}]", "routes[0].shadow.rate_bp: required"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"shadow\":{\"arm\":\"b\",\"rate_bp\":10001}}]",
     "routes[0].shadow.rate_bp: must be 0..10000"},
    {"[{\"name\":\"r\",\"arms\":" TWO ",\"shadow\":{\"arm\":\"q\",\"rate_bp\":1}}]",
     "routes[0].shadow.arm: no arm named \"q\""},
};

static void test_rejections(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
    sy_route_table *t = (sy_route_table *)&t; /* must be reset to NULL */
    char err[256] = "";
    int rc = sy_route_table_parse(k_bad[i].json, strlen(k_bad[i].json), &k_opts, &t, err, sizeof err);
    if (rc != SY_ECONFIG || strcmp(err, k_bad[i].msg) != 0)
      fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err, k_bad[i].msg);
    assert_null(t);
  }
}

static void test_limits(void **state) {
  (void)state;
  sy_route_table *t;
  char err[256];
  /* 17 arms */
  sy_buf b;
  sy_buf_init(&b, SY_ROUTE_MAX_JSON_BYTES + 64);
  sy_buf_appends(&b, "[{\"name\":\"r\",\"arms\":[");
  for (int i = 0; i < 17; i++)
    sy_buf_printf(&b, "%s{\"name\":\"a%d\",\"upstream\":\"openai\",\"weight_bp\":%d}", i ? "," : "", i,
                  i ? 0 : 10000);
  sy_buf_appends(&b, "]}]");
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), SY_ECONFIG);
  assert_string_equal(err, "routes[0].arms: must have 1..16 entries");
  /* name of 128 is fine, 129 is not */
  char name[130];
  memset(name, 'n', 129);
  name[128] = '\0';
  sy_buf_reset(&b);
  sy_buf_printf(&b, "[{\"name\":\"%s\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}]", name);
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), 0);
  sy_route_table_unref(t);
  name[128] = 'n';
  name[129] = '\0';
  sy_buf_reset(&b);
  sy_buf_printf(&b, "[{\"name\":\"%s\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}]", name);
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), SY_ECONFIG);
  assert_string_equal(err, "routes[0].name: must be 1..128 characters");
  /* 33 rules */
  sy_buf_reset(&b);
  sy_buf_appends(&b, "[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}],\"rules\":[");
  for (int i = 0; i < 33; i++) sy_buf_printf(&b, "%s{\"arm\":\"a\",\"tools\":true}", i ? "," : "");
  sy_buf_appends(&b, "]}]");
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), SY_ECONFIG);
  assert_string_equal(err, "routes[0].rules: must have 0..32 entries");
  /* 4096 routes are fine and all findable; 4097 are not */
  sy_buf_reset(&b);
  sy_buf_append(&b, "[", 1);
  for (int i = 0; i < SY_ROUTE_MAX_ROUTES; i++)
    sy_buf_printf(&b, "%s{\"name\":\"route-%d\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}", i ? "," : "", i);
  size_t mark = b.len;
  sy_buf_append(&b, "]", 1);
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), 0);
  assert_int_equal(sy_route_table_count(t), SY_ROUTE_MAX_ROUTES);
  for (int i = 0; i < SY_ROUTE_MAX_ROUTES; i++) {
    char n[32];
    int len = snprintf(n, sizeof n, "route-%d", i);
    const sy_route *r = sy_route_table_find(t, n, (size_t)len);
    assert_non_null(r);
    assert_memory_equal(r->name.s, n, (size_t)len + 1);
  }
  assert_null(sy_route_table_find(t, "route-4096", 10));
  sy_route_table_unref(t);
  b.len = mark;
  sy_buf_appends(&b, ",{\"name\":\"one-more\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}]");
  assert_int_equal(sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err), SY_ECONFIG);
  assert_string_equal(err, "routes: must have 0..4096 entries");
  /* JSON text over the byte limit is refused before parsing */
  assert_int_equal(sy_route_table_parse(b.data, SY_ROUTE_MAX_JSON_BYTES + 1, NULL, &t, err, sizeof err),
                   SY_ETOOBIG);
  assert_null(t);
  sy_buf_free(&b);
}

static void test_refcount(void **state) {
  (void)state;
  sy_route_table *t;
  char err[256];
  assert_int_equal(sy_route_table_parse(k_full, strlen(k_full), &k_opts, &t, err, sizeof err), 0);
  assert_int_equal(sy_route_table_refs(t), 1);
  assert_ptr_equal(sy_route_table_ref(t), t);
  assert_int_equal(sy_route_table_refs(t), 2);
  sy_route_table_unref(t);
  assert_int_equal(sy_route_table_refs(t), 1);
  sy_route_table_unref(NULL); /* no-op */
  sy_route_table_unref(t);    /* frees; ASan would flag a leak or a double free */
}

static void test_slot(void **state) {
  (void)state;
  sy_route_table *t1, *t2;
  char err[256];
  const char *j = "[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}]";
  sy_route_parse_opts o1 = {1, NULL, NULL}, o2 = {2, NULL, NULL};
  assert_int_equal(sy_route_table_parse(j, strlen(j), &o1, &t1, err, sizeof err), 0);
  assert_int_equal(sy_route_table_parse(j, strlen(j), &o2, &t2, err, sizeof err), 0);
  sy_route_slot s;
  assert_int_equal(sy_route_slot_init(&s, t1), 0);
  sy_route_view v = SY_ROUTE_VIEW_INIT;
  assert_ptr_equal(sy_route_view_get(&v, &s), t1);
  assert_int_equal(sy_route_table_refs(t1), 2); /* slot + view */
  assert_ptr_equal(sy_route_view_get(&v, &s), t1);
  assert_int_equal(sy_route_table_refs(t1), 2); /* unchanged generation: no new ref */
  sy_route_table *held = sy_route_slot_get(&s);
  assert_ptr_equal(held, t1);
  assert_int_equal(sy_route_table_refs(t1), 3);
  sy_route_slot_publish(&s, t2);
  assert_int_equal(sy_route_table_refs(t1), 2); /* view + held */
  assert_ptr_equal(sy_route_view_get(&v, &s), t2);
  assert_int_equal(sy_route_table_refs(t1), 1); /* only held */
  assert_int_equal(sy_route_table_version(sy_route_view_get(&v, &s)), 2);
  sy_route_table_unref(held);
  sy_route_view_release(&v);
  assert_int_equal(sy_route_table_refs(t2), 1);
  sy_route_slot_destroy(&s);
}

/* Readers decide through their views while the main thread publishes new
 * tables; under ASan a use-after-free or leak fails the test. */
typedef struct reader_arg {
  sy_route_slot *slot;
  atomic_int *stop;
  atomic_int *started; /* readers that have made a decision */
  uint64_t decisions;
  int bad;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  sy_route_view v = SY_ROUTE_VIEW_INIT;
  while (!atomic_load(a->stop)) {
    const sy_route_table *t = sy_route_view_get(&v, a->slot);
    sy_route_request q = {.model = "r", .model_len = 1, .user = "u", .user_len = 1};
    sy_route_decision d;
    if (sy_router_decide(t, &q, a->decisions, &d) || d.arm_index != 0 ||
        strcmp(d.arm->model.s, "r") != 0)
      a->bad++;
    if (a->decisions++ == 0) atomic_fetch_add(a->started, 1);
  }
  sy_route_view_release(&v);
  return NULL;
}

static void test_slot_concurrent(void **state) {
  (void)state;
  const char *j = "[{\"name\":\"r\",\"arms\":[{\"name\":\"a\",\"upstream\":\"u\"}]}]";
  char err[256];
  sy_route_table *t;
  assert_int_equal(sy_route_table_parse(j, strlen(j), NULL, &t, err, sizeof err), 0);
  sy_route_slot s;
  sy_route_slot_init(&s, t);
  atomic_int stop, started;
  atomic_init(&stop, 0);
  atomic_init(&started, 0);
  reader_arg args[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    args[i] = (reader_arg){&s, &stop, &started, 0, 0};
    pthread_create(&th[i], NULL, reader, &args[i]);
  }
  /* On a busy machine a reader may not run at all during 2000 publishes:
   * publish only once every reader is deciding (bounded wait). */
  time_t deadline = time(NULL) + 30;
  while (atomic_load(&started) < 3 && time(NULL) < deadline) sched_yield();
  for (uint64_t v = 1; v <= 2000; v++) {
    sy_route_parse_opts o = {v, NULL, NULL};
    assert_int_equal(sy_route_table_parse(j, strlen(j), &o, &t, err, sizeof err), 0);
    sy_route_slot_publish(&s, t);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].bad, 0);
    assert_true(args[i].decisions > 0);
  }
  sy_route_table *last = sy_route_slot_get(&s);
  assert_int_equal(sy_route_table_version(last), 2000);
  assert_int_equal(sy_route_table_refs(last), 2);
  sy_route_table_unref(last);
  sy_route_slot_destroy(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_full),  cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_empty_and_cascade_only), cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_limits),      cmocka_unit_test(test_refcount),
      cmocka_unit_test(test_slot),        cmocka_unit_test(test_slot_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
