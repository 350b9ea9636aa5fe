#include "gateway/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/conn.h"
#include "gateway/proxy.h"
#include "gateway/proxy_internal.h"

#define SY_LISTEN_BACKLOG 1024

int sy_listen_socket(const char *host, uint16_t port, int *fd_out, uint16_t *bound_port, char *msg,
                     size_t msglen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t slen;
  int family;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    family = a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    slen = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    family = a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    slen = sizeof *a6;
  } else {
    snprintf(msg, msglen, "listen: '%s' is not an IPv4 or IPv6 address", host);
    return SY_EINVAL;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(msg, msglen, "socket: %s", strerror(errno));
    return -errno;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    snprintf(msg, msglen, "SO_REUSEPORT: %s", strerror(e));
    close(fd);
    return -e;
  }
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, slen) != 0) {
    int e = errno;
    snprintf(msg, msglen, "cannot listen on %s port %u: %s", host, (unsigned)port, strerror(e));
    close(fd);
    return -e;
  }
  if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
    *bound_port = ntohs(family == AF_INET ? a4->sin_port : a6->sin6_port);
  *fd_out = fd;
  return 0;
}

static void submit_captures(sy_worker *w);

/* ---- drain and stop -------------------------------------------------------------- */

static void maybe_stop(sy_worker *w) {
  if (!w->draining || w->n_conns > 0 || w->jobs_out > 0 || w->stopped) return;
  uv_mutex_lock(&w->jobs_mu);
  int pending = w->tasks != NULL;
  if (!pending) w->stopped_posting = 1;
  uv_mutex_unlock(&w->jobs_mu);
  if (pending) return; /* on_jobs runs them, then comes back here */
  w->stopped = 1;
  sy__conn_flush_all(w);
  submit_captures(w);
  uv_check_stop(&w->flush_check);
  uv_close((uv_handle_t *)&w->flush_check, NULL);
  uv_prepare_stop(&w->flush_prepare);
  uv_close((uv_handle_t *)&w->flush_prepare, NULL);
  sy__shadows_abort_all(w);
  sy_route_view_release(&w->rview);
  uv_close((uv_handle_t *)&w->jobs_async, NULL);
  uv_timer_stop(&w->drain_timer);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
  uv_close((uv_handle_t *)&w->wakeup, NULL);
  sy_upstream_pool_close(w->pool);
  w->pool = NULL;
  /* The loop ends once these handles finish closing. */
}

void sy__worker_conn_closed(sy_worker *w) {
  w->n_conns--;
  maybe_stop(w);
}

static void on_drain_deadline(uv_timer_t *t) {
  sy_worker *w = t->data;
  if (w->n_conns) sy_warn("worker %u: drain deadline passed; closing %u connection(s)", w->id, w->n_conns);
  /* A virtual connection may be freed inside sy_conn_close: read next first. */
  for (sy_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    sy_conn_close(c);
  }
}

static void start_drain(sy_worker *w) {
  if (w->draining) return;
  w->draining = 1;
  uv_close((uv_handle_t *)&w->listener, NULL);
  /* Idle keep-alive connections go now; the rest finish their request first. */
  for (sy_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (!c->sink && c->state == SY_CONN_IDLE && c->in.len == 0) sy_conn_close(c);
  }
  uv_timer_start(&w->drain_timer, on_drain_deadline, w->cfg->limits.drain_timeout_ms, 0);
  maybe_stop(w);
}

static void submit_captures(sy_worker *w) {
  sy_capture_job *list = w->cap_head;
  if (!list) return;
  w->cap_head = w->cap_tail = NULL;
  sy_capture_submit_list(w->gw->capture, list);
}

void sy__worker_defer_capture(sy_worker *w, sy_capture_job *job) {
  job->next = NULL;
  if (w->stopped) { /* no flush comes any more */
    sy_capture_submit_list(w->gw->capture, job);
    return;
  }
  if (w->cap_tail) w->cap_tail->next = job;
  else w->cap_head = job;
  w->cap_tail = job;
}

static void on_flush_check(uv_check_t *h) {
  sy__conn_flush_all(h->data);
  submit_captures(h->data);
}

static void on_flush_prepare(uv_prepare_t *h) {
  sy__conn_flush_all(h->data);
  submit_captures(h->data);
}

static void on_wakeup(uv_async_t *a) {
  sy_worker *w = a->data;
  if (atomic_load(&w->gw->draining)) start_drain(w);
  maybe_stop(w);
}

void sy_worker_drain(sy_worker *w) { uv_async_send(&w->wakeup); }

void sy__worker_job_done(struct sy_capture_job *job) {
  sy_worker *w = job->owner;
  uv_mutex_lock(&w->jobs_mu);
  job->next = w->jobs_done;
  w->jobs_done = job;
  uv_mutex_unlock(&w->jobs_mu);
  uv_async_send(&w->jobs_async);
}

int sy_worker_post(sy_worker *w, void (*fn)(sy_worker *w, void *arg), void *arg) {
  sy_worker_task *t = malloc(sizeof *t);
  if (!t) return SY_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  t->next = NULL;
  uv_mutex_lock(&w->jobs_mu);
  if (w->stopped_posting) {
    uv_mutex_unlock(&w->jobs_mu);
    free(t);
    return SY_ECLOSED;
  }
  if (w->tasks_tail) w->tasks_tail->next = t;
  else w->tasks = t;
  w->tasks_tail = t;
  uv_mutex_unlock(&w->jobs_mu);
  uv_async_send(&w->jobs_async);
  return 0;
}

static void on_jobs(uv_async_t *a) {
  sy_worker *w = a->data;
  uv_mutex_lock(&w->jobs_mu);
  sy_capture_job *list = w->jobs_done;
  w->jobs_done = NULL;
  sy_worker_task *tasks = w->tasks;
  w->tasks = w->tasks_tail = NULL;
  uv_mutex_unlock(&w->jobs_mu);
  while (tasks) {
    sy_worker_task *t = tasks;
    tasks = t->next;
    t->fn(w, t->arg);
    free(t);
  }
  while (list) {
    sy_capture_job *j = list;
    list = j->next;
    w->jobs_out--;
    if (j->conn) sy_proxy_feedback_done(j->conn, j);
    sy_capture_job_free(j);
  }
  maybe_stop(w);
}

/* ---- accept ---------------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
  sy_worker *w = server->data;
  if (status < 0) {
    sy_warn("worker %u: accept: %s", w->id, uv_strerror(status));
    return;
  }
  sy_conn_accept(w, server);
}

uint64_t sy__worker_rand(sy_worker *w) {
  /* xorshift64*: quality enough for splits and jitter, and lock-free */
  uint64_t x = w->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  w->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void sy__worker_request_id(sy_worker *w, char *out) {
  snprintf(out, SY_REQUEST_ID_LEN + 1, "%08x%04x%012llx", w->gw->boot_id, w->id & 0xffff,
           (unsigned long long)(++w->seq & 0xffffffffffffULL));
}

static void worker_main(void *arg) {
  sy_worker *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

int sy_worker_start(sy_worker *w) {
  w->rng = ((uint64_t)w->gw->boot_id << 32 | (w->id + 1)) ^ uv_hrtime();
  if (!w->rng) w->rng = 1;
  w->rview = (sy_route_view)SY_ROUTE_VIEW_INIT;
  w->breakers = calloc(w->cfg->n_upstreams, sizeof *w->breakers);
  if (!w->breakers) return UV_ENOMEM;
  sy_breaker_conf bc;
  sy_breaker_conf_default(&bc);
  for (size_t i = 0; i < w->cfg->n_upstreams; i++) sy_breaker_init(&w->breakers[i], &bc, uv_hrtime() / 1000000u);
  int rc = uv_loop_init(&w->loop);
  if (rc) {
    free(w->breakers);
    return rc;
  }
  uv_tcp_init(&w->loop, &w->listener);
  w->listener.data = w;
  rc = uv_tcp_open(&w->listener, w->listen_fd);
  if (!rc) rc = uv_listen((uv_stream_t *)&w->listener, SY_LISTEN_BACKLOG, on_connection);
  if (rc) goto fail_listener;
  rc = uv_async_init(&w->loop, &w->wakeup, on_wakeup);
  if (rc) goto fail_listener;
  w->wakeup.data = w;
  uv_timer_init(&w->loop, &w->drain_timer);
  w->drain_timer.data = w;
  uv_check_init(&w->loop, &w->flush_check);
  w->flush_check.data = w;
  uv_check_start(&w->flush_check, on_flush_check);
  uv_prepare_init(&w->loop, &w->flush_prepare);
  w->flush_prepare.data = w;
  uv_prepare_start(&w->flush_prepare, on_flush_prepare);
  rc = uv_async_init(&w->loop, &w->jobs_async, on_jobs);
  if (rc) goto fail_jobs;
  w->jobs_async.data = w;
  uv_mutex_init(&w->jobs_mu);
  const sy_upstream_conf *up = &w->cfg->upstreams[w->cfg->default_upstream];
  long per_worker = (long)((up->max_connections + w->cfg->workers - 1) / w->cfg->workers);
  rc = sy_upstream_pool_new(&w->loop, per_worker, &w->pool);
  if (rc) goto fail_pool;
  rc = uv_thread_create(&w->thread, worker_main, w);
  if (rc) goto fail_thread;
  return 0;

fail_thread:
  sy_upstream_pool_close(w->pool);
fail_pool:
  uv_close((uv_handle_t *)&w->jobs_async, NULL);
  uv_mutex_destroy(&w->jobs_mu);
fail_jobs:
  uv_close((uv_handle_t *)&w->wakeup, NULL);
  uv_close((uv_handle_t *)&w->drain_timer, NULL);
  uv_close((uv_handle_t *)&w->flush_check, NULL);
  uv_close((uv_handle_t *)&w->flush_prepare, NULL);
fail_listener:
  uv_close((uv_handle_t *)&w->listener, NULL);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
  free(w->breakers);
  w->breakers = NULL;
  return rc;
}

void sy_worker_join(sy_worker *w) {
  uv_thread_join(&w->thread);
  uv_mutex_destroy(&w->jobs_mu);
  free(w->breakers);
  w->breakers = NULL;
  int rc = uv_loop_close(&w->loop);
  if (rc) sy_warn("worker %u: loop closed with handles open: %s", w->id, uv_strerror(rc));
}
