/* The request handler: what the gateway answers itself, and how it forwards
 * the rest.
 *
 * Forwarding streams: the upstream's head goes to the client as soon as it
 * is complete and every body piece as it arrives (SSE included), with
 * backpressure: when the client's unsent bytes pass SY_WRITE_HIGH_WATER the
 * upstream transfer is paused, and resumed below SY_WRITE_LOW_WATER. */
#include "gateway/proxy.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/capture.h"
#include "gateway/feedback.h"
#include "gateway/respond.h"
#include "gateway/upstream.h"
#include "gateway/worker.h"

#define SY_MAX_UPSTREAM_HEADER_BYTES (96u * 1024)

typedef struct sy_proxy {
  sy_conn *c;
  sy_worker *w;
  sy_upstream_req *up;
  const sy_upstream_conf *ups;
  sy_buf hdrs;      /* NUL-separated header lines for the upstream */
  int is_sse;
  int head_sent;
  int status;
  sy_capture_job *job; /* the capture record being filled, or NULL */
  sy_buf resp;      /* response bytes for the capture, capped */
  uint64_t t_up_start_ns, t_first_byte_ns;
} sy_proxy;

typedef enum { EP_OTHER = 0, EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS } sy_endpoint;

static int path_is(const char *path, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(path, lit, len) == 0;
}

static void proxy_free(sy_proxy *px) {
  sy_buf_free(&px->hdrs);
  sy_buf_free(&px->resp);
  sy_capture_job_free(px->job);
  free(px);
}

static uint64_t wall_now_us(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Completes the capture record with how the exchange ended and hands it to
 * the writer. Must run before the request's body buffer is reset. */
static void capture_finish(sy_proxy *px, int status, const char *error) {
  sy_capture_job *job = px->job;
  if (!job) return;
  px->job = NULL;
  sy_conn *c = px->c;
  uint64_t now = uv_hrtime();
  job->status = status;
  if (error) job->error = strdup(error);
  job->req_body = sy_buf_detach(&c->req.body, &job->req_len);
  job->resp_body = sy_buf_detach(&px->resp, &job->resp_len);
  job->is_sse = px->is_sse;
  job->latency_total_us = (now - c->req.t_start_ns) / 1000;
  job->ts_end_us = wall_now_us();
  job->ts_start_us = job->ts_end_us - job->latency_total_us;
  if (px->t_first_byte_ns) job->upstream_ttfb_us = (px->t_first_byte_ns - px->t_up_start_ns) / 1000;
  /* Time in the gateway: receiving and checking the request, and handing it
   * upstream; the upstream's own time and the transfer are not counted. */
  job->gateway_overhead_us = (px->t_up_start_ns - c->t_dispatch_ns) / 1000;
  memcpy(job->request_id, c->req.id, sizeof c->req.id);
  if (sy_capture_submit(px->w->gw->capture, job) != 0) sy_capture_job_free(job);
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
  for (size_t i = 0; i < cfg->n_client_keys; i++) {
    if (CRYPTO_memcmp(cfg->client_keys[i].sha256, h, 32) == 0) found = &cfg->client_keys[i];
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

/* Checks what the gateway itself relies on in an OpenAI JSON body. Answers
 * 400 and returns -1 when the body does not qualify. */
static int validate_json_body(sy_conn *c, sy_endpoint ep) {
  if (!content_type_is_json(c)) {
    sy_conn_respond_error(c, 400,
                          "Invalid Content-Type header: expected application/json.", NULL,
                          "invalid_content_type");
    return -1;
  }
  cJSON *root = cJSON_ParseWithLength(c->req.body.data ? c->req.body.data : "", c->req.body.len);
  if (!root) {
    sy_conn_respond_error(c, 400,
                          "We could not parse the JSON body of your request. The body must be "
                          "valid JSON.",
                          NULL, "invalid_json");
    return -1;
  }
  const char *param = NULL, *msg = NULL;
  if (!cJSON_IsObject(root)) {
    msg = "The request body must be a JSON object.";
  } else {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || !model->valuestring[0]) {
      param = "model";
      msg = "You must provide a model parameter (a non-empty string).";
    } else if (ep == EP_CHAT) {
      const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "messages");
      if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0) {
        param = "messages";
        msg = "You must provide a messages parameter (a non-empty array).";
      }
    } else if (ep == EP_COMPLETIONS) {
      if (!cJSON_GetObjectItemCaseSensitive(root, "prompt")) {
        param = "prompt";
        msg = "You must provide a prompt parameter.";
      }
    } else if (ep == EP_EMBEDDINGS) {
      if (!cJSON_GetObjectItemCaseSensitive(root, "input")) {
        param = "input";
        msg = "You must provide an input parameter.";
      }
    }
  }
  cJSON_Delete(root);
  if (msg) {
    sy_conn_respond_error(c, 400, msg, param, param ? "missing_required_parameter" : "invalid_body");
    return -1;
  }
  return 0;
}

/* ---- upstream callbacks ------------------------------------------------------------ */

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

static void up_on_head(void *ctx, int status, const char *hdrs, size_t len, long long clen) {
  sy_proxy *px = ctx;
  px->is_sse = has_sse_type(hdrs, len);
  /* SSE always goes out chunked, so a failure mid-stream can still be told
   * with an error event and a clean end. */
  if (px->is_sse) clen = -1;
  px->head_sent = 1;
  px->status = status;
  px->t_first_byte_ns = uv_hrtime();
  sy_conn_write_head(px->c, status, hdrs, len, clen);
}

static int up_on_body(void *ctx, const char *data, size_t len) {
  sy_proxy *px = ctx;
  if (px->c->broken) return SY_UP_ABORT;
  if (sy_conn_pending(px->c) >= SY_WRITE_HIGH_WATER) return SY_UP_PAUSE;
  if (sy_conn_write_body(px->c, data, len) != 0) return SY_UP_ABORT;
  if (px->job && !px->job->resp_truncated && sy_buf_append(&px->resp, data, len) != 0)
    px->job->resp_truncated = 1; /* the capture keeps what fits */
  return 0;
}

static void up_on_done(void *ctx, sy_up_result res, const char *detail) {
  sy_proxy *px = ctx;
  sy_conn *c = px->c;
  px->up = NULL;
  if (res == SY_UP_OK) {
    capture_finish(px, px->status, NULL);
    proxy_free(px);
    sy_conn_end(c);
    return;
  }
  if (res == SY_UP_EABORTED || c->broken) {
    capture_finish(px, px->status, "client connection failed while answering");
    proxy_free(px);
    sy_conn_abort(c);
    return;
  }
  char msg[256];
  const char *name = px->ups->name;
  if (!px->head_sent) {
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
    capture_finish(px, status, msg);
    proxy_free(px);
    c->keep_alive = c->keep_alive && status != 500;
    sy_conn_respond_error(c, status, msg, NULL, code);
    return;
  }
  sy_warn("request %s: upstream %s failed mid-response: %s", c->req.id, name,
          detail ? detail : "error");
  if (!px->is_sse) {
    /* The body is incomplete and the head is gone: closing without the
     * final chunk (or short of Content-Length) is how HTTP says so. */
    capture_finish(px, px->status, detail ? detail : "upstream failed mid-response");
    proxy_free(px);
    sy_conn_abort(c);
    return;
  }
  snprintf(msg, sizeof msg, "The upstream stream from '%s' was interrupted (%s).", name,
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
  capture_finish(px, px->status, msg);
  proxy_free(px);
  c->keep_alive = 0;
  sy_conn_end(c);
}

static const sy_upstream_handler up_handler = {up_on_head, up_on_body, up_on_done};

void sy_proxy_client_gone(sy_proxy *px) {
  if (px->up) sy_upstream_abort(px->up);
  px->up = NULL;
  capture_finish(px, px->status, "client closed the connection before the answer ended");
  proxy_free(px);
}

void sy_proxy_writable(sy_proxy *px) {
  if (px->up) sy_upstream_resume(px->up);
}

/* ---- forwarding -------------------------------------------------------------------- */

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

/* Whether this exchange is captured: capture on, the key allows it, and the
 * request did not opt out with "x-switchyard-capture: off". */
static int wants_capture(const sy_conn *c, const sy_client_key *key) {
  if (!c->w->gw->capture || (key && !key->capture)) return 0;
  size_t len;
  const char *v = sy_conn_header(c, "x-switchyard-capture", &len);
  if (!v) return 1;
  static const char *const off[] = {"off", "false", "0", "no", "none"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    if (len == strlen(off[i]) && strncasecmp(v, off[i], len) == 0) return 0;
  return 1;
}

static void forward(sy_conn *c, const char *path, size_t path_len, const sy_client_key *key,
                    const char *capture_endpoint) {
  sy_worker *w = c->w;
  const sy_config *cfg = w->cfg;
  sy_proxy *px = calloc(1, sizeof *px);
  if (!px) {
    sy_conn_respond_error(c, 500, "Out of memory.", NULL, "internal_error");
    return;
  }
  px->c = c;
  px->w = w;
  px->ups = &cfg->upstreams[cfg->default_upstream];
  sy_buf_init(&px->hdrs, SY_MAX_UPSTREAM_HEADER_BYTES);
  sy_buf_init(&px->resp, cfg->capture.max_response_bytes);
  if (capture_endpoint && wants_capture(c, key)) {
    px->job = calloc(1, sizeof *px->job);
    if (px->job) {
      px->job->kind = SY_JOB_CAPTURE;
      px->job->id = sy_capture_next_id(w->gw->capture);
      px->job->client_key = key ? key->name : NULL;
      px->job->upstream = px->ups->name;
      px->job->endpoint = capture_endpoint;
      size_t ul;
      const char *u = sy_conn_header(c, "x-switchyard-user", &ul);
      if (u) px->job->user = strndup(u, ul);
      char idbuf[24];
      snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)px->job->id);
      sy_conn_add_header(c, "x-switchyard-capture-id", idbuf);
    }
  }

  size_t n = 0;
  int rc = 0, has_ctype = 0;
  for (unsigned i = 0; i < c->req.n_headers && !rc; i++) {
    const sy_header_ref *h = &c->req.headers[i];
    const char *name = c->req.raw.data + h->name_off;
    if (skip_request_header(name, h->name_len)) continue;
    if (h->name_len == 12 && strncasecmp(name, "content-type", 12) == 0) has_ctype = 1;
    rc = add_line(&px->hdrs, name, h->name_len, c->req.raw.data + h->value_off, h->value_len);
    n++;
  }
  if (!rc && px->ups->api_key) {
    rc = sy_buf_appends(&px->hdrs, "Authorization: Bearer ");
    if (!rc) rc = sy_buf_appends(&px->hdrs, px->ups->api_key);
    if (!rc) rc = sy_buf_append(&px->hdrs, "", 1);
    n++;
  }
  if (!rc && !has_ctype) {
    /* Without this curl labels a POST body as a form. */
    rc = sy_buf_append(&px->hdrs, "Content-Type:", 14);
    n++;
  }
  if (rc) {
    proxy_free(px);
    sy_conn_respond_error(c, 431, "Request header fields too large.", NULL, "headers_too_large");
    return;
  }

  sy_upstream_spec spec = {
      .up = px->ups,
      .method = http_method_str(c->req.method),
      .path = path,
      .path_len = path_len,
      .headers = px->hdrs.data,
      .n_headers = n,
      .body = c->req.body.data,
      .body_len = c->req.body.len,
  };
  c->px = px;
  px->t_up_start_ns = uv_hrtime();
  rc = sy_upstream_start(w->pool, &spec, &up_handler, px, &px->up);
  if (rc) {
    c->px = NULL;
    proxy_free(px);
    sy_conn_respond_error(c, 500, "The gateway could not start the upstream request.", NULL,
                          "internal_error");
  }
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void respond_json(sy_conn *c, int status, const char *json) {
  sy_conn_respond(c, status, "application/json", NULL, json, strlen(json));
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
  if (ep != EP_OTHER) {
    if (m != HTTP_POST) {
      sy_conn_respond_error(c, 405, "Method not allowed: use POST.", NULL, "method_not_allowed");
      return;
    }
    if (validate_json_body(c, ep) != 0) return;
  }
  /* "/v1/chat/completions?x" → base_url + "/chat/completions?x" */
  forward(c, url + 3, url_len - 3, key,
          ep == EP_CHAT ? "/v1/chat/completions" : ep == EP_COMPLETIONS ? "/v1/completions" : NULL);
}
