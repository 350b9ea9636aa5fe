#include "loadtest/load_zipf.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void sy_load_rng_seed(sy_load_rng *r, uint64_t seed) {
  /* splitmix64 never yields four zero words, the one state xoshiro cannot leave */
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sy_load_rng_next(sy_load_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

double sy_load_rng_double(sy_load_rng *r) {
  return (double)(sy_load_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

size_t sy_load_cum_search(const double *cum, size_t n, double x) {
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

int sy_load_zipf_init(sy_load_zipf *z, size_t n, double s) {
  z->cdf = NULL;
  z->n = 0;
  z->s = s;
  if (n == 0 || n > SY_LOAD_ZIPF_MAX_N || !(s >= 0 && s <= SY_LOAD_ZIPF_MAX_S)) return SY_EINVAL;
  double *cdf = malloc(n * sizeof *cdf);
  if (!cdf) return SY_ENOMEM;
  double acc = 0;
  for (size_t k = 0; k < n; k++) {
    acc += pow((double)(k + 1), -s);
    cdf[k] = acc;
  }
  for (size_t k = 0; k < n; k++) cdf[k] /= acc;
  cdf[n - 1] = 1.0; /* rounding must not leave a gap at the top */
  z->cdf = cdf;
  z->n = n;
  return 0;
}

void sy_load_zipf_free(sy_load_zipf *z) {
  free(z->cdf);
  z->cdf = NULL;
  z->n = 0;
}

size_t sy_load_zipf_rank(const sy_load_zipf *z, double u) {
  return sy_load_cum_search(z->cdf, z->n, u) + 1;
}

size_t sy_load_zipf_sample(const sy_load_zipf *z, sy_load_rng *r) {
  return sy_load_zipf_rank(z, sy_load_rng_double(r));
}

double sy_load_zipf_prob(const sy_load_zipf *z, size_t k) {
  if (k == 0 || k > z->n) return 0;
  return k == 1 ? z->cdf[0] : z->cdf[k - 1] - z->cdf[k - 2];
}
