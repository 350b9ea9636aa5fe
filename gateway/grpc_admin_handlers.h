#ifndef SY_GRPC_ADMIN_HANDLERS_H
#define SY_GRPC_ADMIN_HANDLERS_H

/* The Admin RPC handlers plugged into grpc_admin.c's method table, one file
 * per area: grpc_admin_routes.c (routes and their history),
 * grpc_admin_keys.c (client keys), grpc_admin_data.c (captures, labels,
 * export, report). Each follows the sy_admin_handler contract of
 * grpc_admin.h: the response and everything in it is malloc'ed and freed
 * by the framework; errors return a grpc_status_code with a message naming
 * the field. */

#include "gateway/grpc_admin.h"

#define H_(name)                                                                                 \
  int sy_admin_##name(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,   \
                      char *errmsg, size_t errlen)
H_(list_routes);
H_(get_route);
H_(get_history);
H_(put_route);
H_(set_split);
H_(promote);
H_(rollback);
H_(set_shadow);
H_(create_key);
H_(revoke_key);
H_(list_keys);
H_(list_captures);
H_(get_capture);
H_(label_capture);
H_(get_report);
#undef H_

int sy_admin_export_dataset(sy_admin_ctx *ctx, const ProtobufCMessage *req, char *errmsg,
                            size_t errlen);

/* ---- shared by the handler files ----------------------------------------------------------- */

/* A copy of s for a protobuf string field: "" and NULL give the shared
 * empty string (which the framework's free skips). NULL only when out of
 * memory (packed as ""). */
char *sy__admin_str(const char *s);
/* The same for n bytes that need not be NUL-terminated. */
char *sy__admin_strn(const char *s, size_t n);

/* The gRPC status for an SY_* code from the store or the router. */
int sy__admin_status(int rc);

#endif
