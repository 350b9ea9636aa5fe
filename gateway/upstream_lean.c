/* The lean plain-HTTP upstream client (see upstream_lean.h for the contract).
 *
 * Objects: a pool owns targets (one per base_url: prefix and Host line) and
 * hosts (one per host:port: address, FIFO queue of waiting requests, idle
 * connections LIFO, busy connections). A connection carries one request at a
 * time; its parser, timer and write request are embedded, so a request on a
 * kept-alive connection costs no handle set-up and no allocation beyond the
 * request itself and its head buffer.
 *
 * Reading goes into one buffer per pool: a read callback parses everything
 * before it returns, so nothing points into the buffer afterwards, except
 * when the handler pauses; then the refused body bytes and the unparsed rest
 * are copied to the connection (`held`) and reading stops until resume.
 *
 * User callbacks are made only at the tail of a loop callback, after the
 * pool's state is consistent. Failures found where a callback would be
 * re-entrant (inside sy_lean_start, inside sy_lean_resume) put the request
 * on the pool's `done` list and the pool timer reports it at once from the
 * loop; the same timer expires requests that wait in a queue too long. */
#include "gateway/upstream_lean.h"
#include "gateway/upstream_curl.h"

#include <assert.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

#define container_of(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* ---- intrusive circular lists ---------------------------------------------------- */

typedef struct lnk {
  struct lnk *prev, *next;
} lnk;

static void l_init(lnk *h) { h->prev = h->next = h; }
static int l_empty(const lnk *h) { return h->next == h; }
static void l_remove(lnk *e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->prev = e->next = e;
}
static void l_insert_after(lnk *at, lnk *e) {
  e->prev = at;
  e->next = at->next;
  at->next->prev = e;
  at->next = e;
}
static void l_push_front(lnk *h, lnk *e) { l_insert_after(h, e); }
static void l_push_back(lnk *h, lnk *e) { l_insert_after(h->prev, e); }

/* ---- types ------------------------------------------------------------------------ */

enum { RES_NONE = 0, RES_RESOLVING, RES_OK };
enum { REQ_QUEUED = 1, REQ_ACTIVE, REQ_DONE_PENDING };
enum { CONN_CONNECTING = 1, CONN_BUSY, CONN_IDLE, CONN_CLOSING };
enum { FEED_MORE = 0, FEED_PAUSED, FEED_DONE };

typedef struct sy_lean_conn sy_lean_conn;

typedef struct sy_lean_host {
  lnk link; /* pool->hosts */
  sy_lean_pool *pool;
  char *name; /* without brackets */
  uint16_t port;
  int res_state;
  struct sockaddr_storage addr;
  uv_getaddrinfo_t gai;
  unsigned cap;     /* 0 = unlimited */
  unsigned n_conns; /* connecting, busy or idle */
  lnk queue;        /* sy_lean_req, FIFO */
  lnk idle;         /* sy_lean_conn, most recently used first */
  lnk busy;         /* sy_lean_conn connecting or carrying a request */
  int pumping;      /* host_pump() is on the stack: it will see the change */
} sy_lean_host;

typedef struct sy_lean_target {
  lnk link; /* pool->targets */
  char *base_url;
  sy_lean_host *host;
  const char *prefix; /* inside base_url */
  size_t prefix_len;
  char *host_line; /* "Host: authority\r\n" */
  size_t host_line_len;
} sy_lean_target;

struct sy_lean_pool {
  uv_loop_t *loop;
  sy_lean_opts opts;
  uv_timer_t timer; /* done list and queue deadlines */
  uint64_t timer_due; /* 0 = not armed */
  lnk targets, hosts;
  lnk done; /* sy_lean_req whose on_done is still to be made */
  unsigned n_targets;
  unsigned active;
  unsigned n_conns;
  unsigned live; /* handles and lookups still to call back before the pool can be freed */
  int in_cb;     /* inside on_head or on_body */
  int closing;
  char *rbuf;
  int rbuf_busy;
};

struct sy_lean_req {
  int kind; /* SY_UP_KIND_LEAN: the dispatch in upstream.c reads it; first member */
  lnk link; /* host->queue or pool->done */
  sy_lean_pool *pool;
  sy_lean_host *host;
  sy_lean_conn *conn;
  const sy_upstream_handler *h;
  void *ctx;
  int state;
  uint64_t deadline; /* uv_now() ms */
  uint32_t connect_timeout_ms;
  sy_buf out; /* request line and headers */
  const char *body;
  size_t body_len;
  sy__lean_head head; /* the response head being filtered */
  int in_cb;
  unsigned head_done : 1, is_head : 1, paused : 1, got_bytes : 1, retried : 1, need_fresh : 1, in_1xx : 1;
  sy_up_result res; /* REQ_DONE_PENDING */
  const char *detail;
};

struct sy_lean_conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* connect, total or idle timeout, by state */
  uv_connect_t creq;
  uv_write_t wreq;
  http_parser parser;
  lnk link; /* host->idle or host->busy */
  sy_lean_host *host;
  sy_lean_req *req;
  int state;
  int closes;      /* handles still to close */
  unsigned served; /* requests completed on it */
  unsigned writing : 1, reading : 1, msg_done : 1, keep_alive : 1, handler_abort : 1;
  const char *detail;  /* why a callback failed the parse */
  const char *pause_at; /* body bytes the handler refused */
  size_t pause_len;
  sy_buf held; /* paused: [0, held_body) refused body, then unparsed bytes */
  size_t held_body;
};

static void host_pump(sy_lean_host *h);
static void conn_close(sy_lean_conn *c);
static int feed(sy_lean_conn *c, const char *data, size_t len, int defer);

unsigned sy_lean_pool_active(const sy_lean_pool *p) { return p->active; }
unsigned sy_lean_pool_conns(const sy_lean_pool *p) { return p->n_conns; }

/* ---- pool lifetime ---------------------------------------------------------------- */

static void pool_free(sy_lean_pool *p) {
  while (!l_empty(&p->targets)) {
    sy_lean_target *t = container_of(p->targets.next, sy_lean_target, link);
    l_remove(&t->link);
    free(t->base_url);
    free(t->host_line);
    free(t);
  }
  while (!l_empty(&p->hosts)) {
    sy_lean_host *h = container_of(p->hosts.next, sy_lean_host, link);
    l_remove(&h->link);
    free(h->name);
    free(h);
  }
  free(p->rbuf);
  free(p);
}

static void pool_unref(sy_lean_pool *p) {
  assert(p->live > 0);
  if (--p->live == 0 && p->closing) pool_free(p);
}

static void on_pool_timer(uv_timer_t *t);

static void pool_arm(sy_lean_pool *p, uint64_t due) {
  if (p->closing || (p->timer_due && p->timer_due <= due)) return;
  uint64_t now = uv_now(p->loop);
  uv_timer_start(&p->timer, on_pool_timer, due > now ? due - now : 0, 0);
  p->timer_due = due ? due : 1;
}

int sy_lean_pool_new(uv_loop_t *loop, const sy_lean_opts *opts, sy_lean_pool **out) {
  sy_lean_pool *p = calloc(1, sizeof *p);
  if (!p) return SY_ENOMEM;
  p->loop = loop;
  if (opts) p->opts = *opts;
  if (!p->opts.idle_timeout_ms) p->opts.idle_timeout_ms = SY_LEAN_IDLE_TIMEOUT_MS;
  if (!p->opts.max_head_bytes) p->opts.max_head_bytes = SY_LEAN_MAX_HEAD_BYTES;
  if (!p->opts.max_requests) p->opts.max_requests = SY_LEAN_MAX_REQUESTS;
  if (!p->opts.workers) p->opts.workers = 1;
  l_init(&p->targets);
  l_init(&p->hosts);
  l_init(&p->done);
  p->rbuf = malloc(SY_LEAN_READ_BYTES);
  if (!p->rbuf) goto fail_buf;
  int rc = uv_timer_init(loop, &p->timer);
  if (rc) goto fail_timer;
  p->timer.data = p;
  p->live = 1; /* the timer */
  *out = p;
  return 0;

fail_timer:
  free(p->rbuf);
  free(p);
  return rc;
fail_buf:
  free(p);
  return SY_ENOMEM;
}

static void req_free(sy_lean_req *r);

static void on_pool_timer_closed(uv_handle_t *hd) { pool_unref(hd->data); }

void sy_lean_pool_close(sy_lean_pool *p) {
  assert(!p->in_cb);
  if (p->closing) return;
  p->closing = 1;
  while (!l_empty(&p->done)) req_free(container_of(p->done.next, sy_lean_req, link));
  for (lnk *e = p->hosts.next; e != &p->hosts; e = e->next) {
    sy_lean_host *h = container_of(e, sy_lean_host, link);
    while (!l_empty(&h->queue)) req_free(container_of(h->queue.next, sy_lean_req, link));
    while (!l_empty(&h->busy)) {
      sy_lean_conn *c = container_of(h->busy.next, sy_lean_conn, link);
      sy_lean_req *r = c->req;
      c->req = NULL;
      conn_close(c);
      if (r) req_free(r);
    }
    while (!l_empty(&h->idle)) conn_close(container_of(h->idle.next, sy_lean_conn, link));
    if (h->res_state == RES_RESOLVING) uv_cancel((uv_req_t *)&h->gai);
  }
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_pool_timer_closed);
}

/* ---- requests: finishing ------------------------------------------------------------- */

static void req_free(sy_lean_req *r) {
  if (r->state == REQ_QUEUED || r->state == REQ_DONE_PENDING) l_remove(&r->link);
  sy_buf_free(&r->out);
  sy_buf_free(&r->head.lines);
  r->pool->active--;
  free(r);
}

/* Ends a request that no connection refers to any more. defer: report it
 * from the pool timer (the caller may not receive a callback now). */
static void finish(sy_lean_req *r, sy_up_result res, const char *detail, int defer) {
  assert(!r->conn);
  if (defer) {
    if (r->state == REQ_QUEUED) l_remove(&r->link);
    r->state = REQ_DONE_PENDING;
    r->res = res;
    r->detail = detail;
    l_push_back(&r->pool->done, &r->link);
    pool_arm(r->pool, uv_now(r->pool->loop));
    return;
  }
  const sy_upstream_handler *h = r->h;
  void *ctx = r->ctx;
  req_free(r);
  h->on_done(ctx, res, detail);
}

static void on_pool_timer(uv_timer_t *t) {
  sy_lean_pool *p = t->data;
  uint64_t now = uv_now(p->loop), next = 0;
  p->timer_due = 0;
  for (lnk *he = p->hosts.next; he != &p->hosts; he = he->next) {
    sy_lean_host *h = container_of(he, sy_lean_host, link);
    for (lnk *e = h->queue.next; e != &h->queue;) {
      sy_lean_req *r = container_of(e, sy_lean_req, link);
      e = e->next;
      if (r->deadline <= now) finish(r, SY_UP_ETIMEOUT, "timed out waiting for a connection", 1);
      else if (!next || r->deadline < next) next = r->deadline;
    }
  }
  p->timer_due = 0; /* finish() above armed it for "now": this run covers that */
  uv_timer_stop(&p->timer);
  /* on_done may start, abort or finish other requests, even close the pool;
   * take one at a time from the list head. */
  while (!l_empty(&p->done)) {
    sy_lean_req *r = container_of(p->done.next, sy_lean_req, link);
    finish(r, r->res, r->detail, 0);
  }
  if (next && !p->closing) pool_arm(p, next);
}

/* ---- connections --------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *hd) {
  sy_lean_conn *c = hd->data;
  if (--c->closes > 0) return;
  sy_lean_pool *p = c->host->pool;
  sy_buf_free(&c->held);
  free(c);
  pool_unref(p);
}

/* Closes the connection; the request on it (if any) must have been detached. */
static void conn_close(sy_lean_conn *c) {
  if (c->state == CONN_CLOSING) return;
  sy_lean_host *h = c->host;
  l_remove(&c->link);
  h->n_conns--;
  h->pool->n_conns--;
  c->state = CONN_CLOSING;
  c->req = NULL;
  c->closes = 2;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
  host_pump(h); /* a slot is free */
}

/* Detaches the request, closes the connection and ends the request. */
static void conn_fail(sy_lean_conn *c, sy_up_result res, const char *detail, int defer) {
  sy_lean_req *r = c->req;
  c->req = NULL;
  r->conn = NULL;
  conn_close(c);
  finish(r, res, detail, defer);
}

/* The connection died before any response byte. A kept-alive connection may
 * have been closed by the server just as the request went out, so the
 * request gets one more try on a fresh connection; a fresh one failing is
 * the upstream's answer. */
static void conn_lost(sy_lean_conn *c, const char *detail, int defer) {
  sy_lean_req *r = c->req;
  if (c->served == 0 || r->retried) {
    conn_fail(c, SY_UP_ECONNECT, detail, defer);
    return;
  }
  c->req = NULL;
  r->conn = NULL;
  r->retried = 1;
  r->need_fresh = 1;
  r->state = REQ_QUEUED;
  l_push_front(&r->host->queue, &r->link);
  conn_close(c); /* pumps: r goes first */
  if (r->state == REQ_QUEUED) pool_arm(r->pool, r->deadline);
}

static void on_conn_timer(uv_timer_t *t) {
  sy_lean_conn *c = t->data;
  if (c->state == CONN_IDLE) conn_close(c);
  else if (c->state == CONN_CONNECTING) conn_fail(c, SY_UP_ETIMEOUT, "connect timeout", 0);
  else conn_fail(c, SY_UP_ETIMEOUT, "timeout", 0);
}

static void timer_until(sy_lean_conn *c, uint64_t deadline) {
  uint64_t now = uv_now(c->host->pool->loop);
  uv_timer_start(&c->timer, on_conn_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *buf) {
  sy_lean_conn *c = hd->data;
  sy_lean_pool *p = c->host->pool;
  (void)size;
  assert(!p->rbuf_busy);
  *buf = uv_buf_init(p->rbuf, SY_LEAN_READ_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(sy_lean_conn *c) {
  if (c->reading) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
}

static void conn_read_stop(sy_lean_conn *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* The response ended cleanly: the connection goes back to the pool (or
 * closes) before on_done, so a request started from on_done can reuse it. */
static void conn_complete(sy_lean_conn *c, int reuse, int defer) {
  sy_lean_req *r = c->req;
  sy_lean_host *h = c->host;
  c->req = NULL;
  r->conn = NULL;
  if (!reuse) {
    conn_close(c);
  } else {
    c->served++;
    c->state = CONN_IDLE;
    sy_buf_free(&c->held);
    c->held_body = 0;
    l_remove(&c->link);
    l_push_front(&h->idle, &c->link);
    conn_read_start(c); /* an EOF while idle closes it */
    timer_until(c, uv_now(h->pool->loop) + h->pool->opts.idle_timeout_ms);
    host_pump(h);
  }
  finish(r, SY_UP_OK, NULL, defer);
}

static void on_write(uv_write_t *w, int status) {
  sy_lean_conn *c = container_of(w, sy_lean_conn, wreq);
  c->writing = 0;
  if (status == UV_ECANCELED || c->state == CONN_CLOSING) return;
  /* The server may answer early and stop reading (a 413, say): once it has
   * sent something the read side decides. */
  if (status < 0 && c->req && !c->req->got_bytes) conn_lost(c, uv_strerror(status), 0);
}

/* Writes the request on a connected connection. Failure is reported from the
 * loop (defer): this runs inside sy_lean_start. */
static void conn_send(sy_lean_conn *c) {
  sy_lean_req *r = c->req;
  uv_buf_t bufs[2] = {uv_buf_init(r->out.data, (unsigned)r->out.len),
                      uv_buf_init((char *)r->body, (unsigned)r->body_len)};
  unsigned nb = r->body_len ? 2 : 1;
  /* A request nearly always fits the socket buffer: written here, it needs
   * no write request, and libuv does not re-arm the poll watcher for one
   * (an epoll_ctl per request). What does not fit goes through uv_write. */
  int wrote = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
  if (wrote == UV_EAGAIN) wrote = 0;
  if (wrote < 0) {
    conn_lost(c, uv_strerror(wrote), 1);
    return;
  }
  size_t left = (size_t)wrote;
  uv_buf_t *b = bufs;
  while (nb && left >= b->len) {
    left -= b->len;
    b++;
    nb--;
  }
  if (!nb) return;
  b->base += left;
  b->len -= left;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, b, nb, on_write);
  if (rc) {
    conn_lost(c, uv_strerror(rc), 1);
    return;
  }
  c->writing = 1;
}

static void conn_attach(sy_lean_conn *c, sy_lean_req *r) {
  c->req = r;
  r->conn = c;
  r->state = REQ_ACTIVE;
  c->msg_done = 0;
  c->handler_abort = 0;
  c->detail = NULL;
  http_parser_init(&c->parser, HTTP_RESPONSE);
  c->parser.data = c;
}

static void on_connect(uv_connect_t *cr, int status) {
  sy_lean_conn *c = container_of(cr, sy_lean_conn, creq);
  if (status == UV_ECANCELED || c->state == CONN_CLOSING) return;
  if (status < 0) {
    conn_fail(c, SY_UP_ECONNECT, uv_strerror(status), 0);
    return;
  }
  c->state = CONN_BUSY;
  timer_until(c, c->req->deadline);
  conn_read_start(c);
  conn_send(c);
}

/* Opens a connection for r. On failure r is reported from the loop. */
static void conn_open(sy_lean_host *h, sy_lean_req *r) {
  sy_lean_pool *p = h->pool;
  sy_lean_conn *c = calloc(1, sizeof *c);
  if (!c) {
    finish(r, SY_UP_EINTERNAL, "out of memory", 1);
    return;
  }
  int rc = uv_tcp_init(p->loop, &c->tcp);
  if (rc) {
    free(c);
    finish(r, SY_UP_EINTERNAL, uv_strerror(rc), 1);
    return;
  }
  uv_timer_init(p->loop, &c->timer); /* cannot fail */
  c->tcp.data = c->timer.data = c;
  c->host = h;
  c->state = CONN_CONNECTING;
  sy_buf_init(&c->held, 2 * SY_LEAN_READ_BYTES);
  l_push_back(&h->busy, &c->link);
  h->n_conns++;
  p->n_conns++;
  p->live++;
  l_remove(&r->link);
  conn_attach(c, r);
  uv_tcp_nodelay(&c->tcp, 1);
  rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&h->addr, on_connect);
  if (rc) {
    conn_fail(c, SY_UP_ECONNECT, uv_strerror(rc), 1);
    return;
  }
  uint64_t now = uv_now(p->loop), due = now + r->connect_timeout_ms;
  timer_until(c, due < r->deadline ? due : r->deadline);
}

/* ---- hosts ------------------------------------------------------------------------------ */

static void fail_queue(sy_lean_host *h, const char *detail) {
  while (!l_empty(&h->queue))
    finish(container_of(h->queue.next, sy_lean_req, link), SY_UP_ECONNECT, detail, 1);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  sy_lean_host *h = g->data;
  sy_lean_pool *p = h->pool;
  h->res_state = RES_NONE;
  if (!p->closing) {
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = status == 0 ? res : NULL; a; a = a->ai_next) {
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      if (!pick || (pick->ai_family != AF_INET && a->ai_family == AF_INET)) pick = a;
    }
    if (pick && pick->ai_addrlen <= sizeof h->addr) {
      memcpy(&h->addr, pick->ai_addr, pick->ai_addrlen);
      h->res_state = RES_OK;
      host_pump(h);
    } else {
      sy_warn("upstream host %s: cannot resolve (%s)", h->name,
              status ? uv_strerror(status) : "no address");
      fail_queue(h, "cannot resolve the upstream host");
    }
  }
  uv_freeaddrinfo(res);
  pool_unref(p);
}

static void host_resolve(sy_lean_host *h) {
  sy_lean_pool *p = h->pool;
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)h->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  h->gai.data = h;
  int rc = uv_getaddrinfo(p->loop, &h->gai, on_resolved, h->name, port, &hints);
  if (rc) {
    fail_queue(h, "cannot resolve the upstream host");
    return;
  }
  h->res_state = RES_RESOLVING;
  p->live++;
}

/* Gives waiting requests connections, oldest request first. Never calls a
 * user callback itself (failures are deferred), so it is safe anywhere; a
 * call made while it runs for the same host (a connection closed inside)
 * returns at once, the running loop re-reads the queue and the counts. */
static void host_pump(sy_lean_host *h) {
  sy_lean_pool *p = h->pool;
  if (p->closing || h->pumping) return;
  h->pumping = 1;
  while (!l_empty(&h->queue)) {
    sy_lean_req *r = container_of(h->queue.next, sy_lean_req, link);
    if (!r->need_fresh && !l_empty(&h->idle)) {
      sy_lean_conn *c = container_of(h->idle.next, sy_lean_conn, link);
      l_remove(&c->link);
      l_push_back(&h->busy, &c->link);
      c->state = CONN_BUSY;
      l_remove(&r->link);
      conn_attach(c, r);
      timer_until(c, r->deadline);
      conn_send(c);
      continue;
    }
    if (h->res_state != RES_OK) {
      if (h->res_state == RES_NONE) host_resolve(h);
      break;
    }
    if (h->cap && h->n_conns >= h->cap) {
      if (!r->need_fresh || l_empty(&h->idle)) break;
      conn_close(container_of(h->idle.prev, sy_lean_conn, link)); /* the oldest */
      continue;
    }
    conn_open(h, r);
  }
  h->pumping = 0;
}

/* ---- response parsing ------------------------------------------------------------------- */

static int head_fail(sy_lean_conn *c, const char *why) {
  c->detail = why;
  return -1;
}

static int p_on_status(http_parser *hp, const char *at, size_t len) {
  (void)at;
  sy_lean_conn *c = hp->data;
  return sy__lean_head_count(&c->req->head, len) ? head_fail(c, "response head too large") : 0;
}

/* Trailers come through here too: counted against the limit, not kept. */
static int p_on_header_field(http_parser *hp, const char *at, size_t len) {
  sy_lean_conn *c = hp->data;
  sy_lean_req *r = c->req;
  int rc = r->head_done ? sy__lean_head_count(&r->head, len) : sy__lean_head_field(&r->head, at, len);
  return rc ? head_fail(c, "response head too large") : 0;
}

static int p_on_header_value(http_parser *hp, const char *at, size_t len) {
  sy_lean_conn *c = hp->data;
  sy_lean_req *r = c->req;
  int rc = r->head_done ? sy__lean_head_count(&r->head, len) : sy__lean_head_value(&r->head, at, len);
  return rc ? head_fail(c, "response head too large") : 0;
}

static int p_on_headers_complete(http_parser *hp) {
  sy_lean_conn *c = hp->data;
  sy_lean_req *r = c->req;
  if (sy__lean_head_end(&r->head)) return head_fail(c, "response head too large");
  int status = hp->status_code;
  if (status == 101) return head_fail(c, "unexpected 101 Switching Protocols");
  if (status < 200) { /* 1xx: no body; the real head follows */
    r->in_1xx = 1;
    return 0;
  }
  c->keep_alive = http_should_keep_alive(hp) != 0;
  long long clen = -1;
  if (!(hp->flags & F_CHUNKED) && hp->content_length != ULLONG_MAX)
    clen = (long long)hp->content_length;
  sy_lean_pool *p = c->host->pool;
  sy_buf *b = &r->head.lines;
  r->head_done = 1;
  r->in_cb++;
  p->in_cb++;
  r->h->on_head(r->ctx, status, b->data ? b->data : "", b->len, clen);
  p->in_cb--;
  r->in_cb--;
  sy_buf_free(b);
  return r->is_head ? 1 : 0; /* 1: a response to HEAD has no body */
}

static int p_on_body(http_parser *hp, const char *at, size_t len) {
  sy_lean_conn *c = hp->data;
  sy_lean_req *r = c->req;
  sy_lean_pool *p = c->host->pool;
  r->in_cb++;
  p->in_cb++;
  int rc = r->h->on_body(r->ctx, at, len);
  p->in_cb--;
  r->in_cb--;
  if (rc == 0) return 0;
  if (rc == SY_UP_PAUSE) {
    c->pause_at = at;
    c->pause_len = len;
    http_parser_pause(hp, 1);
    return 0;
  }
  c->handler_abort = 1;
  return -1;
}

static int p_on_message_complete(http_parser *hp) {
  sy_lean_conn *c = hp->data;
  sy_lean_req *r = c->req;
  if (r->in_1xx) {
    r->in_1xx = 0;
    sy__lean_head_reset(&r->head);
    return 0;
  }
  c->msg_done = 1;
  http_parser_pause(hp, 1); /* anything after it is not ours */
  return 0;
}

static const http_parser_settings settings = {
    .on_status = p_on_status,
    .on_header_field = p_on_header_field,
    .on_header_value = p_on_header_value,
    .on_headers_complete = p_on_headers_complete,
    .on_body = p_on_body,
    .on_message_complete = p_on_message_complete,
};

/* Keeps the refused body bytes and the unparsed rest. Both may already lie
 * in `held` (a pause while resuming); they only move towards its start. */
static int hold(sy_lean_conn *c, const char *body, size_t blen, const char *rest, size_t rlen) {
  sy_buf *b = &c->held;
  uintptr_t lo = (uintptr_t)b->data, hi = lo + b->len, at = (uintptr_t)body;
  if (b->data && at >= lo && at < hi) {
    memmove(b->data, body, blen);
    memmove(b->data + blen, rest, rlen);
    b->len = blen + rlen;
  } else {
    sy_buf_reset(b);
    if (sy_buf_append(b, body, blen) || sy_buf_append(b, rest, rlen)) return SY_ENOMEM;
  }
  c->held_body = blen;
  return 0;
}

/* Parses bytes for the connection's request and acts on what the parser
 * found. FEED_DONE: the request is finished (or reported later when defer)
 * and the connection may carry another one already. */
static int feed(sy_lean_conn *c, const char *data, size_t len, int defer) {
  sy_lean_req *r = c->req;
  c->pause_at = NULL;
  size_t n = http_parser_execute(&c->parser, &settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->handler_abort) {
    conn_fail(c, SY_UP_EABORTED, "aborted by the handler", defer);
    return FEED_DONE;
  }
  if (e == HPE_PAUSED && c->msg_done) {
    /* Bytes after the response, or a request still being written (the
     * server answered early): the connection is not in a known state. */
    conn_complete(c, c->keep_alive && n == len && !c->writing, defer);
    return FEED_DONE;
  }
  if (e == HPE_PAUSED) {
    if (hold(c, c->pause_at, c->pause_len, data + n, len - n)) {
      conn_fail(c, SY_UP_EINTERNAL, "out of memory", defer);
      return FEED_DONE;
    }
    r->paused = 1;
    conn_read_stop(c);
    return FEED_PAUSED;
  }
  if (e != HPE_OK) {
    conn_fail(c, SY_UP_EPROTO, c->detail ? c->detail : http_errno_description(e), defer);
    return FEED_DONE;
  }
  return FEED_MORE;
}

static void conn_eof(sy_lean_conn *c, ssize_t err) {
  sy_lean_req *r = c->req;
  if (!r->got_bytes) {
    conn_lost(c, err == UV_EOF ? "connection closed before any response byte"
                               : uv_strerror((int)err), 0);
    return;
  }
  if (err == UV_EOF) {
    /* A response without length or chunking ends here. */
    http_parser_execute(&c->parser, &settings, NULL, 0);
    if (c->msg_done) {
      conn_complete(c, 0, 0);
      return;
    }
  }
  conn_fail(c, SY_UP_EPROTO,
            err == UV_EOF ? "connection closed mid-response" : uv_strerror((int)err), 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sy_lean_conn *c = s->data;
  if (nread == 0 || c->state == CONN_CLOSING) return;
  if (!c->req) { /* idle: EOF, error or stray bytes all end it */
    conn_close(c);
    return;
  }
  if (nread < 0) {
    conn_eof(c, nread);
    return;
  }
  c->req->got_bytes = 1;
  sy_lean_pool *p = c->host->pool; /* freed only from a close callback: valid after feed */
  p->rbuf_busy = 1;
  feed(c, buf->base, (size_t)nread, 0);
  p->rbuf_busy = 0;
}

/* ---- public: start / resume / abort ------------------------------------------------------- */

/* Makes the target for a base URL, and its host unless one serves that host:port. */
static int target_new(sy_lean_pool *p, const sy_upstream_conf *up, sy_lean_target **out) {
  sy__lean_url u;
  if (sy__lean_parse_url(up->base_url, &u)) return SY_EINVAL;
  sy_lean_host *h = NULL;
  for (lnk *e = p->hosts.next; e != &p->hosts; e = e->next) {
    sy_lean_host *x = container_of(e, sy_lean_host, link);
    if (x->port == u.port && strlen(x->name) == u.host_len &&
        strncasecmp(x->name, u.host, u.host_len) == 0)
      h = x;
  }
  sy_lean_target *t = calloc(1, sizeof *t);
  if (!t) return SY_ENOMEM;
  t->base_url = strdup(up->base_url);
  t->host_line_len = 6 + u.authority_len + 2;
  t->host_line = malloc(t->host_line_len + 1);
  if (!t->base_url || !t->host_line) goto fail;
  snprintf(t->host_line, t->host_line_len + 1, "Host: %.*s\r\n", (int)u.authority_len,
           u.authority);
  t->prefix = t->base_url + (u.prefix - up->base_url);
  t->prefix_len = strlen(t->prefix);
  if (!h) {
    h = calloc(1, sizeof *h);
    if (!h || !(h->name = strndup(u.host, u.host_len))) {
      free(h);
      goto fail;
    }
    h->pool = p;
    h->port = u.port;
    l_init(&h->queue);
    l_init(&h->idle);
    l_init(&h->busy);
    if (p->opts.max_host_conns) h->cap = p->opts.max_host_conns;
    else h->cap = (up->max_connections + p->opts.workers - 1) / p->opts.workers;
    /* Numeric addresses need no lookup. */
    if (uv_ip4_addr(h->name, u.port, (struct sockaddr_in *)&h->addr) == 0 ||
        uv_ip6_addr(h->name, u.port, (struct sockaddr_in6 *)&h->addr) == 0)
      h->res_state = RES_OK;
    l_push_back(&p->hosts, &h->link);
  }
  t->host = h;
  l_push_front(&p->targets, &t->link);
  p->n_targets++;
  *out = t;
  return 0;

fail:
  free(t->base_url);
  free(t->host_line);
  free(t);
  return SY_ENOMEM;
}

static int target_get(sy_lean_pool *p, const sy_upstream_conf *up, sy_lean_target **out) {
  for (lnk *e = p->targets.next; e != &p->targets; e = e->next) {
    sy_lean_target *t = container_of(e, sy_lean_target, link);
    if (strcmp(t->base_url, up->base_url) == 0) {
      *out = t;
      return 0;
    }
  }
  if (p->n_targets >= SY_LEAN_MAX_TARGETS) return SY_EFULL;
  return target_new(p, up, out);
}

int sy_lean_start(sy_lean_pool *p, const sy_upstream_spec *s, const sy_upstream_handler *h,
                  void *ctx, sy_lean_req **out) {
  if (p->closing) return SY_ECLOSED;
  if (p->active >= p->opts.max_requests) return SY_EFULL;
  if ((s->body_len && !s->body) || (s->path_len && !s->path) || (s->n_headers && !s->headers))
    return SY_EINVAL;
  if (s->body_len > UINT32_MAX) return SY_ETOOBIG; /* one uv_buf_t */
  sy_lean_target *t;
  int rc = target_get(p, s->up, &t);
  if (rc) return rc;
  sy_lean_req *r = calloc(1, sizeof *r);
  if (r) r->kind = SY_UP_KIND_LEAN;
  if (!r) return SY_ENOMEM;
  r->pool = p;
  r->host = t->host;
  r->h = h;
  r->ctx = ctx;
  r->body = s->body;
  r->body_len = s->body_len;
  r->is_head = strcmp(s->method, "HEAD") == 0;
  r->connect_timeout_ms = s->up->connect_timeout_ms;
  r->deadline = uv_now(p->loop) + (s->timeout_ms ? s->timeout_ms : s->up->timeout_ms);
  sy__lean_head_init(&r->head, p->opts.max_head_bytes);
  sy_buf_init(&r->out, SY_LEAN_MAX_REQ_HEAD_BYTES);
  rc = sy__lean_build_head(&r->out, s, t->prefix, t->prefix_len, t->host_line, t->host_line_len);
  if (rc) {
    sy_buf_free(&r->out);
    free(r);
    return rc;
  }
  p->active++;
  r->state = REQ_QUEUED;
  l_push_back(&t->host->queue, &r->link);
  *out = r;
  host_pump(t->host);
  if (r->state == REQ_QUEUED) pool_arm(p, r->deadline);
  return 0;
}

void sy_lean_resume(sy_lean_req *r) {
  if (r->state != REQ_ACTIVE || !r->paused || r->in_cb) return;
  sy_lean_conn *c = r->conn;
  sy_lean_pool *p = r->pool;
  r->paused = 0;
  if (c->held_body) {
    r->in_cb++;
    p->in_cb++;
    int rc = r->h->on_body(r->ctx, c->held.data, c->held_body);
    p->in_cb--;
    r->in_cb--;
    if (rc == SY_UP_PAUSE) {
      r->paused = 1;
      return;
    }
    if (rc != 0) {
      conn_fail(c, SY_UP_EABORTED, "aborted by the handler", 1);
      return;
    }
  }
  size_t off = c->held_body;
  c->held_body = 0;
  http_parser_pause(&c->parser, 0);
  if (c->held.len > off && feed(c, c->held.data + off, c->held.len - off, 1) != FEED_MORE) return;
  sy_buf_free(&c->held);
  conn_read_start(c);
}

void sy_lean_abort(sy_lean_req *r) {
  assert(!r->in_cb);
  if (r->state == REQ_ACTIVE) {
    sy_lean_conn *c = r->conn;
    c->req = NULL;
    r->conn = NULL;
    r->state = 0;
    conn_close(c);
  }
  req_free(r);
}
