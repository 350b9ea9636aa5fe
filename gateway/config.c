/* switchyard configuration: a JSON file, then flags on top. See config.h. */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

/* Limits on what a config may hold beyond those in config.h. */
#define CONF_MAX_DEPTH 64      /* JSON nesting; routes need far fewer levels */
#define CONF_MAX_NAME 63
#define CONF_MAX_URL 2048
#define CONF_MAX_PATH 4095
#define CONF_MAX_ENV_NAME 255
#define CONF_MAX_LISTEN 300
#define CONF_SHOWN 64          /* bytes of user text echoed in a message */

static const char NAME_RULE[] = "must be 1 to 63 characters from A-Z a-z 0-9 _ . -";
static const char LEVEL_RULE[] = "must be one of debug, info, warn, error";

/* One numeric setting: its JSON key, its flag, its range and default, and
 * where it lives. One table feeds the file parser, the flags and --help, so
 * the three never disagree on a range. */
typedef struct num_spec {
  const char *key;
  const char *flag;
  uint64_t lo, hi, def;
  size_t off;      /* offsetof in sy_limits or sy_upstream_conf */
  int is_size;     /* size_t field, else uint32_t */
  const char *help;
} num_spec;

static const num_spec up_specs[] = {
    {"connect_timeout_ms", "--upstream-connect-timeout-ms", 1, 300000,
     SY_DEFAULT_CONNECT_TIMEOUT_MS, offsetof(sy_upstream_conf, connect_timeout_ms), 0,
     "default upstream: TCP+TLS connect timeout"},
    {"timeout_ms", "--upstream-timeout-ms", 1, 86400000, SY_DEFAULT_UPSTREAM_TIMEOUT_MS,
     offsetof(sy_upstream_conf, timeout_ms), 0,
     "default upstream: whole-request timeout, streams included"},
    {"max_connections", "--upstream-max-connections", 1, 65536,
     SY_DEFAULT_UPSTREAM_MAX_CONNS, offsetof(sy_upstream_conf, max_connections), 0,
     "default upstream: connections across all workers"},
};

static const num_spec limit_specs[] = {
    {"max_header_bytes", "--max-header-bytes", 1024, 1048576, SY_DEFAULT_MAX_HEADER_BYTES,
     offsetof(sy_limits, max_header_bytes), 1, "request headers larger get 431"},
    {"max_body_bytes", "--max-body-bytes", 1024, 1073741824, SY_DEFAULT_MAX_BODY_BYTES,
     offsetof(sy_limits, max_body_bytes), 1, "request bodies larger get 413"},
    {"max_connections", "--max-connections", 1, 1000000, SY_DEFAULT_MAX_CONNECTIONS,
     offsetof(sy_limits, max_connections), 0, "client connections per process"},
    {"idle_timeout_ms", "--idle-timeout-ms", 100, 3600000, SY_DEFAULT_IDLE_TIMEOUT_MS,
     offsetof(sy_limits, idle_timeout_ms), 0, "keep-alive connection with no request"},
    {"header_timeout_ms", "--header-timeout-ms", 100, 600000, SY_DEFAULT_HEADER_TIMEOUT_MS,
     offsetof(sy_limits, header_timeout_ms), 0, "first byte to end of headers"},
    {"body_timeout_ms", "--body-timeout-ms", 100, 3600000, SY_DEFAULT_BODY_TIMEOUT_MS,
     offsetof(sy_limits, body_timeout_ms), 0, "end of headers to end of body"},
    {"drain_timeout_ms", "--drain-timeout-ms", 0, 600000, SY_DEFAULT_DRAIN_TIMEOUT_MS,
     offsetof(sy_limits, drain_timeout_ms), 0, "on SIGTERM, time for in-flight requests"},
};

#define N_UP_SPECS (sizeof up_specs / sizeof up_specs[0])
#define N_LIMIT_SPECS (sizeof limit_specs / sizeof limit_specs[0])

static const uint64_t WORKERS_HI = SY_MAX_WORKERS;

static void spec_set(void *base, const num_spec *s, uint64_t v) {
  char *p = (char *)base + s->off;
  if (s->is_size) {
    size_t x = (size_t)v;
    memcpy(p, &x, sizeof x);
  } else {
    uint32_t x = (uint32_t)v;
    memcpy(p, &x, sizeof x);
  }
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return SY_ECONFIG;
}

static int fail_nomem(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "out of memory");
  return SY_ENOMEM;
}

/* User text echoed in a message: bounded, and control bytes made visible,
 * so a hostile key cannot forge extra log lines. */
static const char *shown(const char *s, char buf[CONF_SHOWN + 4]) {
  size_t i = 0;
  for (; i < CONF_SHOWN && s[i]; i++) {
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

static void secret_free(char **s) {
  if (*s) {
    OPENSSL_cleanse(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

/* Replaces *dst with a copy of src (NULL clears it). 0 or SY_ENOMEM. */
static int set_str(char **dst, const char *src) {
  char *copy = NULL;
  if (src && !(copy = strdup(src))) return SY_ENOMEM;
  free(*dst);
  *dst = copy;
  return 0;
}

static void upstream_defaults(sy_upstream_conf *u) {
  memset(u, 0, sizeof *u);
  for (size_t i = 0; i < N_UP_SPECS; i++) spec_set(u, &up_specs[i], up_specs[i].def);
}

static void upstream_free(sy_upstream_conf *u) {
  free(u->name);
  free(u->base_url);
  free(u->api_key_env);
  secret_free(&u->api_key);
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

/* ---- value checks shared by the file and the flags ---------------------- */

static int parse_uint_text(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  uint64_t v = 0;
  if (!*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
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

/* 1..max bytes from [A-Za-z0-9_] plus `extra`; digits may not lead when
 * !digit_first (environment variable names). */
static int valid_chars(const char *s, size_t max, const char *extra, int digit_first) {
  size_t n = strlen(s);
  if (n == 0 || n > max || (!digit_first && s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || strchr(extra, ch)))
      return 0;
  }
  return 1;
}

static int valid_name(const char *s) { return valid_chars(s, CONF_MAX_NAME, ".-", 1); }
static int valid_env_name(const char *s) { return valid_chars(s, CONF_MAX_ENV_NAME, "", 0); }

static int has_ctl(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
  return 0;
}

static int check_path(const char *s, const char *what, char *err, size_t errlen) {
  if (!*s || strlen(s) > CONF_MAX_PATH)
    return fail(err, errlen, "%s: must be a path of 1 to %d bytes", what, CONF_MAX_PATH);
  if (has_ctl(s)) return fail(err, errlen, "%s: must not contain control characters", what);
  return 0;
}

/* "HOST:PORT", "[V6]:PORT" or "localhost:PORT" into host (brackets dropped)
 * and port. Only numeric addresses: the listener binds without a resolver. */
static int parse_listen(const char *s, char **host, uint16_t *port, const char *what,
                        char *err, size_t errlen) {
  char h[CONF_MAX_LISTEN + 1];
  const char *colon;
  size_t hlen = strlen(s);
  if (hlen > CONF_MAX_LISTEN)
    return fail(err, errlen, "%s: longer than %d bytes", what, CONF_MAX_LISTEN);
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return fail(err, errlen, "%s: expected [IPV6]:PORT, e.g. [::1]:8080", what);
    hlen = (size_t)(close - s - 1);
    memcpy(h, s + 1, hlen);
    h[hlen] = '\0';
    colon = close + 1;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) != 1)
      return fail(err, errlen, "%s: \"%s\" is not an IPv6 address", what, h);
  } else {
    colon = strrchr(s, ':');
    if (!colon || colon == s) return fail(err, errlen, "%s: expected HOST:PORT", what);
    hlen = (size_t)(colon - s);
    memcpy(h, s, hlen);
    h[hlen] = '\0';
    struct in_addr a4;
    if (memchr(h, ':', hlen))
      return fail(err, errlen, "%s: an IPv6 host goes in brackets, e.g. [::1]:8080", what);
    if (strcmp(h, "localhost") == 0) {
      memcpy(h, "127.0.0.1", sizeof "127.0.0.1");
    } else if (inet_pton(AF_INET, h, &a4) != 1) {
      char sb[CONF_SHOWN + 4];
      return fail(err, errlen,
                  "%s: host \"%s\" must be an IPv4 address, localhost or [IPv6 address]", what,
                  shown(h, sb));
    }
  }
  uint64_t p;
  if (strlen(colon + 1) > 5 || parse_uint_text(colon + 1, 0, 65535, &p) != 0)
    return fail(err, errlen, "%s: port must be a number between 0 and 65535", what);
  if (set_str(host, h) != 0) return fail_nomem(err, errlen);
  *port = (uint16_t)p;
  return 0;
}

static int starts_with_ci(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int set_base_url(sy_upstream_conf *u, const char *s, const char *what, char *err,
                        size_t errlen) {
  size_t n = strlen(s);
  size_t scheme;
  if (starts_with_ci(s, "https://"))
    scheme = 8;
  else if (starts_with_ci(s, "http://"))
    scheme = 7;
  else
    return fail(err, errlen, "%s: must start with http:// or https://", what);
  if (n > CONF_MAX_URL)
    return fail(err, errlen, "%s: longer than %d bytes", what, CONF_MAX_URL);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch == 0x7f)
      return fail(err, errlen, "%s: must not contain spaces or control characters", what);
    if (ch == '?' || ch == '#')
      return fail(err, errlen, "%s: must not contain a query or fragment", what);
  }
  if (s[scheme] == '\0' || s[scheme] == '/')
    return fail(err, errlen, "%s: missing host after the scheme", what);
  /* Paths are appended as "/chat/completions", so keep no trailing slash. */
  while (n > scheme + 1 && s[n - 1] == '/') n--;
  char *copy = strndup(s, n);
  if (!copy) return fail_nomem(err, errlen);
  free(u->base_url);
  u->base_url = copy;
  u->https = (scheme == 8);
  return 0;
}

static int set_env_name(char **dst, const char *s, const char *what, char *err,
                        size_t errlen) {
  if (!valid_env_name(s))
    return fail(err, errlen,
                "%s: must be an environment variable name (A-Z a-z 0-9 _, 1 to %d "
                "characters, not starting with a digit)",
                what, CONF_MAX_ENV_NAME);
  return set_str(dst, s) == 0 ? 0 : fail_nomem(err, errlen);
}

/* ---- the file ------------------------------------------------------------ */

typedef struct pctx {
  sy_config *c;
  char *err;
  size_t errlen;
} pctx;

/* A key appearing twice in one object: cJSON keeps both, and the later one
 * would silently lose, so it is an error. */
static int dup_key(const cJSON *obj, const cJSON *item) {
  return cJSON_GetObjectItemCaseSensitive(obj, item->string) != item;
}

static int need_string(pctx *p, const cJSON *v, const char *path) {
  if (!cJSON_IsString(v) || !v->valuestring)
    return fail(p->err, p->errlen, "%s: must be a string", path);
  return 0;
}

static int need_uint(pctx *p, const cJSON *v, const char *path, uint64_t lo, uint64_t hi,
                     uint64_t *out) {
  if (json_uint(v, lo, hi, out) != 0)
    return fail(p->err, p->errlen, "%s: must be an integer between %llu and %llu", path,
                (unsigned long long)lo, (unsigned long long)hi);
  return 0;
}

static int num_field(pctx *p, void *base, const num_spec *specs, size_t n, const cJSON *v,
                     const char *path, int *handled) {
  *handled = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v->string, specs[i].key) != 0) continue;
    uint64_t x;
    *handled = 1;
    int rc = need_uint(p, v, path, specs[i].lo, specs[i].hi, &x);
    if (rc == 0) spec_set(base, &specs[i], x);
    return rc;
  }
  return 0;
}

static int parse_upstream(pctx *p, const cJSON *obj, size_t idx) {
  sy_upstream_conf *u = &p->c->upstreams[idx];
  char path[160], sb[CONF_SHOWN + 4];
  int rc;
  if (!cJSON_IsObject(obj))
    return fail(p->err, p->errlen, "upstreams[%zu]: must be an object", idx);
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "upstreams[%zu].%s", idx, shown(v->string, sb));
    if (dup_key(obj, v)) return fail(p->err, p->errlen, "%s: duplicate key", path);
    int handled;
    if ((rc = num_field(p, u, up_specs, N_UP_SPECS, v, path, &handled)) != 0) return rc;
    if (handled) continue;
    if (strcmp(v->string, "name") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if (!valid_name(v->valuestring)) return fail(p->err, p->errlen, "%s: %s", path, NAME_RULE);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(p->c->upstreams[j].name, v->valuestring) == 0)
          return fail(p->err, p->errlen, "%s: duplicate name \"%s\"", path, v->valuestring);
      if (set_str(&u->name, v->valuestring) != 0) return fail_nomem(p->err, p->errlen);
    } else if (strcmp(v->string, "base_url") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if ((rc = set_base_url(u, v->valuestring, path, p->err, p->errlen)) != 0) return rc;
    } else if (strcmp(v->string, "api_key_env") == 0) {
      if (cJSON_IsNull(v)) {
        free(u->api_key_env);
        u->api_key_env = NULL;
        continue;
      }
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if ((rc = set_env_name(&u->api_key_env, v->valuestring, path, p->err, p->errlen)) != 0)
        return rc;
    } else {
      return fail(p->err, p->errlen, "%s: unknown key", path);
    }
  }
  if (!u->name) return fail(p->err, p->errlen, "upstreams[%zu].name: required", idx);
  if (!u->base_url) return fail(p->err, p->errlen, "upstreams[%zu].base_url: required", idx);
  return 0;
}

/* The new list replaces the old one. Entries are installed as they are
 * parsed (count included), so on failure sy_config_free() still frees all. */
static int parse_upstreams(pctx *p, const cJSON *arr) {
  if (!cJSON_IsArray(arr)) return fail(p->err, p->errlen, "upstreams: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY_MAX_UPSTREAMS)
    return fail(p->err, p->errlen, "upstreams: at most %d upstreams are allowed (got %zu)",
                SY_MAX_UPSTREAMS, n);
  upstreams_clear(p->c);
  if (n == 0) return 0;
  if (!(p->c->upstreams = calloc(n, sizeof *p->c->upstreams)))
    return fail_nomem(p->err, p->errlen);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    upstream_defaults(&p->c->upstreams[i]);
    p->c->n_upstreams = i + 1;
    int rc = parse_upstream(p, v, i);
    if (rc != 0) return rc;
  }
  return 0;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static int parse_client_key(pctx *p, const cJSON *obj, size_t idx) {
  sy_client_key *k = &p->c->client_keys[idx];
  char path[160], sb[CONF_SHOWN + 4];
  int rc, have_hash = 0;
  if (!cJSON_IsObject(obj))
    return fail(p->err, p->errlen, "client_keys[%zu]: must be an object", idx);
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "client_keys[%zu].%s", idx, shown(v->string, sb));
    if (dup_key(obj, v)) return fail(p->err, p->errlen, "%s: duplicate key", path);
    if (strcmp(v->string, "name") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      if (!valid_name(v->valuestring)) return fail(p->err, p->errlen, "%s: %s", path, NAME_RULE);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(p->c->client_keys[j].name, v->valuestring) == 0)
          return fail(p->err, p->errlen, "%s: duplicate name \"%s\"", path, v->valuestring);
      if (set_str(&k->name, v->valuestring) != 0) return fail_nomem(p->err, p->errlen);
    } else if (strcmp(v->string, "sha256") == 0) {
      if ((rc = need_string(p, v, path)) != 0) return rc;
      const char *h = v->valuestring;
      if (strlen(h) != 64) return fail(p->err, p->errlen, "%s: must be 64 hex characters", path);
      for (size_t j = 0; j < 32; j++) {
        int hi = hexval(h[2 * j]), lo = hexval(h[2 * j + 1]);
        if (hi < 0 || lo < 0)
          return fail(p->err, p->errlen, "%s: must be 64 hex characters", path);
        k->sha256[j] = (unsigned char)(hi << 4 | lo);
      }
      have_hash = 1;
    } else {
      return fail(p->err, p->errlen, "%s: unknown key", path);
    }
  }
  if (!k->name) return fail(p->err, p->errlen, "client_keys[%zu].name: required", idx);
  if (!have_hash) return fail(p->err, p->errlen, "client_keys[%zu].sha256: required", idx);
  for (size_t j = 0; j < idx; j++)
    if (memcmp(p->c->client_keys[j].sha256, k->sha256, 32) == 0)
      return fail(p->err, p->errlen, "client_keys[%zu].sha256: same key as client_keys[%zu]",
                  idx, j);
  return 0;
}

static int parse_client_keys(pctx *p, const cJSON *arr) {
  if (!cJSON_IsArray(arr)) return fail(p->err, p->errlen, "client_keys: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY_MAX_CLIENT_KEYS)
    return fail(p->err, p->errlen, "client_keys: at most %d keys are allowed (got %zu)",
                SY_MAX_CLIENT_KEYS, n);
  client_keys_clear(p->c);
  if (n == 0) return 0;
  if (!(p->c->client_keys = calloc(n, sizeof *p->c->client_keys)))
    return fail_nomem(p->err, p->errlen);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    p->c->n_client_keys = i + 1;
    int rc = parse_client_key(p, v, i);
    if (rc != 0) return rc;
  }
  return 0;
}

static int parse_limits(pctx *p, const cJSON *obj) {
  char path[160], sb[CONF_SHOWN + 4];
  if (!cJSON_IsObject(obj)) return fail(p->err, p->errlen, "limits: must be an object");
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "limits.%s", shown(v->string, sb));
    if (dup_key(obj, v)) return fail(p->err, p->errlen, "%s: duplicate key", path);
    int handled, rc;
    if ((rc = num_field(p, &p->c->limits, limit_specs, N_LIMIT_SPECS, v, path, &handled)) != 0)
      return rc;
    if (!handled) return fail(p->err, p->errlen, "%s: unknown key", path);
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
    return parse_listen(v->valuestring, &c->listen_host, &c->listen_port, k, p->err, p->errlen);
  }
  if (strcmp(k, "workers") == 0) {
    if ((rc = need_uint(p, v, k, 0, WORKERS_HI, &x)) == 0) c->workers = (uint32_t)x;
    return rc;
  }
  if (strcmp(k, "data_dir") == 0) {
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if ((rc = check_path(v->valuestring, k, p->err, p->errlen)) != 0) return rc;
    return set_str(&c->data_dir, v->valuestring) == 0 ? 0 : fail_nomem(p->err, p->errlen);
  }
  if (strcmp(k, "log_level") == 0) {
    sy_log_level lvl;
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if (sy_log_parse_level(v->valuestring, &lvl) != 0)
      return fail(p->err, p->errlen, "%s: %s", k, LEVEL_RULE);
    return set_str(&c->log_level, v->valuestring) == 0 ? 0 : fail_nomem(p->err, p->errlen);
  }
  if (strcmp(k, "auth") == 0) {
    if (!cJSON_IsBool(v)) return fail(p->err, p->errlen, "auth: must be true or false");
    c->auth = cJSON_IsTrue(v);
    return 0;
  }
  if (strcmp(k, "default_upstream") == 0) {
    if ((rc = need_string(p, v, k)) != 0) return rc;
    if (!valid_name(v->valuestring)) return fail(p->err, p->errlen, "%s: %s", k, NAME_RULE);
    return set_str(&c->default_upstream_name, v->valuestring) == 0
               ? 0
               : fail_nomem(p->err, p->errlen);
  }
  if (strcmp(k, "upstreams") == 0) return parse_upstreams(p, v);
  if (strcmp(k, "client_keys") == 0) return parse_client_keys(p, v);
  if (strcmp(k, "limits") == 0) return parse_limits(p, v);
  if (strcmp(k, "routes") == 0) {
    if (!cJSON_IsArray(v)) return fail(p->err, p->errlen, "routes: must be an array");
    char *text = cJSON_PrintUnformatted(v);
    if (!text) return fail_nomem(p->err, p->errlen);
    free(c->routes_json);
    c->routes_json = text;
    return 0;
  }
  char sb[CONF_SHOWN + 4];
  return fail(p->err, p->errlen, "%s: unknown key", shown(k, sb));
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
 * and nesting past CONF_MAX_DEPTH (cJSON itself recurses up to 1000 deep).
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
      if (++depth > CONF_MAX_DEPTH) {
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
    return fail(err, errlen, "(root): larger than %u bytes", SY_CONFIG_MAX_FILE_BYTES);
  if (!json) len = 0;
  while (pos < len && is_ws(json[pos])) pos++;
  if (pos == len) return fail(err, errlen, "(root): empty, expected a JSON object");
  const char *what = NULL;
  if ((pos = prescan(json, len, &what)) < len) {
    line_col(json, pos, &line, &col);
    return fail(err, errlen, "(root): %s at line %zu, column %zu", what, line, col);
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    /* return_parse_end marks the error too, and unlike cJSON_GetErrorPtr()
     * it is not a global shared with other threads. */
    pos = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
    line_col(json, pos, &line, &col);
    return fail(err, errlen, "(root): invalid JSON near line %zu, column %zu (offset %zu)",
                line, col, pos);
  }
  int rc;
  pos = (size_t)(end - json);
  while (pos < len && is_ws(json[pos])) pos++;
  if (pos < len) {
    line_col(json, pos, &line, &col);
    rc = fail(err, errlen, "(root): unexpected text after the JSON value at line %zu, column %zu",
              line, col);
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    rc = fail(err, errlen, "(root): must be a JSON object");
    goto out;
  }
  pctx p = {c, err, errlen};
  rc = 0;
  for (const cJSON *v = root->child; v && rc == 0; v = v->next) {
    char sb[CONF_SHOWN + 4];
    if (dup_key(root, v))
      rc = fail(err, errlen, "%s: duplicate key", shown(v->string, sb));
    else
      rc = parse_root_key(&p, v);
  }
out:
  cJSON_Delete(root);
  return rc;
}

int sy_config_load_file(sy_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  sy_buf b;
  sy_buf_init(&b, SY_CONFIG_MAX_FILE_BYTES);
  char chunk[16384];
  size_t n;
  int rc = 0;
  while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = sy_buf_append(&b, chunk, n);
  if (rc == SY_ETOOBIG)
    rc = fail(err, errlen, "%s: larger than %u bytes", path, SY_CONFIG_MAX_FILE_BYTES);
  else if (rc != 0)
    rc = fail_nomem(err, errlen);
  else if (ferror(f))
    rc = fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
  fclose(f);
  if (rc == 0) {
    char msg[512];
    rc = sy_config_parse(c, b.data ? b.data : "", b.len, msg, sizeof msg);
    if (rc != 0) fail(err, errlen, "%s: %s", path, msg);
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
  for (size_t i = 0; i < N_LIMIT_SPECS; i++)
    spec_set(&c->limits, &limit_specs[i], limit_specs[i].def);
}

void sy_config_free(sy_config *c) {
  upstreams_clear(c);
  client_keys_clear(c);
  free(c->listen_host);
  free(c->data_dir);
  free(c->log_level);
  free(c->routes_json);
  free(c->default_upstream_name);
  memset(c, 0, sizeof *c);
}

const sy_upstream_conf *sy_config_upstream(const sy_config *c, const char *name) {
  for (size_t i = 0; i < c->n_upstreams; i++)
    if (strcmp(c->upstreams[i].name, name) == 0) return &c->upstreams[i];
  return NULL;
}

enum flag_kind {
  F_CONFIG, F_LISTEN, F_WORKERS, F_DATA_DIR, F_LOG_LEVEL, F_NO_AUTH,
  F_UP_URL, F_UP_KEY_ENV, F_UP_NUM, F_LIMIT, F_HELP,
};

static const struct {
  const char *name;
  enum flag_kind kind;
} flag_names[] = {
    {"--config", F_CONFIG},         {"--listen", F_LISTEN},
    {"--workers", F_WORKERS},       {"--data-dir", F_DATA_DIR},
    {"--log-level", F_LOG_LEVEL},   {"--no-auth", F_NO_AUTH},
    {"--upstream-url", F_UP_URL},   {"--upstream-key-env", F_UP_KEY_ENV},
    {"--help", F_HELP},             {"-h", F_HELP},
};

typedef struct flag_arg {
  enum flag_kind kind;
  const num_spec *spec;  /* F_UP_NUM, F_LIMIT */
  const char *name;      /* as typed, up to name_len */
  int name_len;
  const char *value;     /* NULL for flags without one */
} flag_arg;

static int lookup_flag(const char *name, size_t n, flag_arg *f) {
  for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++)
    if (strlen(flag_names[i].name) == n && memcmp(flag_names[i].name, name, n) == 0) {
      f->kind = flag_names[i].kind;
      return 0;
    }
  static const num_spec *const tables[] = {up_specs, limit_specs};
  static const size_t counts[] = {N_UP_SPECS, N_LIMIT_SPECS};
  for (size_t t = 0; t < 2; t++)
    for (size_t i = 0; i < counts[t]; i++)
      if (strlen(tables[t][i].flag) == n && memcmp(tables[t][i].flag, name, n) == 0) {
        f->kind = t == 0 ? F_UP_NUM : F_LIMIT;
        f->spec = &tables[t][i];
        return 0;
      }
  return -1;
}

/* Reads the flag at argv[*i] (and its value, advancing *i past it). */
static int next_flag(int argc, char **argv, int *i, flag_arg *f, char *err, size_t errlen) {
  const char *a = argv[*i];
  char sb[CONF_SHOWN + 4];
  memset(f, 0, sizeof *f);
  if (a[0] != '-')
    return fail(err, errlen, "unexpected argument \"%s\" (options start with --)", shown(a, sb));
  const char *eq = strchr(a, '=');
  size_t n = eq ? (size_t)(eq - a) : strlen(a);
  f->name = a;
  f->name_len = n > CONF_SHOWN ? CONF_SHOWN : (int)n;
  if (lookup_flag(a, n, f) != 0)
    return fail(err, errlen, "%.*s: unknown option (see --help)", f->name_len, a);
  int wants_value = f->kind != F_NO_AUTH && f->kind != F_HELP;
  if (!wants_value) {
    if (eq) return fail(err, errlen, "%.*s: takes no value", f->name_len, a);
    return 0;
  }
  if (eq) {
    f->value = eq + 1;
  } else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
    f->value = argv[++*i];
  } else {
    return fail(err, errlen, "%.*s: missing value", f->name_len, a);
  }
  return 0;
}

/* The upstream the --upstream-* flags change: the one "default_upstream"
 * names, else the first; with none yet, a new one called "default". */
static sy_upstream_conf *flag_upstream(sy_config *c) {
  if (c->n_upstreams == 0) {
    sy_upstream_conf *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    upstream_defaults(u);
    if (!(u->name = strdup("default"))) {
      free(u);
      return NULL;
    }
    free(c->upstreams);
    c->upstreams = u;
    c->n_upstreams = 1;
    return u;
  }
  if (c->default_upstream_name)
    for (size_t i = 0; i < c->n_upstreams; i++)
      if (strcmp(c->upstreams[i].name, c->default_upstream_name) == 0) return &c->upstreams[i];
  return &c->upstreams[0];
}

static int apply_flag(sy_config *c, const flag_arg *f, char *err, size_t errlen) {
  char what[CONF_SHOWN + 1], sb[CONF_SHOWN + 4];
  snprintf(what, sizeof what, "%.*s", f->name_len, f->name);
  const char *v = f->value;
  uint64_t x;
  sy_log_level lvl;
  sy_upstream_conf *u;
  switch (f->kind) {
    case F_CONFIG:
    case F_HELP:
      return 0;  /* handled before the others */
    case F_LISTEN:
      return parse_listen(v, &c->listen_host, &c->listen_port, what, err, errlen);
    case F_WORKERS:
      if (parse_uint_text(v, 0, WORKERS_HI, &x) != 0)
        return fail(err, errlen, "%s: expected an integer between 0 and %llu, got \"%s\"", what,
                    (unsigned long long)WORKERS_HI, shown(v, sb));
      c->workers = (uint32_t)x;
      return 0;
    case F_DATA_DIR: {
      int rc = check_path(v, what, err, errlen);
      if (rc != 0) return rc;
      return set_str(&c->data_dir, v) == 0 ? 0 : fail_nomem(err, errlen);
    }
    case F_LOG_LEVEL:
      if (sy_log_parse_level(v, &lvl) != 0) return fail(err, errlen, "%s: %s", what, LEVEL_RULE);
      return set_str(&c->log_level, v) == 0 ? 0 : fail_nomem(err, errlen);
    case F_NO_AUTH:
      c->auth = 0;
      return 0;
    case F_UP_URL:
      if (!(u = flag_upstream(c))) return fail_nomem(err, errlen);
      return set_base_url(u, v, what, err, errlen);
    case F_UP_KEY_ENV:
      if (!(u = flag_upstream(c))) return fail_nomem(err, errlen);
      return set_env_name(&u->api_key_env, v, what, err, errlen);
    case F_UP_NUM:
    case F_LIMIT:
      if (parse_uint_text(v, f->spec->lo, f->spec->hi, &x) != 0)
        return fail(err, errlen, "%s: expected an integer between %llu and %llu, got \"%s\"",
                    what, (unsigned long long)f->spec->lo, (unsigned long long)f->spec->hi,
                    shown(v, sb));
      if (f->kind == F_LIMIT) {
        spec_set(&c->limits, f->spec, x);
        return 0;
      }
      if (!(u = flag_upstream(c))) return fail_nomem(err, errlen);
      spec_set(u, f->spec, x);
      return 0;
  }
  return fail(err, errlen, "%s: not handled", what);  /* unreachable: kinds are closed */
}

int sy_config_apply_args(sy_config *c, int argc, char **argv, int *show_help, char *err,
                         size_t errlen) {
  flag_arg f;
  int rc;
  /* Pass 1: check every flag, answer --help, and read --config files, so
   * the file lies under the flags whatever the order on the line. */
  for (int i = 1; i < argc; i++) {
    if ((rc = next_flag(argc, argv, &i, &f, err, errlen)) != 0) return rc;
    if (f.kind == F_HELP) {
      if (show_help) *show_help = 1;
      return 0;  /* help wins over everything else on the line */
    }
  }
  for (int i = 1; i < argc; i++) {
    next_flag(argc, argv, &i, &f, err, errlen);
    if (f.kind == F_CONFIG && (rc = sy_config_load_file(c, f.value, err, errlen)) != 0)
      return rc;
  }
  for (int i = 1; i < argc; i++) {
    next_flag(argc, argv, &i, &f, err, errlen);
    if ((rc = apply_flag(c, &f, err, errlen)) != 0) return rc;
  }
  return 0;
}

void sy_config_usage(FILE *out) {
  fprintf(out,
          "Usage: switchyard [OPTIONS]\n"
          "\n"
          "OpenAI-compatible model-routing gateway. Settings come from the JSON file\n"
          "given with --config, then from the options below, which override it.\n"
          "Every option with a value also takes the --option=VALUE form.\n"
          "\n"
          "  %-34s %s\n"
          "  %-34s %s (default %s:%d)\n"
          "  %-34s %s (default 0)\n"
          "  %-34s %s (default %s)\n"
          "  %-34s %s (default info)\n"
          "  %-34s %s\n"
          "  %-34s %s\n"
          "  %-34s %s\n",
          "--config FILE", "JSON config file, read before the other options (default none)",
          "--listen HOST:PORT", "address to serve on; IPv6 as [::1]:8080, port 0 = any",
          SY_DEFAULT_LISTEN_HOST, SY_DEFAULT_LISTEN_PORT, "--workers N",
          "worker loops, 0..64, 0 = one per core", "--data-dir DIR", "LMDB folder",
          SY_DEFAULT_DATA_DIR, "--log-level LEVEL", "debug, info, warn or error", "--no-auth",
          "accept calls without a client key (local development only)",
          "--upstream-url URL",
          "base URL (http:// or https://) of the default upstream; creates one\n"
          "                                     named \"default\" when the file has none",
          "--upstream-key-env NAME",
          "environment variable holding the default upstream's API key");
  static const num_spec *const tables[] = {up_specs, limit_specs};
  static const size_t counts[] = {N_UP_SPECS, N_LIMIT_SPECS};
  for (size_t t = 0; t < 2; t++)
    for (size_t i = 0; i < counts[t]; i++) {
      const num_spec *s = &tables[t][i];
      char name[64];
      snprintf(name, sizeof name, "%s N", s->flag);
      fprintf(out, "  %-34s %s\n  %-34s (%llu..%llu, default %llu)\n", name, s->help, "",
              (unsigned long long)s->lo, (unsigned long long)s->hi,
              (unsigned long long)s->def);
    }
  fprintf(out,
          "  %-34s %s\n"
          "\n"
          "The default upstream is the one \"default_upstream\" names in the file, else\n"
          "the first. Upstream API keys are read from the environment, never from flags.\n",
          "-h, --help", "print this text and exit (other options are ignored)");
}

int sy_config_finish(sy_config *c, char *err, size_t errlen) {
  if ((!c->listen_host && !(c->listen_host = strdup(SY_DEFAULT_LISTEN_HOST))) ||
      (!c->data_dir && !(c->data_dir = strdup(SY_DEFAULT_DATA_DIR))) ||
      (!c->log_level && !(c->log_level = strdup("info"))))
    return fail_nomem(err, errlen);
  sy_log_level lvl;
  if (sy_log_parse_level(c->log_level, &lvl) != 0)
    return fail(err, errlen, "log_level: %s", LEVEL_RULE);
  if (c->n_upstreams == 0)
    return fail(err, errlen, "upstreams: at least one upstream is required (or --upstream-url)");
  for (size_t i = 0; i < c->n_upstreams; i++)
    if (!c->upstreams[i].base_url)
      return fail(err, errlen, "upstreams[%zu].base_url: required (or --upstream-url)", i);
  if (c->default_upstream_name) {
    const sy_upstream_conf *u = sy_config_upstream(c, c->default_upstream_name);
    if (!u)
      return fail(err, errlen, "default_upstream: no upstream is named \"%s\"",
                  c->default_upstream_name);
    c->default_upstream = (size_t)(u - c->upstreams);
  } else if (c->n_upstreams > 1) {
    return fail(err, errlen,
                "default_upstream: required when there is more than one upstream");
  } else {
    c->default_upstream = 0;
  }
  if (c->auth && c->n_client_keys == 0)
    return fail(err, errlen,
                "client_keys: auth is on but no client keys are configured; add "
                "client_keys to the config file (hash keys with `switchyard hash-key`) "
                "or pass --no-auth for local development");
  if (c->workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n < 1 ? 1 : n > SY_MAX_WORKERS ? SY_MAX_WORKERS : (uint32_t)n;
  }
  for (size_t i = 0; i < c->n_upstreams; i++) {
    sy_upstream_conf *u = &c->upstreams[i];
    secret_free(&u->api_key);
    const char *key = u->api_key_env ? getenv(u->api_key_env) : NULL;
    /* An empty variable counts as unset: an empty bearer token is no key. */
    if (key && *key && !(u->api_key = strdup(key))) return fail_nomem(err, errlen);
  }
  return 0;
}

void sy_hash_key(const char *key, size_t len, unsigned char out[32]) {
  unsigned int n = 0;
  /* No error path in the signature, and a wrong digest would silently deny
   * or admit clients, so a failing libcrypto is fatal. */
  if (EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
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
