#ifndef SY_ROUTER_ROUTE_H
#define SY_ROUTER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "router/confidence.h"
#include "router/retry.h"
#include "router/rstr.h"
#include "router/rules.h"
#include "router/split.h"

/* Routes and the route table.
 *
 * A route is what apps name as their `model` (an alias such as
 * "support-bot", or a real model name). Its arms each name an upstream, the
 * model to ask it for, and a weight in basis points. A route table is an
 * immutable snapshot: built once by sy_route_table_parse, then only read,
 * from any number of threads, without locks. Its lifetime is a reference
 * count: whoever holds a pointer to a table (or to anything inside it) holds
 * a reference. See router/slot.h for publishing a new table to workers.
 *
 * JSON shape of one route (the "routes" array of the config file holds these;
 * unknown keys are rejected, so a typo never silently keeps a default):
 * {
 *   "name": "support-bot",            required; 1..128 printable non-space ASCII; unique
 *   "salt": "support-bot",            hash salt; default = name. Change it to reshuffle users.
 *   "arms": [ {                       1..16 (required)
 *       "name": "base",               required; [A-Za-z0-9_.:-], 1..128; unique in the route
 *       "upstream": "openai",         required; must be a known upstream
 *       "model": "gpt-4o-mini",       model asked of the upstream; default = route name
 *       "weight_bp": 9000             0..10000; default 0, except a lone arm of a
 *   } ],                              non-cascade route, which defaults to 10000
 *                                     Weights must sum to 10000; a route with a
 *                                     cascade may instead have them all 0 (cascade-only).
 *   "sticky": ["header","user","client_key"],  key order (this is the default);
 *                                     [] = always random
 *   "capture": true,                  record this route's traffic
 *   "cascade": { "first": "ft", "escalate": "base", "threshold": 0.8,
 *                "method": "geomean" },        geomean|min; threshold 0..1
 *   "rules": [ { "arm": "base",       1..SY_RULES_MAX; first match wins
 *       "min_prompt_bytes": 0, "max_prompt_bytes": 4096,     inclusive ranges
 *       "min_prompt_tokens": 1000, "max_prompt_tokens": 1e9,
 *       "client_keys": ["app1"], "tenants": ["acme"], "tools": true } ],
 *                                     each rule needs >= 1 condition
 *   "retry": { "attempts": 2, "per_try_timeout_ms": 60000, "deadline_ms": 120000,
 *              "backoff_base_ms": 100, "backoff_max_ms": 2000, "jitter": true },
 *   "fallback": ["base"],             arms tried in order after the chosen one fails
 *   "shadow": { "arm": "ft", "rate_bp": 1000 }   mirror 10% of requests to "ft"
 * }
 *
 * Semantics of a cascade together with weights: with all weights 0 every
 * request runs the cascade; with weights summing to 10000 the split picks
 * the arm and the cascade runs only when it picks the cascade's first arm
 * (so a cascade can be ramped in like any candidate). A matching rule pins
 * its arm and skips the cascade. */

#define SY_ROUTE_MAX_ROUTES 4096
#define SY_ROUTE_MAX_ARMS 16
#define SY_ROUTE_MAX_NAME 128             /* route, salt, arm, model, upstream, set entries */
#define SY_ROUTE_MAX_JSON_BYTES (4u << 20) /* a whole routes array */
#define SY_ROUTE_MAX_JSON_ONE (256u << 10) /* one serialised route (sy_buf cap) */

typedef struct sy_route_arm {
  sy_rstr name;
  sy_rstr upstream;
  sy_rstr model;
  uint32_t weight_bp;
} sy_route_arm;

typedef struct sy_route {
  sy_rstr name;
  sy_rstr salt;
  uint64_t seed;                 /* sy_split_seed(salt), precomputed */
  sy_route_arm arms[SY_ROUTE_MAX_ARMS];
  uint32_t weights[SY_ROUTE_MAX_ARMS]; /* arms[i].weight_bp, packed for sy_split_arm */
  size_t n_arms;
  uint32_t weight_sum;           /* 10000, or 0 for a cascade-only route */
  sy_sticky_source sticky[SY_STICKY_MAX_SOURCES];
  size_t n_sticky;
  int capture;
  int has_cascade;
  sy_cascade cascade;
  sy_rule *rules;
  size_t n_rules;
  sy_retry_policy retry;
  uint8_t fallback[SY_ROUTE_MAX_ARMS]; /* arm indexes, in order, no duplicates */
  size_t n_fallback;
  int has_shadow;
  int shadow_arm;
  uint32_t shadow_rate_bp;
} sy_route;

typedef struct sy_route_table sy_route_table; /* opaque */

/* Tells the parser whether an upstream name exists (the gateway passes its
 * config's upstream list). Returns nonzero if known. */
typedef int (*sy_route_upstream_known_fn)(void *ctx, const char *name);

typedef struct sy_route_parse_opts {
  uint64_t version;                     /* stored in the table, reported back */
  sy_route_upstream_known_fn upstream_known; /* NULL: accept any upstream name */
  void *ctx;
} sy_route_parse_opts;

/* Builds a table from the JSON text of a routes ARRAY (may be empty).
 * opts may be NULL (version 0, any upstream). On success *out holds a table
 * with one reference, owned by the caller (sy_route_table_unref it). On
 * failure returns SY_ECONFIG (or SY_ENOMEM, SY_ETOOBIG for text over
 * SY_ROUTE_MAX_JSON_BYTES), *out is NULL and err holds one message naming
 * the field, e.g. "routes[0].arms[1].weight_bp: must be 0..10000". */
int sy_route_table_parse(const char *json, size_t len, const sy_route_parse_opts *opts,
                         sy_route_table **out, char *err, size_t errlen);

/* Reference counting (atomic; any thread). ref returns its argument. The
 * last unref frees the table and everything in it. unref(NULL) is a no-op. */
sy_route_table *sy_route_table_ref(sy_route_table *t);
void sy_route_table_unref(sy_route_table *t);
/* Current count, for tests and debugging only. */
unsigned sy_route_table_refs(const sy_route_table *t);

uint64_t sy_route_table_version(const sy_route_table *t);
size_t sy_route_table_count(const sy_route_table *t);
/* Routes sorted by name (bytewise), 0 <= i < count. */
const sy_route *sy_route_table_at(const sy_route_table *t, size_t i);
/* Exact, case-sensitive lookup by name (hash index). NULL if absent. */
const sy_route *sy_route_table_find(const sy_route_table *t, const char *name, size_t len);
/* Index of an arm by name in a route, or -1. */
int sy_route_arm_index(const sy_route *r, const char *name, size_t len);

/* Appends the canonical JSON of one route (every field, defaults spelled
 * out) to b. Parsing the output gives an equal route. 0, SY_ETOOBIG or
 * SY_ENOMEM (b may then hold a partial object: reset it). */
int sy_route_to_json(const sy_route *r, sy_buf *b);
/* Appends the whole table as a JSON array, routes in name order. */
int sy_route_table_to_json(const sy_route_table *t, sy_buf *b);

/* ---- internal: shared between route.c and route_json.c -------------------- */
/* Takes ownership of `routes` (n entries, each filled in) and builds the
 * sorted table with its index; rejects duplicate names with a message.
 * Frees the routes on failure. */
int sy__route_table_build(sy_route *routes, size_t n, uint64_t version, sy_route_table **out,
                          char *err, size_t errlen);
/* Frees what one route owns (not the struct). */
void sy__route_free(sy_route *r);

#endif
