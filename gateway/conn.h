#ifndef SY_CONN_H
#define SY_CONN_H

#include <http_parser.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"

/* One client connection: HTTP/1.1 on a libuv TCP stream, parsed with
 * http-parser. It enforces the limits (header bytes, body bytes, header and
 * body read timeouts, idle timeout), answers one request at a time (later
 * pipelined requests wait in the input buffer, in order), and gives the
 * complete request to the proxy (sy_proxy_handle). The proxy answers through
 * the sy_conn_* response calls below.
 *
 * Lifetime: owned by its worker; freed from the uv_close callback. The proxy
 * learns of a disconnect through sy_proxy_client_gone() and must drop its
 * pointer then. */

#define SY_MAX_HEADERS 128          /* more fields → 431 */
#define SY_WRITE_HIGH_WATER (256u * 1024) /* pause the upstream above this much unsent */
#define SY_WRITE_LOW_WATER (64u * 1024)   /* and resume below this */
#define SY_REQUEST_ID_LEN 24

struct sy_worker;
struct sy_proxy;
struct sy_capture_job;

typedef struct sy_header_ref {
  uint32_t name_off, name_len, value_off, value_len; /* into sy_request.raw */
} sy_header_ref;

typedef struct sy_request {
  enum http_method method;
  sy_buf raw;            /* URL, then header names and values; capped at max_header_bytes */
  uint32_t url_off, url_len;
  sy_header_ref headers[SY_MAX_HEADERS];
  unsigned n_headers;
  sy_buf body;           /* capped at max_body_bytes */
  uint64_t t_start_ns;   /* first byte of the request */
  char id[SY_REQUEST_ID_LEN + 1];
} sy_request;

typedef enum {
  SY_CONN_IDLE = 0,   /* between requests (keep-alive) */
  SY_CONN_HEADERS,    /* reading a request's head */
  SY_CONN_BODY,       /* reading its body */
  SY_CONN_HANDLING,   /* request complete; the proxy owns the answer */
  SY_CONN_CLOSING,
} sy_conn_state;

typedef enum {
  SY_BODY_LENGTH,     /* Content-Length framing */
  SY_BODY_CHUNKED,    /* chunked transfer encoding */
} sy_body_mode;

struct sy_conn;

/* A virtual connection's output: instead of HTTP/1.1 on a socket, the
 * answer goes to these callbacks (the gRPC inference service uses this, so a
 * gRPC call gets exactly the HTTP path's routing, capture and limits). All
 * are called on the worker loop. */
typedef struct sy_conn_sink {
  /* The response head: status, and the header lines ("Name: value\r\n")
   * from the upstream and the gateway (x-switchyard-*); content_length -1
   * when unknown (streams). Return 0, or negative if the caller is gone. */
  int (*head)(struct sy_conn *c, int status, const char *hdrs, size_t len,
              long long content_length);
  /* Body bytes (not framed). Return 0, or negative if the caller is gone. */
  int (*body)(struct sy_conn *c, const char *data, size_t len);
  /* The answer is over: ok = 1 complete, 0 cut short. The sink decides when
   * to free the conn (sy_conn_virtual_free), typically right away. */
  void (*end)(struct sy_conn *c, int ok);
  /* Bytes queued but not yet delivered (backpressure); the sink calls
   * sy_conn_virtual_writable() when that falls below SY_WRITE_LOW_WATER. */
  size_t (*pending)(const struct sy_conn *c);
} sy_conn_sink;

typedef struct sy_conn {
  uv_tcp_t tcp;             /* unused by virtual connections */
  const sy_conn_sink *sink; /* NULL: a real HTTP connection */
  void *sink_ctx;
  uv_timer_t timer;
  struct sy_worker *w;
  struct sy_conn *next, *prev; /* worker's list */
  http_parser parser;
  sy_conn_state state;
  sy_buf in;               /* bytes read but not yet parsed (pipelining) */
  sy_request req;
  struct sy_proxy *px;     /* the answer in progress, or NULL */
  int keep_alive;          /* this request allows reuse */
  int head_sent;           /* a response head went out */
  int chunked;             /* the response body uses chunked framing */
  int error_status;        /* a limit tripped while parsing (413, 431): answer it */
  int expect_continue;
  int in_process;          /* inside conn_process (not re-entrant) */
  int last_was_value;      /* parser: the last header callback was a value */
  int broken;              /* a write failed: the client is gone */
  int read_stopped;        /* reading paused: too much pipelined input */
  int closes_pending;      /* handles still closing */
  uint64_t t_response_start_ns;
  uint64_t t_dispatch_ns;  /* the request was complete and handed to the proxy */
  struct sy_capture_job *job; /* a feedback job waiting for the writer, or NULL */
  sy_buf out;              /* response bytes gathered during this loop turn; the
                              worker's check handle flushes them in one write */
  struct sy_conn *dirty_next, *dirty_prev; /* worker's list of conns with output */
  int in_dirty;
  char resp_extra[256];    /* extra "Name: value\r\n" lines for the response head */
  unsigned resp_extra_len;
} sy_conn;

/* Accepts a connection on the worker's listener. Returns 0 or a negative code
 * (the caller has nothing to clean up either way). */
int sy_conn_accept(struct sy_worker *w, uv_stream_t *server);

/* Finds a request header by lowercase name; returns a pointer into the
 * request (not NUL-terminated) and its length via *len, or NULL. */
const char *sy_conn_header(const sy_conn *c, const char *name, size_t *len);

/* The request target ("/v1/chat/completions?x=1"); not NUL-terminated. */
const char *sy_conn_url(const sy_conn *c, size_t *len);

/* Sends a whole response with a Content-Length body. extra_headers holds
 * "Name: value\r\n" lines (may be NULL). Ends the request. */
void sy_conn_respond(sy_conn *c, int status, const char *content_type, const char *extra_headers,
                     const char *body, size_t len);

/* Sends an OpenAI-shaped error response and ends the request. */
void sy_conn_respond_error(sy_conn *c, int status, const char *message, const char *param,
                           const char *code);

/* Streaming response: the head (content_length < 0 → chunked), then body
 * pieces (copied; framed as needed), then sy_conn_end(). Returns 0, or a
 * negative code when the client is gone (the caller stops writing). */
int sy_conn_write_head(sy_conn *c, int status, const char *headers, size_t headers_len,
                       long long content_length);
int sy_conn_write_body(sy_conn *c, const char *data, size_t len);
/* Ends the response cleanly; the connection goes on to the next request or
 * closes. The proxy must not touch the conn afterwards. */
void sy_conn_end(sy_conn *c);
/* Ends the response by closing the connection (the body is incomplete). */
void sy_conn_abort(sy_conn *c);

/* Adds a "Name: value" line to the coming response head (the proxy's
 * x-switchyard-capture-id, ...). Lines that do not fit are dropped. */
void sy_conn_add_header(sy_conn *c, const char *name, const char *value);

/* Writes everything gathered for every connection of the worker (the
 * worker's uv_check callback: once per loop turn, after I/O callbacks). */
void sy__conn_flush_all(struct sy_worker *w);

/* Bytes queued to the client but not yet written. */
size_t sy_conn_pending(const sy_conn *c);

/* Closes the connection now (drain deadline, shutdown). Aborts the proxy. */
void sy_conn_close(sy_conn *c);

/* ---- virtual connections (gRPC inference) ---------------------------------
 * Lifecycle on the worker's loop thread: sy_conn_virtual_new, then
 * sy_conn_virtual_request to fill in the request, sy_conn_virtual_dispatch
 * to run it through the proxy; the sink gets head/body/end; the sink frees
 * the conn with sy_conn_virtual_free (after end, or after cancel). A virtual
 * connection counts as open for the worker's drain. */
sy_conn *sy_conn_virtual_new(struct sy_worker *w, const sy_conn_sink *sink, void *sink_ctx);
/* Sets method, target ("/v1/chat/completions"), headers (n pairs of
 * name/value, NUL-terminated strings) and body (copied). Limits are the
 * HTTP path's: SY_ETOOBIG when headers or body exceed them (nothing sent). */
int sy_conn_virtual_request(sy_conn *c, enum http_method method, const char *target,
                            const char *const *names, const char *const *values, size_t n,
                            const char *body, size_t body_len);
void sy_conn_virtual_dispatch(sy_conn *c);
/* The caller went away (cancelled): the upstream call is aborted, no more
 * sink callbacks come. The sink still frees the conn. */
void sy_conn_virtual_cancel(sy_conn *c);
/* The sink's queue fell below the low-water mark: resume a paused transfer. */
void sy_conn_virtual_writable(sy_conn *c);
void sy_conn_virtual_free(sy_conn *c);

#endif
