#ifndef SY_UPSTREAM_H
#define SY_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

#include "gateway/config.h"

/* The upstream client: one HTTP exchange with an OpenAI-compatible server,
 * driven by a worker's libuv loop. This implementation is libcurl's multi
 * interface (TLS, HTTP/2); the interface is what the proxy sees, so a lean
 * plain-HTTP client can sit behind it later.
 *
 * Threading: a sy_upstream_pool belongs to one worker loop; every call
 * below must be made on that loop's thread. Callbacks are made from the
 * loop, never re-entrantly from a call the caller made, except
 * sy_upstream_resume(), which may deliver held body bytes at once. */

typedef struct sy_upstream_pool sy_upstream_pool;
typedef struct sy_upstream_req sy_upstream_req;

typedef enum {
  SY_UP_OK = 0,
  SY_UP_ECONNECT,  /* could not connect, resolve, or complete TLS: nothing came back */
  SY_UP_ETIMEOUT,  /* connect or total timeout */
  SY_UP_EPROTO,    /* malformed response, or the connection was cut mid-response */
  SY_UP_EABORTED,  /* the handler refused body bytes (on_body returned SY_UP_ABORT) */
  SY_UP_EINTERNAL, /* out of memory or a library error */
} sy_up_result;

#define SY_UP_PAUSE (-1) /* on_body: keep these bytes, deliver them after resume */
#define SY_UP_ABORT (-2) /* on_body: stop the transfer; on_done reports SY_UP_EABORTED */

typedef struct sy_upstream_handler {
  /* The final (non-1xx) response head. hdrs holds "Name: value\r\n" lines
   * with hop-by-hop fields and Content-Length removed; content_length is -1
   * when the upstream did not send one. */
  void (*on_head)(void *ctx, int status, const char *hdrs, size_t hdrs_len,
                  long long content_length);
  /* Body bytes (already de-chunked). Return 0 when consumed, SY_UP_PAUSE or
   * SY_UP_ABORT. */
  int (*on_body)(void *ctx, const char *data, size_t len);
  /* Exactly once per started request unless it was aborted with
   * sy_upstream_abort(). The request is freed right after this returns.
   * detail is a short human-readable reason (no secrets) or NULL. */
  void (*on_done)(void *ctx, sy_up_result res, const char *detail);
} sy_upstream_handler;

typedef struct sy_upstream_spec {
  const sy_upstream_conf *up;
  const char *method;        /* "GET", "POST", ... */
  const char *path;          /* appended to up->base_url, e.g. "/chat/completions?x=1" */
  size_t path_len;
  const char *headers;       /* n_headers NUL-terminated "Name: value" lines, back to back */
  size_t n_headers;
  const char *body;          /* not copied: must stay valid until on_done or abort */
  size_t body_len;
  uint32_t timeout_ms;       /* whole-exchange timeout for this request; 0 = up->timeout_ms */
} sy_upstream_spec;

/* Creates the pool for one loop. max_host_conns caps connections per host
 * for this pool (0 = unlimited). 0 or SY_ENOMEM / SY_EIO. */
int sy_upstream_pool_new(uv_loop_t *loop, long max_host_conns, sy_upstream_pool **out);

/* Aborts what is in flight (no on_done), closes every connection and
 * handle. The loop must run afterwards to finish closing; the pool's memory
 * is released from a close callback. */
void sy_upstream_pool_close(sy_upstream_pool *p);

/* Starts a request. The spec's strings are copied except body. On success
 * *out is the in-flight request (for pause/abort) and callbacks will come.
 * On failure nothing was started and no callback will come. */
int sy_upstream_start(sy_upstream_pool *p, const sy_upstream_spec *spec,
                      const sy_upstream_handler *h, void *ctx, sy_upstream_req **out);

/* Resumes a request whose on_body returned SY_UP_PAUSE. Held bytes may be
 * delivered before this returns. */
void sy_upstream_resume(sy_upstream_req *r);

/* Stops a request without calling on_done and frees it. Not callable from
 * inside one of its own callbacks (return SY_UP_ABORT from on_body instead). */
void sy_upstream_abort(sy_upstream_req *r);

/* Number of requests in flight in this pool. */
unsigned sy_upstream_pool_active(const sy_upstream_pool *p);

/* Process-wide set-up and tear-down of the HTTP client library (call from
 * main before and after the workers). */
int sy_upstream_global_init(void);
void sy_upstream_global_cleanup(void);

#endif
