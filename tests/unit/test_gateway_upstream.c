/* The lean upstream client (gateway/upstream_lean.c) against a scripted HTTP
 * server in this process: a thread per connection on blocking sockets, on
 * 127.0.0.1 with a free port. The client runs on a libuv loop in the test's
 * thread; every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "gateway/upstream_lean.h"

/* ---- the scripted server ------------------------------------------------------------- */

enum {
  M_OK,          /* 200, Content-Length, keep-alive */
  M_100,         /* 100 Continue, then M_OK */
  M_CHUNKED,     /* chunked in pieces */
  M_SSE,         /* three events 150 ms apart, chunked */
  M_NEVER,       /* reads the request, never answers */
  M_CLOSE_MID,   /* head with Content-Length 100, 10 bytes, close */
  M_CLOSE_AFTER, /* M_OK, then closes the idle connection */
  M_DROP_SECOND, /* M_OK for the first request on a connection, closes on the second */
  M_BIG,         /* 300000-byte patterned body */
  M_HUGE_HEAD,   /* a 70 KB header */
  M_SLOW,        /* M_OK after 100 ms */
  M_EOF_BODY,    /* no length: the body ends when the server closes */
  M_MANY_CHUNKS, /* BIG_LEN bytes in 100-byte chunks, one write: many pieces per read */
};

#define MAX_CONN_THREADS 64
#define BIG_LEN 300000

typedef struct srv {
  int lfd;
  uint16_t port;
  int mode;
  pthread_t th;
  atomic_int stop, accepted, current, max_current, requests, closed;
  pthread_mutex_t mu;
  char last_req[16384];
  pthread_t conn_th[MAX_CONN_THREADS];
  int n_conn_th;
} srv;

typedef struct conn_arg {
  srv *s;
  int fd;
} conn_arg;

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int sends(int fd, const char *s) { return send_all(fd, s, strlen(s)); }

static void nap(srv *s, int ms) {
  for (int i = 0; i < ms / 10 && !s->stop; i++) usleep(10000);
}

static char pattern_byte(size_t i) { return (char)('a' + (i * 7 + i / 251) % 26); }

/* Reads one request (head + Content-Length body). 1, or 0 at EOF / stop. */
static int read_request(srv *s, int fd, char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end) {
      size_t hl = (size_t)(end + 4 - buf), cl = 0;
      char *h = strcasestr(buf, "\r\ncontent-length:");
      if (h && h < end) cl = strtoul(h + 17, NULL, 10);
      if (len >= hl + cl) return 1;
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r = poll(&pf, 1, 20);
    if (s->stop) return 0;
    if (r <= 0) continue;
    if (len + 1 >= cap) return 0;
    ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
    if (n <= 0) return 0;
    len += (size_t)n;
  }
}

static const char OK_RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: keep-alive\r\n"
                              "Keep-Alive: timeout=5\r\nX-Test: yes\r\nContent-Type: text/plain\r\n"
                              "\r\nhello world";

static void serve(srv *s, int fd) {
  char buf[16384];
  for (int k = 0; read_request(s, fd, buf, sizeof buf); k++) {
    s->requests++;
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_req, sizeof s->last_req, "%s", buf);
    pthread_mutex_unlock(&s->mu);
    switch (s->mode) {
    case M_100:
      sends(fd, "HTTP/1.1 100 Continue\r\n\r\n");
      nap(s, 20);
      /* fall through */
    case M_OK:
    case M_CLOSE_AFTER:
      sends(fd, OK_RESP);
      if (s->mode == M_CLOSE_AFTER) return;
      break;
    case M_DROP_SECOND:
      if (k >= 1) return;
      sends(fd, OK_RESP);
      break;
    case M_SLOW:
      nap(s, 100);
      sends(fd, OK_RESP);
      break;
    case M_CHUNKED:
      sends(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
      nap(s, 20);
      sends(fd, "lo\r\n6\r\n wor");
      nap(s, 20);
      sends(fd, "ld\r\n0\r\n\r\n");
      break;
    case M_SSE:
      sends(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
      for (int i = 0; i < 3 && !s->stop; i++) {
        char ev[64];
        int n = snprintf(ev, sizeof ev, "data: %d\n\n", i);
        char chunk[96];
        int m = snprintf(chunk, sizeof chunk, "%x\r\n%s\r\n", n, ev);
        if (send_all(fd, chunk, (size_t)m)) return;
        nap(s, 150);
      }
      sends(fd, "0\r\n\r\n");
      break;
    case M_NEVER:
      while (!s->stop) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 20) > 0 && recv(fd, buf, sizeof buf, 0) <= 0) return;
      }
      return;
    case M_CLOSE_MID:
      sends(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
      nap(s, 20);
      return;
    case M_BIG: {
      char head[128];
      snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
      sends(fd, head);
      char *body = malloc(BIG_LEN);
      for (size_t i = 0; i < BIG_LEN; i++) body[i] = pattern_byte(i);
      send_all(fd, body, BIG_LEN);
      free(body);
      break;
    }
    case M_MANY_CHUNKS: {
      sy_buf out;
      sy_buf_init(&out, 2 * BIG_LEN);
      sy_buf_appends(&out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (size_t i = 0; i < BIG_LEN; i += 100) {
        sy_buf_appends(&out, "64\r\n");
        for (size_t j = i; j < i + 100; j++) sy_buf_append(&out, (char[]){pattern_byte(j)}, 1);
        sy_buf_appends(&out, "\r\n");
      }
      sy_buf_appends(&out, "0\r\n\r\n");
      send_all(fd, out.data, out.len);
      sy_buf_free(&out);
      break;
    }
    case M_HUGE_HEAD: {
      sends(fd, "HTTP/1.1 200 OK\r\nX-Big: ");
      char *v = malloc(70000);
      memset(v, 'x', 70000);
      send_all(fd, v, 70000);
      free(v);
      sends(fd, "\r\nContent-Length: 2\r\n\r\nhi");
      break;
    }
    case M_EOF_BODY:
      sends(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ");
      nap(s, 20);
      sends(fd, "the end");
      return;
    }
  }
}

static void *conn_main(void *arg) {
  conn_arg *a = arg;
  srv *s = a->s;
  int cur = ++s->current;
  int mx = s->max_current;
  while (cur > mx && !atomic_compare_exchange_weak(&s->max_current, &mx, cur)) {
  }
  serve(s, a->fd);
  s->current--;
  close(a->fd);
  s->closed++;
  free(a);
  return NULL;
}

static void *accept_main(void *arg) {
  srv *s = arg;
  while (!s->stop) {
    struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
    if (poll(&pf, 1, 20) <= 0) continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) continue;
    s->accepted++;
    conn_arg *a = malloc(sizeof *a);
    a->s = s;
    a->fd = fd;
    if (s->n_conn_th == MAX_CONN_THREADS ||
        pthread_create(&s->conn_th[s->n_conn_th], NULL, conn_main, a) != 0) {
      close(fd);
      free(a);
      continue;
    }
    s->n_conn_th++;
  }
  for (int i = 0; i < s->n_conn_th; i++) pthread_join(s->conn_th[i], NULL);
  return NULL;
}

static srv *srv_start(int mode) {
  srv *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->mode = mode;
  pthread_mutex_init(&s->mu, NULL);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, 64), 0);
  socklen_t al = sizeof a;
  getsockname(s->lfd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->th, NULL, accept_main, s), 0);
  return s;
}

static void srv_stop(srv *s) {
  s->stop = 1;
  pthread_join(s->th, NULL);
  close(s->lfd);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* ---- the client side ------------------------------------------------------------------ */

typedef struct call {
  int heads, dones, body_calls, status;
  long long clen;
  sy_up_result res;
  char detail[128];
  sy_buf hdrs, body;
  uint64_t t_start, t_done, t_first_body;
  size_t first_body_len;
  /* pause test */
  int pause_plan;      /* pause on body calls 1, 2 (the redelivery), 5, 9, 13, ... */
  int paused, pauses;
  char *held;
  size_t held_len;
  int redeliveries, redelivery_mismatch;
  /* abort test */
  int abort_now;
  int refuse; /* on_body returns SY_UP_ABORT */
  /* keep-alive chain */
  int chain_left;
  struct ctx *t;
} call;

typedef struct ctx {
  uv_loop_t loop;
  sy_lean_pool *pool;
  sy_upstream_conf up;
  char url[128];
  sy_upstream_spec spec;
  srv *s;
} ctx;

static const char HDRS[] = "Content-Type: application/json\0X-Foo: bar\0Accept:\0Content-Length: 99";
static const char BODY[] = "{\"a\":1}";

static void on_head(void *c_, int status, const char *hdrs, size_t len, long long clen) {
  call *c = c_;
  c->heads++;
  c->status = status;
  c->clen = clen;
  sy_buf_append(&c->hdrs, hdrs, len);
}

static void start_call(ctx *t, call *c);

static int on_body(void *c_, const char *data, size_t len) {
  call *c = c_;
  c->body_calls++;
  if (c->body_calls == 1) {
    c->t_first_body = uv_now(&c->t->loop);
    c->first_body_len = len;
  }
  if (c->held) { /* this must be the redelivery of the paused bytes */
    c->redeliveries++;
    if (len != c->held_len || memcmp(data, c->held, len) != 0) {
      c->redelivery_mismatch++;
      fprintf(stderr, "mismatch at call %d: %zu vs %zu: %.20s / %.20s\n", c->body_calls, len, c->held_len, data, c->held);
    }
    free(c->held);
    c->held = NULL;
  }
  if (c->refuse) return SY_UP_ABORT;
  int n = c->body_calls;
  if (c->pause_plan && (n == 2 || n % 4 == 1)) {
    c->pauses++;
    c->held = malloc(len);
    memcpy(c->held, data, len);
    c->held_len = len;
    c->paused = 1;
    return SY_UP_PAUSE;
  }
  sy_buf_append(&c->body, data, len);
  return 0;
}

static const sy_upstream_handler handler;

static void on_done(void *c_, sy_up_result res, const char *detail) {
  call *c = c_;
  c->dones++;
  c->res = res;
  c->t_done = uv_now(&c->t->loop);
  snprintf(c->detail, sizeof c->detail, "%s", detail ? detail : "");
  if (c->chain_left > 0 && res == SY_UP_OK) { /* next request from inside on_done */
    c->chain_left--;
    sy_buf_reset(&c->body);
    sy_buf_reset(&c->hdrs);
    start_call(c->t, c);
  }
}

static const sy_upstream_handler handler = {on_head, on_body, on_done};

typedef struct slot {
  call *c;
  sy_lean_req *r;
} slot;
static slot cur_req; /* the request the pause/abort timers act on */

static void call_init(call *c, ctx *t) {
  memset(c, 0, sizeof *c);
  c->t = t;
  sy_buf_init(&c->hdrs, 1 << 20);
  sy_buf_init(&c->body, 1 << 20);
}

static void call_free(call *c) {
  sy_buf_free(&c->hdrs);
  sy_buf_free(&c->body);
  free(c->held);
}

static void start_call(ctx *t, call *c) {
  c->t_start = uv_now(&t->loop);
  sy_lean_req *r = NULL;
  assert_int_equal(sy_lean_start(t->pool, &t->spec, &handler, c, &r), 0);
  assert_non_null(r);
  cur_req.c = c;
  cur_req.r = r;
}

static void tick(uv_timer_t *h) { (void)h; }

/* Runs the loop until *count reaches want or ms pass. */
static void run_until(ctx *t, const int *count, int want, int ms) {
  uv_timer_t tk;
  uv_timer_init(&t->loop, &tk);
  uv_timer_start(&tk, tick, 5, 5);
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  while ((!count || *count < want) && uv_hrtime() < end) uv_run(&t->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tk, NULL);
  uv_run(&t->loop, UV_RUN_NOWAIT);
}

static void ctx_init(ctx *t, int mode, const sy_lean_opts *opts) {
  memset(t, 0, sizeof *t);
  signal(SIGPIPE, SIG_IGN);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  assert_int_equal(sy_lean_pool_new(&t->loop, opts, &t->pool), 0);
  if (mode >= 0) {
    t->s = srv_start(mode);
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%u/v1", (unsigned)t->s->port);
  }
  t->up.name = "test";
  t->up.base_url = t->url;
  t->up.connect_timeout_ms = 1000;
  t->up.timeout_ms = 5000;
  t->up.max_connections = 8;
  t->spec = (sy_upstream_spec){.up = &t->up,
                               .method = "POST",
                               .path = "/chat/completions",
                               .path_len = 17,
                               .headers = HDRS,
                               .n_headers = 4,
                               .body = BODY,
                               .body_len = sizeof BODY - 1};
}

/* Closes the pool, lets the loop finish every close, checks nothing is left. */
static void ctx_done(ctx *t) {
  sy_lean_pool_close(t->pool);
  assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  if (t->s) srv_stop(t->s);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_plain_content_length(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_OK, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  assert_int_equal(sy_lean_pool_active(t.pool), 1);
  assert_int_equal(c.dones, 0); /* never a callback from inside start */
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.dones, 1);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(c.heads, 1);
  assert_int_equal(c.status, 200);
  assert_int_equal(c.clen, 11);
  assert_string_equal(c.body.data, "hello world");
  assert_non_null(strstr(c.hdrs.data, "X-Test: yes\r\n"));
  assert_non_null(strstr(c.hdrs.data, "Content-Type: text/plain\r\n"));
  assert_null(strcasestr(c.hdrs.data, "connection"));
  assert_null(strcasestr(c.hdrs.data, "keep-alive"));
  assert_null(strcasestr(c.hdrs.data, "content-length"));
  assert_int_equal(sy_lean_pool_active(t.pool), 0);
  /* What the server saw. */
  const char *q = t.s->last_req;
  assert_int_equal(strncmp(q, "POST /v1/chat/completions HTTP/1.1\r\n", 36), 0);
  char host[64];
  snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)t.s->port);
  assert_non_null(strstr(q, host));
  assert_non_null(strstr(q, "\r\nX-Foo: bar\r\n"));
  assert_non_null(strstr(q, "\r\nContent-Type: application/json\r\n"));
  assert_null(strstr(q, "Accept:")); /* an empty value means "do not send" */
  assert_null(strstr(q, "Content-Length: 99")); /* the caller's Content-Length is not ours */
  assert_non_null(strstr(q, "\r\nContent-Length: 7\r\n\r\n{\"a\":1}"));
  call_free(&c);
  ctx_done(&t);
}

static void test_skips_1xx(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_100, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(c.heads, 1);
  assert_int_equal(c.status, 200);
  assert_string_equal(c.body.data, "hello world");
  call_free(&c);
  ctx_done(&t);
}

static void test_chunked(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_CHUNKED, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(c.clen, -1);
  assert_string_equal(c.body.data, "hello world");
  assert_true(c.body_calls >= 3); /* pieces arrive as the server sends them */
  assert_null(strcasestr(c.hdrs.data, "transfer-encoding"));
  call_free(&c);
  ctx_done(&t);
}

static void test_sse_delivered_as_it_arrives(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_SSE, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_string_equal(c.body.data, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  assert_int_equal(c.first_body_len, 9); /* the first event alone */
  assert_true(c.body_calls >= 3);
  /* The first event was handed over long before the stream ended. */
  assert_true(c.t_done - c.t_first_body >= 250);
  assert_non_null(strstr(c.hdrs.data, "Content-Type: text/event-stream"));
  call_free(&c);
  ctx_done(&t);
}

static void test_keepalive_reuse(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_OK, NULL);
  call c;
  call_init(&c, &t);
  c.chain_left = 4; /* four more, each started from the previous on_done */
  start_call(&t, &c);
  run_until(&t, &c.dones, 5, 5000);
  assert_int_equal(c.dones, 5);
  assert_int_equal(c.res, SY_UP_OK);
  assert_string_equal(c.body.data, "hello world");
  assert_int_equal(t.s->requests, 5);
  assert_int_equal(t.s->accepted, 1);
  assert_int_equal(sy_lean_pool_conns(t.pool), 1);
  /* Later sequential requests too. */
  for (int i = 0; i < 3; i++) {
    start_call(&t, &c);
    run_until(&t, &c.dones, 6 + i, 3000);
  }
  assert_int_equal(c.dones, 8);
  assert_int_equal(t.s->accepted, 1);
  call_free(&c);
  ctx_done(&t);
}

static void test_concurrency_cap_queues(void **state) {
  (void)state;
  ctx t;
  sy_lean_opts o = {.max_host_conns = 2};
  ctx_init(&t, M_SLOW, &o);
  call c[6];
  int done = 0;
  for (int i = 0; i < 6; i++) {
    call_init(&c[i], &t);
    start_call(&t, &c[i]);
  }
  assert_int_equal(sy_lean_pool_active(t.pool), 6);
  uint64_t t0 = uv_now(&t.loop);
  for (int k = 0; k < 300 && done < 6; k++) {
    run_until(&t, NULL, 0, 10);
    done = 0;
    for (int i = 0; i < 6; i++) done += c[i].dones;
  }
  assert_int_equal(done, 6);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(c[i].res, SY_UP_OK);
    assert_string_equal(c[i].body.data, "hello world");
  }
  assert_int_equal(t.s->accepted, 2);
  assert_true(t.s->max_current <= 2);
  assert_true(uv_now(&t.loop) - t0 >= 280); /* three waves of 100 ms */
  /* FIFO: the last two started finish last. */
  assert_true(c[5].t_done >= c[1].t_done + 150);
  for (int i = 0; i < 6; i++) call_free(&c[i]);
  ctx_done(&t);
}

static void resume_cb(uv_timer_t *h) {
  (void)h;
  if (cur_req.c->paused && cur_req.c->dones == 0) {
    cur_req.c->paused = 0;
    sy_lean_resume(cur_req.r);
  }
}

static void pause_resume(int mode) {
  ctx t;
  ctx_init(&t, mode, NULL);
  call c;
  call_init(&c, &t);
  c.pause_plan = 1;
  t.up.timeout_ms = 20000; /* hundreds of pauses */
  start_call(&t, &c);
  sy_lean_resume(cur_req.r); /* not paused: a no-op */
  uv_timer_t rt;
  uv_timer_init(&t.loop, &rt);
  uv_timer_start(&rt, resume_cb, 1, 1);
  run_until(&t, &c.dones, 1, 15000);
  uv_close((uv_handle_t *)&rt, NULL);
  assert_int_equal(c.res, SY_UP_OK);
  assert_true(c.pauses >= 3);
  assert_int_equal(c.redeliveries, c.pauses); /* every refused piece came back */
  assert_int_equal(c.redelivery_mismatch, 0); /* identical: same length, same bytes */
  assert_int_equal(c.body.len, BIG_LEN);
  for (size_t i = 0; i < BIG_LEN; i++)
    if (c.body.data[i] != pattern_byte(i)) fail_msg("body differs at %zu", i);
  call_free(&c);
  ctx_done(&t);
}

static void test_pause_resume(void **state) {
  (void)state;
  pause_resume(M_BIG);
}

/* Many chunks per read: pausing while the held rest is being parsed again. */
static void test_pause_resume_many_chunks(void **state) {
  (void)state;
  pause_resume(M_MANY_CHUNKS);
}

static void test_connection_refused(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, -1, NULL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd); /* nothing listens there now */
  snprintf(t.url, sizeof t.url, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.dones, 1);
  assert_int_equal(c.res, SY_UP_ECONNECT);
  assert_int_equal(c.heads, 0);
  call_free(&c);
  ctx_done(&t);
}

/* A listener whose accept queue is full drops new SYNs: connect hangs. */
static void test_connect_timeout(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, -1, NULL);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(lfd, 0), 0);
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  int fill[4];
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fill[i], (struct sockaddr *)&a, sizeof a);
  }
  usleep(50000);
  snprintf(t.url, sizeof t.url, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
  t.up.connect_timeout_ms = 200;
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.dones, 1);
  assert_int_equal(c.res, SY_UP_ETIMEOUT);
  assert_string_equal(c.detail, "connect timeout");
  uint64_t took = c.t_done - c.t_start;
  assert_true(took >= 190 && took < 1500);
  for (int i = 0; i < 4; i++) close(fill[i]);
  close(lfd);
  call_free(&c);
  ctx_done(&t);
}

/* The pure helpers: URL parsing, the request head, the response head filter. */
static void test_msg_helpers(void **state) {
  (void)state;
  sy__lean_url u;
  assert_int_equal(sy__lean_parse_url("http://[::1]:8080/v1", &u), 0);
  assert_int_equal(u.host_len, 3);
  assert_memory_equal(u.host, "::1", 3);
  assert_int_equal(u.port, 8080);
  assert_int_equal(u.authority_len, 10);
  assert_string_equal(u.prefix, "/v1");
  assert_int_equal(sy__lean_parse_url("http://example.com", &u), 0);
  assert_int_equal(u.port, 80);
  assert_string_equal(u.prefix, "");
  assert_int_equal(sy__lean_parse_url("http://h/v1?x=1", &u), SY_EINVAL);
  assert_int_equal(sy__lean_parse_url("http://h:/v1", &u), SY_EINVAL);
  assert_int_equal(sy__lean_parse_url("http://h:-1/v1", &u), SY_EINVAL);

  sy_upstream_conf up = {.base_url = "http://h"};
  sy_upstream_spec s = {.up = &up, .method = "PUT", .path = "/x", .path_len = 2,
                        .headers = "Host: other\0Transfer-Encoding: chunked\0X-A:  1",
                        .n_headers = 3, .body = "abc", .body_len = 3};
  sy_buf b;
  sy_buf_init(&b, 4096);
  assert_int_equal(sy__lean_build_head(&b, &s, "/p", 2, "Host: h\r\n", 9), 0);
  assert_string_equal(b.data, "PUT /p/x HTTP/1.1\r\nHost: other\r\nX-A:  1\r\n"
                              "Content-Length: 3\r\n\r\n");
  sy_buf_free(&b);
  sy_buf_init(&b, 20);
  assert_int_equal(sy__lean_build_head(&b, &s, "/p", 2, "Host: h\r\n", 9), SY_ETOOBIG);
  sy_buf_free(&b);

  sy__lean_head h;
  sy__lean_head_init(&h, 200);
  /* Names and values in pieces, as split reads deliver them. */
  assert_int_equal(sy__lean_head_field(&h, "X-", 2), 0);
  assert_int_equal(sy__lean_head_field(&h, "One", 3), 0);
  assert_int_equal(sy__lean_head_value(&h, "a", 1), 0);
  assert_int_equal(sy__lean_head_value(&h, "b", 1), 0);
  assert_int_equal(sy__lean_head_field(&h, "Transfer-", 9), 0);
  assert_int_equal(sy__lean_head_field(&h, "Encoding", 8), 0);
  assert_int_equal(sy__lean_head_value(&h, "chunked", 7), 0);
  assert_int_equal(sy__lean_head_field(&h, "TE", 2), 0);
  assert_int_equal(sy__lean_head_value(&h, "", 0), 0);
  assert_int_equal(sy__lean_head_field(&h, "X-Empty", 7), 0);
  assert_int_equal(sy__lean_head_value(&h, "", 0), 0);
  assert_int_equal(sy__lean_head_field(&h, "content-length", 14), 0);
  assert_int_equal(sy__lean_head_value(&h, "5", 1), 0);
  assert_int_equal(sy__lean_head_end(&h), 0);
  assert_string_equal(h.lines.data, "X-One: ab\r\nX-Empty: \r\n");
  char big[300];
  memset(big, 'v', sizeof big);
  assert_int_equal(sy__lean_head_field(&h, "X-B", 3), 0);
  assert_int_equal(sy__lean_head_value(&h, big, sizeof big), SY_ETOOBIG);
  sy_buf_free(&h.lines);
}

static void test_timeout(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_NEVER, NULL);
  t.up.timeout_ms = 300;
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.dones, 1);
  assert_int_equal(c.res, SY_UP_ETIMEOUT);
  uint64_t took = c.t_done - c.t_start;
  assert_true(took >= 290 && took < 1500);
  call_free(&c);
  ctx_done(&t);
}

static void test_queued_request_times_out(void **state) {
  (void)state;
  ctx t;
  sy_lean_opts o = {.max_host_conns = 1};
  ctx_init(&t, M_NEVER, &o);
  call a, b;
  call_init(&a, &t);
  call_init(&b, &t);
  start_call(&t, &a); /* holds the only connection */
  sy_lean_req *ra = cur_req.r;
  sy_upstream_conf short_up = t.up;
  short_up.timeout_ms = 200;
  t.spec.up = &short_up;
  start_call(&t, &b);
  run_until(&t, &b.dones, 1, 3000);
  assert_int_equal(b.res, SY_UP_ETIMEOUT);
  assert_string_equal(b.detail, "timed out waiting for a connection");
  assert_int_equal(a.dones, 0);
  sy_lean_abort(ra);
  assert_int_equal(sy_lean_pool_active(t.pool), 0);
  call_free(&a);
  call_free(&b);
  ctx_done(&t);
}

static void test_close_mid_body(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_CLOSE_MID, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_EPROTO);
  assert_int_equal(c.heads, 1);
  assert_int_equal(c.clen, 100);
  assert_string_equal(c.body.data, "0123456789");
  call_free(&c);
  ctx_done(&t);
}

static void test_body_until_eof(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_EOF_BODY, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(c.clen, -1);
  assert_string_equal(c.body.data, "until the end");
  assert_int_equal(sy_lean_pool_conns(t.pool), 0); /* such a connection is not reused */
  call_free(&c);
  ctx_done(&t);
}

static void test_head_too_large(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_HUGE_HEAD, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_EPROTO);
  assert_int_equal(c.heads, 0);
  assert_string_equal(c.detail, "response head too large");
  call_free(&c);
  ctx_done(&t);
}

static void test_idle_closed_by_server(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_CLOSE_AFTER, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  /* The server closes the idle connection: the pool notices the EOF. */
  for (int i = 0; i < 200 && sy_lean_pool_conns(t.pool) > 0; i++) run_until(&t, NULL, 0, 10);
  assert_int_equal(sy_lean_pool_conns(t.pool), 0);
  start_call(&t, &c);
  run_until(&t, &c.dones, 2, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(t.s->accepted, 2);
  call_free(&c);
  ctx_done(&t);
}

static void test_stale_connection_retried(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_DROP_SECOND, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  /* Second request goes out on the kept-alive connection, which the server
   * closes without answering: one retry on a fresh connection succeeds. */
  start_call(&t, &c);
  run_until(&t, &c.dones, 2, 3000);
  assert_int_equal(c.dones, 2);
  assert_int_equal(c.res, SY_UP_OK);
  assert_string_equal(c.body.data, "hello worldhello world");
  assert_int_equal(t.s->accepted, 2);
  assert_int_equal(t.s->requests, 3);
  call_free(&c);
  ctx_done(&t);
}

static void abort_cb(uv_timer_t *h) {
  (void)h;
  if (cur_req.c->body_calls > 0 && cur_req.r) {
    sy_lean_abort(cur_req.r);
    cur_req.r = NULL;
    cur_req.c->abort_now = 1;
  }
}

static void test_abort_mid_stream(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_SSE, NULL);
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  uv_timer_t at;
  uv_timer_init(&t.loop, &at);
  uv_timer_start(&at, abort_cb, 5, 5);
  run_until(&t, &c.abort_now, 1, 3000);
  uv_close((uv_handle_t *)&at, NULL);
  assert_int_equal(c.abort_now, 1);
  assert_int_equal(sy_lean_pool_active(t.pool), 0);
  run_until(&t, NULL, 0, 400); /* the rest of the stream would have come by now */
  assert_int_equal(c.dones, 0);
  assert_int_equal(c.body_calls, 1);
  assert_int_equal(sy_lean_pool_conns(t.pool), 0);
  for (int i = 0; i < 100 && t.s->closed < 1; i++) usleep(10000);
  assert_int_equal(t.s->closed, 1); /* the server saw the connection go */
  call_free(&c);
  ctx_done(&t);
}

static void test_handler_abort(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_SSE, NULL);
  call c;
  call_init(&c, &t);
  c.refuse = 1;
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.dones, 1);
  assert_int_equal(c.res, SY_UP_EABORTED);
  assert_int_equal(c.body_calls, 1);
  assert_int_equal(sy_lean_pool_conns(t.pool), 0);
  call_free(&c);
  ctx_done(&t);
}

static void test_pool_close_in_flight(void **state) {
  (void)state;
  ctx t;
  sy_lean_opts o = {.max_host_conns = 2};
  ctx_init(&t, M_NEVER, &o);
  call c[3];
  for (int i = 0; i < 3; i++) {
    call_init(&c[i], &t);
    start_call(&t, &c[i]);
  }
  for (int i = 0; i < 200 && t.s->requests < 2; i++) run_until(&t, NULL, 0, 10);
  assert_int_equal(t.s->requests, 2);
  assert_int_equal(sy_lean_pool_active(t.pool), 3); /* one is queued */
  ctx_done(&t); /* closes the pool with everything in flight */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c[i].dones, 0);
    call_free(&c[i]);
  }
}

static void test_hostname_and_bad_urls(void **state) {
  (void)state;
  ctx t;
  ctx_init(&t, M_OK, NULL);
  snprintf(t.url, sizeof t.url, "http://localhost:%u", (unsigned)t.s->port);
  t.spec.path = "";
  t.spec.path_len = 0;
  t.spec.method = "GET";
  t.spec.body = NULL;
  t.spec.body_len = 0;
  call c;
  call_init(&c, &t);
  start_call(&t, &c);
  run_until(&t, &c.dones, 1, 3000);
  assert_int_equal(c.res, SY_UP_OK);
  assert_int_equal(strncmp(t.s->last_req, "GET / HTTP/1.1\r\n", 16), 0);
  assert_null(strstr(t.s->last_req, "Content-Length"));
  char host[64];
  snprintf(host, sizeof host, "\r\nHost: localhost:%u\r\n", (unsigned)t.s->port);
  assert_non_null(strstr(t.s->last_req, host));

  sy_lean_req *r = NULL;
  static const char *const bad[] = {"https://127.0.0.1", "http://", "http://h:0", "http://h:x",
                                    "http://u@h", "http://h:99999", "ftp://h"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(t.url, sizeof t.url, "%s", bad[i]);
    assert_int_equal(sy_lean_start(t.pool, &t.spec, &handler, &c, &r), SY_EINVAL);
  }
  snprintf(t.url, sizeof t.url, "http://127.0.0.1:%u", (unsigned)t.s->port);
  t.spec.headers = "X-Evil: a\r\nX-Injected: b";
  t.spec.n_headers = 1;
  assert_int_equal(sy_lean_start(t.pool, &t.spec, &handler, &c, &r), SY_EINVAL);
  t.spec.headers = HDRS;
  t.spec.path = "/a b";
  t.spec.path_len = 4;
  assert_int_equal(sy_lean_start(t.pool, &t.spec, &handler, &c, &r), SY_EINVAL);
  run_until(&t, NULL, 0, 50);
  assert_int_equal(c.dones, 1); /* no callback for a refused start */
  assert_int_equal(sy_lean_pool_active(t.pool), 0);
  call_free(&c);
  ctx_done(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_content_length),
      cmocka_unit_test(test_skips_1xx),
      cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_sse_delivered_as_it_arrives),
      cmocka_unit_test(test_keepalive_reuse),
      cmocka_unit_test(test_concurrency_cap_queues),
      cmocka_unit_test(test_pause_resume),
      cmocka_unit_test(test_pause_resume_many_chunks),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_connect_timeout),
      cmocka_unit_test(test_msg_helpers),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_queued_request_times_out),
      cmocka_unit_test(test_close_mid_body),
      cmocka_unit_test(test_body_until_eof),
      cmocka_unit_test(test_head_too_large),
      cmocka_unit_test(test_idle_closed_by_server),
      cmocka_unit_test(test_stale_connection_retried),
      cmocka_unit_test(test_abort_mid_stream),
      cmocka_unit_test(test_handler_abort),
      cmocka_unit_test(test_pool_close_in_flight),
      cmocka_unit_test(test_hostname_and_bad_urls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
