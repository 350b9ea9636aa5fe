#ifndef SY_UPSTREAM_LEAN_H
#define SY_UPSTREAM_LEAN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/upstream.h"

/* The lean upstream client: plain HTTP/1.1 over libuv TCP, responses parsed
 * with http-parser, a keep-alive connection pool per (host, port). It serves
 * http:// upstreams at about a quarter of libcurl's CPU per request (see the
 * cost table in DESIGN.md); https:// stays with libcurl (upstream_curl.c).
 *
 * The contract is the one in upstream.h, function for function:
 * sy_lean_start / resume / abort / pool_active behave as sy_upstream_start /
 * resume / abort / pool_active, with the same handler, spec and results.
 *   - on_head once with the final (non-1xx) head, hop-by-hop fields and
 *     Content-Length removed; content_length is -1 when none was sent.
 *   - on_body with de-chunked bytes; SY_UP_PAUSE keeps exactly those bytes
 *     and hands them again (same length, same content) after sy_lean_resume;
 *     SY_UP_ABORT ends the request with SY_UP_EABORTED.
 *   - on_done exactly once per started request unless it was aborted with
 *     sy_lean_abort() or the pool was closed; the request is freed before
 *     on_done is called, so the handle must not be used from on_done on.
 *   - Never a callback from inside sy_lean_start (failures found while
 *     starting are reported from the loop). sy_lean_resume() may call
 *     on_body before it returns; it never calls on_done (a request that ends
 *     while resuming is reported from the loop).
 * Results: SY_UP_ECONNECT when the host cannot be resolved or connected, or
 * the connection closed or reset before any response byte; SY_UP_ETIMEOUT for
 * the connect timeout (up->connect_timeout_ms) and the total timeout
 * (up->timeout_ms, counted from sy_lean_start, queueing and pauses included);
 * SY_UP_EPROTO for a malformed response, a head over the limit, or a
 * connection cut before the response ended; SY_UP_EINTERNAL for out of memory.
 *
 * Connections: a request runs on an idle connection (most recently used
 * first) or on a new one while the host is under its connection cap;
 * otherwise it waits in a FIFO queue. A response that ends cleanly with
 * keep-alive returns the connection to the pool; idle connections are closed
 * after idle_timeout_ms or when the server closes them. A request whose
 * reused connection turns out dead before any response byte (EOF, reset or a
 * failed write) is retried once on a fresh connection; a fresh connection is
 * never retried. Hostnames are resolved once per (host, port), on first use,
 * with uv_getaddrinfo (IPv4 answers preferred); a failed lookup is retried
 * by the next request.
 *
 * Threading: a pool belongs to one loop; every call is made on its thread. */

#define SY_LEAN_MAX_HEAD_BYTES (64u * 1024)  /* response status line + headers */
#define SY_LEAN_MAX_REQ_HEAD_BYTES (4u << 20) /* request line + headers we send */
#define SY_LEAN_IDLE_TIMEOUT_MS 30000u
#define SY_LEAN_MAX_REQUESTS 65536u          /* in flight per pool, queued included */
#define SY_LEAN_MAX_TARGETS 256u             /* distinct base URLs per pool */
#define SY_LEAN_READ_BYTES (64u * 1024)      /* one shared read buffer per pool */

typedef struct sy_lean_pool sy_lean_pool;
typedef struct sy_lean_req sy_lean_req;

/* Zero in any field means its default. */
typedef struct sy_lean_opts {
  /* Connection cap per (host, port) for this pool. 0: derived per upstream
   * as ceil(up->max_connections / workers) from the first spec that names
   * the host (0 max_connections = unlimited). */
  unsigned max_host_conns;
  unsigned workers;          /* divisor for the derived cap; 0 = 1 */
  uint32_t idle_timeout_ms;  /* default SY_LEAN_IDLE_TIMEOUT_MS */
  size_t max_head_bytes;     /* default SY_LEAN_MAX_HEAD_BYTES */
  unsigned max_requests;     /* default SY_LEAN_MAX_REQUESTS; start fails with SY_EFULL past it */
} sy_lean_opts;

/* Creates a pool for one loop. opts may be NULL (all defaults); it is
 * copied. 0, or SY_ENOMEM / a libuv error (nothing to free). */
int sy_lean_pool_new(uv_loop_t *loop, const sy_lean_opts *opts, sy_lean_pool **out);

/* Frees every request without calling on_done, closes every connection and
 * handle, cancels lookups. The loop must run afterwards: the pool's memory is
 * released from the last close callback. Not callable from inside on_head or
 * on_body (from on_done it is fine). */
void sy_lean_pool_close(sy_lean_pool *p);

/* Starts a request: spec->up->base_url must be http://host[:port][/prefix].
 * The spec's strings are copied except body, which must stay valid until
 * on_done or sy_lean_abort(). Header lines with an empty value ("Name:")
 * are not sent (libcurl's way to suppress a default header); Content-Length,
 * Transfer-Encoding and Connection lines are dropped (the client frames the
 * message itself); a Host line replaces the one built from base_url.
 * On success *out is the request and callbacks will come from the loop.
 * On failure nothing was started and no callback will come: SY_ECLOSED,
 * SY_EFULL (max_requests or SY_LEAN_MAX_TARGETS), SY_EINVAL (not an http://
 * URL, a header line without ':' or with CR/LF, a path with space or CR/LF),
 * SY_ETOOBIG (request head over SY_LEAN_MAX_REQ_HEAD_BYTES), SY_ENOMEM. */
int sy_lean_start(sy_lean_pool *p, const sy_upstream_spec *spec, const sy_upstream_handler *h,
                  void *ctx, sy_lean_req **out);

/* Resumes a request whose on_body returned SY_UP_PAUSE: the held bytes are
 * handed to on_body again before this returns, then reading goes on. A no-op
 * when the request is not paused (cheap: callers may call it on every
 * writable event). */
void sy_lean_resume(sy_lean_req *r);

/* Stops a request without calling on_done and frees it; its connection is
 * closed (it cannot be reused mid-response). Not callable from inside one of
 * the request's own callbacks (return SY_UP_ABORT from on_body instead). */
void sy_lean_abort(sy_lean_req *r);

/* Requests started and not yet finished (queued ones included). */
unsigned sy_lean_pool_active(const sy_lean_pool *p);

/* Connections currently open (connecting, busy or idle) across all hosts;
 * for tests and metrics. */
unsigned sy_lean_pool_conns(const sy_lean_pool *p);

/* ---- internal: the message helpers in upstream_lean_msg.c (pure, no I/O) ---- */

#include "common/buf.h"

/* http://host[:port][/prefix], parsed in place (pointers into the URL). */
typedef struct sy__lean_url {
  const char *host;      /* without brackets */
  size_t host_len;       /* 1..255 */
  uint16_t port;         /* 80 when absent */
  const char *authority; /* host[:port] as written: the Host header's value */
  size_t authority_len;
  const char *prefix;    /* the rest: "" or "/..." */
} sy__lean_url;

/* 0 or SY_EINVAL (not http://, no host, bad port, user info, query). */
int sy__lean_parse_url(const char *url, sy__lean_url *out);

/* Writes the request head for spec into out (sy_buf_init'ed, empty):
 * "METHOD prefix+path HTTP/1.1", host_line ("Host: ...\r\n") unless the spec
 * has its own Host line, the spec's lines (empty values and framing fields
 * skipped), Content-Length (not for GET/HEAD/DELETE/OPTIONS without body),
 * the blank line. One allocation. 0, SY_EINVAL, SY_ETOOBIG or SY_ENOMEM. */
int sy__lean_build_head(sy_buf *out, const sy_upstream_spec *s, const char *prefix,
                        size_t prefix_len, const char *host_line, size_t host_line_len);

/* The response head filter: header callbacks in, "Name: value\r\n" lines
 * out, hop-by-hop fields and Content-Length left out. raw counts every head
 * byte seen (status and trailers too) against max. */
typedef struct sy__lean_head {
  sy_buf lines;
  size_t raw, max, name_off;
  int state;
} sy__lean_head;

void sy__lean_head_init(sy__lean_head *h, size_t max);
/* Forgets the lines (a 1xx head) and the byte count; keeps the memory. */
void sy__lean_head_reset(sy__lean_head *h);
/* Each returns 0, or SY_ETOOBIG past max (or SY_ENOMEM). */
int sy__lean_head_count(sy__lean_head *h, size_t n);
int sy__lean_head_field(sy__lean_head *h, const char *at, size_t len);
int sy__lean_head_value(sy__lean_head *h, const char *at, size_t len);
int sy__lean_head_end(sy__lean_head *h); /* the head is complete */

#endif
