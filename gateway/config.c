/* switchyard configuration, first half: defaults, the JSON file, free. The
 * flags, --help, the final checks and the value rules both halves use are in
 * config_args.c; config_internal.h joins them. See config.h. */
#include "gateway/config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/config_internal.h"

static const char NAME_RULE[] = "must be 1 to 63 characters from A-Z a-z 0-9 _ . -";
static const char PII_NAME_RULE[] = "must match [A-Z0-9_]{1,32}";

/* One table per section feeds the file parser, the flags and --help, so the
 * three never disagree on a range. Capture settings have no flags. */
const sy__num_spec sy__config_up_specs[] = {
    {"connect_timeout_ms", "--upstream-connect-timeout-ms", 1, 300000,
     SY_DEFAULT_CONNECT_TIMEOUT_MS, SY__FIELD(sy_upstream_conf, connect_timeout_ms),
     "default upstream: TCP+TLS connect timeout"},
    {"timeout_ms", "--upstream-timeout-ms", 1, 86400000, SY_DEFAULT_UPSTREAM_TIMEOUT_MS,
     SY__FIELD(sy_upstream_conf, timeout_ms),
     "default upstream: whole-request timeout, streams included"},
    {"max_connections", "--upstream-max-connections", 1, 65536,
     SY_DEFAULT_UPSTREAM_MAX_CONNS, SY__FIELD(sy_upstream_conf, max_connections),
     "default upstream: connections across all workers"},
};

const sy__num_spec sy__config_limit_specs[] = {
    {"max_header_bytes", "--max-header-bytes", 1024, 1048576, SY_DEFAULT_MAX_HEADER_BYTES,
     SY__FIELD(sy_limits, max_header_bytes), "request headers larger get 431"},
    {"max_body_bytes", "--max-body-bytes", 1024, 1073741824, SY_DEFAULT_MAX_BODY_BYTES,
     SY__FIELD(sy_limits, max_body_bytes), "request bodies larger get 413"},
    {"max_connections", "--max-connections", 1, 1000000, SY_DEFAULT_MAX_CONNECTIONS,
     SY__FIELD(sy_limits, max_connections), "client connections per process"},
    {"idle_timeout_ms", "--idle-timeout-ms", 100, 3600000, SY_DEFAULT_IDLE_TIMEOUT_MS,
     SY__FIELD(sy_limits, idle_timeout_ms), "keep-alive connection with no request"},
    {"header_timeout_ms", "--header-timeout-ms", 100, 600000, SY_DEFAULT_HEADER_TIMEOUT_MS,
     SY__FIELD(sy_limits, header_timeout_ms), "first byte to end of headers"},
    {"body_timeout_ms", "--body-timeout-ms", 100, 3600000, SY_DEFAULT_BODY_TIMEOUT_MS,
     SY__FIELD(sy_limits, body_timeout_ms), "end of headers to end of body"},
    {"drain_timeout_ms", "--drain-timeout-ms", 0, 600000, SY_DEFAULT_DRAIN_TIMEOUT_MS,
     SY__FIELD(sy_limits, drain_timeout_ms), "on SIGTERM, time for in-flight requests"},
};

static const sy__num_spec capture_specs[] = {
    {"queue_size", NULL, 16, 1048576, 65536, SY__FIELD(sy_capture_conf, queue_size), NULL},
    {"batch_max", NULL, 1, 100000, 512, SY__FIELD(sy_capture_conf, batch_max), NULL},
    {"flush_ms", NULL, 1, 10000, 10, SY__FIELD(sy_capture_conf, flush_ms), NULL},
    {"sync_interval_ms", NULL, 10, 600000, 1000, SY__FIELD(sy_capture_conf, sync_interval_ms),
     NULL},
    {"max_response_bytes", NULL, 1024, 67108864, 4u << 20,
     SY__FIELD(sy_capture_conf, max_response_bytes), NULL},
    {"map_size_max_mb", NULL, 16, 16777216, 65536, SY__FIELD(sy_capture_conf, map_size_max_mb),
     NULL},
};

/* 0 means no limit. The header sets no ceiling; these (a century, 16 TiB,
 * the map ceiling) only stop a typo from meaning "keep forever" by wrapping. */
static const sy__num_spec retention_specs[] = {
    {"max_age_days", NULL, 0, 36500, 0, SY__FIELD(sy_capture_conf, retention_max_age_days),
     NULL},
    {"max_mb", NULL, 0, 16777216, 0, SY__FIELD(sy_capture_conf, retention_max_mb), NULL},
};

const size_t sy__config_n_up_specs = SY__N_OF(sy__config_up_specs);
const size_t sy__config_n_limit_specs = SY__N_OF(sy__config_limit_specs);

void sy__config_spec_set(void *base, const sy__num_spec *s, uint64_t v) {
  char *p = (char *)base + s->off;
  assert(s->width == 4 || s->width == 8);
  if (s->width == 8) {
    memcpy(p, &v, sizeof v);
  } else {
    uint32_t x = (uint32_t)v;
    memcpy(p, &x, sizeof x);
  }
}

int sy__config_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return SY_ECONFIG;
}

int sy__config_fail_nomem(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "out of memory");
  return SY_ENOMEM;
}

/* User text echoed in a message: bounded, and control bytes made visible,
 * so a hostile key cannot forge extra log lines. */
const char *sy__config_shown(const char *s, char buf[SY__CONF_SHOWN + 4]) {
  size_t i = 0;
  for (; i < SY__CONF_SHOWN && s[i]; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

void sy__config_secret_free(char **s) {
  if (*s) {
    OPENSSL_cleanse(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

/* Replaces *dst with a copy of src (NULL clears it). 0 or SY_ENOMEM. */
int sy__config_set_str(char **dst, const char *src) {
  char *copy = NULL;
  if (src && !(copy = strdup(src))) return SY_ENOMEM;
  free(*dst);
  *dst = copy;
  return 0;
}

void sy__config_upstream_defaults(sy_upstream_conf *u) {
  memset(u, 0, sizeof *u);
  for (size_t i = 0; i < sy__config_n_up_specs; i++)
    sy__config_spec_set(u, &sy__config_up_specs[i], sy__config_up_specs[i].def);
}

static void upstream_free(sy_upstream_conf *u) {
  free(u->name);
  free(u->base_url);
  free(u->api_key_env);
  sy__config_secret_free(&u->api_key);
}

static void upstreams_clear(sy_config *c) {
  for (size_t i = 0; i < c->n_upstreams; i++) upstream_free(&c->upstreams[i]);
  free(c->upstreams);
  c->upstreams = NULL;
  c->n_upstreams = 0;
  c->default_upstream = 0;
}

static void client_keys_clear(sy_config *c) {
  for (size_t i = 0; i < c->n_client_keys; i++) {
    free(c->client_keys[i].name);
    OPENSSL_cleanse(c->client_keys[i].sha256, sizeof c->client_keys[i].sha256);
  }
  free(c->client_keys);
  c->client_keys = NULL;
  c->n_client_keys = 0;
}

/* A JSON integer in [lo, hi]. cJSON keeps numbers as doubles; every range
 * here is far below 2^53, so the double holds the value exactly. NaN and
 * infinities fail the range comparison. */
static int json_uint(const cJSON *v, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= (double)lo && d <= (double)hi)) return -1;
  uint64_t u = (uint64_t)d;
  if ((double)u != d) return -1;  /* a fraction */
  *out = u;
  return 0;
}

static int valid_name(const char *s) {
  return sy__config_valid_chars(s, SY__CONF_MAX_NAME, ".-", 1);
}

/* ---- the file ------------------------------------------------------------ */

typedef struct pctx {
  sy_config *c;
  char *err;
  size_t errlen;
} pctx;

static int pfail(pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pfail(pctx *p, const char *fmt, ...) {
  if (p->err && p->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
  }
  return SY_ECONFIG;
}

static int pnomem(pctx *p) { return sy__config_fail_nomem(p->err, p->errlen); }

/* A key appearing twice in one object: cJSON keeps both, and the later one
 * would silently lose, so it is an error. */
static int dup_key(const cJSON *obj, const cJSON *item) {
  return cJSON_GetObjectItemCaseSensitive(obj, item->string) != item;
}

static int need_string(pctx *p, const cJSON *v, const char *path) {
  if (!cJSON_IsString(v) || !v->valuestring) return pfail(p, "%s: must be a string", path);
  return 0;
}

static int need_uint(pctx *p, const cJSON *v, const char *path, uint64_t lo, uint64_t hi,
                     uint64_t *out) {
  if (json_uint(v, lo, hi, out) != 0)
    return pfail(p, "%s: must be an integer between %llu and %llu", path, (unsigned long long)lo,
                 (unsigned long long)hi);
  return 0;
}

static int need_bool(pctx *p, const cJSON *v, const char *path, int *out) {
  if (!cJSON_IsBool(v)) return pfail(p, "%s: must be true or false", path);
  *out = cJSON_IsTrue(v);
  return 0;
}

static int num_field(pctx *p, void *base, const sy__num_spec *specs, size_t n, const cJSON *v,
                     const char *path, int *handled) {
  *handled = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v->string, specs[i].key) != 0) continue;
    uint64_t x = 0;
    *handled = 1;
    int rc = need_uint(p, v, path, specs[i].lo, specs[i].hi, &x);
    if (rc == 0) sy__config_spec_set(base, &specs[i], x);
    return rc;
  }
  return 0;
}

static int parse_upstream(pctx *p, const cJSON *obj, size_t idx) {
  sy_upstream_conf *u = &p->c->upstreams[idx];
  char path[160], sb[SY__CONF_SHOWN + 4];
  int rc;
  if (!cJSON_IsObject(obj)) return pfail(p, "upstreams[%zu]: must be an object", idx);
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "upstreams[%zu].%s", idx, sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    int handled;
    if ((rc = num_field(p, u, sy__config_up_specs, sy__config_n_up_specs, v, path, &handled)) != 0)
      return rc;
    if (handled) continue;
    if (strcmp(v->string, "name") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if (!valid_name(v->valuestring)) return pfail(p, "%s: %s", path, NAME_RULE);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(p->c->upstreams[j].name, v->valuestring) == 0)
          return pfail(p, "%s: duplicate name \"%s\"", path, v->valuestring);
      if (sy__config_set_str(&u->name, v->valuestring) != 0) return pnomem(p);
    } else if (strcmp(v->string, "base_url") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if ((rc = sy__config_set_base_url(u, v->valuestring, path, p->err, p->errlen)) != 0)
        return rc;
    } else if (strcmp(v->string, "api_key_env") == 0) {
      if (cJSON_IsNull(v)) {
        free(u->api_key_env);
        u->api_key_env = NULL;
        continue;
      }
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if ((rc = sy__config_set_env_name(&u->api_key_env, v->valuestring, path, p->err,
                                        p->errlen)) != 0)
        return rc;
    } else {
      return pfail(p, "%s: unknown key", path);
    }
  }
  if (!u->name) return pfail(p, "upstreams[%zu].name: required", idx);
  if (!u->base_url) return pfail(p, "upstreams[%zu].base_url: required", idx);
  return 0;
}

/* The new list replaces the old one. Entries are installed as they are
 * parsed (count included), so on failure sy_config_free() still frees all. */
static int parse_upstreams(pctx *p, const cJSON *arr) {
  if (!cJSON_IsArray(arr)) return pfail(p, "upstreams: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY_MAX_UPSTREAMS)
    return pfail(p, "upstreams: at most %d upstreams are allowed (got %zu)", SY_MAX_UPSTREAMS, n);
  upstreams_clear(p->c);
  if (n == 0) return 0;
  if (!(p->c->upstreams = calloc(n, sizeof *p->c->upstreams))) return pnomem(p);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    sy__config_upstream_defaults(&p->c->upstreams[i]);
    p->c->n_upstreams = i + 1;
    int rc = parse_upstream(p, v, i);
    if (rc != 0) return rc;
  }
  return 0;
}

int sy__config_hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static int parse_client_key(pctx *p, const cJSON *obj, size_t idx) {
  sy_client_key *k = &p->c->client_keys[idx];
  char path[160], sb[SY__CONF_SHOWN + 4];
  int rc, have_hash = 0;
  if (!cJSON_IsObject(obj)) return pfail(p, "client_keys[%zu]: must be an object", idx);
  k->capture = 1;
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "client_keys[%zu].%s", idx, sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    if (strcmp(v->string, "name") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if (!valid_name(v->valuestring)) return pfail(p, "%s: %s", path, NAME_RULE);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(p->c->client_keys[j].name, v->valuestring) == 0)
          return pfail(p, "%s: duplicate name \"%s\"", path, v->valuestring);
      if (sy__config_set_str(&k->name, v->valuestring) != 0) return pnomem(p);
    } else if (strcmp(v->string, "sha256") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      const char *h = v->valuestring;
      if (strlen(h) != 64) return pfail(p, "%s: must be 64 hex characters", path);
      for (size_t j = 0; j < 32; j++) {
        int hi = sy__config_hexval(h[2 * j]), lo = sy__config_hexval(h[2 * j + 1]);
        if (hi < 0 || lo < 0) return pfail(p, "%s: must be 64 hex characters", path);
        k->sha256[j] = (unsigned char)(hi << 4 | lo);
      }
      have_hash = 1;
    } else if (strcmp(v->string, "capture") == 0) {
      if ((rc = need_bool(p, v, path, &k->capture)) != 0) return rc;
    } else {
      return pfail(p, "%s: unknown key", path);
    }
  }
  if (!k->name) return pfail(p, "client_keys[%zu].name: required", idx);
  if (!have_hash) return pfail(p, "client_keys[%zu].sha256: required", idx);
  for (size_t j = 0; j < idx; j++)
    if (memcmp(p->c->client_keys[j].sha256, k->sha256, 32) == 0)
      return pfail(p, "client_keys[%zu].sha256: same key as client_keys[%zu]", idx, j);
  return 0;
}

static int parse_client_keys(pctx *p, const cJSON *arr) {
  if (!cJSON_IsArray(arr)) return pfail(p, "client_keys: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY_MAX_CLIENT_KEYS)
    return pfail(p, "client_keys: at most %d keys are allowed (got %zu)", SY_MAX_CLIENT_KEYS, n);
  client_keys_clear(p->c);
  if (n == 0) return 0;
  if (!(p->c->client_keys = calloc(n, sizeof *p->c->client_keys))) return pnomem(p);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    p->c->n_client_keys = i + 1;
    int rc = parse_client_key(p, v, i);
    if (rc != 0) return rc;
  }
  return 0;
}

static int parse_limits(pctx *p, const cJSON *obj) {
  char path[160], sb[SY__CONF_SHOWN + 4];
  if (!cJSON_IsObject(obj)) return pfail(p, "limits: must be an object");
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "limits.%s", sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    int handled, rc;
    if ((rc = num_field(p, &p->c->limits, sy__config_limit_specs, sy__config_n_limit_specs, v, path,
                        &handled)) != 0)
      return rc;
    if (!handled) return pfail(p, "%s: unknown key", path);
  }
  return 0;
}

static int valid_pii_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > SY__CONF_MAX_PII_NAME) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return 0;
  return 1;
}

static void pii_patterns_clear(sy_capture_conf *cc) {
  for (size_t i = 0; i < cc->n_pii_patterns; i++) {
    free(cc->pii_patterns[i].name);
    free(cc->pii_patterns[i].pattern);
  }
  free(cc->pii_patterns);
  cc->pii_patterns = NULL;
  cc->n_pii_patterns = 0;
}

/* Only the shape is checked here; the gateway compiles the pattern with the
 * scrubber and reports PCRE2's own message. */
static int parse_pii_pattern(pctx *p, const cJSON *obj, size_t idx) {
  sy_capture_conf *cc = &p->c->capture;
  sy_pii_pattern *pp = &cc->pii_patterns[idx];
  char path[160], sb[SY__CONF_SHOWN + 4];
  int rc;
  if (!cJSON_IsObject(obj)) return pfail(p, "capture.pii_patterns[%zu]: must be an object", idx);
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "capture.pii_patterns[%zu].%s", idx,
             sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    if (strcmp(v->string, "name") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if (!valid_pii_name(v->valuestring)) return pfail(p, "%s: %s", path, PII_NAME_RULE);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(cc->pii_patterns[j].name, v->valuestring) == 0)
          return pfail(p, "%s: duplicate name \"%s\"", path, v->valuestring);
      if (sy__config_set_str(&pp->name, v->valuestring) != 0) return pnomem(p);
    } else if (strcmp(v->string, "pattern") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      size_t n = strlen(v->valuestring);
      if (n == 0) return pfail(p, "%s: must not be empty", path);
      if (n > SY__CONF_MAX_PII_PATTERN)
        return pfail(p, "%s: longer than %d bytes", path, SY__CONF_MAX_PII_PATTERN);
      if (sy__config_set_str(&pp->pattern, v->valuestring) != 0) return pnomem(p);
    } else {
      return pfail(p, "%s: unknown key", path);
    }
  }
  if (!pp->name) return pfail(p, "capture.pii_patterns[%zu].name: required", idx);
  if (!pp->pattern) return pfail(p, "capture.pii_patterns[%zu].pattern: required", idx);
  return 0;
}

/* Like upstreams: a new list replaces the old, entries counted as they are
 * parsed so sy_config_free() frees a half-parsed list. */
static int parse_pii_patterns(pctx *p, const cJSON *arr) {
  sy_capture_conf *cc = &p->c->capture;
  if (!cJSON_IsArray(arr)) return pfail(p, "capture.pii_patterns: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY__CONF_MAX_PII_PATTERNS)
    return pfail(p, "capture.pii_patterns: at most %d patterns are allowed (got %zu)",
                 SY__CONF_MAX_PII_PATTERNS, n);
  pii_patterns_clear(cc);
  if (n == 0) return 0;
  if (!(cc->pii_patterns = calloc(n, sizeof *cc->pii_patterns))) return pnomem(p);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    cc->n_pii_patterns = i + 1;
    int rc = parse_pii_pattern(p, v, i);
    if (rc != 0) return rc;
  }
  return 0;
}

static int parse_retention(pctx *p, const cJSON *obj) {
  char path[160], sb[SY__CONF_SHOWN + 4];
  if (!cJSON_IsObject(obj)) return pfail(p, "capture.retention: must be an object");
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "capture.retention.%s", sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    int handled, rc;
    rc =
        num_field(p, &p->c->capture, retention_specs, SY__N_OF(retention_specs), v, path, &handled);
    if (rc != 0) return rc;
    if (!handled) return pfail(p, "%s: unknown key", path);
  }
  return 0;
}

static int parse_capture(pctx *p, const cJSON *obj) {
  sy_capture_conf *cc = &p->c->capture;
  char path[160], sb[SY__CONF_SHOWN + 4];
  if (!cJSON_IsObject(obj)) return pfail(p, "capture: must be an object");
  for (const cJSON *v = obj->child; v; v = v->next) {
    const char *k = v->string;
    snprintf(path, sizeof path, "capture.%s", sy__config_shown(k, sb));
    if (dup_key(obj, v)) return pfail(p, "%s: duplicate key", path);
    int handled, rc;
    if ((rc = num_field(p, cc, capture_specs, SY__N_OF(capture_specs), v, path, &handled)) != 0)
      return rc;
    if (handled) continue;
    if (strcmp(k, "enabled") == 0) {
      rc = need_bool(p, v, path, &cc->enabled);
    } else if (strcmp(k, "keep_images") == 0) {
      rc = need_bool(p, v, path, &cc->keep_images);
    } else if (strcmp(k, "durability") == 0) {
      if ((rc = need_string(p, v, path)) == 0 &&
          sy__config_parse_durability(v->valuestring, &cc->durability) != 0)
        rc = pfail(p, "%s: %s", path, SY__CONF_DURABILITY_RULE);
    } else if (strcmp(k, "retention") == 0) {
      rc = parse_retention(p, v);
    } else if (strcmp(k, "pii_patterns") == 0) {
      rc = parse_pii_patterns(p, v);
    } else {
      rc = pfail(p, "%s: unknown key", path);
    }
    if (rc != 0) return rc;
  }
  return 0;
}

static int parse_root_key(pctx *p, const cJSON *v) {
  sy_config *c = p->c;
  const char *k = v->string;
  uint64_t x;
  int rc;
  if (strcmp(k, "listen") == 0) {
    if ((rc = need_string(p, v, k)) != 0) return rc;
    return sy__config_parse_listen(v->valuestring, &c->listen_host, &c->listen_port, k, p->err,
                                   p->errlen);
  }
  if (strcmp(k, "workers") == 0) {
    if ((rc = need_uint(p, v, k, 0, SY_MAX_WORKERS, &x)) == 0) c->workers = (uint32_t)x;
    return rc;
  }
  if (strcmp(k, "data_dir") == 0) {
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if ((rc = sy__config_check_path(v->valuestring, k, p->err, p->errlen)) != 0) return rc;
    return sy__config_set_str(&c->data_dir, v->valuestring) == 0 ? 0 : pnomem(p);
  }
  if (strcmp(k, "log_level") == 0) {
    sy_log_level lvl;
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if (sy_log_parse_level(v->valuestring, &lvl) != 0)
      return pfail(p, "%s: %s", k, SY__CONF_LEVEL_RULE);
    return sy__config_set_str(&c->log_level, v->valuestring) == 0 ? 0 : pnomem(p);
  }
  if (strcmp(k, "auth") == 0) return need_bool(p, v, k, &c->auth);
  if (strcmp(k, "default_upstream") == 0) {
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if (!valid_name(v->valuestring)) return pfail(p, "%s: %s", k, NAME_RULE);
    return sy__config_set_str(&c->default_upstream_name, v->valuestring) == 0 ? 0 : pnomem(p);
  }
  if (strcmp(k, "upstreams") == 0) return parse_upstreams(p, v);
  if (strcmp(k, "client_keys") == 0) return parse_client_keys(p, v);
  if (strcmp(k, "limits") == 0) return parse_limits(p, v);
  if (strcmp(k, "capture") == 0) return parse_capture(p, v);
  if (strcmp(k, "grpc") == 0) return sy__config_parse_grpc(c, v, p->err, p->errlen);
  if (strcmp(k, "routes") == 0) {
    if (!cJSON_IsArray(v)) return pfail(p, "routes: must be an array");
    char *text = cJSON_PrintUnformatted(v);
    if (!text) return pnomem(p);
    free(c->routes_json);
    c->routes_json = text;
    return 0;
  }
  char sb[SY__CONF_SHOWN + 4];
  return pfail(p, "%s: unknown key", sy__config_shown(k, sb));
}

static void line_col(const char *s, size_t pos, size_t *line, size_t *col) {
  size_t l = 1, start = 0;
  for (size_t i = 0; i < pos; i++)
    if (s[i] == '\n') {
      l++;
      start = i + 1;
    }
  *line = l;
  *col = pos - start + 1;
}

/* What cJSON would accept but a config must not hold, found before parsing:
 * NUL bytes (raw, or as a \u0000 escape that would cut a C string short)
 * and nesting past SY__CONF_MAX_DEPTH (cJSON itself recurses up to 1000 deep).
 * Returns the offending offset, or len when the text is clean; *what says why. */
static size_t prescan(const char *s, size_t len, const char **what) {
  int in_str = 0;
  size_t depth = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '\0') {
      *what = "NUL byte";
      return i;
    }
    if (in_str) {
      if (ch == '\\' && i + 1 < len) {
        if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0) {
          *what = "\\u0000 escape";
          return i;
        }
        i++;  /* skip the escaped character */
      } else if (ch == '"') {
        in_str = 0;
      }
    } else if (ch == '"') {
      in_str = 1;
    } else if (ch == '{' || ch == '[') {
      if (++depth > SY__CONF_MAX_DEPTH) {
        *what = "nesting deeper than 64 levels";
        return i;
      }
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      depth--;
    }
  }
  return len;
}

static int is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

int sy_config_parse(sy_config *c, const char *json, size_t len, char *err, size_t errlen) {
  size_t line, col, pos = 0;
  if (len > SY_CONFIG_MAX_FILE_BYTES)
    return sy__config_fail(err, errlen, "(root): larger than %u bytes", SY_CONFIG_MAX_FILE_BYTES);
  if (!json) len = 0;
  while (pos < len && is_ws(json[pos])) pos++;
  if (pos == len) return sy__config_fail(err, errlen, "(root): empty, expected a JSON object");
  const char *what = NULL;
  if ((pos = prescan(json, len, &what)) < len) {
    line_col(json, pos, &line, &col);
    return sy__config_fail(err, errlen, "(root): %s at line %zu, column %zu", what, line, col);
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    /* return_parse_end marks the error too, and unlike cJSON_GetErrorPtr()
     * it is not a global shared with other threads. */
    pos = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
    line_col(json, pos, &line, &col);
    return sy__config_fail(
        err, errlen, "(root): invalid JSON near line %zu, column %zu (offset %zu)", line, col, pos);
  }
  int rc;
  pos = (size_t)(end - json);
  while (pos < len && is_ws(json[pos])) pos++;
  if (pos < len) {
    line_col(json, pos, &line, &col);
    rc = sy__config_fail(err, errlen,
                         "(root): unexpected text after the JSON value at line %zu, column %zu",
                         line, col);
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    rc = sy__config_fail(err, errlen, "(root): must be a JSON object");
    goto out;
  }
  pctx p = {c, err, errlen};
  rc = 0;
  for (const cJSON *v = root->child; v && rc == 0; v = v->next) {
    char sb[SY__CONF_SHOWN + 4];
    if (dup_key(root, v))
      rc = sy__config_fail(err, errlen, "%s: duplicate key", sy__config_shown(v->string, sb));
    else
      rc = parse_root_key(&p, v);
  }
out:
  cJSON_Delete(root);
  return rc;
}

int sy_config_load_file(sy_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) return sy__config_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  sy_buf b;
  sy_buf_init(&b, SY_CONFIG_MAX_FILE_BYTES);
  char chunk[16384];
  size_t n;
  int rc = 0;
  while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = sy_buf_append(&b, chunk, n);
  if (rc == SY_ETOOBIG)
    rc = sy__config_fail(err, errlen, "%s: larger than %u bytes", path, SY_CONFIG_MAX_FILE_BYTES);
  else if (rc != 0)
    rc = sy__config_fail_nomem(err, errlen);
  else if (ferror(f))
    rc = sy__config_fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
  fclose(f);
  if (rc == 0) {
    char msg[512];
    rc = sy_config_parse(c, b.data ? b.data : "", b.len, msg, sizeof msg);
    if (rc != 0) sy__config_fail(err, errlen, "%s: %s", path, msg);
  }
  sy_buf_free(&b);
  return rc;
}

/* ---- defaults, flags, final checks ------------------------------------- */

void sy_config_init(sy_config *c) {
  memset(c, 0, sizeof *c);
  /* An allocation failure here leaves a field NULL; sy_config_finish()
   * fills it again and reports SY_ENOMEM, so init itself cannot fail. */
  c->listen_host = strdup(SY_DEFAULT_LISTEN_HOST);
  c->listen_port = SY_DEFAULT_LISTEN_PORT;
  c->data_dir = strdup(SY_DEFAULT_DATA_DIR);
  c->log_level = strdup("info");
  c->auth = 1;
  for (size_t i = 0; i < sy__config_n_limit_specs; i++)
    sy__config_spec_set(&c->limits, &sy__config_limit_specs[i], sy__config_limit_specs[i].def);
  c->capture.enabled = 1;
  c->capture.durability = SY_CAPTURE_SYNC;
  for (size_t i = 0; i < SY__N_OF(capture_specs); i++)
    sy__config_spec_set(&c->capture, &capture_specs[i], capture_specs[i].def);
  for (size_t i = 0; i < SY__N_OF(retention_specs); i++)
    sy__config_spec_set(&c->capture, &retention_specs[i], retention_specs[i].def);
  sy__config_grpc_defaults(&c->grpc);
}

void sy_config_free(sy_config *c) {
  upstreams_clear(c);
  client_keys_clear(c);
  pii_patterns_clear(&c->capture);
  sy__config_grpc_free(&c->grpc);
  free(c->listen_host);
  free(c->data_dir);
  free(c->log_level);
  free(c->routes_json);
  free(c->default_upstream_name);
  memset(c, 0, sizeof *c);
}

/* OpenSSL 3 looks the algorithm up (a locked fetch) on every EVP_sha256()
 * digest; fetched once here, it is shared by every thread (EVP_MD is
 * immutable) and stays reachable until exit. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void sy_hash_key(const char *key, size_t len, unsigned char out[32]) {
  unsigned int n = 0;
  pthread_once(&sha256_once, sha256_fetch);
  /* No error path in the signature, and a wrong digest would silently deny
   * or admit clients, so a failing libcrypto is fatal. */
  if (!sha256_md || EVP_Digest(key, len, out, &n, sha256_md, NULL) != 1 || n != 32) {
    sy_error("config: SHA-256 failed in libcrypto");
    abort();
  }
}

void sy_hash_key_hex(const char *key, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char d[32];
  sy_hash_key(key, len, d);
  for (size_t i = 0; i < 32; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = '\0';
}
