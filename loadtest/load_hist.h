#ifndef SY_LOAD_HIST_H
#define SY_LOAD_HIST_H

/* Log-bucketed latency histogram in the manner of HdrHistogram, for
 * switchyard-load. Values are unsigned integers in microseconds, tracked with
 * two significant decimal digits: values below 256 are counted exactly; above
 * that each power-of-two range is split into 128 equal buckets, so a bucket
 * is never wider than 1/128 (0.78%) of the values in it. The range is
 * 0 .. SY_LOAD_HIST_MAX (one hour); larger values are clamped into the top
 * bucket (and counted in `clamped`), but `max` keeps the true value.
 *
 * The counters live inline (about 26 KiB), so a histogram needs no
 * allocation and no free: declare it, sy_load_hist_init() it, record. Not
 * thread-safe; merge per-thread histograms instead. */

#include <stddef.h>
#include <stdint.h>

#define SY_LOAD_HIST_MAX 3600000000ull /* 1 h in µs */
#define SY_LOAD_HIST_SUB_BITS 8        /* 256 sub-buckets: 2 significant digits */
#define SY_LOAD_HIST_SUB (1u << SY_LOAD_HIST_SUB_BITS)
#define SY_LOAD_HIST_HALF (SY_LOAD_HIST_SUB / 2)
/* Buckets needed to cover SY_LOAD_HIST_MAX (< 2^32): exact 0..255, then
 * 128 per power of two from 2^8 to 2^31. */
#define SY_LOAD_HIST_BUCKETS (SY_LOAD_HIST_SUB + (32 - SY_LOAD_HIST_SUB_BITS) * SY_LOAD_HIST_HALF)

typedef struct sy_load_hist {
  uint64_t count;
  uint64_t clamped; /* values above SY_LOAD_HIST_MAX */
  uint64_t min;     /* UINT64_MAX while empty */
  uint64_t max;
  double sum;       /* of the recorded (unclamped) values, for the mean */
  uint64_t counts[SY_LOAD_HIST_BUCKETS];
} sy_load_hist;

/* Empties the histogram. */
void sy_load_hist_init(sy_load_hist *h);
/* Counts one value. Never fails. */
void sy_load_hist_record(sy_load_hist *h, uint64_t v);
/* Counts `n` occurrences of one value. */
void sy_load_hist_record_n(sy_load_hist *h, uint64_t v, uint64_t n);
/* Adds every count of `src` into `dst`. */
void sy_load_hist_merge(sy_load_hist *dst, const sy_load_hist *src);

/* The value at percentile p (0..100): the highest value equivalent to the
 * bucket holding the ceil(p/100 * count)-th smallest value, clamped to
 * [min, max], so p=0 gives min and p=100 gives max. 0 when empty. */
uint64_t sy_load_hist_percentile(const sy_load_hist *h, double p);
/* Mean of the recorded values, 0 when empty. */
double sy_load_hist_mean(const sy_load_hist *h);

/* Bucket arithmetic, exposed for tests and for iterating. The bucket index
 * of v (v clamped to SY_LOAD_HIST_MAX), and the lowest and highest values
 * that land in bucket i. */
size_t sy_load_hist_index(uint64_t v);
uint64_t sy_load_hist_lowest(size_t i);
uint64_t sy_load_hist_highest(size_t i);

#endif
