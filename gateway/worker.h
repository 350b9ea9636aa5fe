#ifndef SY_WORKER_H
#define SY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/capture.h"
#include "gateway/config.h"
#include "gateway/upstream.h"
#include "router/breaker.h"
#include "router/shadow.h"
#include "router/slot.h"
#include "store/store.h"

struct sy_keyset;

/* A worker: one thread, one libuv loop, one listening socket (SO_REUSEPORT,
 * the kernel spreads connections across workers), one upstream pool, and the
 * connections it accepted. Nothing on a worker blocks. */

struct sy_conn;

typedef struct sy_gateway {
  const sy_config *cfg;
  atomic_int draining;       /* set once by main on SIGTERM/SIGINT */
  uint32_t boot_id;          /* random per process: request ids stay unique */
  sy_capture_pipe *capture;  /* NULL when capture is off */
  sy_route_slot routes;      /* the published route table (SIGHUP replaces it) */
  sy_shadow_cap shadow_cap;  /* process-wide cap on shadow calls in flight */
  /* admin: the one store handle of the process (opened by main, shared by
   * the capture pipe and the admin API), the runtime client-key set, and
   * the lock that serialises route changes (write to LMDB + publish) so
   * tables are published in version order (gateway/routes_pub.h). */
  sy_store *store;
  struct sy_keyset *keys;
  pthread_mutex_t routes_mu;
} sy_gateway;

struct sy_worker;

/* A task posted to a worker's loop from another thread (the gRPC
 * completion-queue thread posts inference calls this way). */
typedef struct sy_worker_task {
  void (*fn)(struct sy_worker *w, void *arg);
  void *arg;
  struct sy_worker_task *next;
} sy_worker_task;

typedef struct sy_worker {
  unsigned id;
  sy_gateway *gw;
  const sy_config *cfg;
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wakeup;         /* main → worker: start draining */
  uv_timer_t drain_timer;    /* drain deadline */
  uv_thread_t thread;
  int listen_fd;             /* bound by main before the thread starts */
  sy_upstream_pool *pool;
  struct sy_conn *conns;     /* every open connection */
  struct sy_conn *dirty;     /* connections with gathered output */
  uv_check_t flush_check;    /* flushes them after the I/O callbacks of a loop turn */
  uv_prepare_t flush_prepare; /* ... and before the loop blocks (timer callbacks write too) */
  struct sy_capture_job *cap_head, *cap_tail; /* captures handed to the writer after the flush */
  unsigned n_conns;
  unsigned max_conns;        /* this worker's share of limits.max_connections */
  uint64_t seq;              /* request counter */
  uint64_t rng;              /* xorshift state for routing draws */
  sy_route_view rview;       /* this worker's cached route table */
  sy_breaker *breakers;      /* one per configured upstream */
  struct sy_shadow *shadows; /* shadow calls in flight (aborted at stop) */
  uv_async_t jobs_async;     /* capture writer → worker: feedback jobs done */
  uv_mutex_t jobs_mu;
  struct sy_capture_job *jobs_done; /* under jobs_mu */
  unsigned jobs_out;         /* feedback jobs handed to the writer, not yet back */
  sy_worker_task *tasks, *tasks_tail; /* under jobs_mu; run by the jobs_async callback */
  int draining;              /* worker-local copy of gw->draining */
  int stopped;
  int stopped_posting;       /* under jobs_mu: sy_worker_post refuses */
  char read_buf[64 * 1024];  /* reads are consumed synchronously, so one buffer serves all */
  int read_buf_busy;
} sy_worker;

/* Binds a listening socket (SO_REUSEADDR + SO_REUSEPORT) to host:port and
 * returns its fd in *fd, and the port really bound in *bound_port (port 0
 * picks one). 0 or a negative errno-style code; msg gets a reason. */
int sy_listen_socket(const char *host, uint16_t port, int *fd, uint16_t *bound_port, char *msg,
                     size_t msglen);

/* Starts a worker thread that serves listen_fd. 0 or a negative code. */
int sy_worker_start(sy_worker *w);

/* Asks the worker to drain: stop accepting, finish in-flight requests
 * within the drain deadline, then stop. Thread-safe. */
void sy_worker_drain(sy_worker *w);

/* Waits for the worker thread to end and releases its loop. */
void sy_worker_join(sy_worker *w);

/* The capture writer's completion hook for feedback jobs (any thread):
 * hands the job back to its worker's loop. */
void sy__worker_job_done(struct sy_capture_job *job);

/* Runs fn(w, arg) on the worker's loop thread, soon. Thread-safe. Returns 0,
 * or SY_ECLOSED when the worker is stopping (fn will not run; the caller
 * keeps arg) or SY_ENOMEM. Tasks posted before the worker stops always run. */
int sy_worker_post(sy_worker *w, void (*fn)(sy_worker *w, void *arg), void *arg);

/* Called by a connection when it is freed (drain bookkeeping). */
void sy__worker_conn_closed(sy_worker *w);

/* A 64-bit random number (xorshift64*, seeded per worker). */
uint64_t sy__worker_rand(sy_worker *w);

/* Next request id for this worker: SY_REQUEST_ID_LEN hex chars + NUL. */
void sy__worker_request_id(sy_worker *w, char *out);

/* Queues a finished capture job for the writer; it is handed over after
 * this loop turn's writes are flushed, in one batch (sy_capture_submit_list),
 * so the writer's wake-up never delays a response. Takes ownership. */
void sy__worker_defer_capture(sy_worker *w, struct sy_capture_job *job);

#endif
