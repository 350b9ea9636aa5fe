#ifndef SY_STORE_ROUTES_H
#define SY_STORE_ROUTES_H

/* Versioned routes in the store, and the JSON edits behind the admin RPCs.
 *
 * The whole routes array (the JSON text router/route.h describes, as
 * sy_route_table_parse takes it) is ONE document with a version number:
 * 1, 2, 3, ... strictly increasing, never reused. Every write stores the new
 * version in the "route_history" database (key: version, 8 bytes big-endian;
 * value: packed switchyard.v1.RouteVersion = version, previous version, time,
 * actor, reason, summary, names of the routes it changed, full JSON) and moves
 * the pointer in the "routes" database (key "current") to it, in one
 * transaction. A rollback is a new version whose content is an older one's,
 * so the history is append-only and shows the rollback too.
 *
 * The store does not depend on router/: it checks only the shape it needs
 * (an array of objects with unique string "name"s) and leaves the real
 * validation to the caller, who must run sy_route_table_parse on the text
 * BEFORE sy_routes_put (so an invalid document is never stored) and publish
 * the parsed table AFTER sy_routes_put returned 0 (so nothing is served that
 * is not durable).
 *
 * Concurrency: optimistic. A caller reads the current version, computes a new
 * document, and writes it with that version as expected_version; if someone
 * else wrote in between, the put fails with SY_ECONFLICT and nothing changes.
 * sy_routes_apply runs that read-edit-put loop for one edit, retrying when
 * only the document version moved (another route changed meanwhile).
 *
 * Per-route versions: besides the document version, every route has its own
 * counter (1 when created, +1 for each version that changes or deletes it,
 * kept across a delete so a re-created route continues from where it was).
 * This is what the admin API shows as a route's version, and what its
 * expected_version fields check (atomically, inside the write transaction).
 *
 * Durability: sy_routes_put is on disk when it returns 0, whatever the
 * store's durability mode (it forces a sync in the NOSYNC modes).
 *
 * All functions are safe from any thread sharing the store handle. Strings
 * handed out are owned by the caller (free()); strings inside a callback's
 * entry are valid only during the call. */

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SY_ROUTES_ANY_VERSION UINT64_MAX       /* expected_version: do not check */
#define SY_ROUTES_MAX_JSON_BYTES (4u << 20)    /* = router's SY_ROUTE_MAX_JSON_BYTES */
#define SY_ROUTES_MAX_ONE_JSON (256u << 10)    /* one route object (= SY_ROUTE_MAX_JSON_ONE) */
#define SY_ROUTES_MAX_ROUTES 4096              /* routes in one document */
#define SY_ROUTES_MAX_NAME 128                 /* route and arm names */
#define SY_ROUTES_MAX_ARMS 16                  /* = router's SY_ROUTE_MAX_ARMS */
#define SY_ROUTES_MAX_ACTOR 256
#define SY_ROUTES_MAX_REASON 4096
#define SY_ROUTES_MAX_SUMMARY 16384
#define SY_ROUTES_HISTORY_BATCH 16             /* entries per read transaction */

/* The result of an edit (see the JSON edits below). */
typedef struct {
  char *json;    /* the new routes array, compact, NUL-terminated; free() */
  size_t len;
  char *summary; /* free() */
} sy_routes_edit;

/* ---- the stored document ---------------------------------------------- */

/* The current document. *json (NUL-terminated, *len bytes; len may be NULL)
 * is the caller's to free(). 0, SY_ENOTFOUND (nothing stored yet: the
 * caller falls back to the config file's routes), SY_ENOMEM or SY_EIO. */
int sy_routes_get_current(sy_store *s, uint64_t *version, char **json, size_t *len);

/* The document of one version (for rollback). Same returns; SY_ENOTFOUND
 * when the version does not exist. */
int sy_routes_get_version(sy_store *s, uint64_t version, char **json, size_t *len);

/* Stores `json` (NUL-terminated) as the next version, with a history entry,
 * in one durable transaction. expected_version: the current version the
 * caller based its change on; 0 = there must be no document yet (the first
 * write, e.g. seeding from the config file); SY_ROUTES_ANY_VERSION = no
 * check. actor, reason, summary may be NULL (stored as ""). *new_version
 * (may be NULL) gets the version written. The names of the routes that
 * differ from the current document (added, removed or any field changed)
 * are computed here and stored with the entry, for sy_routes_history.
 * Returns 0; SY_ECONFLICT (expected_version is not the current version, or
 * 0 and a document exists); SY_EINVAL (not an array of objects with unique
 * string "name"s of 1..SY_ROUTES_MAX_NAME bytes, or a read-only store);
 * SY_ETOOBIG (json over SY_ROUTES_MAX_JSON_BYTES, more than
 * SY_ROUTES_MAX_ROUTES routes, actor/reason/summary over their limits);
 * SY_EFULL, SY_ENOMEM, SY_EIO. On failure nothing is stored. */
int sy_routes_put(sy_store *s, uint64_t expected_version, const char *json, const char *actor,
                  const char *reason, const char *summary, uint64_t *new_version);

/* The full form of a put. */
typedef struct {
  /* the document version the new text was computed from; 0 = there must be
   * no document yet; SY_ROUTES_ANY_VERSION = no check (ignored by
   * sy_routes_apply, which sets it itself) */
  uint64_t expected_version;
  /* optional per-route precondition, checked in the same transaction:
   * route NULL = none. route_expected: SY_ROUTES_ANY_VERSION = no check;
   * 0 = the route must not exist now (else SY_EEXIST); N = it must exist
   * with route version N (else SY_ECONFLICT, or SY_ENOTFOUND when it does
   * not exist) */
  const char *route;
  uint64_t route_expected;
  const char *actor;   /* may be NULL (stored as "") */
  const char *reason;  /* may be NULL */
  const char *summary; /* may be NULL (sy_routes_apply: the edit's summary) */
  const char *action;  /* may be NULL; e.g. "put", "split", "promote", "rollback" */
} sy_routes_put_opts;

/* sy_routes_put with the per-route precondition and an action. Same returns,
 * plus SY_EEXIST / SY_ENOTFOUND from the precondition. */
int sy_routes_put_ex(sy_store *s, const sy_routes_put_opts *o, const char *json,
                     uint64_t *new_version);

/* Computes the new document from the current one (cur is NULL when there is
 * none; cur_version is then 0). The callback is where the caller validates
 * the result (sy_route_table_parse) and may keep the parsed table: when the
 * put then succeeds, the new document version is exactly cur_version + 1.
 * Return 0 with *out filled, or an SY_* code with a message in err. It may be
 * called again (with a newer document) when the put lost a race. */
typedef int (*sy_routes_edit_fn)(void *ctx, uint64_t cur_version, const char *cur,
                                 sy_routes_edit *out, char *err, size_t errlen);

#define SY_ROUTES_APPLY_RETRIES 8

/* One admin change: reads the current document, calls fn, stores the result
 * with expected_version = the version read plus o's per-route precondition,
 * and retries (at most SY_ROUTES_APPLY_RETRIES times) when only the document
 * version had moved. *new_version and *route_version (either may be NULL)
 * get the document version written and o->route's new route version (0 when
 * o->route is NULL or the route is not in the new document's changes).
 * Returns 0, fn's code, the put's codes (SY_ECONFLICT after the retries),
 * with err (may be NULL) holding a message for fn's and the precondition's
 * failures. */
int sy_routes_apply(sy_store *s, const sy_routes_put_opts *o, sy_routes_edit_fn fn, void *ctx,
                    uint64_t *new_version, uint64_t *route_version, char *err, size_t errlen);

typedef struct {
  uint64_t route_version; /* the route's own counter */
  uint64_t doc_version;   /* the document version that last changed it */
  int exists;             /* 0 after a delete */
} sy_routes_route_state;

/* The state of one route. 0, SY_ENOTFOUND (never stored), SY_EIO. To get
 * who changed it last and why, read the history entry doc_version
 * (sy_routes_history with limit 1 on the route gives the same entry). */
int sy_routes_get_route_state(sy_store *s, const char *route, sy_routes_route_state *st);

/* The document version in which `route` got route version route_version
 * (for GetRoute / Rollback to a given route version): 0, SY_ENOTFOUND. */
int sy_routes_find_route_version(sy_store *s, const char *route, uint64_t route_version,
                                 uint64_t *doc_version);

/* One history entry, as handed to a sy_routes_history callback. */
typedef struct {
  uint64_t version;
  uint64_t previous_version; /* 0 for the first */
  uint64_t ts_us;
  const char *actor;
  const char *reason;
  const char *summary;
  const char *action;        /* "" when none was given */
  const char *const *routes_changed;
  const uint64_t *route_versions; /* route version of each routes_changed entry */
  size_t n_routes_changed;
  const char *json; /* the whole document of this version */
  size_t json_len;
} sy_routes_entry;

/* Return 0 to continue, > 0 to stop (history returns 0), < 0 to stop with
 * that error. Called with no transaction open. */
typedef int (*sy_routes_history_cb)(void *ctx, const sy_routes_entry *e);

/* Calls cb for history entries newest first: all of them (route NULL), or
 * only those that changed `route` (its creation, every change, its
 * deletion). At most `limit` entries (0 = all). Reads in short transactions
 * of SY_ROUTES_HISTORY_BATCH entries. 0 (also when there is no history),
 * the callback's negative code, SY_ENOMEM or SY_EIO. */
int sy_routes_history(sy_store *s, const char *route, size_t limit, sy_routes_history_cb cb,
                      void *ctx);

/* The version to roll back to. route NULL: the one before the current
 * version (current - 1). With a route: the version just before the newest
 * entry that changed that route, i.e. the document in which the route still
 * had its previous definition (or did not exist yet). 0 or SY_ENOTFOUND
 * (no document, no earlier version, or the route was never changed),
 * SY_EIO. */
int sy_routes_previous(sy_store *s, const char *route, uint64_t *version);

/* ---- pure JSON edits (no store) ---------------------------------------- *
 *
 * Each takes the current document (NULL = none yet, same as "[]"), applies
 * one change and gives the new document plus a one-line summary such as
 *   "support-bot: weights base 9000→8000, ft 1000→2000".
 * The result keeps every other route and field as it was (key order kept),
 * and is not validated beyond what the edit needs: run sy_route_table_parse
 * on it before storing. Failures: SY_EINVAL (the document or an argument is
 * malformed), SY_ENOTFOUND (no such route or arm), SY_ETOOBIG, SY_ENOMEM;
 * err (may be NULL) then holds a message naming the field, e.g.
 * "weights: sum to 9000, must be 10000". On failure *out is zeroed. */

/* Frees both strings and zeroes *e. NULL is a no-op. */
void sy_routes_edit_free(sy_routes_edit *e);

/* Create or replace one route (a JSON object with a "name") by name. A new
 * route is appended. Summary "support-bot: created" or "support-bot:
 * replaced (arms, shadow changed)" naming the top-level keys that differ. */
int sy_routes_edit_put(const char *cur, const char *route_json, sy_routes_edit *out, char *err,
                       size_t errlen);

typedef struct {
  const char *arm;
  uint32_t weight_bp;
} sy_routes_weight;

/* Sets arm weights: each listed arm gets its weight, arms not listed get 0.
 * Weights are 0..10000 and must sum to exactly 10000; an arm may be listed
 * once. A weight the document leaves out counts as the router's default
 * (10000 for the lone arm of a route without cascade, else 0) in the summary;
 * every arm gets an explicit "weight_bp" in the result. */
int sy_routes_edit_split(const char *cur, const char *route, const sy_routes_weight *w,
                         size_t n, sy_routes_edit *out, char *err, size_t errlen);

/* Promote: `arm` gets 10000, every other arm 0. Also, so that the arm really
 * takes all traffic: removes the route's cascade (with a cascade the first
 * arm's answers could still escalate to another arm) and a shadow that
 * mirrors to the promoted arm itself. Rules that pin other arms and the
 * fallback chain are kept (they are deliberate policy, not a split); the
 * summary says how many rules still pin other arms. */
int sy_routes_edit_promote(const char *cur, const char *route, const char *arm,
                           sy_routes_edit *out, char *err, size_t errlen);

/* Shadow: arm non-NULL sets {"arm", "rate_bp"} (rate 0..10000; the arm
 * must exist); arm NULL removes the shadow (SY_ENOTFOUND if none). */
int sy_routes_edit_shadow(const char *cur, const char *route, const char *arm, uint32_t rate_bp,
                          sy_routes_edit *out, char *err, size_t errlen);

/* Removes one route. */
int sy_routes_edit_delete(const char *cur, const char *route, sy_routes_edit *out, char *err,
                          size_t errlen);

/* Per-route rollback: gives `route` the definition it has in `old` (the
 * document of version old_version, see sy_routes_previous), or deletes it
 * when `old` does not have it; other routes keep their current definition.
 * SY_ENOTFOUND when neither document has the route. Summary
 * "support-bot: restored from version 4". */
int sy_routes_edit_restore(const char *cur, const char *old, uint64_t old_version,
                           const char *route, sy_routes_edit *out, char *err, size_t errlen);

/* The JSON object of one route in a document (compact, free()), for
 * GetRoute. 0, SY_ENOTFOUND, SY_EINVAL, SY_ENOMEM. */
int sy_routes_find(const char *doc, const char *route, char **route_json);

#endif
