#ifndef SY_STORE_KEYS_H
#define SY_STORE_KEYS_H

/* Client API keys created at run time (CreateKey / RevokeKey / ListKeys).
 *
 * A key is "sy-" followed by 40 base62 characters drawn from getrandom()
 * (about 238 bits). The store keeps, in the "keys" database under the key's
 * name, a packed switchyard.v1.ApiKey: name, SHA-256 of the key text, the
 * first SY_KEYS_PREFIX_LEN characters (to recognise a key in a list),
 * capture flag, who created and revoked it and when. The key text itself is
 * returned once by sy_keys_create and never stored or logged.
 *
 * Names follow the config file's rule for client key names
 * ([A-Za-z0-9_.-], 1..SY_KEYS_MAX_NAME) and are unique for ever: a revoked
 * key keeps its name, because captures and logs refer to keys by name.
 * The gateway checks names against its config's client_keys itself.
 *
 * Writes are durable on return (forced sync in the NOSYNC modes). Safe from
 * any thread sharing the store handle. */

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SY_KEYS_MAX_NAME 63     /* = the config's name limit */
#define SY_KEYS_MAX_ACTOR 256
#define SY_KEYS_MAX 65536       /* keys in the store, revoked ones included */
#define SY_KEYS_RANDOM_CHARS 40
#define SY_KEYS_TEXT_LEN (3 + SY_KEYS_RANDOM_CHARS) /* "sy-" + 40 */
#define SY_KEYS_PREFIX_LEN 7    /* "sy-" + 4 characters shown in lists */

typedef struct {
  const char *name;
  unsigned char sha256[32];
  char prefix[SY_KEYS_PREFIX_LEN + 1];
  int capture;
  int revoked;
  uint64_t created_ts_us;
  const char *created_by;
  uint64_t revoked_ts_us; /* 0 unless revoked */
  const char *revoked_by; /* "" unless revoked */
} sy_key_info;

/* Creates a key named `name`, created by `actor` (may be NULL), with the
 * given capture flag. On success key_out (at least SY_KEYS_TEXT_LEN + 1
 * bytes) holds the NUL-terminated key text: show it to the caller once,
 * then wipe it. 0, SY_EINVAL (bad name, actor over SY_KEYS_MAX_ACTOR,
 * read-only store), SY_EEXIST (the name is taken, revoked keys included),
 * SY_EFULL (SY_KEYS_MAX keys, or the map is full), SY_EIO (no randomness,
 * LMDB error). key_out is zeroed on failure. */
int sy_keys_create(sy_store *s, const char *name, int capture, const char *actor,
                   char key_out[SY_KEYS_TEXT_LEN + 1]);

/* Marks a key revoked (by `actor`, now). Revoking a revoked key is a no-op
 * that returns 0 and keeps the first revocation's time and actor.
 * 0, SY_ENOTFOUND, SY_EINVAL, SY_EIO. */
int sy_keys_revoke(sy_store *s, const char *name, const char *actor);

/* One key by name. Strings in *info point into *handle, which the caller
 * frees with sy_keys_info_free. 0, SY_ENOTFOUND, SY_EINVAL, SY_EIO. */
int sy_keys_get(sy_store *s, const char *name, sy_key_info *info, void **handle);
void sy_keys_info_free(void *handle);

/* Return 0 to continue, > 0 to stop (the call returns 0), < 0 to stop with
 * that error. info is valid only during the call; no transaction is open. */
typedef int (*sy_keys_cb)(void *ctx, const sy_key_info *info);

/* Every key, revoked ones included, in name order (for ListKeys; show the
 * prefix, never more of the hash than you need). 0, the callback's code,
 * SY_ENOMEM, SY_EIO. */
int sy_keys_list(sy_store *s, sy_keys_cb cb, void *ctx);

/* Only the keys that are not revoked, in name order: what the gateway loads
 * into its authentication set at start and after every change. Same
 * returns. */
int sy_keys_load_all(sy_store *s, sy_keys_cb cb, void *ctx);

/* SHA-256 of a key text (what the store keeps), for callers that check a
 * presented key. Aborts if libcrypto fails (no error path: a wrong digest
 * would silently deny or admit). */
void sy_keys_hash(const char *key, size_t len, unsigned char out[32]);

#endif
