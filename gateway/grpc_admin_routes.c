/* Admin RPCs on routes: ListRoutes, GetRoute, GetHistory, PutRoute,
 * SetSplit, Promote, Rollback, SetShadow. Every mutation goes through
 * sy_routes_pub_apply: validated by the router's parser, durable in LMDB,
 * then published in one swap, with the caller's token name and reason in
 * the history. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <grpc/grpc.h>

#include "common/err.h"
#include "gateway/grpc_admin_handlers.h"
#include "gateway/routes_pub.h"
#include "router/slot.h"
#include "store/routes.h"
#include "switchyard/v1/admin.pb-c.h"

#define OOM(errmsg, errlen) (snprintf(errmsg, errlen, "out of memory"), GRPC_STATUS_RESOURCE_EXHAUSTED)

/* ---- shared helpers ------------------------------------------------------------------------- */

char *sy__admin_str(const char *s) {
  if (!s || !*s) return (char *)protobuf_c_empty_string;
  return strdup(s);
}

char *sy__admin_strn(const char *s, size_t n) {
  if (!s || !n) return (char *)protobuf_c_empty_string;
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

int sy__admin_status(int rc) {
  switch (rc) {
  case 0: return GRPC_STATUS_OK;
  case SY_EINVAL:
  case SY_ECONFIG:
  case SY_ETOOBIG: return GRPC_STATUS_INVALID_ARGUMENT;
  case SY_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
  case SY_EEXIST: return GRPC_STATUS_ALREADY_EXISTS;
  case SY_ECONFLICT: return GRPC_STATUS_ABORTED;
  case SY_ENOMEM:
  case SY_EFULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case SY_ECLOSED: return GRPC_STATUS_UNAVAILABLE;
  default: return GRPC_STATUS_INTERNAL;
  }
}

/* errmsg from rc when the callee left none. */
static int fail(int rc, char *errmsg, size_t errlen, const char *what) {
  if (!errmsg[0]) snprintf(errmsg, errlen, "%s: %s", what, sy_strerror(rc));
  return sy__admin_status(rc);
}

/* ---- RouteInfo -------------------------------------------------------------------------------- */

/* Fills the arms and shadow summaries from one route object. */
static int summarise(Switchyard__V1__RouteInfo *ri, const char *route_json) {
  cJSON *o = cJSON_Parse(route_json);
  if (!o) return 0; /* summaries stay empty; route_json is authoritative */
  const cJSON *arms = cJSON_GetObjectItemCaseSensitive(o, "arms");
  int n = cJSON_IsArray(arms) ? cJSON_GetArraySize(arms) : 0;
  int cascade = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "cascade"));
  int rc = 0;
  if (n > 0 && (ri->arms = calloc((size_t)n, sizeof *ri->arms))) {
    const cJSON *a;
    cJSON_ArrayForEach(a, arms) {
      Switchyard__V1__ArmInfo *ai = malloc(sizeof *ai);
      if (!ai) {
        rc = SY_ENOMEM;
        break;
      }
      switchyard__v1__arm_info__init(ai);
      ri->arms[ri->n_arms++] = ai;
      const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
      const cJSON *up = cJSON_GetObjectItemCaseSensitive(a, "upstream");
      const cJSON *md = cJSON_GetObjectItemCaseSensitive(a, "model");
      const cJSON *w = cJSON_GetObjectItemCaseSensitive(a, "weight_bp");
      ai->name = sy__admin_str(cJSON_GetStringValue(nm));
      ai->upstream = sy__admin_str(cJSON_GetStringValue(up));
      ai->model = sy__admin_str(cJSON_IsString(md) ? md->valuestring : ri->name);
      /* the router's default: a lone arm of a non-cascade route gets 10000 */
      ai->weight_bp = cJSON_IsNumber(w) ? (uint32_t)w->valuedouble : (n == 1 && !cascade) ? 10000 : 0;
    }
  } else if (n > 0) {
    rc = SY_ENOMEM;
  }
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shadow");
  if (!rc && cJSON_IsObject(sh)) {
    if (!(ri->shadow = malloc(sizeof *ri->shadow))) {
      rc = SY_ENOMEM;
    } else {
      switchyard__v1__shadow_info__init(ri->shadow);
      ri->shadow->arm = sy__admin_str(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sh, "arm")));
      const cJSON *r = cJSON_GetObjectItemCaseSensitive(sh, "rate_bp");
      ri->shadow->rate_bp = cJSON_IsNumber(r) ? (uint32_t)r->valuedouble : 0;
    }
  }
  cJSON_Delete(o);
  return rc;
}

typedef struct {
  const char *route;
  uint64_t doc;       /* the document version wanted */
  int found;
  int deleted;        /* the route is not in that document */
  uint64_t ts_us;
  char *actor, *reason, *action, *route_json;
  int rc;
} find_entry;

static int find_entry_cb(void *vctx, const sy_routes_entry *e) {
  find_entry *f = vctx;
  if (e->version != f->doc) return e->version < f->doc ? 1 : 0; /* newest first: passed it */
  f->found = 1;
  f->ts_us = e->ts_us;
  f->actor = strdup(e->actor ? e->actor : "");
  f->reason = strdup(e->reason ? e->reason : "");
  f->action = strdup(e->action ? e->action : "");
  int rc = sy_routes_find(e->json, f->route, &f->route_json);
  if (rc == SY_ENOTFOUND) f->deleted = 1;
  else if (rc) f->rc = rc;
  if (!f->actor || !f->reason || !f->action) f->rc = SY_ENOMEM;
  return 1;
}

static void find_entry_free(find_entry *f) {
  free(f->actor);
  free(f->reason);
  free(f->action);
  free(f->route_json);
}

/* RouteInfo of `route` at route version `rv` (0 = current). */
static int route_info(sy_admin_ctx *ctx, const char *route, uint64_t rv,
                      Switchyard__V1__RouteInfo **out, char *errmsg, size_t errlen) {
  sy_store *s = ctx->gw->store;
  sy_routes_route_state st;
  int rc = sy_routes_get_route_state(s, route, &st);
  if (rc == SY_ENOTFOUND || (!rc && rv == 0 && !st.exists)) {
    snprintf(errmsg, errlen, "name: route \"%s\" not found", route);
    return GRPC_STATUS_NOT_FOUND;
  }
  if (rc) return fail(rc, errmsg, errlen, "route state");
  uint64_t doc = st.doc_version;
  if (rv == 0) {
    rv = st.route_version;
  } else if ((rc = sy_routes_find_route_version(s, route, rv, &doc)) != 0) {
    if (rc == SY_ENOTFOUND) {
      snprintf(errmsg, errlen, "version: route \"%s\" has no version %llu", route,
               (unsigned long long)rv);
      return GRPC_STATUS_NOT_FOUND;
    }
    return fail(rc, errmsg, errlen, "route version");
  }
  find_entry f = {.route = route, .doc = doc};
  rc = sy_routes_history(s, route, 0, find_entry_cb, &f);
  if (!rc) rc = f.rc;
  if (!rc && !f.found) rc = SY_ENOTFOUND;
  if (rc) {
    find_entry_free(&f);
    return fail(rc, errmsg, errlen, "route history");
  }
  Switchyard__V1__RouteInfo *ri = malloc(sizeof *ri);
  if (!ri) {
    find_entry_free(&f);
    return OOM(errmsg, errlen);
  }
  switchyard__v1__route_info__init(ri);
  ri->name = sy__admin_str(route);
  ri->version = rv;
  ri->route_json = f.route_json ? f.route_json : (char *)protobuf_c_empty_string;
  f.route_json = NULL;
  int from_file = !strcmp(f.action, "config") || !strcmp(f.action, "sighup");
  ri->source = sy__admin_str(from_file ? "config" : "admin");
  ri->updated_at_us = f.ts_us;
  ri->updated_by = sy__admin_str(f.actor);
  ri->reason = sy__admin_str(f.reason);
  find_entry_free(&f);
  if (ri->route_json[0] && summarise(ri, ri->route_json) != 0) {
    protobuf_c_message_free_unpacked(&ri->base, NULL);
    return OOM(errmsg, errlen);
  }
  *out = ri;
  return GRPC_STATUS_OK;
}

/* ---- reads ------------------------------------------------------------------------------------ */

int sy_admin_list_routes(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                         char *errmsg, size_t errlen) {
  (void)req;
  Switchyard__V1__ListRoutesResponse *r = malloc(sizeof *r);
  if (!r) return OOM(errmsg, errlen);
  switchyard__v1__list_routes_response__init(r);
  *resp = &r->base;
  sy_route_table *t = sy_route_slot_get(&ctx->gw->routes);
  if (!t) return GRPC_STATUS_OK;
  r->table_version = sy_route_table_version(t);
  size_t n = sy_route_table_count(t);
  int code = GRPC_STATUS_OK;
  if (n && !(r->routes = calloc(n, sizeof *r->routes))) code = OOM(errmsg, errlen);
  for (size_t i = 0; i < n && code == GRPC_STATUS_OK; i++) {
    const sy_route *rt = sy_route_table_at(t, i);
    Switchyard__V1__RouteInfo *ri = NULL;
    code = route_info(ctx, rt->name.s, 0, &ri, errmsg, errlen);
    if (code == GRPC_STATUS_OK) r->routes[r->n_routes++] = ri;
  }
  sy_route_table_unref(t);
  return code;
}

int sy_admin_get_route(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       char *errmsg, size_t errlen) {
  const Switchyard__V1__GetRouteRequest *q = (const void *)req;
  if (!q->name[0]) {
    snprintf(errmsg, errlen, "name: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  Switchyard__V1__RouteInfo *ri = NULL;
  int code = route_info(ctx, q->name, q->version, &ri, errmsg, errlen);
  if (code == GRPC_STATUS_OK) *resp = &ri->base;
  return code;
}

typedef struct {
  const char *route;
  Switchyard__V1__GetHistoryResponse *r;
  size_t cap;
} hist_ctx;

static int hist_cb(void *vctx, const sy_routes_entry *e) {
  hist_ctx *h = vctx;
  if (h->r->n_entries == h->cap) {
    size_t nc = h->cap ? h->cap * 2 : 16;
    Switchyard__V1__HistoryEntry **ne = realloc(h->r->entries, nc * sizeof *ne);
    if (!ne) return SY_ENOMEM;
    h->r->entries = ne;
    h->cap = nc;
  }
  Switchyard__V1__HistoryEntry *he = malloc(sizeof *he);
  if (!he) return SY_ENOMEM;
  switchyard__v1__history_entry__init(he);
  h->r->entries[h->r->n_entries++] = he;
  for (size_t i = 0; i < e->n_routes_changed; i++)
    if (!strcmp(e->routes_changed[i], h->route)) he->version = e->route_versions[i];
  he->at_us = e->ts_us;
  he->by = sy__admin_str(e->actor);
  he->action = sy__admin_str(e->action);
  he->summary = sy__admin_str(e->summary);
  he->reason = sy__admin_str(e->reason);
  char *rj = NULL;
  int rc = sy_routes_find(e->json, h->route, &rj);
  if (rc && rc != SY_ENOTFOUND) return rc;
  he->route_json = rj ? rj : (char *)protobuf_c_empty_string; /* "" = deleted in this version */
  return 0;
}

int sy_admin_get_history(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                         char *errmsg, size_t errlen) {
  const Switchyard__V1__GetHistoryRequest *q = (const void *)req;
  if (!q->name[0]) {
    snprintf(errmsg, errlen, "name: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  Switchyard__V1__GetHistoryResponse *r = malloc(sizeof *r);
  if (!r) return OOM(errmsg, errlen);
  switchyard__v1__get_history_response__init(r);
  *resp = &r->base;
  hist_ctx h = {.route = q->name, .r = r};
  int rc = sy_routes_history(ctx->gw->store, q->name, q->limit, hist_cb, &h);
  if (rc) return fail(rc, errmsg, errlen, "history");
  if (r->n_entries == 0) {
    snprintf(errmsg, errlen, "name: route \"%s\" has no history", q->name);
    return GRPC_STATUS_NOT_FOUND;
  }
  return GRPC_STATUS_OK;
}

/* ---- mutations -------------------------------------------------------------------------------- */

typedef enum { E_PUT, E_SPLIT, E_PROMOTE, E_SHADOW, E_RESTORE } edit_kind;

typedef struct {
  edit_kind kind;
  const char *route;
  const char *route_json;      /* put */
  const sy_routes_weight *w;   /* split */
  size_t n_w;
  const char *arm;             /* promote, shadow (NULL = off) */
  uint32_t rate_bp;            /* shadow */
  const char *old;             /* restore */
  uint64_t old_version;
} edit_args;

static int do_edit(void *vctx, uint64_t cur_version, const char *cur, sy_routes_edit *out,
                   char *err, size_t errlen) {
  (void)cur_version;
  const edit_args *a = vctx;
  switch (a->kind) {
  case E_PUT: return sy_routes_edit_put(cur, a->route_json, out, err, errlen);
  case E_SPLIT: return sy_routes_edit_split(cur, a->route, a->w, a->n_w, out, err, errlen);
  case E_PROMOTE: return sy_routes_edit_promote(cur, a->route, a->arm, out, err, errlen);
  case E_SHADOW:
    return sy_routes_edit_shadow(cur, a->route, a->arm, a->rate_bp, out, err, errlen);
  case E_RESTORE:
    return sy_routes_edit_restore(cur, a->old, a->old_version, a->route, out, err, errlen);
  }
  return SY_EINVAL;
}

/* Applies one edit as ctx->caller with `reason`; answers the route's new
 * RouteInfo. route_expected: SY_ROUTES_ANY_VERSION, 0 (must not exist) or N. */
static int mutate(sy_admin_ctx *ctx, edit_args *a, uint64_t route_expected, const char *reason,
                  const char *action, ProtobufCMessage **resp, char *errmsg, size_t errlen) {
  sy_routes_put_opts o = {.route = a->route, .route_expected = route_expected,
                          .actor = ctx->caller, .reason = reason, .action = action};
  uint64_t dv = 0, rv = 0;
  int rc = sy_routes_pub_apply(ctx->gw, &o, do_edit, a, &dv, &rv, errmsg, errlen);
  if (rc) return fail(rc, errmsg, errlen, action);
  Switchyard__V1__RouteInfo *ri = NULL;
  int code = route_info(ctx, a->route, rv, &ri, errmsg, errlen);
  if (code == GRPC_STATUS_NOT_FOUND) {
    /* the change deleted the route (a rollback to before its creation) */
    errmsg[0] = '\0';
    if (!(ri = malloc(sizeof *ri))) return OOM(errmsg, errlen);
    switchyard__v1__route_info__init(ri);
    ri->name = sy__admin_str(a->route);
    ri->version = rv;
    ri->source = sy__admin_str("admin");
    ri->updated_by = sy__admin_str(ctx->caller);
    ri->reason = sy__admin_str(reason);
    code = GRPC_STATUS_OK;
  }
  if (code == GRPC_STATUS_OK) *resp = &ri->base;
  return code;
}

static int need(const char *v, const char *field, char *errmsg, size_t errlen) {
  if (v && v[0]) return 0;
  snprintf(errmsg, errlen, "%s: required", field);
  return GRPC_STATUS_INVALID_ARGUMENT;
}

/* expected_version of SetSplit & co.: 0 = no check. */
static uint64_t check_or_any(uint64_t v) { return v ? v : SY_ROUTES_ANY_VERSION; }

int sy_admin_put_route(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       char *errmsg, size_t errlen) {
  const Switchyard__V1__PutRouteRequest *q = (const void *)req;
  int code = need(q->route_json, "route_json", errmsg, errlen);
  if (code) return code;
  if (strlen(q->route_json) > SY_ROUTES_MAX_ONE_JSON) {
    snprintf(errmsg, errlen, "route_json: over %u bytes", SY_ROUTES_MAX_ONE_JSON);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  cJSON *o = cJSON_Parse(q->route_json);
  const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
  if (!cJSON_IsObject(o) || !name || !name[0] || strlen(name) > SY_ROUTES_MAX_NAME) {
    snprintf(errmsg, errlen, "%s",
             !o                     ? "route_json: not valid JSON"
             : !cJSON_IsObject(o)   ? "route_json: must be one route object"
                                    : "route_json.name: required, 1..128 characters");
    cJSON_Delete(o);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  char *nm = strdup(name);
  cJSON_Delete(o);
  if (!nm) return OOM(errmsg, errlen);
  edit_args a = {.kind = E_PUT, .route = nm, .route_json = q->route_json};
  code = mutate(ctx, &a, q->expected_version, q->reason, "put", resp, errmsg, errlen);
  free(nm);
  return code;
}

int sy_admin_set_split(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       char *errmsg, size_t errlen) {
  const Switchyard__V1__SetSplitRequest *q = (const void *)req;
  int code = need(q->name, "name", errmsg, errlen);
  if (code) return code;
  if (q->n_weights == 0 || q->n_weights > SY_ROUTES_MAX_ARMS) {
    snprintf(errmsg, errlen, "weights: 1..%d entries", SY_ROUTES_MAX_ARMS);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  sy_routes_weight w[SY_ROUTES_MAX_ARMS];
  for (size_t i = 0; i < q->n_weights; i++) {
    if (!q->weights[i]->arm[0]) {
      snprintf(errmsg, errlen, "weights[%zu].arm: required", i);
      return GRPC_STATUS_INVALID_ARGUMENT;
    }
    w[i].arm = q->weights[i]->arm;
    w[i].weight_bp = q->weights[i]->weight_bp;
  }
  edit_args a = {.kind = E_SPLIT, .route = q->name, .w = w, .n_w = q->n_weights};
  return mutate(ctx, &a, check_or_any(q->expected_version), q->reason, "split", resp, errmsg,
                errlen);
}

int sy_admin_promote(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                     char *errmsg, size_t errlen) {
  const Switchyard__V1__PromoteRequest *q = (const void *)req;
  int code = need(q->name, "name", errmsg, errlen);
  if (!code) code = need(q->arm, "arm", errmsg, errlen);
  if (code) return code;
  edit_args a = {.kind = E_PROMOTE, .route = q->name, .arm = q->arm};
  return mutate(ctx, &a, check_or_any(q->expected_version), q->reason, "promote", resp, errmsg,
                errlen);
}

int sy_admin_set_shadow(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        char *errmsg, size_t errlen) {
  const Switchyard__V1__SetShadowRequest *q = (const void *)req;
  int code = need(q->name, "name", errmsg, errlen);
  if (code) return code;
  if (q->rate_bp > 10000) {
    snprintf(errmsg, errlen, "rate_bp: must be 0..10000");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  edit_args a = {.kind = E_SHADOW, .route = q->name, .arm = q->arm[0] ? q->arm : NULL,
                 .rate_bp = q->rate_bp};
  return mutate(ctx, &a, check_or_any(q->expected_version), q->reason, "shadow", resp, errmsg,
                errlen);
}

int sy_admin_rollback(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      char *errmsg, size_t errlen) {
  const Switchyard__V1__RollbackRequest *q = (const void *)req;
  int code = need(q->name, "name", errmsg, errlen);
  if (code) return code;
  sy_store *s = ctx->gw->store;
  uint64_t doc = 0;
  int rc;
  if (q->to_version == 0) {
    rc = sy_routes_previous(s, q->name, &doc);
    if (rc == SY_ENOTFOUND) {
      snprintf(errmsg, errlen, "name: route \"%s\" has no earlier version", q->name);
      return GRPC_STATUS_NOT_FOUND;
    }
  } else {
    rc = sy_routes_find_route_version(s, q->name, q->to_version, &doc);
    if (rc == SY_ENOTFOUND) {
      snprintf(errmsg, errlen, "to_version: route \"%s\" has no version %llu", q->name,
               (unsigned long long)q->to_version);
      return GRPC_STATUS_NOT_FOUND;
    }
  }
  if (rc) return fail(rc, errmsg, errlen, "rollback");
  char *old = NULL;
  if ((rc = sy_routes_get_version(s, doc, &old, NULL)) != 0)
    return fail(rc, errmsg, errlen, "rollback: reading the old version");
  edit_args a = {.kind = E_RESTORE, .route = q->name, .old = old, .old_version = doc};
  code = mutate(ctx, &a, check_or_any(q->expected_version), q->reason, "rollback", resp, errmsg,
                errlen);
  free(old);
  return code;
}
