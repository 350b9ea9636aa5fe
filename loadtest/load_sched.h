#ifndef SY_LOAD_SCHED_H
#define SY_LOAD_SCHED_H

/* Open-loop schedule arithmetic for switchyard-load, kept pure (no clock,
 * no event loop) so it can be tested exactly.
 *
 * In open-loop mode request i is due at t0 + i / rate, whatever happened to
 * the requests before it, and its latency runs from that intended time, not
 * from when a connection finally got to send it. A server that stalls for
 * 100 ms therefore shows 100 ms of latency on every request that had to
 * wait, instead of hiding the stall behind a generator that politely slowed
 * down ("coordinated omission"). Requests that find every connection busy
 * wait in a bounded FIFO (sy_load_queue); one that finds it full is an error
 * of kind queue_full. All times are nanoseconds on one monotonic clock. */

#include <stddef.h>
#include <stdint.h>

#define SY_LOAD_QUEUE_MAX (1u << 22) /* largest --queue-max */

/* The intended send time of request i (0-based) at `rate` requests/s. */
uint64_t sy_load_sched_intended(uint64_t t0_ns, uint64_t i, double rate);
/* How many requests (indices 0..n-1) are due at `now_ns`, i.e. the number
 * of i with intended(i) <= now. 0 before t0. */
uint64_t sy_load_sched_due(uint64_t t0_ns, double rate, uint64_t now_ns);
/* Latency in µs (rounded to nearest) of a request intended at `intended_ns`
 * that finished at `done_ns`; 0 if done is not after intended. This is the
 * coordinated-omission-corrected latency when `intended_ns` comes from the
 * schedule, and the plain service time when it is the actual send time. */
uint64_t sy_load_sched_latency_us(uint64_t intended_ns, uint64_t done_ns);

/* One request waiting for a connection: when it was due and what to send
 * (drawn when it was scheduled, so a run is deterministic for a seed). */
typedef struct sy_load_pending {
  uint64_t intended_ns;
  uint32_t item; /* index into the request mix */
  uint32_t user; /* Zipf rank, 0 = no user */
  int measured;  /* 0 during warm-up */
} sy_load_pending;

/* A fixed-capacity FIFO of pending requests. */
typedef struct sy_load_queue {
  sy_load_pending *ring;
  size_t cap, head, len;
} sy_load_queue;

/* Allocates room for `cap` entries (1..SY_LOAD_QUEUE_MAX). 0, SY_EINVAL or
 * SY_ENOMEM (q left empty and safe to free). */
int sy_load_queue_init(sy_load_queue *q, size_t cap);
void sy_load_queue_free(sy_load_queue *q);
/* Appends a copy of *p. 0, or SY_EFULL when `cap` entries are waiting. */
int sy_load_queue_push(sy_load_queue *q, const sy_load_pending *p);
/* Removes the oldest entry into *out. 0, or SY_ENOTFOUND when empty. */
int sy_load_queue_pop(sy_load_queue *q, sy_load_pending *out);

#endif
