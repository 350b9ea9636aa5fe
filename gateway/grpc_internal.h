#ifndef SY_GRPC_INTERNAL_H
#define SY_GRPC_INTERNAL_H

/* Shared by the gRPC server's files and nothing else: grpc_server.c (the
 * completion-queue threads, listeners, method table and call lifecycle),
 * grpc_inference.c (Inference, FeedbackService) and grpc_admin.c (Admin).
 *
 * A call (sy_grpc_call) is reference counted: the completion-queue thread
 * holds one while a batch is outstanding, a service holds one while it
 * works on the call (on a worker or an admin thread), a posted task holds
 * one until it runs. Sends are queued and go out one batch at a time (gRPC
 * allows one send of each kind in flight per call); every send function is
 * thread-safe. */

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "gateway/worker.h"

#define SY_GRPC_MAX_MD_OUT 8            /* initial metadata entries a call may send */
#define SY_GRPC_MAX_DETAILS 1024        /* status message bytes kept */
#define SY_GRPC_SEND_HIGH_WATER (256u * 1024) /* queued bytes that pause a producer */
#define SY_GRPC_SEND_LOW_WATER (64u * 1024)   /* and resume it */

struct sy_grpc_call;
struct sy_grpc_server;

typedef struct sy_grpc_tag {
  void (*fn)(struct sy_grpc_tag *t, int ok);
} sy_grpc_tag;

/* One method of a service. `start` runs on the completion-queue thread when
 * a call arrives, with the request payload in c->payload (NULL when the
 * client sent no message); it must answer, now or later, with
 * sy__grpc_finish(). The call is released by the server after start returns
 * unless start took a reference. */
typedef struct sy_grpc_method {
  const char *path;                  /* "/switchyard.v1.Inference/ChatCompletion" */
  void (*start)(struct sy_grpc_call *c);
  const void *data;                  /* the service's own per-method data */
  void *handle;                      /* from grpc_server_register_method */
} sy_grpc_method;

typedef struct sy_grpc_send {
  struct sy_grpc_send *next;
  grpc_byte_buffer *msg;   /* NULL: no message (initial metadata or status only) */
  size_t bytes;
  int final;               /* carries the status: the last send of the call */
} sy_grpc_send;

typedef struct sy_grpc_call {
  struct sy_grpc_server *srv;
  const sy_grpc_method *m;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md_in;
  grpc_byte_buffer *payload;
  sy_grpc_tag t_new, t_close, t_send;
  int close_cancelled;     /* RECV_CLOSE_ON_SERVER's output */

  pthread_mutex_t mu;      /* everything below */
  pthread_cond_t cv;       /* a send completed or the call ended (sy__grpc_wait_writable) */
  unsigned refs;
  int cancelled;           /* the client went away, or the deadline passed */
  int closed;              /* RECV_CLOSE completed */
  int finished;            /* the status is queued: no more sends */
  int sending;             /* a batch is in flight */
  int md_sent;
  sy_grpc_send *q_head, *q_tail;
  size_t q_bytes;
  grpc_metadata md_out[SY_GRPC_MAX_MD_OUT];
  size_t n_md_out;
  grpc_status_code status;
  grpc_slice status_details;
  int has_details;
  grpc_op ops[3];          /* the batch in flight */

  /* The service's state and hooks. on_cancel runs on the completion-queue
   * thread once when the client cancels (not under mu); on_writable when the
   * queue falls below the low-water mark after being above it; free_impl
   * when the call is freed. */
  void *impl;
  void (*on_cancel)(struct sy_grpc_call *c);
  void (*on_writable)(struct sy_grpc_call *c);
  void (*free_impl)(void *impl);
  int above_low;           /* queue went past SY_GRPC_SEND_LOW_WATER */
} sy_grpc_call;

/* What the services share: the gateway, the workers, the admin pool. */
typedef struct sy_grpc_env {
  sy_gateway *gw;
  const sy_config *cfg;
  sy_worker *workers;
  unsigned n_workers;
  _Atomic unsigned next_worker;
  struct sy_admin_pool *admin;   /* NULL when the admin listener is off */
  uint64_t started_ns;
} sy_grpc_env;

typedef struct sy_grpc_server {
  const char *name;              /* "grpc" or "grpc-admin" */
  sy_grpc_env *env;
  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t thread;
  int thread_started;
  int started;                   /* grpc_server_start was called */
  sy_grpc_method *methods;
  size_t n_methods;
  sy_grpc_tag t_shutdown;
  int shutdown_seen;             /* cq thread only */
  pthread_mutex_t mu;
  unsigned live_calls;           /* calls not yet freed (request slots included) */
  int stopping;
  int cancel_done;               /* main returned from grpc_server_cancel_all_calls */
} sy_grpc_server;

void sy__grpc_call_ref(sy_grpc_call *c);
/* Drops a reference; the last one frees the call (any thread). */
void sy__grpc_call_unref(sy_grpc_call *c);

/* Incoming metadata value by lowercase key (not NUL-terminated), or NULL. */
const char *sy__grpc_md(const sy_grpc_call *c, const char *key, size_t *len);

/* Adds an initial-metadata entry (copied). Ignored once metadata went out
 * or when the table is full. Thread-safe. */
void sy__grpc_md_add(sy_grpc_call *c, const char *key, const char *value);

/* Queues the initial metadata alone (streams send it before the first
 * message). Thread-safe. */
void sy__grpc_send_md(sy_grpc_call *c);

/* Packs msg and queues it. 0, SY_ECLOSED (the call is over or cancelled:
 * stop producing), SY_ETOOBIG (over max_message_bytes) or SY_ENOMEM. */
int sy__grpc_send(sy_grpc_call *c, const ProtobufCMessage *msg);

/* Queues the status; later sends are refused. Only the first call counts.
 * details may be NULL; it is cut to SY_GRPC_MAX_DETAILS bytes. */
void sy__grpc_finish(sy_grpc_call *c, grpc_status_code code, const char *details);

/* Bytes queued but not yet sent. */
size_t sy__grpc_pending(sy_grpc_call *c);

/* Blocks until the queue is below SY_GRPC_SEND_LOW_WATER or the call is
 * over; returns 0, or SY_ECLOSED when the call is over. For threads that may
 * block (admin pool), never the completion-queue thread or a worker. */
int sy__grpc_wait_writable(sy_grpc_call *c);

/* 1 once the client has cancelled (or the deadline passed). */
int sy__grpc_cancelled(sy_grpc_call *c);

/* Unpacks the request payload with the message descriptor. On failure
 * (no payload, malformed protobuf) returns NULL and writes a message. The
 * result is freed with protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *sy__grpc_unpack(sy_grpc_call *c, const ProtobufCMessageDescriptor *d,
                                  char *err, size_t errlen);

/* The services' method tables (grpc_inference.c, grpc_admin.c). */
extern sy_grpc_method sy__grpc_inference_methods[];
extern const size_t sy__grpc_n_inference_methods;
extern sy_grpc_method sy__grpc_admin_methods[];
extern const size_t sy__grpc_n_admin_methods;

/* The admin thread pool (grpc_admin.c): admin calls are queued to it from
 * the completion-queue thread. */
struct sy_admin_pool;
int sy__admin_pool_start(sy_grpc_env *env, struct sy_admin_pool **out);
/* Joins the threads once every admin call is released. */
void sy__admin_pool_stop(struct sy_admin_pool *p);

#endif
