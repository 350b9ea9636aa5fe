#ifndef SY_PROXY_H
#define SY_PROXY_H

#include "gateway/conn.h"

/* The request handler: health endpoints, client authentication, request
 * validation, and forwarding to the upstream with the answer streamed back
 * as it arrives. */

struct sy_proxy;

/* Handles the complete request held by c (state SY_CONN_HANDLING). The
 * answer may be given before this returns or later from the loop; either
 * way it ends with sy_conn_end/sy_conn_abort/sy_conn_respond*. */
void sy_proxy_handle(sy_conn *c);

/* The client disconnected (or the connection is being closed): stop the
 * upstream transfer and free the proxy state. The conn is going away. */
void sy_proxy_client_gone(struct sy_proxy *px);

/* The client's unsent bytes fell below SY_WRITE_LOW_WATER: resume a paused
 * upstream transfer. */
void sy_proxy_writable(struct sy_proxy *px);

/* The capture writer finished a feedback job for c: answer it. The job is
 * freed by the caller afterwards. */
struct sy_capture_job;
void sy_proxy_feedback_done(sy_conn *c, struct sy_capture_job *job);

#endif
