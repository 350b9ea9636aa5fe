#ifndef SY_STORE_INTERNAL_H
#define SY_STORE_INTERNAL_H

/* Internal to store/: lets the other modules of the store (routes.c,
 * keys.c) run their own LMDB transactions on a store handle with the same
 * locking, map growth and durability rules as store.c. Never include this
 * outside store/ (and its tests): LMDB types stay out of public headers. */

#include <lmdb.h>

#include "store/store.h"

/* The named databases a module may ask for. */
typedef enum {
  SY__DB_ROUTES = 0,
  SY__DB_ROUTE_HISTORY,
  SY__DB_KEYS,
} sy__store_db;

/* A transaction body: returns 0 to commit, an MDB code or an SY_* code to
 * abort. A write body may run more than once (the store retries it after
 * growing a full map), so it must not keep state across calls other than
 * what it recomputes. */
typedef int (*sy__store_txn_fn)(sy_store *s, MDB_txn *txn, void *arg);

/* Runs fn in one write transaction under the store's write lock and commits.
 * With `durable` set the commit is flushed to disk before returning even in
 * the NOSYNC / NOMETASYNC modes (admin changes are rare and must survive a
 * power loss once acknowledged). Returns 0, fn's SY_* code, SY_EINVAL
 * (read-only store), SY_EFULL or SY_EIO; MDB codes are mapped to SY_*. */
int sy__store_write(sy_store *s, sy__store_txn_fn fn, void *arg, int durable);

/* Runs fn in one short read transaction (always aborted afterwards).
 * Same return mapping as sy__store_write. */
int sy__store_read(sy_store *s, sy__store_txn_fn fn, void *arg);

/* The handle of a named database, for use inside fn. SY_ENOTFOUND when a
 * read-only store written by an older build does not have it. */
int sy__store_dbi(sy_store *s, sy__store_db db, MDB_dbi *out);

/* The store's clock (the test clock when one was given), microseconds. */
uint64_t sy__store_now_us(sy_store *s);

/* Big-endian 64-bit keys, so LMDB's byte order is numeric order. */
void sy__store_be64_put(unsigned char *p, uint64_t v);
uint64_t sy__store_be64_get(const unsigned char *p);

#endif
