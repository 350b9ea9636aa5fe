/* The Inference and FeedbackService gRPC services. A call is turned into the
 * HTTP request it stands for (grpc_chat.c builds the JSON), posted to a
 * worker (round-robin) and run there as a virtual connection
 * (sy_conn_virtual_*), so it gets the HTTP path's authentication, routing,
 * capture and limits. The connection's sink turns the answer back into gRPC
 * messages and a status.
 *
 * Threads: start() and the cancel/writable hooks run on the
 * completion-queue thread; everything touching the connection runs on the
 * call's worker (tasks posted with sy_worker_post, in order). The call
 * (sy_grpc_call) outlives the connection: the worker holds a reference from
 * the start task until the sink's end. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/conn.h"
#include "gateway/grpc_chat.h"
#include "gateway/grpc_internal.h"
#include "switchyard/v1/inference.pb-c.h"

#define MAX_FWD_HEADERS 24  /* metadata entries forwarded as headers */
#define MAX_FWD_VALUE 4096  /* bytes of one forwarded value */

typedef enum { K_UNARY, K_STREAM, K_FEEDBACK } call_kind;

typedef struct icall {
  sy_grpc_call *gc;
  call_kind kind;
  sy_worker *w;
  /* the request, built on the cq thread, freed once handed to the conn */
  char *body;
  size_t body_len;
  char *names[MAX_FWD_HEADERS], *values[MAX_FWD_HEADERS];
  size_t n_hdrs;
  /* worker thread only from here on */
  sy_conn *conn;
  int status;
  char capture_id[24], route[160], arm[160], request_id[48];
  sy_buf resp;             /* unary answer or error body */
  int resp_overflow;
  sy_sse sse;
  int first_sent, saw_done, failed;
  grpc_status_code fail_code;
  char fail_msg[512];
} icall;

static void icall_free(void *p) {
  icall *ic = p;
  free(ic->body);
  for (size_t i = 0; i < ic->n_hdrs; i++) {
    free(ic->names[i]);
    free(ic->values[i]);
  }
  sy_buf_free(&ic->resp);
  sy_sse_free(&ic->sse);
  free(ic);
}

/* ---- the sink (worker thread) -------------------------------------------------------------- */

static void copy_field(char *dst, size_t cap, const char *v, size_t n) {
  if (n >= cap) n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = '\0';
}

static void scan_headers(icall *ic, const char *h, size_t len) {
  static const struct {
    const char *name;
    size_t off, cap;
  } want[] = {
      {"x-switchyard-capture-id", offsetof(icall, capture_id), sizeof ((icall *)0)->capture_id},
      {"x-switchyard-route", offsetof(icall, route), sizeof ((icall *)0)->route},
      {"x-switchyard-arm", offsetof(icall, arm), sizeof ((icall *)0)->arm},
      {"x-switchyard-request-id", offsetof(icall, request_id), sizeof ((icall *)0)->request_id},
  };
  const char *end = h + len;
  while (h < end) {
    const char *eol = memchr(h, '\n', (size_t)(end - h));
    size_t ll = eol ? (size_t)(eol - h) : (size_t)(end - h);
    const char *colon = memchr(h, ':', ll);
    if (colon) {
      size_t nl = (size_t)(colon - h);
      const char *v = colon + 1;
      size_t vl = ll - nl - 1;
      while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
      while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
      for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strlen(want[i].name) == nl && strncasecmp(h, want[i].name, nl) == 0)
          copy_field((char *)ic + want[i].off, want[i].cap, v, vl);
    }
    h += ll + 1;
  }
}

static sy_grpc_meta meta_of(const icall *ic) {
  sy_grpc_meta m = {.capture_id = strtoull(ic->capture_id, NULL, 10), .route = ic->route,
                    .arm = ic->arm, .request_id = ic->request_id};
  return m;
}

static int sink_head(sy_conn *c, int status, const char *hdrs, size_t len, long long cl) {
  icall *ic = c->sink_ctx;
  if (sy__grpc_cancelled(ic->gc)) return SY_ECLOSED;
  ic->status = status;
  scan_headers(ic, hdrs, len);
  if (ic->capture_id[0]) sy__grpc_md_add(ic->gc, "x-switchyard-capture-id", ic->capture_id);
  if (ic->route[0]) sy__grpc_md_add(ic->gc, "x-switchyard-route", ic->route);
  if (ic->arm[0]) sy__grpc_md_add(ic->gc, "x-switchyard-arm", ic->arm);
  if (ic->request_id[0]) sy__grpc_md_add(ic->gc, "x-switchyard-request-id", ic->request_id);
  /* A stream's client learns the capture id before the first token. */
  if (ic->kind == K_STREAM && status == 200) sy__grpc_send_md(ic->gc);
  return 0;
}

static int emit(void *ctx, const ProtobufCMessage *m) {
  icall *ic = ctx;
  int rc = sy__grpc_send(ic->gc, m);
  if (rc == SY_ETOOBIG) {
    ic->failed = 1;
    ic->fail_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(ic->fail_msg, sizeof ic->fail_msg, "an answer message is larger than %zu bytes",
             ic->gc->srv->env->cfg->grpc.max_message_bytes);
  }
  return rc;
}

static int on_event(void *ctx, const char *data, size_t len) {
  icall *ic = ctx;
  if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
    ic->saw_done = 1;
    return 0;
  }
  if (len > 10 && memmem(data, len < 64 ? len : 64, "\"error\"", 7)) {
    /* the gateway's (or the upstream's) error event: the stream failed */
    char msg[sizeof ic->fail_msg];
    sy_grpc_error_message(data, len, 502, msg, sizeof msg);
    if (strncmp(msg, "HTTP ", 5) != 0) {
      ic->failed = 1;
      ic->fail_code = GRPC_STATUS_UNAVAILABLE;
      snprintf(ic->fail_msg, sizeof ic->fail_msg, "%s", msg);
      return SY_EIO;
    }
  }
  sy_grpc_meta m = meta_of(ic);
  int rc = sy_grpc_chat_chunk(data, len, ic->first_sent ? NULL : &m, emit, ic);
  if (rc == SY_EINVAL) {
    ic->failed = 1;
    ic->fail_code = GRPC_STATUS_INTERNAL;
    snprintf(ic->fail_msg, sizeof ic->fail_msg, "the upstream sent a chunk that is not JSON");
  }
  if (!rc) ic->first_sent = 1;
  return rc;
}

static int sink_body(sy_conn *c, const char *data, size_t len) {
  icall *ic = c->sink_ctx;
  if (sy__grpc_cancelled(ic->gc) || ic->failed) return SY_ECLOSED;
  if (ic->kind == K_STREAM && ic->status == 200) {
    int rc = sy_sse_feed(&ic->sse, data, len, on_event, ic);
    if (rc == SY_ETOOBIG && !ic->failed) {
      ic->failed = 1;
      ic->fail_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
      snprintf(ic->fail_msg, sizeof ic->fail_msg, "a streamed event is too large");
    }
    return rc ? SY_ECLOSED : 0;
  }
  if (!ic->resp_overflow && sy_buf_append(&ic->resp, data, len) != 0) ic->resp_overflow = 1;
  return 0;
}

static size_t sink_pending(const sy_conn *c) {
  const icall *ic = c->sink_ctx;
  return sy__grpc_pending(ic->gc);
}

static int emit_feedback(icall *ic) {
  Switchyard__V1__FeedbackResponse r = SWITCHYARD__V1__FEEDBACK_RESPONSE__INIT;
  const char *s = ic->resp.data ? ic->resp.data : "";
  const char *id = strstr(s, "\"id\":\"");
  const char *cap = strstr(s, "\"capture_id\":\"");
  if (id) r.feedback_id = strtoull(id + 6, NULL, 10);
  if (cap) r.capture_id = strtoull(cap + 14, NULL, 10);
  r.raw_json = (char *)s;
  return sy__grpc_send(ic->gc, &r.base);
}

/* The call's final status from what the sink saw. */
static void finish_call(icall *ic, int ok) {
  sy_grpc_call *gc = ic->gc;
  char msg[512];
  if (ic->failed) {
    sy__grpc_finish(gc, ic->fail_code, ic->fail_msg);
  } else if (ic->status == 0) {
    sy__grpc_finish(gc, GRPC_STATUS_UNAVAILABLE, "the request ended without an answer");
  } else if (ic->status != 200) {
    const char *b = ic->resp.data ? ic->resp.data : "";
    sy_grpc_error_message(b, ic->resp.len, ic->status, msg, sizeof msg);
    sy__grpc_finish(gc, sy_grpc_status_for_http(ic->status), msg);
  } else if (ic->kind == K_STREAM) {
    int rc = ok ? sy_sse_finish(&ic->sse, on_event, ic) : 0;
    if (ic->failed) sy__grpc_finish(gc, ic->fail_code, ic->fail_msg);
    else if (!ok || rc) sy__grpc_finish(gc, GRPC_STATUS_UNAVAILABLE, "the answer stream was cut short");
    else sy__grpc_finish(gc, GRPC_STATUS_OK, NULL);
  } else if (!ok) {
    sy__grpc_finish(gc, GRPC_STATUS_UNAVAILABLE, "the answer was cut short");
  } else if (ic->resp_overflow) {
    sy__grpc_finish(gc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "the answer is larger than grpc.max_message_bytes");
  } else {
    int rc;
    if (ic->kind == K_FEEDBACK) {
      rc = emit_feedback(ic);
    } else {
      sy_grpc_meta m = meta_of(ic);
      /* raw_json doubles the size: keep it only when both fit */
      int keep_raw = ic->resp.len * 2 + 4096 < gc->srv->env->cfg->grpc.max_message_bytes;
      rc = sy_grpc_chat_response(ic->resp.data ? ic->resp.data : "", ic->resp.len, &m, keep_raw,
                                 emit, ic);
      if (rc == SY_EINVAL) {
        sy__grpc_finish(gc, GRPC_STATUS_INTERNAL, "the upstream answer is not a JSON object");
        return;
      }
    }
    if (ic->failed) sy__grpc_finish(gc, ic->fail_code, ic->fail_msg);
    else if (rc && rc != SY_ECLOSED) sy__grpc_finish(gc, GRPC_STATUS_INTERNAL, sy_strerror(rc));
    else sy__grpc_finish(gc, GRPC_STATUS_OK, NULL);
  }
}

static void sink_end(sy_conn *c, int ok) {
  icall *ic = c->sink_ctx;
  finish_call(ic, ok);
  ic->conn = NULL;
  sy_conn_virtual_free(c);
  sy__grpc_call_unref(ic->gc); /* the worker's reference */
}

static const sy_conn_sink sink = {
    .head = sink_head, .body = sink_body, .end = sink_end, .pending = sink_pending};

/* ---- worker tasks ---------------------------------------------------------------------------- */

static void task_start(sy_worker *w, void *arg) {
  icall *ic = arg;
  sy_grpc_call *gc = ic->gc;
  if (sy__grpc_cancelled(gc)) {
    sy__grpc_call_unref(gc);
    return;
  }
  sy_conn *c = sy_conn_virtual_new(w, &sink, ic);
  if (!c) {
    sy__grpc_finish(gc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    sy__grpc_call_unref(gc);
    return;
  }
  const char *target = ic->kind == K_FEEDBACK ? "/v1/feedback" : "/v1/chat/completions";
  int rc = sy_conn_virtual_request(c, HTTP_POST, target, (const char *const *)ic->names,
                                   (const char *const *)ic->values, ic->n_hdrs, ic->body,
                                   ic->body_len);
  free(ic->body);
  ic->body = NULL;
  if (rc) {
    sy_conn_virtual_free(c);
    sy__grpc_finish(gc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "the request is larger than the gateway's header or body limits");
    sy__grpc_call_unref(gc);
    return;
  }
  ic->conn = c;
  sy_conn_virtual_dispatch(c); /* may run the whole sink (end frees c) */
}

static void task_cancel(sy_worker *w, void *arg) {
  icall *ic = arg;
  sy_grpc_call *gc = ic->gc;
  if (ic->conn) sy_conn_virtual_cancel(ic->conn); /* → sink_end */
  sy__grpc_call_unref(gc);
}

static void task_writable(sy_worker *w, void *arg) {
  icall *ic = arg;
  sy_grpc_call *gc = ic->gc;
  if (ic->conn) sy_conn_virtual_writable(ic->conn);
  sy__grpc_call_unref(gc);
}

/* cq thread: hand a hook to the call's worker */
static void post(sy_grpc_call *gc, void (*fn)(sy_worker *, void *)) {
  icall *ic = gc->impl;
  sy__grpc_call_ref(gc);
  if (sy_worker_post(ic->w, fn, ic) != 0) sy__grpc_call_unref(gc);
}

static void on_cancel(sy_grpc_call *gc) { post(gc, task_cancel); }
static void on_writable(sy_grpc_call *gc) { post(gc, task_writable); }

/* ---- arrival (cq thread) ------------------------------------------------------------------- */

static int add_hdr(icall *ic, const char *name, const char *v, size_t vl) {
  if (ic->n_hdrs >= MAX_FWD_HEADERS || vl > MAX_FWD_VALUE) return 0; /* dropped, like HTTP extras */
  char *n = strdup(name), *val = strndup(v, vl);
  if (!n || !val) {
    free(n);
    free(val);
    return SY_ENOMEM;
  }
  ic->names[ic->n_hdrs] = n;
  ic->values[ic->n_hdrs++] = val;
  return 0;
}

/* The metadata that stands for HTTP headers: the client's key, the
 * switchyard routing and capture headers, and the mock's test headers. */
static int forward_metadata(icall *ic) {
  static const char *const named[] = {"authorization", "x-switchyard-user", "x-switchyard-tenant",
                                      "x-switchyard-capture"};
  int rc = add_hdr(ic, "content-type", "application/json", 16);
  for (size_t i = 0; !rc && i < sizeof named / sizeof named[0]; i++) {
    size_t vl;
    const char *v = sy__grpc_md(ic->gc, named[i], &vl);
    if (v) rc = add_hdr(ic, named[i], v, vl);
  }
  const grpc_metadata_array *md = &ic->gc->md_in;
  for (size_t i = 0; !rc && i < md->count; i++) {
    size_t kl = GRPC_SLICE_LENGTH(md->metadata[i].key);
    const char *k = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].key);
    if (kl > 7 && kl < 64 && memcmp(k, "x-mock-", 7) == 0 && memcmp(k + kl - 4, "-bin", 4) != 0) {
      char name[64];
      memcpy(name, k, kl);
      name[kl] = '\0';
      rc = add_hdr(ic, name, (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value),
                   GRPC_SLICE_LENGTH(md->metadata[i].value));
    }
  }
  return rc;
}

static void start_call(sy_grpc_call *gc, call_kind kind) {
  const sy_config *cfg = gc->srv->env->cfg;
  char err[512];
  ProtobufCMessage *req = sy__grpc_unpack(
      gc,
      kind == K_FEEDBACK ? &switchyard__v1__feedback_request__descriptor
                         : &switchyard__v1__chat_completion_request__descriptor,
      err, sizeof err);
  if (!req) {
    sy__grpc_finish(gc, GRPC_STATUS_INVALID_ARGUMENT, err);
    return;
  }
  icall *ic = calloc(1, sizeof *ic);
  if (!ic) {
    protobuf_c_message_free_unpacked(req, NULL);
    sy__grpc_finish(gc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ic->gc = gc;
  ic->kind = kind;
  sy_buf_init(&ic->resp, cfg->grpc.max_message_bytes);
  sy_sse_init(&ic->sse, cfg->grpc.max_message_bytes);
  gc->impl = ic;
  gc->free_impl = icall_free;
  int rc = kind == K_FEEDBACK
               ? sy_grpc_feedback_body((const Switchyard__V1__FeedbackRequest *)req, &ic->body,
                                       &ic->body_len, err, sizeof err)
               : sy_grpc_chat_body((const Switchyard__V1__ChatCompletionRequest *)req,
                                   kind == K_STREAM, cfg->limits.max_body_bytes, &ic->body,
                                   &ic->body_len, err, sizeof err);
  protobuf_c_message_free_unpacked(req, NULL);
  if (rc) {
    sy__grpc_finish(gc, rc == SY_ETOOBIG ? GRPC_STATUS_RESOURCE_EXHAUSTED
                        : rc == SY_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                          : GRPC_STATUS_INVALID_ARGUMENT,
                    err);
    return;
  }
  if (forward_metadata(ic) != 0) {
    sy__grpc_finish(gc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  sy_grpc_env *env = gc->srv->env;
  unsigned i = atomic_fetch_add(&env->next_worker, 1) % env->n_workers;
  ic->w = &env->workers[i];
  gc->on_cancel = on_cancel;
  gc->on_writable = on_writable;
  sy__grpc_call_ref(gc); /* the worker's, until sink_end (or the task gives up) */
  if (sy_worker_post(ic->w, task_start, ic) != 0) {
    sy__grpc_call_unref(gc);
    sy__grpc_finish(gc, GRPC_STATUS_UNAVAILABLE, "the gateway is shutting down");
  }
}

static void start_unary(sy_grpc_call *gc) { start_call(gc, K_UNARY); }
static void start_stream(sy_grpc_call *gc) { start_call(gc, K_STREAM); }
static void start_feedback(sy_grpc_call *gc) { start_call(gc, K_FEEDBACK); }

sy_grpc_method sy__grpc_inference_methods[] = {
    {"/switchyard.v1.Inference/ChatCompletion", start_unary, NULL, NULL},
    {"/switchyard.v1.Inference/ChatCompletionStream", start_stream, NULL, NULL},
    {"/switchyard.v1.FeedbackService/Submit", start_feedback, NULL, NULL},
};
const size_t sy__grpc_n_inference_methods =
    sizeof sy__grpc_inference_methods / sizeof sy__grpc_inference_methods[0];
