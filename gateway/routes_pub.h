#ifndef SY_ROUTES_PUB_H
#define SY_ROUTES_PUB_H

/* Where the published route table comes from, and how a change becomes
 * durable and live: the bridge between the store's versioned routes
 * document (store/routes.h), the router's parser (router/route.h) and the
 * workers' slot (gw->routes).
 *
 * Precedence (also in the README):
 *   - First start (empty store): the config file's routes are stored as
 *     version 1 (actor "config") and published.
 *   - Restart: when the newest stored version came from the file (action
 *     "config" or "sighup") the file still rules: if its routes differ they
 *     are stored as a new version (actor "config"). When the newest version
 *     came from the admin API, the store wins and the file's routes are
 *     ignored (logged).
 *   - SIGHUP: the file's routes are stored as a new version (actor and
 *     action "sighup") and published, even over admin changes: a SIGHUP is
 *     an explicit operator action, and it stays in the history, so an admin
 *     Rollback undoes it. An unchanged file writes no new version.
 *
 * Every change runs under gw->routes_mu: validate (sy_route_table_parse with
 * the running config's upstreams), write to LMDB (durable), then publish the
 * parsed table in one slot swap. The lock keeps publishes in version order.
 * The published table's version is the store's document version. */

#include <stddef.h>
#include <stdint.h>

#include "gateway/worker.h"
#include "router/route.h"
#include "store/routes.h"

/* Parses a routes document, upstream names checked against `running`. */
int sy_routes_pub_parse(const sy_config *running, const char *json, size_t len, uint64_t version,
                        sy_route_table **out, char *err, size_t errlen);

/* Start-up: applies the precedence above and returns the table to publish
 * first (*out, one reference for the caller). gw->store must be open.
 * 0, or SY_ECONFIG (the routes are invalid; message in err), SY_EIO. */
int sy_routes_pub_load(sy_gateway *gw, sy_route_table **out, char *err, size_t errlen);

/* SIGHUP with the re-read config `fresh` (upstreams still checked against
 * the running config). On success publishes and sets *version and *count.
 * 0 or an SY_* code with a message in err (the running routes stay). */
int sy_routes_pub_reload(sy_gateway *gw, const sy_config *fresh, uint64_t *version, size_t *count,
                         char *err, size_t errlen);

/* One admin change (store/routes.h sy_routes_apply) with validation by the
 * parser, then the publish. fn's document is rejected with SY_ECONFIG and
 * the parser's message when it does not parse. *doc_version and
 * *route_version (may be NULL) as sy_routes_apply. */
int sy_routes_pub_apply(sy_gateway *gw, const sy_routes_put_opts *o, sy_routes_edit_fn fn,
                        void *ctx, uint64_t *doc_version, uint64_t *route_version, char *err,
                        size_t errlen);

#endif
