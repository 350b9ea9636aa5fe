/* The gRPC server framework on gRPC C core: listeners, one completion-queue
 * thread per listener (the only caller of grpc_completion_queue_next for its
 * queue), the method table, the call lifecycle and the send queue. The
 * services are in grpc_inference.c and grpc_admin.c. See grpc_server.h and
 * grpc_internal.h. */
#include "gateway/grpc_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/grpc_internal.h"

#define SY_GRPC_PEM_MAX (1u << 20)  /* a certificate chain or key file */
#define SY_GRPC_POLL_MS 100         /* cq wait; lets a stopping thread re-check its calls */

struct sy_grpc {
  sy_grpc_env env;
  sy_grpc_server srv[2];  /* [0] inference + feedback, [1] admin */
  int n_srv;
  int grpc_inited;
};

/* ---- calls -------------------------------------------------------------------------------- */

static void srv_live(sy_grpc_server *s, int delta) {
  pthread_mutex_lock(&s->mu);
  s->live_calls = (unsigned)((int)s->live_calls + delta);
  pthread_mutex_unlock(&s->mu);
}

static void call_free(sy_grpc_call *c) {
  sy_grpc_server *s = c->srv;
  if (c->free_impl && c->impl) c->free_impl(c->impl);
  for (sy_grpc_send *q = c->q_head, *n; q; q = n) {
    n = q->next;
    if (q->msg) grpc_byte_buffer_destroy(q->msg);
    free(q);
  }
  for (size_t i = 0; i < c->n_md_out; i++) {
    grpc_slice_unref(c->md_out[i].key);
    grpc_slice_unref(c->md_out[i].value);
  }
  if (c->has_details) grpc_slice_unref(c->status_details);
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  grpc_metadata_array_destroy(&c->md_in);
  if (c->call) grpc_call_unref(c->call);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
  srv_live(s, -1);
}

void sy__grpc_call_ref(sy_grpc_call *c) {
  pthread_mutex_lock(&c->mu);
  c->refs++;
  pthread_mutex_unlock(&c->mu);
}

void sy__grpc_call_unref(sy_grpc_call *c) {
  pthread_mutex_lock(&c->mu);
  unsigned left = --c->refs;
  pthread_mutex_unlock(&c->mu);
  if (left == 0) call_free(c);
}

const char *sy__grpc_md(const sy_grpc_call *c, const char *key, size_t *len) {
  size_t kl = strlen(key);
  for (size_t i = 0; i < c->md_in.count; i++) {
    const grpc_metadata *m = &c->md_in.metadata[i];
    if (GRPC_SLICE_LENGTH(m->key) == kl && memcmp(GRPC_SLICE_START_PTR(m->key), key, kl) == 0) {
      *len = GRPC_SLICE_LENGTH(m->value);
      return (const char *)GRPC_SLICE_START_PTR(m->value);
    }
  }
  return NULL;
}

int sy__grpc_cancelled(sy_grpc_call *c) {
  pthread_mutex_lock(&c->mu);
  int v = c->cancelled;
  pthread_mutex_unlock(&c->mu);
  return v;
}

size_t sy__grpc_pending(sy_grpc_call *c) {
  pthread_mutex_lock(&c->mu);
  size_t v = c->q_bytes;
  pthread_mutex_unlock(&c->mu);
  return v;
}

/* ---- the send queue ------------------------------------------------------------------------- */

static void on_send(sy_grpc_tag *t, int ok);

/* Starts the next batch when none is in flight. Called with c->mu held;
 * completions arrive on the cq thread, never inside start_batch, so holding
 * the lock across it cannot deadlock. */
static void pump_locked(sy_grpc_call *c) {
  while (!c->sending && c->q_head) {
    sy_grpc_send *q = c->q_head;
    size_t n = 0;
    memset(c->ops, 0, sizeof c->ops);
    if (!c->md_sent) {
      c->ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
      c->ops[n].data.send_initial_metadata.count = c->n_md_out;
      c->ops[n].data.send_initial_metadata.metadata = c->md_out;
      n++;
      c->md_sent = 1;
    }
    if (q->msg) {
      c->ops[n].op = GRPC_OP_SEND_MESSAGE;
      c->ops[n].data.send_message.send_message = q->msg;
      n++;
    }
    if (q->final) {
      c->ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
      c->ops[n].data.send_status_from_server.status = c->status;
      c->ops[n].data.send_status_from_server.status_details =
          c->has_details ? &c->status_details : NULL;
      n++;
    }
    if (n == 0) { /* metadata-only entry after the metadata went out */
      c->q_head = q->next;
      if (!c->q_head) c->q_tail = NULL;
      free(q);
      continue;
    }
    c->refs++; /* the batch's */
    c->sending = 1;
    grpc_call_error e = grpc_call_start_batch(c->call, c->ops, n, &c->t_send, NULL);
    if (e != GRPC_CALL_OK) {
      sy_warn("grpc: start_batch failed (%d) on %s", (int)e, c->m ? c->m->path : "?");
      c->refs--; /* cannot be the last: the caller holds one */
      c->sending = 0;
      c->finished = 1;
      for (sy_grpc_send *p = c->q_head, *nx; p; p = nx) {
        nx = p->next;
        if (p->msg) grpc_byte_buffer_destroy(p->msg);
        free(p);
      }
      c->q_head = c->q_tail = NULL;
      c->q_bytes = 0;
    }
    return;
  }
}

static void on_send(sy_grpc_tag *t, int ok) {
  sy_grpc_call *c = (sy_grpc_call *)((char *)t - offsetof(sy_grpc_call, t_send));
  void (*writable)(sy_grpc_call *) = NULL;
  pthread_mutex_lock(&c->mu);
  sy_grpc_send *q = c->q_head;
  c->q_head = q->next;
  if (!c->q_head) c->q_tail = NULL;
  c->q_bytes -= q->bytes;
  if (q->msg) grpc_byte_buffer_destroy(q->msg);
  free(q);
  c->sending = 0;
  if (!ok) {
    /* The stream is gone (cancelled, reset): nothing more can go out. */
    c->cancelled = 1;
    c->finished = 1;
    for (sy_grpc_send *p = c->q_head, *nx; p; p = nx) {
      nx = p->next;
      if (p->msg) grpc_byte_buffer_destroy(p->msg);
      free(p);
    }
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
  }
  if (c->above_low && c->q_bytes < SY_GRPC_SEND_LOW_WATER) {
    c->above_low = 0;
    writable = c->on_writable;
    if (writable) c->refs++; /* held across the hook */
  }
  pump_locked(c);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (writable) {
    writable(c);
    sy__grpc_call_unref(c);
  }
  sy__grpc_call_unref(c);
}

static void enqueue_locked(sy_grpc_call *c, sy_grpc_send *q) {
  if (c->q_tail) c->q_tail->next = q;
  else c->q_head = q;
  c->q_tail = q;
  c->q_bytes += q->bytes;
  if (c->q_bytes >= SY_GRPC_SEND_LOW_WATER) c->above_low = 1;
  pump_locked(c);
}

void sy__grpc_md_add(sy_grpc_call *c, const char *key, const char *value) {
  pthread_mutex_lock(&c->mu);
  if (!c->md_sent && c->n_md_out < SY_GRPC_MAX_MD_OUT) {
    grpc_metadata *m = &c->md_out[c->n_md_out++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_copied_string(key);
    m->value = grpc_slice_from_copied_string(value);
  }
  pthread_mutex_unlock(&c->mu);
}

void sy__grpc_send_md(sy_grpc_call *c) {
  sy_grpc_send *q = calloc(1, sizeof *q);
  if (!q) return; /* the metadata then goes out with the first message */
  pthread_mutex_lock(&c->mu);
  if (c->finished || c->md_sent) {
    pthread_mutex_unlock(&c->mu);
    free(q);
    return;
  }
  enqueue_locked(c, q);
  pthread_mutex_unlock(&c->mu);
}

int sy__grpc_send(sy_grpc_call *c, const ProtobufCMessage *msg) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  if (size > c->srv->env->cfg->grpc.max_message_bytes) return SY_ETOOBIG;
  sy_grpc_send *q = calloc(1, sizeof *q);
  if (!q) return SY_ENOMEM;
  grpc_slice sl = grpc_slice_malloc(size);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(sl));
  q->msg = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  q->bytes = size;
  pthread_mutex_lock(&c->mu);
  if (c->finished || c->cancelled) {
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(q->msg);
    free(q);
    return SY_ECLOSED;
  }
  enqueue_locked(c, q);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void sy__grpc_finish(sy_grpc_call *c, grpc_status_code code, const char *details) {
  sy_grpc_send *q = calloc(1, sizeof *q);
  pthread_mutex_lock(&c->mu);
  if (c->finished || !q) {
    /* Out of memory: the call still ends, by cancellation (the client sees
     * an error rather than waiting for its deadline). */
    if (!q && !c->finished) grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL,
                                                         "out of memory", NULL);
    c->finished = 1;
    pthread_mutex_unlock(&c->mu);
    free(q);
    return;
  }
  c->finished = 1;
  c->status = code;
  if (details && *details) {
    size_t n = strnlen(details, SY_GRPC_MAX_DETAILS);
    c->status_details = grpc_slice_from_copied_buffer(details, n);
    c->has_details = 1;
  }
  q->final = 1;
  enqueue_locked(c, q);
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

int sy__grpc_wait_writable(sy_grpc_call *c) {
  pthread_mutex_lock(&c->mu);
  while (!c->cancelled && !c->finished && c->q_bytes >= SY_GRPC_SEND_LOW_WATER)
    pthread_cond_wait(&c->cv, &c->mu);
  int rc = (c->cancelled || c->finished) ? SY_ECLOSED : 0;
  pthread_mutex_unlock(&c->mu);
  return rc;
}

ProtobufCMessage *sy__grpc_unpack(sy_grpc_call *c, const ProtobufCMessageDescriptor *d,
                                  char *err, size_t errlen) {
  if (!c->payload) {
    snprintf(err, errlen, "no request message");
    return NULL;
  }
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, c->payload)) {
    snprintf(err, errlen, "unreadable request message");
    return NULL;
  }
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  /* gRPC already refused messages above max_receive_message_length */
  ProtobufCMessage *m =
      protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  if (!m) snprintf(err, errlen, "malformed %s message (protobuf decoding failed)", d->name);
  return m;
}

/* ---- arrivals ----------------------------------------------------------------------------- */

static void on_new(sy_grpc_tag *t, int ok);
static void on_close(sy_grpc_tag *t, int ok);

/* Keeps one request outstanding for method m. */
static void request_method(sy_grpc_server *s, const sy_grpc_method *m) {
  pthread_mutex_lock(&s->mu);
  int stopping = s->stopping;
  if (!stopping) s->live_calls++;
  pthread_mutex_unlock(&s->mu);
  if (stopping) return;
  sy_grpc_call *c = calloc(1, sizeof *c);
  if (!c) goto fail;
  c->srv = s;
  c->m = m;
  c->refs = 1;
  c->t_new.fn = on_new;
  c->t_close.fn = on_close;
  c->t_send.fn = on_send;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  grpc_metadata_array_init(&c->md_in);
  grpc_call_error e = grpc_server_request_registered_call(
      s->server, m->handle, &c->call, &c->deadline, &c->md_in, &c->payload, s->cq, s->cq,
      &c->t_new);
  if (e == GRPC_CALL_OK) return;
  sy_error("grpc: cannot request calls for %s (%d)", m->path, (int)e);
  grpc_metadata_array_destroy(&c->md_in);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
fail:
  /* This method now has no request outstanding: its callers would hang, so
   * say so loudly. Only allocation failure gets here. */
  sy_error("grpc: %s stops accepting calls", m->path);
  srv_live(s, -1);
}

static void on_new(sy_grpc_tag *t, int ok) {
  sy_grpc_call *c = (sy_grpc_call *)((char *)t - offsetof(sy_grpc_call, t_new));
  if (!ok) { /* the server is shutting down */
    sy__grpc_call_unref(c);
    return;
  }
  request_method(c->srv, c->m);
  /* RECV_CLOSE_ON_SERVER right away: it is how cancellation is reported. */
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  c->refs++; /* no other thread knows c yet */
  if (grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL) != GRPC_CALL_OK) {
    c->refs--;
    sy_warn("grpc: cannot watch %s for cancellation", c->m->path);
  }
  c->m->start(c);
  sy__grpc_call_unref(c);
}

static void on_close(sy_grpc_tag *t, int ok) {
  sy_grpc_call *c = (sy_grpc_call *)((char *)t - offsetof(sy_grpc_call, t_close));
  pthread_mutex_lock(&c->mu);
  c->closed = 1;
  int cancelled = !ok || c->close_cancelled;
  /* once per call; a failed send may have set c->cancelled already, but the
   * service still has to hear of it to stop its upstream */
  if (cancelled) c->cancelled = 1;
  void (*hook)(sy_grpc_call *) = cancelled ? c->on_cancel : NULL;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (hook) hook(c);
  sy__grpc_call_unref(c);
}

/* Calls to methods nobody registered: answered UNIMPLEMENTED at once. */
typedef struct unknown_call {
  sy_grpc_tag t_new, t_done;
  sy_grpc_server *srv;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
  int cancelled;
  grpc_slice msg;
  int has_msg;
  grpc_op ops[3];
} unknown_call;

static void unknown_free(unknown_call *u) {
  sy_grpc_server *s = u->srv;
  if (u->has_msg) grpc_slice_unref(u->msg);
  grpc_call_details_destroy(&u->details);
  grpc_metadata_array_destroy(&u->md);
  if (u->call) grpc_call_unref(u->call);
  free(u);
  srv_live(s, -1);
}

static void on_unknown(sy_grpc_tag *t, int ok);
static void on_unknown_done(sy_grpc_tag *t, int ok) {
  unknown_free((unknown_call *)((char *)t - offsetof(unknown_call, t_done)));
}

static void request_unknown(sy_grpc_server *s) {
  pthread_mutex_lock(&s->mu);
  int stopping = s->stopping;
  if (!stopping) s->live_calls++;
  pthread_mutex_unlock(&s->mu);
  if (stopping) return;
  unknown_call *u = calloc(1, sizeof *u);
  if (!u) {
    sy_error("grpc: out of memory: unknown methods will not be answered");
    srv_live(s, -1);
    return;
  }
  u->srv = s;
  u->t_new.fn = on_unknown;
  u->t_done.fn = on_unknown_done;
  grpc_call_details_init(&u->details);
  grpc_metadata_array_init(&u->md);
  if (grpc_server_request_call(s->server, &u->call, &u->details, &u->md, s->cq, s->cq,
                               &u->t_new) != GRPC_CALL_OK) {
    sy_error("grpc: cannot request calls for unknown methods");
    unknown_free(u);
  }
}

static void on_unknown(sy_grpc_tag *t, int ok) {
  unknown_call *u = (unknown_call *)((char *)t - offsetof(unknown_call, t_new));
  if (!ok) {
    unknown_free(u);
    return;
  }
  request_unknown(u->srv);
  char text[300];
  size_t ml = GRPC_SLICE_LENGTH(u->details.method);
  snprintf(text, sizeof text, "unknown method %.*s", (int)(ml > 200 ? 200 : ml),
           (const char *)GRPC_SLICE_START_PTR(u->details.method));
  for (char *p = text; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
  u->msg = grpc_slice_from_copied_string(text);
  u->has_msg = 1;
  memset(u->ops, 0, sizeof u->ops);
  u->ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  u->ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  u->ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
  u->ops[1].data.send_status_from_server.status_details = &u->msg;
  u->ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  u->ops[2].data.recv_close_on_server.cancelled = &u->cancelled;
  if (grpc_call_start_batch(u->call, u->ops, 3, &u->t_done, NULL) != GRPC_CALL_OK) unknown_free(u);
}

/* ---- the completion-queue thread ------------------------------------------------------------ */

static void on_shutdown(sy_grpc_tag *t, int ok) {
  sy_grpc_server *s = (sy_grpc_server *)((char *)t - offsetof(sy_grpc_server, t_shutdown));
  s->shutdown_seen = 1;
}

static void *cq_thread(void *arg) {
  sy_grpc_server *s = arg;
  int cq_shut = 0;
  for (;;) {
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis(SY_GRPC_POLL_MS, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->cq, dl, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) {
      sy_grpc_tag *t = ev.tag;
      t->fn(t, ev.success);
    }
    if (s->shutdown_seen && !cq_shut) {
      /* Every call is released (workers and admin threads included) before
       * the queue closes: nobody may start a batch on a dead queue. */
      pthread_mutex_lock(&s->mu);
      unsigned live = s->live_calls;
      int cancel_done = s->cancel_done;
      pthread_mutex_unlock(&s->mu);
      /* cancel_done: main has returned from cancel_all_calls, so the server
       * is no longer in use when it is destroyed here */
      if (live == 0 && cancel_done) {
        grpc_server_destroy(s->server);
        s->server = NULL;
        grpc_completion_queue_shutdown(s->cq);
        cq_shut = 1;
      }
    }
  }
  return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------- */

static int read_pem(const char *path, char **out, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "grpc: cannot open %s: %s", path, strerror(errno));
    return SY_ECONFIG;
  }
  sy_buf b;
  sy_buf_init(&b, SY_GRPC_PEM_MAX);
  char chunk[8192];
  size_t n;
  int rc = 0;
  while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = sy_buf_append(&b, chunk, n);
  if (!rc && ferror(f)) rc = SY_EIO;
  fclose(f);
  if (rc || b.len == 0) {
    snprintf(err, errlen, "grpc: %s: %s", path,
             rc == SY_ETOOBIG ? "larger than 1 MiB" : rc ? "cannot read" : "empty");
    sy_buf_free(&b);
    return SY_ECONFIG;
  }
  *out = sy_buf_detach(&b, &n);
  return 0;
}

static grpc_server_credentials *make_creds(const sy_config *cfg, char *err, size_t errlen) {
  if (!cfg->grpc.tls_cert) return grpc_insecure_server_credentials_create();
  char *cert = NULL, *key = NULL;
  if (read_pem(cfg->grpc.tls_cert, &cert, err, errlen) ||
      read_pem(cfg->grpc.tls_key, &key, err, errlen)) {
    free(cert);
    return NULL;
  }
  grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
  grpc_server_credentials *cr = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
  OPENSSL_cleanse(key, strlen(key)); /* gRPC keeps its own copy */
  free(key);
  free(cert);
  if (!cr) snprintf(err, errlen, "grpc: TLS certificate or key rejected");
  return cr;
}

static int server_start(sy_grpc_server *s, const char *name, sy_grpc_env *env, const char *host,
                        uint16_t port, sy_grpc_method *methods, size_t n, char *err,
                        size_t errlen) {
  const sy_config *cfg = env->cfg;
  s->name = name;
  s->env = env;
  s->methods = methods;
  s->n_methods = n;
  s->t_shutdown.fn = on_shutdown;
  pthread_mutex_init(&s->mu, NULL);
  grpc_arg args[4];
  memset(args, 0, sizeof args);
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)cfg->grpc.max_message_bytes;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = (int)cfg->grpc.max_message_bytes;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_MAX_METADATA_SIZE;
  args[2].value.integer = (int)cfg->limits.max_header_bytes;
  /* gRPC sets SO_REUSEPORT by default: a second gateway on the same port
   * would then silently take half the calls. Fail to bind instead. */
  args[3].type = GRPC_ARG_INTEGER;
  args[3].key = GRPC_ARG_ALLOW_REUSEPORT;
  args[3].value.integer = 0;
  grpc_channel_args ca = {.num_args = 4, .args = args};
  s->cq = grpc_completion_queue_create_for_next(NULL);
  s->server = grpc_server_create(&ca, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  for (size_t i = 0; i < n; i++) {
    methods[i].handle = grpc_server_register_method(
        s->server, methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!methods[i].handle) {
      snprintf(err, errlen, "grpc: cannot register %s", methods[i].path);
      return SY_EIO;
    }
  }
  char addr[80];
  int v6 = strchr(host, ':') != NULL;
  snprintf(addr, sizeof addr, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
  grpc_server_credentials *cr = make_creds(cfg, err, errlen);
  if (!cr) return SY_ECONFIG;
  int bound = grpc_server_add_http2_port(s->server, addr, cr);
  grpc_server_credentials_release(cr);
  if (bound <= 0) {
    snprintf(err, errlen, "grpc: cannot listen on %s (address in use or not local?)", addr);
    return SY_EIO;
  }
  grpc_server_start(s->server);
  s->started = 1;
  for (size_t i = 0; i < n; i++) request_method(s, &methods[i]);
  request_unknown(s);
  if (pthread_create(&s->thread, NULL, cq_thread, s) != 0) {
    snprintf(err, errlen, "grpc: cannot start the completion-queue thread");
    return SY_EIO;
  }
  s->thread_started = 1;
  printf("switchyard %s listening on %s%s%s:%d\n", name, v6 ? "[" : "", host, v6 ? "]" : "",
         bound);
  fflush(stdout);
  return 0;
}

/* Shuts a server down (see DESIGN.md's order); its thread finishes the
 * sequence once every call is released. */
static void server_begin_stop(sy_grpc_server *s) {
  if (!s->thread_started) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_mutex_unlock(&s->mu);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->t_shutdown);
  grpc_server_cancel_all_calls(s->server);
  pthread_mutex_lock(&s->mu);
  s->cancel_done = 1;
  pthread_mutex_unlock(&s->mu);
}

static void server_finish_stop(sy_grpc_server *s) {
  if (s->thread_started) {
    pthread_join(s->thread, NULL);
  } else if (s->server && s->started) {
    /* the thread could not start: run its shutdown sequence here */
    s->stopping = 1;
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->t_shutdown);
    grpc_server_cancel_all_calls(s->server);
    s->cancel_done = 1;
    cq_thread(s);
  } else if (s->cq) {
    /* never started: no listener runs and no call exists */
    if (s->server) grpc_server_destroy(s->server);
    s->server = NULL;
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
  }
  if (s->cq) grpc_completion_queue_destroy(s->cq);
  s->cq = NULL;
  pthread_mutex_destroy(&s->mu);
}

void sy_grpc_stop(sy_grpc *g) {
  if (!g) return;
  for (int i = 0; i < g->n_srv; i++) server_begin_stop(&g->srv[i]);
  for (int i = 0; i < g->n_srv; i++) server_finish_stop(&g->srv[i]);
  if (g->env.admin) sy__admin_pool_stop(g->env.admin);
  if (g->grpc_inited) grpc_shutdown();
  free(g);
}

int sy_grpc_start(sy_gateway *gw, sy_worker *workers, unsigned n, sy_grpc **out, char *err,
                  size_t errlen) {
  const sy_config *cfg = gw->cfg;
  const sy_grpc_conf *gc = &cfg->grpc;
  *out = NULL;
  int want_admin = gc->admin_host[0] && gc->n_admin_tokens > 0;
  if (gc->admin_host[0] && !want_admin)
    sy_info("grpc: admin API off: no admin tokens (grpc.admin_tokens or $%s)",
            SY_ADMIN_TOKEN_ENV);
  if (!gc->listen_host[0] && !want_admin) return 0;
  sy_grpc *g = calloc(1, sizeof *g);
  if (!g) {
    snprintf(err, errlen, "grpc: out of memory");
    return SY_ENOMEM;
  }
  g->env.gw = gw;
  g->env.cfg = cfg;
  g->env.workers = workers;
  g->env.n_workers = n;
  g->env.started_ns = uv_hrtime();
  grpc_init();
  g->grpc_inited = 1;
  int rc = 0;
  if (gc->listen_host[0]) {
    g->n_srv++;
    rc = server_start(&g->srv[0], "grpc", &g->env, gc->listen_host, gc->listen_port,
                      sy__grpc_inference_methods, sy__grpc_n_inference_methods, err, errlen);
  }
  if (!rc && want_admin) {
    rc = sy__admin_pool_start(&g->env, &g->env.admin);
    if (rc) snprintf(err, errlen, "grpc: cannot start the admin threads");
    if (!rc) {
      sy_grpc_server *s = &g->srv[g->n_srv++];
      rc = server_start(s, "grpc-admin", &g->env, gc->admin_host, gc->admin_port,
                        sy__grpc_admin_methods, sy__grpc_n_admin_methods, err, errlen);
    }
  }
  if (rc) {
    sy_grpc_stop(g);
    return rc;
  }
  *out = g;
  return 0;
}
