/* The runtime client-key set: config keys + active store keys, published as
 * an immutable snapshot under a rwlock. See keyset.h. */
#include "gateway/keyset.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "store/keys.h"

typedef struct {
  size_t n;
  const sy_client_key **e;
} snapshot;

struct sy_keyset {
  const sy_config *cfg;
  pthread_rwlock_t rw;   /* readers: find; writer: the pointer swap */
  snapshot *cur;         /* guarded by rw */
  pthread_mutex_t mu;    /* serialises reloads; guards the pool */
  sy_client_key **pool;  /* every store entry ever loaded, sorted by name */
  size_t n_pool, cap_pool;
};

static void snapshot_free(snapshot *s) {
  if (!s) return;
  free(s->e);
  free(s);
}

/* The config's keys alone. */
static snapshot *snapshot_config(const sy_config *cfg, size_t extra) {
  snapshot *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->e = calloc(cfg->n_client_keys + extra + 1, sizeof *s->e);
  if (!s->e) {
    free(s);
    return NULL;
  }
  for (size_t i = 0; i < cfg->n_client_keys; i++) s->e[s->n++] = &cfg->client_keys[i];
  return s;
}

int sy_keyset_new(const sy_config *cfg, sy_keyset **out) {
  sy_keyset *ks = calloc(1, sizeof *ks);
  if (!ks) return SY_ENOMEM;
  ks->cfg = cfg;
  if (!(ks->cur = snapshot_config(cfg, 0))) {
    free(ks);
    return SY_ENOMEM;
  }
  pthread_rwlock_init(&ks->rw, NULL);
  pthread_mutex_init(&ks->mu, NULL);
  *out = ks;
  return 0;
}

/* Index of name in the pool, or the insertion point as -(i + 1). */
static long pool_search(const sy_keyset *ks, const char *name) {
  size_t lo = 0, hi = ks->n_pool;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(ks->pool[mid]->name, name);
    if (c == 0) return (long)mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -(long)lo - 1;
}

/* The pool entry for info (created when new). NULL on allocation failure. */
static const sy_client_key *pool_entry(sy_keyset *ks, const sy_key_info *info) {
  long i = pool_search(ks, info->name);
  if (i >= 0) {
    sy_client_key *k = ks->pool[i];
    /* a key's hash never changes (names are never reused); its capture flag neither */
    return k;
  }
  size_t at = (size_t)(-i - 1);
  if (ks->n_pool == ks->cap_pool) {
    size_t nc = ks->cap_pool ? ks->cap_pool * 2 : 16;
    sy_client_key **np = realloc(ks->pool, nc * sizeof *np);
    if (!np) return NULL;
    ks->pool = np;
    ks->cap_pool = nc;
  }
  sy_client_key *k = calloc(1, sizeof *k);
  if (!k || !(k->name = strdup(info->name))) {
    free(k);
    return NULL;
  }
  memcpy(k->sha256, info->sha256, 32);
  k->capture = info->capture;
  memmove(&ks->pool[at + 1], &ks->pool[at], (ks->n_pool - at) * sizeof *ks->pool);
  ks->pool[at] = k;
  ks->n_pool++;
  return k;
}

typedef struct {
  sy_keyset *ks;
  const sy_client_key **e;
  size_t n, cap;
} load_ctx;

static int load_cb(void *vctx, const sy_key_info *info) {
  load_ctx *x = vctx;
  if (x->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 16;
    const sy_client_key **ne = realloc(x->e, nc * sizeof *ne);
    if (!ne) return SY_ENOMEM;
    x->e = ne;
    x->cap = nc;
  }
  const sy_client_key *k = pool_entry(x->ks, info);
  if (!k) return SY_ENOMEM;
  x->e[x->n++] = k;
  return 0;
}

int sy_keyset_reload(sy_keyset *ks, sy_store *s) {
  pthread_mutex_lock(&ks->mu);
  load_ctx x = {.ks = ks};
  int rc = sy_keys_load_all(s, load_cb, &x);
  snapshot *ns = NULL;
  if (!rc && !(ns = snapshot_config(ks->cfg, x.n))) rc = SY_ENOMEM;
  if (!rc) {
    for (size_t i = 0; i < x.n; i++) ns->e[ns->n++] = x.e[i];
    pthread_rwlock_wrlock(&ks->rw);
    snapshot *old = ks->cur;
    ks->cur = ns;
    pthread_rwlock_unlock(&ks->rw);
    snapshot_free(old); /* no reader can hold it: they read under rw */
  } else {
    sy_error("client keys: reloading from the store failed: %s", sy_strerror(rc));
  }
  free(x.e);
  pthread_mutex_unlock(&ks->mu);
  return rc;
}

const sy_client_key *sy_keyset_find(sy_keyset *ks, const unsigned char h[32]) {
  const sy_client_key *found = NULL;
  pthread_rwlock_rdlock(&ks->rw);
  const snapshot *s = ks->cur;
  for (size_t i = 0; i < s->n; i++)
    if (CRYPTO_memcmp(s->e[i]->sha256, h, 32) == 0) found = s->e[i];
  pthread_rwlock_unlock(&ks->rw);
  return found;
}

int sy_keyset_config_has(const sy_keyset *ks, const char *name) {
  for (size_t i = 0; i < ks->cfg->n_client_keys; i++)
    if (strcmp(ks->cfg->client_keys[i].name, name) == 0) return 1;
  return 0;
}

size_t sy_keyset_count(sy_keyset *ks) {
  pthread_rwlock_rdlock(&ks->rw);
  size_t n = ks->cur->n;
  pthread_rwlock_unlock(&ks->rw);
  return n;
}

void sy_keyset_free(sy_keyset *ks) {
  if (!ks) return;
  snapshot_free(ks->cur);
  for (size_t i = 0; i < ks->n_pool; i++) {
    free(ks->pool[i]->name);
    free(ks->pool[i]);
  }
  free(ks->pool);
  pthread_rwlock_destroy(&ks->rw);
  pthread_mutex_destroy(&ks->mu);
  free(ks);
}
