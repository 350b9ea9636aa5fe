/* The upstream client on libcurl's multi interface, driven by libuv.
 *
 * Glue: CURLMOPT_SOCKETFUNCTION keeps one uv_poll per socket and changes its
 * events only when curl's interest changes (uv_poll_start re-registers the
 * fd in epoll each time, so calling it needlessly costs a syscall pair);
 * CURLMOPT_TIMERFUNCTION drives one uv_timer. curl_multi_socket_action is
 * only called from libuv callbacks, never from inside curl's callbacks.
 * Easy handles are kept on a free list and reset for reuse. */
#include "gateway/upstream_curl.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

#define SY_UP_MAX_HEAD_BYTES (64u * 1024)
#define SY_UP_FREE_EASY_MAX 64

typedef struct sy_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  int events;
  sy_curl_pool *pool;
  struct sy_sock *next, *prev; /* every live poll, so close can find them */
} sy_sock;

struct sy_curl_pool {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  sy_sock *socks;
  sy_curl_req *reqs; /* in flight */
  CURL *free_easy[SY_UP_FREE_EASY_MAX];
  unsigned n_free_easy;
  unsigned active;
  int closing;
};

struct sy_curl_req {
  int kind; /* SY_UP_KIND_CURL: the dispatch in upstream.c reads it */
  sy_curl_pool *pool;
  CURL *easy;
  struct curl_slist *slist;
  const sy_upstream_handler *h;
  void *ctx;
  sy_buf head;       /* filtered header lines of the current block */
  long long content_length;
  int status;
  int head_done;
  int in_callback;   /* inside one of curl's callbacks: no abort from here */
  int aborted_by_handler;
  char *url;
  sy_curl_req *next, *prev;
};

int sy_upstream_global_init(void) {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : SY_EIO;
}

void sy_upstream_global_cleanup(void) { curl_global_cleanup(); }

unsigned sy_curl_pool_active(const sy_curl_pool *p) { return p->active; }

/* ---- socket and timer glue ------------------------------------------------ */

static void check_done(sy_curl_pool *p);

static void sock_closed(uv_handle_t *h) { free(h->data); }

static void sock_release(sy_sock *s) {
  sy_curl_pool *p = s->pool;
  if (s->prev) s->prev->next = s->next;
  else p->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sy_sock *s = h->data;
  sy_curl_pool *p = s->pool;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(p->multi, s->fd, flags, &running);
  check_done(p);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  sy_curl_pool *p = userp;
  sy_sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(p->multi, fd, NULL);
      sock_release(s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (uv_poll_init_socket(p->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->pool = p;
    s->poll.data = s;
    s->next = p->socks;
    if (p->socks) p->socks->prev = s;
    p->socks = s;
    curl_multi_assign(p->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  if (ev != s->events) {
    s->events = ev;
    if (uv_poll_start(&s->poll, ev, on_poll) != 0) return -1;
  }
  return 0;
}

static void on_timer(uv_timer_t *t) {
  sy_curl_pool *p = t->data;
  int running;
  curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(p);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  sy_curl_pool *p = userp;
  if (timeout_ms < 0) uv_timer_stop(&p->timer);
  else uv_timer_start(&p->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- pool ------------------------------------------------------------------ */

int sy_curl_pool_new(uv_loop_t *loop, long max_host_conns, sy_curl_pool **out) {
  sy_curl_pool *p = calloc(1, sizeof *p);
  if (!p) return SY_ENOMEM;
  p->loop = loop;
  p->multi = curl_multi_init();
  if (!p->multi) goto fail_multi;
  if (uv_timer_init(loop, &p->timer) != 0) goto fail_timer;
  p->timer.data = p;
  curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
  curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
  curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (max_host_conns > 0) {
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_conns);
    /* Otherwise the cache shrinks to 4x the transfers in flight and busy
     * pools close and reopen connections (TIME_WAIT pile-up). */
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, max_host_conns);
  }
  *out = p;
  return 0;

fail_timer:
  curl_multi_cleanup(p->multi);
fail_multi:
  free(p);
  return SY_ENOMEM;
}

static void req_free(sy_curl_req *r);

static void pool_closed(uv_handle_t *h) { free(h->data); }

void sy_curl_pool_close(sy_curl_pool *p) {
  p->closing = 1;
  while (p->reqs) sy_curl_abort(p->reqs);
  for (unsigned i = 0; i < p->n_free_easy; i++) curl_easy_cleanup(p->free_easy[i]);
  p->n_free_easy = 0;
  /* Closing the cached connections calls sock_cb(REMOVE) for their polls. */
  curl_multi_cleanup(p->multi);
  p->multi = NULL;
  while (p->socks) sock_release(p->socks);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, pool_closed);
}

/* ---- curl callbacks ---------------------------------------------------------- */

static int is_hop_header(const char *name, size_t n) {
  static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                    "transfer-encoding", "te", "trailer", "upgrade",
                                    "content-length", "proxy-authenticate"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (strlen(hop[i]) == n && strncasecmp(hop[i], name, n) == 0) return 1;
  return 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
  sy_curl_req *r = ud;
  size_t n = size * nitems;
  if (r->head_done) return n; /* trailers: not forwarded */
  if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* a new block starts (1xx then final) */
    sy_buf_reset(&r->head);
    r->content_length = -1;
    const char *sp = memchr(buf, ' ', n);
    r->status = sp ? atoi(sp + 1) : 0;
    return n;
  }
  if (n <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
    if (r->status >= 200) {
      r->head_done = 1;
      r->in_callback++;
      r->h->on_head(r->ctx, r->status, r->head.data ? r->head.data : "", r->head.len,
                    r->content_length);
      r->in_callback--;
    }
    return n;
  }
  const char *colon = memchr(buf, ':', n);
  if (!colon) return n;
  size_t name_len = (size_t)(colon - buf);
  if (name_len == 14 && strncasecmp(buf, "content-length", 14) == 0)
    r->content_length = strtoll(colon + 1, NULL, 10);
  if (is_hop_header(buf, name_len)) return n;
  /* Keep the line as sent; normalise the line end to CRLF. */
  size_t len = n;
  while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n')) len--;
  if (sy_buf_append(&r->head, buf, len) || sy_buf_append(&r->head, "\r\n", 2))
    return 0; /* an oversized head fails the transfer (CURLE_WRITE_ERROR) */
  return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
  sy_curl_req *r = ud;
  size_t n = size * nmemb;
  r->in_callback++;
  int rc = r->h->on_body(r->ctx, data, n);
  r->in_callback--;
  if (rc == SY_UP_PAUSE) return CURL_WRITEFUNC_PAUSE;
  if (rc != 0) {
    r->aborted_by_handler = 1;
    return 0;
  }
  return n;
}

/* ---- requests ------------------------------------------------------------------- */

static sy_up_result map_result(CURLcode c) {
  switch (c) {
  case CURLE_OK: return SY_UP_OK;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
    return SY_UP_ECONNECT;
  case CURLE_OPERATION_TIMEDOUT: return SY_UP_ETIMEOUT;
  case CURLE_OUT_OF_MEMORY: return SY_UP_EINTERNAL;
  default: return SY_UP_EPROTO;
  }
}

static void check_done(sy_curl_pool *p) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(p->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    /* Copy out of the message before the handle is removed. */
    CURL *e = m->easy_handle;
    CURLcode code = m->data.result;
    sy_curl_req *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    sy_up_result res = map_result(code);
    if (code == CURLE_WRITE_ERROR && r->aborted_by_handler) res = SY_UP_EABORTED;
    else if (res == SY_UP_OK && !r->head_done) res = SY_UP_EPROTO;
    /* A response whose head arrived but whose body was cut is a protocol failure. */
    const char *detail = code == CURLE_OK ? NULL : curl_easy_strerror(code);
    const sy_upstream_handler *h = r->h;
    void *ctx = r->ctx;
    req_free(r);
    h->on_done(ctx, res, detail);
  }
}

static void req_free(sy_curl_req *r) {
  sy_curl_pool *p = r->pool;
  if (r->prev) r->prev->next = r->next;
  else p->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  curl_multi_remove_handle(p->multi, r->easy);
  if (!p->closing && p->n_free_easy < SY_UP_FREE_EASY_MAX) {
    curl_easy_reset(r->easy);
    p->free_easy[p->n_free_easy++] = r->easy;
  } else {
    curl_easy_cleanup(r->easy);
  }
  curl_slist_free_all(r->slist);
  sy_buf_free(&r->head);
  free(r->url);
  p->active--;
  free(r);
}

void sy_curl_abort(sy_curl_req *r) {
  assert(!r->in_callback);
  req_free(r);
}

void sy_curl_resume(sy_curl_req *r) { curl_easy_pause(r->easy, CURLPAUSE_CONT); }

int sy_curl_start(sy_curl_pool *p, const sy_upstream_spec *s,
                      const sy_upstream_handler *h, void *ctx, sy_curl_req **out) {
  if (p->closing) return SY_ECLOSED;
  sy_curl_req *r = calloc(1, sizeof *r);
  if (!r) return SY_ENOMEM;
  r->kind = SY_UP_KIND_CURL;
  r->pool = p;
  r->h = h;
  r->ctx = ctx;
  r->content_length = -1;
  sy_buf_init(&r->head, SY_UP_MAX_HEAD_BYTES);

  size_t blen = strlen(s->up->base_url);
  r->url = malloc(blen + s->path_len + 1);
  if (!r->url) goto fail;
  memcpy(r->url, s->up->base_url, blen);
  memcpy(r->url + blen, s->path, s->path_len);
  r->url[blen + s->path_len] = '\0';

  r->easy = p->n_free_easy ? p->free_easy[--p->n_free_easy] : curl_easy_init();
  if (!r->easy) goto fail;

  const char *line = s->headers;
  for (size_t i = 0; i < s->n_headers; i++) {
    struct curl_slist *nl = curl_slist_append(r->slist, line);
    if (!nl) goto fail;
    r->slist = nl;
    line += strlen(line) + 1;
  }
  /* curl would otherwise add its own defaults for these. */
  static const char *const fixed[] = {"Expect:", "Accept:"};
  for (size_t i = 0; i < 2; i++) {
    struct curl_slist *nl = curl_slist_append(r->slist, fixed[i]);
    if (!nl) goto fail;
    r->slist = nl;
  }

  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->slist);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->up->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->timeout_ms ? s->timeout_ms : s->up->timeout_ms));
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   s->up->https ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (strcmp(s->method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(s->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(s->method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
    if (s->body_len || strcmp(s->method, "POST") == 0) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body ? s->body : "");
    }
  }
  if (curl_multi_add_handle(p->multi, e) != CURLM_OK) goto fail;

  r->next = p->reqs;
  if (p->reqs) p->reqs->prev = r;
  p->reqs = r;
  p->active++;
  *out = r;
  return 0;

fail:
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->slist);
  free(r->url);
  sy_buf_free(&r->head);
  free(r);
  return SY_ENOMEM;
}
