#include "router/shadow.h"

#include <assert.h>

#include "router/split.h"

int sy_shadow_sample(uint32_t rate_bp, uint64_t rand) {
  if (rate_bp == 0) return 0;
  if (rate_bp >= SY_SPLIT_BUCKETS) return 1;
  return sy_split_mix64(rand) % SY_SPLIT_BUCKETS < rate_bp;
}

void sy_shadow_cap_init(sy_shadow_cap *c, unsigned max) {
  atomic_init(&c->in_flight, 0);
  c->max = max;
  atomic_init(&c->started, 0);
  atomic_init(&c->skipped, 0);
}

int sy_shadow_cap_try_acquire(sy_shadow_cap *c) {
  unsigned cur = atomic_load_explicit(&c->in_flight, memory_order_relaxed);
  do {
    if (cur >= c->max) {
      atomic_fetch_add_explicit(&c->skipped, 1, memory_order_relaxed);
      return 0;
    }
  } while (!atomic_compare_exchange_weak_explicit(&c->in_flight, &cur, cur + 1,
                                                  memory_order_acq_rel, memory_order_relaxed));
  atomic_fetch_add_explicit(&c->started, 1, memory_order_relaxed);
  return 1;
}

void sy_shadow_cap_release(sy_shadow_cap *c) {
  unsigned prev = atomic_fetch_sub_explicit(&c->in_flight, 1, memory_order_acq_rel);
  assert(prev > 0); /* a release without an acquire is a gateway bug */
  (void)prev;
}

unsigned sy_shadow_cap_in_flight(sy_shadow_cap *c) {
  return atomic_load_explicit(&c->in_flight, memory_order_relaxed);
}

uint64_t sy_shadow_cap_started(sy_shadow_cap *c) {
  return atomic_load_explicit(&c->started, memory_order_relaxed);
}

uint64_t sy_shadow_cap_skipped(sy_shadow_cap *c) {
  return atomic_load_explicit(&c->skipped, memory_order_relaxed);
}
