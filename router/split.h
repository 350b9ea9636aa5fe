#ifndef SY_ROUTER_SPLIT_H
#define SY_ROUTER_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Sticky consistent-hash A/B assignment.
 *
 * THE BUCKET FUNCTION (stable forever; tests/unit/test_router_split.c pins it
 * with golden vectors, and changing it reshuffles every user of every route):
 *
 *     seed   = XXH3_64bits(salt, salt_len)
 *     bucket = XXH3_64bits_withSeed(key, key_len, seed) % 10000
 *
 * XXH3 is xxHash's 64-bit XXH3 variant; its output has been frozen since
 * xxHash 0.8.0 and does not depend on the CPU or endianness. Salt and key are
 * raw bytes, compared case-sensitively, with no normalisation.
 *
 * Arms hold fixed, ordered ranges of the 10000 buckets: arm i owns
 * [w0 + .. + w(i-1), w0 + .. + wi). So growing the last arm's weight while
 * shrinking the first (the usual two-arm ramp, in either order) only moves
 * buckets from the shrinking arm to the growing one, never back.
 * With three or more arms, moving weight between non-adjacent arms also shifts
 * the arms in between; ramp with two arms, or between neighbours. */

#define SY_SPLIT_BUCKETS 10000u
#define SY_STICKY_MAX_SOURCES 3

typedef enum {
  SY_STICKY_HEADER = 0, /* the x-switchyard-user request header */
  SY_STICKY_USER,       /* the request body's "user" field */
  SY_STICKY_CLIENT_KEY  /* the name of the client key that authenticated */
} sy_sticky_source;

/* The request's candidate sticky keys. NULL or length 0 means absent. */
typedef struct sy_sticky_inputs {
  const char *header;
  size_t header_len;
  const char *user;
  size_t user_len;
  const char *client_key;
  size_t client_key_len;
} sy_sticky_inputs;

/* seed = XXH3_64bits(salt). Route tables precompute it once per route. */
uint64_t sy_split_seed(const void *salt, size_t salt_len);
/* bucket in [0, 10000) for a key under a precomputed seed. */
uint32_t sy_split_bucket(uint64_t seed, const void *key, size_t key_len);
/* Same, from the salt itself (seed computed on the fly). */
uint32_t sy_split_bucket_salted(const void *salt, size_t salt_len, const void *key, size_t key_len);
/* bucket in [0, 10000) from a caller-supplied random number (no key). */
uint32_t sy_split_random_bucket(uint64_t rand);

/* The arm whose range holds `bucket`, for weights in basis points. Returns
 * the arm index, or -1 if no range holds it (weights summing below the
 * bucket, e.g. all zero). */
int sy_split_arm(const uint32_t *weights_bp, size_t n_arms, uint32_t bucket);

/* Picks the first present key in the configured order. On success sets
 * *key and *key_len and returns the sy_sticky_source used; returns -1 (and sets
 * *key to NULL) when none of the configured sources is present. */
int sy_split_pick_key(const sy_sticky_source *order, size_t n_order, const sy_sticky_inputs *in,
                      const char **key, size_t *key_len);

/* "header", "user", "client_key"; "?" for anything else. */
const char *sy_sticky_source_name(sy_sticky_source s);
/* Parses the names above. 0 or SY_EINVAL. */
int sy_sticky_source_parse(const char *s, sy_sticky_source *out);

/* splitmix64 finaliser: derives independent random streams from one u64. */
uint64_t sy_split_mix64(uint64_t x);

#endif
