#ifndef SY_ROUTER_SHADOW_H
#define SY_ROUTER_SHADOW_H

#include <stdatomic.h>
#include <stdint.h>

/* Shadow traffic helpers: the sampling decision, and a process-wide cap on
 * shadow calls in flight (shared by all workers, hence atomics). */

/* 1 if this request is mirrored: (mix(rand) % 10000) < rate_bp. rate_bp
 * 0 never, >= 10000 always. Deterministic in rand. */
int sy_shadow_sample(uint32_t rate_bp, uint64_t rand);

typedef struct sy_shadow_cap {
  atomic_uint in_flight;
  unsigned max;              /* 0 = no shadow call is ever started */
  atomic_uint_fast64_t started;
  atomic_uint_fast64_t skipped;
} sy_shadow_cap;

void sy_shadow_cap_init(sy_shadow_cap *c, unsigned max);
/* Takes a slot: 1 = start the shadow call (release it when done), 0 = over
 * the cap, the call is skipped and counted. Lock-free; any thread. */
int sy_shadow_cap_try_acquire(sy_shadow_cap *c);
/* Gives back a slot taken by a successful try_acquire. */
void sy_shadow_cap_release(sy_shadow_cap *c);
unsigned sy_shadow_cap_in_flight(sy_shadow_cap *c);
uint64_t sy_shadow_cap_started(sy_shadow_cap *c);
uint64_t sy_shadow_cap_skipped(sy_shadow_cap *c);

#endif
