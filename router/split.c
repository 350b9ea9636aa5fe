#include "router/split.h"

#include <string.h>
#include <xxhash.h>

#include "common/err.h"

uint64_t sy_split_seed(const void *salt, size_t salt_len) {
  return XXH3_64bits(salt_len ? salt : "", salt_len);
}

uint32_t sy_split_bucket(uint64_t seed, const void *key, size_t key_len) {
  /* 2^64 mod 10000 = 1616, so the modulo bias is ~1e-16 per bucket: irrelevant. */
  return (uint32_t)(XXH3_64bits_withSeed(key_len ? key : "", key_len, seed) % SY_SPLIT_BUCKETS);
}

uint32_t sy_split_bucket_salted(const void *salt, size_t salt_len, const void *key, size_t key_len) {
  return sy_split_bucket(sy_split_seed(salt, salt_len), key, key_len);
}

uint32_t sy_split_random_bucket(uint64_t rand) {
  /* The caller's rand may be a weak counter-based value: mix it first so
   * consecutive inputs do not land in consecutive buckets. */
  return (uint32_t)(sy_split_mix64(rand) % SY_SPLIT_BUCKETS);
}

int sy_split_arm(const uint32_t *weights_bp, size_t n_arms, uint32_t bucket) {
  uint32_t end = 0;
  for (size_t i = 0; i < n_arms; i++) {
    end += weights_bp[i];
    if (bucket < end) return (int)i;
  }
  return -1;
}

int sy_split_pick_key(const sy_sticky_source *order, size_t n_order, const sy_sticky_inputs *in,
                      const char **key, size_t *key_len) {
  for (size_t i = 0; i < n_order; i++) {
    const char *p = NULL;
    size_t n = 0;
    switch (order[i]) {
    case SY_STICKY_HEADER: p = in->header; n = in->header_len; break;
    case SY_STICKY_USER: p = in->user; n = in->user_len; break;
    case SY_STICKY_CLIENT_KEY: p = in->client_key; n = in->client_key_len; break;
    }
    if (p && n > 0) {
      *key = p;
      *key_len = n;
      return (int)order[i];
    }
  }
  *key = NULL;
  *key_len = 0;
  return -1;
}

const char *sy_sticky_source_name(sy_sticky_source s) {
  switch (s) {
  case SY_STICKY_HEADER: return "header";
  case SY_STICKY_USER: return "user";
  case SY_STICKY_CLIENT_KEY: return "client_key";
  }
  return "?";
}

int sy_sticky_source_parse(const char *s, sy_sticky_source *out) {
  if (!strcmp(s, "header")) *out = SY_STICKY_HEADER;
  else if (!strcmp(s, "user")) *out = SY_STICKY_USER;
  else if (!strcmp(s, "client_key")) *out = SY_STICKY_CLIENT_KEY;
  else return SY_EINVAL;
  return 0;
}

uint64_t sy_split_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
