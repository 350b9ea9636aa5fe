#include "loadtest/load_hist.h"

#include <string.h>

void sy_load_hist_init(sy_load_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

/* floor(log2(v)) for v > 0. */
static unsigned log2_floor(uint64_t v) { return 63u - (unsigned)__builtin_clzll(v); }

size_t sy_load_hist_index(uint64_t v) {
  if (v > SY_LOAD_HIST_MAX) v = SY_LOAD_HIST_MAX;
  if (v < SY_LOAD_HIST_SUB) return (size_t)v;
  /* shift so that the top SUB_BITS-1 bits remain: v >> e is in [128, 255] */
  unsigned e = log2_floor(v) - (SY_LOAD_HIST_SUB_BITS - 1);
  return SY_LOAD_HIST_SUB + (size_t)(e - 1) * SY_LOAD_HIST_HALF +
         (size_t)((v >> e) - SY_LOAD_HIST_HALF);
}

uint64_t sy_load_hist_lowest(size_t i) {
  if (i < SY_LOAD_HIST_SUB) return i;
  size_t k = i - SY_LOAD_HIST_SUB;
  unsigned e = (unsigned)(k / SY_LOAD_HIST_HALF) + 1;
  uint64_t sub = SY_LOAD_HIST_HALF + k % SY_LOAD_HIST_HALF;
  return sub << e;
}

uint64_t sy_load_hist_highest(size_t i) {
  if (i < SY_LOAD_HIST_SUB) return i;
  unsigned e = (unsigned)((i - SY_LOAD_HIST_SUB) / SY_LOAD_HIST_HALF) + 1;
  return sy_load_hist_lowest(i) + (1ull << e) - 1;
}

void sy_load_hist_record_n(sy_load_hist *h, uint64_t v, uint64_t n) {
  if (n == 0) return;
  if (v > SY_LOAD_HIST_MAX) h->clamped += n;
  h->counts[sy_load_hist_index(v)] += n;
  h->count += n;
  h->sum += (double)v * (double)n;
  if (v < h->min) h->min = v;
  if (v > h->max) h->max = v;
}

void sy_load_hist_record(sy_load_hist *h, uint64_t v) { sy_load_hist_record_n(h, v, 1); }

void sy_load_hist_merge(sy_load_hist *dst, const sy_load_hist *src) {
  if (src->count == 0) return;
  for (size_t i = 0; i < SY_LOAD_HIST_BUCKETS; i++) dst->counts[i] += src->counts[i];
  dst->count += src->count;
  dst->clamped += src->clamped;
  dst->sum += src->sum;
  if (src->min < dst->min) dst->min = src->min;
  if (src->max > dst->max) dst->max = src->max;
}

uint64_t sy_load_hist_percentile(const sy_load_hist *h, double p) {
  if (h->count == 0) return 0;
  if (p <= 0) return h->min;
  if (p >= 100) return h->max;
  /* the rank of the value we want, 1-based; the epsilon keeps p50 of 100
   * values at rank 50 despite 0.5 * 100 landing a hair above 50.0 */
  double want = p / 100.0 * (double)h->count - 1e-9;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want) rank++;
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < SY_LOAD_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t v = sy_load_hist_highest(i);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max; /* not reached: the counts add up to count */
}

double sy_load_hist_mean(const sy_load_hist *h) {
  return h->count ? h->sum / (double)h->count : 0.0;
}
