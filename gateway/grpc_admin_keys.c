/* Admin RPCs on client keys: CreateKey, RevokeKey, ListKeys. The store
 * keeps keys hashed (store/keys.h); after every change the gateway's key set
 * (gateway/keyset.h) is reloaded before the RPC answers, so the next HTTP
 * request already sees it. */
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/grpc_admin_handlers.h"
#include "gateway/keyset.h"
#include "store/keys.h"
#include "switchyard/v1/admin.pb-c.h"

static Switchyard__V1__KeyInfo *key_info(const sy_key_info *k) {
  Switchyard__V1__KeyInfo *ki = malloc(sizeof *ki);
  if (!ki) return NULL;
  switchyard__v1__key_info__init(ki);
  ki->name = sy__admin_str(k->name);
  ki->prefix = sy__admin_str(k->prefix);
  ki->created_at_us = k->created_ts_us;
  ki->created_by = sy__admin_str(k->created_by);
  ki->revoked = k->revoked != 0;
  ki->revoked_at_us = k->revoked_ts_us;
  ki->capture = k->capture != 0;
  return ki;
}

/* The KeyInfo of a stored key. */
static int stored_key_info(sy_store *s, const char *name, Switchyard__V1__KeyInfo **out) {
  sy_key_info k;
  void *h = NULL;
  int rc = sy_keys_get(s, name, &k, &h);
  if (rc) return rc;
  *out = key_info(&k);
  sy_keys_info_free(h);
  return *out ? 0 : SY_ENOMEM;
}

static int reload(sy_admin_ctx *ctx, char *errmsg, size_t errlen) {
  int rc = sy_keyset_reload(ctx->gw->keys, ctx->gw->store);
  if (rc) {
    snprintf(errmsg, errlen, "the key is stored but the gateway's key set could not be "
                             "reloaded: %s", sy_strerror(rc));
    return GRPC_STATUS_INTERNAL;
  }
  return GRPC_STATUS_OK;
}

int sy_admin_create_key(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        char *errmsg, size_t errlen) {
  const Switchyard__V1__CreateKeyRequest *q = (const void *)req;
  if (!q->name[0]) {
    snprintf(errmsg, errlen, "name: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (sy_keyset_config_has(ctx->gw->keys, q->name)) {
    snprintf(errmsg, errlen, "name: \"%s\" is a client key of the config file", q->name);
    return GRPC_STATUS_ALREADY_EXISTS;
  }
  char key[SY_KEYS_TEXT_LEN + 1];
  int rc = sy_keys_create(ctx->gw->store, q->name, !q->no_capture, ctx->caller, key);
  if (rc == SY_EINVAL) {
    snprintf(errmsg, errlen, "name: must be 1..%d characters of [A-Za-z0-9_.-]", SY_KEYS_MAX_NAME);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (rc == SY_EEXIST) {
    snprintf(errmsg, errlen, "name: a key named \"%s\" exists (names are never reused)", q->name);
    return GRPC_STATUS_ALREADY_EXISTS;
  }
  if (rc) {
    snprintf(errmsg, errlen, "creating the key failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  sy_info("admin: client key '%s' created by '%s'%s%s", q->name, ctx->caller,
          q->reason[0] ? ": " : "", q->reason);
  int code = reload(ctx, errmsg, errlen);
  Switchyard__V1__CreateKeyResponse *r = NULL;
  if (code == GRPC_STATUS_OK) {
    if (!(r = malloc(sizeof *r))) {
      code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    } else {
      switchyard__v1__create_key_response__init(r);
      *resp = &r->base;
      r->secret = sy__admin_str(key); /* shown once; the store has only the hash */
      if ((rc = stored_key_info(ctx->gw->store, q->name, &r->key)) != 0) {
        snprintf(errmsg, errlen, "reading the key back failed: %s", sy_strerror(rc));
        code = sy__admin_status(rc);
      }
    }
  }
  OPENSSL_cleanse(key, sizeof key);
  return code;
}

int sy_admin_revoke_key(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        char *errmsg, size_t errlen) {
  const Switchyard__V1__RevokeKeyRequest *q = (const void *)req;
  if (!q->name[0]) {
    snprintf(errmsg, errlen, "name: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (sy_keyset_config_has(ctx->gw->keys, q->name)) {
    snprintf(errmsg, errlen,
             "name: \"%s\" is a client key of the config file; remove it there and restart",
             q->name);
    return GRPC_STATUS_FAILED_PRECONDITION;
  }
  int rc = sy_keys_revoke(ctx->gw->store, q->name, ctx->caller);
  if (rc == SY_ENOTFOUND || rc == SY_EINVAL) {
    snprintf(errmsg, errlen, "name: no key named \"%s\"", q->name);
    return GRPC_STATUS_NOT_FOUND;
  }
  if (rc) {
    snprintf(errmsg, errlen, "revoking the key failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  sy_info("admin: client key '%s' revoked by '%s'%s%s", q->name, ctx->caller,
          q->reason[0] ? ": " : "", q->reason);
  int code = reload(ctx, errmsg, errlen);
  if (code) return code;
  Switchyard__V1__RevokeKeyResponse *r = malloc(sizeof *r);
  if (!r) return GRPC_STATUS_RESOURCE_EXHAUSTED;
  switchyard__v1__revoke_key_response__init(r);
  *resp = &r->base;
  if ((rc = stored_key_info(ctx->gw->store, q->name, &r->key)) != 0) {
    snprintf(errmsg, errlen, "reading the key back failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  return GRPC_STATUS_OK;
}

typedef struct {
  Switchyard__V1__ListKeysResponse *r;
  size_t cap;
  int include_revoked;
} list_ctx;

static int push(list_ctx *x, Switchyard__V1__KeyInfo *ki) {
  if (!ki) return SY_ENOMEM;
  if (x->r->n_keys == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 16;
    Switchyard__V1__KeyInfo **nk = realloc(x->r->keys, nc * sizeof *nk);
    if (!nk) {
      protobuf_c_message_free_unpacked(&ki->base, NULL);
      return SY_ENOMEM;
    }
    x->r->keys = nk;
    x->cap = nc;
  }
  x->r->keys[x->r->n_keys++] = ki;
  return 0;
}

static int list_cb(void *vctx, const sy_key_info *k) {
  list_ctx *x = vctx;
  if (k->revoked && !x->include_revoked) return 0;
  return push(x, key_info(k));
}

int sy_admin_list_keys(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       char *errmsg, size_t errlen) {
  const Switchyard__V1__ListKeysRequest *q = (const void *)req;
  Switchyard__V1__ListKeysResponse *r = malloc(sizeof *r);
  if (!r) return GRPC_STATUS_RESOURCE_EXHAUSTED;
  switchyard__v1__list_keys_response__init(r);
  *resp = &r->base;
  list_ctx x = {.r = r, .include_revoked = q->include_revoked};
  /* the config file's keys first (created_by "config", no prefix: only
   * their hash is known) */
  const sy_config *cfg = ctx->cfg;
  for (size_t i = 0; i < cfg->n_client_keys; i++) {
    sy_key_info k = {.name = cfg->client_keys[i].name, .capture = cfg->client_keys[i].capture,
                     .created_by = "config", .revoked_by = ""};
    if (push(&x, key_info(&k))) return GRPC_STATUS_RESOURCE_EXHAUSTED;
  }
  int rc = sy_keys_list(ctx->gw->store, list_cb, &x);
  if (rc) {
    snprintf(errmsg, errlen, "listing keys failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  return GRPC_STATUS_OK;
}
