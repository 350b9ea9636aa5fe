/* switchyard-load: the readable summary and the JSON report. */
#include "loadtest/load.h"
#include "common/err.h"
#include "common/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

static const struct {
  const char *name;
  double p;
} PCTS[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99_9", 99.9}};

/* ---------------------------------------------------------------- text */

static void ms_cell(FILE *out, uint64_t us) { fprintf(out, " %9.3f", (double)us / 1000.0); }

static void hist_row(FILE *out, const char *label, const sy_load_hist *h) {
  fprintf(out, "  %-11s", label);
  if (h->count == 0) {
    fprintf(out, " %9s\n", "-");
    return;
  }
  for (size_t i = 0; i < sizeof PCTS / sizeof *PCTS; i++)
    ms_cell(out, sy_load_hist_percentile(h, PCTS[i].p));
  ms_cell(out, h->max);
  fprintf(out, " %9.3f %9llu\n", sy_load_hist_mean(h) / 1000.0, (unsigned long long)h->count);
}

void sy_load_report_text(FILE *out, const sy_load_cfg *cfg, const sy_load_stats *st) {
  fprintf(out, "switchyard-load %s\n", cfg->url);
  if (cfg->rate > 0)
    fprintf(out, "  mode        open loop at %.1f req/s, %u connections", cfg->rate,
            cfg->connections);
  else
    fprintf(out, "  mode        closed loop, %u connections", cfg->connections);
  if (cfg->duration_s > 0) fprintf(out, ", %.2f s", cfg->duration_s);
  if (cfg->requests) fprintf(out, ", %llu requests", (unsigned long long)cfg->requests);
  if (cfg->warmup_s > 0) fprintf(out, " (+%.2f s warm-up)", cfg->warmup_s);
  fprintf(out, "%s%s\n", cfg->stream ? ", streaming" : "", st->interrupted ? ", INTERRUPTED" : "");
  fprintf(out,
          "  requests    %llu scheduled, %llu sent, %llu ok, %llu failed, %llu unfinished "
          "(%llu in warm-up)\n",
          (unsigned long long)st->scheduled, (unsigned long long)st->sent,
          (unsigned long long)st->ok, (unsigned long long)st->failed,
          (unsigned long long)st->unfinished, (unsigned long long)st->warmup);
  fprintf(out, "  throughput  %.1f req/s over %.3f s", st->throughput, st->window_s);
  if (cfg->rate > 0)
    fprintf(out, " (send rate %.1f req/s, target %.1f)", st->achieved_rate, cfg->rate);
  fprintf(out, "\n  %-11s %9s %9s %9s %9s %9s %9s %9s\n", "ms", "p50", "p90", "p99", "p99.9",
          "max", "mean", "count");
  hist_row(out, "latency", &st->latency);
  if (cfg->rate > 0) hist_row(out, "service", &st->service);
  hist_row(out, "ttfb", &st->ttfb);
  if (st->gap.count) hist_row(out, "chunk gap", &st->gap);
  if (cfg->rate > 0)
    fprintf(out, "  (latency and ttfb from the intended send time; service from the actual send)\n");
  fprintf(out, "  errors     ");
  int any = 0;
  for (int k = 1; k < SY_LOAD_E_COUNT; k++) {
    if (!st->errors[k]) continue;
    fprintf(out, "%s %s %llu", any ? "," : "", sy_load_err_name((sy_load_err)k),
            (unsigned long long)st->errors[k]);
    any = 1;
  }
  fprintf(out, "%s\n", any ? "" : " none");
  fprintf(out, "  status     ");
  any = 0;
  for (int s = 100; s < 600; s++) {
    if (!st->status[s]) continue;
    fprintf(out, " %d x%llu", s, (unsigned long long)st->status[s]);
    any = 1;
  }
  fprintf(out, "%s\n", any ? "" : " none");
}

/* ---------------------------------------------------------------- JSON */

static cJSON *hist_json(const sy_load_hist *h) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddNumberToObject(o, "count", (double)h->count);
  cJSON_AddNumberToObject(o, "min", h->count ? (double)h->min : 0);
  cJSON_AddNumberToObject(o, "mean", sy_load_hist_mean(h));
  for (size_t i = 0; i < sizeof PCTS / sizeof *PCTS; i++)
    cJSON_AddNumberToObject(o, PCTS[i].name, (double)sy_load_hist_percentile(h, PCTS[i].p));
  cJSON_AddNumberToObject(o, "max", (double)h->max);
  return o;
}

static cJSON *config_json(const sy_load_cfg *cfg) {
  cJSON *c = cJSON_CreateObject();
  if (!c) return NULL;
  cJSON_AddStringToObject(c, "url", cfg->url);
  cJSON_AddStringToObject(c, "mode", cfg->rate > 0 ? "open" : "closed");
  if (cfg->rate > 0) cJSON_AddNumberToObject(c, "rate", cfg->rate);
  else cJSON_AddNullToObject(c, "rate");
  cJSON_AddNumberToObject(c, "connections", cfg->connections);
  cJSON_AddNumberToObject(c, "requests", (double)cfg->requests);
  cJSON_AddNumberToObject(c, "duration_s", cfg->duration_s);
  cJSON_AddNumberToObject(c, "warmup_s", cfg->warmup_s);
  cJSON_AddNumberToObject(c, "timeout_ms", cfg->timeout_ms);
  cJSON_AddNumberToObject(c, "queue_max", (double)cfg->queue_max);
  cJSON_AddBoolToObject(c, "stream", cfg->stream);
  cJSON_AddNumberToObject(c, "users", (double)cfg->users);
  cJSON_AddNumberToObject(c, "zipf_s", cfg->zipf_s);
  cJSON_AddNumberToObject(c, "seed", (double)cfg->seed);
  if (cfg->body_file) cJSON_AddStringToObject(c, "body", cfg->body_file);
  if (cfg->mix_file) cJSON_AddStringToObject(c, "mix", cfg->mix_file);
  if (cfg->model) cJSON_AddStringToObject(c, "model", cfg->model);
  /* header names only: values may be credentials */
  cJSON *hn = cJSON_AddArrayToObject(c, "headers");
  for (size_t i = 0; hn && i < cfg->nheaders; i++) {
    const char *h = cfg->headers[i];
    char name[128];
    size_t n = strcspn(h, ":");
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, h, n);
    name[n] = '\0';
    cJSON_AddItemToArray(hn, cJSON_CreateString(name));
  }
  return c;
}

static cJSON *report_json(const sy_load_cfg *cfg, const sy_load_stats *st) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddStringToObject(root, "tool", "switchyard-load");
  cJSON_AddNumberToObject(root, "version", 1);
  cJSON_AddItemToObject(root, "config", config_json(cfg));
  cJSON *rq = cJSON_AddObjectToObject(root, "requests");
  if (rq) {
    cJSON_AddNumberToObject(rq, "scheduled", (double)st->scheduled);
    cJSON_AddNumberToObject(rq, "sent", (double)st->sent);
    cJSON_AddNumberToObject(rq, "completed", (double)st->completed);
    cJSON_AddNumberToObject(rq, "ok", (double)st->ok);
    cJSON_AddNumberToObject(rq, "failed", (double)st->failed);
    cJSON_AddNumberToObject(rq, "unfinished", (double)st->unfinished);
    cJSON_AddNumberToObject(rq, "warmup", (double)st->warmup);
  }
  cJSON_AddNumberToObject(root, "window_s", st->window_s);
  cJSON_AddNumberToObject(root, "elapsed_s", st->elapsed_s);
  cJSON_AddNumberToObject(root, "throughput_rps", st->throughput);
  if (cfg->rate > 0) cJSON_AddNumberToObject(root, "target_rate_rps", cfg->rate);
  else cJSON_AddNullToObject(root, "target_rate_rps");
  cJSON_AddNumberToObject(root, "achieved_rate_rps", st->achieved_rate);
  cJSON_AddNumberToObject(root, "queue_peak", (double)st->queue_peak);
  cJSON_AddBoolToObject(root, "interrupted", st->interrupted);
  cJSON_AddItemToObject(root, "latency_us", hist_json(&st->latency));
  cJSON_AddItemToObject(root, "service_us", hist_json(&st->service));
  cJSON_AddItemToObject(root, "ttfb_us", hist_json(&st->ttfb));
  cJSON_AddItemToObject(root, "chunk_gap_us", hist_json(&st->gap));
  cJSON *er = cJSON_AddObjectToObject(root, "errors");
  for (int k = 1; er && k < SY_LOAD_E_COUNT; k++)
    cJSON_AddNumberToObject(er, sy_load_err_name((sy_load_err)k), (double)st->errors[k]);
  cJSON *ss = cJSON_AddObjectToObject(root, "status");
  for (int s = 100; ss && s < 600; s++) {
    if (!st->status[s]) continue;
    char key[8];
    snprintf(key, sizeof key, "%d", s);
    cJSON_AddNumberToObject(ss, key, (double)st->status[s]);
  }
  return root;
}

int sy_load_report_json(const char *path, const sy_load_cfg *cfg, const sy_load_stats *st) {
  cJSON *root = report_json(cfg, st);
  char *text = root ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) return SY_ENOMEM;
  int rc = 0;
  int to_stdout = strcmp(path, "-") == 0;
  FILE *f = to_stdout ? stdout : fopen(path, "w");
  if (!f) {
    sy_error("switchyard-load: %s: %s", path, strerror(errno));
    rc = SY_EIO;
  } else {
    if (fputs(text, f) < 0 || fputc('\n', f) < 0) rc = SY_EIO;
    if (!to_stdout && fclose(f) != 0) rc = SY_EIO;
    if (rc) sy_error("switchyard-load: writing %s failed", path);
  }
  cJSON_free(text);
  return rc;
}
