/* switchyard-load: the gRPC target (switchyard.v1.Inference over gRPC C core).
 *
 * A slot is one call at a time. Calls go over a few insecure channels
 * (min(--connections, GRPC_MAX_CHANNELS)); slot i uses channel i % n. Each
 * channel gets GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL so it really is its own
 * HTTP/2 connection (gRPC would otherwise share one subchannel between
 * channels to the same address), which spreads the calls the way several
 * client processes would, without one TCP connection per slot.
 *
 * Bodies: every mix item's OpenAI JSON is turned into a packed
 * ChatCompletionRequest once, in create() (load_grpc_req.c). A Zipf user id is appended to
 * the packed bytes as a second `user` field (protobuf: the last value of a
 * singular field wins), so no request is re-encoded.
 *
 * Threads: one completion queue, drained by one thread (the only caller of
 * grpc_completion_queue_next). It stamps each completion with uv_hrtime()
 * and hands it to the loop (a mutex-protected array + uv_async_send); every
 * sink callback, every batch and every call release runs on the loop thread,
 * so the engine sees the same single-threaded target as with HTTP.
 *
 * A call is three kinds of batch, each with its own tag:
 *   A  send metadata + message + close, receive initial metadata and the
 *      first message;
 *   S  receive the status (started with A);
 *   M  receive the next message (streams only, one at a time).
 * The slot's request ends when every batch it started has completed. */
#include "loadtest/load.h"
#include "common/err.h"
#include "common/log.h"
#include "switchyard/v1/inference.pb-c.h"

#include <assert.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GRPC_MAX_CHANNELS 8
#define GRPC_MAX_MESSAGE (16 * 1024 * 1024) /* one answer or chunk */
#define DEADLINE_SLACK_NS 2000000ull        /* clock reads around a deadline */
#define M_UNARY "/switchyard.v1.Inference/ChatCompletion"
#define M_STREAM "/switchyard.v1.Inference/ChatCompletionStream"

typedef enum { TAG_A, TAG_S, TAG_M, TAG_WATCH, TAG_STOP } tag_kind;

typedef struct gtag {
  tag_kind kind;
  size_t idx; /* slot or channel */
} gtag;

typedef struct gevent {
  gtag *tag;
  int ok;
  uint64_t t;
} gevent;

typedef struct gchan {
  grpc_channel *ch;
  gtag watch;
  int watching;   /* a connectivity watch is outstanding */
  int waiters;    /* slots waiting for this channel in connect() */
  uint64_t deadline_ns;
} gchan;

typedef struct gslot {
  gtag a, s, m;
  grpc_call *call;
  int stream;
  int preconnect;
  unsigned batches;        /* started and not yet completed */
  int a_ok, bad, server_md;
  uint64_t nmsg, t_last;
  grpc_byte_buffer *send; /* kept until the call ends, as gRPC asks */
  grpc_byte_buffer *recv;
  grpc_metadata_array init_md, trail_md;
  grpc_status_code code;
  grpc_slice details;
  uint64_t deadline_ns;    /* the call's deadline on the uv_hrtime() clock */
  grpc_metadata *md;       /* the --header metadata, then x-switchyard-user */
  grpc_slice user;         /* the x-switchyard-user value of the call (empty: none) */
} gslot;

struct sy_load_target {
  uv_loop_t *loop;
  sy_load_sink sink;
  const sy_load_mix *mix;
  unsigned timeout_ms;
  int grpc_inited, closing, thread_started, async_open, cq_drained;
  grpc_completion_queue *cq;
  gchan *chans;
  size_t nch;
  gslot *slots;
  size_t n;
  grpc_slice *bodies;      /* packed request per mix item */
  size_t nbodies;
  grpc_metadata *hdrs;     /* --header flags as metadata */
  size_t nhdrs;
  grpc_slice user_key;
  uint32_t warned;         /* status codes whose first details were logged */
  pthread_t thread;
  uv_async_t async;
  gtag stop;
  pthread_mutex_t mu;      /* guards pending / npending */
  gevent *pending, *spare; /* capacity cap: every tag is in at most one event */
  size_t npending, cap;
};

static int fail(char *err, size_t errsz, int rc, const char *fmt, const char *a, const char *b) {
  if (err && errsz) snprintf(err, errsz, fmt, a, b);
  return rc;
}

/* ---------------------------------------------------------------- completions */

/* cq thread: hands one completion to the loop. */
static void push(sy_load_target *t, gtag *tag, int ok, uint64_t now) {
  pthread_mutex_lock(&t->mu);
  assert(t->npending < t->cap);
  t->pending[t->npending++] = (gevent){.tag = tag, .ok = ok, .t = now};
  int wake = t->npending == 1; /* otherwise a wake-up is already on its way */
  pthread_mutex_unlock(&t->mu);
  if (wake) uv_async_send(&t->async);
}

static void *cq_main(void *arg) {
  sy_load_target *t = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    uint64_t now = uv_hrtime();
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      push(t, &t->stop, 1, now);
      return NULL;
    }
    if (ev.type == GRPC_OP_COMPLETE) push(t, ev.tag, ev.success, now);
  }
}

static void watch(sy_load_target *t, gchan *c, grpc_connectivity_state last) {
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis((int64_t)t->timeout_ms, GPR_TIMESPAN));
  c->watching = 1;
  grpc_channel_watch_connectivity_state(c->ch, last, dl, t->cq, &c->watch);
}

/* A channel's state changed (or its watch timed out): tell the slots
 * waiting for it once it is READY, failing or out of time. */
static void on_watch(sy_load_target *t, gchan *c, uint64_t now) {
  c->watching = 0;
  if (t->closing || !c->waiters) return;
  grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->ch, 1);
  int status;
  if (st == GRPC_CHANNEL_READY) status = 0;
  else if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) status = UV_ECONNREFUSED;
  else if (now >= c->deadline_ns) status = UV_ETIMEDOUT;
  else {
    watch(t, c, st);
    return;
  }
  c->waiters = 0;
  for (size_t i = (size_t)(c - t->chans); i < t->n; i += t->nch) {
    gslot *s = &t->slots[i];
    if (!s->preconnect) continue;
    s->preconnect = 0;
    t->sink.connected(t->sink.ctx, i, status);
    if (t->closing) return;
  }
}

/* Final status → the HTTP-like outcome the engine counts. `server` is set
 * when the server's initial metadata arrived (the gateway answered), as
 * opposed to a status gRPC made up locally (no connection, reset). A
 * connection lost after the gateway's headers therefore counts as its 503. */
static sy_load_result result_of(const gslot *s) {
  sy_load_result r = {SY_LOAD_E_HTTP_5XX, 500};
  int server = s->server_md;
  switch (s->code) {
  case GRPC_STATUS_OK:
    if (s->bad || s->nmsg == 0) r = (sy_load_result){SY_LOAD_E_PARSE, 0};
    else r = (sy_load_result){SY_LOAD_OK, 200};
    break;
  case GRPC_STATUS_INVALID_ARGUMENT:
  case GRPC_STATUS_FAILED_PRECONDITION:
  case GRPC_STATUS_OUT_OF_RANGE: r = (sy_load_result){SY_LOAD_E_HTTP_4XX, 400}; break;
  case GRPC_STATUS_UNAUTHENTICATED: r = (sy_load_result){SY_LOAD_E_HTTP_4XX, 401}; break;
  case GRPC_STATUS_PERMISSION_DENIED: r = (sy_load_result){SY_LOAD_E_HTTP_4XX, 403}; break;
  case GRPC_STATUS_NOT_FOUND: r = (sy_load_result){SY_LOAD_E_HTTP_4XX, 404}; break;
  case GRPC_STATUS_ALREADY_EXISTS:
  case GRPC_STATUS_ABORTED: r = (sy_load_result){SY_LOAD_E_HTTP_4XX, 409}; break;
  case GRPC_STATUS_RESOURCE_EXHAUSTED:
    /* locally: an answer over the receive limit */
    r = server ? (sy_load_result){SY_LOAD_E_HTTP_4XX, 429} : (sy_load_result){SY_LOAD_E_PARSE, 0};
    break;
  case GRPC_STATUS_UNIMPLEMENTED: r = (sy_load_result){SY_LOAD_E_HTTP_5XX, 501}; break;
  case GRPC_STATUS_UNAVAILABLE:
    /* the gateway's own UNAVAILABLE stands for an upstream 502/503; a local
     * one whose send batch failed never reached a server */
    if (server) r = (sy_load_result){SY_LOAD_E_HTTP_5XX, 503};
    else r = (sy_load_result){s->a_ok ? SY_LOAD_E_RESET : SY_LOAD_E_CONNECT, 0};
    break;
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    /* at our deadline it is ours, whoever noticed first (the server gets
     * the deadline too and may end the call itself); before it, it is the
     * gateway's mapping of an upstream 504 */
    if (s->t_last + DEADLINE_SLACK_NS >= s->deadline_ns) r = (sy_load_result){SY_LOAD_E_TIMEOUT, 0};
    else r = (sy_load_result){SY_LOAD_E_HTTP_5XX, 504};
    break;
  case GRPC_STATUS_CANCELLED: r = (sy_load_result){SY_LOAD_E_RESET, 0}; break;
  default: break; /* UNKNOWN, INTERNAL, DATA_LOSS: 500 */
  }
  return r;
}

/* Every batch of the slot's call completed: release it, then report. */
static void call_end(sy_load_target *t, size_t i) {
  gslot *s = &t->slots[i];
  s->server_md = s->init_md.count > 0 || s->trail_md.count > 0;
  sy_load_result r = result_of(s);
  /* the report counts failures; the first message of each code says why */
  if (s->code != GRPC_STATUS_OK && (unsigned)s->code < 32 && !t->closing &&
      !(t->warned & (1u << s->code))) {
    t->warned |= 1u << s->code;
    sy_warn("switchyard-load: first gRPC status %d (%s): %.*s", (int)s->code,
            sy_load_err_name(r.kind), (int)GRPC_SLICE_LENGTH(s->details),
            (const char *)GRPC_SLICE_START_PTR(s->details));
  }
  grpc_call_unref(s->call);
  s->call = NULL;
  grpc_metadata_array_destroy(&s->init_md);
  grpc_metadata_array_destroy(&s->trail_md);
  grpc_slice_unref(s->details);
  grpc_slice_unref(s->user);
  grpc_byte_buffer_destroy(s->send);
  s->send = NULL;
  if (!t->closing) t->sink.done(t->sink.ctx, i, &r, s->t_last);
}

static int start_recv(gslot *s) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &s->recv;
  if (grpc_call_start_batch(s->call, &op, 1, &s->m, NULL) != GRPC_CALL_OK) return -1;
  s->batches++;
  return 0;
}

/* A message arrived (A or M): count it; 1 when more may follow. */
static int got_message(sy_load_target *t, size_t i, uint64_t now) {
  gslot *s = &t->slots[i];
  grpc_byte_buffer *bb = s->recv;
  s->recv = NULL;
  if (!bb) return 0; /* the end of the stream */
  grpc_byte_buffer_reader rd;
  if (grpc_byte_buffer_reader_init(&rd, bb)) {
    grpc_slice sl = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    const ProtobufCMessageDescriptor *d = s->stream
        ? &switchyard__v1__chat_completion_chunk__descriptor
        : &switchyard__v1__chat_completion_response__descriptor;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    else s->bad = 1;
    grpc_slice_unref(sl);
  } else {
    s->bad = 1;
  }
  grpc_byte_buffer_destroy(bb);
  if (t->closing) return 0;
  if (s->nmsg++ == 0) t->sink.first_byte(t->sink.ctx, i, now);
  if (s->stream) t->sink.chunk(t->sink.ctx, i, now);
  return s->stream && !s->bad;
}

static void on_event(sy_load_target *t, const gevent *ev) {
  gtag *tag = ev->tag;
  if (tag->kind == TAG_WATCH) {
    on_watch(t, &t->chans[tag->idx], ev->t);
    return;
  }
  gslot *s = &t->slots[tag->idx];
  assert(s->call && s->batches > 0);
  s->batches--;
  if (ev->t > s->t_last) s->t_last = ev->t;
  if (tag->kind == TAG_A) s->a_ok = ev->ok;
  if (tag->kind == TAG_A || tag->kind == TAG_M) {
    int more = ev->ok && got_message(t, tag->idx, ev->t);
    if (!ev->ok && s->recv) { /* not expected, but never leak it */
      grpc_byte_buffer_destroy(s->recv);
      s->recv = NULL;
    }
    if (more && !t->closing && start_recv(s) != 0) s->bad = 1;
  }
  if (s->batches == 0) call_end(t, tag->idx);
}

static void on_async_closed(uv_handle_t *h) {
  sy_load_target *t = h->data;
  t->async_open = 0;
}

static void on_async(uv_async_t *a) {
  sy_load_target *t = a->data;
  pthread_mutex_lock(&t->mu);
  gevent *evs = t->pending;
  size_t n = t->npending;
  t->pending = t->spare;
  t->spare = evs;
  t->npending = 0;
  pthread_mutex_unlock(&t->mu);
  for (size_t k = 0; k < n; k++) {
    if (evs[k].tag->kind == TAG_STOP) {
      /* the queue is drained and the thread is on its way out */
      pthread_join(t->thread, NULL);
      t->thread_started = 0;
      t->cq_drained = 1;
      uv_close((uv_handle_t *)&t->async, on_async_closed);
      continue;
    }
    on_event(t, &evs[k]);
  }
}

/* ---------------------------------------------------------------- ops */

static int grpc_send(sy_load_target *t, size_t slot, const sy_load_req *req) {
  assert(slot < t->n && !t->closing);
  gslot *s = &t->slots[slot];
  assert(!s->call);
  const sy_load_mix *mix = t->mix;
  if (req->item < mix->items || req->item >= mix->items + mix->n) return SY_EINVAL;
  size_t idx = (size_t)(req->item - mix->items);

  grpc_slice parts[2];
  size_t nparts = 1, nmd = t->nhdrs;
  parts[0] = t->bodies[idx];
  s->user = grpc_empty_slice();
  if (req->user) {
    /* field 8 (user), length-delimited: tag 0x42, a one-byte length (the
     * id is shorter than 128), "user-N" */
    char field[2 + 24];
    int len = snprintf(field + 2, sizeof field - 2, "user-%u", req->user);
    field[0] = 0x42;
    field[1] = (char)len;
    parts[nparts++] = grpc_slice_from_copied_buffer(field, (size_t)len + 2);
    s->user = grpc_slice_from_copied_buffer(field + 2, (size_t)len);
    s->md[nmd].key = t->user_key;
    s->md[nmd].value = s->user;
    nmd++;
  }
  grpc_byte_buffer *bb = s->send = grpc_raw_byte_buffer_create(parts, nparts);
  if (nparts > 1) grpc_slice_unref(parts[1]);

  s->stream = req->item->stream;
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis((int64_t)t->timeout_ms, GPR_TIMESPAN));
  s->deadline_ns = uv_hrtime() + (uint64_t)t->timeout_ms * 1000000ull;
  grpc_channel *ch = t->chans[slot % t->nch].ch;
  s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                     grpc_slice_from_static_string(s->stream ? M_STREAM : M_UNARY),
                                     NULL, dl, NULL);
  if (!s->call) {
    grpc_byte_buffer_destroy(bb);
    grpc_slice_unref(s->user);
    return SY_EIO;
  }
  grpc_metadata_array_init(&s->init_md);
  grpc_metadata_array_init(&s->trail_md);
  s->details = grpc_empty_slice();
  s->code = GRPC_STATUS_UNKNOWN;
  s->recv = NULL;
  s->nmsg = s->t_last = 0;
  s->a_ok = s->bad = 0;

  grpc_op ops[5];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = nmd;
  ops[0].data.send_initial_metadata.metadata = nmd ? s->md : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &s->recv;
  grpc_call_error e = grpc_call_start_batch(s->call, ops, 5, &s->a, NULL);
  grpc_op st;
  memset(&st, 0, sizeof st);
  st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  st.data.recv_status_on_client.trailing_metadata = &s->trail_md;
  st.data.recv_status_on_client.status = &s->code;
  st.data.recv_status_on_client.status_details = &s->details;
  if (e == GRPC_CALL_OK) {
    s->batches = 1;
    e = grpc_call_start_batch(s->call, &st, 1, &s->s, NULL);
    if (e == GRPC_CALL_OK) {
      s->batches = 2;
      return 0;
    }
    /* A is out and will complete (cancelled) through the queue: the slot is
     * busy until then, and reports the failure as its answer. */
    grpc_call_cancel(s->call, NULL);
    return 0;
  }
  sy_warn("switchyard-load: grpc_call_start_batch failed (%d)", (int)e);
  grpc_call_unref(s->call);
  s->call = NULL;
  grpc_metadata_array_destroy(&s->init_md);
  grpc_metadata_array_destroy(&s->trail_md);
  grpc_slice_unref(s->user);
  grpc_byte_buffer_destroy(bb);
  return SY_EIO;
}

static int grpc_connect(sy_load_target *t, size_t slot) {
  assert(slot < t->n);
  gslot *s = &t->slots[slot];
  if (t->closing || s->call || s->preconnect) return SY_EINVAL;
  gchan *c = &t->chans[slot % t->nch];
  s->preconnect = 1;
  if (c->waiters++ == 0) c->deadline_ns = uv_hrtime() + (uint64_t)t->timeout_ms * 1000000ull;
  if (!c->watching) {
    /* starts connecting; the first watch completes when the state moves on
     * (a READY channel is reported through the queue like any change) */
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->ch, 1);
    if (st == GRPC_CHANNEL_READY) {
      c->watching = 1;
      push(t, &c->watch, 1, uv_hrtime());
    } else {
      watch(t, c, st);
    }
  }
  return 0;
}

static void grpc_close(sy_load_target *t) {
  if (t->closing) return;
  t->closing = 1;
  for (size_t i = 0; i < t->n; i++)
    if (t->slots[i].call) grpc_call_cancel(t->slots[i].call, NULL);
  /* destroying a channel ends its connectivity watch (SHUTDOWN) */
  for (size_t i = 0; i < t->nch; i++) {
    if (t->chans[i].ch) grpc_channel_destroy(t->chans[i].ch);
    t->chans[i].ch = NULL;
  }
  /* the thread drains the outstanding completions, sees SHUTDOWN and
   * pushes the stop event, after which on_async joins it */
  if (t->thread_started) grpc_completion_queue_shutdown(t->cq);
}

static void grpc_destroy(sy_load_target *t) {
  if (!t) return;
  assert(!t->thread_started && !t->async_open);
  for (size_t i = 0; i < t->nch; i++)
    if (t->chans[i].ch) grpc_channel_destroy(t->chans[i].ch);
  if (t->cq && !t->cq_drained) {
    /* set-up failed before the thread ran: drain here (nothing is pending) */
    grpc_completion_queue_shutdown(t->cq);
    while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
  }
  if (t->cq) grpc_completion_queue_destroy(t->cq);
  for (size_t i = 0; i < t->nbodies; i++) grpc_slice_unref(t->bodies[i]);
  for (size_t i = 0; i < t->nhdrs; i++) {
    grpc_slice_unref(t->hdrs[i].key);
    grpc_slice_unref(t->hdrs[i].value);
  }
  if (t->grpc_inited) {
    grpc_slice_unref(t->user_key);
    grpc_shutdown();
  }
  if (t->slots)
    for (size_t i = 0; i < t->n; i++) free(t->slots[i].md);
  pthread_mutex_destroy(&t->mu);
  free(t->bodies);
  free(t->hdrs);
  free(t->slots);
  free(t->chans);
  free(t->pending);
  free(t->spare);
  free(t);
}

/* ---------------------------------------------------------------- set-up */

/* grpc://host:port[/] → "host:port" (host may be [v6]). */
static int parse_url(const char *url, char *target, size_t tsz, char *err, size_t errsz) {
  if (strncmp(url, "grpc://", 7) != 0)
    return fail(err, errsz, SY_EINVAL, "%s: the URL must start with grpc://%s", url, "");
  const char *h = url + 7;
  size_t len = strcspn(h, "/?#");
  if (h[len] && strcmp(h + len, "/") != 0)
    return fail(err, errsz, SY_EINVAL, "%s: a grpc:// URL has no path (the methods are fixed)%s",
                url, "");
  const char *colon = NULL;
  for (size_t i = len; i > 0; i--)
    if (h[i - 1] == ':' || h[i - 1] == ']') {
      if (h[i - 1] == ':') colon = h + i - 1;
      break;
    }
  char *pe;
  long port = colon ? strtol(colon + 1, &pe, 10) : 0;
  if (!colon || colon == h || pe != h + len || port <= 0 || port > 65535)
    return fail(err, errsz, SY_EINVAL, "%s: want grpc://HOST:PORT%s", url, "");
  if (len >= tsz) return fail(err, errsz, SY_EINVAL, "%s: host too long%s", url, "");
  memcpy(target, h, len);
  target[len] = '\0';
  return 0;
}

/* Headers that describe HTTP/1.1 framing: gRPC sets its own. */
static int http_only(const char *name, size_t n) {
  static const char *const skip[] = {"host", "connection", "content-type", "te", "keep-alive",
                                     "upgrade", "user-agent", "proxy-connection"};
  for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
    if (strlen(skip[i]) == n && strncasecmp(name, skip[i], n) == 0) return 1;
  return 0;
}

static int build_metadata(sy_load_target *t, const sy_load_cfg *cfg, char *err, size_t errsz) {
  t->hdrs = calloc(cfg->nheaders ? cfg->nheaders : 1, sizeof *t->hdrs);
  if (!t->hdrs) return SY_ENOMEM;
  for (size_t i = 0; i < cfg->nheaders; i++) {
    const char *h = cfg->headers[i], *colon = strchr(h, ':'); /* validated by main */
    size_t nlen = (size_t)(colon - h);
    char key[128];
    if (http_only(h, nlen)) {
      sy_warn("switchyard-load: --header %.*s is not sent over gRPC (HTTP/1.1 framing)", (int)nlen, h);
      continue;
    }
    if (nlen >= sizeof key || (nlen > 5 && strncasecmp(h, "grpc-", 5) == 0))
      return fail(err, errsz, SY_EINVAL, "--header %s: not allowed as gRPC metadata%s", h, "");
    for (size_t k = 0; k < nlen; k++) key[k] = (char)((h[k] >= 'A' && h[k] <= 'Z') ? h[k] | 0x20 : h[k]);
    key[nlen] = '\0';
    const char *v = colon + 1, *ve = v + strlen(v);
    while (*v == ' ' || *v == '\t') v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    grpc_slice ks = grpc_slice_from_copied_string(key);
    grpc_slice vs = grpc_slice_from_copied_buffer(v, (size_t)(ve - v));
    if (!grpc_header_key_is_legal(ks) ||
        (!grpc_is_binary_header(ks) && !grpc_header_nonbin_value_is_legal(vs))) {
      grpc_slice_unref(ks);
      grpc_slice_unref(vs);
      return fail(err, errsz, SY_EINVAL, "--header %s: not valid gRPC metadata%s", h, "");
    }
    t->hdrs[t->nhdrs].key = ks;
    t->hdrs[t->nhdrs].value = vs;
    t->nhdrs++;
  }
  return 0;
}

/* gRPC's own log lines (reconnect attempts to a dead target) would flood the
 * summary; every failure is counted in the report instead. */
static void quiet_log(gpr_log_func_args *args) { (void)args; }

static grpc_channel *make_channel(const char *target) {
  /* never through an http_proxy from the environment: the target is named;
   * reconnects back off up to 1 s, as the engine's slots do (gRPC's own
   * default grows to 2 min, far longer than a run) */
  static const struct {
    const char *key;
    int value;
  } ints[] = {
      {GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1},
      {GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_MAX_MESSAGE},
      {GRPC_ARG_ENABLE_HTTP_PROXY, 0},
      {GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100},
      {GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000},
  };
  grpc_arg args[sizeof ints / sizeof *ints];
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    args[i].type = GRPC_ARG_INTEGER;
    args[i].key = (char *)ints[i].key;
    args[i].value.integer = ints[i].value;
  }
  grpc_channel_args ca = {sizeof ints / sizeof *ints, args};
  grpc_channel_credentials *cr = grpc_insecure_credentials_create();
  if (!cr) return NULL;
  grpc_channel *ch = grpc_channel_create(target, cr, &ca);
  grpc_channel_credentials_release(cr);
  return ch;
}

static int grpc_create(uv_loop_t *loop, const sy_load_cfg *cfg, const sy_load_sink *sink,
                       size_t nslots, sy_load_target **out, char *err, size_t errsz) {
  char target[SY_LOAD_MAX_URL + 1];
  *out = NULL;
  int rc = parse_url(cfg->url, target, sizeof target, err, errsz);
  if (rc) return rc;
  if (!cfg->mix || cfg->mix->n == 0)
    return fail(err, errsz, SY_EINVAL, "grpc target: no request mix%s%s", "", "");
  sy_load_target *t = calloc(1, sizeof *t);
  if (!t) return SY_ENOMEM;
  pthread_mutex_init(&t->mu, NULL);
  t->loop = loop;
  t->sink = *sink;
  t->mix = cfg->mix;
  t->timeout_ms = cfg->timeout_ms;
  t->n = nslots;
  t->nch = nslots < GRPC_MAX_CHANNELS ? nslots : GRPC_MAX_CHANNELS;
  t->stop.kind = TAG_STOP;

  if (!getenv("SWITCHYARD_LOAD_DEBUG")) gpr_set_log_function(quiet_log);
  /* getaddrinfo, like the HTTP target (gRPC's bundled c-ares also leaks a
   * little per lookup under LeakSanitizer); a value the user set wins */
  setenv("GRPC_DNS_RESOLVER", "native", 0);
  grpc_init();
  t->grpc_inited = 1;
  t->user_key = grpc_slice_from_static_string("x-switchyard-user");

  if ((rc = build_metadata(t, cfg, err, errsz)) != 0) goto fail_free;
  rc = SY_ENOMEM;
  t->bodies = calloc(t->mix->n, sizeof *t->bodies);
  t->slots = calloc(nslots, sizeof *t->slots);
  t->chans = calloc(t->nch, sizeof *t->chans);
  t->cap = 3 * nslots + t->nch + 1; /* A, S, M per slot, a watch per channel, the stop */
  t->pending = calloc(t->cap, sizeof *t->pending);
  t->spare = calloc(t->cap, sizeof *t->spare);
  if (!t->bodies || !t->slots || !t->chans || !t->pending || !t->spare) goto fail_free;
  for (; t->nbodies < t->mix->n; t->nbodies++) {
    const sy_load_item *it = &t->mix->items[t->nbodies];
    uint8_t *packed;
    size_t plen;
    char why[320];
    if ((rc = sy__load_grpc_encode(it->body, it->len, &packed, &plen, why, sizeof why)) != 0) {
      if (err && errsz) snprintf(err, errsz, "mix item %zu: %s", t->nbodies + 1, why);
      goto fail_free;
    }
    t->bodies[t->nbodies] = grpc_slice_new(packed, plen, free);
  }
  for (size_t i = 0; i < nslots; i++) {
    gslot *s = &t->slots[i];
    s->a = (gtag){TAG_A, i};
    s->s = (gtag){TAG_S, i};
    s->m = (gtag){TAG_M, i};
    if (!(s->md = calloc(t->nhdrs + 1, sizeof *s->md))) {
      rc = SY_ENOMEM;
      goto fail_free;
    }
    if (t->nhdrs) memcpy(s->md, t->hdrs, t->nhdrs * sizeof *s->md);
  }
  if (!(t->cq = grpc_completion_queue_create_for_next(NULL))) {
    rc = fail(err, errsz, SY_EIO, "cannot create a gRPC completion queue%s%s", "", "");
    goto fail_free;
  }
  for (size_t i = 0; i < t->nch; i++) {
    t->chans[i].watch = (gtag){TAG_WATCH, i};
    if (!(t->chans[i].ch = make_channel(target))) {
      rc = fail(err, errsz, SY_EIO, "cannot create a gRPC channel to %s%s", target, "");
      goto fail_free;
    }
  }
  if ((rc = uv_async_init(loop, &t->async, on_async)) != 0) {
    rc = fail(err, errsz, SY_EIO, "uv_async_init: %s%s", uv_strerror(rc), "");
    goto fail_free;
  }
  t->async.data = t;
  t->async_open = 1;
  if (pthread_create(&t->thread, NULL, cq_main, t) != 0) {
    rc = fail(err, errsz, SY_EIO, "cannot start the completion-queue thread%s%s", "", "");
    uv_close((uv_handle_t *)&t->async, on_async_closed);
    uv_run(loop, UV_RUN_NOWAIT); /* lets the close complete before destroy */
    goto fail_free;
  }
  t->thread_started = 1;
  *out = t;
  return 0;

fail_free:
  grpc_destroy(t);
  return rc;
}

const sy_load_target_ops sy_load_grpc_ops = {
    .name = "grpc",
    .create = grpc_create,
    .connect = grpc_connect,
    .send = grpc_send,
    .close = grpc_close,
    .destroy = grpc_destroy,
};
