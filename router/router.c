#include "router/router.h"

#include "common/err.h"
#include "router/shadow.h"

/* Distinct odd constants so the two draws from one rand are independent. */
#define DRAW_SPLIT 0x243f6a8885a308d3ull
#define DRAW_SHADOW 0x13198a2e03707345ull

int sy_router_decide(const sy_route_table *t, const sy_route_request *req, uint64_t rand,
                     sy_route_decision *out) {
  out->route = NULL;
  out->arm = NULL;
  out->arm_index = -1;
  out->pick = SY_PICK_PASSTHROUGH;
  out->key_source = -1;
  out->bucket = -1;
  out->rule = -1;
  out->cascade = 0;
  out->shadow_arm = -1;
  out->n_fallback = 0;

  const sy_route *r = t ? sy_route_table_find(t, req->model, req->model_len) : NULL;
  if (!r) return 0;
  out->route = r;

  int arm = -1;
  if (r->n_rules) {
    sy_rule_features f = {req->prompt_bytes, req->prompt_tokens, req->client_key,
                          req->client_key_len, req->tenant, req->tenant_len, req->has_tools};
    int k = sy_rules_match(r->rules, r->n_rules, &f);
    if (k >= 0) {
      arm = r->rules[k].arm;
      out->rule = k;
      out->pick = SY_PICK_RULE;
    }
  }
  if (arm < 0 && r->has_cascade && r->weight_sum == 0) {
    arm = r->cascade.first;
    out->pick = SY_PICK_CASCADE;
  }
  if (arm < 0) {
    sy_sticky_inputs in = {req->header_user, req->header_user_len, req->user,
                           req->user_len,    req->client_key,      req->client_key_len};
    const char *key;
    size_t klen;
    int src = sy_split_pick_key(r->sticky, r->n_sticky, &in, &key, &klen);
    uint32_t bucket;
    if (src >= 0) {
      bucket = sy_split_bucket(r->seed, key, klen);
      out->pick = SY_PICK_STICKY;
      out->key_source = src;
    } else {
      bucket = sy_split_random_bucket(rand ^ DRAW_SPLIT);
      out->pick = SY_PICK_RANDOM;
    }
    out->bucket = (int)bucket;
    arm = sy_split_arm(r->weights, r->n_arms, bucket);
    if (arm < 0) {
      out->pick = SY_PICK_PASSTHROUGH;
      out->route = NULL;
      return SY_EINVAL;
    }
  }
  out->arm_index = arm;
  out->arm = &r->arms[arm];
  if (r->has_cascade && out->pick != SY_PICK_RULE && arm == r->cascade.first) {
    out->cascade = 1;
    out->plan = r->cascade;
  }
  if (r->has_shadow && r->shadow_arm != arm && sy_shadow_sample(r->shadow_rate_bp, rand ^ DRAW_SHADOW))
    out->shadow_arm = r->shadow_arm;
  for (size_t i = 0; i < r->n_fallback; i++)
    if (r->fallback[i] != arm) out->fallback[out->n_fallback++] = r->fallback[i];
  return 0;
}

const char *sy_route_pick_name(sy_route_pick p) {
  switch (p) {
  case SY_PICK_PASSTHROUGH: return "passthrough";
  case SY_PICK_STICKY: return "sticky";
  case SY_PICK_RANDOM: return "random";
  case SY_PICK_RULE: return "rule";
  case SY_PICK_CASCADE: return "cascade";
  }
  return "?";
}
