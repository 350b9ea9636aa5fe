#ifndef SY_GRPC_ADMIN_H
#define SY_GRPC_ADMIN_H

/* The Admin gRPC service (admin.proto): authentication, the method table and
 * the handler interface. Handlers run on the admin thread pool (never on the
 * completion-queue thread, never on a worker), so they may block briefly:
 * short LMDB transactions are fine.
 *
 * Before a handler runs, the framework has checked the bearer token
 * (UNAUTHENTICATED when missing or wrong), the role (PERMISSION_DENIED for a
 * read token on a mutation) and decoded the request (INVALID_ARGUMENT when
 * malformed). Plugging a handler in is one line in the method table of
 * grpc_admin.c; methods without one answer UNIMPLEMENTED "not implemented yet". */

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "gateway/config.h"
#include "gateway/worker.h"

struct sy_grpc_call;

typedef struct sy_admin_ctx {
  const sy_config *cfg;
  sy_gateway *gw;            /* route slot (gw->routes), capture pipe (gw->capture) */
  const char *caller;        /* the token's name, for the audit trail */
  sy_admin_role role;
  const char *method;        /* "Promote" */
  uint64_t started_ns;       /* process start (uv_hrtime clock), for uptime */
  struct sy_grpc_call *call; /* framework use */
} sy_admin_ctx;

/* A unary handler. req is the decoded request (read-only; the framework
 * frees it). On success return 0 (GRPC_STATUS_OK) and set *resp to a message
 * of the method's response type that the framework packs and then frees with
 * protobuf_c_message_free_unpacked(*resp, NULL): so allocate it and
 * everything it points to with malloc (strings may also stay
 * protobuf_c_empty_string). On failure return the grpc_status_code and put a
 * message naming the field into errmsg ("name: required"); *resp is ignored
 * (and freed if set). */
typedef int (*sy_admin_handler)(sy_admin_ctx *ctx, const ProtobufCMessage *req,
                                ProtobufCMessage **resp, char *errmsg, size_t errlen);

/* A server-streaming handler (ExportDataset): sends messages with
 * sy_admin_emit() and returns a status as above once done. */
typedef int (*sy_admin_stream_handler)(sy_admin_ctx *ctx, const ProtobufCMessage *req,
                                       char *errmsg, size_t errlen);

/* Sends one message of a streaming call; blocks while the client is slow
 * (bounded queue). Returns 0, SY_ECLOSED when the client went away or the
 * deadline passed (stop and return any status), SY_ETOOBIG when the message
 * is over grpc.max_message_bytes. */
int sy_admin_emit(sy_admin_ctx *ctx, const ProtobufCMessage *msg);

/* 1 when the client cancelled the call (long handlers check it). */
int sy_admin_cancelled(sy_admin_ctx *ctx);

/* Admin.Health. */
int sy_admin_health(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    char *errmsg, size_t errlen);

/* The token in an "authorization" value ("Bearer <token>"), checked in
 * constant time against every configured token's SHA-256. Returns the token
 * or NULL. Exposed for tests. */
const sy_admin_token *sy_admin_authenticate(const sy_config *cfg, const char *value, size_t len);

#endif
