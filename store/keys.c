/* Client API keys in the "keys" database: see store/keys.h. */
#include "store/keys.h"

#include <errno.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/err.h"
#include "common/log.h"
#include "store/store_internal.h"
#include "switchyard/v1/store_records.pb-c.h"

typedef Switchyard__V1__ApiKey api_key;

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int name_ok(const char *s) {
  if (!s) return 0;
  size_t n = strnlen(s, SY_KEYS_MAX_NAME + 1);
  if (n == 0 || n > SY_KEYS_MAX_NAME) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

static int actor_ok(const char *a) { return !a || strnlen(a, SY_KEYS_MAX_ACTOR + 1) <= SY_KEYS_MAX_ACTOR; }

void sy_keys_hash(const char *key, size_t len, unsigned char out[32]) {
  unsigned int n = 0;
  if (EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
    sy_error("store: SHA-256 failed in libcrypto");
    abort();
  }
}

/* Fills out with n base62 characters. Bytes >= 248 are dropped so that
 * every character is equally likely (248 = 4 * 62). */
static int random_base62(char *out, size_t n) {
  unsigned char pool[64];
  size_t have = 0, used = 0;
  for (size_t i = 0; i < n;) {
    if (used == have) {
      ssize_t got;
      do got = getrandom(pool, sizeof pool, 0);
      while (got < 0 && errno == EINTR);
      if (got <= 0) {
        sy_error("store: getrandom: %s", got < 0 ? strerror(errno) : "no data");
        OPENSSL_cleanse(pool, sizeof pool);
        return SY_EIO;
      }
      have = (size_t)got;
      used = 0;
    }
    unsigned char b = pool[used++];
    if (b < 248) out[i++] = base62[b % 62];
  }
  OPENSSL_cleanse(pool, sizeof pool);
  return 0;
}

/* ---- writes ------------------------------------------------------------- */

static int put_key(MDB_txn *txn, MDB_dbi dbi, const api_key *k, unsigned flags) {
  size_t len = protobuf_c_message_get_packed_size(&k->base);
  if (len > SY_STORE_MAX_RECORD_BYTES) return SY_ETOOBIG;
  MDB_val kk = {strlen(k->name), k->name}, d = {len, NULL};
  int rc = mdb_put(txn, dbi, &kk, &d, flags | MDB_RESERVE);
  if (rc == MDB_KEYEXIST) return SY_EEXIST;
  if (rc) return rc;
  protobuf_c_message_pack(&k->base, d.mv_data);
  return 0;
}

static int create_fn(sy_store *s, MDB_txn *txn, void *arg) {
  api_key *k = arg;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_KEYS, &dbi);
  if (rc) return rc;
  MDB_stat st;
  if ((rc = mdb_stat(txn, dbi, &st)) != 0) return rc;
  if (st.ms_entries >= SY_KEYS_MAX) return SY_EFULL;
  k->created_ts_us = sy__store_now_us(s);
  return put_key(txn, dbi, k, MDB_NOOVERWRITE);
}

int sy_keys_create(sy_store *s, const char *name, int capture, const char *actor,
                   char key_out[SY_KEYS_TEXT_LEN + 1]) {
  if (!key_out) return SY_EINVAL;
  memset(key_out, 0, SY_KEYS_TEXT_LEN + 1);
  if (!s || !name_ok(name) || !actor_ok(actor)) return SY_EINVAL;
  char key[SY_KEYS_TEXT_LEN + 1];
  memcpy(key, "sy-", 3);
  int rc = random_base62(key + 3, SY_KEYS_RANDOM_CHARS);
  if (rc) return rc;
  key[SY_KEYS_TEXT_LEN] = '\0';

  unsigned char h[32];
  sy_keys_hash(key, SY_KEYS_TEXT_LEN, h);
  char prefix[SY_KEYS_PREFIX_LEN + 1];
  memcpy(prefix, key, SY_KEYS_PREFIX_LEN);
  prefix[SY_KEYS_PREFIX_LEN] = '\0';
  api_key k = SWITCHYARD__V1__API_KEY__INIT;
  k.name = (char *)name;
  k.sha256.data = h;
  k.sha256.len = sizeof h;
  k.created_by = (char *)(actor ? actor : "");
  k.capture = capture != 0;
  k.prefix = prefix;
  rc = sy__store_write(s, create_fn, &k, 1);
  if (rc == 0) memcpy(key_out, key, sizeof key);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

typedef struct {
  const char *name;
  const char *actor;
} revoke_arg;

static int revoke_fn(sy_store *s, MDB_txn *txn, void *arg) {
  revoke_arg *a = arg;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_KEYS, &dbi);
  if (rc) return rc;
  MDB_val k = {strlen(a->name), (void *)a->name}, d;
  if ((rc = mdb_get(txn, dbi, &k, &d)) != 0) return rc;
  api_key *rec = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
                     ? switchyard__v1__api_key__unpack(NULL, d.mv_size, d.mv_data)
                     : NULL;
  if (!rec) {
    sy_error("store: unreadable key record \"%s\"", a->name);
    return SY_EIO;
  }
  if (!rec->revoked) {
    /* shallow copy: the strings stay owned by the unpacked record */
    api_key upd = *rec;
    upd.revoked = 1;
    upd.revoked_ts_us = sy__store_now_us(s);
    upd.revoked_by = (char *)(a->actor ? a->actor : "");
    rc = put_key(txn, dbi, &upd, 0);
  }
  switchyard__v1__api_key__free_unpacked(rec, NULL);
  return rc;
}

int sy_keys_revoke(sy_store *s, const char *name, const char *actor) {
  if (!s || !name_ok(name) || !actor_ok(actor)) return SY_EINVAL;
  revoke_arg a = {name, actor};
  return sy__store_write(s, revoke_fn, &a, 1);
}

/* ---- reads -------------------------------------------------------------- */

static void fill_info(const api_key *k, sy_key_info *info) {
  memset(info, 0, sizeof *info);
  info->name = k->name;
  if (k->sha256.len == 32) memcpy(info->sha256, k->sha256.data, 32);
  snprintf(info->prefix, sizeof info->prefix, "%s", k->prefix ? k->prefix : "");
  info->capture = k->capture;
  info->revoked = k->revoked;
  info->created_ts_us = k->created_ts_us;
  info->created_by = k->created_by;
  info->revoked_ts_us = k->revoked_ts_us;
  info->revoked_by = k->revoked_by;
}

typedef struct {
  const char *name;
  api_key *rec;
} get_arg;

static int get_fn(sy_store *s, MDB_txn *txn, void *arg) {
  get_arg *a = arg;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_KEYS, &dbi);
  if (rc) return rc;
  MDB_val k = {strlen(a->name), (void *)a->name}, d;
  if ((rc = mdb_get(txn, dbi, &k, &d)) != 0) return rc;
  a->rec = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
               ? switchyard__v1__api_key__unpack(NULL, d.mv_size, d.mv_data)
               : NULL;
  return a->rec ? 0 : SY_EIO;
}

int sy_keys_get(sy_store *s, const char *name, sy_key_info *info, void **handle) {
  if (!s || !info || !handle) return SY_EINVAL;
  *handle = NULL;
  if (!name_ok(name)) return SY_EINVAL;
  get_arg a = {name, NULL};
  int rc = sy__store_read(s, get_fn, &a);
  if (rc) return rc;
  fill_info(a.rec, info);
  *handle = a.rec;
  return 0;
}

void sy_keys_info_free(void *handle) {
  if (handle) switchyard__v1__api_key__free_unpacked(handle, NULL);
}

typedef struct {
  api_key **recs;
  size_t n;
} all_arg;

/* Reads every record in one short transaction (at most SY_KEYS_MAX small
 * records), so the callbacks run with no transaction open. */
static int all_fn(sy_store *s, MDB_txn *txn, void *arg) {
  all_arg *a = arg;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_KEYS, &dbi);
  if (rc == SY_ENOTFOUND) return 0; /* read-only store from an older build: no keys */
  if (rc) return rc;
  MDB_stat st;
  if ((rc = mdb_stat(txn, dbi, &st)) != 0) return rc;
  size_t cap = st.ms_entries < SY_KEYS_MAX ? st.ms_entries : SY_KEYS_MAX;
  if (cap == 0) return 0;
  if (!(a->recs = calloc(cap, sizeof *a->recs))) return SY_ENOMEM;
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0) return rc;
  MDB_val k, d;
  rc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
  while (rc == 0 && a->n < cap) {
    api_key *r = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
                     ? switchyard__v1__api_key__unpack(NULL, d.mv_size, d.mv_data)
                     : NULL;
    if (!r) {
      sy_error("store: unreadable key record (%zu bytes name)", k.mv_size);
      rc = SY_EIO;
      break;
    }
    a->recs[a->n++] = r;
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk(sy_store *s, int only_active, sy_keys_cb cb, void *ctx) {
  if (!s || !cb) return SY_EINVAL;
  all_arg a = {NULL, 0};
  int rc = sy__store_read(s, all_fn, &a);
  for (size_t i = 0; i < a.n; i++) {
    if (rc == 0 && !(only_active && a.recs[i]->revoked)) {
      sy_key_info info;
      fill_info(a.recs[i], &info);
      int r = cb(ctx, &info);
      if (r != 0) rc = r < 0 ? r : 1;
    }
    switchyard__v1__api_key__free_unpacked(a.recs[i], NULL);
  }
  free(a.recs);
  return rc > 0 ? 0 : rc;
}

int sy_keys_list(sy_store *s, sy_keys_cb cb, void *ctx) { return walk(s, 0, cb, ctx); }

int sy_keys_load_all(sy_store *s, sy_keys_cb cb, void *ctx) { return walk(s, 1, cb, ctx); }
