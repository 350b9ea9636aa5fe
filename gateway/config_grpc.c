/* switchyard configuration, the "grpc" section: listeners, TLS files, admin
 * tokens and the message size limit. Kept apart from config.c (the rest of
 * the file) so each half stays readable; the shape is documented in config.h. */
#include "gateway/config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "gateway/config_internal.h"

#define ROLE_RULE "must be \"admin\" or \"read\""
#define NAME_RULE "must be 1 to 63 characters from A-Z a-z 0-9 _ . -"
#define ENV_TOKEN_NAME "env"
#define ENV_TOKEN_MAX 4096 /* longer values are a mistake, not a token */

void sy__config_grpc_defaults(sy_grpc_conf *g) {
  memset(g, 0, sizeof *g);
  /* Off unless configured: a gateway that nobody asked to speak gRPC should
   * not take port 50051 (SY_DEFAULT_GRPC_PORT is the documented choice). */
  g->listen_host[0] = '\0';
  g->listen_port = 0;
  snprintf(g->admin_host, sizeof g->admin_host, "%s", SY_DEFAULT_GRPC_HOST);
  g->admin_port = SY_DEFAULT_GRPC_ADMIN_PORT;
  g->max_message_bytes = SY_DEFAULT_GRPC_MAX_MESSAGE_BYTES;
}

static void tokens_clear(sy_grpc_conf *g) {
  for (size_t i = 0; i < g->n_admin_tokens; i++) {
    free(g->admin_tokens[i].name);
    OPENSSL_cleanse(g->admin_tokens[i].sha256, sizeof g->admin_tokens[i].sha256);
  }
  free(g->admin_tokens);
  g->admin_tokens = NULL;
  g->n_admin_tokens = 0;
}

void sy__config_grpc_free(sy_grpc_conf *g) {
  tokens_clear(g);
  free(g->tls_cert);
  free(g->tls_key);
  g->tls_cert = g->tls_key = NULL;
}

int sy__config_grpc_listen(char host[SY_GRPC_HOST_MAX + 1], uint16_t *port, const char *s,
                           const char *what, char *err, size_t errlen) {
  if (!*s) {
    host[0] = '\0';
    *port = 0;
    return 0;
  }
  char *h = NULL;
  uint16_t p;
  int rc = sy__config_parse_listen(s, &h, &p, what, err, errlen);
  if (rc) return rc;
  /* parse_listen accepted only numeric addresses, which always fit */
  size_t n = strlen(h);
  if (n > SY_GRPC_HOST_MAX) {
    free(h);
    return sy__config_fail(err, errlen, "%s: host longer than %d bytes", what, SY_GRPC_HOST_MAX);
  }
  memcpy(host, h, n + 1);
  free(h);
  *port = p;
  return 0;
}

static int dup_key(const cJSON *obj, const cJSON *item) {
  return cJSON_GetObjectItemCaseSensitive(obj, item->string) != item;
}

static int need_string(const cJSON *v, const char *path, char *err, size_t errlen) {
  if (!cJSON_IsString(v) || !v->valuestring)
    return sy__config_fail(err, errlen, "%s: must be a string", path);
  return 0;
}

static int parse_token(sy_grpc_conf *g, const cJSON *obj, size_t idx, char *err, size_t errlen) {
  sy_admin_token *t = &g->admin_tokens[idx];
  char path[160], sb[SY__CONF_SHOWN + 4];
  int rc, have_hash = 0, have_role = 0;
  if (!cJSON_IsObject(obj))
    return sy__config_fail(err, errlen, "grpc.admin_tokens[%zu]: must be an object", idx);
  for (const cJSON *v = obj->child; v; v = v->next) {
    snprintf(path, sizeof path, "grpc.admin_tokens[%zu].%s", idx, sy__config_shown(v->string, sb));
    if (dup_key(obj, v)) return sy__config_fail(err, errlen, "%s: duplicate key", path);
    if (strcmp(v->string, "name") && strcmp(v->string, "sha256") && strcmp(v->string, "role"))
      return sy__config_fail(err, errlen, "%s: unknown key", path);
    if ((rc = need_string(v, path, err, errlen)) != 0) return rc;
    const char *s = v->valuestring;
    if (strcmp(v->string, "name") == 0) {
      if (!sy__config_valid_chars(s, SY__CONF_MAX_NAME, ".-", 1))
        return sy__config_fail(err, errlen, "%s: %s", path, NAME_RULE);
      if (strcmp(s, ENV_TOKEN_NAME) == 0)
        return sy__config_fail(err, errlen, "%s: \"env\" is reserved for %s", path,
                               SY_ADMIN_TOKEN_ENV);
      for (size_t j = 0; j < idx; j++)
        if (strcmp(g->admin_tokens[j].name, s) == 0)
          return sy__config_fail(err, errlen, "%s: duplicate name \"%s\"", path, s);
      if (sy__config_set_str(&t->name, s) != 0) return sy__config_fail_nomem(err, errlen);
    } else if (strcmp(v->string, "sha256") == 0) {
      if (strlen(s) != 64) return sy__config_fail(err, errlen, "%s: must be 64 hex characters", path);
      for (size_t j = 0; j < 32; j++) {
        int hi = sy__config_hexval(s[2 * j]), lo = sy__config_hexval(s[2 * j + 1]);
        if (hi < 0 || lo < 0)
          return sy__config_fail(err, errlen, "%s: must be 64 hex characters", path);
        t->sha256[j] = (unsigned char)(hi << 4 | lo);
      }
      have_hash = 1;
    } else { /* role */
      if (strcmp(s, "admin") == 0) t->role = SY_ADMIN_ROLE_ADMIN;
      else if (strcmp(s, "read") == 0) t->role = SY_ADMIN_ROLE_READ;
      else return sy__config_fail(err, errlen, "%s: %s", path, ROLE_RULE);
      have_role = 1;
    }
  }
  if (!t->name) return sy__config_fail(err, errlen, "grpc.admin_tokens[%zu].name: required", idx);
  if (!have_hash)
    return sy__config_fail(err, errlen, "grpc.admin_tokens[%zu].sha256: required", idx);
  /* No default role: granting write access must be explicit. */
  if (!have_role)
    return sy__config_fail(err, errlen, "grpc.admin_tokens[%zu].role: required (%s)", idx,
                           "\"admin\" or \"read\"");
  for (size_t j = 0; j < idx; j++)
    if (memcmp(g->admin_tokens[j].sha256, t->sha256, 32) == 0)
      return sy__config_fail(err, errlen,
                             "grpc.admin_tokens[%zu].sha256: same token as grpc.admin_tokens[%zu]",
                             idx, j);
  return 0;
}

/* A new list replaces the old; entries are counted as they are parsed so a
 * half-parsed list is still freed by sy_config_free(). */
static int parse_tokens(sy_grpc_conf *g, const cJSON *arr, char *err, size_t errlen) {
  if (!cJSON_IsArray(arr)) return sy__config_fail(err, errlen, "grpc.admin_tokens: must be an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n > SY_MAX_ADMIN_TOKENS)
    return sy__config_fail(err, errlen, "grpc.admin_tokens: at most %d tokens are allowed (got %zu)",
                           SY_MAX_ADMIN_TOKENS, n);
  tokens_clear(g);
  if (n == 0) return 0;
  if (!(g->admin_tokens = calloc(n, sizeof *g->admin_tokens)))
    return sy__config_fail_nomem(err, errlen);
  size_t i = 0;
  for (const cJSON *v = arr->child; v; v = v->next, i++) {
    g->n_admin_tokens = i + 1;
    int rc = parse_token(g, v, i, err, errlen);
    if (rc != 0) return rc;
  }
  return 0;
}

int sy__config_parse_grpc(sy_config *c, const void *cjson_obj, char *err, size_t errlen) {
  const cJSON *obj = cjson_obj;
  sy_grpc_conf *g = &c->grpc;
  char path[160], sb[SY__CONF_SHOWN + 4];
  if (!cJSON_IsObject(obj)) return sy__config_fail(err, errlen, "grpc: must be an object");
  for (const cJSON *v = obj->child; v; v = v->next) {
    const char *k = v->string;
    snprintf(path, sizeof path, "grpc.%s", sy__config_shown(k, sb));
    if (dup_key(obj, v)) return sy__config_fail(err, errlen, "%s: duplicate key", path);
    int rc;
    if (strcmp(k, "listen") == 0 || strcmp(k, "admin_listen") == 0) {
      int admin = k[0] == 'a';
      if ((rc = need_string(v, path, err, errlen)) != 0) return rc;
      rc = sy__config_grpc_listen(admin ? g->admin_host : g->listen_host,
                                  admin ? &g->admin_port : &g->listen_port, v->valuestring, path,
                                  err, errlen);
    } else if (strcmp(k, "tls_cert") == 0 || strcmp(k, "tls_key") == 0) {
      if ((rc = need_string(v, path, err, errlen)) != 0) return rc;
      if ((rc = sy__config_check_path(v->valuestring, path, err, errlen)) != 0) return rc;
      rc = sy__config_set_str(k[4] == 'c' ? &g->tls_cert : &g->tls_key, v->valuestring);
      if (rc) rc = sy__config_fail_nomem(err, errlen);
    } else if (strcmp(k, "admin_tokens") == 0) {
      rc = parse_tokens(g, v, err, errlen);
    } else if (strcmp(k, "max_message_bytes") == 0) {
      double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
      if (!(d >= 4096 && d <= 1073741824) || (double)(size_t)d != d)
        return sy__config_fail(err, errlen, "%s: must be an integer between 4096 and 1073741824",
                               path);
      g->max_message_bytes = (size_t)d;
      rc = 0;
    } else {
      rc = sy__config_fail(err, errlen, "%s: unknown key", path);
    }
    if (rc != 0) return rc;
  }
  return 0;
}

int sy__config_finish_grpc(sy_config *c, char *err, size_t errlen) {
  sy_grpc_conf *g = &c->grpc;
  if (!g->tls_cert != !g->tls_key)
    return sy__config_fail(err, errlen, "grpc.%s: required with grpc.%s (both or neither)",
                           g->tls_cert ? "tls_key" : "tls_cert",
                           g->tls_cert ? "tls_cert" : "tls_key");
  /* finish may run twice on one config (tests, reload): never add env twice */
  for (size_t i = 0; i < g->n_admin_tokens; i++)
    if (strcmp(g->admin_tokens[i].name, ENV_TOKEN_NAME) == 0) return 0;
  const char *tok = getenv(SY_ADMIN_TOKEN_ENV);
  if (!tok || !*tok) return 0;
  size_t len = strlen(tok);
  if (len > ENV_TOKEN_MAX)
    return sy__config_fail(err, errlen, "%s: longer than %d bytes", SY_ADMIN_TOKEN_ENV,
                           ENV_TOKEN_MAX);
  if (g->n_admin_tokens >= SY_MAX_ADMIN_TOKENS)
    return sy__config_fail(err, errlen, "%s: grpc.admin_tokens already holds %d tokens",
                           SY_ADMIN_TOKEN_ENV, SY_MAX_ADMIN_TOKENS);
  sy_admin_token *nt = realloc(g->admin_tokens, (g->n_admin_tokens + 1) * sizeof *nt);
  if (!nt) return sy__config_fail_nomem(err, errlen);
  g->admin_tokens = nt;
  sy_admin_token *t = &nt[g->n_admin_tokens];
  memset(t, 0, sizeof *t);
  if (!(t->name = strdup(ENV_TOKEN_NAME))) return sy__config_fail_nomem(err, errlen);
  sy_hash_key(tok, len, t->sha256);
  t->role = SY_ADMIN_ROLE_ADMIN;
  g->n_admin_tokens++;
  for (size_t j = 0; j + 1 < g->n_admin_tokens; j++)
    if (memcmp(g->admin_tokens[j].sha256, t->sha256, 32) == 0)
      return sy__config_fail(err, errlen, "%s: same token as grpc.admin_tokens[%zu]",
                             SY_ADMIN_TOKEN_ENV, j);
  return 0;
}
