#include "loadtest/load_sched.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>

uint64_t sy_load_sched_intended(uint64_t t0_ns, uint64_t i, double rate) {
  /* from the index, never by accumulating 1/rate, so rounding cannot drift */
  return t0_ns + (uint64_t)floor((double)i * 1e9 / rate);
}

uint64_t sy_load_sched_due(uint64_t t0_ns, double rate, uint64_t now_ns) {
  if (now_ns < t0_ns) return 0;
  uint64_t n = (uint64_t)floor((double)(now_ns - t0_ns) * rate / 1e9) + 1;
  /* settle the floating-point edge against the exact definition */
  while (n > 0 && sy_load_sched_intended(t0_ns, n - 1, rate) > now_ns) n--;
  while (sy_load_sched_intended(t0_ns, n, rate) <= now_ns) n++;
  return n;
}

uint64_t sy_load_sched_latency_us(uint64_t intended_ns, uint64_t done_ns) {
  if (done_ns <= intended_ns) return 0;
  return (done_ns - intended_ns + 500) / 1000;
}

int sy_load_queue_init(sy_load_queue *q, size_t cap) {
  q->ring = NULL;
  q->cap = q->head = q->len = 0;
  if (cap == 0 || cap > SY_LOAD_QUEUE_MAX) return SY_EINVAL;
  q->ring = malloc(cap * sizeof *q->ring);
  if (!q->ring) return SY_ENOMEM;
  q->cap = cap;
  return 0;
}

void sy_load_queue_free(sy_load_queue *q) {
  free(q->ring);
  q->ring = NULL;
  q->cap = q->head = q->len = 0;
}

int sy_load_queue_push(sy_load_queue *q, const sy_load_pending *p) {
  if (q->len == q->cap) return SY_EFULL;
  q->ring[(q->head + q->len) % q->cap] = *p;
  q->len++;
  return 0;
}

int sy_load_queue_pop(sy_load_queue *q, sy_load_pending *out) {
  if (q->len == 0) return SY_ENOTFOUND;
  *out = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->len--;
  return 0;
}
