/* GetReport: per-arm statistics of a route over a window, and the
 * recommendation. See store/report.h for every definition used here. */
#include "store/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* ---- statistics --------------------------------------------------------- */

void sy_report_wilson(uint64_t x, uint64_t n, double z, double *lo, double *hi) {
  if (n == 0) {
    *lo = *hi = 0;
    return;
  }
  double nn = (double)n, p = (double)x / nn, z2 = z * z;
  double denom = 1 + z2 / nn;
  double centre = (p + z2 / (2 * nn)) / denom;
  double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  *lo = centre - half < 0 ? 0 : centre - half;
  *hi = centre + half > 1 ? 1 : centre + half;
}

void sy_report_two_prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, double *z,
                        double *p) {
  *z = 0;
  *p = 1;
  if (n1 == 0 || n2 == 0) return;
  double p1 = (double)x1 / (double)n1, p2 = (double)x2 / (double)n2;
  double pool = (double)(x1 + x2) / (double)(n1 + n2);
  double se = sqrt(pool * (1 - pool) * (1 / (double)n1 + 1 / (double)n2));
  if (!(se > 0)) return; /* pooled 0 or 1: both arms identical, nothing to test */
  *z = (p1 - p2) / se;
  *p = erfc(fabs(*z) / sqrt(2.0));
}

uint64_t sy_report_percentile(const uint64_t *sorted, size_t n, double p) {
  if (n == 0) return 0;
  double rank = ceil(p * (double)n);
  size_t i = rank < 1 ? 0 : (size_t)rank - 1;
  return sorted[i < n ? i : n - 1];
}

int sy_report_normalise(const char *s, size_t n, sy_buf *b) {
  int pending_space = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = b->len > 0; /* leading whitespace is dropped */
      continue;
    }
    if (pending_space) {
      int rc = sy_buf_append(b, " ", 1);
      if (rc) return rc;
      pending_space = 0;
    }
    char lc = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    int rc = sy_buf_append(b, &lc, 1);
    if (rc) return rc;
  }
  return 0; /* trailing whitespace never got appended */
}

const char *sy_report_verdict_name(sy_report_verdict v) {
  switch (v) {
  case SY_REPORT_PROMOTE: return "promote";
  case SY_REPORT_ROLL_BACK: return "roll back";
  default: return "keep testing";
  }
}

/* ---- scanning ----------------------------------------------------------- */

typedef struct {
  sy_store *s;
  sy_report *r;
  sy_buf lat[SY_REPORT_MAX_ARMS]; /* uint64_t latencies */
  uint64_t lat_seen[SY_REPORT_MAX_ARMS];
  uint64_t rng;
  sy_buf na, nb; /* normalised answers */
} scan_ctx;

static int arm_slot(sy_report *r, const char *arm) {
  if (!arm) arm = "";
  if (strlen(arm) > SY_REPORT_MAX_NAME) return -1;
  for (size_t i = 0; i < r->n_arms; i++)
    if (strcmp(r->arms[i].name, arm) == 0) return (int)i;
  if (r->n_arms == SY_REPORT_MAX_ARMS) return -1;
  sy_report_arm *a = &r->arms[r->n_arms];
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", arm);
  return (int)r->n_arms++;
}

/* xorshift64*: a fixed seed keeps reports reproducible */
static uint64_t next_rand(scan_ctx *c) {
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return c->rng * 0x2545F4914F6CDD1DULL;
}

static int add_latency(scan_ctx *c, int i, uint64_t v) {
  sy_buf *b = &c->lat[i];
  uint64_t seen = ++c->lat_seen[i];
  if (b->len / sizeof v < SY_REPORT_MAX_LATENCY_SAMPLES) return sy_buf_append(b, &v, sizeof v);
  uint64_t j = next_rand(c) % seen; /* reservoir: keep each value with probability cap/seen */
  if (j < SY_REPORT_MAX_LATENCY_SAMPLES) memcpy(b->data + j * sizeof v, &v, sizeof v);
  return 0;
}

static int is_error(const sy_capture *cap) {
  return cap->http_status >= 400 || (cap->error && cap->error[0]);
}

static int answered(const sy_capture *cap) {
  return cap->http_status >= 200 && cap->http_status < 300 && !(cap->error && cap->error[0]);
}

/* The normalised answer text of a capture into b; 1 if it has one. */
static int answer_text(const sy_capture *cap, sy_buf *b) {
  sy_buf_reset(b);
  if (!answered(cap) || cap->response_body.len == 0) return 0;
  cJSON *doc = cJSON_ParseWithLength((const char *)cap->response_body.data, cap->response_body.len);
  if (!doc) return 0;
  int ok = 0;
  cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "choices"), 0);
  cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
  cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
  cJSON *tools = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
  if (cJSON_IsString(content) && content->valuestring[0]) {
    ok = sy_report_normalise(content->valuestring, strlen(content->valuestring), b) == 0;
  } else if (cJSON_IsArray(tools) && tools->child) {
    /* tool call ids differ between any two answers: compare name(arguments) */
    ok = 1;
    for (cJSON *t = tools->child; t && ok; t = t->next) {
      cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
      cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
      cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
      const char *n = cJSON_IsString(nm) ? nm->valuestring : "";
      const char *a = cJSON_IsString(args) ? args->valuestring : "";
      ok = sy_report_normalise(n, strlen(n), b) == 0 && sy_buf_append(b, "(", 1) == 0 &&
           sy_report_normalise(a, strlen(a), b) == 0 && sy_buf_append(b, ")", 1) == 0;
    }
  }
  cJSON_Delete(doc);
  return ok && b->len > 0;
}

static void count_shadow(scan_ctx *c, sy_report_arm *a, const sy_capture *cap) {
  a->shadows++;
  if (!answered(cap)) {
    a->shadow_errors++;
    return;
  }
  if (!answer_text(cap, &c->na) || cap->parent_id == 0) return;
  sy_capture *parent = NULL;
  if (sy_store_get_capture(c->s, cap->parent_id, &parent) != 0) return; /* retention took it */
  if (answer_text(parent, &c->nb)) {
    a->shadow_compared++;
    if (c->na.len == c->nb.len && memcmp(c->na.data, c->nb.data, c->na.len) == 0)
      a->shadow_agreed++;
  }
  sy_store_capture_free(parent);
}

static void count_feedback(sy_report_arm *a, sy_feedback *const *fb, size_t n) {
  double sum = 0;
  size_t rated = 0;
  for (size_t i = 0; i < n; i++) {
    a->feedback++;
    if (fb[i]->correction && fb[i]->correction[0]) a->corrections++;
    switch (fb[i]->rating) {
    case SWITCHYARD__V1__FEEDBACK__RATING__UP: sum += 1; rated++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__DOWN: sum -= 1; rated++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__SCORE:
      if (isfinite(fb[i]->score)) {
        sum += fb[i]->score;
        rated++;
      }
      break;
    default: break;
    }
  }
  if (rated) {
    a->rated++;
    if (sum / (double)rated > 0) a->approved++;
  }
}

static int scan_cb(void *ctx, const sy_capture *cap, sy_feedback *const *fb, size_t n_fb) {
  scan_ctx *c = ctx;
  sy_report *r = c->r;
  if (!cap->route || strcmp(cap->route, r->route) != 0) return 0;
  r->captures++;
  int i = arm_slot(r, cap->arm);
  if (i < 0) {
    r->other_arm_captures++;
    return 0;
  }
  sy_report_arm *a = &r->arms[i];
  switch (cap->kind) {
  case SWITCHYARD__V1__CAPTURE__KIND__PRIMARY:
    a->requests++;
    if (is_error(cap)) {
      a->errors++;
    } else {
      int rc = add_latency(c, i, cap->latency_total_us);
      if (rc) return rc;
    }
    a->prompt_tokens += cap->prompt_tokens;
    a->completion_tokens += cap->completion_tokens;
    a->total_tokens += cap->total_tokens;
    if (cap->accepted) { /* served by this arm as a cascade's first arm */
      a->cascade_decisions++;
      a->cascade_accepted++;
    }
    count_feedback(a, fb, n_fb);
    break;
  case SWITCHYARD__V1__CAPTURE__KIND__SHADOW: count_shadow(c, a, cap); break;
  case SWITCHYARD__V1__CAPTURE__KIND__CASCADE_ATTEMPT:
    a->cascade_decisions++;
    if (cap->accepted) a->cascade_accepted++;
    break;
  default: break;
  }
  return 0;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

int sy_report_compute(sy_store *s, const char *route, uint64_t from_us, uint64_t to_us,
                      const char *base_arm, sy_report *out) {
  if (!s || !route || !*route || !out) return SY_EINVAL;
  if (strlen(route) > SY_REPORT_MAX_NAME || (base_arm && strlen(base_arm) > SY_REPORT_MAX_NAME))
    return SY_EINVAL;
  if (to_us && from_us >= to_us) return SY_EINVAL;
  memset(out, 0, sizeof *out);
  snprintf(out->route, sizeof out->route, "%s", route);
  out->from_us = from_us;
  out->to_us = to_us;
  if (base_arm && *base_arm) {
    snprintf(out->base_arm, sizeof out->base_arm, "%s", base_arm);
    arm_slot(out, base_arm); /* the base is always listed, first */
  }
  scan_ctx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.r = out;
  c.rng = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < SY_REPORT_MAX_ARMS; i++)
    sy_buf_init(&c.lat[i], (size_t)SY_REPORT_MAX_LATENCY_SAMPLES * sizeof(uint64_t));
  sy_buf_init(&c.na, SY_REPORT_MAX_ANSWER_BYTES);
  sy_buf_init(&c.nb, SY_REPORT_MAX_ANSWER_BYTES);

  sy_store_iter_opts o = {0};
  o.from_id = sy_store_id_from_time_us(from_us);
  o.to_id = to_us ? sy_store_id_from_time_us(to_us) : 0;
  o.flags = SY_ITER_FEEDBACK | SY_ITER_SKIP_CORRUPT;
  int rc = sy_store_iter_captures(s, &o, scan_cb, &c, &out->corrupt);
  for (size_t i = 0; rc == 0 && i < out->n_arms; i++) {
    sy_report_arm *a = &out->arms[i];
    size_t n = c.lat[i].len / sizeof(uint64_t);
    uint64_t *v = (uint64_t *)(void *)c.lat[i].data;
    if (n) qsort(v, n, sizeof *v, cmp_u64);
    a->latency_n = c.lat_seen[i];
    a->latency_exact = c.lat_seen[i] == n;
    a->latency_p50_us = sy_report_percentile(v, n, 0.50);
    a->latency_p99_us = sy_report_percentile(v, n, 0.99);
  }
  for (int i = 0; i < SY_REPORT_MAX_ARMS; i++) sy_buf_free(&c.lat[i]);
  sy_buf_free(&c.na);
  sy_buf_free(&c.nb);
  if (rc) return rc;
  sy_report_finish(out);
  return 0;
}

/* ---- the recommendation ------------------------------------------------- */

static double ratio(uint64_t x, uint64_t n) { return n ? (double)x / (double)n : 0; }

/* The verdict of one candidate against the base (rules 1-5 of report.h). */
static void decide(sy_report_arm *c, const sy_report_arm *b, const char *base_name,
                   size_t n_candidates) {
  double alpha = SY_REPORT_ALPHA / (double)(n_candidates ? n_candidates : 1);
  char alpha_txt[64];
  if (n_candidates > 1)
    snprintf(alpha_txt, sizeof alpha_txt, "%.3g (%.2g / %zu candidates)", alpha, SY_REPORT_ALPHA,
             n_candidates);
  else
    snprintf(alpha_txt, sizeof alpha_txt, "%.2g", alpha);
  c->verdict = SY_REPORT_KEEP_TESTING;
  if (c->requests == 0) {
    snprintf(c->rule, sizeof c->rule, "keep testing: no requests on %s in the window", c->name);
    return;
  }
  if (!b || b->requests == 0) {
    snprintf(c->rule, sizeof c->rule, "keep testing: base arm %s has no requests in the window",
             base_name);
    return;
  }
  if (c->requests >= SY_REPORT_MIN_REQUESTS &&
      c->error_rate > SY_REPORT_ERROR_RATIO * b->error_rate &&
      c->error_rate - b->error_rate >= SY_REPORT_ERROR_MIN_DIFF) {
    c->verdict = SY_REPORT_ROLL_BACK;
    snprintf(c->rule, sizeof c->rule,
             "roll back: %s error rate %.3f > %.3gx %s (base) %.3f (and >= %.3g above it) with "
             ">= %d requests",
             c->name, c->error_rate, SY_REPORT_ERROR_RATIO, base_name, b->error_rate,
             SY_REPORT_ERROR_MIN_DIFF, SY_REPORT_MIN_REQUESTS);
    return;
  }
  if (c->rated < SY_REPORT_MIN_RATED || b->rated < SY_REPORT_MIN_RATED) {
    snprintf(c->rule, sizeof c->rule,
             "keep testing: fewer than %d rated answers per arm (%s %llu, %s %llu)",
             SY_REPORT_MIN_RATED, c->name, (unsigned long long)c->rated, base_name,
             (unsigned long long)b->rated);
    return;
  }
  char cmp[256];
  snprintf(cmp, sizeof cmp, "%s approval %.2f [%.2f,%.2f] vs %s (base) %.2f [%.2f,%.2f]", c->name,
           c->approval, c->approval_lo, c->approval_hi, base_name, b->approval, b->approval_lo,
           b->approval_hi);
  if (c->p_value < alpha) {
    c->verdict = c->approval_diff > 0 ? SY_REPORT_PROMOTE : SY_REPORT_ROLL_BACK;
    snprintf(c->rule, sizeof c->rule, "%s: %s, p=%.2g < %s with >= %d rated answers per arm",
             sy_report_verdict_name(c->verdict), cmp, c->p_value, alpha_txt,
             SY_REPORT_MIN_RATED);
    return;
  }
  snprintf(c->rule, sizeof c->rule, "keep testing: no significant difference: %s, p=%.2g >= %s",
           cmp, c->p_value, alpha_txt);
}

void sy_report_finish(sy_report *r) {
  int base = -1;
  for (size_t i = 0; i < r->n_arms; i++) {
    if (r->base_arm[0] ? strcmp(r->arms[i].name, r->base_arm) == 0
                       : (base < 0 || r->arms[i].requests > r->arms[base].requests))
      base = (int)i;
  }
  if (!r->base_arm[0] && base >= 0)
    snprintf(r->base_arm, sizeof r->base_arm, "%s", r->arms[base].name);
  size_t n_candidates = 0;
  for (size_t i = 0; i < r->n_arms; i++) {
    sy_report_arm *a = &r->arms[i];
    a->is_base = (int)i == base;
    a->error_rate = ratio(a->errors, a->requests);
    a->cascade_acceptance = ratio(a->cascade_accepted, a->cascade_decisions);
    a->shadow_agreement = ratio(a->shadow_agreed, a->shadow_compared);
    a->approval = ratio(a->approved, a->rated);
    sy_report_wilson(a->approved, a->rated, SY_REPORT_Z95, &a->approval_lo, &a->approval_hi);
    if (!a->is_base && a->requests > 0) n_candidates++;
  }
  const sy_report_arm *b = base >= 0 ? &r->arms[base] : NULL;
  int rollback = -1, promote = -1, busiest = -1;
  for (size_t i = 0; i < r->n_arms; i++) {
    sy_report_arm *a = &r->arms[i];
    if (a->is_base) {
      a->verdict = SY_REPORT_KEEP_TESTING;
      snprintf(a->rule, sizeof a->rule, "base arm");
      continue;
    }
    if (b) {
      a->has_comparison = 1;
      a->approval_diff = a->approval - b->approval;
      sy_report_two_prop(a->approved, a->rated, b->approved, b->rated, &a->z, &a->p_value);
    }
    decide(a, b, r->base_arm, n_candidates);
    if (a->verdict == SY_REPORT_ROLL_BACK && rollback < 0) rollback = (int)i;
    if (a->verdict == SY_REPORT_PROMOTE && (promote < 0 || a->approval > r->arms[promote].approval))
      promote = (int)i;
    if (a->requests > 0 && (busiest < 0 || a->requests > r->arms[busiest].requests))
      busiest = (int)i;
  }
  int pick = rollback >= 0 ? rollback : promote >= 0 ? promote : busiest;
  if (pick < 0) {
    r->verdict = SY_REPORT_KEEP_TESTING;
    r->target_arm[0] = '\0';
    snprintf(r->rule, sizeof r->rule, "keep testing: no candidate arm has requests in the window");
    return;
  }
  r->verdict = r->arms[pick].verdict;
  snprintf(r->target_arm, sizeof r->target_arm, "%s", r->arms[pick].name);
  snprintf(r->rule, sizeof r->rule, "%s", r->arms[pick].rule);
}

/* ---- JSON --------------------------------------------------------------- */

static int json_str(sy_buf *b, const char *key, const char *v) {
  int rc = sy_buf_printf(b, "\"%s\":\"", key);
  if (rc == 0) rc = sy_buf_append_json_str(b, v, strlen(v));
  if (rc == 0) rc = sy_buf_append(b, "\"", 1);
  return rc;
}

/* A rate, or null when its denominator is 0. */
static int json_rate(sy_buf *b, const char *key, double v, uint64_t denom) {
  return denom ? sy_buf_printf(b, "\"%s\":%.6g", key, v) : sy_buf_printf(b, "\"%s\":null", key);
}

static int arm_json(const sy_report_arm *a, sy_buf *b) {
  int rc = sy_buf_append(b, "{", 1);
  if (rc == 0) rc = json_str(b, "name", a->name);
  if (rc == 0)
    rc = sy_buf_printf(b, ",\"is_base\":%s,\"requests\":%llu,\"errors\":%llu,",
                       a->is_base ? "true" : "false", (unsigned long long)a->requests,
                       (unsigned long long)a->errors);
  if (rc == 0) rc = json_rate(b, "error_rate", a->error_rate, a->requests);
  if (rc == 0)
    rc = sy_buf_printf(b,
                       ",\"latency_us\":{\"p50\":%llu,\"p99\":%llu,\"n\":%llu,\"exact\":%s},"
                       "\"tokens\":{\"prompt\":%llu,\"completion\":%llu,\"total\":%llu},"
                       "\"cascade\":{\"decisions\":%llu,\"accepted\":%llu,",
                       (unsigned long long)a->latency_p50_us, (unsigned long long)a->latency_p99_us,
                       (unsigned long long)a->latency_n, a->latency_exact ? "true" : "false",
                       (unsigned long long)a->prompt_tokens,
                       (unsigned long long)a->completion_tokens,
                       (unsigned long long)a->total_tokens,
                       (unsigned long long)a->cascade_decisions,
                       (unsigned long long)a->cascade_accepted);
  if (rc == 0) rc = json_rate(b, "acceptance", a->cascade_acceptance, a->cascade_decisions);
  if (rc == 0)
    rc = sy_buf_printf(b, "},\"shadow\":{\"requests\":%llu,\"errors\":%llu,\"compared\":%llu,"
                          "\"agreed\":%llu,",
                       (unsigned long long)a->shadows, (unsigned long long)a->shadow_errors,
                       (unsigned long long)a->shadow_compared, (unsigned long long)a->shadow_agreed);
  if (rc == 0) rc = json_rate(b, "agreement", a->shadow_agreement, a->shadow_compared);
  if (rc == 0)
    rc = sy_buf_printf(b, "},\"feedback\":{\"entries\":%llu,\"corrections\":%llu,\"rated\":%llu,"
                          "\"approved\":%llu,",
                       (unsigned long long)a->feedback, (unsigned long long)a->corrections,
                       (unsigned long long)a->rated, (unsigned long long)a->approved);
  if (rc == 0) rc = json_rate(b, "approval", a->approval, a->rated);
  if (rc == 0)
    rc = a->rated ? sy_buf_printf(b, ",\"ci95\":[%.6g,%.6g]}", a->approval_lo, a->approval_hi)
                  : sy_buf_appends(b, ",\"ci95\":null}");
  if (rc == 0 && a->has_comparison)
    rc = sy_buf_printf(b, ",\"vs_base\":{\"approval_diff\":%.6g,\"z\":%.6g,\"p_value\":%.6g}",
                       a->approval_diff, a->z, a->p_value);
  if (rc == 0) rc = sy_buf_append(b, ",", 1);
  if (rc == 0) rc = json_str(b, "verdict", sy_report_verdict_name(a->verdict));
  if (rc == 0) rc = sy_buf_append(b, ",", 1);
  if (rc == 0) rc = json_str(b, "rule", a->rule);
  if (rc == 0) rc = sy_buf_append(b, "}", 1);
  return rc;
}

int sy_report_to_json(const sy_report *r, sy_buf *b) {
  int rc = sy_buf_append(b, "{", 1);
  if (rc == 0) rc = json_str(b, "route", r->route);
  if (rc == 0)
    rc = sy_buf_printf(b, ",\"from_us\":%llu,\"to_us\":%llu,", (unsigned long long)r->from_us,
                       (unsigned long long)r->to_us);
  if (rc == 0) rc = json_str(b, "base_arm", r->base_arm);
  if (rc == 0)
    rc = sy_buf_printf(b, ",\"captures\":%llu,\"other_arm_captures\":%llu,\"arms\":[",
                       (unsigned long long)r->captures,
                       (unsigned long long)r->other_arm_captures);
  for (size_t i = 0; rc == 0 && i < r->n_arms; i++) {
    if (i) rc = sy_buf_append(b, ",", 1);
    if (rc == 0) rc = arm_json(&r->arms[i], b);
  }
  if (rc == 0) rc = sy_buf_appends(b, "],\"recommendation\":{");
  if (rc == 0) rc = json_str(b, "verdict", sy_report_verdict_name(r->verdict));
  if (rc == 0) rc = sy_buf_append(b, ",", 1);
  if (rc == 0) rc = json_str(b, "arm", r->target_arm);
  if (rc == 0) rc = sy_buf_append(b, ",", 1);
  if (rc == 0) rc = json_str(b, "rule", r->rule);
  if (rc == 0) rc = sy_buf_appends(b, "}}");
  return rc;
}
