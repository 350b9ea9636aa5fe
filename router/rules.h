#ifndef SY_ROUTER_RULES_H
#define SY_ROUTER_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "router/rstr.h"

/* Feature rules: pick an arm from request features before any upstream call.
 * A route's rules are tried in order; the first rule whose conditions ALL
 * hold wins; no match means the normal split decides. Every range is
 * inclusive at both ends. Evaluation is allocation-free. */

#define SY_RULES_MAX 32     /* rules per route */
#define SY_RULE_SET_MAX 64  /* entries in one client_keys / tenants set */

/* Bits of sy_rule.conds: which conditions the rule has. */
enum {
  SY_RULE_PROMPT_BYTES = 1u << 0,
  SY_RULE_PROMPT_TOKENS = 1u << 1,
  SY_RULE_CLIENT_KEY = 1u << 2,
  SY_RULE_TENANT = 1u << 3,
  SY_RULE_TOOLS = 1u << 4,
};

typedef struct sy_rule_features {
  uint64_t prompt_bytes;  /* bytes of the messages' text (the gateway's measure) */
  uint64_t prompt_tokens; /* 0 = unknown: estimated as sy_rules_estimate_tokens(prompt_bytes) */
  const char *client_key; /* name of the authenticated client key; NULL = none */
  size_t client_key_len;
  const char *tenant;     /* tenant label; NULL = none */
  size_t tenant_len;
  int has_tools;          /* the request carries a non-empty "tools" array */
} sy_rule_features;

typedef struct sy_rule {
  unsigned conds;         /* SY_RULE_* bits; never 0 in a parsed table */
  uint64_t min_bytes, max_bytes;   /* SY_RULE_PROMPT_BYTES */
  uint64_t min_tokens, max_tokens; /* SY_RULE_PROMPT_TOKENS */
  sy_rstr *client_keys;   /* SY_RULE_CLIENT_KEY: the key name is one of these */
  size_t n_client_keys;
  sy_rstr *tenants;       /* SY_RULE_TENANT: the tenant is one of these */
  size_t n_tenants;
  int tools;              /* SY_RULE_TOOLS: has_tools must equal this (0/1) */
  int arm;                /* arm index picked on a match */
} sy_rule;

/* ~4 bytes per token: OpenAI's rule of thumb for English text. Rounds up. */
uint64_t sy_rules_estimate_tokens(uint64_t prompt_bytes);
/* 1 if every condition of the rule holds. */
int sy_rule_matches(const sy_rule *r, const sy_rule_features *f);
/* Index of the first matching rule, or -1. */
int sy_rules_match(const sy_rule *rules, size_t n, const sy_rule_features *f);
/* Frees the sets a parsed rule owns (not the rule itself). */
void sy_rule_free(sy_rule *r);

#endif
