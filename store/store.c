#include "store/store.h"

#include <errno.h>
#include <lmdb.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_internal.h"

/* Index of each named database in sy_store.dbi; order matches db_names. */
enum { DB_CAPTURES = 0, DB_FEEDBACK, DB_META, DB_ROUTES, DB_ROUTE_HISTORY, DB_KEYS, DB_COUNT };
static const char *const db_names[DB_COUNT] = {"captures", "feedback",      "meta",
                                               "routes",   "route_history", "keys"};

#define SCHEMA_VERSION 1u
#define META_SCHEMA "schema"
#define META_LAST_CAPTURE "last_capture_id"
#define META_LAST_FEEDBACK "last_feedback_id"
#define ITER_DEFAULT_BATCH 64
#define ITER_MAX_BATCH 4096
#define RETENTION_DEFAULT_PER_TXN 1000

struct sy_store {
  MDB_env *env;
  MDB_dbi dbi[DB_COUNT];
  int read_only;
  sy_durability durability;
  size_t map_max;
  /* Serialises our write transactions (LMDB would too, but we also need
   * last_id and the map size to change under one lock). */
  pthread_mutex_t wlock;
  /* Every transaction holds the read side; changing the map size holds the
   * write side, because mdb_env_set_mapsize needs no transaction active in
   * this process. Writer-preferring so a resize is not starved by readers. */
  pthread_rwlock_t rsz;
  uint64_t last_id;    /* under wlock */
  uint64_t last_fb_id; /* under wlock */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx;
};

/* ---- small helpers --------------------------------------------------- */

static void be64_put(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static uint64_t be64_get(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

static uint64_t real_clock_us(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Maps an LMDB or errno result to an SY_* code; SY_* codes pass through. */
static int map_rc(int rc, const char *what) {
  if (rc == 0 || rc <= SY_ENOMEM) return rc;
  switch (rc) {
  case MDB_NOTFOUND: return SY_ENOTFOUND;
  case MDB_MAP_FULL: return SY_EFULL;
  case ENOMEM: return SY_ENOMEM;
  default: break;
  }
  sy_error("store: %s: %s", what, mdb_strerror(rc));
  return SY_EIO;
}

static int mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return SY_EINVAL;
  memcpy(tmp, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] != '/' && tmp[i] != '\0') continue;
    char c = tmp[i];
    tmp[i] = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
      sy_error("store: mkdir %s: %s", tmp, strerror(errno));
      return SY_EIO;
    }
    tmp[i] = c;
  }
  return 0;
}

/* ---- transactions ---------------------------------------------------- */

/* Another process grew the map past ours: adopt its size (no txn may be open). */
static int adopt_map_size(sy_store *s) {
  pthread_rwlock_wrlock(&s->rsz);
  int rc = mdb_env_set_mapsize(s->env, 0);
  pthread_rwlock_unlock(&s->rsz);
  return rc;
}

/* Begins a read transaction holding the resize lock's read side. */
static int rtxn_begin(sy_store *s, MDB_txn **txn) {
  for (int tries = 0;; tries++) {
    pthread_rwlock_rdlock(&s->rsz);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc == 0) return 0;
    pthread_rwlock_unlock(&s->rsz);
    if (rc != MDB_MAP_RESIZED || tries >= 3) return map_rc(rc, "read txn");
    if ((rc = adopt_map_size(s)) != 0) return map_rc(rc, "adopt map size");
  }
}

static void rtxn_end(sy_store *s, MDB_txn *txn) {
  mdb_txn_abort(txn);
  pthread_rwlock_unlock(&s->rsz);
}

/* Doubles the map up to map_max. Caller holds wlock and no transaction. */
static int grow_map(sy_store *s) {
  MDB_envinfo info;
  mdb_env_info(s->env, &info);
  size_t cur = info.me_mapsize;
  if (cur >= s->map_max) {
    sy_warn("store: map is full at its maximum size (%zu bytes)", cur);
    return SY_EFULL;
  }
  size_t next = cur > s->map_max / 2 ? s->map_max : cur * 2;
  pthread_rwlock_wrlock(&s->rsz);
  int rc = mdb_env_set_mapsize(s->env, next);
  pthread_rwlock_unlock(&s->rsz);
  if (rc) return map_rc(rc, "grow map");
  sy_info("store: map grown from %zu to %zu bytes", cur, next);
  return 0;
}

/* A write step: returns 0, an MDB code or an SY_* code. Called again from
 * the start after MDB_MAP_FULL, so it must not keep state across calls. */
typedef int (*write_fn)(sy_store *s, MDB_txn *txn, void *arg);

/* Runs fn in one write transaction and commits; on MDB_MAP_FULL (from a put
 * or the commit) aborts, grows the map and retries. Caller holds wlock. */
static int write_txn(sy_store *s, write_fn fn, void *arg) {
  if (s->read_only) return SY_EINVAL;
  for (int resized = 0;;) {
    MDB_txn *txn;
    pthread_rwlock_rdlock(&s->rsz);
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
      rc = fn(s, txn, arg);
      if (rc == 0)
        rc = mdb_txn_commit(txn); /* frees txn, also on failure */
      else
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&s->rsz);
    if (rc == MDB_MAP_FULL) {
      if ((rc = grow_map(s)) != 0) return rc;
      continue;
    }
    if (rc == MDB_MAP_RESIZED && resized++ < 3) {
      if ((rc = adopt_map_size(s)) != 0) return map_rc(rc, "adopt map size");
      continue;
    }
    return map_rc(rc, "write txn");
  }
}

static int meta_get_u64(sy_store *s, MDB_txn *txn, const char *name, uint64_t *v) {
  MDB_val k = {strlen(name), (void *)name}, d;
  int rc = mdb_get(txn, s->dbi[DB_META], &k, &d);
  if (rc) return rc;
  if (d.mv_size != 8) return MDB_CORRUPTED;
  *v = be64_get(d.mv_data);
  return 0;
}

static int meta_put_u64(sy_store *s, MDB_txn *txn, const char *name, uint64_t v) {
  unsigned char b[8];
  be64_put(b, v);
  MDB_val k = {strlen(name), (void *)name}, d = {8, b};
  return mdb_put(txn, s->dbi[DB_META], &k, &d, 0);
}

/* ---- open / close ---------------------------------------------------- */

static int init_fn(sy_store *s, MDB_txn *txn, void *arg) {
  (void)arg;
  for (int i = 0; i < DB_COUNT; i++) {
    int rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
    if (rc) return rc;
  }
  MDB_val k = {strlen(META_SCHEMA), (void *)META_SCHEMA}, d;
  int rc = mdb_get(txn, s->dbi[DB_META], &k, &d);
  if (rc == MDB_NOTFOUND) {
    unsigned char v[4] = {0, 0, 0, SCHEMA_VERSION};
    d.mv_size = 4;
    d.mv_data = v;
    if ((rc = mdb_put(txn, s->dbi[DB_META], &k, &d, 0)) != 0) return rc;
  } else if (rc) {
    return rc;
  } else if (d.mv_size != 4 || ((unsigned char *)d.mv_data)[3] > SCHEMA_VERSION) {
    sy_error("store: schema version of %s is newer than this build understands", "meta");
    return SY_EINVAL;
  }
  return 0;
}

/* Recovers last ids: the largest of the meta record and the last key, so ids
 * keep increasing after retention emptied the store or a meta write was lost. */
static int load_last_ids(sy_store *s) {
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  uint64_t v = 0;
  s->last_id = meta_get_u64(s, txn, META_LAST_CAPTURE, &v) == 0 ? v : 0;
  s->last_fb_id = meta_get_u64(s, txn, META_LAST_FEEDBACK, &v) == 0 ? v : 0;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_CAPTURES], &cur)) == 0) {
    MDB_val k, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0 && k.mv_size == 8 && be64_get(k.mv_data) > s->last_id)
      s->last_id = be64_get(k.mv_data);
    if (rc == MDB_NOTFOUND) rc = 0;
    mdb_cursor_close(cur);
  }
  rtxn_end(s, txn);
  return map_rc(rc, "load last ids");
}

static int open_dbis_ro(sy_store *s) {
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  for (int i = 0; i < DB_COUNT && rc == 0; i++) {
    rc = mdb_dbi_open(txn, db_names[i], 0, &s->dbi[i]);
    /* reserved databases may be missing from a store written by an older build */
    if (rc == MDB_NOTFOUND && i > DB_META) {
      s->dbi[i] = 0;
      rc = 0;
    }
  }
  /* commit (not abort) keeps the dbi handles valid for the environment */
  if (rc == 0)
    rc = mdb_txn_commit(txn);
  else
    mdb_txn_abort(txn);
  pthread_rwlock_unlock(&s->rsz);
  return rc == MDB_NOTFOUND ? SY_ENOTFOUND : map_rc(rc, "open databases");
}

int sy_store_open(const sy_store_opts *opts, sy_store **out) {
  if (!opts || !opts->path || !out || opts->durability > SY_DURABLE_NOSYNC) return SY_EINVAL;
  char datafile[PATH_MAX];
  int n = snprintf(datafile, sizeof datafile, "%s/data.mdb", opts->path);
  if (n < 0 || (size_t)n >= sizeof datafile) return SY_EINVAL;
  struct stat st;
  int exists = stat(datafile, &st) == 0;
  if (opts->read_only && !exists) return SY_ENOTFOUND;

  size_t map_init = opts->map_size_initial ? opts->map_size_initial : SY_STORE_DEFAULT_MAP_INITIAL;
  size_t map_max = opts->map_size_max ? opts->map_size_max : SY_STORE_DEFAULT_MAP_MAX;
  if (map_init > map_max) return SY_EINVAL;

  int rc;
  sy_store *s = calloc(1, sizeof *s);
  if (!s) return SY_ENOMEM;
  s->read_only = opts->read_only;
  s->durability = opts->durability;
  s->map_max = map_max;
  s->clock_us = opts->clock_us ? opts->clock_us : real_clock_us;
  s->clock_ctx = opts->clock_ctx;

  if (pthread_mutex_init(&s->wlock, NULL) != 0) {
    rc = SY_ENOMEM;
    goto fail_free;
  }
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  rc = pthread_rwlock_init(&s->rsz, &ra);
  pthread_rwlockattr_destroy(&ra);
  if (rc != 0) {
    rc = SY_ENOMEM;
    goto fail_mutex;
  }
  if (!s->read_only && (rc = mkdir_p(opts->path)) != 0) goto fail_rwlock;

  if ((rc = mdb_env_create(&s->env)) != 0) {
    rc = map_rc(rc, "env create");
    goto fail_rwlock;
  }
  mdb_env_set_maxdbs(s->env, DB_COUNT + 2);
  /* A fresh store starts at map_init; an existing one keeps the (possibly
   * grown) size recorded in its file, raised to map_init below. */
  if (!s->read_only && !exists) mdb_env_set_mapsize(s->env, map_init);
  unsigned flags = MDB_NOTLS; /* read txns are not tied to threads */
  if (s->read_only)
    flags |= MDB_RDONLY;
  else if (s->durability == SY_DURABLE_NOMETASYNC)
    flags |= MDB_NOMETASYNC;
  else if (s->durability == SY_DURABLE_NOSYNC)
    flags |= MDB_NOSYNC;
  if ((rc = mdb_env_open(s->env, opts->path, flags, 0644)) != 0) {
    int err = rc;
    rc = (err == ENOENT) ? SY_ENOTFOUND : map_rc(err, "env open");
    if (err == EACCES) sy_error("store: %s: permission denied", opts->path);
    goto fail_env;
  }
  if (!s->read_only) {
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_mapsize < map_init) mdb_env_set_mapsize(s->env, map_init);
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* free slots of killed readers (a kill -9'd export) */
    if (dead) sy_info("store: cleared %d stale reader slot(s)", dead);
    pthread_mutex_lock(&s->wlock);
    rc = write_txn(s, init_fn, NULL);
    pthread_mutex_unlock(&s->wlock);
  } else {
    rc = open_dbis_ro(s);
  }
  if (rc) goto fail_env;
  if ((rc = load_last_ids(s)) != 0) goto fail_env;
  *out = s;
  return 0;

fail_env:
  mdb_env_close(s->env);
fail_rwlock:
  pthread_rwlock_destroy(&s->rsz);
fail_mutex:
  pthread_mutex_destroy(&s->wlock);
fail_free:
  free(s);
  return rc;
}

void sy_store_close(sy_store *s) {
  if (!s) return;
  if (!s->read_only && s->durability != SY_DURABLE_SYNC) mdb_env_sync(s->env, 1);
  mdb_env_close(s->env);
  pthread_rwlock_destroy(&s->rsz);
  pthread_mutex_destroy(&s->wlock);
  free(s);
}

int sy_store_sync(sy_store *s) {
  if (s->read_only) return 0;
  return map_rc(mdb_env_sync(s->env, 1), "sync");
}

uint64_t sy_store_id_from_time_us(uint64_t t_us) { return t_us; }
uint64_t sy_store_time_us_from_id(uint64_t id) { return id; }

uint64_t sy_store_last_id(sy_store *s) {
  pthread_mutex_lock(&s->wlock);
  uint64_t v = s->last_id;
  pthread_mutex_unlock(&s->wlock);
  return v;
}

/* ---- writes ---------------------------------------------------------- */

typedef struct {
  const sy_capture *const *recs;
  size_t n;
  uint64_t *ids;
  uint64_t last;
  int keep_ids;
} put_caps_arg;

static int put_caps_fn(sy_store *s, MDB_txn *txn, void *arg) {
  put_caps_arg *a = arg;
  uint64_t now = s->clock_us(s->clock_ctx);
  uint64_t id = s->last_id, last = s->last_id;
  for (size_t i = 0; i < a->n; i++) {
    sy_capture tmp = *a->recs[i]; /* shallow: only the id differs */
    unsigned flags = MDB_RESERVE;
    if (a->keep_ids) {
      /* ids chosen by the caller (sy_store_next_id): unique, but not
       * necessarily in array order, so no MDB_APPEND */
      id = tmp.id;
      flags |= MDB_NOOVERWRITE;
    } else {
      id = now > id ? now : id + 1;
      tmp.id = id;
      flags |= MDB_APPEND; /* ids only grow */
    }
    size_t len = protobuf_c_message_get_packed_size(&tmp.base);
    if (len > SY_STORE_MAX_RECORD_BYTES) return SY_ETOOBIG;
    unsigned char kb[8];
    be64_put(kb, id);
    MDB_val k = {8, kb}, d = {len, NULL};
    /* pack straight into the page LMDB reserved */
    int rc = mdb_put(txn, s->dbi[DB_CAPTURES], &k, &d, flags);
    if (rc == MDB_KEYEXIST) return SY_EEXIST;
    if (rc) return rc;
    protobuf_c_message_pack(&tmp.base, d.mv_data);
    if (a->ids) a->ids[i] = id;
    if (id > last) last = id;
  }
  a->last = last;
  return meta_put_u64(s, txn, META_LAST_CAPTURE, last);
}

int sy_store_put_captures(sy_store *s, const sy_capture *const *recs, size_t n,
                          uint64_t *ids_out) {
  if (!s || !recs || n == 0 || n > SY_STORE_MAX_BATCH || s->read_only) return SY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!recs[i]) return SY_EINVAL;
  put_caps_arg a = {recs, n, ids_out, 0, 0};
  pthread_mutex_lock(&s->wlock);
  int rc = write_txn(s, put_caps_fn, &a);
  if (rc == 0) s->last_id = a.last;
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

int sy_store_put_captures_keep_ids(sy_store *s, const sy_capture *const *recs, size_t n) {
  if (!s || !recs || n == 0 || n > SY_STORE_MAX_BATCH || s->read_only) return SY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!recs[i] || recs[i]->id == 0) return SY_EINVAL;
  put_caps_arg a = {recs, n, NULL, 0, 1};
  pthread_mutex_lock(&s->wlock);
  int rc = write_txn(s, put_caps_fn, &a);
  if (rc == 0) s->last_id = a.last;
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

static int put_fb_fn(sy_store *s, MDB_txn *txn, void *arg) {
  sy_feedback *fb = arg;
  unsigned char kb[16];
  be64_put(kb, fb->capture_id);
  MDB_val k = {8, kb}, d;
  int rc = mdb_get(txn, s->dbi[DB_CAPTURES], &k, &d);
  if (rc == MDB_NOTFOUND) return SY_ENOTFOUND;
  if (rc) return rc;
  uint64_t now = s->clock_us(s->clock_ctx);
  fb->id = now > s->last_fb_id ? now : s->last_fb_id + 1;
  be64_put(kb + 8, fb->id);
  size_t len = protobuf_c_message_get_packed_size(&fb->base);
  if (len > SY_STORE_MAX_RECORD_BYTES) return SY_ETOOBIG;
  k.mv_size = 16;
  d.mv_size = len;
  d.mv_data = NULL;
  if ((rc = mdb_put(txn, s->dbi[DB_FEEDBACK], &k, &d, MDB_RESERVE)) != 0) return rc;
  protobuf_c_message_pack(&fb->base, d.mv_data);
  return meta_put_u64(s, txn, META_LAST_FEEDBACK, fb->id);
}

int sy_store_put_feedback(sy_store *s, sy_feedback *fb) {
  if (!s || !fb || fb->capture_id == 0 || s->read_only) return SY_EINVAL;
  uint64_t old_id = fb->id, old_ts = fb->ts_us;
  pthread_mutex_lock(&s->wlock);
  if (fb->ts_us == 0) fb->ts_us = s->clock_us(s->clock_ctx);
  int rc = write_txn(s, put_fb_fn, fb);
  if (rc == 0) {
    s->last_fb_id = fb->id;
  } else {
    fb->id = old_id;
    fb->ts_us = old_ts;
  }
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

/* Deletes the feedback entries of one capture (keys prefixed by its id). */
static int del_feedback(sy_store *s, MDB_txn *txn, const unsigned char *idkey) {
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->dbi[DB_FEEDBACK], &cur);
  if (rc) return rc;
  MDB_val k = {8, (void *)idkey}, d;
  rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, idkey, 8) == 0) {
    if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
    /* after a delete the cursor already sits on the next entry; MDB_NEXT
     * returns that one (LMDB's C_DEL handling), or NOTFOUND at the end */
    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static int del_one_fn(sy_store *s, MDB_txn *txn, void *arg) {
  unsigned char kb[8];
  be64_put(kb, *(const uint64_t *)arg);
  MDB_val k = {8, kb};
  int rc = mdb_del(txn, s->dbi[DB_CAPTURES], &k, NULL);
  if (rc) return rc == MDB_NOTFOUND ? SY_ENOTFOUND : rc;
  return del_feedback(s, txn, kb);
}

int sy_store_delete_capture(sy_store *s, uint64_t id) {
  if (!s || s->read_only) return SY_EINVAL;
  pthread_mutex_lock(&s->wlock);
  int rc = write_txn(s, del_one_fn, &id);
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

typedef struct {
  MDB_dbi dbi;
  MDB_val k, d;
} raw_arg;

static int put_raw_fn(sy_store *s, MDB_txn *txn, void *arg) {
  (void)s;
  raw_arg *a = arg;
  MDB_val d = a->d; /* mdb_put may modify it; retries need the original */
  return mdb_put(txn, a->dbi, &a->k, &d, 0);
}

int sy__store_put_raw(sy_store *s, const char *db, const void *key, size_t klen,
                      const void *val, size_t vlen) {
  raw_arg a = {0, {klen, (void *)key}, {vlen, (void *)val}};
  int found = 0;
  for (int i = 0; i < DB_COUNT; i++)
    if (!strcmp(db, db_names[i])) {
      a.dbi = s->dbi[i];
      found = 1;
    }
  if (!found || s->read_only) return SY_EINVAL;
  pthread_mutex_lock(&s->wlock);
  int rc = write_txn(s, put_raw_fn, &a);
  pthread_mutex_unlock(&s->wlock);
  return rc;
}

/* ---- stats and retention --------------------------------------------- */

/* Pages in use by every database (ours and the main one), in bytes. */
static int txn_bytes_used(sy_store *s, MDB_txn *txn, uint64_t *bytes) {
  MDB_stat st;
  uint64_t pages = 0;
  MDB_dbi main_dbi;
  int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
  if (rc) return rc;
  if ((rc = mdb_stat(txn, main_dbi, &st)) != 0) return rc;
  pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  uint32_t psize = st.ms_psize;
  for (int i = 0; i < DB_COUNT; i++) {
    if (i > DB_META && s->dbi[i] == 0) continue;
    if ((rc = mdb_stat(txn, s->dbi[i], &st)) != 0) return rc;
    pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  }
  *bytes = pages * psize;
  return 0;
}

int sy_store_stats_get(sy_store *s, sy_store_stats *out) {
  memset(out, 0, sizeof *out);
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  MDB_stat st;
  MDB_envinfo info;
  MDB_cursor *cur = NULL;
  MDB_val k, d;
  if ((rc = mdb_stat(txn, s->dbi[DB_CAPTURES], &st)) != 0) goto done;
  out->captures = st.ms_entries;
  out->page_size = st.ms_psize;
  if ((rc = mdb_stat(txn, s->dbi[DB_FEEDBACK], &st)) != 0) goto done;
  out->feedback = st.ms_entries;
  if ((rc = txn_bytes_used(s, txn, &out->bytes_used)) != 0) goto done;
  mdb_env_info(s->env, &info);
  out->map_size = info.me_mapsize;
  out->file_bytes = (uint64_t)(info.me_last_pgno + 1) * out->page_size;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_CAPTURES], &cur)) != 0) goto done;
  if ((rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST)) == 0 && k.mv_size == 8)
    out->oldest_id = be64_get(k.mv_data);
  if (rc == 0 && (rc = mdb_cursor_get(cur, &k, &d, MDB_LAST)) == 0 && k.mv_size == 8)
    out->newest_id = be64_get(k.mv_data);
  if (rc == MDB_NOTFOUND) rc = 0;
done:
  if (cur) mdb_cursor_close(cur);
  rtxn_end(s, txn);
  return map_rc(rc, "stats");
}

typedef struct {
  uint64_t cutoff_id; /* delete ids below this (0 = no age rule) */
  uint64_t max_bytes; /* 0 = no size rule */
  size_t per_txn;
  size_t deleted; /* out, this transaction */
} retention_arg;

static int retention_fn(sy_store *s, MDB_txn *txn, void *arg) {
  retention_arg *a = arg;
  a->deleted = 0;
  /* Size rule: estimate how many records to drop from the average record
   * footprint, so one pass does not delete far more than needed. */
  size_t by_size = 0;
  if (a->max_bytes) {
    uint64_t used;
    MDB_stat st;
    int rc = txn_bytes_used(s, txn, &used);
    if (rc == 0) rc = mdb_stat(txn, s->dbi[DB_CAPTURES], &st);
    if (rc) return rc;
    if (used > a->max_bytes && st.ms_entries > 0) {
      uint64_t avg = used / st.ms_entries;
      uint64_t need = (used - a->max_bytes + avg - 1) / (avg ? avg : 1);
      by_size = need > a->per_txn ? a->per_txn : (size_t)(need ? need : 1);
    }
  }
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->dbi[DB_CAPTURES], &cur);
  if (rc) return rc;
  MDB_val k, d;
  rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
  while (rc == 0 && a->deleted < a->per_txn) {
    uint64_t id = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
    int old = a->cutoff_id && id < a->cutoff_id;
    if (!old && a->deleted >= by_size) break;
    unsigned char kb[8];
    be64_put(kb, id);
    if ((rc = del_feedback(s, txn, kb)) != 0) break;
    if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
    a->deleted++;
    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT); /* the entry after the deleted one */
  }
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

int sy_store_retention(sy_store *s, uint64_t max_age_us, uint64_t max_bytes, uint64_t now_us,
                       size_t max_delete_per_txn, uint64_t *removed) {
  if (removed) *removed = 0;
  if (!s || s->read_only) return SY_EINVAL;
  retention_arg a = {0, max_bytes, max_delete_per_txn ? max_delete_per_txn
                                                      : RETENTION_DEFAULT_PER_TXN, 0};
  if (max_age_us && now_us > max_age_us) a.cutoff_id = sy_store_id_from_time_us(now_us - max_age_us);
  if (!a.cutoff_id && !a.max_bytes) return 0;
  for (;;) {
    /* the lock is taken per transaction so the capture writer interleaves */
    pthread_mutex_lock(&s->wlock);
    int rc = write_txn(s, retention_fn, &a);
    pthread_mutex_unlock(&s->wlock);
    if (rc) return rc;
    if (removed) *removed += a.deleted;
    if (a.deleted == 0) return 0;
  }
}

/* ---- reads ----------------------------------------------------------- */

void sy_store_capture_free(sy_capture *c) {
  if (c) switchyard__v1__capture__free_unpacked(c, NULL);
}

void sy_store_feedback_free(sy_feedback **fb, size_t n) {
  if (!fb) return;
  for (size_t i = 0; i < n; i++) switchyard__v1__feedback__free_unpacked(fb[i], NULL);
  free(fb);
}

static int unpack_capture(const MDB_val *d, sy_capture **out) {
  if (d->mv_size > SY_STORE_MAX_RECORD_BYTES) return SY_EIO;
  *out = switchyard__v1__capture__unpack(NULL, d->mv_size, d->mv_data);
  return *out ? 0 : SY_EIO;
}

/* Reads the feedback entries of one capture inside txn. Bad entries count
 * into *corrupt when skip is set, else fail the call with SY_EIO. */
static int load_feedback(sy_store *s, MDB_txn *txn, uint64_t capture_id, int skip,
                         uint64_t *corrupt, sy_feedback ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  sy_buf arr; /* array of sy_feedback pointers */
  sy_buf_init(&arr, SY_STORE_MAX_FEEDBACK_PER_CAPTURE * sizeof(sy_feedback *));
  unsigned char kb[8];
  be64_put(kb, capture_id);
  MDB_cursor *cur;
  int rc = mdb_cursor_open(txn, s->dbi[DB_FEEDBACK], &cur);
  if (rc) return map_rc(rc, "feedback cursor");
  MDB_val k = {8, kb}, d;
  rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, kb, 8) == 0) {
    sy_feedback *fb = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
                          ? switchyard__v1__feedback__unpack(NULL, d.mv_size, d.mv_data)
                          : NULL;
    if (!fb) {
      sy_warn("store: unreadable feedback record for capture %llu",
              (unsigned long long)capture_id);
      if (!skip) {
        rc = SY_EIO;
        break;
      }
      if (corrupt) (*corrupt)++;
    } else if (sy_buf_append(&arr, &fb, sizeof fb) != 0) {
      switchyard__v1__feedback__free_unpacked(fb, NULL);
      rc = MDB_NOTFOUND; /* cap reached: the rest is not returned */
      break;
    }
    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  size_t cnt = arr.len / sizeof(sy_feedback *);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    for (size_t i = 0; i < cnt; i++)
      switchyard__v1__feedback__free_unpacked(((sy_feedback **)(void *)arr.data)[i], NULL);
    sy_buf_free(&arr);
    return map_rc(rc, "read feedback");
  }
  if (cnt == 0) {
    sy_buf_free(&arr);
    return 0;
  }
  *out = (sy_feedback **)(void *)sy_buf_detach(&arr, NULL);
  *n = cnt;
  return 0;
}

int sy_store_get_capture(sy_store *s, uint64_t id, sy_capture **out) {
  *out = NULL;
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  unsigned char kb[8];
  be64_put(kb, id);
  MDB_val k = {8, kb}, d;
  rc = mdb_get(txn, s->dbi[DB_CAPTURES], &k, &d);
  if (rc == 0 && (rc = unpack_capture(&d, out)) != 0)
    sy_warn("store: unreadable capture record %llu", (unsigned long long)id);
  rtxn_end(s, txn);
  return map_rc(rc, "get capture");
}

int sy_store_get_feedback(sy_store *s, uint64_t capture_id, sy_feedback ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  rc = load_feedback(s, txn, capture_id, 0, NULL, out, n);
  rtxn_end(s, txn);
  return rc;
}


typedef struct {
  sy_capture *cap;
  sy_feedback **fb;
  size_t n_fb;
} iter_item;

/* Reads up to `batch` records of [*lo, *hi) in one read transaction into
 * items, and moves *lo (or *hi, reverse) past them. *end is set when the
 * range is exhausted. */
static int iter_fill(sy_store *s, const sy_store_iter_opts *o, size_t batch, uint64_t *lo,
                     uint64_t *hi, iter_item *items, size_t *got, int *end, uint64_t *corrupt) {
  int rev = (o->flags & SY_ITER_REVERSE) != 0, skip = (o->flags & SY_ITER_SKIP_CORRUPT) != 0;
  *got = 0;
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  MDB_cursor *cur;
  if ((rc = mdb_cursor_open(txn, s->dbi[DB_CAPTURES], &cur)) != 0) {
    rtxn_end(s, txn);
    return map_rc(rc, "iter cursor");
  }
  unsigned char kb[8];
  be64_put(kb, rev ? *hi : *lo);
  MDB_val k = {8, kb}, d;
  rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
  if (rev) /* the last key below *hi */
    rc = mdb_cursor_get(cur, &k, &d, rc == 0 ? MDB_PREV : MDB_LAST);
  for (size_t scanned = 0; rc == 0 && scanned < batch; scanned++) {
    uint64_t id = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
    if (rev ? id < *lo : id >= *hi) {
      *end = 1;
      break;
    }
    if (rev)
      *hi = id;
    else if (id == UINT64_MAX)
      *end = 1;
    else
      *lo = id + 1;
    sy_capture *c = NULL;
    if (k.mv_size != 8 || unpack_capture(&d, &c) != 0) {
      sy_warn("store: unreadable capture record %llu", (unsigned long long)id);
      if (!skip) {
        rc = SY_EIO;
        break;
      }
      if (corrupt) (*corrupt)++;
    } else {
      items[*got].cap = c;
      items[*got].fb = NULL;
      items[*got].n_fb = 0;
      (*got)++;
      if (o->flags & SY_ITER_FEEDBACK) {
        rc = load_feedback(s, txn, id, skip, corrupt, &items[*got - 1].fb, &items[*got - 1].n_fb);
        if (rc) break;
      }
    }
    if (*end) break;
    rc = mdb_cursor_get(cur, &k, &d, rev ? MDB_PREV : MDB_NEXT);
  }
  if (rc == MDB_NOTFOUND) {
    *end = 1;
    rc = 0;
  }
  mdb_cursor_close(cur);
  rtxn_end(s, txn);
  return map_rc(rc, "iterate");
}

int sy_store_iter_captures(sy_store *s, const sy_store_iter_opts *o, sy_store_capture_cb cb,
                           void *ctx, uint64_t *corrupt) {
  if (!s || !o || !cb) return SY_EINVAL;
  size_t batch = o->batch ? o->batch : ITER_DEFAULT_BATCH;
  if (batch > ITER_MAX_BATCH) batch = ITER_MAX_BATCH;
  uint64_t lo = o->from_id, hi = o->to_id ? o->to_id : UINT64_MAX, delivered = 0;
  iter_item *items = calloc(batch, sizeof *items);
  if (!items) return SY_ENOMEM;
  int rc = 0, end = lo >= hi;
  while (!end && rc == 0) {
    size_t got = 0;
    rc = iter_fill(s, o, batch, &lo, &hi, items, &got, &end, corrupt);
    /* callbacks run with no transaction open; the items are ours until freed */
    int stop = rc != 0;
    for (size_t i = 0; i < got; i++) {
      if (!stop) {
        int r = cb(ctx, items[i].cap, items[i].fb, items[i].n_fb);
        if (r < 0) rc = r;
        if (r != 0 || (o->limit && ++delivered >= o->limit)) stop = 1;
      }
      sy_store_capture_free(items[i].cap);
      sy_store_feedback_free(items[i].fb, items[i].n_fb);
    }
    if (stop) end = 1;
  }
  free(items);
  return rc;
}

/* ---- internal: transactions for the other store modules --------------- */

static const int internal_db_index[] = {
    [SY__DB_ROUTES] = DB_ROUTES, [SY__DB_ROUTE_HISTORY] = DB_ROUTE_HISTORY, [SY__DB_KEYS] = DB_KEYS};

int sy__store_write(sy_store *s, sy__store_txn_fn fn, void *arg, int durable) {
  if (!s || !fn || s->read_only) return SY_EINVAL;
  pthread_mutex_lock(&s->wlock);
  int rc = write_txn(s, fn, arg);
  pthread_mutex_unlock(&s->wlock);
  if (rc == 0 && durable && s->durability != SY_DURABLE_SYNC)
    rc = map_rc(mdb_env_sync(s->env, 1), "sync");
  return rc;
}

int sy__store_read(sy_store *s, sy__store_txn_fn fn, void *arg) {
  if (!s || !fn) return SY_EINVAL;
  MDB_txn *txn;
  int rc = rtxn_begin(s, &txn);
  if (rc) return rc;
  rc = fn(s, txn, arg);
  rtxn_end(s, txn);
  return map_rc(rc, "read txn");
}

int sy__store_dbi(sy_store *s, sy__store_db db, MDB_dbi *out) {
  if ((size_t)db >= sizeof internal_db_index / sizeof internal_db_index[0]) return SY_EINVAL;
  MDB_dbi d = s->dbi[internal_db_index[db]];
  if (d == 0) return SY_ENOTFOUND; /* read-only store from an older build */
  *out = d;
  return 0;
}

uint64_t sy__store_now_us(sy_store *s) { return s->clock_us(s->clock_ctx); }

void sy__store_be64_put(unsigned char *p, uint64_t v) { be64_put(p, v); }
uint64_t sy__store_be64_get(const unsigned char *p) { return be64_get(p); }
