/* Feature rules: decision tables (first match wins, inclusive ranges,
 * token estimate, sets, tools, AND of conditions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "router/rules.h"

static sy_rstr k_keys[] = {{"app1", 4}, {"batch-jobs", 10}};
static sy_rstr k_tenants[] = {{"acme", 4}};

static void test_estimate(void **state) {
  (void)state;
  assert_int_equal(sy_rules_estimate_tokens(0), 0);
  assert_int_equal(sy_rules_estimate_tokens(1), 1);
  assert_int_equal(sy_rules_estimate_tokens(4), 1);
  assert_int_equal(sy_rules_estimate_tokens(5), 2);
  assert_int_equal(sy_rules_estimate_tokens(4000), 1000);
}

static void test_decision_table(void **state) {
  (void)state;
  /* rule 0: tools AND key in {app1, batch-jobs}        -> arm 3
   * rule 1: >= 8000 tokens (estimated or given)        -> arm 2
   * rule 2: tenant acme, prompt 0..1024 bytes          -> arm 1
   * rule 3: no tools                                   -> arm 0 */
  sy_rule rules[4];
  memset(rules, 0, sizeof rules);
  rules[0] = (sy_rule){.conds = SY_RULE_TOOLS | SY_RULE_CLIENT_KEY, .tools = 1,
                       .client_keys = k_keys, .n_client_keys = 2, .arm = 3};
  rules[1] = (sy_rule){.conds = SY_RULE_PROMPT_TOKENS, .min_tokens = 8000, .max_tokens = UINT64_MAX,
                       .arm = 2};
  rules[2] = (sy_rule){.conds = SY_RULE_TENANT | SY_RULE_PROMPT_BYTES, .tenants = k_tenants,
                       .n_tenants = 1, .min_bytes = 0, .max_bytes = 1024, .arm = 1};
  rules[3] = (sy_rule){.conds = SY_RULE_TOOLS, .tools = 0, .arm = 0};

  static const struct {
    uint64_t bytes, tokens;
    const char *key, *tenant;
    int tools;
    int want_rule;
  } t[] = {
      {100, 0, "app1", NULL, 1, 0},            /* rule 0 */
      {100, 0, "batch-jobs", NULL, 1, 0},      /* rule 0, other set member */
      {100, 0, "app2", NULL, 1, -1},           /* key not in set, tools on: nothing */
      {100, 0, NULL, NULL, 1, -1},             /* no key at all */
      {100, 0, "app", NULL, 1, -1},            /* prefix of a member is not a member */
      {32000, 0, "app1", NULL, 1, 0},          /* first match wins over rule 1 */
      {32000, 0, NULL, NULL, 1, 1},            /* 8000 estimated tokens: rule 1 */
      {31996, 0, NULL, NULL, 1, -1},           /* 7999 estimated */
      {31997, 0, NULL, NULL, 1, 1},            /* 8000 after rounding up */
      {10, 8000, NULL, NULL, 1, 1},            /* given tokens, exactly at min */
      {99999, 7999, NULL, NULL, 1, -1},        /* given tokens win over the estimate */
      {1024, 0, NULL, "acme", 1, 2},           /* at max bytes: inclusive */
      {1025, 0, NULL, "acme", 1, -1},          /* past it */
      {0, 0, NULL, "acme", 1, 2},              /* at min bytes */
      {500, 0, NULL, "acmex", 1, -1},          /* other tenant */
      {500, 0, NULL, "acme", 0, 2},            /* rule 2 before rule 3 */
      {500, 0, NULL, NULL, 0, 3},              /* no tools */
      {500, 0, "app1", NULL, 0, 3},            /* key matches rule 0 but tools do not */
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    sy_rule_features f = {t[i].bytes, t[i].tokens, t[i].key, t[i].key ? strlen(t[i].key) : 0,
                          t[i].tenant, t[i].tenant ? strlen(t[i].tenant) : 0, t[i].tools};
    int got = sy_rules_match(rules, 4, &f);
    if (got != t[i].want_rule) fail_msg("case %zu: rule %d, want %d", i, got, t[i].want_rule);
  }
  sy_rule_features none = {0, 0, NULL, 0, NULL, 0, 0};
  assert_int_equal(sy_rules_match(rules, 0, &none), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_estimate),
      cmocka_unit_test(test_decision_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
