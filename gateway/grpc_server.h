#ifndef SY_GRPC_SERVER_H
#define SY_GRPC_SERVER_H

#include <stddef.h>

#include "gateway/worker.h"

/* The gRPC API on gRPC C core: the Inference and FeedbackService services on
 * cfg->grpc.listen, the Admin service on cfg->grpc.admin_listen (each its
 * own grpc_server, completion queue and completion-queue thread, so a slow
 * admin call never delays inference). Inference calls run on the workers as
 * virtual connections (gateway/conn.h), so they get exactly the HTTP path's
 * authentication, routing, capture and limits. Admin calls run on a small
 * admin thread pool (gateway/grpc_admin.h).
 *
 * Prints one line per listener on stdout once it listens:
 *   switchyard grpc listening on HOST:PORT
 *   switchyard grpc-admin listening on HOST:PORT
 * The admin listener starts only when admin tokens are configured. */

typedef struct sy_grpc sy_grpc;

/* Starts the listeners configured in gw->cfg->grpc (none: *out = NULL, 0).
 * `workers` (n of them, already running) receive inference calls round-robin
 * and must stay running until sy_grpc_stop() returns. Returns 0, or a
 * negative code with a message in err (nothing is left running). */
int sy_grpc_start(sy_gateway *gw, sy_worker *workers, unsigned n, sy_grpc **out, char *err,
                  size_t errlen);

/* Stops accepting, cancels every call in flight (their upstream transfers
 * are aborted on the workers), waits for the threads and frees everything.
 * Must run before the workers drain. NULL is a no-op. */
void sy_grpc_stop(sy_grpc *g);

#endif
