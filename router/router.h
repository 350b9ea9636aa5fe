#ifndef SY_ROUTER_ROUTER_H
#define SY_ROUTER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

/* The one call the gateway makes per request: which route, which arm, and
 * what else (cascade, shadow, fallbacks). Pure, allocation-free, lock-free;
 * safe from any thread on a table the caller holds a reference to.
 *
 * Order of decisions for a known route:
 *   1. rules, first match wins           -> pick RULE (no cascade)
 *   2. cascade-only route (weights all 0) -> pick CASCADE, arm = cascade.first
 *   3. split: first present sticky key in the route's order -> pick STICKY,
 *      bucket = the key's bucket (router/split.h); no key -> pick RANDOM,
 *      bucket drawn from rand. The cascade plan applies iff the split chose
 *      the cascade's first arm.
 *   then: shadow sampled at rate_bp (skipped if the shadow arm is the chosen
 *   arm), fallback chain = the route's fallback arms minus the chosen one.
 * An unknown model is PASSTHROUGH: the gateway sends the request unchanged
 * to its default upstream.
 *
 * One rand feeds two independent draws (random bucket, shadow sample) via
 * splitmix64, so a caller may pass any 64-bit random number per request.
 *
 * What the gateway is expected to do with a decision (the router does no I/O):
 * - rewrite "model" to arm->model and send to arm->upstream; answer with
 *   x-switchyard-route = route->name, x-switchyard-arm = arm->name.
 * - cascade: ask plan.first WITHOUT streaming and with "logprobs": true;
 *   sy_confidence_from_chat_json + sy_conf_acc_value(plan.method) +
 *   sy_cascade_accept(conf, plan.threshold). Accepted: answer with it (as an
 *   SSE replay if the client asked to stream; logprobs removed unless the
 *   client asked for them). Escalated or errored: ask plan.escalate with the
 *   client's original request, streaming live if asked. Capture both.
 * - failures: router/retry.h walks tries and d.fallback[]; router/breaker.h
 *   (one breaker per upstream per worker) says which arms to skip.
 * - shadow_arm >= 0: after the primary has started, take a slot from a
 *   process-wide sy_shadow_cap and mirror the request there (skip if none). */

typedef struct sy_route_request {
  const char *model;        /* the request's "model" (the route name); not NUL-terminated */
  size_t model_len;
  const char *header_user;  /* x-switchyard-user header value; NULL = absent */
  size_t header_user_len;
  const char *user;         /* the body's "user" field; NULL = absent */
  size_t user_len;
  const char *client_key;   /* name of the authenticated client key; NULL = none */
  size_t client_key_len;
  const char *tenant;       /* tenant label for rules; NULL = none */
  size_t tenant_len;
  uint64_t prompt_bytes;    /* for rules */
  uint64_t prompt_tokens;   /* 0 = estimate from prompt_bytes */
  int has_tools;
} sy_route_request;

typedef enum {
  SY_PICK_PASSTHROUGH = 0, /* no route by that name */
  SY_PICK_STICKY,          /* consistent hash of a sticky key */
  SY_PICK_RANDOM,          /* no sticky key: weighted random */
  SY_PICK_RULE,            /* a feature rule matched */
  SY_PICK_CASCADE          /* cascade-only route: the cascade's first arm */
} sy_route_pick;

typedef struct sy_route_decision {
  const sy_route *route;      /* NULL on pass-through; points into the table */
  const sy_route_arm *arm;    /* chosen arm; NULL on pass-through */
  int arm_index;              /* -1 on pass-through */
  sy_route_pick pick;
  int key_source;             /* sy_sticky_source used (STICKY only), else -1 */
  int bucket;                 /* 0..9999 for STICKY and RANDOM, else -1 */
  int rule;                   /* index of the matched rule (RULE only), else -1 */
  int cascade;                /* 1: run the plan below instead of a plain call */
  sy_cascade plan;            /* valid when cascade: first == arm_index */
  int shadow_arm;             /* arm to mirror to, -1 = none */
  uint8_t fallback[SY_ROUTE_MAX_ARMS]; /* arm indexes to try, in order, after arm_index */
  size_t n_fallback;
} sy_route_decision;

/* Fills *out (always fully written). Returns 0, or SY_EINVAL if the table
 * cannot serve the request (a route whose weights are neither a full split
 * nor a cascade; a parsed table never has one). Everything *out points to
 * lives as long as the caller's table reference. */
int sy_router_decide(const sy_route_table *t, const sy_route_request *req, uint64_t rand,
                     sy_route_decision *out);

/* "passthrough", "sticky", "random", "rule", "cascade" (for captures and logs). */
const char *sy_route_pick_name(sy_route_pick p);

#endif
