#include "router/retry.h"

#include <string.h>

#include "common/err.h"

void sy_retry_policy_default(sy_retry_policy *p) {
  p->attempts = 2;
  p->per_try_timeout_ms = 60000;
  p->deadline_ms = 120000;
  p->backoff_base_ms = 100;
  p->backoff_max_ms = 2000;
  p->jitter = 1;
}

sy_retry_action sy_retry_classify(const sy_retry_outcome *o) {
  if (o->committed) return SY_RETRY_FAIL;
  switch (o->kind) {
  case SY_OUTCOME_CONNECT_ERROR:
  case SY_OUTCOME_TIMEOUT:
    return SY_RETRY_RETRY;
  case SY_OUTCOME_HTTP:
    break;
  }
  int s = o->http_status;
  if (s < 100 || s > 599) return SY_RETRY_RETRY; /* garbage status: a broken upstream */
  if (s < 400) return SY_RETRY_SUCCESS;
  if (s == 429) return SY_RETRY_RETRY;
  if (s == 501 || s == 505) return SY_RETRY_FALLBACK; /* this server will never do it */
  if (s >= 500) return SY_RETRY_RETRY;
  return SY_RETRY_FAIL;
}

int64_t sy_retry_backoff_ms(uint32_t retry, const sy_retry_policy *p, int64_t retry_after_ms,
                            int64_t remaining_ms, uint64_t rand) {
  uint64_t cap = p->backoff_base_ms;
  for (uint32_t i = 1; i < retry && cap < p->backoff_max_ms; i++) cap *= 2;
  if (cap > p->backoff_max_ms) cap = p->backoff_max_ms;
  int64_t delay = (int64_t)(p->jitter ? rand % (cap + 1) : cap);
  if (retry_after_ms >= 0 && delay < retry_after_ms) delay = retry_after_ms;
  if (remaining_ms >= 0 && delay > remaining_ms) {
    if (retry_after_ms > remaining_ms) return -1;
    delay = remaining_ms;
  }
  return delay;
}

sy_retry_action sy_retry_next(const sy_retry_policy *p, sy_retry_action verdict,
                              uint32_t tries_on_arm, int64_t wait_ms, int64_t remaining_ms,
                              int has_fallback) {
  if (verdict == SY_RETRY_SUCCESS || verdict == SY_RETRY_FAIL) return verdict;
  if (remaining_ms == 0) return SY_RETRY_FAIL;
  if (verdict == SY_RETRY_RETRY && tries_on_arm < p->attempts && wait_ms >= 0 &&
      (remaining_ms < 0 || wait_ms < remaining_ms))
    return SY_RETRY_RETRY;
  return has_fallback ? SY_RETRY_FALLBACK : SY_RETRY_FAIL;
}

uint32_t sy_retry_try_timeout_ms(const sy_retry_policy *p, int64_t remaining_ms) {
  if (remaining_ms >= 0 && remaining_ms < (int64_t)p->per_try_timeout_ms)
    return (uint32_t)remaining_ms;
  return p->per_try_timeout_ms;
}

/* ---- Retry-After ---------------------------------------------------------------- */

typedef struct cur {
  const char *p, *end;
} cur;

static int eat(cur *c, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
  c->p += n;
  return 1;
}

/* Exactly `min`..`max` digits. */
static int digits(cur *c, int min, int max, int64_t *out) {
  int64_t v = 0;
  int n = 0;
  while (c->p < c->end && n < max && *c->p >= '0' && *c->p <= '9') {
    v = v * 10 + (*c->p - '0');
    c->p++;
    n++;
  }
  if (n < min) return 0;
  *out = v;
  return 1;
}

static const char *const k_months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const k_wkday[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const k_weekday[7] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

static int month(cur *c, int64_t *m) {
  for (int i = 0; i < 12; i++)
    if (eat(c, k_months[i])) {
      *m = i + 1;
      return 1;
    }
  return 0;
}

static int hms(cur *c, int64_t *h, int64_t *mi, int64_t *s) {
  return digits(c, 2, 2, h) && eat(c, ":") && digits(c, 2, 2, mi) && eat(c, ":") &&
         digits(c, 2, 2, s) && *h < 24 && *mi < 60 && *s < 61;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int parse_http_date(cur *c, int64_t *unix_s) {
  int64_t d = 0, m = 0, y = 0, h = 0, mi = 0, s = 0;
  int ok = 0;
  cur save = *c;
  for (int i = 0; i < 7 && !ok; i++) {
    *c = save;
    if (eat(c, k_weekday[i]) && eat(c, ", ")) {
      /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; two-digit years >= 70 are 19xx */
      ok = digits(c, 2, 2, &d) && eat(c, "-") && month(c, &m) && eat(c, "-") &&
           digits(c, 2, 2, &y) && eat(c, " ") && hms(c, &h, &mi, &s) && eat(c, " GMT");
      y += y >= 70 ? 1900 : 2000;
      if (!ok) return 0;
    }
  }
  for (int i = 0; i < 7 && !ok; i++) {
    *c = save;
    if (!eat(c, k_wkday[i])) continue;
    if (eat(c, ", ")) { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
      ok = digits(c, 2, 2, &d) && eat(c, " ") && month(c, &m) && eat(c, " ") &&
           digits(c, 4, 4, &y) && eat(c, " ") && hms(c, &h, &mi, &s) && eat(c, " GMT");
    } else if (eat(c, " ")) { /* asctime: Sun Nov  6 08:49:37 1994 */
      ok = month(c, &m) && eat(c, " ") && (eat(c, " ") ? digits(c, 1, 1, &d) : digits(c, 2, 2, &d)) &&
           eat(c, " ") && hms(c, &h, &mi, &s) && eat(c, " ") && digits(c, 4, 4, &y);
    }
    if (!ok) return 0;
  }
  if (!ok || d < 1 || d > 31) return 0;
  *unix_s = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s;
  return 1;
}

int sy_retry_parse_after(const char *v, size_t len, int64_t now_unix_ms, int64_t *out_ms) {
  cur c = {v, v + len};
  while (c.p < c.end && (*c.p == ' ' || *c.p == '\t')) c.p++;
  while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t')) c.end--;
  if (c.p == c.end) return SY_EINVAL;
  int64_t ms;
  if (*c.p >= '0' && *c.p <= '9') {
    /* Any number of digits; saturate well past the clamp so * 1000 cannot overflow. */
    int64_t sec = 0;
    for (; c.p < c.end && *c.p >= '0' && *c.p <= '9'; c.p++)
      if (sec < SY_RETRY_AFTER_MAX_MS) sec = sec * 10 + (*c.p - '0');
    if (c.p != c.end) return SY_EINVAL;
    ms = sec * 1000;
  } else {
    int64_t at;
    if (!parse_http_date(&c, &at) || c.p != c.end) return SY_EINVAL;
    ms = at * 1000 - now_unix_ms;
    if (ms < 0) ms = 0;
  }
  *out_ms = ms > SY_RETRY_AFTER_MAX_MS ? SY_RETRY_AFTER_MAX_MS : ms;
  return 0;
}

const char *sy_retry_action_name(sy_retry_action a) {
  switch (a) {
  case SY_RETRY_SUCCESS: return "success";
  case SY_RETRY_RETRY: return "retry";
  case SY_RETRY_FALLBACK: return "fallback";
  case SY_RETRY_FAIL: return "fail";
  }
  return "?";
}
