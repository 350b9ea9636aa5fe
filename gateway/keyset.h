#ifndef SY_KEYSET_H
#define SY_KEYSET_H

/* The client keys the HTTP (and gRPC inference) front end accepts: the
 * config file's client_keys plus the keys created at run time through the
 * admin API (store/keys.h), minus the revoked ones.
 *
 * Readers (workers, on every request) see an immutable snapshot: an array of
 * pointers to entries. A change (CreateKey, RevokeKey) re-reads the store's
 * active keys and swaps in a new snapshot under a write lock, so the next
 * request after the admin call returned sees the change; the old snapshot
 * is freed once no reader holds it (the lock guarantees that).
 *
 * Entries outlive snapshots: sy_keyset_find returns a `const sy_client_key *`
 * whose name the request path keeps (the capture job stores the key's name
 * without copying it), so every entry ever loaded lives until
 * sy_keyset_free. That is bounded: key names are unique for ever in the
 * store (SY_KEYS_MAX), and an entry is reused when a reload finds the same
 * name again. */

#include <stddef.h>

#include "gateway/config.h"
#include "store/store.h"

typedef struct sy_keyset sy_keyset;

/* A set holding cfg's client_keys (borrowed: cfg must outlive the set).
 * 0 or SY_ENOMEM. */
int sy_keyset_new(const sy_config *cfg, sy_keyset **out);

/* Re-reads the store's active keys and publishes config keys + those.
 * Serialised inside (the last caller publishes the newest state). On
 * failure the published snapshot stays. 0, SY_ENOMEM, SY_EIO. */
int sy_keyset_reload(sy_keyset *ks, sy_store *s);

/* The entry whose SHA-256 equals h, or NULL. Every entry is compared in
 * constant time (no early exit). The result stays valid until
 * sy_keyset_free. Any thread. */
const sy_client_key *sy_keyset_find(sy_keyset *ks, const unsigned char h[32]);

/* 1 when `name` is one of the config file's client keys. */
int sy_keyset_config_has(const sy_keyset *ks, const char *name);

/* Keys in the published snapshot (config + active store keys). */
size_t sy_keyset_count(sy_keyset *ks);

/* Frees the set and every entry. No reader may be using it. NULL is a no-op. */
void sy_keyset_free(sy_keyset *ks);

#endif
