#ifndef SY_LOAD_ZIPF_H
#define SY_LOAD_ZIPF_H

/* Deterministic randomness for switchyard-load: a seeded generator
 * (xoshiro256**, seeded through splitmix64) and a Zipf sampler over ranks
 * 1..N by inverse CDF on a precomputed table, so end-user ids follow the
 * skew of production traffic (a few heavy users, a long tail) and the same
 * --seed gives the same sequence of ids. */

#include <stddef.h>
#include <stdint.h>

#define SY_LOAD_ZIPF_MAX_N (1u << 22) /* ids; the table is 8 bytes per id */
#define SY_LOAD_ZIPF_MAX_S 10.0

typedef struct sy_load_rng {
  uint64_t s[4];
} sy_load_rng;

/* Seeds the generator; every seed (0 included) gives a usable state. */
void sy_load_rng_seed(sy_load_rng *r, uint64_t seed);
uint64_t sy_load_rng_next(sy_load_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sy_load_rng_double(sy_load_rng *r);

typedef struct sy_load_zipf {
  double *cdf; /* cdf[k] = P(rank <= k + 1); cdf[n - 1] == 1 */
  size_t n;
  double s;
} sy_load_zipf;

/* Builds the table for ranks 1..n with exponent s (P(k) ~ 1 / k^s).
 * SY_EINVAL when n is 0 or above SY_LOAD_ZIPF_MAX_N, or s is not in
 * [0, SY_LOAD_ZIPF_MAX_S]; SY_ENOMEM. On failure z is left empty. */
int sy_load_zipf_init(sy_load_zipf *z, size_t n, double s);
void sy_load_zipf_free(sy_load_zipf *z);
/* Draws a rank in 1..n. */
size_t sy_load_zipf_sample(const sy_load_zipf *z, sy_load_rng *r);
/* The rank whose CDF interval holds u (u in [0, 1)): the inverse CDF. */
size_t sy_load_zipf_rank(const sy_load_zipf *z, double u);
/* The theoretical probability of rank k (1-based), for tests and reports. */
double sy_load_zipf_prob(const sy_load_zipf *z, size_t k);

/* Index of the first element of the ascending array cum[0..n) that is > x;
 * n - 1 when none is (guards against rounding at the top). n must be > 0.
 * Shared by the Zipf table and weighted request mixes. */
size_t sy_load_cum_search(const double *cum, size_t n, double x);

#endif
