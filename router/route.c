#include "router/route.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/err.h"

struct sy_route_table {
  atomic_uint refs;
  uint64_t version;
  sy_route *routes;  /* sorted by name */
  size_t n_routes;
  uint32_t *index;   /* open addressing: route index + 1, 0 = empty */
  size_t index_mask; /* capacity - 1, capacity a power of two >= 2n */
};

void sy__route_free(sy_route *r) {
  free(r->name.s);
  free(r->salt.s);
  for (size_t i = 0; i < r->n_arms; i++) {
    free(r->arms[i].name.s);
    free(r->arms[i].upstream.s);
    free(r->arms[i].model.s);
  }
  for (size_t i = 0; i < r->n_rules; i++) sy_rule_free(&r->rules[i]);
  free(r->rules);
  memset(r, 0, sizeof *r);
}

static void free_routes(sy_route *routes, size_t n) {
  for (size_t i = 0; i < n; i++) sy__route_free(&routes[i]);
  free(routes);
}

static int name_cmp(const sy_rstr *a, const sy_rstr *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  if (c) return c;
  return (a->len > b->len) - (a->len < b->len);
}

typedef struct sort_ent {
  sy_route *r;
  size_t orig;
} sort_ent;

static int sort_cmp(const void *pa, const void *pb) {
  const sort_ent *a = pa, *b = pb;
  int c = name_cmp(&a->r->name, &b->r->name);
  if (c) return c;
  return (a->orig > b->orig) - (a->orig < b->orig);
}

static uint64_t name_hash(const char *p, size_t n) {
  return XXH3_64bits(n ? p : "", n);
}

int sy__route_table_build(sy_route *routes, size_t n, uint64_t version, sy_route_table **out,
                          char *err, size_t errlen) {
  int rc = SY_ENOMEM;
  sort_ent *ents = NULL;
  sy_route *sorted = NULL;
  sy_route_table *t = NULL;
  *out = NULL;

  if (n > SY_ROUTE_MAX_ROUTES) {
    snprintf(err, errlen, "routes: %zu routes, at most %d allowed", n, SY_ROUTE_MAX_ROUTES);
    rc = SY_ECONFIG;
    goto fail;
  }
  if (n && !(ents = malloc(n * sizeof *ents))) goto fail;
  for (size_t i = 0; i < n; i++) ents[i] = (sort_ent){&routes[i], i};
  if (n) qsort(ents, n, sizeof *ents, sort_cmp);
  for (size_t i = 1; i < n; i++) {
    if (name_cmp(&ents[i - 1].r->name, &ents[i].r->name) == 0) {
      /* the sort keeps input order among equals: ents[i] is the later one */
      snprintf(err, errlen, "routes[%zu].name: duplicate route \"%s\"", ents[i].orig,
               ents[i].r->name.s);
      rc = SY_ECONFIG;
      goto fail;
    }
  }
  if (!(t = calloc(1, sizeof *t))) goto fail;
  if (n && !(sorted = malloc(n * sizeof *sorted))) goto fail;
  size_t cap = 8;
  while (cap < 2 * n) cap *= 2;
  if (!(t->index = calloc(cap, sizeof *t->index))) goto fail;
  for (size_t i = 0; i < n; i++) sorted[i] = *ents[i].r; /* moves ownership of the strings */
  t->index_mask = cap - 1;
  for (size_t i = 0; i < n; i++) {
    size_t h = (size_t)name_hash(sorted[i].name.s, sorted[i].name.len) & t->index_mask;
    while (t->index[h]) h = (h + 1) & t->index_mask;
    t->index[h] = (uint32_t)(i + 1);
  }
  free(ents);
  free(routes); /* the shells only: the contents now live in `sorted` */
  t->routes = sorted;
  t->n_routes = n;
  t->version = version;
  atomic_init(&t->refs, 1);
  *out = t;
  return 0;

fail:
  if (t) free(t->index);
  free(t);
  free(sorted);
  free(ents);
  free_routes(routes, n);
  if (rc == SY_ENOMEM) snprintf(err, errlen, "routes: out of memory");
  return rc;
}

sy_route_table *sy_route_table_ref(sy_route_table *t) {
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

void sy_route_table_unref(sy_route_table *t) {
  if (!t) return;
  /* acq_rel: the freeing thread must see every other holder's reads done */
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  free_routes(t->routes, t->n_routes);
  free(t->index);
  free(t);
}

unsigned sy_route_table_refs(const sy_route_table *t) {
  return atomic_load_explicit(&((sy_route_table *)t)->refs, memory_order_relaxed);
}

uint64_t sy_route_table_version(const sy_route_table *t) { return t->version; }
size_t sy_route_table_count(const sy_route_table *t) { return t->n_routes; }

const sy_route *sy_route_table_at(const sy_route_table *t, size_t i) {
  return i < t->n_routes ? &t->routes[i] : NULL;
}

const sy_route *sy_route_table_find(const sy_route_table *t, const char *name, size_t len) {
  if (!name) return NULL;
  size_t h = (size_t)name_hash(name, len) & t->index_mask;
  uint32_t e;
  while ((e = t->index[h]) != 0) {
    const sy_route *r = &t->routes[e - 1];
    if (sy_rstr_eq(&r->name, name, len)) return r;
    h = (h + 1) & t->index_mask;
  }
  return NULL;
}

int sy_route_arm_index(const sy_route *r, const char *name, size_t len) {
  for (size_t i = 0; i < r->n_arms; i++)
    if (sy_rstr_eq(&r->arms[i].name, name, len)) return (int)i;
  return -1;
}

/* ---- serialisation ---------------------------------------------------------- */

static int put_str(sy_buf *b, const sy_rstr *s) {
  int rc;
  if ((rc = sy_buf_append(b, "\"", 1)) || (rc = sy_buf_append_json_str(b, s->s, s->len)))
    return rc;
  return sy_buf_append(b, "\"", 1);
}

static int put_set(sy_buf *b, const char *key, const sy_rstr *set, size_t n) {
  int rc = sy_buf_printf(b, ",\"%s\":[", key);
  for (size_t i = 0; !rc && i < n; i++) {
    if (i) rc = sy_buf_append(b, ",", 1);
    if (!rc) rc = put_str(b, &set[i]);
  }
  return rc ? rc : sy_buf_append(b, "]", 1);
}

/* Shortest %g form that reads back as the same double. */
static int put_double(sy_buf *b, double v) {
  char tmp[32];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v) break;
  }
  return sy_buf_appends(b, tmp);
}

static int put_rule(sy_buf *b, const sy_route *r, const sy_rule *ru) {
  int rc = sy_buf_appends(b, "{\"arm\":");
  if (!rc) rc = put_str(b, &r->arms[ru->arm].name);
  if (!rc && (ru->conds & SY_RULE_PROMPT_BYTES))
    rc = sy_buf_printf(b, ",\"min_prompt_bytes\":%llu,\"max_prompt_bytes\":%llu",
                       (unsigned long long)ru->min_bytes, (unsigned long long)ru->max_bytes);
  if (!rc && (ru->conds & SY_RULE_PROMPT_TOKENS))
    rc = sy_buf_printf(b, ",\"min_prompt_tokens\":%llu,\"max_prompt_tokens\":%llu",
                       (unsigned long long)ru->min_tokens, (unsigned long long)ru->max_tokens);
  if (!rc && (ru->conds & SY_RULE_CLIENT_KEY))
    rc = put_set(b, "client_keys", ru->client_keys, ru->n_client_keys);
  if (!rc && (ru->conds & SY_RULE_TENANT)) rc = put_set(b, "tenants", ru->tenants, ru->n_tenants);
  if (!rc && (ru->conds & SY_RULE_TOOLS))
    rc = sy_buf_printf(b, ",\"tools\":%s", ru->tools ? "true" : "false");
  return rc ? rc : sy_buf_append(b, "}", 1);
}

int sy_route_to_json(const sy_route *r, sy_buf *b) {
  int rc = sy_buf_appends(b, "{\"name\":");
  if (!rc) rc = put_str(b, &r->name);
  if (!rc) rc = sy_buf_appends(b, ",\"salt\":");
  if (!rc) rc = put_str(b, &r->salt);
  if (!rc) rc = sy_buf_appends(b, ",\"arms\":[");
  for (size_t i = 0; !rc && i < r->n_arms; i++) {
    const sy_route_arm *a = &r->arms[i];
    rc = sy_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
    if (!rc) rc = put_str(b, &a->name);
    if (!rc) rc = sy_buf_appends(b, ",\"upstream\":");
    if (!rc) rc = put_str(b, &a->upstream);
    if (!rc) rc = sy_buf_appends(b, ",\"model\":");
    if (!rc) rc = put_str(b, &a->model);
    if (!rc) rc = sy_buf_printf(b, ",\"weight_bp\":%u}", (unsigned)a->weight_bp);
  }
  if (!rc) rc = sy_buf_appends(b, "],\"sticky\":[");
  for (size_t i = 0; !rc && i < r->n_sticky; i++)
    rc = sy_buf_printf(b, "%s\"%s\"", i ? "," : "", sy_sticky_source_name(r->sticky[i]));
  if (!rc) rc = sy_buf_printf(b, "],\"capture\":%s", r->capture ? "true" : "false");
  if (!rc && r->has_cascade) {
    rc = sy_buf_appends(b, ",\"cascade\":{\"first\":");
    if (!rc) rc = put_str(b, &r->arms[r->cascade.first].name);
    if (!rc) rc = sy_buf_appends(b, ",\"escalate\":");
    if (!rc) rc = put_str(b, &r->arms[r->cascade.escalate].name);
    if (!rc) rc = sy_buf_appends(b, ",\"threshold\":");
    if (!rc) rc = put_double(b, r->cascade.threshold);
    if (!rc) rc = sy_buf_printf(b, ",\"method\":\"%s\"}", sy_conf_method_name(r->cascade.method));
  }
  if (!rc && r->n_rules) {
    rc = sy_buf_appends(b, ",\"rules\":[");
    for (size_t i = 0; !rc && i < r->n_rules; i++) {
      if (i) rc = sy_buf_append(b, ",", 1);
      if (!rc) rc = put_rule(b, r, &r->rules[i]);
    }
    if (!rc) rc = sy_buf_append(b, "]", 1);
  }
  if (!rc) {
    const sy_retry_policy *p = &r->retry;
    rc = sy_buf_printf(b,
                       ",\"retry\":{\"attempts\":%u,\"per_try_timeout_ms\":%u,\"deadline_ms\":%u,"
                       "\"backoff_base_ms\":%u,\"backoff_max_ms\":%u,\"jitter\":%s}",
                       (unsigned)p->attempts, (unsigned)p->per_try_timeout_ms,
                       (unsigned)p->deadline_ms, (unsigned)p->backoff_base_ms,
                       (unsigned)p->backoff_max_ms, p->jitter ? "true" : "false");
  }
  if (!rc) rc = sy_buf_appends(b, ",\"fallback\":[");
  for (size_t i = 0; !rc && i < r->n_fallback; i++) {
    if (i) rc = sy_buf_append(b, ",", 1);
    if (!rc) rc = put_str(b, &r->arms[r->fallback[i]].name);
  }
  if (!rc) rc = sy_buf_append(b, "]", 1);
  if (!rc && r->has_shadow) {
    rc = sy_buf_appends(b, ",\"shadow\":{\"arm\":");
    if (!rc) rc = put_str(b, &r->arms[r->shadow_arm].name);
    if (!rc) rc = sy_buf_printf(b, ",\"rate_bp\":%u}", (unsigned)r->shadow_rate_bp);
  }
  return rc ? rc : sy_buf_append(b, "}", 1);
}

int sy_route_table_to_json(const sy_route_table *t, sy_buf *b) {
  int rc = sy_buf_append(b, "[", 1);
  for (size_t i = 0; !rc && i < t->n_routes; i++) {
    if (i) rc = sy_buf_append(b, ",", 1);
    if (!rc) rc = sy_route_to_json(&t->routes[i], b);
  }
  return rc ? rc : sy_buf_append(b, "]", 1);
}
