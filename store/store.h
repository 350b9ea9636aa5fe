#ifndef SY_STORE_H
#define SY_STORE_H

/* The capture store: one LMDB environment (a folder holding data.mdb and
 * lock.mdb) with named databases
 *
 *   captures      key: capture id (8 bytes big-endian)  value: packed Capture
 *   feedback      key: capture id + feedback id (16 bytes big-endian)
 *                 value: packed Feedback
 *   meta          small raw values (schema version, last ids)
 *   routes, route_history, keys   created empty, reserved for the router and
 *                 admin issues (see proto/switchyard/v1/capture.proto)
 *
 * Big-endian keys make LMDB's byte order the numeric order, so a capture id
 * range is a contiguous key range and "oldest first" is a cursor from the start.
 *
 * Pure C over LMDB: no event loop, no LMDB type in this header. A store handle
 * may be used from several threads. Writes are serialised inside (LMDB allows
 * one writer); the gateway's capture writer thread is meant to be the main
 * writer, feedback and retention take the same lock for short transactions.
 *
 * Capture ids: microseconds since the Unix epoch at commit, bumped so that
 * id = max(now_us, last_id + 1). last_id is recovered at open from the
 * captures database and the meta database (which survives retention deleting
 * everything), so ids are strictly increasing across restarts even if the
 * clock stands still or steps back a little. Since ids are times, a time range
 * [t0, t1) is the id range [t0, t1) (see sy_store_id_from_time_us).
 *
 * Durability (what a commit that returned 0 promises):
 *   SY_DURABLE_SYNC        fsync of data and meta page at each commit. Survives
 *                          a process crash and a power loss. Costs one or two
 *                          fsyncs (1-40 ms) per commit: batch captures.
 *   SY_DURABLE_NOMETASYNC  data is fsynced, the meta page is not. A process
 *                          crash loses nothing; a power loss may lose the last
 *                          committed transactions (the database stays intact,
 *                          it rolls back to the previous synced meta page).
 *                          The next commit or sy_store_sync() makes it durable.
 *   SY_DURABLE_NOSYNC      no fsync at commit; the caller calls sy_store_sync()
 *                          periodically (the capture writer does it every
 *                          sync interval). A process crash loses nothing (the
 *                          OS has the pages); a power loss loses what was
 *                          committed since the last sync, and with a file
 *                          system that reorders writes may even corrupt the
 *                          last transactions. Fastest.
 * In every mode a killed process never leaves a half-written transaction.
 *
 * Map size: LMDB maps the file at a fixed size. The store starts at
 * map_size_initial and doubles it (up to map_size_max) when a write fails with
 * MDB_MAP_FULL: the transaction is aborted, the map grown and the write
 * retried. At map_size_max writes fail with SY_EFULL. Read-only handles adopt
 * a size grown by another process transparently.
 *
 * Compaction: LMDB never shrinks its file; pages freed by retention are
 * reused for new records. To return space to the file system, stop the
 * writer (or not: mdb_copy takes a read snapshot) and run
 *     mdb_copy -c STORE_DIR NEW_DIR
 * which writes a compacted copy (free pages omitted), then swap NEW_DIR in
 * while the gateway is stopped. (mdb_copy is in Debian's lmdb-utils.)
 *
 * Long read transactions stop LMDB from reusing freed pages and make the file
 * grow; every read path here uses short transactions (iteration re-opens its
 * transaction every `batch` records and resumes after the last key).
 */

#include <stddef.h>
#include <stdint.h>

#include "switchyard/v1/capture.pb-c.h"

typedef struct sy_store sy_store;

typedef Switchyard__V1__Capture sy_capture;
typedef Switchyard__V1__Feedback sy_feedback;

/* Named limits on anything read from or written to the store. */
#define SY_STORE_MAX_RECORD_BYTES (16u << 20)  /* one packed capture or feedback */
#define SY_STORE_MAX_BATCH 100000              /* captures per sy_store_put_captures */
#define SY_STORE_MAX_FEEDBACK_PER_CAPTURE 1024 /* entries returned for one capture */
#define SY_STORE_DEFAULT_MAP_INITIAL ((size_t)64 << 20)
#define SY_STORE_DEFAULT_MAP_MAX ((size_t)64 << 30)

typedef enum {
  SY_DURABLE_SYNC = 0,
  SY_DURABLE_NOMETASYNC,
  SY_DURABLE_NOSYNC,
} sy_durability;

typedef struct {
  const char *path;           /* folder; created (with parents) if missing, unless read_only */
  int read_only;              /* MDB_RDONLY: safe next to a live writer in another process */
  sy_durability durability;   /* ignored when read_only */
  size_t map_size_initial;    /* 0 = SY_STORE_DEFAULT_MAP_INITIAL; raised to the file's size */
  size_t map_size_max;        /* 0 = SY_STORE_DEFAULT_MAP_MAX */
  /* Clock in microseconds since the epoch; NULL = CLOCK_REALTIME. Tests use it
   * to freeze time. Called with the write lock held. */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx;
} sy_store_opts;

/* Opens (creating if needed, unless read_only) the store at opts->path. On
 * success *out owns the environment; free with sy_store_close. Returns 0,
 * SY_EINVAL (bad opts), SY_ENOTFOUND (read_only and no store there), SY_EIO
 * (LMDB or file system error, logged) or SY_ENOMEM. On failure nothing is held. */
int sy_store_open(const sy_store_opts *opts, sy_store **out);

/* Closes the environment. No other thread may still be using the handle. In
 * NOSYNC/NOMETASYNC mode it syncs first. NULL is a no-op. */
void sy_store_close(sy_store *s);

/* Flushes committed data to disk (mdb_env_sync with force). For NOSYNC and
 * NOMETASYNC modes this is what makes earlier commits power-loss durable.
 * 0 or SY_EIO. */
int sy_store_sync(sy_store *s);

/* ---- writes ---------------------------------------------------------- */

/* Stores n captures in ONE write transaction (group commit) and assigns their
 * ids, strictly increasing in array order; ids_out (may be NULL) receives them.
 * The records are not modified (their id field is ignored). All or nothing:
 * on failure no record is stored. Returns 0, SY_EINVAL (n == 0, n >
 * SY_STORE_MAX_BATCH, read-only store), SY_ETOOBIG (a record packs to more
 * than SY_STORE_MAX_RECORD_BYTES), SY_EFULL (the map is at map_size_max) or
 * SY_EIO. Durable on return as the durability mode says. */
int sy_store_put_captures(sy_store *s, const sy_capture *const *recs, size_t n,
                          uint64_t *ids_out);

/* Like sy_store_put_captures, but each record keeps the non-zero id it
 * carries (the gateway hands out ids before the response goes out, so the
 * client can be told the capture id; see sy_capture_ids in gateway/). An id
 * that is already stored fails the batch with SY_EEXIST. */
int sy_store_put_captures_keep_ids(sy_store *s, const sy_capture *const *recs, size_t n);

/* Stores one feedback entry for fb->capture_id. Sets fb->id (assigned,
 * time-ordered) and fb->ts_us when it was 0. Returns 0, SY_ENOTFOUND (no such
 * capture), SY_EINVAL, SY_ETOOBIG, SY_EFULL or SY_EIO. In SYNC mode the entry
 * is on disk when this returns 0; in the other modes see above. */
int sy_store_put_feedback(sy_store *s, sy_feedback *fb);

/* Deletes one capture and all its feedback. 0, SY_ENOTFOUND, SY_EIO. */
int sy_store_delete_capture(sy_store *s, uint64_t id);

/* Retention: removes the oldest captures (with their feedback) while a capture
 * is older than max_age_us relative to now_us (0 = no age limit), or while the
 * bytes in use (sy_store_stats.bytes_used) exceed max_bytes (0 = no size
 * limit). Works in transactions of at most max_delete_per_txn captures (0 =
 * 1000) and releases the write lock between them, so the capture writer is
 * never stalled for more than one small transaction. *removed (may be NULL)
 * gets the number of captures deleted, also on failure. 0, SY_EINVAL, SY_EIO. */
int sy_store_retention(sy_store *s, uint64_t max_age_us, uint64_t max_bytes, uint64_t now_us,
                       size_t max_delete_per_txn, uint64_t *removed);

/* ---- reads ----------------------------------------------------------- */

/* Reads one capture. *out is owned by the caller: free with
 * sy_store_capture_free (= switchyard__v1__capture__free_unpacked(*out, NULL)).
 * 0, SY_ENOTFOUND, SY_EIO (unreadable record, logged). */
int sy_store_get_capture(sy_store *s, uint64_t id, sy_capture **out);
void sy_store_capture_free(sy_capture *c);

/* Reads the feedback of one capture, oldest first, at most
 * SY_STORE_MAX_FEEDBACK_PER_CAPTURE entries. *out is an array of *n entries
 * (NULL when none) owned by the caller: free with sy_store_feedback_free.
 * A capture without feedback gives 0 and n = 0 (it does not check that the
 * capture exists). 0, SY_ENOMEM, SY_EIO. */
int sy_store_get_feedback(sy_store *s, uint64_t capture_id, sy_feedback ***out, size_t *n);
void sy_store_feedback_free(sy_feedback **fb, size_t n);

enum {
  SY_ITER_FEEDBACK = 1u << 0,     /* load each capture's feedback for the callback */
  SY_ITER_REVERSE = 1u << 1,      /* newest first (from to_id down to from_id) */
  SY_ITER_SKIP_CORRUPT = 1u << 2, /* skip (and count) unreadable records instead of failing */
};

typedef struct {
  uint64_t from_id; /* first id included (0 = oldest) */
  uint64_t to_id;   /* first id excluded (0 = no end) */
  unsigned flags;   /* SY_ITER_* */
  size_t batch;     /* records per read transaction (0 = 64) */
  uint64_t limit;   /* stop after this many records (0 = all) */
} sy_store_iter_opts;

/* Called once per capture in id order. cap and fb are only valid during the
 * call. Return 0 to continue, > 0 to stop (iteration returns 0), < 0 to stop
 * with that error. No read transaction is open during the call, so it may call
 * other sy_store functions and take as long as it likes. */
typedef int (*sy_store_capture_cb)(void *ctx, const sy_capture *cap, sy_feedback *const *fb,
                                   size_t n_fb);

/* Iterates captures in [from_id, to_id). Each batch of records is read and
 * unpacked in one short read transaction, which is closed before the
 * callbacks run; the next batch resumes after the last key, so records
 * committed meanwhile are seen if they fall in the range. *corrupt (may be
 * NULL) counts records skipped by SY_ITER_SKIP_CORRUPT. Returns 0, the
 * callback's negative code, SY_EIO (unreadable record without
 * SY_ITER_SKIP_CORRUPT) or SY_ENOMEM. */
int sy_store_iter_captures(sy_store *s, const sy_store_iter_opts *o, sy_store_capture_cb cb,
                           void *ctx, uint64_t *corrupt);

typedef struct {
  uint64_t captures;     /* entries in the captures database */
  uint64_t feedback;     /* entries in the feedback database */
  uint64_t oldest_id;    /* 0 when empty */
  uint64_t newest_id;    /* 0 when empty */
  uint64_t bytes_used;   /* pages in use by all databases * page size */
  uint64_t file_bytes;   /* high-water mark of the data file (last page + 1) * page size */
  uint64_t map_size;     /* current map size */
  uint32_t page_size;
} sy_store_stats;

/* Fills *st from one short read transaction. 0 or SY_EIO. */
int sy_store_stats_get(sy_store *s, sy_store_stats *st);

/* ---- ids and time ---------------------------------------------------- */

/* Ids are microseconds since the epoch (plus a bump of at most a few us
 * under heavy load), so these are identities, kept as functions so callers
 * do not depend on it. The id range for times [t0, t1) is
 * [sy_store_id_from_time_us(t0), sy_store_id_from_time_us(t1)). */
uint64_t sy_store_id_from_time_us(uint64_t t_us);
uint64_t sy_store_time_us_from_id(uint64_t id);

/* The last capture id handed out (0 when none). */
uint64_t sy_store_last_id(sy_store *s);

/* ---- internal, for tests --------------------------------------------- */

/* Writes a raw value under a raw key into a named database ("captures",
 * "feedback", "meta", ...). Only for tests that plant corrupt records. */
int sy__store_put_raw(sy_store *s, const char *db, const void *key, size_t klen, const void *val,
                      size_t vlen);

#endif
