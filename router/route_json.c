/* JSON → route table. Every rejection names the field it is about, in the
 * config's own terms ("routes[2].arms[0].upstream: unknown upstream \"x\""),
 * because the person reading it is editing that file. */
#include "router/route.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Largest prompt size a rule may name; well inside a double's exact integers
 * so the value survives a JSON round trip. An absent max means this. */
#define SY_RULE_SIZE_MAX 1000000000000000ull

typedef struct pctx {
  char *err;
  size_t errlen;
  const sy_route_parse_opts *opts;
} pctx;

static int perr(pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(pctx *c, const char *path, const char *fmt, ...) {
  if (c->err && c->errlen) {
    int n = snprintf(c->err, c->errlen, "%s: ", path);
    if (n >= 0 && (size_t)n < c->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return SY_ECONFIG;
}

/* Paths are at most "routes[4095].rules[31].client_keys[63]" plus a key. */
#define PATH_MAX_LEN 160
typedef char path_t[PATH_MAX_LEN];

/* Joins base + sep + tail into out[PATH_MAX_LEN], cutting an over-long
 * path short (only an unknown key can make one; the cut path still points
 * at the right place). */
static void path_join(char *out, const char *base, const char *sep, const char *tail) {
  size_t cap = PATH_MAX_LEN - 1, n = 0;
  const char *parts[3] = {base, sep, tail};
  for (int k = 0; k < 3; k++) {
    size_t m = strnlen(parts[k], cap - n);
    memmove(out + n, parts[k], m);
    n += m;
  }
  out[n] = '\0';
}
static void sub(char *out, const char *base, const char *key) { path_join(out, base, ".", key); }
static void idx(char *out, const char *base, size_t i) {
  char num[32];
  snprintf(num, sizeof num, "[%zu]", i);
  path_join(out, base, "", num);
}

typedef enum { NAME_PRINTABLE, NAME_ARM, NAME_UPSTREAM, NAME_ANY } name_kind;

static int name_ok(const char *s, size_t n, name_kind k) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    switch (k) {
    case NAME_PRINTABLE: /* header-safe: no spaces, no control bytes */
      if (ch < 0x21 || ch > 0x7e) return 0;
      break;
    case NAME_ARM:
    case NAME_UPSTREAM:
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '_' || ch == '.' || ch == '-' || (k == NAME_ARM && ch == ':')))
        return 0;
      break;
    case NAME_ANY: /* a salt is only hashed: anything but control bytes */
      if (ch < 0x20 || ch == 0x7f) return 0;
      break;
    }
  }
  return 1;
}

static const char *kind_rule(name_kind k) {
  switch (k) {
  case NAME_PRINTABLE: return "printable ASCII without spaces";
  case NAME_ARM: return "[A-Za-z0-9_.:-]";
  case NAME_UPSTREAM: return "[A-Za-z0-9_.-]";
  case NAME_ANY: return "without control characters";
  }
  return "?";
}

static int get_name(pctx *c, const cJSON *v, const char *path, name_kind k, sy_rstr *out) {
  if (!cJSON_IsString(v)) return perr(c, path, "must be a string");
  size_t n = strlen(v->valuestring);
  if (n == 0 || n > SY_ROUTE_MAX_NAME)
    return perr(c, path, "must be 1..%d characters", SY_ROUTE_MAX_NAME);
  if (!name_ok(v->valuestring, n, k)) return perr(c, path, "must be %s", kind_rule(k));
  if (!(out->s = strdup(v->valuestring))) return SY_ENOMEM;
  out->len = n;
  return 0;
}

static int copy_rstr(const sy_rstr *in, sy_rstr *out) {
  if (!(out->s = malloc(in->len + 1))) return SY_ENOMEM;
  memcpy(out->s, in->s, in->len + 1);
  out->len = in->len;
  return 0;
}

static int get_uint(pctx *c, const cJSON *v, const char *path, uint64_t min, uint64_t max,
                    uint64_t *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
      v->valuedouble > (double)max)
    return perr(c, path, "must be %llu..%llu", (unsigned long long)min, (unsigned long long)max);
  *out = (uint64_t)v->valuedouble;
  return 0;
}

static int get_u32(pctx *c, const cJSON *v, const char *path, uint32_t min, uint32_t max,
                   uint32_t *out) {
  uint64_t x;
  int rc = get_uint(c, v, path, min, max, &x);
  if (!rc) *out = (uint32_t)x;
  return rc;
}

static int get_bool(pctx *c, const cJSON *v, const char *path, int *out) {
  if (!cJSON_IsBool(v)) return perr(c, path, "must be true or false");
  *out = cJSON_IsTrue(v);
  return 0;
}

/* Objects: only the listed keys, each at most once. */
static int check_keys(pctx *c, const cJSON *o, const char *path, const char *const *allowed) {
  if (!cJSON_IsObject(o)) return perr(c, path, "must be an object");
  path_t p;
  for (const cJSON *k = o->child; k; k = k->next) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, k->string);
    sub(p, path, k->string);
    if (!ok) return perr(c, p, "unknown key");
    for (const cJSON *j = o->child; j != k; j = j->next)
      if (!strcmp(j->string, k->string)) return perr(c, p, "duplicate key");
  }
  return 0;
}

/* An arm reference by name: returns the index through *out. */
static int get_arm_ref(pctx *c, const sy_route *r, const cJSON *v, const char *path, int *out) {
  if (!cJSON_IsString(v)) return perr(c, path, "must be an arm name");
  int i = sy_route_arm_index(r, v->valuestring, strlen(v->valuestring));
  if (i < 0) return perr(c, path, "no arm named \"%.*s\"", SY_ROUTE_MAX_NAME, v->valuestring);
  *out = i;
  return 0;
}

static int get_array(pctx *c, const cJSON *v, const char *path, size_t min, size_t max, size_t *n) {
  if (!cJSON_IsArray(v)) return perr(c, path, "must be an array");
  size_t k = (size_t)cJSON_GetArraySize(v);
  if (k < min || k > max) {
    if (min == max) return perr(c, path, "must have %zu entries", min);
    return perr(c, path, "must have %zu..%zu entries", min, max);
  }
  *n = k;
  return 0;
}

static const char *const k_arm_keys[] = {"name", "upstream", "model", "weight_bp", NULL};

static int parse_arms(pctx *c, const cJSON *arms, const char *rpath, sy_route *r, int *any_weight) {
  path_t ap, p;
  size_t n;
  int rc;
  sub(ap, rpath, "arms");
  if (!arms) return perr(c, ap, "required");
  if ((rc = get_array(c, arms, ap, 1, SY_ROUTE_MAX_ARMS, &n))) return rc;
  size_t i = 0;
  for (const cJSON *a = arms->child; a; a = a->next, i++) {
    path_t arm;
    idx(arm, ap, i);
    if ((rc = check_keys(c, a, arm, k_arm_keys))) return rc;
    sy_route_arm *x = &r->arms[i];
    r->n_arms = i + 1; /* from here on sy__route_free releases this arm */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "name");
    sub(p, arm, "name");
    if (!v) return perr(c, p, "required");
    if ((rc = get_name(c, v, p, NAME_ARM, &x->name))) return rc;
    if (sy_route_arm_index(r, x->name.s, x->name.len) != (int)i)
      return perr(c, p, "duplicate arm \"%s\"", x->name.s);
    v = cJSON_GetObjectItemCaseSensitive(a, "upstream");
    sub(p, arm, "upstream");
    if (!v) return perr(c, p, "required");
    if ((rc = get_name(c, v, p, NAME_UPSTREAM, &x->upstream))) return rc;
    if (c->opts && c->opts->upstream_known && !c->opts->upstream_known(c->opts->ctx, x->upstream.s))
      return perr(c, p, "unknown upstream \"%s\"", x->upstream.s);
    v = cJSON_GetObjectItemCaseSensitive(a, "model");
    sub(p, arm, "model");
    if (v) rc = get_name(c, v, p, NAME_PRINTABLE, &x->model);
    else rc = copy_rstr(&r->name, &x->model);
    if (rc) return rc;
    v = cJSON_GetObjectItemCaseSensitive(a, "weight_bp");
    sub(p, arm, "weight_bp");
    if (v) {
      if ((rc = get_u32(c, v, p, 0, SY_SPLIT_BUCKETS, &x->weight_bp))) return rc;
      *any_weight = 1;
    }
  }
  return 0;
}

static const char *const k_cascade_keys[] = {"first", "escalate", "threshold", "method", NULL};

static int parse_cascade(pctx *c, const cJSON *o, const char *rpath, sy_route *r) {
  path_t cp, p;
  int rc;
  sub(cp, rpath, "cascade");
  if ((rc = check_keys(c, o, cp, k_cascade_keys))) return rc;
  sy_cascade *k = &r->cascade;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "first");
  sub(p, cp, "first");
  if (!v) return perr(c, p, "required");
  if ((rc = get_arm_ref(c, r, v, p, &k->first))) return rc;
  v = cJSON_GetObjectItemCaseSensitive(o, "escalate");
  sub(p, cp, "escalate");
  if (!v) return perr(c, p, "required");
  if ((rc = get_arm_ref(c, r, v, p, &k->escalate))) return rc;
  if (k->escalate == k->first) return perr(c, p, "must differ from first");
  v = cJSON_GetObjectItemCaseSensitive(o, "threshold");
  sub(p, cp, "threshold");
  if (!v) return perr(c, p, "required");
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 1.0))
    return perr(c, p, "must be a number in 0..1");
  k->threshold = v->valuedouble;
  k->method = SY_CONF_GEOMEAN;
  v = cJSON_GetObjectItemCaseSensitive(o, "method");
  sub(p, cp, "method");
  if (v && (!cJSON_IsString(v) || sy_conf_method_parse(v->valuestring, &k->method)))
    return perr(c, p, "must be \"geomean\" or \"min\"");
  r->has_cascade = 1;
  return 0;
}

static int parse_set(pctx *c, const cJSON *v, const char *path, sy_rstr **out, size_t *nout) {
  size_t n;
  int rc = get_array(c, v, path, 1, SY_RULE_SET_MAX, &n);
  if (rc) return rc;
  if (!(*out = calloc(n, sizeof **out))) return SY_ENOMEM;
  *nout = n;
  size_t i = 0;
  path_t p;
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    idx(p, path, i);
    if ((rc = get_name(c, e, p, NAME_PRINTABLE, &(*out)[i]))) return rc;
  }
  return 0;
}

static const char *const k_rule_keys[] = {"arm", "min_prompt_bytes", "max_prompt_bytes",
                                          "min_prompt_tokens", "max_prompt_tokens", "client_keys",
                                          "tenants", "tools", NULL};

static int parse_range(pctx *c, const cJSON *o, const char *rp, const char *kmin, const char *kmax,
                       uint64_t *min, uint64_t *max, int *present) {
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(o, kmin);
  const cJSON *hi = cJSON_GetObjectItemCaseSensitive(o, kmax);
  path_t p;
  int rc;
  *present = lo || hi;
  *min = 0;
  *max = SY_RULE_SIZE_MAX;
  sub(p, rp, kmin);
  if (lo && (rc = get_uint(c, lo, p, 0, SY_RULE_SIZE_MAX, min))) return rc;
  sub(p, rp, kmax);
  if (hi && (rc = get_uint(c, hi, p, 0, SY_RULE_SIZE_MAX, max))) return rc;
  if (*min > *max) return perr(c, p, "must be >= %s", kmin);
  return 0;
}

static int parse_rules(pctx *c, const cJSON *arr, const char *rpath, sy_route *r) {
  path_t rp, p;
  size_t n;
  int rc;
  sub(rp, rpath, "rules");
  if ((rc = get_array(c, arr, rp, 0, SY_RULES_MAX, &n))) return rc;
  if (!n) return 0;
  if (!(r->rules = calloc(n, sizeof *r->rules))) return SY_ENOMEM;
  r->n_rules = n;
  size_t i = 0;
  for (const cJSON *o = arr->child; o; o = o->next, i++) {
    path_t ru;
    idx(ru, rp, i);
    if ((rc = check_keys(c, o, ru, k_rule_keys))) return rc;
    sy_rule *x = &r->rules[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "arm");
    sub(p, ru, "arm");
    if (!v) return perr(c, p, "required");
    if ((rc = get_arm_ref(c, r, v, p, &x->arm))) return rc;
    int has;
    if ((rc = parse_range(c, o, ru, "min_prompt_bytes", "max_prompt_bytes", &x->min_bytes,
                          &x->max_bytes, &has)))
      return rc;
    if (has) x->conds |= SY_RULE_PROMPT_BYTES;
    if ((rc = parse_range(c, o, ru, "min_prompt_tokens", "max_prompt_tokens", &x->min_tokens,
                          &x->max_tokens, &has)))
      return rc;
    if (has) x->conds |= SY_RULE_PROMPT_TOKENS;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "client_keys"))) {
      sub(p, ru, "client_keys");
      if ((rc = parse_set(c, v, p, &x->client_keys, &x->n_client_keys))) return rc;
      x->conds |= SY_RULE_CLIENT_KEY;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "tenants"))) {
      sub(p, ru, "tenants");
      if ((rc = parse_set(c, v, p, &x->tenants, &x->n_tenants))) return rc;
      x->conds |= SY_RULE_TENANT;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "tools"))) {
      sub(p, ru, "tools");
      if ((rc = get_bool(c, v, p, &x->tools))) return rc;
      x->conds |= SY_RULE_TOOLS;
    }
    if (!x->conds) return perr(c, ru, "needs at least one condition");
  }
  return 0;
}

static const char *const k_retry_keys[] = {"attempts", "per_try_timeout_ms", "deadline_ms",
                                           "backoff_base_ms", "backoff_max_ms", "jitter", NULL};

static int parse_retry(pctx *c, const cJSON *o, const char *rpath, sy_retry_policy *pol) {
  path_t rp, p;
  int rc;
  sub(rp, rpath, "retry");
  if ((rc = check_keys(c, o, rp, k_retry_keys))) return rc;
  const struct {
    const char *key;
    uint32_t min, max;
    uint32_t *dst;
  } f[] = {
      {"attempts", 1, SY_RETRY_MAX_ATTEMPTS, &pol->attempts},
      {"per_try_timeout_ms", 1, SY_RETRY_MAX_MS, &pol->per_try_timeout_ms},
      {"deadline_ms", 0, SY_RETRY_MAX_MS, &pol->deadline_ms},
      {"backoff_base_ms", 0, SY_RETRY_MAX_MS, &pol->backoff_base_ms},
      {"backoff_max_ms", 0, SY_RETRY_MAX_MS, &pol->backoff_max_ms},
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f[i].key);
    sub(p, rp, f[i].key);
    if (v && (rc = get_u32(c, v, p, f[i].min, f[i].max, f[i].dst))) return rc;
  }
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "jitter");
  sub(p, rp, "jitter");
  if (v && (rc = get_bool(c, v, p, &pol->jitter))) return rc;
  sub(p, rp, "backoff_max_ms");
  if (pol->backoff_max_ms < pol->backoff_base_ms) return perr(c, p, "must be >= backoff_base_ms");
  return 0;
}

static int parse_sticky(pctx *c, const cJSON *arr, const char *rpath, sy_route *r) {
  path_t sp, p;
  size_t n;
  int rc;
  sub(sp, rpath, "sticky");
  if ((rc = get_array(c, arr, sp, 0, SY_STICKY_MAX_SOURCES, &n))) return rc;
  size_t i = 0;
  for (const cJSON *e = arr->child; e; e = e->next, i++) {
    idx(p, sp, i);
    if (!cJSON_IsString(e) || sy_sticky_source_parse(e->valuestring, &r->sticky[i]))
      return perr(c, p, "must be \"header\", \"user\" or \"client_key\"");
    for (size_t j = 0; j < i; j++)
      if (r->sticky[j] == r->sticky[i]) return perr(c, p, "duplicate \"%s\"", e->valuestring);
  }
  r->n_sticky = n;
  return 0;
}

static int parse_fallback(pctx *c, const cJSON *arr, const char *rpath, sy_route *r) {
  path_t fp, p;
  size_t n;
  int rc;
  sub(fp, rpath, "fallback");
  if ((rc = get_array(c, arr, fp, 0, r->n_arms, &n))) return rc;
  size_t i = 0;
  for (const cJSON *e = arr->child; e; e = e->next, i++) {
    int a;
    idx(p, fp, i);
    if ((rc = get_arm_ref(c, r, e, p, &a))) return rc;
    for (size_t j = 0; j < i; j++)
      if (r->fallback[j] == a) return perr(c, p, "duplicate arm \"%s\"", e->valuestring);
    r->fallback[i] = (uint8_t)a;
  }
  r->n_fallback = n;
  return 0;
}

static const char *const k_shadow_keys[] = {"arm", "rate_bp", NULL};

static int parse_shadow(pctx *c, const cJSON *o, const char *rpath, sy_route *r) {
  path_t sp, p;
  int rc;
  sub(sp, rpath, "shadow");
  if ((rc = check_keys(c, o, sp, k_shadow_keys))) return rc;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "arm");
  sub(p, sp, "arm");
  if (!v) return perr(c, p, "required");
  if ((rc = get_arm_ref(c, r, v, p, &r->shadow_arm))) return rc;
  v = cJSON_GetObjectItemCaseSensitive(o, "rate_bp");
  sub(p, sp, "rate_bp");
  if (!v) return perr(c, p, "required");
  if ((rc = get_u32(c, v, p, 0, SY_SPLIT_BUCKETS, &r->shadow_rate_bp))) return rc;
  r->has_shadow = 1;
  return 0;
}

static const char *const k_route_keys[] = {"name",  "salt",  "arms",     "sticky", "capture",
                                           "cascade", "rules", "retry", "fallback", "shadow", NULL};

static int parse_route(pctx *c, const cJSON *o, size_t i, sy_route *r) {
  path_t rp, p;
  int rc;
  idx(rp, "routes", i);
  if ((rc = check_keys(c, o, rp, k_route_keys))) return rc;
  r->shadow_arm = -1;
  r->capture = 1;
  sy_retry_policy_default(&r->retry);
  r->n_sticky = 3;
  r->sticky[0] = SY_STICKY_HEADER;
  r->sticky[1] = SY_STICKY_USER;
  r->sticky[2] = SY_STICKY_CLIENT_KEY;

  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "name");
  sub(p, rp, "name");
  if (!v) return perr(c, p, "required");
  if ((rc = get_name(c, v, p, NAME_PRINTABLE, &r->name))) return rc;
  v = cJSON_GetObjectItemCaseSensitive(o, "salt");
  sub(p, rp, "salt");
  if (v) rc = get_name(c, v, p, NAME_ANY, &r->salt);
  else rc = copy_rstr(&r->name, &r->salt);
  if (rc) return rc;
  r->seed = sy_split_seed(r->salt.s, r->salt.len);

  int any_weight = 0;
  if ((rc = parse_arms(c, cJSON_GetObjectItemCaseSensitive(o, "arms"), rp, r, &any_weight)))
    return rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "cascade")) && (rc = parse_cascade(c, v, rp, r)))
    return rc;
  if (!any_weight && r->n_arms == 1 && !r->has_cascade) r->arms[0].weight_bp = SY_SPLIT_BUCKETS;
  r->weight_sum = 0;
  for (size_t a = 0; a < r->n_arms; a++) {
    r->weights[a] = r->arms[a].weight_bp;
    r->weight_sum += r->arms[a].weight_bp;
  }
  sub(p, rp, "arms");
  if (!r->has_cascade && r->weight_sum != SY_SPLIT_BUCKETS)
    return perr(c, p, "weights sum to %u, must be 10000", (unsigned)r->weight_sum);
  if (r->has_cascade && r->weight_sum != 0 && r->weight_sum != SY_SPLIT_BUCKETS)
    return perr(c, p, "weights sum to %u, must be 10000 (or all 0 for a cascade-only route)",
                (unsigned)r->weight_sum);

  if ((v = cJSON_GetObjectItemCaseSensitive(o, "sticky")) && (rc = parse_sticky(c, v, rp, r)))
    return rc;
  sub(p, rp, "capture");
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "capture")) && (rc = get_bool(c, v, p, &r->capture)))
    return rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "rules")) && (rc = parse_rules(c, v, rp, r)))
    return rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "retry")) && (rc = parse_retry(c, v, rp, &r->retry)))
    return rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "fallback")) && (rc = parse_fallback(c, v, rp, r)))
    return rc;
  if ((v = cJSON_GetObjectItemCaseSensitive(o, "shadow")) && (rc = parse_shadow(c, v, rp, r)))
    return rc;
  return 0;
}

int sy_route_table_parse(const char *json, size_t len, const sy_route_parse_opts *opts,
                         sy_route_table **out, char *err, size_t errlen) {
  pctx c = {err, errlen, opts};
  cJSON *root = NULL;
  sy_route *routes = NULL;
  size_t n = 0;
  int rc;
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  if (len > SY_ROUTE_MAX_JSON_BYTES) {
    perr(&c, "routes", "%zu bytes of JSON, at most %u allowed", len, SY_ROUTE_MAX_JSON_BYTES);
    return SY_ETOOBIG;
  }
  if (!(root = cJSON_ParseWithLength(json, len))) return perr(&c, "routes", "not valid JSON");
  if ((rc = get_array(&c, root, "routes", 0, SY_ROUTE_MAX_ROUTES, &n))) goto fail;
  if (n && !(routes = calloc(n, sizeof *routes))) {
    rc = SY_ENOMEM;
    goto fail;
  }
  size_t i = 0;
  for (const cJSON *o = root->child; o; o = o->next, i++)
    if ((rc = parse_route(&c, o, i, &routes[i]))) goto fail;
  cJSON_Delete(root);
  root = NULL;
  /* build takes the routes whatever happens */
  return sy__route_table_build(routes, n, opts ? opts->version : 0, out, err, errlen);

fail:
  if (routes) {
    for (size_t k = 0; k < n; k++) sy__route_free(&routes[k]);
    free(routes);
  }
  cJSON_Delete(root);
  if (rc == SY_ENOMEM && err && errlen) snprintf(err, errlen, "routes: out of memory");
  return rc;
}
