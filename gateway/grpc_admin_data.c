/* Admin RPCs on captured data: ListCaptures, GetCapture, LabelCapture,
 * ExportDataset (server streaming) and GetReport. All read the process's
 * one store handle (gw->store) in short transactions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fopencookie: the export writes to a FILE that streams lines */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <grpc/grpc.h>

#include "common/buf.h"
#include "common/err.h"
#include "gateway/grpc_admin_handlers.h"
#include "router/slot.h"
#include "store/export.h"
#include "store/report.h"
#include "store/store.h"
#include "switchyard/v1/admin.pb-c.h"

#define SY_ADMIN_LIST_DEFAULT 100
#define SY_ADMIN_LIST_MAX 1000
#define SY_ADMIN_REPORT_WINDOW_US (24ull * 3600 * 1000000)
#define SY_ADMIN_MAX_LABEL_BYTES (1u << 20) /* correction + comment of one label */

#define OOM(errmsg, errlen) (snprintf(errmsg, errlen, "out of memory"), GRPC_STATUS_RESOURCE_EXHAUSTED)

static uint64_t now_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* ---- ListCaptures / GetCapture ---------------------------------------------------------------- */

/* Mean rating > 0 (UP = +1, DOWN = -1, SCORE = score): the export's rule. */
static int rated_up(sy_feedback *const *fb, size_t n) {
  double sum = 0;
  size_t rated = 0;
  for (size_t i = 0; i < n; i++) {
    switch (fb[i]->rating) {
    case SWITCHYARD__V1__FEEDBACK__RATING__UP: sum += 1, rated++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__DOWN: sum -= 1, rated++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__SCORE: sum += fb[i]->score, rated++; break;
    default: break;
    }
  }
  return rated && sum / (double)rated > 0;
}

static int corrected(sy_feedback *const *fb, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fb[i]->correction && fb[i]->correction[0]) return 1;
  return 0;
}

static int str_match(const char *want, const char *have) {
  return !want || !want[0] || (have && strcmp(want, have) == 0);
}

static int filter_match(const Switchyard__V1__CaptureFilter *f, const sy_capture *c,
                        sy_feedback *const *fb, size_t n_fb) {
  if (!f) return 1;
  if (!str_match(f->route, c->route) || !str_match(f->arm, c->arm) ||
      !str_match(f->model, c->model) || !str_match(f->client_key, c->client_key_id))
    return 0;
  if (f->only_ok && (c->http_status != 200 || c->truncated)) return 0;
  if (f->only_rated_up && !rated_up(fb, n_fb)) return 0;
  if (f->only_corrected && !corrected(fb, n_fb)) return 0;
  return 1;
}

static Switchyard__V1__CaptureSummary *summary_new(const sy_capture *c, size_t n_fb) {
  Switchyard__V1__CaptureSummary *s = malloc(sizeof *s);
  if (!s) return NULL;
  switchyard__v1__capture_summary__init(s);
  s->id = c->id;
  s->ts_us = c->ts_start_us;
  s->route = sy__admin_str(c->route);
  s->arm = sy__admin_str(c->arm);
  s->model = sy__admin_str(c->model);
  s->http_status = c->http_status;
  s->finish_reason = sy__admin_str(c->finish_reason);
  s->total_tokens = c->total_tokens;
  s->latency_us = c->latency_total_us;
  s->feedback = (uint32_t)n_fb;
  return s;
}

typedef struct {
  sy_admin_ctx *ctx;
  const Switchyard__V1__CaptureFilter *f;
  Switchyard__V1__ListCapturesResponse *r;
  size_t want; /* limit + 1: the extra one says whether there is a next page */
  int rc;
} list_ctx;

static int list_cb(void *vctx, const sy_capture *cap, sy_feedback *const *fb, size_t n_fb) {
  list_ctx *x = vctx;
  if (sy_admin_cancelled(x->ctx)) return SY_ECLOSED;
  if (!filter_match(x->f, cap, fb, n_fb)) return 0;
  Switchyard__V1__CaptureSummary *s = summary_new(cap, n_fb);
  if (!s) return SY_ENOMEM;
  x->r->captures[x->r->n_captures++] = s;
  return x->r->n_captures == x->want ? 1 : 0;
}

int sy_admin_list_captures(sy_admin_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, char *errmsg, size_t errlen) {
  const Switchyard__V1__ListCapturesRequest *q = (const void *)req;
  if (q->limit > SY_ADMIN_LIST_MAX) {
    snprintf(errmsg, errlen, "limit: must be 0..%d", SY_ADMIN_LIST_MAX);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  const Switchyard__V1__CaptureFilter *f = q->filter;
  if (f && f->to_us && f->from_us >= f->to_us) {
    snprintf(errmsg, errlen, "filter.from_us: must be before filter.to_us");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  size_t limit = q->limit ? q->limit : SY_ADMIN_LIST_DEFAULT;
  Switchyard__V1__ListCapturesResponse *r = malloc(sizeof *r);
  if (!r) return OOM(errmsg, errlen);
  switchyard__v1__list_captures_response__init(r);
  *resp = &r->base;
  if (!(r->captures = calloc(limit + 1, sizeof *r->captures))) return OOM(errmsg, errlen);
  sy_store_iter_opts o = {.from_id = f ? sy_store_id_from_time_us(f->from_us) : 0,
                          .to_id = f && f->to_us ? sy_store_id_from_time_us(f->to_us) : 0,
                          .flags = SY_ITER_FEEDBACK | SY_ITER_SKIP_CORRUPT};
  if (q->newest_first) {
    o.flags |= SY_ITER_REVERSE;
    if (q->after_id && (!o.to_id || q->after_id < o.to_id)) o.to_id = q->after_id;
  } else if (q->after_id && q->after_id + 1 > o.from_id) {
    o.from_id = q->after_id + 1;
  }
  list_ctx x = {.ctx = ctx, .f = f, .r = r, .want = limit + 1};
  int rc = sy_store_iter_captures(ctx->gw->store, &o, list_cb, &x, NULL);
  if (rc == SY_ECLOSED) {
    snprintf(errmsg, errlen, "cancelled");
    return GRPC_STATUS_CANCELLED;
  }
  if (rc) {
    snprintf(errmsg, errlen, "reading captures failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  if (r->n_captures == x.want) {
    protobuf_c_message_free_unpacked(&r->captures[--r->n_captures]->base, NULL);
    r->next_after_id = r->captures[r->n_captures - 1]->id;
  }
  return GRPC_STATUS_OK;
}

static const char *rating_name(int r) {
  switch (r) {
  case SWITCHYARD__V1__FEEDBACK__RATING__UP: return "up";
  case SWITCHYARD__V1__FEEDBACK__RATING__DOWN: return "down";
  case SWITCHYARD__V1__FEEDBACK__RATING__SCORE: return "score";
  default: return "";
  }
}

static Switchyard__V1__FeedbackInfo *feedback_info(const sy_feedback *f) {
  Switchyard__V1__FeedbackInfo *fi = malloc(sizeof *fi);
  if (!fi) return NULL;
  switchyard__v1__feedback_info__init(fi);
  fi->id = f->id;
  fi->ts_us = f->ts_us;
  fi->rating = sy__admin_str(rating_name(f->rating));
  fi->score = f->score;
  fi->comment = sy__admin_str(f->comment);
  fi->correction = sy__admin_str(f->correction);
  fi->labeller = sy__admin_str(f->labeller);
  if (f->n_tags && (fi->tags = calloc(f->n_tags, sizeof *fi->tags)))
    for (size_t i = 0; i < f->n_tags; i++) fi->tags[fi->n_tags++] = strdup(f->tags[i] ? f->tags[i] : "");
  return fi;
}

int sy_admin_get_capture(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                         char *errmsg, size_t errlen) {
  const Switchyard__V1__GetCaptureRequest *q = (const void *)req;
  if (!q->id) {
    snprintf(errmsg, errlen, "id: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  sy_capture *c = NULL;
  int rc = sy_store_get_capture(ctx->gw->store, q->id, &c);
  if (rc == SY_ENOTFOUND) {
    snprintf(errmsg, errlen, "id: no capture %llu", (unsigned long long)q->id);
    return GRPC_STATUS_NOT_FOUND;
  }
  if (rc) {
    snprintf(errmsg, errlen, "reading capture %llu failed: %s", (unsigned long long)q->id,
             sy_strerror(rc));
    return sy__admin_status(rc);
  }
  sy_feedback **fb = NULL;
  size_t n_fb = 0;
  rc = sy_store_get_feedback(ctx->gw->store, q->id, &fb, &n_fb);
  Switchyard__V1__CaptureInfo *ci = rc ? NULL : malloc(sizeof *ci);
  int code = GRPC_STATUS_OK;
  if (!ci) {
    snprintf(errmsg, errlen, "reading the feedback failed: %s", sy_strerror(rc ? rc : SY_ENOMEM));
    code = sy__admin_status(rc ? rc : SY_ENOMEM);
  } else {
    switchyard__v1__capture_info__init(ci);
    *resp = &ci->base;
    ci->summary = summary_new(c, n_fb);
    ci->request_json = sy__admin_strn((const char *)c->request_body.data, c->request_body.len);
    ci->response_json = sy__admin_strn((const char *)c->response_body.data, c->response_body.len);
    ci->kind = sy__admin_str(c->kind == SWITCHYARD__V1__CAPTURE__KIND__SHADOW ? "shadow"
                             : c->kind == SWITCHYARD__V1__CAPTURE__KIND__CASCADE_ATTEMPT
                                 ? "cascade_attempt"
                                 : "primary");
    ci->parent_id = c->parent_id;
    ci->upstream = sy__admin_str(c->upstream);
    ci->error = sy__admin_str(c->error);
    if (n_fb && (ci->feedback = calloc(n_fb, sizeof *ci->feedback)))
      for (size_t i = 0; i < n_fb; i++)
        if ((ci->feedback[ci->n_feedback] = feedback_info(fb[i]))) ci->n_feedback++;
  }
  sy_store_feedback_free(fb, n_fb);
  sy_store_capture_free(c);
  return code;
}

/* ---- LabelCapture ----------------------------------------------------------------------------- */

int sy_admin_label_capture(sy_admin_ctx *ctx, const ProtobufCMessage *req,
                           ProtobufCMessage **resp, char *errmsg, size_t errlen) {
  const Switchyard__V1__LabelCaptureRequest *q = (const void *)req;
  if (!q->id) {
    snprintf(errmsg, errlen, "id: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  int has_corr = q->correction[0] != '\0';
  if (q->verified == has_corr) {
    snprintf(errmsg, errlen, "%s", has_corr ? "verified, correction: give one, not both"
                                            : "verified or correction: one is required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (strlen(q->correction) + strlen(q->comment) > SY_ADMIN_MAX_LABEL_BYTES) {
    snprintf(errmsg, errlen, "correction: over %u bytes", SY_ADMIN_MAX_LABEL_BYTES);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  /* The entry goes straight to the store in its own durable transaction
   * (not through the capture queue), but scrubbed like everything else that
   * reaches the disk: a labeller may paste a customer's details. Fails
   * closed. Verified = a thumbs up; a correction carries no rating. */
  char *corr = NULL, *comment = NULL;
  int src = sy_capture_scrub_text(ctx->gw->capture, ctx->cfg, q->correction, &corr);
  if (!src) src = sy_capture_scrub_text(ctx->gw->capture, ctx->cfg, q->comment, &comment);
  if (src) {
    free(corr);
    snprintf(errmsg, errlen, "correction: could not be scrubbed of personal data (%s); not stored",
             sy_strerror(src));
    return GRPC_STATUS_INTERNAL;
  }
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = q->id;
  fb.rating = q->verified ? SWITCHYARD__V1__FEEDBACK__RATING__UP
                          : SWITCHYARD__V1__FEEDBACK__RATING__UNSPECIFIED;
  fb.correction = corr;
  fb.comment = comment;
  fb.tags = q->tags;
  fb.n_tags = q->n_tags;
  fb.labeller = (char *)ctx->caller;
  int rc = sy_store_put_feedback(ctx->gw->store, &fb);
  free(corr);
  free(comment);
  if (!rc) rc = sy_store_sync(ctx->gw->store); /* durable before OK in every mode */
  if (rc == SY_ENOTFOUND) {
    snprintf(errmsg, errlen, "id: no capture %llu", (unsigned long long)q->id);
    return GRPC_STATUS_NOT_FOUND;
  }
  if (rc) {
    snprintf(errmsg, errlen, "storing the label failed: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  Switchyard__V1__LabelCaptureResponse *r = malloc(sizeof *r);
  if (!r) return OOM(errmsg, errlen);
  switchyard__v1__label_capture_response__init(r);
  r->feedback_id = fb.id;
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

/* ---- ExportDataset ---------------------------------------------------------------------------- *
 * store/export.h writes to FILE*s; each FILE here is a cookie stream whose
 * write function cuts the bytes into lines and emits one ExportLine per
 * line, so memory stays bounded by one line (<= grpc.max_message_bytes) and
 * a slow client slows the export down (sy_admin_emit blocks). */

typedef struct {
  sy_admin_ctx *ctx;
  const char *split;      /* "train" | "validation" */
  sy_buf line;
  uint64_t *emitted;      /* shared by the streams of one export */
  uint64_t limit;         /* 0 = none */
  int *stop;              /* shared: 1 limit reached, 2 client gone, 3 line too big */
} line_stream;

static ssize_t ls_write(void *cookie, const char *buf, size_t size) {
  line_stream *ls = cookie;
  if (*ls->stop) return -1;
  for (size_t i = 0; i < size; i++) {
    if (buf[i] != '\n') {
      size_t j = i;
      while (j < size && buf[j] != '\n') j++;
      if (sy_buf_append(&ls->line, buf + i, j - i) != 0) {
        *ls->stop = 3;
        return -1;
      }
      i = j - 1;
      continue;
    }
    Switchyard__V1__ExportLine l = SWITCHYARD__V1__EXPORT_LINE__INIT;
    l.json = ls->line.data ? ls->line.data : (char *)"";
    l.split = (char *)ls->split;
    int rc = sy_admin_emit(ls->ctx, &l.base);
    sy_buf_reset(&ls->line);
    if (rc) {
      *ls->stop = rc == SY_ETOOBIG ? 3 : 2;
      return -1;
    }
    if (ls->limit && ++*ls->emitted >= ls->limit) {
      *ls->stop = 1;
      return -1;
    }
  }
  return (ssize_t)size;
}

static ssize_t discard_write(void *cookie, const char *buf, size_t size) {
  (void)cookie, (void)buf;
  return (ssize_t)size;
}

static FILE *open_lines(line_stream *ls) {
  cookie_io_functions_t io = {.write = ls_write};
  return fopencookie(ls, "w", io);
}

int sy_admin_export_dataset(sy_admin_ctx *ctx, const ProtobufCMessage *req, char *errmsg,
                            size_t errlen) {
  const Switchyard__V1__ExportDatasetRequest *q = (const void *)req;
  int pref = !strcmp(q->format, "preference");
  if (!pref && q->format[0] && strcmp(q->format, "chat")) {
    snprintf(errmsg, errlen, "format: must be \"chat\" or \"preference\"");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (!(q->validation_fraction >= 0 && q->validation_fraction <= 0.5)) {
    snprintf(errmsg, errlen, "validation_fraction: must be 0..0.5");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  const Switchyard__V1__CaptureFilter *f = q->filter;
  if (f && f->client_key[0]) {
    snprintf(errmsg, errlen, "filter.client_key: not supported by the export");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (f && f->to_us && f->from_us >= f->to_us) {
    snprintf(errmsg, errlen, "filter.from_us: must be before filter.to_us");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  /* The CLI's filters. Errors and truncated answers are always left out
   * (only_ok is the export's default); dedup is always on and the
   * train/validation split is a hash of the prompt (the export's rules), so
   * `dedup` and `seed` change nothing. */
  uint64_t emitted = 0;
  int stop = 0;
  size_t cap = ctx->cfg->grpc.max_message_bytes > 1024 ? ctx->cfg->grpc.max_message_bytes - 1024
                                                       : 1024;
  line_stream tr = {ctx, "train", {0}, &emitted, q->limit, &stop};
  line_stream va = {ctx, "validation", {0}, &emitted, q->limit, &stop};
  sy_buf_init(&tr.line, cap);
  sy_buf_init(&va.line, cap);
  cookie_io_functions_t dio = {.write = discard_write};
  FILE *ftr = pref ? fopencookie(NULL, "w", dio) : open_lines(&tr);
  FILE *fva = (!pref && q->validation_fraction > 0) ? open_lines(&va) : NULL;
  FILE *fpr = pref ? open_lines(&tr) : NULL;
  int code = GRPC_STATUS_OK;
  if (!ftr || (!pref && q->validation_fraction > 0 && !fva) || (pref && !fpr)) {
    code = OOM(errmsg, errlen);
  } else {
    sy_export_opts o = {
        .since_us = f ? f->from_us : 0,
        .until_us = f ? f->to_us : 0,
        .route = f && f->route[0] ? f->route : NULL,
        .arm = f && f->arm[0] ? f->arm : NULL,
        .model = f && f->model[0] ? f->model : NULL,
        .only_corrected = f && f->only_corrected,
        .only_positive = f && f->only_rated_up,
        .val_fraction = pref ? 0 : q->validation_fraction,
        .train = ftr,
        .val = fva,
        .pairs = fpr,
    };
    sy_export_summary *sum = malloc(sizeof *sum);
    int rc = sum ? sy_export_run(ctx->gw->store, &o, sum) : SY_ENOMEM;
    free(sum);
    /* flushing emits what the FILE buffers still hold */
    if (fflush(ftr) != 0 && !rc) rc = SY_EIO;
    if (fva && fflush(fva) != 0 && !rc) rc = SY_EIO;
    if (fpr && fflush(fpr) != 0 && !rc) rc = SY_EIO;
    if (stop == 1) rc = 0; /* the limit stopped it: a success */
    if (stop == 2) {
      snprintf(errmsg, errlen, "cancelled");
      code = GRPC_STATUS_CANCELLED;
    } else if (stop == 3) {
      snprintf(errmsg, errlen, "an export line is larger than grpc.max_message_bytes");
      code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    } else if (rc) {
      snprintf(errmsg, errlen, "export failed: %s", sy_strerror(rc));
      code = sy__admin_status(rc);
    }
  }
  stop = stop ? stop : 1; /* closing must not emit again after a failure */
  if (code != GRPC_STATUS_OK) stop = 2;
  if (ftr) fclose(ftr);
  if (fva) fclose(fva);
  if (fpr) fclose(fpr);
  sy_buf_free(&tr.line);
  sy_buf_free(&va.line);
  return code;
}

/* ---- GetReport -------------------------------------------------------------------------------- */

static const char *verdict_name(sy_report_verdict v) {
  return v == SY_REPORT_PROMOTE ? "promote" : v == SY_REPORT_ROLL_BACK ? "rollback" : "keep_testing";
}

int sy_admin_get_report(sy_admin_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                        char *errmsg, size_t errlen) {
  const Switchyard__V1__GetReportRequest *q = (const void *)req;
  if (!q->name[0]) {
    snprintf(errmsg, errlen, "name: required");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  if (strlen(q->name) > SY_REPORT_MAX_NAME || strlen(q->base_arm) > SY_REPORT_MAX_NAME) {
    snprintf(errmsg, errlen, "%s: over %d bytes", strlen(q->name) > SY_REPORT_MAX_NAME ? "name" : "base_arm",
             SY_REPORT_MAX_NAME);
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  uint64_t to = q->to_us ? q->to_us : now_us();
  uint64_t from = q->from_us ? q->from_us : (to > SY_ADMIN_REPORT_WINDOW_US ? to - SY_ADMIN_REPORT_WINDOW_US : 1);
  if (from >= to) {
    snprintf(errmsg, errlen, "from_us: must be before to_us");
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
  /* "" = the route's first arm, as published now */
  char base[SY_REPORT_MAX_NAME + 1] = "";
  sy_route_table *t = sy_route_slot_get(&ctx->gw->routes);
  const sy_route *rt = t ? sy_route_table_find(t, q->name, strlen(q->name)) : NULL;
  int route_exists = rt != NULL;
  if (q->base_arm[0]) snprintf(base, sizeof base, "%s", q->base_arm);
  else if (rt && rt->n_arms) snprintf(base, sizeof base, "%s", rt->arms[0].name.s);
  if (t) sy_route_table_unref(t);
  sy_report *rep = malloc(sizeof *rep);
  if (!rep) return OOM(errmsg, errlen);
  int rc = sy_report_compute(ctx->gw->store, q->name, from, to, base[0] ? base : NULL, rep);
  if (rc) {
    free(rep);
    snprintf(errmsg, errlen, "report: %s", sy_strerror(rc));
    return sy__admin_status(rc);
  }
  /* A deleted route still has a report while its captures exist; a name
   * that is neither a route nor in any capture of the window is unknown. */
  if (!route_exists && rep->n_arms == 0) {
    free(rep);
    snprintf(errmsg, errlen, "name: no route \"%s\" and no captures of it in the window", q->name);
    return GRPC_STATUS_NOT_FOUND;
  }
  Switchyard__V1__GetReportResponse *r = malloc(sizeof *r);
  if (!r) {
    free(rep);
    return OOM(errmsg, errlen);
  }
  switchyard__v1__get_report_response__init(r);
  *resp = &r->base;
  r->route = sy__admin_str(rep->route);
  r->from_us = rep->from_us;
  r->to_us = rep->to_us;
  r->base_arm = sy__admin_str(rep->base_arm);
  r->recommendation = sy__admin_str(verdict_name(rep->verdict));
  r->recommended_arm = sy__admin_str(rep->target_arm);
  r->rule = sy__admin_str(rep->rule);
  int code = GRPC_STATUS_OK;
  if (rep->n_arms && !(r->arms = calloc(rep->n_arms, sizeof *r->arms))) code = OOM(errmsg, errlen);
  for (size_t i = 0; i < rep->n_arms && code == GRPC_STATUS_OK; i++) {
    const sy_report_arm *a = &rep->arms[i];
    Switchyard__V1__ArmReport *ar = malloc(sizeof *ar);
    Switchyard__V1__Interval *ci = malloc(sizeof *ci);
    if (!ar || !ci) {
      free(ar);
      free(ci);
      code = OOM(errmsg, errlen);
      break;
    }
    switchyard__v1__arm_report__init(ar);
    switchyard__v1__interval__init(ci);
    r->arms[r->n_arms++] = ar;
    ar->arm = sy__admin_str(a->name);
    ar->requests = a->requests;
    ar->errors = a->errors;
    ar->latency_p50_ms = (double)a->latency_p50_us / 1000.0;
    ar->latency_p99_ms = (double)a->latency_p99_us / 1000.0;
    ar->prompt_tokens = a->prompt_tokens;
    ar->completion_tokens = a->completion_tokens;
    ar->cascade_acceptance = a->cascade_acceptance;
    ar->cascade_attempts = a->cascade_decisions;
    ar->shadow_agreement = a->shadow_agreement;
    ar->shadow_pairs = a->shadow_compared;
    ar->feedback = a->feedback;
    ar->approval = a->approval;
    ci->low = a->approval_lo;
    ci->high = a->approval_hi;
    ar->approval_ci95 = ci;
    ar->approval_diff = a->has_comparison ? a->approval_diff : 0;
    ar->p_value = a->has_comparison ? a->p_value : 1;
  }
  free(rep);
  return code;
}
