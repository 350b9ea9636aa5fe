#include "gateway/feedback.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "gateway/capture.h"
#include "gateway/proxy.h"
#include "gateway/worker.h"

/* Reads an optional string field with a length cap. Returns 0 (absent or
 * copied into *out) or -1 with *why set. */
static int opt_string(const cJSON *root, const char *key, size_t max, char **out,
                      const char **why) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsString(v)) {
    *why = "must be a string";
    return -1;
  }
  if (strlen(v->valuestring) > max) {
    *why = "is too long";
    return -1;
  }
  *out = strdup(v->valuestring);
  return *out ? 0 : -1;
}

static int parse_capture_id(const cJSON *v, uint64_t *id) {
  if (cJSON_IsString(v)) {
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n) return -1;
    *id = strtoull(s, NULL, 10);
    return *id ? 0 : -1;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!(d >= 1 && d <= 9007199254740992.0) || d != floor(d)) return -1;
    *id = (uint64_t)d;
    return 0;
  }
  return -1;
}

static void bad(sy_conn *c, const char *param, const char *msg) {
  sy_conn_respond_error(c, 400, msg, param, param ? "invalid_parameter" : "invalid_body");
}

void sy_feedback_handle(sy_conn *c) {
  sy_worker *w = c->w;
  if (!w->gw->capture) {
    sy_conn_respond_error(c, 503, "Capture is disabled on this gateway, so feedback cannot be stored.",
                          NULL, "capture_disabled");
    return;
  }
  size_t len;
  const char *ct = sy_conn_header(c, "content-type", &len);
  if (!ct || len < 16 || strncasecmp(ct, "application/json", 16) != 0) {
    sy_conn_respond_error(c, 400, "Invalid Content-Type header: expected application/json.", NULL,
                          "invalid_content_type");
    return;
  }
  cJSON *root = cJSON_ParseWithLength(c->req.body.data ? c->req.body.data : "", c->req.body.len);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    bad(c, NULL, "The feedback body must be a JSON object.");
    return;
  }
  sy_capture_job *j = calloc(1, sizeof *j);
  if (!j) {
    cJSON_Delete(root);
    sy_conn_respond_error(c, 500, "Out of memory.", NULL, "internal_error");
    return;
  }
  j->kind = SY_JOB_FEEDBACK;
  const char *param = NULL, *why = NULL;
  char msg[256];

  if (parse_capture_id(cJSON_GetObjectItemCaseSensitive(root, "capture_id"), &j->capture_id)) {
    param = "capture_id";
    why = "must be the x-switchyard-capture-id of a response (a decimal string or integer)";
    goto invalid;
  }
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "rating");
  if (r && !cJSON_IsNull(r)) {
    if (cJSON_IsString(r)) {
      const char *s = r->valuestring;
      if (!strcmp(s, "up") || !strcmp(s, "thumbs_up") || !strcmp(s, "positive")) j->rating = 1;
      else if (!strcmp(s, "down") || !strcmp(s, "thumbs_down") || !strcmp(s, "negative")) j->rating = 2;
      else {
        param = "rating";
        why = "must be \"up\", \"down\" or a number";
        goto invalid;
      }
    } else if (cJSON_IsNumber(r) && isfinite(r->valuedouble) && fabs(r->valuedouble) <= 1e6) {
      j->rating = 3;
      j->score = r->valuedouble;
    } else {
      param = "rating";
      why = "must be \"up\", \"down\" or a number between -1e6 and 1e6";
      goto invalid;
    }
  }
  if (opt_string(root, "comment", SY_FEEDBACK_MAX_COMMENT, &j->comment, &why)) {
    param = "comment";
    goto invalid;
  }
  const cJSON *corr = cJSON_GetObjectItemCaseSensitive(root, "correction");
  if (cJSON_IsObject(corr)) corr = cJSON_GetObjectItemCaseSensitive(corr, "content");
  if (corr && !cJSON_IsNull(corr)) {
    if (!cJSON_IsString(corr) || !corr->valuestring[0] ||
        strlen(corr->valuestring) > SY_FEEDBACK_MAX_CORRECTION) {
      param = "correction";
      why = "must be a non-empty string (or an assistant message with string content) of at most 1 MiB";
      goto invalid;
    }
    j->correction = strdup(corr->valuestring);
  }
  if (opt_string(root, "labeller", SY_FEEDBACK_MAX_NAME_LEN, &j->labeller, &why)) {
    param = "labeller";
    goto invalid;
  }
  if (opt_string(root, "user", SY_FEEDBACK_MAX_NAME_LEN, &j->fb_user, &why)) {
    param = "user";
    goto invalid;
  }
  const cJSON *tags = cJSON_GetObjectItemCaseSensitive(root, "tags");
  if (tags && !cJSON_IsNull(tags)) {
    int n = cJSON_IsArray(tags) ? cJSON_GetArraySize(tags) : -1;
    if (n < 0 || n > SY_FEEDBACK_MAX_TAGS) {
      param = "tags";
      why = "must be an array of at most 32 strings";
      goto invalid;
    }
    j->tags = calloc((size_t)n + 1, sizeof *j->tags);
    if (!j->tags) {
      why = "Out of memory.";
      goto invalid;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, tags) {
      if (!cJSON_IsString(t) || !t->valuestring[0] || strlen(t->valuestring) > SY_FEEDBACK_MAX_TAG_LEN) {
        param = "tags";
        why = "each tag must be a non-empty string of at most 128 characters";
        goto invalid;
      }
      j->tags[j->n_tags++] = strdup(t->valuestring);
    }
  }
  if (!j->rating && !j->correction && !j->comment) {
    param = NULL;
    why = "Feedback needs at least one of rating, correction or comment.";
    goto invalid;
  }
  cJSON_Delete(root);

  j->done = sy__worker_job_done;
  j->owner = w;
  j->conn = c;
  c->job = j;
  w->jobs_out++;
  int rc = sy_capture_submit(w->gw->capture, j);
  if (rc) {
    w->jobs_out--;
    c->job = NULL;
    sy_capture_job_free(j);
    sy_conn_respond_error(c, 503, "The capture queue is full; retry shortly.", NULL, "capture_busy");
  }
  return;

invalid:
  cJSON_Delete(root);
  sy_capture_job_free(j);
  if (param) {
    snprintf(msg, sizeof msg, "Invalid feedback: '%s' %s.", param, why);
    bad(c, param, msg);
  } else {
    bad(c, NULL, why);
  }
}

void sy_proxy_feedback_done(sy_conn *c, sy_capture_job *j) {
  c->job = NULL;
  char body[256];
  if (j->result == 0) {
    int n = snprintf(body, sizeof body,
                     "{\"object\":\"feedback\",\"id\":\"%llu\",\"capture_id\":\"%llu\"}",
                     (unsigned long long)j->feedback_id, (unsigned long long)j->capture_id);
    sy_conn_respond(c, 200, "application/json", NULL, body, (size_t)n);
  } else if (j->result == SY_ENOTFOUND) {
    snprintf(body, sizeof body, "No capture with id %llu.", (unsigned long long)j->capture_id);
    sy_conn_respond_error(c, 404, body, "capture_id", "capture_not_found");
  } else {
    snprintf(body, sizeof body, "The feedback could not be stored: %s.", sy_strerror(j->result));
    sy_conn_respond_error(c, 500, body, NULL, "store_error");
  }
}

void sy_metrics_respond(sy_conn *c) {
  char body[2048];
  int n = 0;
  const sy_capture_pipe *p = c->w->gw->capture;
  if (p) {
    const sy_capture_stats *s = sy_capture_get_stats(p);
    n = snprintf(body, sizeof body,
                 "# HELP switchyard_capture_records_total Capture records committed to the store.\n"
                 "# TYPE switchyard_capture_records_total counter\n"
                 "switchyard_capture_records_total %llu\n"
                 "# HELP switchyard_capture_dropped_total Capture records not stored, by reason.\n"
                 "# TYPE switchyard_capture_dropped_total counter\n"
                 "switchyard_capture_dropped_total{reason=\"queue_full\"} %llu\n"
                 "switchyard_capture_dropped_total{reason=\"scrub_failed\"} %llu\n"
                 "switchyard_capture_dropped_total{reason=\"store_error\"} %llu\n"
                 "# HELP switchyard_capture_queue_depth Records waiting for the writer.\n"
                 "# TYPE switchyard_capture_queue_depth gauge\n"
                 "switchyard_capture_queue_depth %llu\n"
                 "# HELP switchyard_capture_batches_total Group commits.\n"
                 "# TYPE switchyard_capture_batches_total counter\n"
                 "switchyard_capture_batches_total %llu\n"
                 "# HELP switchyard_feedback_total Feedback entries stored.\n"
                 "# TYPE switchyard_feedback_total counter\n"
                 "switchyard_feedback_total %llu\n",
                 (unsigned long long)atomic_load(&s->stored),
                 (unsigned long long)atomic_load(&s->dropped_full),
                 (unsigned long long)atomic_load(&s->dropped_scrub),
                 (unsigned long long)atomic_load(&s->dropped_store),
                 (unsigned long long)atomic_load(&s->queue_depth),
                 (unsigned long long)atomic_load(&s->batches),
                 (unsigned long long)atomic_load(&s->feedback_stored));
  }
  n += snprintf(body + n, sizeof body - (size_t)n,
                "# HELP switchyard_up 1 while the gateway runs.\n# TYPE switchyard_up gauge\n"
                "switchyard_up 1\n");
  sy_conn_respond(c, 200, "text/plain; version=0.0.4", NULL, body, (size_t)n);
}
