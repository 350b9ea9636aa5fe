#include "router/rules.h"

#include <stdlib.h>

uint64_t sy_rules_estimate_tokens(uint64_t prompt_bytes) {
  return prompt_bytes / 4 + (prompt_bytes % 4 != 0);
}

static int in_set(const sy_rstr *set, size_t n, const char *p, size_t len) {
  if (!p) return 0;
  for (size_t i = 0; i < n; i++)
    if (sy_rstr_eq(&set[i], p, len)) return 1;
  return 0;
}

int sy_rule_matches(const sy_rule *r, const sy_rule_features *f) {
  if (r->conds & SY_RULE_PROMPT_BYTES) {
    if (f->prompt_bytes < r->min_bytes || f->prompt_bytes > r->max_bytes) return 0;
  }
  if (r->conds & SY_RULE_PROMPT_TOKENS) {
    uint64_t t = f->prompt_tokens ? f->prompt_tokens : sy_rules_estimate_tokens(f->prompt_bytes);
    if (t < r->min_tokens || t > r->max_tokens) return 0;
  }
  if ((r->conds & SY_RULE_CLIENT_KEY) &&
      !in_set(r->client_keys, r->n_client_keys, f->client_key, f->client_key_len))
    return 0;
  if ((r->conds & SY_RULE_TENANT) && !in_set(r->tenants, r->n_tenants, f->tenant, f->tenant_len))
    return 0;
  if ((r->conds & SY_RULE_TOOLS) && (!!f->has_tools) != r->tools) return 0;
  return 1;
}

int sy_rules_match(const sy_rule *rules, size_t n, const sy_rule_features *f) {
  for (size_t i = 0; i < n; i++)
    if (sy_rule_matches(&rules[i], f)) return (int)i;
  return -1;
}

static void free_set(sy_rstr *set, size_t n) {
  if (!set) return;
  for (size_t i = 0; i < n; i++) free(set[i].s);
  free(set);
}

void sy_rule_free(sy_rule *r) {
  free_set(r->client_keys, r->n_client_keys);
  free_set(r->tenants, r->n_tenants);
  r->client_keys = r->tenants = NULL;
  r->n_client_keys = r->n_tenants = 0;
}
