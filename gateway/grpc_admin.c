/* The Admin gRPC service: the method table, token authentication, roles,
 * the admin thread pool that runs the handlers, and Health. See grpc_admin.h. */
#include "gateway/grpc_admin.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/grpc_admin_handlers.h" /* admin: the handlers below */
#include "gateway/grpc_internal.h"
#include "gateway/version.h"
#include "router/route.h"
#include "switchyard/v1/admin.pb-c.h"

#define SY_ADMIN_THREADS 2        /* one long export cannot starve Health */
#define SY_ADMIN_MAX_TOKEN 4096   /* longer bearer values are refused unhashed */
#define SY_ADMIN_MAX_QUEUE 1024   /* admin calls waiting for a thread */

typedef struct sy_admin_method {
  const char *name;
  const ProtobufCMessageDescriptor *in, *out;
  int mutation;                   /* needs role admin */
  sy_admin_handler unary;         /* NULL (and no stream): UNIMPLEMENTED */
  sy_admin_stream_handler stream;
} sy_admin_method;

/* The admin methods. To plug a handler in, put its function here (its
 * prototype in a header included above). */
#define D(x) &switchyard__v1__##x##__descriptor
static const sy_admin_method admin_methods[] = {
    {"Health", D(health_request), D(health_response), 0, sy_admin_health, NULL},
    {"ListRoutes", D(list_routes_request), D(list_routes_response), 0, sy_admin_list_routes, NULL},
    {"GetRoute", D(get_route_request), D(route_info), 0, sy_admin_get_route, NULL},
    {"GetHistory", D(get_history_request), D(get_history_response), 0, sy_admin_get_history, NULL},
    {"GetReport", D(get_report_request), D(get_report_response), 0, sy_admin_get_report, NULL},
    {"ListCaptures", D(list_captures_request), D(list_captures_response), 0, sy_admin_list_captures, NULL},
    {"GetCapture", D(get_capture_request), D(capture_info), 0, sy_admin_get_capture, NULL},
    {"ExportDataset", D(export_dataset_request), D(export_line), 0, NULL, sy_admin_export_dataset},
    {"ListKeys", D(list_keys_request), D(list_keys_response), 0, sy_admin_list_keys, NULL},
    {"PutRoute", D(put_route_request), D(route_info), 1, sy_admin_put_route, NULL},
    {"SetSplit", D(set_split_request), D(route_info), 1, sy_admin_set_split, NULL},
    {"Promote", D(promote_request), D(route_info), 1, sy_admin_promote, NULL},
    {"Rollback", D(rollback_request), D(route_info), 1, sy_admin_rollback, NULL},
    {"SetShadow", D(set_shadow_request), D(route_info), 1, sy_admin_set_shadow, NULL},
    {"LabelCapture", D(label_capture_request), D(label_capture_response), 1, sy_admin_label_capture, NULL},
    {"CreateKey", D(create_key_request), D(create_key_response), 1, sy_admin_create_key, NULL},
    {"RevokeKey", D(revoke_key_request), D(revoke_key_response), 1, sy_admin_revoke_key, NULL},
};
#undef D
#define N_ADMIN (sizeof admin_methods / sizeof admin_methods[0])

static void start_admin(sy_grpc_call *c);

#define M(name, i) {"/switchyard.v1.Admin/" name, start_admin, &admin_methods[i], NULL}
sy_grpc_method sy__grpc_admin_methods[] = {
    M("Health", 0),     M("ListRoutes", 1), M("GetRoute", 2),   M("GetHistory", 3),
    M("GetReport", 4),  M("ListCaptures", 5), M("GetCapture", 6), M("ExportDataset", 7),
    M("ListKeys", 8),   M("PutRoute", 9),   M("SetSplit", 10),  M("Promote", 11),
    M("Rollback", 12),  M("SetShadow", 13), M("LabelCapture", 14), M("CreateKey", 15),
    M("RevokeKey", 16),
};
#undef M
const size_t sy__grpc_n_admin_methods = N_ADMIN;
_Static_assert(sizeof sy__grpc_admin_methods / sizeof sy__grpc_admin_methods[0] == N_ADMIN,
               "one gRPC method per admin method");

/* ---- authentication ------------------------------------------------------------------------ */

const sy_admin_token *sy_admin_authenticate(const sy_config *cfg, const char *v, size_t len) {
  if (len < 7 || strncasecmp(v, "bearer ", 7) != 0) return NULL;
  v += 7;
  len -= 7;
  while (len && *v == ' ') v++, len--;
  if (len == 0 || len > SY_ADMIN_MAX_TOKEN) return NULL;
  unsigned char h[32];
  sy_hash_key(v, len, h);
  /* Every token is compared, whatever matched, so timing says nothing. */
  const sy_admin_token *found = NULL;
  for (size_t i = 0; i < cfg->grpc.n_admin_tokens; i++) {
    const sy_admin_token *t = &cfg->grpc.admin_tokens[i];
    if (CRYPTO_memcmp(h, t->sha256, 32) == 0) found = t;
  }
  OPENSSL_cleanse(h, sizeof h);
  return found;
}

/* ---- the pool --------------------------------------------------------------------------------- */

typedef struct job {
  struct job *next;
  sy_grpc_call *call;
} job;

struct sy_admin_pool {
  sy_grpc_env *env;
  pthread_t threads[SY_ADMIN_THREADS];
  int n_threads;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *head, *tail;
  unsigned queued;
  int stopping;
};

static void run_call(sy_grpc_env *env, sy_grpc_call *c);

static void *pool_thread(void *arg) {
  struct sy_admin_pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
    job *j = p->head;
    if (j) {
      p->head = j->next;
      if (!p->head) p->tail = NULL;
      p->queued--;
    }
    pthread_mutex_unlock(&p->mu);
    if (!j) return NULL; /* stopping and the queue is empty */
    run_call(p->env, j->call);
    sy__grpc_call_unref(j->call);
    free(j);
  }
}

int sy__admin_pool_start(sy_grpc_env *env, struct sy_admin_pool **out) {
  struct sy_admin_pool *p = calloc(1, sizeof *p);
  if (!p) return SY_ENOMEM;
  p->env = env;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (; p->n_threads < SY_ADMIN_THREADS; p->n_threads++)
    if (pthread_create(&p->threads[p->n_threads], NULL, pool_thread, p) != 0) break;
  if (p->n_threads == 0) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return SY_EIO;
  }
  *out = p;
  return 0;
}

void sy__admin_pool_stop(struct sy_admin_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* cq thread: queue the call for a pool thread */
static void start_admin(sy_grpc_call *c) {
  struct sy_admin_pool *p = c->srv->env->admin;
  job *j = calloc(1, sizeof *j);
  if (!j) {
    sy__grpc_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pthread_mutex_lock(&p->mu);
  if (p->queued >= SY_ADMIN_MAX_QUEUE) {
    pthread_mutex_unlock(&p->mu);
    free(j);
    sy__grpc_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many admin calls waiting");
    return;
  }
  sy__grpc_call_ref(c);
  j->call = c;
  if (p->tail) p->tail->next = j;
  else p->head = j;
  p->tail = j;
  p->queued++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* ---- running a call (pool thread) ----------------------------------------------------------- */

int sy_admin_emit(sy_admin_ctx *ctx, const ProtobufCMessage *msg) {
  int rc = sy__grpc_wait_writable(ctx->call);
  return rc ? rc : sy__grpc_send(ctx->call, msg);
}

int sy_admin_cancelled(sy_admin_ctx *ctx) { return sy__grpc_cancelled(ctx->call); }

static void run_call(sy_grpc_env *env, sy_grpc_call *c) {
  const sy_admin_method *am = c->m->data;
  char err[512] = "";
  if (sy__grpc_cancelled(c)) {
    sy__grpc_finish(c, GRPC_STATUS_CANCELLED, "cancelled");
    return;
  }
  size_t al = 0;
  const char *auth = sy__grpc_md(c, "authorization", &al);
  const sy_admin_token *tok = auth ? sy_admin_authenticate(env->cfg, auth, al) : NULL;
  if (!tok) {
    sy__grpc_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                    auth ? "invalid admin token"
                         : "missing admin token: send metadata authorization: Bearer <token>");
    return;
  }
  if (am->mutation && tok->role != SY_ADMIN_ROLE_ADMIN) {
    snprintf(err, sizeof err, "token '%s' has role read; %s needs role admin", tok->name, am->name);
    sy__grpc_finish(c, GRPC_STATUS_PERMISSION_DENIED, err);
    return;
  }
  if (!am->unary && !am->stream) {
    snprintf(err, sizeof err, "Admin.%s: not implemented yet", am->name);
    sy__grpc_finish(c, GRPC_STATUS_UNIMPLEMENTED, err);
    return;
  }
  ProtobufCMessage *req = sy__grpc_unpack(c, am->in, err, sizeof err);
  if (!req) {
    sy__grpc_finish(c, GRPC_STATUS_INVALID_ARGUMENT, err);
    return;
  }
  sy_admin_ctx ctx = {.cfg = env->cfg, .gw = env->gw, .caller = tok->name, .role = tok->role,
                      .method = am->name, .started_ns = env->started_ns, .call = c};
  int code;
  ProtobufCMessage *resp = NULL;
  if (am->stream) {
    code = am->stream(&ctx, req, err, sizeof err);
  } else {
    code = am->unary(&ctx, req, &resp, err, sizeof err);
    if (code == GRPC_STATUS_OK && resp) {
      if (resp->descriptor != am->out) {
        sy_error("admin: %s answered with %s", am->name, resp->descriptor->name);
        code = GRPC_STATUS_INTERNAL;
        snprintf(err, sizeof err, "internal error: wrong response type");
      } else {
        int rc = sy__grpc_send(c, resp);
        if (rc == SY_ETOOBIG) {
          code = GRPC_STATUS_RESOURCE_EXHAUSTED;
          snprintf(err, sizeof err, "the answer is larger than grpc.max_message_bytes");
        }
      }
    } else if (code == GRPC_STATUS_OK) {
      code = GRPC_STATUS_INTERNAL;
      snprintf(err, sizeof err, "internal error: no answer");
    }
  }
  if (resp) protobuf_c_message_free_unpacked(resp, NULL);
  protobuf_c_message_free_unpacked(req, NULL);
  if (am->mutation)
    sy_info("admin: %s by '%s': %s", am->name, tok->name, code == 0 ? "ok" : err);
  sy__grpc_finish(c, (grpc_status_code)code, code == GRPC_STATUS_OK ? NULL : err);
}

/* ---- Health ---------------------------------------------------------------------------------- */

int sy_admin_health(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    char *errmsg, size_t errlen) {
  Switchyard__V1__HealthResponse *r = malloc(sizeof *r);
  if (!r) {
    snprintf(errmsg, errlen, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  switchyard__v1__health_response__init(r);
  int draining = atomic_load(&ctx->gw->draining);
  r->status = strdup(draining ? "draining" : "ok");
  r->version = strdup(sy_version_string());
  r->caller = strdup(ctx->caller);
  r->role = strdup(ctx->role == SY_ADMIN_ROLE_ADMIN ? "admin" : "read");
  r->workers = ctx->cfg->workers;
  r->capture_enabled = ctx->gw->capture != NULL;
  sy_route_table *t = sy_route_slot_get(&ctx->gw->routes);
  if (t) {
    r->routes_version = sy_route_table_version(t);
    r->routes = (uint32_t)sy_route_table_count(t);
    sy_route_table_unref(t);
  }
  r->uptime_s = (uv_hrtime() - ctx->started_ns) / 1000000000u;
  *resp = &r->base;
  if (!r->status || !r->version || !r->caller || !r->role) {
    snprintf(errmsg, errlen, "out of memory");
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  return GRPC_STATUS_OK;
}
