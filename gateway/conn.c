/* Client connections: HTTP/1.1 parsing, limits, timers and response framing.
 *
 * Input is appended to c->in and parsed from there, one request at a time:
 * the parser is paused at each message end, the request is handed to the
 * proxy, and parsing resumes after the answer ends, so pipelined requests are
 * answered in order. While a request is being answered the socket is still
 * read (a disconnect must abort the upstream transfer), up to a cap on
 * buffered input; past it reading stops until the answer ends. */
#include "gateway/conn.h"
#include "gateway/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "gateway/worker.h"

/* Input buffered beyond the request being parsed (pipelined requests, or a
 * body still arriving). */
#define SY_CONN_MAX_PENDING_INPUT (1u << 20)
#define SY_CONN_LINGER_MS 5000 /* graceful close: how long to wait for unsent bytes */

typedef struct sy_wreq {
  uv_write_t req;
  sy_conn *c;
  size_t len;
  char data[];
} sy_wreq;

static void conn_process(sy_conn *c);
static void conn_finish_request(sy_conn *c);
static void conn_close_graceful(sy_conn *c);
static void conn_read_start(sy_conn *c);

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- closing ----------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  sy_conn *c = h->data;
  if (--c->closes_pending > 0) return;
  sy_worker *w = c->w;
  if (c->prev) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  sy_buf_free(&c->in);
  sy_buf_free(&c->out);
  sy_buf_free(&c->req.raw);
  sy_buf_free(&c->req.body);
  free(c);
  sy__worker_conn_closed(w); /* a close callback: safe to stop the worker from here */
}

static void dirty_unlink(sy_conn *c) {
  if (!c->in_dirty) return;
  if (c->dirty_prev) c->dirty_prev->dirty_next = c->dirty_next;
  else c->w->dirty = c->dirty_next;
  if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
  c->dirty_next = c->dirty_prev = NULL;
  c->in_dirty = 0;
}

static int conn_flush(sy_conn *c);

static void conn_close_hard(sy_conn *c) {
  dirty_unlink(c);
  if (c->sink) {
    /* drain deadline or shutdown: the caller is told the answer was cut */
    sy_conn_virtual_cancel(c);
    return;
  }
  if (c->closes_pending) return; /* already closing the handles */
  c->state = SY_CONN_CLOSING;
  if (c->job) {
    c->job->conn = NULL; /* the writer's answer will find nobody waiting */
    c->job = NULL;
  }
  if (c->px) {
    struct sy_proxy *px = c->px;
    c->px = NULL;
    sy_proxy_client_gone(px);
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer);
  c->closes_pending = 2;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  uv_close((uv_handle_t *)&c->timer, on_closed);
}

void sy_conn_close(sy_conn *c) { conn_close_hard(c); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  sy_conn *c = req->data;
  free(req);
  conn_close_hard(c);
}

static void on_linger_timeout(uv_timer_t *t) { conn_close_hard(t->data); }

/* Closes after the queued bytes are written (or after a linger deadline). */
static void conn_close_graceful(sy_conn *c) {
  if (c->state == SY_CONN_CLOSING) return;
  dirty_unlink(c);
  if (conn_flush(c) != 0) {
    conn_close_hard(c);
    return;
  }
  c->state = SY_CONN_CLOSING;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_start(&c->timer, on_linger_timeout, SY_CONN_LINGER_MS, 0);
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    conn_close_hard(c);
    return;
  }
  req->data = c;
}

/* ---- writing ------------------------------------------------------------------ */

size_t sy_conn_pending(const sy_conn *c) {
  return c->sink ? c->sink->pending(c) : c->tcp.write_queue_size + c->out.len;
}

static void on_written(uv_write_t *req, int status) {
  sy_wreq *wr = (sy_wreq *)req;
  sy_conn *c = wr->c;
  free(wr);
  if (status < 0) {
    if (status != UV_ECANCELED) conn_close_hard(c);
    return;
  }
  if (c->px && c->tcp.write_queue_size < SY_WRITE_LOW_WATER) sy_proxy_writable(c->px);
}

/* Writes the pieces in order now; what the kernel does not take at once is
 * copied and queued. Returns 0 or a negative code (client gone). */
static int conn_write_now(sy_conn *c, uv_buf_t *bufs, unsigned n) {
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  int wrote = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (wrote == UV_EAGAIN || wrote == UV_ENOSYS) wrote = 0;
  if (wrote < 0) {
    c->broken = 1;
    return wrote;
  }
  if ((size_t)wrote == total) return 0;
  size_t rest = total - (size_t)wrote;
  sy_wreq *wr = malloc(sizeof *wr + rest);
  if (!wr) {
    c->broken = 1;
    return SY_ENOMEM;
  }
  wr->c = c;
  wr->len = rest;
  size_t skip = (size_t)wrote, off = 0;
  for (unsigned i = 0; i < n; i++) {
    size_t l = bufs[i].len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    memcpy(wr->data + off, bufs[i].base + skip, l - skip);
    off += l - skip;
    skip = 0;
  }
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
  int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc != 0) {
    free(wr);
    c->broken = 1;
    return rc;
  }
  return 0;
}

/* Writes what this loop turn gathered for c. */
static int conn_flush(sy_conn *c) {
  if (!c->out.len) return 0;
  if (c->broken) return SY_ECLOSED;
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int rc = conn_write_now(c, &b, 1);
  sy_buf_reset(&c->out);
  return rc;
}

void sy__conn_flush_all(sy_worker *w) {
  while (w->dirty) {
    sy_conn *c = w->dirty;
    dirty_unlink(c);
    if (conn_flush(c) != 0) {
      conn_close_hard(c);
      continue;
    }
    /* The kernel may have taken everything: no write callback will come, so
     * a transfer paused on these bytes is resumed here. */
    if (c->px && sy_conn_pending(c) < SY_WRITE_LOW_WATER) sy_proxy_writable(c->px);
  }
}

/* Gathers the pieces for one write at the end of this loop turn: a head and
 * its body, or the SSE events of one upstream read, then leave in one
 * syscall. Returns 0 or a negative code (client gone). */
static int conn_writev(sy_conn *c, uv_buf_t *bufs, unsigned n) {
  if (c->state == SY_CONN_CLOSING || c->broken) return SY_ECLOSED;
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  if (c->out.len + total > c->out.max) {
    /* Too much for one gathered write: send what is there, then this. */
    int rc = conn_flush(c);
    if (rc) return rc;
    if (total > c->out.max) return conn_write_now(c, bufs, n);
  }
  for (unsigned i = 0; i < n; i++)
    if (sy_buf_append(&c->out, bufs[i].base, bufs[i].len) != 0) return conn_write_now(c, bufs + i, n - i);
  if (!c->in_dirty) {
    c->in_dirty = 1;
    c->dirty_prev = NULL;
    c->dirty_next = c->w->dirty;
    if (c->w->dirty) c->w->dirty->dirty_prev = c;
    c->w->dirty = c;
  }
  return 0;
}

int sy_conn_write_head(sy_conn *c, int status, const char *headers, size_t headers_len,
                       long long content_length) {
  if (c->sink) {
    if (c->broken || c->state == SY_CONN_CLOSING) return SY_ECLOSED;
    c->head_sent = 1;
    sy_buf all;
    sy_buf_init(&all, headers_len + sizeof c->resp_extra + 64);
    sy_buf_append(&all, headers, headers_len);
    sy_buf_append(&all, c->resp_extra, c->resp_extra_len);
    sy_buf_printf(&all, "x-switchyard-request-id: %s\r\n", c->req.id);
    int rc = c->sink->head(c, status, all.data ? all.data : "", all.len, content_length);
    sy_buf_free(&all);
    if (rc) c->broken = 1;
    return rc;
  }
  char head[512];
  int http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
  c->chunked = content_length < 0 && !http10;
  if (content_length < 0 && http10) c->keep_alive = 0; /* body ends at close */
  if (c->w->draining) c->keep_alive = 0;
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", status, sy_http_reason(status));
  char tail[256];
  int m;
  if (content_length >= 0)
    m = snprintf(tail, sizeof tail, "x-switchyard-request-id: %s\r\nContent-Length: %lld\r\n%s\r\n",
                 c->req.id, content_length, c->keep_alive ? "" : "Connection: close\r\n");
  else
    m = snprintf(tail, sizeof tail, "x-switchyard-request-id: %s\r\n%s%s\r\n", c->req.id,
                 c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                 c->keep_alive ? "" : "Connection: close\r\n");
  uv_buf_t bufs[4] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)headers, (unsigned)headers_len),
                      uv_buf_init(c->resp_extra, c->resp_extra_len), uv_buf_init(tail, (unsigned)m)};
  c->head_sent = 1;
  c->t_response_start_ns = now_ns();
  return conn_writev(c, bufs, 4);
}

int sy_conn_write_body(sy_conn *c, const char *data, size_t len) {
  if (len == 0) return 0;
  if (c->sink) {
    if (c->broken || c->state == SY_CONN_CLOSING) return SY_ECLOSED;
    int rc = c->sink->body(c, data, len);
    if (rc) c->broken = 1;
    return rc;
  }
  if (!c->chunked) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return conn_writev(c, &b, 1);
  }
  char size[24];
  int n = snprintf(size, sizeof size, "%zx\r\n", len);
  uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                      uv_buf_init("\r\n", 2)};
  return conn_writev(c, bufs, 3);
}

void sy_conn_add_header(sy_conn *c, const char *name, const char *value) {
  size_t room = sizeof c->resp_extra - c->resp_extra_len;
  int n = snprintf(c->resp_extra + c->resp_extra_len, room, "%s: %s\r\n", name, value);
  if (n > 0 && (size_t)n < room) c->resp_extra_len += (unsigned)n;
  else c->resp_extra[c->resp_extra_len] = '\0';
}

void sy_conn_end(sy_conn *c) {
  if (c->sink) {
    c->px = NULL;
    if (c->state == SY_CONN_CLOSING) return;
    c->state = SY_CONN_CLOSING;
    c->sink->end(c, !c->broken);
    return;
  }
  if (c->chunked) {
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    conn_writev(c, &b, 1);
  }
  c->px = NULL;
  conn_finish_request(c);
}

void sy_conn_abort(sy_conn *c) {
  c->px = NULL;
  if (c->sink) {
    if (c->state == SY_CONN_CLOSING) return;
    c->state = SY_CONN_CLOSING;
    c->sink->end(c, 0);
    return;
  }
  conn_close_hard(c);
}

void sy_conn_respond(sy_conn *c, int status, const char *content_type, const char *extra_headers,
                     const char *body, size_t len) {
  char hdrs[1024];
  int n = snprintf(hdrs, sizeof hdrs, "Content-Type: %s\r\n%s", content_type,
                   extra_headers ? extra_headers : "");
  if (n < 0 || (size_t)n >= sizeof hdrs) n = 0;
  if (sy_conn_write_head(c, status, hdrs, (size_t)n, (long long)len) == 0)
    sy_conn_write_body(c, body, len);
  sy_conn_end(c);
}

void sy_conn_respond_error(sy_conn *c, int status, const char *message, const char *param,
                           const char *code) {
  sy_buf b;
  sy_buf_init(&b, 4096 + strlen(message));
  if (sy_openai_error_json(&b, message, sy_openai_error_type(status), param, code) != 0) {
    sy_buf_reset(&b);
    sy_buf_appends(&b, "{\"error\":{\"message\":\"internal error\",\"type\":\"api_error\",\"param\":null,\"code\":null}}");
  }
  sy_conn_respond(c, status, "application/json", NULL, b.data, b.len);
  sy_buf_free(&b);
}

/* ---- request state ---------------------------------------------------------------- */

const char *sy_conn_header(const sy_conn *c, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (unsigned i = 0; i < c->req.n_headers; i++) {
    const sy_header_ref *h = &c->req.headers[i];
    if (h->name_len == nl && strncasecmp(c->req.raw.data + h->name_off, name, nl) == 0) {
      *len = h->value_len;
      return c->req.raw.data + h->value_off;
    }
  }
  return NULL;
}

const char *sy_conn_url(const sy_conn *c, size_t *len) {
  *len = c->req.url_len;
  return c->req.raw.data ? c->req.raw.data + c->req.url_off : "";
}

static void timer_for_state(sy_conn *c);

static void conn_finish_request(sy_conn *c) {
  if (c->state == SY_CONN_CLOSING) return;
  if (!c->keep_alive || c->broken || c->w->draining) {
    conn_close_graceful(c);
    return;
  }
  sy_buf_reset(&c->req.raw);
  /* Give back a large body's memory instead of keeping it per idle connection. */
  if (c->req.body.cap > 64 * 1024) sy_buf_free(&c->req.body);
  else sy_buf_reset(&c->req.body);
  c->req.n_headers = 0;
  c->head_sent = 0;
  c->chunked = 0;
  c->expect_continue = 0;
  c->resp_extra_len = 0;
  c->state = SY_CONN_IDLE;
  http_parser_pause(&c->parser, 0);
  timer_for_state(c);
  if (c->read_stopped) {
    c->read_stopped = 0;
    conn_read_start(c);
  }
  conn_process(c);
}

/* ---- timers ------------------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t) {
  sy_conn *c = t->data;
  switch (c->state) {
  case SY_CONN_IDLE:
    conn_close_hard(c);
    break;
  case SY_CONN_HEADERS:
  case SY_CONN_BODY:
    /* Slow or stalled sender: answer 408 and close. */
    c->keep_alive = 0;
    c->state = SY_CONN_HANDLING;
    sy_buf_reset(&c->in);
    sy__worker_request_id(c->w, c->req.id);
    sy_conn_respond_error(c, 408, "Timed out waiting for the request.", NULL, "request_timeout");
    break;
  default:
    break;
  }
}

static void timer_for_state(sy_conn *c) {
  const sy_limits *l = &c->w->cfg->limits;
  uint64_t ms = 0;
  switch (c->state) {
  case SY_CONN_IDLE: ms = l->idle_timeout_ms; break;
  case SY_CONN_HEADERS: ms = l->header_timeout_ms; break;
  case SY_CONN_BODY: ms = l->body_timeout_ms; break;
  default: uv_timer_stop(&c->timer); return;
  }
  uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* ---- parser callbacks ------------------------------------------------------------------ */

#define CONN(p) ((sy_conn *)(p)->data)

static int raw_append(sy_conn *c, const char *at, size_t len) {
  if (sy_buf_append(&c->req.raw, at, len) != 0) {
    c->error_status = 431;
    return -1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  sy_conn *c = CONN(p);
  c->state = SY_CONN_HEADERS;
  c->req.t_start_ns = now_ns();
  c->req.url_off = 0;
  c->req.url_len = 0;
  c->req.n_headers = 0;
  c->last_was_value = 0;
  timer_for_state(c);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  sy_conn *c = CONN(p);
  if (raw_append(c, at, len)) return -1;
  c->req.url_len += (uint32_t)len;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  sy_conn *c = CONN(p);
  if (c->req.n_headers == 0 || c->last_was_value) {
    if (c->req.n_headers == SY_MAX_HEADERS) {
      c->error_status = 431;
      return -1;
    }
    sy_header_ref *h = &c->req.headers[c->req.n_headers++];
    h->name_off = (uint32_t)c->req.raw.len;
    h->name_len = 0;
    h->value_off = 0;
    h->value_len = 0;
    c->last_was_value = 0;
  }
  if (raw_append(c, at, len)) return -1;
  c->req.headers[c->req.n_headers - 1].name_len += (uint32_t)len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  sy_conn *c = CONN(p);
  if (c->req.n_headers == 0) return 0;
  sy_header_ref *h = &c->req.headers[c->req.n_headers - 1];
  if (!c->last_was_value) {
    h->value_off = (uint32_t)c->req.raw.len;
    h->value_len = 0;
    c->last_was_value = 1;
  }
  if (raw_append(c, at, len)) return -1;
  h->value_len += (uint32_t)len;
  return 0;
}

static int header_is(const sy_conn *c, const char *name, const char *value) {
  size_t len;
  const char *v = sy_conn_header(c, name, &len);
  return v && len == strlen(value) && strncasecmp(v, value, len) == 0;
}

static int on_headers_complete(http_parser *p) {
  sy_conn *c = CONN(p);
  c->req.method = (enum http_method)p->method;
  const sy_limits *l = &c->w->cfg->limits;
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > l->max_body_bytes) {
    c->error_status = 413;
    return -1;
  }
  c->state = SY_CONN_BODY;
  timer_for_state(c);
  if (header_is(c, "expect", "100-continue") && p->http_minor >= 1) {
    uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_writev(c, &b, 1);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  sy_conn *c = CONN(p);
  if (sy_buf_append(&c->req.body, at, len) != 0) {
    c->error_status = 413;
    return -1;
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  sy_conn *c = CONN(p);
  c->keep_alive = http_should_keep_alive(p);
  c->state = SY_CONN_HANDLING;
  uv_timer_stop(&c->timer);
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- processing -------------------------------------------------------------------- */

static void conn_fail(sy_conn *c, int status) {
  c->keep_alive = 0;
  c->state = SY_CONN_HANDLING;
  sy_buf_reset(&c->in);
  sy__worker_request_id(c->w, c->req.id);
  switch (status) {
  case 413:
    sy_conn_respond_error(c, 413, "Request body too large.", NULL, "request_too_large");
    break;
  case 431:
    sy_conn_respond_error(c, 431, "Request header fields too large.", NULL, "headers_too_large");
    break;
  default: {
    char msg[160];
    snprintf(msg, sizeof msg, "Malformed HTTP request: %s.",
             http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
    sy_conn_respond_error(c, 400, msg, NULL, "malformed_http");
  }
  }
}

static void conn_dispatch(sy_conn *c) {
  sy__worker_request_id(c->w, c->req.id);
  c->t_dispatch_ns = now_ns();
  sy_proxy_handle(c);
}

/* Parses buffered input and dispatches complete requests until the input is
 * used up or a request is waiting for its answer. Not re-entrant: an answer
 * given synchronously during dispatch is picked up by the loop. */
static void conn_process(sy_conn *c) {
  if (c->in_process) return;
  c->in_process = 1;
  while (c->in.len > 0 && c->state != SY_CONN_HANDLING && c->state != SY_CONN_CLOSING) {
    size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.data, c->in.len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->state == SY_CONN_CLOSING) break;
    if (c->error_status || (e != HPE_OK && e != HPE_PAUSED)) {
      int status = c->error_status ? c->error_status : (e == HPE_HEADER_OVERFLOW ? 431 : 400);
      c->error_status = 0;
      conn_fail(c, status);
      break;
    }
    sy_buf_consume(&c->in, n);
    if (e == HPE_PAUSED) conn_dispatch(c);
  }
  c->in_process = 0;
}

/* ---- reading ----------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sy_conn *c = h->data;
  buf->base = c->w->read_buf;
  buf->len = sizeof c->w->read_buf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sy_conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    /* EOF or error: the client is gone; an in-flight upstream call is aborted. */
    conn_close_hard(c);
    return;
  }
  if (c->state == SY_CONN_CLOSING) return;
  if (sy_buf_append(&c->in, buf->base, (size_t)nread) != 0) {
    /* More unparsed input than allowed: it is a pipelining client far ahead
     * of us, or an attack. Stop reading until the current answer ends. */
    uv_read_stop(s);
    c->read_stopped = 1;
    return;
  }
  if (c->state == SY_CONN_HANDLING) {
    if (c->in.len >= SY_CONN_MAX_PENDING_INPUT / 2) {
      uv_read_stop(s);
      c->read_stopped = 1;
    }
    return;
  }
  conn_process(c);
}

static void conn_read_start(sy_conn *c) {
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close_hard(c);
}

static void on_refused_closed(uv_handle_t *h) { free(h->data); }

int sy_conn_accept(sy_worker *w, uv_stream_t *server) {
  sy_conn *c = calloc(1, sizeof *c);
  if (!c) return SY_ENOMEM;
  uv_tcp_init(&w->loop, &c->tcp);
  c->tcp.data = c;
  c->w = w;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || w->n_conns >= w->max_conns ||
      w->draining) {
    if (w->n_conns >= w->max_conns) sy_debug("connection limit reached; closing a new connection");
    uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
    return SY_EFULL;
  }
  uv_timer_init(&w->loop, &c->timer);
  c->timer.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  sy_buf_init(&c->in, SY_CONN_MAX_PENDING_INPUT + w->cfg->limits.max_header_bytes);
  sy_buf_init(&c->out, SY_WRITE_HIGH_WATER);
  sy_buf_init(&c->req.raw, w->cfg->limits.max_header_bytes);
  sy_buf_init(&c->req.body, w->cfg->limits.max_body_bytes);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->n_conns++;
  c->state = SY_CONN_IDLE;
  timer_for_state(c);
  conn_read_start(c);
  return 0;
}

/* ---- virtual connections ------------------------------------------------------------ */

sy_conn *sy_conn_virtual_new(sy_worker *w, const sy_conn_sink *sink, void *sink_ctx) {
  sy_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->w = w;
  c->sink = sink;
  c->sink_ctx = sink_ctx;
  c->keep_alive = 0;
  c->parser.http_major = 1;
  c->parser.http_minor = 1;
  sy_buf_init(&c->in, 0);
  sy_buf_init(&c->req.raw, w->cfg->limits.max_header_bytes);
  sy_buf_init(&c->req.body, w->cfg->limits.max_body_bytes);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->n_conns++;
  c->state = SY_CONN_HANDLING;
  return c;
}

int sy_conn_virtual_request(sy_conn *c, enum http_method method, const char *target,
                            const char *const *names, const char *const *values, size_t n,
                            const char *body, size_t body_len) {
  c->req.method = method;
  sy_buf_reset(&c->req.raw);
  sy_buf_reset(&c->req.body);
  c->req.url_off = 0;
  c->req.url_len = (uint32_t)strlen(target);
  if (sy_buf_appends(&c->req.raw, target)) return SY_ETOOBIG;
  if (n > SY_MAX_HEADERS) return SY_ETOOBIG;
  c->req.n_headers = 0;
  for (size_t i = 0; i < n; i++) {
    sy_header_ref *h = &c->req.headers[c->req.n_headers++];
    h->name_off = (uint32_t)c->req.raw.len;
    h->name_len = (uint32_t)strlen(names[i]);
    if (sy_buf_appends(&c->req.raw, names[i])) return SY_ETOOBIG;
    h->value_off = (uint32_t)c->req.raw.len;
    h->value_len = (uint32_t)strlen(values[i]);
    if (sy_buf_appends(&c->req.raw, values[i])) return SY_ETOOBIG;
  }
  if (body_len && sy_buf_append(&c->req.body, body, body_len)) return SY_ETOOBIG;
  return 0;
}

void sy_conn_virtual_dispatch(sy_conn *c) {
  c->req.t_start_ns = now_ns();
  c->t_dispatch_ns = c->req.t_start_ns;
  c->state = SY_CONN_HANDLING;
  sy__worker_request_id(c->w, c->req.id);
  sy_proxy_handle(c);
}

void sy_conn_virtual_cancel(sy_conn *c) {
  c->broken = 1;
  if (c->job) {
    c->job->conn = NULL;
    c->job = NULL;
  }
  if (c->px) {
    struct sy_proxy *px = c->px;
    c->px = NULL;
    sy_proxy_client_gone(px);
  }
  if (c->state != SY_CONN_CLOSING) {
    c->state = SY_CONN_CLOSING;
    c->sink->end(c, 0);
  }
}

void sy_conn_virtual_writable(sy_conn *c) {
  if (c->px) sy_proxy_writable(c->px);
}

void sy_conn_virtual_free(sy_conn *c) {
  sy_worker *w = c->w;
  /* Detach without telling the sink: it is the one freeing. */
  c->state = SY_CONN_CLOSING;
  if (c->job) {
    c->job->conn = NULL;
    c->job = NULL;
  }
  if (c->px) {
    struct sy_proxy *px = c->px;
    c->px = NULL;
    sy_proxy_client_gone(px);
  }
  if (c->prev) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  sy_buf_free(&c->in);
  sy_buf_free(&c->req.raw);
  sy_buf_free(&c->req.body);
  free(c);
  /* Not sy__worker_conn_closed(): this may run deep inside an upstream
   * callback, where stopping the worker must not happen; the wakeup does it
   * from the loop. */
  w->n_conns--;
  if (w->draining) uv_async_send(&w->wakeup);
}
