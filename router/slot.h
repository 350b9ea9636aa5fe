#ifndef SY_ROUTER_SLOT_H
#define SY_ROUTER_SLOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "router/route.h"

/* Publishing route tables to workers.
 *
 * Loading a pointer and then taking a reference is racy on its own (the
 * publisher may drop the last reference in between), so the slot guards
 * load+ref with a mutex, and workers avoid that mutex on the request path by
 * caching: a sy_route_view holds one reference and the generation it saw;
 * sy_route_view_get costs one atomic load while nothing changed, and takes
 * the mutex only after a publish. A worker's view keeps the old table alive
 * until that worker's next request; in-flight requests that still use it
 * must hold their own reference (sy_route_table_ref). */

typedef struct sy_route_slot {
  pthread_mutex_t mu;
  sy_route_table *cur;       /* guarded by mu */
  atomic_uint_fast64_t gen;  /* bumped after every publish */
} sy_route_slot;

/* Takes over the caller's reference to `initial` (may be NULL). 0 or SY_EIO. */
int sy_route_slot_init(sy_route_slot *s, sy_route_table *initial);
/* Drops the slot's reference. No view may be used afterwards. */
void sy_route_slot_destroy(sy_route_slot *s);
/* Makes `t` current, taking over the caller's reference, and drops the
 * slot's reference to the previous table. Any thread. */
void sy_route_slot_publish(sy_route_slot *s, sy_route_table *t);
/* A new reference to the current table (NULL if none); caller unrefs it. */
sy_route_table *sy_route_slot_get(sy_route_slot *s);

/* One per worker thread; not shared. Zero-initialise, or use SY_ROUTE_VIEW_INIT. */
typedef struct sy_route_view {
  sy_route_table *t;
  uint64_t gen;
} sy_route_view;
#define SY_ROUTE_VIEW_INIT {NULL, UINT64_MAX}

/* The current table as this worker sees it; the view owns the reference, so
 * the pointer stays valid until the next call on this view. */
const sy_route_table *sy_route_view_get(sy_route_view *v, sy_route_slot *s);
/* Drops the view's reference. */
void sy_route_view_release(sy_route_view *v);

#endif
