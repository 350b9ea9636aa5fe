#include "router/breaker.h"

#include <string.h>

void sy_breaker_conf_default(sy_breaker_conf *c) {
  c->consecutive_failures = 5;
  c->window_ms = 10000;
  c->window_min_results = 20;
  c->failure_rate_pct = 50;
  c->open_ms = 5000;
}

static void reset_window(sy_breaker *b, uint64_t now_ms) {
  b->window_start_ms = now_ms;
  b->window_results = 0;
  b->window_failures = 0;
}

void sy_breaker_init(sy_breaker *b, const sy_breaker_conf *c, uint64_t now_ms) {
  memset(b, 0, sizeof *b);
  b->conf = *c;
  b->state = SY_BREAKER_CLOSED;
  reset_window(b, now_ms);
}

static void trip(sy_breaker *b, uint64_t now_ms) {
  b->state = SY_BREAKER_OPEN;
  b->opened_at_ms = now_ms;
  b->probe_in_flight = 0;
  b->times_opened++;
}

static void close_breaker(sy_breaker *b, uint64_t now_ms) {
  b->state = SY_BREAKER_CLOSED;
  b->consecutive = 0;
  b->probe_in_flight = 0;
  reset_window(b, now_ms);
}

sy_breaker_state sy_breaker_state_at(sy_breaker *b, uint64_t now_ms) {
  if (b->state == SY_BREAKER_OPEN && now_ms - b->opened_at_ms >= b->conf.open_ms) {
    b->state = SY_BREAKER_HALF_OPEN;
    b->probe_in_flight = 0;
  }
  return b->state;
}

int sy_breaker_allow(sy_breaker *b, uint64_t now_ms) {
  switch (sy_breaker_state_at(b, now_ms)) {
  case SY_BREAKER_CLOSED:
    return 1;
  case SY_BREAKER_OPEN:
    return 0;
  case SY_BREAKER_HALF_OPEN:
    if (b->probe_in_flight && now_ms - b->probe_at_ms < b->conf.open_ms) return 0;
    b->probe_in_flight = 1;
    b->probe_at_ms = now_ms;
    return 1;
  }
  return 0;
}

void sy_breaker_record(sy_breaker *b, int failure, uint64_t now_ms) {
  switch (sy_breaker_state_at(b, now_ms)) {
  case SY_BREAKER_OPEN:
    return; /* a straggler from before the trip: says nothing new */
  case SY_BREAKER_HALF_OPEN:
    if (failure) trip(b, now_ms);
    else close_breaker(b, now_ms);
    return;
  case SY_BREAKER_CLOSED:
    break;
  }
  if (b->conf.window_ms && now_ms - b->window_start_ms >= b->conf.window_ms) reset_window(b, now_ms);
  b->window_results++;
  if (failure) {
    b->window_failures++;
    b->consecutive++;
  } else {
    b->consecutive = 0;
  }
  if (b->conf.consecutive_failures && b->consecutive >= b->conf.consecutive_failures) {
    trip(b, now_ms);
    return;
  }
  if (b->conf.window_ms && b->window_results >= b->conf.window_min_results &&
      (uint64_t)b->window_failures * 100 >= (uint64_t)b->conf.failure_rate_pct * b->window_results)
    trip(b, now_ms);
}

const char *sy_breaker_state_name(sy_breaker_state s) {
  switch (s) {
  case SY_BREAKER_CLOSED: return "closed";
  case SY_BREAKER_OPEN: return "open";
  case SY_BREAKER_HALF_OPEN: return "half_open";
  }
  return "?";
}
