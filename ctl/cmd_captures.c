/* switchyardctl captures stats|list|show: a quick look into a capture store,
 * opened read-only (safe next to a running gateway). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "ctl/ctl.h"
#include "store/store.h"

/* Declared in ctl/ctl.h once the command is registered; repeated here so this
 * file stands alone under -Wmissing-prototypes. */
int sy_ctl_cmd_captures(int argc, char **argv);

#define TALLY_MAX 256       /* distinct names per table; the rest goes to "(other)" */
#define TALLY_NAME_MAX 64
#define LIST_MAX 100000     /* --limit cap */

static void captures_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl captures stats --db PATH [--json]\n"
               "       switchyardctl captures list --db PATH [--limit N] [--json]\n"
               "       switchyardctl captures show ID --db PATH [--json]\n"
               "stats: counts by route, arm, model and day, correction rate, approval rate by\n"
               "tag, feedback by labeller. list: newest N (default 20). show: one record.\n");
}

/* ---- tallies ---------------------------------------------------------- */

typedef struct {
  char name[TALLY_NAME_MAX];
  uint64_t n, up, down;
} tally_row;

typedef struct {
  const char *title;
  tally_row rows[TALLY_MAX + 1]; /* the last one is "(other)" */
  size_t n;
} tally;

static tally_row *tally_get(tally *t, const char *name) {
  if (!name || !*name) name = "(none)";
  for (size_t i = 0; i < t->n; i++)
    if (!strncmp(t->rows[i].name, name, TALLY_NAME_MAX - 1)) return &t->rows[i];
  if (t->n == TALLY_MAX) {
    tally_row *o = &t->rows[TALLY_MAX];
    snprintf(o->name, sizeof o->name, "(other)");
    return o;
  }
  tally_row *r = &t->rows[t->n++];
  snprintf(r->name, sizeof r->name, "%s", name);
  return r;
}

typedef struct {
  tally route, arm, model, day, tag, labeller;
  uint64_t captures, with_feedback, corrected, feedback, up, down;
} stats_ctx;

static void day_of(uint64_t us, char *buf, size_t n) {
  time_t t = (time_t)(us / 1000000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, n, "%Y-%m-%d", &tm);
}

static int stats_cb(void *ctx, const sy_capture *c, sy_feedback *const *fb, size_t nfb) {
  stats_ctx *x = ctx;
  x->captures++;
  tally_get(&x->route, c->route)->n++;
  tally_get(&x->arm, c->arm)->n++;
  tally_get(&x->model, c->model)->n++;
  char day[16];
  day_of(c->ts_start_us ? c->ts_start_us : sy_store_time_us_from_id(c->id), day, sizeof day);
  tally_get(&x->day, day)->n++;
  int corrected = 0;
  for (size_t i = 0; i < nfb; i++) {
    const sy_feedback *f = fb[i];
    x->feedback++;
    tally_get(&x->labeller, f->labeller)->n++;
    if (f->correction && f->correction[0]) corrected = 1;
    int up = f->rating == SWITCHYARD__V1__FEEDBACK__RATING__UP ||
             (f->rating == SWITCHYARD__V1__FEEDBACK__RATING__SCORE && f->score > 0);
    int down = f->rating == SWITCHYARD__V1__FEEDBACK__RATING__DOWN ||
               (f->rating == SWITCHYARD__V1__FEEDBACK__RATING__SCORE && f->score < 0);
    x->up += (uint64_t)up;
    x->down += (uint64_t)down;
    for (size_t t = 0; t < f->n_tags; t++) {
      tally_row *r = tally_get(&x->tag, f->tags[t]);
      r->n++;
      r->up += (uint64_t)up;
      r->down += (uint64_t)down;
    }
  }
  x->with_feedback += nfb > 0;
  x->corrected += (uint64_t)corrected;
  return 0;
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

static void tally_json(cJSON *root, const tally *t, int approval) {
  cJSON *o = cJSON_AddObjectToObject(root, t->title);
  size_t n = t->n + (t->rows[TALLY_MAX].n ? 1 : 0);
  for (size_t i = 0; i < n; i++) {
    const tally_row *r = i < t->n ? &t->rows[i] : &t->rows[TALLY_MAX];
    if (!approval) {
      cJSON_AddNumberToObject(o, r->name, (double)r->n);
      continue;
    }
    cJSON *e = cJSON_AddObjectToObject(o, r->name);
    cJSON_AddNumberToObject(e, "feedback", (double)r->n);
    cJSON_AddNumberToObject(e, "up", (double)r->up);
    cJSON_AddNumberToObject(e, "down", (double)r->down);
    cJSON_AddNumberToObject(e, "approval_rate", ratio(r->up, r->up + r->down));
  }
}

static void tally_print(const tally *t, int approval) {
  printf("%s:\n", t->title);
  size_t n = t->n + (t->rows[TALLY_MAX].n ? 1 : 0);
  for (size_t i = 0; i < n; i++) {
    const tally_row *r = i < t->n ? &t->rows[i] : &t->rows[TALLY_MAX];
    if (approval)
      printf("  %-32s %8llu feedback, approval %5.1f%% (%llu up, %llu down)\n", r->name,
             (unsigned long long)r->n, 100 * ratio(r->up, r->up + r->down),
             (unsigned long long)r->up, (unsigned long long)r->down);
    else
      printf("  %-32s %8llu\n", r->name, (unsigned long long)r->n);
  }
}

static int cmd_stats(sy_store *s, int json) {
  stats_ctx *x = calloc(1, sizeof *x);
  if (!x) return 1;
  x->route.title = "by_route";
  x->arm.title = "by_arm";
  x->model.title = "by_model";
  x->day.title = "by_day";
  x->tag.title = "approval_by_tag";
  x->labeller.title = "feedback_by_labeller";
  sy_store_iter_opts io = {0};
  io.flags = SY_ITER_FEEDBACK | SY_ITER_SKIP_CORRUPT;
  uint64_t corrupt = 0;
  sy_store_stats st;
  int rc = sy_store_stats_get(s, &st);
  if (rc == 0) rc = sy_store_iter_captures(s, &io, stats_cb, x, &corrupt);
  if (rc) {
    fprintf(stderr, "captures: %s\n", sy_strerror(rc));
    free(x);
    return 1;
  }
  if (json) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "captures", (double)x->captures);
    cJSON_AddNumberToObject(root, "unreadable", (double)corrupt);
    cJSON_AddNumberToObject(root, "feedback", (double)x->feedback);
    cJSON_AddNumberToObject(root, "with_feedback", (double)x->with_feedback);
    cJSON_AddNumberToObject(root, "corrected", (double)x->corrected);
    cJSON_AddNumberToObject(root, "correction_rate", ratio(x->corrected, x->captures));
    cJSON_AddNumberToObject(root, "approval_rate", ratio(x->up, x->up + x->down));
    cJSON_AddNumberToObject(root, "oldest_id", (double)st.oldest_id);
    cJSON_AddNumberToObject(root, "newest_id", (double)st.newest_id);
    cJSON_AddNumberToObject(root, "bytes_used", (double)st.bytes_used);
    cJSON_AddNumberToObject(root, "map_size", (double)st.map_size);
    tally_json(root, &x->route, 0);
    tally_json(root, &x->arm, 0);
    tally_json(root, &x->model, 0);
    tally_json(root, &x->day, 0);
    tally_json(root, &x->tag, 1);
    tally_json(root, &x->labeller, 0);
    char *p = cJSON_PrintUnformatted(root);
    if (p) printf("%s\n", p);
    cJSON_free(p);
    cJSON_Delete(root);
  } else {
    printf("captures: %llu (%llu unreadable), %llu with feedback, %llu feedback entries\n",
           (unsigned long long)x->captures, (unsigned long long)corrupt,
           (unsigned long long)x->with_feedback, (unsigned long long)x->feedback);
    printf("correction rate: %.1f%% (%llu corrected)\n", 100 * ratio(x->corrected, x->captures),
           (unsigned long long)x->corrected);
    printf("approval rate: %.1f%% (%llu up, %llu down)\n", 100 * ratio(x->up, x->up + x->down),
           (unsigned long long)x->up, (unsigned long long)x->down);
    printf("store: %llu bytes in use, map %llu bytes\n", (unsigned long long)st.bytes_used,
           (unsigned long long)st.map_size);
    tally_print(&x->route, 0);
    tally_print(&x->arm, 0);
    tally_print(&x->model, 0);
    tally_print(&x->day, 0);
    tally_print(&x->tag, 1);
    tally_print(&x->labeller, 0);
  }
  free(x);
  return 0;
}

/* ---- records as JSON -------------------------------------------------- */

static const char *kind_name(int k) {
  return k == SWITCHYARD__V1__CAPTURE__KIND__SHADOW            ? "shadow"
         : k == SWITCHYARD__V1__CAPTURE__KIND__CASCADE_ATTEMPT ? "cascade_attempt"
                                                               : "primary";
}

static const char *rating_name(int r) {
  return r == SWITCHYARD__V1__FEEDBACK__RATING__UP      ? "up"
         : r == SWITCHYARD__V1__FEEDBACK__RATING__DOWN  ? "down"
         : r == SWITCHYARD__V1__FEEDBACK__RATING__SCORE ? "score"
                                                        : "none";
}

/* Ids are 64-bit: as strings, since JSON numbers lose precision past 2^53. */
static void add_id(cJSON *o, const char *k, uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  cJSON_AddStringToObject(o, k, b);
}

/* A body as parsed JSON when it is JSON, else as a string. */
static void add_body(cJSON *o, const char *k, const ProtobufCBinaryData *b) {
  cJSON *j = b->len ? cJSON_ParseWithLength((const char *)b->data, b->len) : NULL;
  if (j) {
    cJSON_AddItemToObject(o, k, j);
    return;
  }
  char *s = malloc(b->len + 1);
  if (!s) return;
  if (b->len) memcpy(s, b->data, b->len);
  s[b->len] = '\0';
  cJSON_AddStringToObject(o, k, s);
  free(s);
}

static cJSON *capture_json(const sy_capture *c, sy_feedback *const *fb, size_t nfb, int full) {
  cJSON *o = cJSON_CreateObject();
  add_id(o, "id", c->id);
  cJSON_AddNumberToObject(o, "ts_start_us", (double)c->ts_start_us);
  cJSON_AddStringToObject(o, "request_id", c->request_id ? c->request_id : "");
  cJSON_AddStringToObject(o, "route", c->route ? c->route : "");
  cJSON_AddStringToObject(o, "arm", c->arm ? c->arm : "");
  cJSON_AddStringToObject(o, "model", c->model ? c->model : "");
  cJSON_AddStringToObject(o, "kind", kind_name(c->kind));
  cJSON_AddNumberToObject(o, "http_status", c->http_status);
  cJSON_AddNumberToObject(o, "total_tokens", c->total_tokens);
  cJSON_AddNumberToObject(o, "latency_total_us", (double)c->latency_total_us);
  cJSON_AddNumberToObject(o, "feedback_count", (double)nfb);
  if (!full) return o;
  cJSON_AddNumberToObject(o, "ts_end_us", (double)c->ts_end_us);
  cJSON_AddStringToObject(o, "client_key_id", c->client_key_id ? c->client_key_id : "");
  cJSON_AddStringToObject(o, "user_hash", c->user_hash ? c->user_hash : "");
  cJSON_AddBoolToObject(o, "sticky", c->sticky);
  cJSON_AddStringToObject(o, "upstream", c->upstream ? c->upstream : "");
  cJSON_AddStringToObject(o, "endpoint", c->endpoint ? c->endpoint : "");
  cJSON_AddBoolToObject(o, "stream", c->stream);
  cJSON_AddStringToObject(o, "error", c->error ? c->error : "");
  cJSON_AddStringToObject(o, "finish_reason", c->finish_reason ? c->finish_reason : "");
  cJSON_AddBoolToObject(o, "truncated", c->truncated);
  cJSON_AddNumberToObject(o, "upstream_ttfb_us", (double)c->upstream_ttfb_us);
  cJSON_AddNumberToObject(o, "gateway_overhead_us", (double)c->gateway_overhead_us);
  cJSON_AddNumberToObject(o, "prompt_tokens", c->prompt_tokens);
  cJSON_AddNumberToObject(o, "completion_tokens", c->completion_tokens);
  add_id(o, "parent_id", c->parent_id);
  cJSON_AddNumberToObject(o, "attempt", c->attempt);
  cJSON_AddNumberToObject(o, "confidence", c->confidence);
  cJSON_AddBoolToObject(o, "accepted", c->accepted);
  cJSON *refs = cJSON_AddArrayToObject(o, "binary_refs");
  for (size_t i = 0; i < c->n_binary_refs; i++) {
    const Switchyard__V1__BinaryRef *r = c->binary_refs[i];
    char hex[65] = {0};
    for (size_t j = 0; j < r->sha256.len && j < 32; j++)
      snprintf(hex + 2 * j, 3, "%02x", r->sha256.data[j]);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "sha256", hex);
    cJSON_AddStringToObject(e, "media_type", r->media_type ? r->media_type : "");
    cJSON_AddNumberToObject(e, "size", (double)r->size);
    cJSON_AddItemToArray(refs, e);
  }
  add_body(o, "request", &c->request_body);
  add_body(o, "response", &c->response_body);
  cJSON *fa = cJSON_AddArrayToObject(o, "feedback");
  for (size_t i = 0; i < nfb; i++) {
    const sy_feedback *f = fb[i];
    cJSON *e = cJSON_CreateObject();
    add_id(e, "id", f->id);
    cJSON_AddNumberToObject(e, "ts_us", (double)f->ts_us);
    cJSON_AddStringToObject(e, "rating", rating_name(f->rating));
    if (f->rating == SWITCHYARD__V1__FEEDBACK__RATING__SCORE)
      cJSON_AddNumberToObject(e, "score", f->score);
    cJSON_AddStringToObject(e, "comment", f->comment ? f->comment : "");
    cJSON_AddStringToObject(e, "correction", f->correction ? f->correction : "");
    cJSON *tags = cJSON_AddArrayToObject(e, "tags");
    for (size_t t = 0; t < f->n_tags; t++) cJSON_AddItemToArray(tags, cJSON_CreateString(f->tags[t]));
    cJSON_AddStringToObject(e, "labeller", f->labeller ? f->labeller : "");
    cJSON_AddStringToObject(e, "user_id_hash", f->user_id_hash ? f->user_id_hash : "");
    cJSON_AddItemToArray(fa, e);
  }
  return o;
}

typedef struct {
  int json;
} list_ctx;

static int list_cb(void *ctx, const sy_capture *c, sy_feedback *const *fb, size_t nfb) {
  list_ctx *x = ctx;
  if (x->json) {
    cJSON *o = capture_json(c, fb, nfb, 0);
    char *p = cJSON_PrintUnformatted(o);
    if (p) printf("%s\n", p);
    cJSON_free(p);
    cJSON_Delete(o);
    return 0;
  }
  time_t t = (time_t)(sy_store_time_us_from_id(c->id) / 1000000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("%-20llu %s %-16s %-10s %-24s %3u %6u tok %8.1f ms %2zu fb %s\n",
         (unsigned long long)c->id, when, c->route ? c->route : "", c->arm ? c->arm : "",
         c->model ? c->model : "", c->http_status, c->total_tokens,
         (double)c->latency_total_us / 1000.0, nfb, kind_name(c->kind));
  return 0;
}

static int cmd_show(sy_store *s, uint64_t id, int json) {
  sy_capture *c = NULL;
  sy_feedback **fb = NULL;
  size_t nfb = 0;
  int rc = sy_store_get_capture(s, id, &c);
  if (rc == 0) rc = sy_store_get_feedback(s, id, &fb, &nfb);
  if (rc) {
    fprintf(stderr, "captures: %llu: %s\n", (unsigned long long)id, sy_strerror(rc));
    sy_store_capture_free(c);
    return 1;
  }
  cJSON *o = capture_json(c, fb, nfb, 1);
  char *p = json ? cJSON_PrintUnformatted(o) : cJSON_Print(o);
  if (p) printf("%s\n", p);
  cJSON_free(p);
  cJSON_Delete(o);
  sy_store_feedback_free(fb, nfb);
  sy_store_capture_free(c);
  return 0;
}

int sy_ctl_cmd_captures(int argc, char **argv) {
  enum { O_DB = 256, O_LIMIT, O_JSON, O_HELP };
  static const struct option longopts[] = {
      {"db", required_argument, NULL, O_DB},     {"limit", required_argument, NULL, O_LIMIT},
      {"json", no_argument, NULL, O_JSON},       {"help", no_argument, NULL, O_HELP},
      {NULL, 0, NULL, 0},
  };
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    captures_usage(stdout);
    return 0;
  }
  if (argc < 2) goto bad;
  const char *action = argv[1], *db = NULL;
  unsigned long long limit = 20, id = 0;
  int json = 0, c;
  char *end;
  optind = 2;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case O_DB: db = optarg; break;
    case O_LIMIT:
      errno = 0;
      limit = strtoull(optarg, &end, 10);
      if (errno || end == optarg || *end || limit == 0 || limit > LIST_MAX) goto bad;
      break;
    case O_JSON: json = 1; break;
    case O_HELP: captures_usage(stdout); return 0;
    default: goto bad;
    }
  }
  int is_show = !strcmp(action, "show");
  if (!db || (!is_show && strcmp(action, "stats") && strcmp(action, "list"))) goto bad;
  if (is_show) {
    if (optind != argc - 1) goto bad;
    errno = 0;
    id = strtoull(argv[optind], &end, 10);
    if (errno || end == argv[optind] || *end || id == 0) goto bad;
  } else if (optind != argc) {
    goto bad;
  }

  sy_store_opts so;
  memset(&so, 0, sizeof so);
  so.path = db;
  so.read_only = 1;
  sy_store *s = NULL;
  int rc = sy_store_open(&so, &s);
  if (rc) {
    fprintf(stderr, "captures: cannot open store %s: %s\n", db,
            rc == SY_ENOTFOUND ? "no store there" : sy_strerror(rc));
    return 1;
  }
  int ret;
  if (is_show) {
    ret = cmd_show(s, id, json);
  } else if (!strcmp(action, "stats")) {
    ret = cmd_stats(s, json);
  } else {
    sy_store_iter_opts io = {0};
    io.flags = SY_ITER_FEEDBACK | SY_ITER_REVERSE | SY_ITER_SKIP_CORRUPT;
    io.limit = limit;
    list_ctx lx = {json};
    rc = sy_store_iter_captures(s, &io, list_cb, &lx, NULL);
    if (rc) fprintf(stderr, "captures: %s\n", sy_strerror(rc));
    ret = rc ? 1 : 0;
  }
  sy_store_close(s);
  return ret;

bad:
  captures_usage(stderr);
  return 2;
}
