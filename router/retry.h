#ifndef SY_ROUTER_RETRY_H
#define SY_ROUTER_RETRY_H

#include <stddef.h>
#include <stdint.h>

/* Retry and fallback policy: pure functions, the gateway supplies clock and
 * randomness. Times are milliseconds; a remaining deadline < 0 means "no
 * deadline". The gateway's loop, per try:
 *
 *   v = sy_retry_classify(&outcome);
 *   if v is SUCCESS or FAIL: done (answer / pass the error on)
 *   wait = sy_retry_backoff_ms(tries_on_arm, policy, retry_after_ms, remaining, rand)
 *   switch (sy_retry_next(policy, v, tries_on_arm, wait, remaining, has_next_arm)):
 *     RETRY: sleep wait, try the same arm again
 *     FALLBACK: next arm of the decision's fallback chain (tries_on_arm = 0), at once
 *     FAIL: answer with the last error
 */

#define SY_RETRY_MAX_ATTEMPTS 10
#define SY_RETRY_MAX_MS 3600000u        /* any single configured time */
#define SY_RETRY_AFTER_MAX_MS 86400000  /* Retry-After values are clamped to a day */

typedef struct sy_retry_policy {
  uint32_t attempts;           /* tries per arm, the first included: 1..SY_RETRY_MAX_ATTEMPTS */
  uint32_t per_try_timeout_ms; /* 1..SY_RETRY_MAX_MS */
  uint32_t deadline_ms;        /* whole request, all tries and fallbacks; 0 = none */
  uint32_t backoff_base_ms;    /* first retry waits up to this */
  uint32_t backoff_max_ms;     /* >= base */
  int jitter;                  /* 1 = full jitter: uniform in [0, exponential cap] */
} sy_retry_policy;

/* attempts 2, per try 60 s, deadline 120 s, backoff 100 ms .. 2 s, jitter on. */
void sy_retry_policy_default(sy_retry_policy *p);

typedef enum {
  SY_OUTCOME_CONNECT_ERROR = 0, /* refused, DNS, TLS handshake, reset before a response */
  SY_OUTCOME_TIMEOUT,           /* per-try timeout or upstream stall */
  SY_OUTCOME_HTTP               /* the upstream answered with http_status */
} sy_outcome_kind;

typedef struct sy_retry_outcome {
  sy_outcome_kind kind;
  int http_status;  /* SY_OUTCOME_HTTP only */
  int committed;    /* bytes of this answer already reached the client (a stream) */
} sy_retry_outcome;

typedef enum {
  SY_RETRY_SUCCESS = 0, /* status < 400: hand it to the client */
  SY_RETRY_RETRY,       /* transient: retry this arm, or fall back when tries run out */
  SY_RETRY_FALLBACK,    /* this arm cannot do it (501, 505): go to the next arm */
  SY_RETRY_FAIL         /* give the client this error */
} sy_retry_action;

/* Connect errors, timeouts, 429 and 5xx are RETRY; 501/505 FALLBACK; other
 * 4xx (the request itself is wrong) FAIL; < 400 SUCCESS. A committed outcome
 * is FAIL whatever it was: once stream bytes reached the client there is no
 * silent switch (the gateway ends the stream with an error event). */
sy_retry_action sy_retry_classify(const sy_retry_outcome *o);

/* Wait before retry number `retry` (1 = the first retry) of the same arm:
 *   cap   = min(backoff_max, backoff_base * 2^(retry-1))
 *   delay = jitter ? rand % (cap + 1) : cap
 *   delay = max(delay, retry_after_ms)        Retry-After is never undercut
 *   delay = min(delay, remaining_ms)          when there is a deadline
 * retry_after_ms < 0 means no Retry-After. Returns -1 when honouring
 * Retry-After would run past the remaining deadline (fall back instead). */
int64_t sy_retry_backoff_ms(uint32_t retry, const sy_retry_policy *p, int64_t retry_after_ms,
                            int64_t remaining_ms, uint64_t rand);

/* Turns classify's verdict into the action: RETRY needs tries_on_arm <
 * attempts, wait_ms >= 0 and time left after the wait; otherwise a RETRY or
 * FALLBACK verdict falls back if has_fallback and the deadline has not
 * passed (remaining_ms != 0); otherwise FAIL. SUCCESS/FAIL pass through. */
sy_retry_action sy_retry_next(const sy_retry_policy *p, sy_retry_action verdict,
                              uint32_t tries_on_arm, int64_t wait_ms, int64_t remaining_ms,
                              int has_fallback);

/* Timeout for the next try: per_try_timeout_ms, cut to the remaining deadline. */
uint32_t sy_retry_try_timeout_ms(const sy_retry_policy *p, int64_t remaining_ms);

/* Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", or the obsolete RFC 850 and
 * asctime forms), given the current time as Unix ms. Sets *out_ms to the
 * wait (0 for a date in the past, clamped to SY_RETRY_AFTER_MAX_MS).
 * Surrounding spaces/tabs are ignored. 0, or SY_EINVAL for anything else. */
int sy_retry_parse_after(const char *v, size_t len, int64_t now_unix_ms, int64_t *out_ms);

/* "success", "retry", "fallback", "fail". */
const char *sy_retry_action_name(sy_retry_action a);

#endif
