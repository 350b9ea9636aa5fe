/* switchyard-mock: main, command line, the libuv server and the HTTP/1.1 layer.
 *
 * One loop, one thread. Each connection parses requests with http-parser and
 * queues them; only the head of the queue is answered at a time, so pipelined
 * requests get their responses in order. Answering is a small state machine
 * driven by one per-connection timer: wait the latency, write the head (and
 * the whole body, or the first event), then one event per chunk delay. Writes
 * go out with uv_try_write first; only what the socket did not take is copied
 * into a heap write request, so a keep-alive request costs no allocation in
 * the common case beyond cJSON's. */
#include "loadtest/mock.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_PIPELINE 64       /* queued requests per connection before reading pauses */
#define MAX_CONNS 50000
#define POOL_MAX 256          /* recycled request structs */
#define POOL_BODY_KEEP (64u * 1024) /* larger bodies are freed when a request is recycled */
#define LINGER_MS 2000        /* read-and-discard after our FIN, so unread input does not RST */
#define READ_BUF (64u * 1024)
#define HEAD_MAX 8192         /* status line + fixed headers + resp->extra (<= 4096) */
#define RESP_KEEP (1u << 20)  /* a connection keeps at most this much response memory */

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

typedef struct mock_req {
  struct mock_req *next;
  sy_buf url, hdrs, body;
  const char *method;
  size_t vstart; /* where the header value being parsed starts in hdrs */
  int http_minor;
  int keep_alive;
  int err_status; /* answer with this error and close (bad HTTP, 413, 431) */
  int want_continue;
} mock_req;

enum { H_NONE, H_FIELD, H_VALUE };
enum { T_IDLE, T_LATENCY, T_CHUNK, T_LINGER };

struct mock_server;

typedef struct mock_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t sreq;
  http_parser parser;
  struct mock_server *srv;
  struct mock_conn *prev, *next;
  mock_req *cur;          /* being parsed */
  mock_req *qhead, *qtail; /* complete, waiting to be answered; head is answered */
  size_t qlen;
  sy_mock_resp resp;      /* the head request's response */
  sy_buf head;
  int hstate, tstate;
  size_t ev_next, ev_stop;
  int open_handles;
  unsigned active : 1;    /* the head request is being answered */
  unsigned hung : 1;
  unsigned eof : 1;
  unsigned reading : 1;
  unsigned ignore : 1;    /* parse no more input (close requested, error, hang) */
  unsigned closing : 1;   /* shutdown started; input is discarded */
  unsigned dying : 1;     /* uv_close called */
  unsigned finish_close : 1;
} mock_conn;

typedef struct mock_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  http_parser_settings settings;
  sy_mock_ctx ctx;
  mock_conn *conns;
  size_t nconns;
  mock_req *pool;
  size_t npool;
  int stopping;
  char rbuf[READ_BUF];
} mock_server;

typedef struct mock_wreq {
  uv_write_t req;
  char data[];
} mock_wreq;

static void conn_close(mock_conn *c);
static void conn_shutdown(mock_conn *c);
static void pump(mock_conn *c);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* --- requests ----------------------------------------------------------- */

static mock_req *req_get(mock_server *s) {
  mock_req *r = s->pool;
  if (r) {
    s->pool = r->next;
    s->npool--;
  } else {
    r = malloc(sizeof *r);
    if (!r) return NULL;
    sy_buf_init(&r->url, SY_MOCK_MAX_HEADER_BYTES);
    sy_buf_init(&r->hdrs, SY_MOCK_MAX_HEADER_BYTES);
    sy_buf_init(&r->body, s->ctx.cfg.max_body);
  }
  r->next = NULL;
  r->method = "GET";
  r->vstart = 0;
  r->http_minor = 1;
  r->keep_alive = 1;
  r->err_status = 0;
  r->want_continue = 0;
  return r;
}

static void req_put(mock_server *s, mock_req *r) {
  if (s->npool >= POOL_MAX || s->stopping) {
    sy_buf_free(&r->url);
    sy_buf_free(&r->hdrs);
    sy_buf_free(&r->body);
    free(r);
    return;
  }
  sy_buf_reset(&r->url);
  sy_buf_reset(&r->hdrs);
  if (r->body.cap > POOL_BODY_KEEP)
    sy_buf_free(&r->body);
  else
    sy_buf_reset(&r->body);
  r->next = s->pool;
  s->pool = r;
  s->npool++;
}

/* --- writing ------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status) {
  mock_wreq *w = container_of(req, mock_wreq, req);
  mock_conn *c = container_of(req->handle, mock_conn, tcp);
  free(w);
  if (status < 0 && status != UV_ECANCELED) conn_close(c);
}

static void conn_write(mock_conn *c, uv_buf_t *bufs, unsigned n) {
  if (c->closing || c->dying) return;
  int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (w == UV_EAGAIN) w = 0;
  if (w < 0) {
    conn_close(c);
    return;
  }
  size_t total = 0, done = (size_t)w;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  if (done == total) return;
  mock_wreq *wr = malloc(sizeof *wr + (total - done));
  if (!wr) {
    conn_close(c);
    return;
  }
  size_t off = 0;
  for (unsigned i = 0; i < n; i++) {
    size_t len = bufs[i].len;
    size_t skip = done > len ? len : done;
    done -= skip;
    memcpy(wr->data + off, bufs[i].base + skip, len - skip);
    off += len - skip;
  }
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)off);
  if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(wr);
    conn_close(c);
  }
}

static void send_continue(mock_conn *c) {
  static char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
  uv_buf_t b = uv_buf_init(msg, sizeof msg - 1);
  conn_write(c, &b, 1);
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Payload Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

/* --- answering ---------------------------------------------------------- */

/* Drops the answered head request; closes the connection if asked. */
static void finish(mock_conn *c, int close) {
  mock_req *r = c->qhead;
  c->qhead = r->next;
  if (!c->qhead) c->qtail = NULL;
  c->qlen--;
  req_put(c->srv, r);
  /* One huge answer (a /mock/requests dump) should not pin its memory to the
   * connection for good. */
  if (c->resp.body.cap > RESP_KEEP) sy_buf_free(&c->resp.body);
  if (c->resp.marks.cap > RESP_KEEP) sy_buf_free(&c->resp.marks);
  c->active = 0;
  c->tstate = T_IDLE;
  if (close) conn_shutdown(c);
}

static void write_events(mock_conn *c, size_t from, size_t to, int with_head) {
  sy_mock_resp *resp = &c->resp;
  size_t a = from ? sy_mock_resp_event_end(resp, from - 1) : 0;
  size_t b = to ? sy_mock_resp_event_end(resp, to - 1) : 0;
  uv_buf_t bufs[2];
  unsigned n = 0;
  if (with_head) bufs[n++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
  if (b > a) bufs[n++] = uv_buf_init(resp->body.data + a, (unsigned)(b - a));
  if (n) conn_write(c, bufs, n);
}

static void send_response(mock_conn *c) {
  sy_mock_resp *resp = &c->resp;
  mock_req *r = c->qhead;
  if (resp->action == SY_MOCK_RESET) {
    /* SO_LINGER 0 turns close() into an RST. */
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    conn_close(c);
    return;
  }
  int cut = resp->action == SY_MOCK_CUT;
  int close = cut || resp->close;
  sy_buf *h = &c->head;
  sy_buf_reset(h);
  int rc = sy_buf_appends(h, "HTTP/1.1 ");
  if (rc == 0) rc = sy__mock_u64(h, (uint64_t)resp->status, 10);
  if (rc == 0) rc = sy_buf_append(h, " ", 1);
  if (rc == 0) rc = sy_buf_appends(h, reason(resp->status));
  if (rc == 0) rc = sy_buf_appends(h, "\r\nContent-Type: ");
  if (rc == 0) rc = sy_buf_appends(h, resp->ctype);
  if (rc == 0) rc = sy_buf_append(h, "\r\n", 2);
  if (rc == 0 && !resp->stream) {
    rc = sy_buf_appends(h, "Content-Length: ");
    if (rc == 0) rc = sy__mock_u64(h, resp->body.len, 10);
    if (rc == 0) rc = sy_buf_append(h, "\r\n", 2);
  }
  if (rc == 0 && resp->stream)
    rc = sy_buf_appends(h, resp->chunked ? "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                                         : "Cache-Control: no-cache\r\n");
  if (rc == 0 && close) rc = sy_buf_appends(h, "Connection: close\r\n");
  if (rc == 0 && !close && r->http_minor == 0) rc = sy_buf_appends(h, "Connection: keep-alive\r\n");
  if (rc == 0) rc = sy_buf_append(h, resp->extra.data ? resp->extra.data : "", resp->extra.len);
  if (rc == 0) rc = sy_buf_append(h, "\r\n", 2);
  if (rc) {
    sy_error("mock: response head: %s", sy_strerror(rc));
    conn_close(c);
    return;
  }
  if (!resp->stream) {
    size_t blen = cut ? resp->body.len / 2 : resp->body.len;
    uv_buf_t bufs[2] = {uv_buf_init(h->data, (unsigned)h->len),
                        uv_buf_init(resp->body.data ? resp->body.data : "", (unsigned)blen)};
    conn_write(c, bufs, blen ? 2 : 1);
    finish(c, close);
    return;
  }
  size_t nev = sy_mock_resp_nevents(resp);
  c->ev_stop = cut ? nev / 2 : nev;
  c->finish_close = close;
  if (resp->chunk_delay_ms == 0 || c->ev_stop <= 1) {
    write_events(c, 0, c->ev_stop, 1);
    finish(c, close);
    return;
  }
  write_events(c, 0, 1, 1);
  c->ev_next = 1;
  c->tstate = T_CHUNK; /* the caller arms the timer */
}

static void on_timer(uv_timer_t *t);

static void arm(mock_conn *c, int state, unsigned ms) {
  c->tstate = state;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void start_head(mock_conn *c) {
  mock_req *r = c->qhead;
  sy_mock_resp *resp = &c->resp;
  c->active = 1;
  if (r->err_status) {
    const char *msg = r->err_status == 413   ? "Request body too large."
                      : r->err_status == 431 ? "Request header fields too large."
                                             : "Malformed HTTP request.";
    sy_mock_api_http_error(resp, r->err_status, msg);
    send_response(c);
    return;
  }
  sy_mock_req view = {
      .method = r->method,
      .url = r->url.data ? r->url.data : "/",
      .url_len = r->url.data ? r->url.len : 1,
      .headers = r->hdrs.data ? r->hdrs.data : "",
      .headers_len = r->hdrs.len,
      .body = r->body.data ? r->body.data : "",
      .body_len = r->body.len,
      .http_minor = r->http_minor,
  };
  sy_mock_api_respond(&c->srv->ctx, &view, resp);
  if (!r->keep_alive || (resp->stream && !resp->chunked)) resp->close = 1;
  if (resp->action == SY_MOCK_HANG) {
    /* Keep reading, only to notice when the client gives up. */
    c->hung = 1;
    c->ignore = 1;
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
    return;
  }
  if (resp->latency_ms) {
    arm(c, T_LATENCY, resp->latency_ms);
    return;
  }
  send_response(c);
  if (c->tstate == T_CHUNK) arm(c, T_CHUNK, resp->chunk_delay_ms);
}

static void on_timer(uv_timer_t *t) {
  mock_conn *c = container_of(t, mock_conn, timer);
  switch (c->tstate) {
  case T_LATENCY:
    c->tstate = T_IDLE;
    send_response(c);
    if (c->tstate == T_CHUNK) arm(c, T_CHUNK, c->resp.chunk_delay_ms);
    break;
  case T_CHUNK:
    write_events(c, c->ev_next, c->ev_next + 1, 0);
    if (++c->ev_next >= c->ev_stop)
      finish(c, c->finish_close);
    else
      arm(c, T_CHUNK, c->resp.chunk_delay_ms);
    break;
  case T_LINGER:
    conn_close(c);
    return;
  default:
    return;
  }
  pump(c);
}

static void pump(mock_conn *c) {
  while (!c->active && !c->closing && !c->dying && c->qhead) start_head(c);
  if (c->active || c->closing || c->dying) return;
  if (c->eof) {
    conn_shutdown(c);
    return;
  }
  if (c->cur && c->cur->want_continue) {
    c->cur->want_continue = 0;
    send_continue(c);
  }
  if (!c->reading && !c->ignore && c->qlen < MAX_PIPELINE &&
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

/* --- parsing ------------------------------------------------------------ */

static mock_conn *pconn(http_parser *p) { return p->data; }

static int header_room(mock_req *r, size_t more) {
  if (r->url.len + r->hdrs.len + more > SY_MOCK_MAX_HEADER_BYTES) {
    r->err_status = 431;
    return -1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  mock_conn *c = pconn(p);
  if (!c->cur) c->cur = req_get(c->srv);
  if (!c->cur) return -1;
  c->hstate = H_NONE;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  mock_req *r = pconn(p)->cur;
  if (header_room(r, len) || sy_buf_append(&r->url, at, len)) return -1;
  return 0;
}

/* Ends the value being parsed: trims trailing blanks, adds its terminator. */
static int end_value(mock_req *r) {
  while (r->hdrs.len > r->vstart &&
         (r->hdrs.data[r->hdrs.len - 1] == ' ' || r->hdrs.data[r->hdrs.len - 1] == '\t'))
    r->hdrs.len--;
  return sy_buf_append(&r->hdrs, "", 1);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  mock_conn *c = pconn(p);
  mock_req *r = c->cur;
  if (header_room(r, len + 2)) return -1;
  if (c->hstate == H_VALUE && end_value(r)) return -1;
  size_t start = r->hdrs.len;
  if (sy_buf_append(&r->hdrs, at, len)) return -1;
  for (size_t i = start; i < r->hdrs.len; i++)
    if (r->hdrs.data[i] >= 'A' && r->hdrs.data[i] <= 'Z') r->hdrs.data[i] += 'a' - 'A';
  c->hstate = H_FIELD;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  mock_conn *c = pconn(p);
  mock_req *r = c->cur;
  if (header_room(r, len + 2)) return -1;
  if (c->hstate != H_VALUE) {
    if (sy_buf_append(&r->hdrs, "", 1)) return -1;
    r->vstart = r->hdrs.len;
  }
  if (sy_buf_append(&r->hdrs, at, len)) return -1;
  c->hstate = H_VALUE;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  mock_conn *c = pconn(p);
  mock_req *r = c->cur;
  if (c->hstate == H_VALUE && end_value(r)) return -1;
  r->method = http_method_str((enum http_method)p->method);
  r->http_minor = p->http_major == 1 ? p->http_minor : 0;
  int chunked = (p->flags & F_CHUNKED) != 0;
  int has_len = !chunked && p->content_length != ULLONG_MAX;
  if (has_len && p->content_length > c->srv->ctx.cfg.max_body) {
    r->err_status = 413; /* answered before the body is read, as a client with Expect wants */
    return -1;
  }
  /* Headers are complete, so the view can look them up. */
  sy_mock_req view = {.headers = r->hdrs.data ? r->hdrs.data : "", .headers_len = r->hdrs.len};
  const char *expect = sy_mock_header(&view, "expect");
  if (expect && strcasecmp(expect, "100-continue") == 0 &&
      (chunked || (has_len && p->content_length > 0))) {
    /* An interim response must not overtake earlier final ones. */
    if (!c->qhead)
      send_continue(c);
    else
      r->want_continue = 1;
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  mock_req *r = pconn(p)->cur;
  if (sy_buf_append(&r->body, at, len)) {
    r->err_status = 413;
    return -1;
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  mock_conn *c = pconn(p);
  mock_req *r = c->cur;
  c->cur = NULL;
  r->keep_alive = http_should_keep_alive(p);
  r->want_continue = 0;
  if (c->qtail)
    c->qtail->next = r;
  else
    c->qhead = r;
  c->qtail = r;
  c->qlen++;
  if (!r->keep_alive) {
    /* http-parser would go on parsing after "Connection: close". */
    c->ignore = 1;
    http_parser_pause(p, 1);
  }
  return 0;
}

/* --- connections -------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  /* One buffer for all connections: on_read consumes it before returning. */
  mock_conn *c = container_of(h, mock_conn, tcp);
  *buf = uv_buf_init(c->srv->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  mock_conn *c = container_of(stream, mock_conn, tcp);
  if (nread == 0 || c->dying) return;
  if (nread < 0) {
    c->reading = 0;
    /* Still answer what was fully received (a client may half-close after
     * its last pipelined request), unless nothing is left to do. */
    if (nread != UV_EOF || c->closing || c->hung || !c->qhead) {
      conn_close(c);
    } else {
      c->eof = 1;
      c->ignore = 1;
    }
    return;
  }
  if (c->closing || c->ignore) return;
  http_parser_execute(&c->parser, &c->srv->settings, buf->base, (size_t)nread);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e != HPE_OK && e != HPE_PAUSED) {
    mock_req *r = c->cur ? c->cur : req_get(c->srv);
    c->cur = NULL;
    if (!r) {
      conn_close(c);
      return;
    }
    if (!r->err_status) r->err_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    r->keep_alive = 0;
    r->next = NULL;
    if (c->qtail)
      c->qtail->next = r;
    else
      c->qhead = r;
    c->qtail = r;
    c->qlen++;
    c->ignore = 1;
  }
  pump(c);
  if (c->reading && !c->dying && (c->qlen >= MAX_PIPELINE || (c->ignore && !c->hung))) {
    uv_read_stop(stream);
    c->reading = 0;
  }
}

static void conn_free(mock_conn *c) {
  mock_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  while (c->qhead) {
    mock_req *r = c->qhead;
    c->qhead = r->next;
    req_put(s, r);
  }
  if (c->cur) req_put(s, c->cur);
  sy_mock_resp_free(&c->resp);
  sy_buf_free(&c->head);
  free(c);
}

static void on_conn_closed(uv_handle_t *h) {
  mock_conn *c = h->data;
  if (--c->open_handles == 0) conn_free(c);
}

/* Closes both handles at once; memory goes when both callbacks have run. */
static void conn_close(mock_conn *c) {
  if (c->dying) return;
  c->dying = 1;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  mock_conn *c = container_of(req, mock_conn, sreq);
  if (c->dying) return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  /* Lingering close: drain what the client still sends until it closes too,
   * or a deadline, so our response is not destroyed by an RST. */
  arm(c, T_LINGER, LINGER_MS);
  if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

/* Closes after everything written has been flushed. */
static void conn_shutdown(mock_conn *c) {
  if (c->closing || c->dying) return;
  c->closing = 1;
  uv_timer_stop(&c->timer);
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_close(c);
}

static void on_connection(uv_stream_t *l, int status) {
  mock_server *s = container_of(l, mock_server, listener);
  if (status < 0) {
    sy_warn("mock: accept: %s", uv_strerror(status));
    return;
  }
  mock_conn *c = calloc(1, sizeof *c);
  if (!c) {
    sy_error("mock: out of memory for a connection");
    return;
  }
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  sy_mock_resp_init(&c->resp);
  sy_buf_init(&c->head, HEAD_MAX);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || s->nconns > MAX_CONNS) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c);
    return;
  }
  c->reading = 1;
}

/* --- server ------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum) {
  mock_server *s = sig->data;
  if (s->stopping) return;
  s->stopping = 1;
  sy_info("mock: signal %d, shutting down", signum);
  uv_close((uv_handle_t *)&s->listener, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  for (mock_conn *c = s->conns; c; c = c->next) conn_close(c);
}

int main(int argc, char **argv) {
  sy_mock_cfg cfg;
  char host[256];
  int port;
  struct sockaddr_storage addr;
  const char *listen = sy_mock_cli_parse(argc, argv, &cfg, host, sizeof host, &port, &addr);
  if (cfg.quiet) sy_log_set_level(SY_LOG_WARN);
  signal(SIGPIPE, SIG_IGN);

  int rc = 1;
  mock_server *s = calloc(1, sizeof *s);
  if (!s) {
    fprintf(stderr, "switchyard-mock: out of memory\n");
    return 1;
  }
  s->loop = uv_default_loop();
  sy_mock_ctx_init(&s->ctx, &cfg);
  s->ctx.rng ^= (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32);
  s->settings = (http_parser_settings){
      .on_message_begin = on_message_begin,
      .on_url = on_url,
      .on_header_field = on_header_field,
      .on_header_value = on_header_value,
      .on_headers_complete = on_headers_complete,
      .on_body = on_body,
      .on_message_complete = on_message_complete,
  };
  uv_tcp_init(s->loop, &s->listener);
  uv_signal_init(s->loop, &s->sigterm);
  uv_signal_init(s->loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  int err = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (err == 0) err = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (err == 0) err = uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  if (err == 0) err = uv_signal_start(&s->sigint, on_signal, SIGINT);
  if (err) {
    fprintf(stderr, "switchyard-mock: cannot listen on %s: %s\n", listen, uv_strerror(err));
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    goto out;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  int real_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
  int v6 = strchr(host, ':') != NULL;
  printf("switchyard-mock listening on http://%s%s%s:%d\n", v6 ? "[" : "", host, v6 ? "]" : "",
         real_port);
  fflush(stdout);
  sy_info("mock: latency %ums (+0..%ums), %u chunks, %ums between events, body limit %zu",
          cfg.latency_ms, cfg.jitter_ms, cfg.chunks, cfg.chunk_delay_ms, cfg.max_body);
  uv_run(s->loop, UV_RUN_DEFAULT);
  rc = 0;
out:
  s->stopping = 1;
  while (s->pool) {
    mock_req *r = s->pool;
    s->pool = r->next;
    sy_buf_free(&r->url);
    sy_buf_free(&r->hdrs);
    sy_buf_free(&r->body);
    free(r);
  }
  sy_mock_ctx_free(&s->ctx);
  if (uv_loop_close(s->loop) != 0) sy_warn("mock: loop closed with handles open");
  free(s);
  return rc;
}
