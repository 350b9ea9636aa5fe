/* Route documents: start-up precedence, SIGHUP, admin changes. See routes_pub.h. */
#include "gateway/routes_pub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "router/slot.h"

static int upstream_known(void *ctx, const char *name) {
  return sy_config_upstream(ctx, name) != NULL;
}

int sy_routes_pub_parse(const sy_config *running, const char *json, size_t len, uint64_t version,
                        sy_route_table **out, char *err, size_t errlen) {
  sy_route_parse_opts o = {.version = version, .upstream_known = upstream_known,
                           .ctx = (void *)running};
  return sy_route_table_parse(json, len, &o, out, err, errlen);
}

static const char *file_routes(const sy_config *cfg) {
  return cfg->routes_json ? cfg->routes_json : "[]";
}

/* The newest history entry's action ("" when none was recorded). */
typedef struct {
  char action[SY_ROUTES_MAX_NAME + 1];
  char actor[SY_ROUTES_MAX_ACTOR + 1];
} last_entry;

static int last_cb(void *ctx, const sy_routes_entry *e) {
  last_entry *l = ctx;
  snprintf(l->action, sizeof l->action, "%s", e->action ? e->action : "");
  snprintf(l->actor, sizeof l->actor, "%s", e->actor ? e->actor : "");
  return 1;
}

static int from_file(const char *action) {
  return strcmp(action, "config") == 0 || strcmp(action, "sighup") == 0;
}

/* Stores the file's routes as the next version after `expected` and
 * returns the parsed table. */
static int store_file(sy_gateway *gw, uint64_t expected, const char *action, const char *reason,
                      sy_route_table **out, char *err, size_t errlen) {
  const char *json = file_routes(gw->cfg);
  sy_route_table *t = NULL;
  int rc = sy_routes_pub_parse(gw->cfg, json, strlen(json), expected + 1, &t, err, errlen);
  if (rc) return rc;
  sy_routes_put_opts o = {.expected_version = expected, .actor = action, .reason = reason,
                          .summary = "routes from the config file", .action = action};
  uint64_t v = 0;
  rc = sy_routes_put_ex(gw->store, &o, json, &v);
  if (rc || v != expected + 1) {
    snprintf(err, errlen, "routes: storing the config file's routes failed: %s",
             rc ? sy_strerror(rc) : "unexpected version");
    sy_route_table_unref(t);
    return rc ? rc : SY_EIO;
  }
  *out = t;
  return 0;
}

int sy_routes_pub_load(sy_gateway *gw, sy_route_table **out, char *err, size_t errlen) {
  uint64_t v = 0;
  char *cur = NULL;
  size_t len = 0;
  int rc = sy_routes_get_current(gw->store, &v, &cur, &len);
  if (rc == SY_ENOTFOUND) {
    rc = store_file(gw, 0, "config", "seeded from the config file", out, err, errlen);
    if (!rc) sy_info("routes: seeded the store from the config file (version 1)");
    return rc;
  }
  if (rc) {
    snprintf(err, errlen, "routes: cannot read the stored routes: %s", sy_strerror(rc));
    return rc;
  }
  last_entry last = {"", ""};
  sy_routes_history(gw->store, NULL, 1, last_cb, &last);
  if (from_file(last.action)) {
    if (strcmp(cur, file_routes(gw->cfg)) != 0) {
      free(cur);
      rc = store_file(gw, v, "config", "the config file changed (no admin change in force)", out,
                      err, errlen);
      if (!rc)
        sy_info("routes: the config file's routes changed; stored as version %llu",
                (unsigned long long)v + 1);
      return rc;
    }
    rc = sy_routes_pub_parse(gw->cfg, cur, len, v, out, err, errlen);
    if (!rc) sy_info("routes: version %llu (the config file's routes)", (unsigned long long)v);
    free(cur);
    return rc;
  }
  char perr[512];
  rc = sy_routes_pub_parse(gw->cfg, cur, len, v, out, perr, sizeof perr);
  free(cur);
  if (!rc) {
    sy_info("routes: using the store's version %llu (changed through the admin API by '%s'); "
            "the config file's routes are ignored",
            (unsigned long long)v, last.actor);
    return 0;
  }
  /* The stored routes no longer fit this config (an upstream was removed):
   * fall back to the file, as a new version so the history says so. */
  sy_error("routes: the store's version %llu does not fit this config (%s); using the config "
           "file's routes",
           (unsigned long long)v, perr);
  char reason[700];
  snprintf(reason, sizeof reason, "stored routes invalid for this config: %s", perr);
  return store_file(gw, v, "config", reason, out, err, errlen);
}

int sy_routes_pub_reload(sy_gateway *gw, const sy_config *fresh, uint64_t *version, size_t *count,
                         char *err, size_t errlen) {
  const char *json = file_routes(fresh);
  pthread_mutex_lock(&gw->routes_mu);
  uint64_t v = 0;
  char *cur = NULL;
  int rc = sy_routes_get_current(gw->store, &v, &cur, NULL);
  if (rc == SY_ENOTFOUND) rc = 0;
  sy_route_table *t = NULL;
  if (rc) {
    snprintf(err, errlen, "cannot read the stored routes: %s", sy_strerror(rc));
  } else if (cur && strcmp(cur, json) == 0) {
    /* unchanged: republish the current version, write nothing */
    rc = sy_routes_pub_parse(gw->cfg, json, strlen(json), v, &t, err, errlen);
  } else {
    rc = sy_routes_pub_parse(gw->cfg, json, strlen(json), v + 1, &t, err, errlen);
    if (!rc) {
      sy_routes_put_opts o = {.expected_version = v, .actor = "sighup",
                              .reason = "SIGHUP: the config file's routes",
                              .summary = "routes from the config file", .action = "sighup"};
      uint64_t nv = 0;
      rc = sy_routes_put_ex(gw->store, &o, json, &nv);
      if (rc) {
        snprintf(err, errlen, "storing the routes failed: %s", sy_strerror(rc));
        sy_route_table_unref(t);
        t = NULL;
      } else {
        v = nv;
      }
    }
  }
  free(cur);
  if (!rc) {
    *version = v;
    *count = sy_route_table_count(t);
    sy_route_slot_publish(&gw->routes, t);
  }
  pthread_mutex_unlock(&gw->routes_mu);
  return rc;
}

/* ---- admin changes ---------------------------------------------------------------------------- */

typedef struct {
  sy_gateway *gw;
  sy_routes_edit_fn fn;
  void *ctx;
  sy_route_table *t; /* parsed result of the latest attempt */
} apply_ctx;

static int validate_edit(void *vctx, uint64_t cur_version, const char *cur, sy_routes_edit *out,
                         char *err, size_t errlen) {
  apply_ctx *a = vctx;
  int rc = a->fn(a->ctx, cur_version, cur, out, err, errlen);
  if (rc) return rc;
  sy_route_table_unref(a->t);
  a->t = NULL;
  rc = sy_routes_pub_parse(a->gw->cfg, out->json, out->len, cur_version + 1, &a->t, err, errlen);
  if (rc) {
    sy_routes_edit_free(out);
    return rc == SY_ENOMEM ? rc : SY_ECONFIG;
  }
  return 0;
}

int sy_routes_pub_apply(sy_gateway *gw, const sy_routes_put_opts *o, sy_routes_edit_fn fn,
                        void *ctx, uint64_t *doc_version, uint64_t *route_version, char *err,
                        size_t errlen) {
  apply_ctx a = {.gw = gw, .fn = fn, .ctx = ctx};
  uint64_t dv = 0, rv = 0;
  pthread_mutex_lock(&gw->routes_mu);
  int rc = sy_routes_apply(gw->store, o, validate_edit, &a, &dv, &rv, err, errlen);
  if (!rc && a.t && sy_route_table_version(a.t) == dv) {
    sy_route_slot_publish(&gw->routes, a.t); /* durable first, then live */
    a.t = NULL;
  } else if (!rc) {
    /* cannot happen with routes_mu held (nobody else writes): the document
     * moved between validation and the put */
    sy_error("routes: version %llu stored but the validated table has another version",
             (unsigned long long)dv);
    rc = SY_EIO;
    snprintf(err, errlen, "internal error: route version mismatch");
  }
  pthread_mutex_unlock(&gw->routes_mu);
  sy_route_table_unref(a.t);
  if (doc_version) *doc_version = dv;
  if (route_version) *route_version = rv;
  return rc;
}
