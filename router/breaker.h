#ifndef SY_ROUTER_BREAKER_H
#define SY_ROUTER_BREAKER_H

#include <stdint.h>

/* Per-upstream circuit breaker. Pure: the caller passes the time (ms from
 * any monotonic clock), so tests drive it without sleeping.
 *
 *   CLOSED --(N consecutive failures, or failure rate >= R% over >= M results
 *            in the current window)--> OPEN
 *   OPEN --(open_ms elapsed)--> HALF_OPEN: sy_breaker_allow lets ONE probe through
 *   HALF_OPEN --probe success--> CLOSED     --probe failure--> OPEN (cooling restarts)
 *
 * A probe that never reports back (a lost request) would wedge the breaker
 * in HALF_OPEN, so after another open_ms a new probe is allowed.
 * Results that arrive while OPEN (requests started before it opened) are
 * ignored. In HALF_OPEN any result counts as the probe's.
 *
 * The failure-rate window is tumbling: counts reset every window_ms. That
 * is coarser than a sliding window but needs two counters, not a ring.
 *
 * THREAD SAFETY: none, by design. Each worker loop owns its own breaker per
 * upstream (a plain struct, no atomics or locks on the request path). With W
 * workers an upstream therefore needs N failures seen by each worker before
 * all of them skip it; every worker probes on its own. That is the price of
 * lock-free workers and is fine for "stop hammering a dead upstream". */

typedef enum { SY_BREAKER_CLOSED = 0, SY_BREAKER_OPEN, SY_BREAKER_HALF_OPEN } sy_breaker_state;

typedef struct sy_breaker_conf {
  uint32_t consecutive_failures; /* open after this many failures in a row; 0 = rule off */
  uint32_t window_ms;            /* failure-rate window; 0 = rule off */
  uint32_t window_min_results;   /* the rate rule needs at least this many results */
  uint32_t failure_rate_pct;     /* open at or above this rate, 1..100 */
  uint32_t open_ms;              /* cooling period before a probe */
} sy_breaker_conf;

typedef struct sy_breaker {
  sy_breaker_conf conf;
  sy_breaker_state state;
  uint32_t consecutive;
  uint64_t window_start_ms;
  uint32_t window_results, window_failures;
  uint64_t opened_at_ms;
  int probe_in_flight;
  uint64_t probe_at_ms;
  uint64_t times_opened;   /* for metrics */
} sy_breaker;

/* 5 consecutive failures, or >= 50% of >= 20 results in 10 s; open 5 s. */
void sy_breaker_conf_default(sy_breaker_conf *c);
void sy_breaker_init(sy_breaker *b, const sy_breaker_conf *c, uint64_t now_ms);

/* May a request go to this upstream now? 1 yes, 0 skip it (fall back).
 * In HALF_OPEN the first caller gets the probe and later callers are
 * refused until it reports. */
int sy_breaker_allow(sy_breaker *b, uint64_t now_ms);

/* Reports a finished request. `failure` uses sy_retry_classify's notion:
 * connect errors, timeouts, 429 and 5xx are failures; 4xx are not. */
void sy_breaker_record(sy_breaker *b, int failure, uint64_t now_ms);

/* The state at now_ms (OPEN becomes HALF_OPEN once cooled). Does not take a probe. */
sy_breaker_state sy_breaker_state_at(sy_breaker *b, uint64_t now_ms);

/* "closed", "open", "half_open". */
const char *sy_breaker_state_name(sy_breaker_state s);

#endif
