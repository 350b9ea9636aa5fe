/* switchyard-load: the HTTP/1.1 keep-alive target.
 *
 * One slot is one TCP connection carrying one request at a time. The
 * connection is opened lazily (or ahead of time by connect()), reused while
 * the server keeps it alive, and reopened when the server closes it. A
 * request that finds its reused connection closed by the server before any
 * byte of the answer arrived (the server's idle close raced our write) is
 * sent once more on a fresh connection, as browsers and HTTP client
 * libraries do; everything else that breaks a request is reported as an
 * error of its kind. Responses are parsed with http-parser in response mode:
 * Content-Length, chunked and read-until-close bodies, SSE events counted
 * as they complete. */
#include "loadtest/load.h"
#include "common/buf.h"
#include "common/err.h"

#include <assert.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PATH "/v1/chat/completions"
#define HEAD_MAX (256u * 1024) /* request line + headers of one request */
#define READ_BUF (64u * 1024)

typedef enum {
  C_CLOSED = 0, /* no TCP handle */
  C_CONNECTING,
  C_READY,      /* connected, no request */
  C_BUSY,       /* request written or being written, answer pending */
  C_CLOSING,    /* uv_close() called, waiting for the close callback */
} conn_state;

typedef struct http_conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_timer_t timer; /* request timeout, and deferred failures (0 ms) */
  http_parser parser;
  struct sy_load_target *t;
  size_t slot;
  conn_state state;
  int has_req;       /* a request is owed its done() */
  int preconnect;    /* a connect() is owed its connected() */
  int reused;        /* this TCP connection already carried a whole answer */
  int retried;       /* the current request was already resent once */
  int writing;       /* wreq is in flight: it may not be reused yet */
  sy_load_err pend;  /* failure to report from the timer (not from send()) */
  sy_load_req req;
  sy_buf head;
  char user_frag[48]; /* "{"user":"user-N"," spliced in front of the body */
  size_t user_frag_len;
  /* answer in progress */
  uint64_t t_read;   /* when the bytes being parsed arrived */
  uint64_t resp_bytes;
  int got_body, msg_done, keep_alive, status, sse_nl;
} http_conn;

struct sy_load_target {
  uv_loop_t *loop;
  sy_load_sink sink;
  unsigned timeout_ms;
  struct sockaddr_storage addr;
  sy_buf tmpl; /* request line and fixed headers */
  http_parser_settings settings;
  http_conn *conns;
  size_t n;
  int closing;
  size_t open_handles; /* tcp + timer handles not yet closed */
  char rbuf[READ_BUF]; /* one loop thread: every read is consumed before the next */
};

static void start_connect(http_conn *c);
static void start_write(http_conn *c);
static void on_timer(uv_timer_t *tm);

static int fail(char *err, size_t errsz, int rc, const char *fmt, const char *arg) {
  if (err && errsz) snprintf(err, errsz, fmt, arg);
  return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static void on_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  c->t->open_handles--;
}

static void on_tcp_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  sy_load_target *t = c->t;
  t->open_handles--;
  c->state = C_CLOSED;
  c->reused = 0;
  if (t->closing) return;
  /* a request is waiting for a connection (sent while closing, or a retry) */
  if (c->has_req && !c->pend) start_connect(c);
}

static void close_conn(http_conn *c) {
  if (c->state == C_CLOSED || c->state == C_CLOSING) return;
  c->state = C_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* Ends the current request. The slot is consistent (READY, CLOSING or
 * CLOSED) before the sink hears of it, because the sink may send again. */
static void finish(http_conn *c, sy_load_err kind, int status) {
  if (!c->has_req) return;
  c->has_req = 0;
  uv_timer_stop(&c->timer);
  sy_load_result r = {.kind = kind, .status = status};
  c->t->sink.done(c->t->sink.ctx, c->slot, &r, uv_hrtime());
}

/* Reports a failure found inside send() or a callback from the timer, so the
 * sink never hears of it re-entrantly. */
static void fail_later(http_conn *c, sy_load_err kind) {
  c->pend = kind;
  close_conn(c);
  uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void preconnect_done(http_conn *c, int status) {
  if (!c->preconnect) return;
  c->preconnect = 0;
  c->t->sink.connected(c->t->sink.ctx, c->slot, status);
}

static void on_timer(uv_timer_t *tm) {
  http_conn *c = tm->data;
  if (c->t->closing) return;
  if (c->pend) {
    sy_load_err k = c->pend;
    c->pend = SY_LOAD_OK;
    int was_pre = c->preconnect;
    finish(c, k, 0);
    if (was_pre) preconnect_done(c, UV_ECONNREFUSED);
    return;
  }
  /* the request (or the preconnect) ran out of time */
  int connecting = c->state == C_CONNECTING;
  close_conn(c);
  finish(c, connecting ? SY_LOAD_E_CONNECT : SY_LOAD_E_TIMEOUT, 0);
  preconnect_done(c, UV_ETIMEDOUT);
}

/* The connection broke (reset, EOF mid-answer, write error). */
static void conn_broken(http_conn *c, sy_load_err kind) {
  int retry = c->has_req && c->reused && c->resp_bytes == 0 && !c->retried;
  close_conn(c);
  if (retry) {
    c->retried = 1; /* on_tcp_closed reconnects and resends */
    return;
  }
  finish(c, kind, 0);
}

/* ---------------------------------------------------------------- parsing */

static int on_headers_complete(http_parser *p) {
  http_conn *c = p->data;
  c->status = (int)p->status_code;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  http_conn *c = p->data;
  sy_load_target *t = c->t;
  if (c->status < 200) return 0; /* an interim answer has no body anyway */
  if (!c->got_body) {
    c->got_body = 1;
    t->sink.first_byte(t->sink.ctx, c->slot, c->t_read);
  }
  if (!c->req.item->stream) return 0;
  /* an SSE event ends at a blank line; \r is ignored so \r\n\r\n counts too */
  for (size_t i = 0; i < len; i++) {
    char ch = at[i];
    if (ch == '\n') {
      if (c->sse_nl) {
        t->sink.chunk(t->sink.ctx, c->slot, c->t_read);
        c->sse_nl = 0;
      } else {
        c->sse_nl = 1;
      }
    } else if (ch != '\r') {
      c->sse_nl = 0;
    }
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_conn *c = p->data;
  if (c->status >= 100 && c->status < 200 && c->status != 101) {
    /* 100 Continue and friends: the final answer follows */
    c->status = 0;
    return 0;
  }
  c->msg_done = 1;
  c->keep_alive = http_should_keep_alive(p);
  /* stop here: http-parser would otherwise go on parsing whatever follows */
  http_parser_pause(p, 1);
  return 0;
}

static sy_load_err kind_of(int status) {
  if (status >= 200 && status < 300) return SY_LOAD_OK;
  if (status >= 400 && status < 500) return SY_LOAD_E_HTTP_4XX;
  if (status >= 500 && status < 600) return SY_LOAD_E_HTTP_5XX;
  return SY_LOAD_E_HTTP_OTHER;
}

/* The answer is complete. `reusable` is 0 when the connection cannot carry
 * another request (EOF, stray bytes after the answer). */
static void complete(http_conn *c, int reusable) {
  /* an answer that came before the request was fully written (an early
   * error) leaves the rest of our body in the stream: the connection is done */
  if (c->keep_alive && reusable && !c->writing && c->state == C_BUSY) {
    c->state = C_READY;
    c->reused = 1;
  } else {
    close_conn(c);
  }
  finish(c, kind_of(c->status), c->status);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  http_conn *c = h->data;
  buf->base = c->t->rbuf;
  buf->len = sizeof c->t->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  http_conn *c = s->data;
  if (c->t->closing || c->state == C_CLOSING || nread == 0) return;
  if (!c->has_req) {
    /* an idle connection: the server closed it (or sent junk); reopen later */
    close_conn(c);
    return;
  }
  c->t_read = uv_hrtime();
  if (nread < 0) {
    if (nread == UV_EOF && c->resp_bytes > 0) {
      /* read-until-close bodies end here */
      http_parser_execute(&c->parser, &c->t->settings, NULL, 0);
      if (c->msg_done) {
        complete(c, 0);
        return;
      }
    }
    conn_broken(c, SY_LOAD_E_RESET);
    return;
  }
  c->resp_bytes += (uint64_t)nread;
  size_t np = http_parser_execute(&c->parser, &c->t->settings, buf->base, (size_t)nread);
  if (c->msg_done) {
    http_parser_pause(&c->parser, 0);
    complete(c, np == (size_t)nread);
    return;
  }
  if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
    close_conn(c);
    finish(c, SY_LOAD_E_PARSE, c->status);
  }
}

/* ---------------------------------------------------------------- sending */

static void on_connect(uv_connect_t *req, int status) {
  http_conn *c = req->data;
  if (c->t->closing || status == UV_ECANCELED || c->state != C_CONNECTING) return;
  if (status < 0) {
    close_conn(c);
    finish(c, SY_LOAD_E_CONNECT, 0);
    preconnect_done(c, status);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc) {
    close_conn(c);
    finish(c, SY_LOAD_E_CONNECT, 0);
    preconnect_done(c, rc);
    return;
  }
  c->state = C_READY;
  if (c->has_req) start_write(c);
  else uv_timer_stop(&c->timer); /* the preconnect's timeout */
  preconnect_done(c, 0);
}

static void start_connect(http_conn *c) {
  sy_load_target *t = c->t;
  assert(c->state == C_CLOSED);
  int rc = uv_tcp_init(t->loop, &c->tcp);
  if (rc) {
    fail_later(c, SY_LOAD_E_CLIENT);
    return;
  }
  t->open_handles++;
  c->tcp.data = c;
  c->creq.data = c;
  c->state = C_CONNECTING;
  rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&t->addr, on_connect);
  if (rc) fail_later(c, SY_LOAD_E_CONNECT);
}

static void on_write(uv_write_t *w, int status) {
  http_conn *c = w->data;
  c->writing = 0;
  if (c->t->closing || status == 0 || status == UV_ECANCELED) return;
  if (c->state == C_BUSY) conn_broken(c, SY_LOAD_E_RESET);
}

static void start_write(http_conn *c) {
  const sy_load_item *it = c->req.item;
  uv_buf_t bufs[3];
  unsigned n = 0;
  bufs[n++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
  if (c->user_frag_len) {
    bufs[n++] = uv_buf_init(c->user_frag, (unsigned)c->user_frag_len);
    bufs[n++] = uv_buf_init(it->body + 1, (unsigned)(it->len - 1)); /* past the '{' */
  } else {
    bufs[n++] = uv_buf_init(it->body, (unsigned)it->len);
  }
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
  c->resp_bytes = 0;
  c->got_body = c->msg_done = c->keep_alive = c->status = c->sse_nl = 0;
  c->state = C_BUSY;
  c->wreq.data = c;
  assert(!c->writing);
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
    conn_broken(c, SY_LOAD_E_RESET);
    return;
  }
  c->writing = 1;
}

/* Builds the head (and the user splice) of the request. */
static int build_request(http_conn *c, const sy_load_req *req) {
  sy_load_target *t = c->t;
  const sy_load_item *it = req->item;
  c->user_frag_len = 0;
  size_t body_len = it->len;
  char user[24] = "";
  if (req->user) {
    snprintf(user, sizeof user, "user-%u", req->user);
    /* every mix body is a JSON object: splice the field in after its '{' */
    int empty = it->len == 2;
    int n = snprintf(c->user_frag, sizeof c->user_frag, "{\"user\":\"%s\"%s", user,
                     empty ? "" : ",");
    if (n < 0 || (size_t)n >= sizeof c->user_frag) return SY_ETOOBIG;
    c->user_frag_len = (size_t)n;
    body_len = it->len - 1 + (size_t)n;
  }
  sy_buf_reset(&c->head);
  int rc = sy_buf_append(&c->head, t->tmpl.data, t->tmpl.len);
  if (rc == 0 && req->user) rc = sy_buf_printf(&c->head, "x-switchyard-user: %s\r\n", user);
  if (rc == 0) rc = sy_buf_printf(&c->head, "Content-Length: %zu\r\n\r\n", body_len);
  return rc;
}

static int http_send(sy_load_target *t, size_t slot, const sy_load_req *req) {
  assert(slot < t->n);
  http_conn *c = &t->conns[slot];
  assert(!c->has_req && !t->closing);
  int rc = build_request(c, req);
  if (rc) return rc;
  c->req = *req;
  c->has_req = 1;
  c->retried = 0;
  c->pend = SY_LOAD_OK;
  if (t->timeout_ms) uv_timer_start(&c->timer, on_timer, t->timeout_ms, 0);
  switch (c->state) {
  case C_READY: start_write(c); break;
  case C_CLOSED: start_connect(c); break;
  default: break; /* CONNECTING writes on connect; CLOSING reconnects on close */
  }
  return 0;
}

static int http_connect(sy_load_target *t, size_t slot) {
  assert(slot < t->n);
  http_conn *c = &t->conns[slot];
  if (c->state != C_CLOSED || c->has_req || t->closing) return SY_EINVAL;
  c->preconnect = 1;
  c->pend = SY_LOAD_OK;
  if (t->timeout_ms) uv_timer_start(&c->timer, on_timer, t->timeout_ms, 0);
  start_connect(c);
  return 0;
}

/* ---------------------------------------------------------------- set-up */

/* Splits http://host[:port][/path] (host may be [v6]). */
static int parse_url(const char *url, char *host, size_t hostsz, int *port, const char **path,
                     char *err, size_t errsz) {
  if (strncmp(url, "https://", 8) == 0)
    return fail(err, errsz, SY_EINVAL, "%s: https is not supported (plain HTTP/1.1 only)", url);
  if (strncmp(url, "http://", 7) != 0)
    return fail(err, errsz, SY_EINVAL, "%s: the URL must start with http://", url);
  const char *h = url + 7, *end = h + strcspn(h, "/?#");
  const char *hend, *colon = NULL;
  if (*h == '[') {
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (!close) return fail(err, errsz, SY_EINVAL, "%s: bad IPv6 address", url);
    hend = close;
    h++;
    if (close + 1 < end) {
      if (close[1] != ':') return fail(err, errsz, SY_EINVAL, "%s: bad port", url);
      colon = close + 1;
    }
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    hend = colon ? colon : end;
  }
  size_t hlen = (size_t)(hend - h);
  if (hlen == 0 || hlen >= hostsz) return fail(err, errsz, SY_EINVAL, "%s: bad host", url);
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = 80;
  if (colon) {
    char *pe;
    long v = strtol(colon + 1, &pe, 10);
    if (pe != end || colon + 1 == end || v <= 0 || v > 65535)
      return fail(err, errsz, SY_EINVAL, "%s: bad port", url);
    *port = (int)v;
  }
  *path = *end ? end : DEFAULT_PATH;
  if (**path != '/') return fail(err, errsz, SY_EINVAL, "%s: the path must start with /", url);
  return 0;
}

/* 1 when one of the user's headers is called `name`. */
static int has_header(const sy_load_cfg *cfg, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < cfg->nheaders; i++)
    if (strncasecmp(cfg->headers[i], name, n) == 0 && cfg->headers[i][n] == ':') return 1;
  return 0;
}

static int build_template(sy_load_target *t, const sy_load_cfg *cfg, const char *host, int port,
                          const char *path) {
  sy_buf *b = &t->tmpl;
  int v6 = strchr(host, ':') != NULL;
  int rc = sy_buf_printf(b, "POST %s HTTP/1.1\r\n", path);
  if (rc == 0 && !has_header(cfg, "host"))
    rc = sy_buf_printf(b, v6 ? "Host: [%s]:%d\r\n" : "Host: %s:%d\r\n", host, port);
  if (rc == 0 && !has_header(cfg, "content-type"))
    rc = sy_buf_appends(b, "Content-Type: application/json\r\n");
  for (size_t i = 0; rc == 0 && i < cfg->nheaders; i++)
    rc = sy_buf_printf(b, "%s\r\n", cfg->headers[i]);
  return rc;
}

static void http_destroy(sy_load_target *t) {
  if (!t) return;
  assert(t->open_handles == 0);
  for (size_t i = 0; i < t->n; i++) sy_buf_free(&t->conns[i].head);
  free(t->conns);
  sy_buf_free(&t->tmpl);
  free(t);
}

static int http_create(uv_loop_t *loop, const sy_load_cfg *cfg, const sy_load_sink *sink,
                       size_t nslots, sy_load_target **out, char *err, size_t errsz) {
  char host[256], portstr[8];
  int port;
  const char *path;
  *out = NULL;
  int rc = parse_url(cfg->url, host, sizeof host, &port, &path, err, errsz);
  if (rc) return rc;
  sy_load_target *t = calloc(1, sizeof *t);
  if (!t) return SY_ENOMEM;
  t->loop = loop;
  t->sink = *sink;
  t->timeout_ms = cfg->timeout_ms;
  sy_buf_init(&t->tmpl, HEAD_MAX / 2);
  t->settings.on_headers_complete = on_headers_complete;
  t->settings.on_body = on_body;
  t->settings.on_message_complete = on_message_complete;

  /* resolve once, synchronously: the run has not started yet */
  uv_getaddrinfo_t gai;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  snprintf(portstr, sizeof portstr, "%d", port);
  rc = uv_getaddrinfo(loop, &gai, NULL, host, portstr, &hints);
  if (rc) {
    if (err && errsz) snprintf(err, errsz, "%s: cannot resolve: %s", host, uv_strerror(rc));
    rc = SY_EINVAL;
    goto fail_free;
  }
  memcpy(&t->addr, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
  uv_freeaddrinfo(gai.addrinfo);

  if ((rc = build_template(t, cfg, host, port, path)) != 0) {
    fail(err, errsz, rc, "%s", "request headers too large");
    goto fail_free;
  }
  t->conns = calloc(nslots, sizeof *t->conns);
  if (!t->conns) {
    rc = SY_ENOMEM;
    goto fail_free;
  }
  t->n = nslots;
  for (size_t i = 0; i < nslots; i++) {
    http_conn *c = &t->conns[i];
    c->t = t;
    c->slot = i;
    sy_buf_init(&c->head, HEAD_MAX);
    uv_timer_init(loop, &c->timer); /* cannot fail on a live loop */
    c->timer.data = c;
    t->open_handles++;
  }
  *out = t;
  return 0;

fail_free:
  http_destroy(t);
  return rc;
}

static void http_close(sy_load_target *t) {
  t->closing = 1;
  for (size_t i = 0; i < t->n; i++) {
    http_conn *c = &t->conns[i];
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    close_conn(c);
  }
}

const sy_load_target_ops sy_load_http_ops = {
    .name = "http",
    .create = http_create,
    .connect = http_connect,
    .send = http_send,
    .close = http_close,
    .destroy = http_destroy,
};
