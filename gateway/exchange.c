/* The request handler, upstream side: one exchange is one or more attempts.
 *
 *   pass-through: one call to the default upstream, the body unchanged.
 *   route: the decision's arm, "model" rewritten by splicing the bytes; on a
 *     connect error, a timeout, 429 or 5xx before anything reached the client,
 *     retry with backoff (honouring Retry-After) and then fall back along the
 *     route's chain; a per-upstream circuit breaker skips upstreams that keep
 *     failing. Once bytes reached the client there is no silent switch: a
 *     stream ends with an error event.
 *   cascade: the first arm is asked without streaming and with logprobs; its
 *     answer is held back, its confidence computed; accepted, it is served
 *     (replayed as SSE when the client streams); otherwise the escalation arm
 *     is asked with the client's own request and streams live. Both captured.
 *   shadow: a mirrored call whose answer goes only to the capture store.
 *
 * Streaming: the upstream's head goes to the client as soon as it is
 * complete and every body piece as it arrives, with backpressure: above
 * SY_WRITE_HIGH_WATER unsent bytes the transfer is paused (on_body returns
 * SY_UP_PAUSE) and resumed below SY_WRITE_LOW_WATER. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/jsonscan.h"
#include "gateway/proxy_internal.h"
#include "gateway/respond.h"
#include "router/confidence.h"
#include "router/retry.h"

static void start_attempt(sy_proxy *px);

/* ---- helpers ---------------------------------------------------------------------- */

static const sy_upstream_conf *arm_upstream(const sy_proxy *px, int arm) {
  const sy_config *cfg = px->w->cfg;
  if (arm < 0) return &cfg->upstreams[cfg->default_upstream];
  const sy_upstream_conf *u = sy_config_upstream(cfg, px->d.route->arms[arm].upstream.s);
  return u ? u : &cfg->upstreams[cfg->default_upstream];
}

static sy_breaker *breaker_for(const sy_proxy *px, const sy_upstream_conf *u) {
  return &px->w->breakers[u - px->w->cfg->upstreams];
}

static int has_sse_type(const char *hdrs, size_t len) {
  const char *p = hdrs, *end = hdrs + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
    if (l > 13 && strncasecmp(p, "content-type:", 13) == 0) {
      const char *v = p + 13;
      while (v < p + l && *v == ' ') v++;
      return (size_t)(p + l - v) >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    }
    p = eol ? eol + 1 : end;
  }
  return 0;
}

static int64_t retry_after_ms(const char *hdrs, size_t len) {
  const char *p = hdrs, *end = hdrs + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
    if (l > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
      size_t vl = l - 12;
      if (vl && p[12 + vl - 1] == '\r') vl--;
      int64_t ms;
      if (sy_retry_parse_after(p + 12, vl, (int64_t)(sy__wall_us() / 1000), &ms) == 0) return ms;
      return -1;
    }
    p = eol ? eol + 1 : end;
  }
  return -1;
}

static int64_t remaining_ms(const sy_proxy *px) {
  if (!px->deadline_ms) return -1;
  uint64_t now = sy__mono_ms();
  return now >= px->deadline_ms ? 0 : (int64_t)(px->deadline_ms - now);
}

/* The body for this attempt: the client's own on pass-through; with "model"
 * replaced by the arm's (spliced, no re-serialisation) on a route; and for
 * a cascade's first try, non-streaming with logprobs. */
static int build_body(sy_proxy *px, int arm, int cascade_first, sy_buf *out) {
  const sy_buf *in = &px->c->req.body;
  const char *src = in->data ? in->data : "";
  sy_buf_reset(out);
  if (arm < 0) return 0; /* caller sends the client's body */
  const sy_rstr *model = &px->d.route->arms[arm].model;
  if (cascade_first) {
    cJSON *root = cJSON_ParseWithLength(src, in->len);
    if (!root) return SY_EINVAL;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
    cJSON_AddStringToObject(root, "model", model->s);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "logprobs");
    cJSON_AddTrueToObject(root, "logprobs");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) return SY_ENOMEM;
    int rc = sy_buf_appends(out, s);
    free(s);
    return rc;
  }
  size_t vs, ve;
  if (sy_json_find_top_key(src, in->len, "model", &vs, &ve) != 0) return SY_EINVAL;
  int rc = sy_buf_append(out, src, vs);
  if (!rc) rc = sy_buf_append(out, "\"", 1);
  if (!rc) rc = sy_buf_append_json_str(out, model->s, model->len);
  if (!rc) rc = sy_buf_append(out, "\"", 1);
  if (!rc) rc = sy_buf_append(out, src + ve, in->len - ve);
  return rc;
}

static void write_head(sy_proxy *px, int status, const char *hdrs, size_t len, long long clen) {
  if (px->arm >= 0) sy_conn_add_header(px->c, "x-switchyard-arm", px->d.route->arms[px->arm].name.s);
  px->head_sent = 1;
  sy_conn_write_head(px->c, status, hdrs, len, clen);
}

static void respond_gateway_error(sy_proxy *px, int status, const char *msg, const char *code) {
  sy_conn *c = px->c;
  c->px = NULL;
  sy__capture_finish(px, status, msg);
  sy__proxy_free(px);
  if (status >= 500) c->keep_alive = c->keep_alive && status != 500;
  sy_conn_respond_error(c, status, msg, NULL, code);
}

/* ---- retries and fallbacks ---------------------------------------------------------- */

static int next_arm(sy_proxy *px) {
  while (px->fb_pos < px->d.n_fallback) {
    int a = px->d.fallback[px->fb_pos++];
    if (a == px->arm) continue;
    px->arm = a;
    px->tries_on_arm = 0;
    return 1;
  }
  return 0;
}

static void on_retry_timer(uv_timer_t *t) { start_attempt(t->data); }

/* Carries out a RETRY (same arm after wait_ms) or FALLBACK (next arm now). */
static void schedule(sy_proxy *px, sy_retry_action action, int64_t wait_ms) {
  if (action == SY_RETRY_FALLBACK) {
    next_arm(px);
    wait_ms = 0;
  }
  if (wait_ms <= 0) {
    start_attempt(px);
    return;
  }
  if (!px->retry_timer) {
    px->retry_timer = malloc(sizeof *px->retry_timer);
    if (!px->retry_timer) {
      start_attempt(px);
      return;
    }
    uv_timer_init(&px->w->loop, px->retry_timer);
    px->retry_timer->data = px;
  }
  uv_timer_start(px->retry_timer, on_retry_timer, (uint64_t)wait_ms, 0);
}

/* What to do after a failed attempt that reached nobody: RETRY, FALLBACK or
 * FAIL, with the wait for a retry in *wait. */
static sy_retry_action plan_after_failure(sy_proxy *px, const sy_retry_outcome *o, int64_t ra_ms,
                                          int64_t *wait) {
  *wait = 0;
  if (!px->is_route) return SY_RETRY_FAIL;
  const sy_retry_policy *pol = &px->d.route->retry;
  sy_retry_action verdict = sy_retry_classify(o);
  if (verdict != SY_RETRY_RETRY && verdict != SY_RETRY_FALLBACK) return SY_RETRY_FAIL;
  int64_t rem = remaining_ms(px);
  if (verdict == SY_RETRY_RETRY)
    *wait = sy_retry_backoff_ms(px->tries_on_arm, pol, ra_ms, rem, sy__worker_rand(px->w));
  int has_fb = 0;
  for (size_t i = px->fb_pos; i < px->d.n_fallback; i++)
    if (px->d.fallback[i] != px->arm) has_fb = 1;
  return sy_retry_next(pol, verdict, px->tries_on_arm, *wait, rem, has_fb);
}

/* ---- the cascade ---------------------------------------------------------------------- */

static void strip_logprobs(cJSON *root) {
  cJSON *ch;
  cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(root, "choices")) {
    cJSON_DeleteItemFromObjectCaseSensitive(ch, "logprobs");
    cJSON_AddNullToObject(ch, "logprobs");
  }
}

static int sse_event(sy_buf *out, cJSON *obj) {
  char *s = cJSON_PrintUnformatted(obj);
  if (!s) return SY_ENOMEM;
  int rc = sy_buf_appends(out, "data: ");
  if (!rc) rc = sy_buf_appends(out, s);
  if (!rc) rc = sy_buf_appends(out, "\n\n");
  free(s);
  return rc;
}

/* A held-back chat.completion as the SSE stream the client asked for. */
static int replay_as_sse(const sy_proxy *px, cJSON *root, sy_buf *out) {
  int rc = 0;
  const cJSON *ch;
  cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(root, "choices")) {
    for (int phase = 0; phase < 2 && !rc; phase++) {
      cJSON *ev = cJSON_CreateObject();
      cJSON_AddItemToObject(ev, "id", cJSON_Duplicate(cJSON_GetObjectItem(root, "id"), 1));
      cJSON_AddStringToObject(ev, "object", "chat.completion.chunk");
      cJSON_AddItemToObject(ev, "created", cJSON_Duplicate(cJSON_GetObjectItem(root, "created"), 1));
      cJSON_AddItemToObject(ev, "model", cJSON_Duplicate(cJSON_GetObjectItem(root, "model"), 1));
      cJSON *choices = cJSON_AddArrayToObject(ev, "choices");
      cJSON *c = cJSON_CreateObject();
      cJSON_AddItemToObject(c, "index", cJSON_Duplicate(cJSON_GetObjectItem(ch, "index"), 1));
      cJSON *delta = cJSON_AddObjectToObject(c, "delta");
      if (phase == 0) {
        const cJSON *msg = cJSON_GetObjectItem(ch, "message");
        cJSON_AddStringToObject(delta, "role", "assistant");
        const cJSON *content = cJSON_GetObjectItem(msg, "content");
        if (content) cJSON_AddItemToObject(delta, "content", cJSON_Duplicate(content, 1));
        const cJSON *tcs = cJSON_GetObjectItem(msg, "tool_calls");
        if (cJSON_IsArray(tcs)) {
          cJSON *copy = cJSON_Duplicate(tcs, 1);
          int i = 0;
          cJSON *tc;
          cJSON_ArrayForEach(tc, copy) cJSON_AddNumberToObject(tc, "index", i++);
          cJSON_AddItemToObject(delta, "tool_calls", copy);
        }
        if (px->client_logprobs)
          cJSON_AddItemToObject(c, "logprobs", cJSON_Duplicate(cJSON_GetObjectItem(ch, "logprobs"), 1));
        cJSON_AddNullToObject(c, "finish_reason");
      } else {
        cJSON_AddItemToObject(c, "finish_reason",
                              cJSON_Duplicate(cJSON_GetObjectItem(ch, "finish_reason"), 1));
      }
      cJSON_AddItemToArray(choices, c);
      rc = sse_event(out, ev);
      cJSON_Delete(ev);
    }
  }
  const cJSON *usage = cJSON_GetObjectItem(root, "usage");
  if (!rc && px->include_usage && usage) {
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "id", cJSON_Duplicate(cJSON_GetObjectItem(root, "id"), 1));
    cJSON_AddStringToObject(ev, "object", "chat.completion.chunk");
    cJSON_AddItemToObject(ev, "model", cJSON_Duplicate(cJSON_GetObjectItem(root, "model"), 1));
    cJSON_AddArrayToObject(ev, "choices");
    cJSON_AddItemToObject(ev, "usage", cJSON_Duplicate(usage, 1));
    rc = sse_event(out, ev);
    cJSON_Delete(ev);
  }
  if (!rc) rc = sy_buf_appends(out, "data: [DONE]\n\n");
  return rc;
}

/* Serves the held-back first answer of an accepted cascade. */
static void serve_held(sy_proxy *px) {
  sy_conn *c = px->c;
  cJSON *root = cJSON_ParseWithLength(px->cbuf.data, px->cbuf.len);
  sy_buf out;
  sy_buf_init(&out, px->cbuf.max + 65536);
  int rc = root ? 0 : SY_EINVAL;
  if (!rc && !px->client_logprobs) strip_logprobs(root);
  if (!rc && px->client_stream) rc = replay_as_sse(px, root, &out);
  else if (!rc) {
    char *s = cJSON_PrintUnformatted(root);
    rc = s ? sy_buf_appends(&out, s) : SY_ENOMEM;
    free(s);
  }
  cJSON_Delete(root);
  if (rc) {
    sy_buf_free(&out);
    respond_gateway_error(px, 502, "The cascade's answer could not be served.", "cascade_error");
    return;
  }
  /* The capture keeps the first arm's own answer, logprobs included. */
  sy_buf_reset(&px->resp);
  sy_buf_append(&px->resp, px->cbuf.data, px->cbuf.len);
  px->is_sse = 0;
  const char *ctype = px->client_stream ? "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                        : "Content-Type: application/json\r\n";
  write_head(px, 200, ctype, strlen(ctype), px->client_stream ? -1 : (long long)out.len);
  sy_conn_write_body(c, out.data, out.len);
  sy_buf_free(&out);
  c->px = NULL;
  sy__capture_finish(px, 200, NULL);
  sy__proxy_free(px);
  sy_conn_end(c);
}

static void cascade_done(sy_proxy *px, sy_up_result res) {
  const sy_cascade *plan = &px->d.plan;
  double conf = NAN;
  if (res == SY_UP_OK && px->status == 200) {
    sy_conf_acc acc;
    sy_conf_acc_init(&acc);
    if (sy_confidence_from_chat_json(px->cbuf.data, px->cbuf.len, &acc, NULL, 0) == 0)
      conf = sy_conf_acc_value(&acc, plan->method);
  }
  px->confidence = conf;
  if (sy_cascade_accept(conf, plan->threshold)) {
    serve_held(px);
    return;
  }
  /* Escalate: the held answer is captured as a rejected attempt (with the
   * escalated answer it is the preference pair the next fine-tune wants). */
  sy_capture_job *j = sy__capture_side_job(px, 2, &px->d.route->arms[px->arm], px->ups);
  if (j) {
    j->status = px->status;
    j->confidence = isnan(conf) ? 0 : conf;
    j->accepted = 0;
    j->attempt = 0;
    j->resp_body = sy_buf_detach(&px->cbuf, &j->resp_len);
    j->ts_end_us = sy__wall_us();
    j->ts_start_us = j->ts_end_us - (uv_hrtime() - px->c->req.t_start_ns) / 1000;
    sy__worker_defer_capture(px->w, j);
  }
  sy_buf_reset(&px->cbuf);
  px->cascade = SY_CASCADE_ESCALATED;
  px->arm = plan->escalate;
  px->tries_on_arm = 0;
  start_attempt(px);
}

/* ---- upstream callbacks ---------------------------------------------------------------- */

static void up_on_head(void *ctx, int status, const char *hdrs, size_t len, long long clen) {
  sy_proxy *px = ctx;
  px->status = status;
  px->t_first_byte_ns = uv_hrtime();
  px->is_sse = has_sse_type(hdrs, len);
  if (px->cascade == SY_CASCADE_FIRST) return; /* held back until its confidence is known */
  if (px->is_route && status >= 400) {
    sy_retry_outcome o = {SY_OUTCOME_HTTP, status, 0};
    int64_t wait;
    sy_retry_action a = plan_after_failure(px, &o, retry_after_ms(hdrs, len), &wait);
    if (a == SY_RETRY_RETRY || a == SY_RETRY_FALLBACK) {
      /* Swallow this answer (its body is read and dropped so the connection
       * stays reusable) and try again when it ends. */
      px->discard = 1;
      px->planned = a;
      px->planned_wait_ms = wait;
      return;
    }
  }
  /* SSE always goes out chunked, so a failure mid-stream can still be told
   * with an error event and a clean end. */
  write_head(px, status, hdrs, len, px->is_sse ? -1 : clen);
}

static int up_on_body(void *ctx, const char *data, size_t len) {
  sy_proxy *px = ctx;
  if (px->discard) return 0;
  if (px->cascade == SY_CASCADE_FIRST)
    return sy_buf_append(&px->cbuf, data, len) == 0 ? 0 : SY_UP_ABORT;
  if (px->c->broken) return SY_UP_ABORT;
  if (sy_conn_pending(px->c) >= SY_WRITE_HIGH_WATER) {
    px->paused = 1;
    return SY_UP_PAUSE;
  }
  if (sy_conn_write_body(px->c, data, len) != 0) return SY_UP_ABORT;
  if (px->job && !px->job->resp_truncated && sy_buf_append(&px->resp, data, len) != 0)
    px->job->resp_truncated = 1; /* the capture keeps what fits */
  return 0;
}

static void end_with_event(sy_proxy *px, sy_up_result res, const char *detail) {
  sy_conn *c = px->c;
  char msg[256];
  snprintf(msg, sizeof msg, "The upstream stream from '%s' was interrupted (%s).", px->ups->name,
           res == SY_UP_ETIMEOUT ? "timeout" : (detail ? detail : "error"));
  sy_buf ev;
  sy_buf_init(&ev, 1024);
  sy_buf_appends(&ev, "data: ");
  sy_openai_error_json(&ev, msg, "api_error", NULL,
                       res == SY_UP_ETIMEOUT ? "upstream_timeout" : "upstream_stream_interrupted");
  sy_buf_appends(&ev, "\n\n");
  sy_conn_write_body(c, ev.data, ev.len);
  if (px->job && !px->job->resp_truncated) sy_buf_append(&px->resp, ev.data, ev.len);
  sy_buf_free(&ev);
  c->px = NULL;
  sy__capture_finish(px, px->status, msg);
  sy__proxy_free(px);
  c->keep_alive = 0;
  sy_conn_end(c);
}

static void up_on_done(void *ctx, sy_up_result res, const char *detail) {
  sy_proxy *px = ctx;
  sy_conn *c = px->c;
  px->up = NULL;
  if (px->is_route && res != SY_UP_EABORTED) {
    int failure = res == SY_UP_ECONNECT || res == SY_UP_ETIMEOUT || res == SY_UP_EPROTO ||
                  (res == SY_UP_OK && (px->status >= 500 || px->status == 429));
    sy_breaker_record(breaker_for(px, px->ups), failure, sy__mono_ms());
  }
  if (px->discard) {
    px->discard = 0;
    schedule(px, px->planned, px->planned_wait_ms);
    return;
  }
  if (px->cascade == SY_CASCADE_FIRST && !c->broken) {
    cascade_done(px, res);
    return;
  }
  if (res == SY_UP_OK) {
    c->px = NULL;
    sy__capture_finish(px, px->status, NULL);
    sy__proxy_free(px);
    sy_conn_end(c);
    return;
  }
  if (res == SY_UP_EABORTED || c->broken) {
    c->px = NULL;
    sy__capture_finish(px, px->status, "client connection failed while answering");
    sy__proxy_free(px);
    sy_conn_abort(c);
    return;
  }
  const char *name = px->ups->name;
  if (!px->head_sent) {
    sy_retry_outcome o = {res == SY_UP_ETIMEOUT ? SY_OUTCOME_TIMEOUT : SY_OUTCOME_CONNECT_ERROR, 0, 0};
    int64_t wait;
    sy_retry_action a = res == SY_UP_EINTERNAL ? SY_RETRY_FAIL : plan_after_failure(px, &o, -1, &wait);
    if (a == SY_RETRY_RETRY || a == SY_RETRY_FALLBACK) {
      schedule(px, a, wait);
      return;
    }
    char msg[256];
    int status = 502;
    const char *code = "upstream_error";
    switch (res) {
    case SY_UP_ECONNECT:
      snprintf(msg, sizeof msg, "Upstream '%s' is unreachable (%s).", name, detail ? detail : "");
      code = "upstream_unreachable";
      break;
    case SY_UP_ETIMEOUT:
      status = 504;
      snprintf(msg, sizeof msg, "Upstream '%s' did not answer in time.", name);
      code = "upstream_timeout";
      break;
    case SY_UP_EINTERNAL:
      status = 500;
      snprintf(msg, sizeof msg, "The gateway failed to call upstream '%s'.", name);
      code = "internal_error";
      break;
    default:
      snprintf(msg, sizeof msg, "Upstream '%s' sent an invalid response (%s).", name,
               detail ? detail : "");
    }
    sy_warn("request %s: upstream %s failed: %s", c->req.id, name, detail ? detail : "error");
    respond_gateway_error(px, status, msg, code);
    return;
  }
  sy_warn("request %s: upstream %s failed mid-response: %s", c->req.id, name,
          detail ? detail : "error");
  if (!px->is_sse) {
    /* The body is incomplete and the head is gone: closing without the
     * final chunk (or short of Content-Length) is how HTTP says so. */
    c->px = NULL;
    sy__capture_finish(px, px->status, detail ? detail : "upstream failed mid-response");
    sy__proxy_free(px);
    sy_conn_abort(c);
    return;
  }
  end_with_event(px, res, detail);
}

static const sy_upstream_handler up_handler = {up_on_head, up_on_body, up_on_done};

/* ---- attempts ------------------------------------------------------------------------------ */

static void start_attempt(sy_proxy *px) {
  sy_worker *w = px->w;
  for (;;) {
    px->ups = arm_upstream(px, px->arm);
    if (!px->is_route || sy_breaker_allow(breaker_for(px, px->ups), sy__mono_ms())) break;
    /* Circuit open: skip this arm without calling it. */
    if (!next_arm(px)) {
      char msg[256];
      snprintf(msg, sizeof msg, "Every upstream of route '%s' is failing; try again shortly.",
               px->d.route->name.s);
      respond_gateway_error(px, 503, msg, "upstream_circuit_open");
      return;
    }
  }
  int cascade_first = px->cascade == SY_CASCADE_FIRST;
  if (build_body(px, px->arm, cascade_first, &px->body) != 0) {
    respond_gateway_error(px, 500, "The gateway could not prepare the upstream request.",
                          "internal_error");
    return;
  }
  sy_buf hdrs;
  sy_buf_init(&hdrs, SY_MAX_UPSTREAM_HEADER_BYTES + 4096);
  size_t n_hdrs;
  if (sy__upstream_headers(&px->hdrs, px->n_hdrs, px->ups, &hdrs, &n_hdrs) != 0) {
    sy_buf_free(&hdrs);
    respond_gateway_error(px, 431, "Request header fields too large.", "headers_too_large");
    return;
  }
  const sy_buf *body = px->arm >= 0 ? &px->body : &px->c->req.body;
  sy_upstream_spec spec = {
      .up = px->ups,
      .method = http_method_str(px->c->req.method),
      .path = px->path,
      .path_len = px->path_len,
      .headers = hdrs.data,
      .n_headers = n_hdrs,
      .body = body->data,
      .body_len = body->len,
  };
  /* The route's per-try timeout bounds a non-streaming answer; a stream is
   * bounded by the upstream's own timeout (long generations are normal). */
  if (px->is_route && (!px->client_stream || cascade_first))
    spec.timeout_ms = sy_retry_try_timeout_ms(&px->d.route->retry, remaining_ms(px));
  px->status = 0;
  px->is_sse = 0;
  px->t_up_start_ns = uv_hrtime();
  px->t_first_byte_ns = 0;
  px->attempts++;
  px->tries_on_arm++;
  int rc = sy_upstream_start(w->pool, &spec, &up_handler, px, &px->up);
  sy_buf_free(&hdrs); /* the client copies the header lines */
  if (rc) respond_gateway_error(px, 500, "The gateway could not start the upstream request.",
                                "internal_error");
}

void sy__exchange_start(sy_proxy *px) { start_attempt(px); }

void sy__exchange_client_gone(sy_proxy *px) {
  if (px->up) sy_upstream_abort(px->up);
  px->up = NULL;
}

/* ---- shadow calls ---------------------------------------------------------------------------- */

static void shadow_free(sy_shadow *s) {
  sy_worker *w = s->w;
  if (s->prev) s->prev->next = s->next;
  else w->shadows = s->next;
  if (s->next) s->next->prev = s->prev;
  sy_shadow_cap_release(&w->gw->shadow_cap);
  sy_buf_free(&s->hdrs);
  sy_buf_free(&s->body);
  sy_buf_free(&s->resp);
  sy_capture_job_free(s->job);
  free(s);
}

static void sh_on_head(void *ctx, int status, const char *hdrs, size_t len, long long clen) {
  sy_shadow *s = ctx;
  s->status = status;
  s->is_sse = has_sse_type(hdrs, len);
  s->t_first_byte_ns = uv_hrtime();
}

static int sh_on_body(void *ctx, const char *data, size_t len) {
  sy_shadow *s = ctx;
  if (s->job && !s->job->resp_truncated && sy_buf_append(&s->resp, data, len) != 0)
    s->job->resp_truncated = 1;
  return 0;
}

static void sh_on_done(void *ctx, sy_up_result res, const char *detail) {
  sy_shadow *s = ctx;
  s->up = NULL;
  sy_capture_job *j = s->job;
  if (j) {
    s->job = NULL;
    uint64_t now = uv_hrtime();
    j->status = s->status;
    if (res != SY_UP_OK) j->error = strdup(detail ? detail : "shadow call failed");
    j->is_sse = s->is_sse;
    j->resp_body = sy_buf_detach(&s->resp, &j->resp_len);
    j->latency_total_us = (now - s->t_start_ns) / 1000;
    if (s->t_first_byte_ns) j->upstream_ttfb_us = (s->t_first_byte_ns - s->t_start_ns) / 1000;
    j->ts_end_us = sy__wall_us();
    j->ts_start_us = j->ts_end_us - j->latency_total_us;
    sy__worker_defer_capture(s->w, j);
  }
  shadow_free(s);
}

static const sy_upstream_handler sh_handler = {sh_on_head, sh_on_body, sh_on_done};

void sy__shadow_start(sy_proxy *px) {
  sy_worker *w = px->w;
  int arm = px->d.shadow_arm;
  if (!sy_shadow_cap_try_acquire(&w->gw->shadow_cap)) return; /* over the cap: skipped, counted */
  sy_shadow *s = calloc(1, sizeof *s);
  if (!s) {
    sy_shadow_cap_release(&w->gw->shadow_cap);
    return;
  }
  s->w = w;
  s->next = w->shadows;
  if (w->shadows) w->shadows->prev = s;
  w->shadows = s;
  const sy_upstream_conf *ups = arm_upstream(px, arm);
  sy_buf_init(&s->hdrs, SY_MAX_UPSTREAM_HEADER_BYTES + 4096);
  sy_buf_init(&s->body, px->body.max);
  sy_buf_init(&s->resp, w->cfg->capture.max_response_bytes);
  if (sy__upstream_headers(&px->hdrs, px->n_hdrs, ups, &s->hdrs, &s->n_hdrs) != 0 ||
      build_body(px, arm, 0, &s->body) != 0) {
    shadow_free(s);
    return;
  }
  s->job = sy__capture_side_job(px, 1, &px->d.route->arms[arm], ups);
  s->t_start_ns = uv_hrtime();
  sy_upstream_spec spec = {
      .up = ups,
      .method = http_method_str(px->c->req.method),
      .path = px->path,
      .path_len = px->path_len,
      .headers = s->hdrs.data,
      .n_headers = s->n_hdrs,
      .body = s->body.data,
      .body_len = s->body.len,
  };
  if (sy_upstream_start(w->pool, &spec, &sh_handler, s, &s->up) != 0) shadow_free(s);
}

void sy__shadows_abort_all(sy_worker *w) {
  while (w->shadows) {
    sy_shadow *s = w->shadows;
    if (s->up) sy_upstream_abort(s->up);
    s->up = NULL;
    shadow_free(s);
  }
}
