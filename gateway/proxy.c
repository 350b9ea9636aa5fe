/* The request handler, incoming side: what the gateway answers itself
 * (health, metrics, feedback), client authentication, request validation,
 * the routing decision, and the capture record. exchange.c does the
 * upstream side. */
#include "gateway/proxy.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/jsonwalk.h"
#include "common/log.h"
#include "gateway/feedback.h"
#include "gateway/jsonscan.h"
#include "gateway/keyset.h" /* admin: runtime client keys */
#include "gateway/proxy_internal.h"
#include "gateway/respond.h"

typedef enum { EP_OTHER = 0, EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS } sy_endpoint;

static int path_is(const char *path, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(path, lit, len) == 0;
}

uint64_t sy__mono_ms(void) { return uv_hrtime() / 1000000u; }

uint64_t sy__wall_us(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void timer_closed(uv_handle_t *h) { free(h); }

void sy__proxy_free(sy_proxy *px) {
  if (px->retry_timer) {
    uv_timer_stop(px->retry_timer);
    uv_close((uv_handle_t *)px->retry_timer, timer_closed);
  }
  sy_buf_free(&px->hdrs);
  sy_buf_free(&px->body);
  sy_buf_free(&px->resp);
  sy_buf_free(&px->cbuf);
  sy_capture_job_free(px->job);
  if (px->table) sy_route_table_unref(px->table);
  free(px);
}

/* ---- capture ------------------------------------------------------------------ */

static char *rstr_dup(const sy_rstr *r) { return strndup(r->s, r->len); }

static void job_route_fields(sy_capture_job *j, const sy_proxy *px, const sy_route_arm *arm) {
  if (!px->d.route || !arm) return;
  j->route = rstr_dup(&px->d.route->name);
  j->arm = rstr_dup(&arm->name);
  j->model = rstr_dup(&arm->model);
  j->sticky = px->d.pick == SY_PICK_STICKY;
}

void sy__capture_finish(sy_proxy *px, int status, const char *error) {
  sy_capture_job *job = px->job;
  if (!job) return;
  px->job = NULL;
  sy_conn *c = px->c;
  uint64_t now = uv_hrtime();
  job->status = status;
  if (error) job->error = strdup(error);
  job->upstream = px->ups ? px->ups->name : NULL;
  job_route_fields(job, px, px->arm >= 0 ? &px->d.route->arms[px->arm] : NULL);
  job->attempt = px->attempts ? px->attempts - 1 : 0;
  if (px->cascade == SY_CASCADE_FIRST) {
    job->confidence = px->confidence;
    job->accepted = 1;
  }
  job->req_body = sy_buf_detach(&c->req.body, &job->req_len);
  job->resp_body = sy_buf_detach(&px->resp, &job->resp_len);
  job->is_sse = px->is_sse;
  job->latency_total_us = (now - c->req.t_start_ns) / 1000;
  job->ts_end_us = sy__wall_us();
  job->ts_start_us = job->ts_end_us - job->latency_total_us;
  if (px->t_first_byte_ns && px->t_first_byte_ns > px->t_up_start_ns)
    job->upstream_ttfb_us = (px->t_first_byte_ns - px->t_up_start_ns) / 1000;
  /* Time in the gateway: receiving and checking the request and handing it
   * upstream; the upstream's own time and the transfer are not counted. */
  if (px->t_up_start_ns > c->t_dispatch_ns)
    job->gateway_overhead_us = (px->t_up_start_ns - c->t_dispatch_ns) / 1000;
  memcpy(job->request_id, c->req.id, sizeof c->req.id);
  sy__worker_defer_capture(px->w, job);
}

sy_capture_job *sy__capture_side_job(sy_proxy *px, int kind, const sy_route_arm *arm,
                                     const sy_upstream_conf *ups) {
  if (!px->job && kind != 1) return NULL; /* the primary is not captured: neither is this */
  if (!px->w->gw->capture) return NULL;
  sy_capture_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->kind = SY_JOB_CAPTURE;
  j->rec_kind = kind;
  j->id = sy_capture_next_id(px->w->gw->capture);
  j->parent_id = px->job ? px->job->id : 0;
  j->client_key = px->job ? px->job->client_key : NULL;
  j->endpoint = px->job ? px->job->endpoint : "/v1/chat/completions";
  j->upstream = ups ? ups->name : NULL;
  if (px->job && px->job->user) j->user = strdup(px->job->user);
  job_route_fields(j, px, arm);
  memcpy(j->request_id, px->c->req.id, sizeof px->c->req.id);
  j->req_body = malloc(px->c->req.body.len + 1);
  if (!j->req_body) {
    sy_capture_job_free(j);
    return NULL;
  }
  memcpy(j->req_body, px->c->req.body.data ? px->c->req.body.data : "", px->c->req.body.len);
  j->req_len = px->c->req.body.len;
  return j;
}

/* ---- authentication ------------------------------------------------------------- */

/* Returns the matching client key, or NULL. Every configured hash is compared
 * (no early exit), each in constant time. */
static const sy_client_key *authenticate(const sy_conn *c, int *missing) {
  const sy_config *cfg = c->w->cfg;
  size_t len;
  const char *v = sy_conn_header(c, "authorization", &len);
  *missing = 1;
  if (!v) return NULL;
  if (len < 7 || strncasecmp(v, "bearer ", 7) != 0) return NULL;
  v += 7;
  len -= 7;
  while (len && *v == ' ') v++, len--;
  while (len && v[len - 1] == ' ') len--;
  if (!len) return NULL;
  *missing = 0;
  unsigned char h[32];
  sy_hash_key(v, len, h);
  const sy_client_key *found = NULL;
  if (c->w->gw->keys) {
    /* admin: config keys + keys created at run time, as last published */
    found = sy_keyset_find(c->w->gw->keys, h);
  } else {
    for (size_t i = 0; i < cfg->n_client_keys; i++) {
      if (CRYPTO_memcmp(cfg->client_keys[i].sha256, h, 32) == 0) found = &cfg->client_keys[i];
    }
  }
  OPENSSL_cleanse(h, sizeof h);
  return found;
}

/* ---- validation ---------------------------------------------------------------- */

static int content_type_is_json(const sy_conn *c) {
  size_t len;
  const char *v = sy_conn_header(c, "content-type", &len);
  if (!v) return 0;
  while (len && *v == ' ') v++, len--;
  return len >= 16 && strncasecmp(v, "application/json", 16) == 0 &&
         (len == 16 || v[16] == ';' || v[16] == ' ');
}

/* What the gateway reads from an OpenAI JSON body: value spans of its
 * top-level members, found without building a tree (the body is validated
 * by common/jsonwalk.h first, so the spans are well-formed JSON). */
enum { F_MODEL, F_MESSAGES, F_PROMPT, F_INPUT, F_USER, F_TOOLS, F_STREAM, F_LOGPROBS,
       F_STREAM_OPTIONS, F_COUNT };
static const char *const field_names[F_COUNT] = {"model", "messages", "prompt", "input", "user",
                                                  "tools", "stream", "logprobs", "stream_options"};
#define SY_MAX_REQUEST_JSON_DEPTH 256

typedef struct {
  const char *body;
  size_t body_len;
  sy_json_span f[F_COUNT];
  /* decoded "model" and "user" strings: point into the body unless escaped */
  const char *model, *user;
  size_t model_len, user_len;
  sy_buf dec; /* backing for escaped ones */
} req_fields;

static int span_is(const req_fields *r, int k, char first) {
  return r->f[k].found && r->body[r->f[k].start] == first;
}

static int span_true(const req_fields *r, int k) {
  return r->f[k].found && r->f[k].end - r->f[k].start == 4 && !memcmp(r->body + r->f[k].start, "true", 4);
}

/* A string member's text: in place, or decoded into r->dec. -1 when absent
 * or not a string. Decoded text is never longer than the body, so reserving
 * the body's size once keeps r->dec from moving under an earlier string. */
static int span_text(req_fields *r, int k, const char **s, size_t *n) {
  if (!span_is(r, k, '"')) return -1;
  const char *raw = r->body + r->f[k].start + 1;
  size_t len = r->f[k].end - r->f[k].start - 2;
  if (!memchr(raw, '\\', len)) {
    *s = raw;
    *n = len;
    return 0;
  }
  if (!r->dec.data && sy_buf_reserve(&r->dec, r->body_len)) return -1;
  size_t at = r->dec.len;
  if (sy_json_span_text(r->body, &r->f[k], &r->dec)) return -1;
  *s = r->dec.data + at;
  *n = r->dec.len - at;
  return 0;
}

/* Parses and checks what the gateway relies on in an OpenAI JSON body.
 * Answers 400 and returns -1 when the body does not qualify. */
static int parse_json_body(sy_conn *c, sy_endpoint ep, req_fields *r) {
  if (!content_type_is_json(c)) {
    sy_conn_respond_error(c, 400, "Invalid Content-Type header: expected application/json.", NULL,
                          "invalid_content_type");
    return -1;
  }
  const char *body = c->req.body.data ? c->req.body.data : "";
  size_t len = c->req.body.len;
  int wrc = sy_json_walk(body, len, SY_MAX_REQUEST_JSON_DEPTH, NULL, NULL, NULL);
  if (wrc) {
    sy_conn_respond_error(c, 400,
                          wrc == SY_ETOOBIG ? "The JSON body of your request is nested too deeply."
                                            : "We could not parse the JSON body of your request. "
                                              "The body must be valid JSON.",
                          NULL, "invalid_json");
    return -1;
  }
  r->body = body;
  r->body_len = len;
  sy_buf_init(&r->dec, len + 16);
  sy_json_find_top_keys(body, len, field_names, F_COUNT, r->f);
  const char *param = NULL, *msg = NULL;
  size_t p0 = 0;
  while (p0 < len && strchr(" \t\r\n", body[p0])) p0++;
  if (p0 >= len || body[p0] != '{') {
    msg = "The request body must be a JSON object.";
  } else if (span_text(r, F_MODEL, &r->model, &r->model_len) < 0 || r->model_len == 0 ||
             memchr(r->model, '\0', r->model_len)) { /* "\u0000": no route or upstream has one */
    param = "model";
    msg = "You must provide a model parameter (a non-empty string).";
  } else if (ep == EP_CHAT) {
    const sy_json_span *m = &r->f[F_MESSAGES];
    size_t k = m->start + 1;
    while (k < m->end && strchr(" \t\r\n", body[k])) k++;
    if (!span_is(r, F_MESSAGES, '[') || body[k] == ']') {
      param = "messages";
      msg = "You must provide a messages parameter (a non-empty array).";
    }
  } else if (ep == EP_COMPLETIONS) {
    if (!r->f[F_PROMPT].found) {
      param = "prompt";
      msg = "You must provide a prompt parameter.";
    }
  } else if (ep == EP_EMBEDDINGS) {
    if (!r->f[F_INPUT].found) {
      param = "input";
      msg = "You must provide an input parameter.";
    }
  }
  if (!msg && span_text(r, F_USER, &r->user, &r->user_len) < 0) r->user = NULL;
  if (msg) {
    sy_buf_free(&r->dec);
    sy_conn_respond_error(c, 400, msg, param, param ? "missing_required_parameter" : "invalid_body");
    return -1;
  }
  return 0;
}

/* ---- headers for the upstream ------------------------------------------------------ */

static int skip_request_header(const char *name, size_t n) {
  static const char *const drop[] = {
      "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
      "trailer", "upgrade", "content-length", "expect", "authorization", "proxy-authorization",
      "accept-encoding", "cookie"};
  for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
    if (strlen(drop[i]) == n && strncasecmp(drop[i], name, n) == 0) return 1;
  return n >= 13 && strncasecmp(name, "x-switchyard-", 13) == 0;
}

static int add_line(sy_buf *b, const char *name, size_t nl, const char *val, size_t vl) {
  int rc = sy_buf_append(b, name, nl);
  if (!rc) rc = sy_buf_append(b, ": ", 2);
  if (!rc) rc = sy_buf_append(b, val, vl);
  if (!rc) rc = sy_buf_append(b, "", 1); /* the NUL separator */
  return rc;
}

/* The client's headers that go upstream, with a Content-Type suppression
 * line when the client sent none (curl would otherwise label a POST body as
 * a form). */
static int client_headers(const sy_conn *c, sy_buf *out, size_t *n_out) {
  size_t n = 0;
  int rc = 0, has_ctype = 0;
  for (unsigned i = 0; i < c->req.n_headers && !rc; i++) {
    const sy_header_ref *h = &c->req.headers[i];
    const char *name = c->req.raw.data + h->name_off;
    if (skip_request_header(name, h->name_len)) continue;
    if (h->name_len == 12 && strncasecmp(name, "content-type", 12) == 0) has_ctype = 1;
    rc = add_line(out, name, h->name_len, c->req.raw.data + h->value_off, h->value_len);
    n++;
  }
  if (!rc && !has_ctype) {
    rc = sy_buf_append(out, "Content-Type:", 14);
    n++;
  }
  *n_out = n;
  return rc;
}

int sy__upstream_headers(const sy_buf *base, size_t n_base, const sy_upstream_conf *ups,
                         sy_buf *out, size_t *n_out) {
  sy_buf_reset(out);
  int rc = sy_buf_append(out, base->data ? base->data : "", base->len);
  size_t n = n_base;
  if (!rc && ups->api_key) {
    rc = sy_buf_appends(out, "Authorization: Bearer ");
    if (!rc) rc = sy_buf_appends(out, ups->api_key);
    if (!rc) rc = sy_buf_append(out, "", 1);
    n++;
  }
  *n_out = n;
  return rc;
}

/* ---- the client side of an exchange ------------------------------------------------- */

void sy_proxy_client_gone(sy_proxy *px) {
  sy__exchange_client_gone(px);
  sy__capture_finish(px, px->status, "client closed the connection before the answer ended");
  sy__proxy_free(px);
}

void sy_proxy_writable(sy_proxy *px) {
  if (px->up && px->paused) {
    px->paused = 0;
    sy_upstream_resume(px->up);
  }
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void respond_json(sy_conn *c, int status, const char *json) {
  sy_conn_respond(c, status, "application/json", NULL, json, strlen(json));
}

/* Whether this exchange is captured: capture on, the key and the route allow
 * it, and the request did not opt out with "x-switchyard-capture: off". */
static int wants_capture(const sy_conn *c, const sy_client_key *key, const sy_route *route) {
  if (!c->w->gw->capture || (key && !key->capture) || (route && !route->capture)) return 0;
  size_t len;
  const char *v = sy_conn_header(c, "x-switchyard-capture", &len);
  if (!v) return 1;
  static const char *const off[] = {"off", "false", "0", "no", "none"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    if (len == strlen(off[i]) && strncasecmp(v, off[i], len) == 0) return 0;
  return 1;
}

static void decide(sy_proxy *px, const req_fields *r, const sy_client_key *key) {
  sy_conn *c = px->c;
  sy_worker *w = px->w;
  const sy_route_table *t = sy_route_view_get(&w->rview, &w->gw->routes);
  px->arm = -1;
  if (!t) return;
  sy_route_request rq = {0};
  rq.model = r->model;
  rq.model_len = r->model_len;
  rq.header_user = sy_conn_header(c, "x-switchyard-user", &rq.header_user_len);
  rq.user = r->user;
  rq.user_len = r->user ? r->user_len : 0;
  if (key) {
    rq.client_key = key->name;
    rq.client_key_len = strlen(key->name);
  }
  rq.tenant = sy_conn_header(c, "x-switchyard-tenant", &rq.tenant_len);
  rq.prompt_bytes = c->req.body.len;
  rq.has_tools = span_is(r, F_TOOLS, '[');
  if (sy_router_decide(t, &rq, sy__worker_rand(w), &px->d) != 0 || !px->d.route) return;
  px->table = sy_route_table_ref((sy_route_table *)t);
  px->is_route = 1;
  px->arm = px->d.arm_index;
  if (px->d.cascade) px->cascade = SY_CASCADE_FIRST;
}

void sy_proxy_handle(sy_conn *c) {
  size_t url_len;
  const char *url = sy_conn_url(c, &url_len);
  const char *q = memchr(url, '?', url_len);
  size_t path_len = q ? (size_t)(q - url) : url_len;
  enum http_method m = c->req.method;

  if (path_is(url, path_len, "/metrics") && m == HTTP_GET) {
    sy_metrics_respond(c);
    return;
  }
  if (path_is(url, path_len, "/healthz") || path_is(url, path_len, "/readyz")) {
    if (m != HTTP_GET && m != HTTP_HEAD) {
      sy_conn_respond_error(c, 405, "Method not allowed.", NULL, "method_not_allowed");
      return;
    }
    if (path_is(url, path_len, "/readyz") && atomic_load(&c->w->gw->draining))
      respond_json(c, 503, "{\"status\":\"draining\"}");
    else
      respond_json(c, 200, "{\"status\":\"ok\"}");
    return;
  }
  if (!(path_len >= 4 && memcmp(url, "/v1/", 4) == 0)) {
    char msg[300];
    snprintf(msg, sizeof msg, "Unknown request URL: %s %.*s.", http_method_str(m),
             (int)(path_len > 200 ? 200 : path_len), url);
    sy_conn_respond_error(c, 404, msg, NULL, "unknown_url");
    return;
  }

  const sy_client_key *key = NULL;
  if (c->w->cfg->auth) {
    int missing;
    if (!(key = authenticate(c, &missing))) {
      sy_conn_respond_error(c, 401,
                            missing ? "You didn't provide an API key. Send it in the "
                                      "Authorization header as 'Bearer YOUR_KEY'."
                                    : "Incorrect API key provided.",
                            NULL, missing ? NULL : "invalid_api_key");
      return;
    }
  }

  if (path_is(url, path_len, "/v1/feedback")) {
    if (m != HTTP_POST) {
      sy_conn_respond_error(c, 405, "Method not allowed: use POST.", NULL, "method_not_allowed");
      return;
    }
    sy_feedback_handle(c);
    return;
  }

  sy_endpoint ep = EP_OTHER;
  if (path_is(url, path_len, "/v1/chat/completions")) ep = EP_CHAT;
  else if (path_is(url, path_len, "/v1/completions")) ep = EP_COMPLETIONS;
  else if (path_is(url, path_len, "/v1/embeddings")) ep = EP_EMBEDDINGS;
  req_fields rf;
  memset(&rf, 0, sizeof rf);
  sy_buf_init(&rf.dec, 0);
  if (ep != EP_OTHER) {
    if (m != HTTP_POST) {
      sy_conn_respond_error(c, 405, "Method not allowed: use POST.", NULL, "method_not_allowed");
      return;
    }
    if (parse_json_body(c, ep, &rf)) return;
  }

  sy_worker *w = c->w;
  const sy_config *cfg = w->cfg;
  sy_proxy *px = calloc(1, sizeof *px);
  if (!px) {
    sy_buf_free(&rf.dec);
    sy_conn_respond_error(c, 500, "Out of memory.", NULL, "internal_error");
    return;
  }
  px->c = c;
  px->w = w;
  px->arm = -1;
  /* "/v1/chat/completions?x" → base_url + "/chat/completions?x" */
  px->path = url + 3;
  px->path_len = url_len - 3;
  sy_buf_init(&px->hdrs, SY_MAX_UPSTREAM_HEADER_BYTES);
  sy_buf_init(&px->body, cfg->limits.max_body_bytes + 4096);
  sy_buf_init(&px->resp, cfg->capture.max_response_bytes);
  sy_buf_init(&px->cbuf, cfg->capture.max_response_bytes + (1u << 20));
  if (client_headers(c, &px->hdrs, &px->n_hdrs) != 0) {
    sy_buf_free(&rf.dec);
    sy__proxy_free(px);
    sy_conn_respond_error(c, 431, "Request header fields too large.", NULL, "headers_too_large");
    return;
  }
  if (ep == EP_CHAT || ep == EP_COMPLETIONS) {
    decide(px, &rf, key);
    px->client_stream = span_true(&rf, F_STREAM);
    px->client_logprobs = span_true(&rf, F_LOGPROBS);
    if (span_is(&rf, F_STREAM_OPTIONS, '{')) {
      static const char *const iu[] = {"include_usage"};
      const sy_json_span *so = &rf.f[F_STREAM_OPTIONS];
      sy_json_span v;
      sy_json_find_top_keys(rf.body + so->start, so->end - so->start, iu, 1, &v);
      px->include_usage = v.found && v.end - v.start == 4 && !memcmp(rf.body + so->start + v.start, "true", 4);
    }
    if (ep != EP_CHAT) px->cascade = SY_CASCADE_NONE; /* logprobs differ for completions */
    if (wants_capture(c, key, px->d.route)) {
      sy_capture_job *j = calloc(1, sizeof *j);
      if (j) {
        j->kind = SY_JOB_CAPTURE;
        j->id = sy_capture_next_id(w->gw->capture);
        j->client_key = key ? key->name : NULL;
        j->endpoint = ep == EP_CHAT ? "/v1/chat/completions" : "/v1/completions";
        size_t ul;
        const char *u = sy_conn_header(c, "x-switchyard-user", &ul);
        if (u) j->user = strndup(u, ul);
        char idbuf[24];
        snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)j->id);
        sy_conn_add_header(c, "x-switchyard-capture-id", idbuf);
        px->job = j;
      }
    }
  }
  sy_buf_free(&rf.dec);
  if (px->is_route) {
    sy_conn_add_header(c, "x-switchyard-route", px->d.route->name.s);
    const sy_retry_policy *rp = &px->d.route->retry;
    if (rp->deadline_ms) px->deadline_ms = sy__mono_ms() + rp->deadline_ms;
  }
  c->px = px;
  int shadow = px->is_route && px->d.shadow_arm >= 0;
  sy__exchange_start(px);
  /* px is gone if the exchange already ended (c->px was cleared). */
  if (shadow && c->px == px) sy__shadow_start(px);
}
