/* The stored half of store/routes.h: versioned routes documents in the
 * "routes" (pointer to the current version) and "route_history" (every
 * version) databases. */
#include "store/routes.h"

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "store/routes_internal.h"
#include "store/store_internal.h"
#include "switchyard/v1/store_records.pb-c.h"

typedef Switchyard__V1__RouteVersion route_rec;

#define CURRENT_KEY "current"
#define PUT_RETRIES 8 /* SY_ROUTES_ANY_VERSION puts that lost a race re-diff and retry */

/* ---- reading ------------------------------------------------------------ */

static int read_pointer(sy_store *s, MDB_txn *txn, uint64_t *version) {
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_ROUTES, &dbi);
  if (rc) return rc;
  MDB_val k = {strlen(CURRENT_KEY), (void *)CURRENT_KEY}, d;
  if ((rc = mdb_get(txn, dbi, &k, &d)) != 0) return rc;
  if (d.mv_size != 8) return MDB_CORRUPTED;
  *version = sy__store_be64_get(d.mv_data);
  return 0;
}

static int read_entry(sy_store *s, MDB_txn *txn, uint64_t version, route_rec **out) {
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_ROUTE_HISTORY, &dbi);
  if (rc) return rc;
  unsigned char kb[8];
  sy__store_be64_put(kb, version);
  MDB_val k = {8, kb}, d;
  if ((rc = mdb_get(txn, dbi, &k, &d)) != 0) return rc;
  *out = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
             ? switchyard__v1__route_version__unpack(NULL, d.mv_size, d.mv_data)
             : NULL;
  if (!*out) {
    sy_error("store: unreadable route history entry %llu", (unsigned long long)version);
    return SY_EIO;
  }
  return 0;
}

typedef struct {
  uint64_t want;     /* 0 = the current version */
  uint64_t version;  /* out */
  route_rec *rv; /* out */
} get_arg;

static int get_fn(sy_store *s, MDB_txn *txn, void *arg) {
  get_arg *a = arg;
  a->version = a->want;
  if (a->want == 0) {
    int rc = read_pointer(s, txn, &a->version);
    if (rc) return rc;
  }
  return read_entry(s, txn, a->version, &a->rv);
}

static int get_doc(sy_store *s, uint64_t want, uint64_t *version, char **json, size_t *len) {
  if (!s || !json) return SY_EINVAL;
  *json = NULL;
  if (len) *len = 0;
  get_arg a = {want, 0, NULL};
  int rc = sy__store_read(s, get_fn, &a);
  if (rc) return rc;
  const char *txt = a.rv->routes_json ? a.rv->routes_json : "";
  size_t n = strlen(txt);
  *json = malloc(n + 1);
  if (!*json) {
    switchyard__v1__route_version__free_unpacked(a.rv, NULL);
    return SY_ENOMEM;
  }
  memcpy(*json, txt, n + 1);
  if (len) *len = n;
  if (version) *version = a.version;
  switchyard__v1__route_version__free_unpacked(a.rv, NULL);
  return 0;
}

int sy_routes_get_current(sy_store *s, uint64_t *version, char **json, size_t *len) {
  return get_doc(s, 0, version, json, len);
}

int sy_routes_get_version(sy_store *s, uint64_t version, char **json, size_t *len) {
  if (version == 0) return SY_ENOTFOUND;
  return get_doc(s, version, NULL, json, len);
}

/* ---- writing ------------------------------------------------------------ */

/* Names of the routes that differ between two parsed documents (either may
 * be NULL = empty), in name order, and whether each exists in `neu`.
 * *names and *exists are the caller's: free() the arrays only (the strings
 * point into the documents). */
static int diff_docs(const cJSON *old, const cJSON *neu, const char ***names, int **exists,
                     size_t *n) {
  *names = NULL;
  *exists = NULL;
  *n = 0;
  sy__routes_named *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  int rc = old ? sy__routes_sorted(old, &a, &na) : 0;
  if (rc == 0 && neu) rc = sy__routes_sorted(neu, &b, &nb);
  const char **out = NULL;
  int *ex = NULL;
  if (rc == 0 && na + nb) {
    out = calloc(na + nb, sizeof *out);
    ex = calloc(na + nb, sizeof *ex);
    if (!out || !ex) rc = SY_ENOMEM;
  }
  size_t i = 0, j = 0, k = 0;
  while (rc == 0 && (i < na || j < nb)) {
    int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].name, b[j].name);
    if (c < 0) {
      ex[k] = 0;
      out[k++] = a[i++].name; /* removed */
    } else if (c > 0) {
      ex[k] = 1;
      out[k++] = b[j++].name; /* added */
    } else {
      if (!cJSON_Compare(a[i].item, b[j].item, 1)) {
        ex[k] = 1;
        out[k++] = b[j].name;
      }
      i++;
      j++;
    }
  }
  free(a);
  free(b);
  if (rc) {
    free(out);
    free(ex);
    return rc;
  }
  *names = out;
  *exists = ex;
  *n = k;
  return 0;
}

/* ---- the per-route index: "route:<name>" -> rv(8) doc(8) exists(1) ------- */

#define ROUTE_KEY_PREFIX "route:"
#define ROUTE_VAL_LEN 17

static size_t route_key(char *buf, size_t n, const char *name) {
  int len = snprintf(buf, n, ROUTE_KEY_PREFIX "%s", name);
  return len < 0 || (size_t)len >= n ? 0 : (size_t)len;
}

static int read_route_state(MDB_txn *txn, MDB_dbi dbi, const char *name,
                            sy_routes_route_state *st) {
  char kb[sizeof ROUTE_KEY_PREFIX + SY_ROUTES_MAX_NAME];
  size_t kl = route_key(kb, sizeof kb, name);
  if (!kl) return SY_ENOTFOUND; /* longer than any stored name */
  MDB_val k = {kl, kb}, d;
  int rc = mdb_get(txn, dbi, &k, &d);
  if (rc) return rc;
  if (d.mv_size != ROUTE_VAL_LEN) return MDB_CORRUPTED;
  const unsigned char *p = d.mv_data;
  st->route_version = sy__store_be64_get(p);
  st->doc_version = sy__store_be64_get(p + 8);
  st->exists = p[16] != 0;
  return 0;
}

static int write_route_state(MDB_txn *txn, MDB_dbi dbi, const char *name,
                             const sy_routes_route_state *st) {
  char kb[sizeof ROUTE_KEY_PREFIX + SY_ROUTES_MAX_NAME];
  size_t kl = route_key(kb, sizeof kb, name);
  if (!kl) return SY_EINVAL;
  unsigned char v[ROUTE_VAL_LEN];
  sy__store_be64_put(v, st->route_version);
  sy__store_be64_put(v + 8, st->doc_version);
  v[16] = st->exists ? 1 : 0;
  MDB_val k = {kl, kb}, d = {sizeof v, v};
  return mdb_put(txn, dbi, &k, &d, 0);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
  const sy_routes_put_opts *o;
  uint64_t based_on;   /* the current version the diff was made against (0 = none) */
  route_rec *rec;  /* version, previous_version, ts_us, route_versions filled by put_fn */
  const int *exists;   /* per routes_changed entry: present in the new document */
  int doc_conflict;    /* out: the document version had moved */
  uint64_t written;    /* out */
  uint64_t route_rv;   /* out: o->route's new route version, 0 if unchanged */
} put_arg;

/* The per-route precondition of o, inside the write transaction. */
static int check_route(MDB_txn *txn, MDB_dbi routes, const sy_routes_put_opts *o) {
  if (!o->route || o->route_expected == SY_ROUTES_ANY_VERSION) return 0;
  sy_routes_route_state st;
  int rc = read_route_state(txn, routes, o->route, &st);
  if (rc == MDB_NOTFOUND || rc == SY_ENOTFOUND) {
    st.exists = 0;
    rc = 0;
  }
  if (rc) return rc;
  if (o->route_expected == 0) return st.exists ? SY_EEXIST : 0;
  if (!st.exists) return SY_ENOTFOUND;
  return st.route_version == o->route_expected ? 0 : SY_ECONFLICT;
}

static int put_fn(sy_store *s, MDB_txn *txn, void *arg) {
  put_arg *a = arg;
  a->doc_conflict = 0;
  a->route_rv = 0;
  MDB_dbi routes, hist;
  int rc = sy__store_dbi(s, SY__DB_ROUTES, &routes);
  if (rc == 0) rc = sy__store_dbi(s, SY__DB_ROUTE_HISTORY, &hist);
  if (rc) return rc;
  uint64_t cur = 0;
  rc = read_pointer(s, txn, &cur);
  if (rc == MDB_NOTFOUND) rc = 0;
  if (rc) return rc;
  if (cur != a->based_on) { /* someone wrote since we read */
    a->doc_conflict = 1;
    return SY_ECONFLICT;
  }
  if ((rc = check_route(txn, routes, a->o)) != 0) return rc;
  /* next version: above both the pointer and the last history key, so a
   * version number is never reused even if the pointer were lost */
  uint64_t last = cur;
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(txn, hist, &c)) != 0) return rc;
  MDB_val k, d;
  rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
  if (rc == 0 && k.mv_size == 8 && sy__store_be64_get(k.mv_data) > last)
    last = sy__store_be64_get(k.mv_data);
  mdb_cursor_close(c);
  if (rc && rc != MDB_NOTFOUND) return rc;
  route_rec *rec = a->rec;
  rec->version = last + 1;
  rec->previous_version = cur;
  rec->ts_us = sy__store_now_us(s);

  for (size_t i = 0; i < rec->n_routes_changed; i++) {
    sy_routes_route_state st = {0, 0, 0};
    rc = read_route_state(txn, routes, rec->routes_changed[i], &st);
    if (rc && rc != MDB_NOTFOUND) return rc;
    st.route_version++;
    st.doc_version = rec->version;
    st.exists = a->exists[i];
    if ((rc = write_route_state(txn, routes, rec->routes_changed[i], &st)) != 0) return rc;
    rec->route_versions[i] = st.route_version;
    if (a->o->route && strcmp(a->o->route, rec->routes_changed[i]) == 0)
      a->route_rv = st.route_version;
  }

  size_t len = protobuf_c_message_get_packed_size(&rec->base);
  if (len > SY_STORE_MAX_RECORD_BYTES) return SY_ETOOBIG;
  unsigned char kb[8];
  sy__store_be64_put(kb, rec->version);
  k.mv_size = 8;
  k.mv_data = kb;
  d.mv_size = len;
  d.mv_data = NULL;
  if ((rc = mdb_put(txn, hist, &k, &d, MDB_RESERVE | MDB_NOOVERWRITE)) != 0) return rc;
  protobuf_c_message_pack(&rec->base, d.mv_data);
  MDB_val pk = {strlen(CURRENT_KEY), (void *)CURRENT_KEY}, pd = {8, kb};
  if ((rc = mdb_put(txn, routes, &pk, &pd, 0)) != 0) return rc;
  a->written = rec->version;
  return 0;
}

static int check_text(const char *s, size_t max) {
  return !s || strnlen(s, max + 1) <= max ? 0 : SY_ETOOBIG;
}

/* One attempt: diff `neu` against the current document and write it when
 * the current version is still o->expected_version (or any, for ANY). */
static int put_once(sy_store *s, const sy_routes_put_opts *o, const char *json, const cJSON *neu,
                    int *doc_conflict, uint64_t *new_version, uint64_t *route_rv) {
  *doc_conflict = 0;
  uint64_t cur = 0;
  char *old_txt = NULL;
  int rc = sy_routes_get_current(s, &cur, &old_txt, NULL);
  if (rc == SY_ENOTFOUND) rc = 0;
  if (rc) return rc;
  if (o->expected_version != SY_ROUTES_ANY_VERSION && o->expected_version != cur) {
    free(old_txt);
    *doc_conflict = 1;
    return SY_ECONFLICT;
  }
  cJSON *old = NULL;
  char err[256];
  if (old_txt && sy__routes_parse_doc(old_txt, &old, err, sizeof err) != 0)
    sy_warn("store: stored routes version %llu unreadable (%s); diffing against nothing",
            (unsigned long long)cur, err);
  free(old_txt);
  const char **names = NULL;
  int *exists = NULL;
  size_t n = 0;
  uint64_t *rvs = NULL;
  rc = diff_docs(old, neu, &names, &exists, &n);
  if (rc == 0 && n && !(rvs = calloc(n, sizeof *rvs))) rc = SY_ENOMEM;
  if (rc == 0) {
    route_rec rec = SWITCHYARD__V1__ROUTE_VERSION__INIT;
    rec.actor = (char *)(o->actor ? o->actor : "");
    rec.reason = (char *)(o->reason ? o->reason : "");
    rec.summary = (char *)(o->summary ? o->summary : "");
    rec.action = (char *)(o->action ? o->action : "");
    rec.routes_changed = (char **)names;
    rec.n_routes_changed = n;
    rec.route_versions = rvs;
    rec.n_route_versions = n;
    rec.routes_json = (char *)json;
    put_arg a = {o, cur, &rec, exists, 0, 0, 0};
    rc = sy__store_write(s, put_fn, &a, 1);
    *doc_conflict = a.doc_conflict;
    if (rc == 0) {
      if (new_version) *new_version = a.written;
      if (route_rv) *route_rv = a.route_rv;
    }
  }
  free(rvs);
  free(names);
  free(exists);
  cJSON_Delete(old);
  return rc;
}

int sy_routes_put_ex(sy_store *s, const sy_routes_put_opts *o, const char *json,
                     uint64_t *new_version) {
  if (!s || !o || !json) return SY_EINVAL;
  if (check_text(o->actor, SY_ROUTES_MAX_ACTOR) || check_text(o->reason, SY_ROUTES_MAX_REASON) ||
      check_text(o->summary, SY_ROUTES_MAX_SUMMARY) || check_text(o->action, SY_ROUTES_MAX_NAME))
    return SY_ETOOBIG;
  char err[256];
  cJSON *neu;
  int rc = sy__routes_parse_doc(json, &neu, err, sizeof err);
  if (rc) {
    sy_warn("store: routes put rejected: %s", err);
    return rc;
  }
  for (int tries = 0; tries < PUT_RETRIES; tries++) {
    int doc_conflict;
    rc = put_once(s, o, json, neu, &doc_conflict, new_version, NULL);
    /* lost a race: a don't-care put re-diffs and retries, others conflict */
    if (!doc_conflict || o->expected_version != SY_ROUTES_ANY_VERSION) break;
  }
  cJSON_Delete(neu);
  return rc;
}

int sy_routes_put(sy_store *s, uint64_t expected_version, const char *json, const char *actor,
                  const char *reason, const char *summary, uint64_t *new_version) {
  sy_routes_put_opts o = {expected_version, NULL, 0, actor, reason, summary, NULL};
  return sy_routes_put_ex(s, &o, json, new_version);
}

int sy_routes_apply(sy_store *s, const sy_routes_put_opts *o, sy_routes_edit_fn fn, void *ctx,
                    uint64_t *new_version, uint64_t *route_version, char *err, size_t errlen) {
  if (!s || !o || !fn) return SY_EINVAL;
  if (err && errlen) err[0] = '\0';
  int rc = SY_ECONFLICT;
  for (int tries = 0; tries < SY_ROUTES_APPLY_RETRIES; tries++) {
    uint64_t cur = 0;
    char *txt = NULL;
    rc = sy_routes_get_current(s, &cur, &txt, NULL);
    if (rc == SY_ENOTFOUND) rc = 0;
    if (rc) return rc;
    sy_routes_edit e = {NULL, 0, NULL};
    rc = fn(ctx, cur, txt, &e, err, errlen);
    free(txt);
    if (rc) {
      sy_routes_edit_free(&e);
      return rc;
    }
    sy_routes_put_opts po = *o;
    po.expected_version = cur;
    if (!po.summary) po.summary = e.summary;
    if (check_text(po.summary, SY_ROUTES_MAX_SUMMARY)) po.summary = "(summary too long)";
    cJSON *neu;
    rc = sy__routes_parse_doc(e.json, &neu, err, errlen);
    int doc_conflict = 0;
    uint64_t rv = 0;
    if (rc == 0) {
      rc = put_once(s, &po, e.json, neu, &doc_conflict, new_version, &rv);
      cJSON_Delete(neu);
    }
    sy_routes_edit_free(&e);
    if (rc == 0 && route_version) *route_version = rv;
    if (!doc_conflict) break;
  }
  if (err && errlen && !err[0]) {
    if (rc == SY_ECONFLICT)
      snprintf(err, errlen, "expected_version: route \"%s\" is at another version",
               o->route ? o->route : "");
    else if (rc == SY_EEXIST)
      snprintf(err, errlen, "route \"%s\": already exists", o->route ? o->route : "");
    else if (rc == SY_ENOTFOUND)
      snprintf(err, errlen, "route \"%s\": not found", o->route ? o->route : "");
  }
  return rc;
}

typedef struct {
  const char *route;
  sy_routes_route_state *st;
} state_arg;

static int state_fn(sy_store *s, MDB_txn *txn, void *arg) {
  state_arg *a = arg;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_ROUTES, &dbi);
  if (rc) return rc;
  return read_route_state(txn, dbi, a->route, a->st);
}

int sy_routes_get_route_state(sy_store *s, const char *route, sy_routes_route_state *st) {
  if (!s || !route || !st) return SY_EINVAL;
  memset(st, 0, sizeof *st);
  state_arg a = {route, st};
  return sy__store_read(s, state_fn, &a);
}

/* ---- history ------------------------------------------------------------ */

typedef struct {
  uint64_t hi; /* next batch reads keys below this (UINT64_MAX = from the end) */
  route_rec *items[SY_ROUTES_HISTORY_BATCH];
  size_t got;
  int end;
} hist_arg;

static int hist_fn(sy_store *s, MDB_txn *txn, void *arg) {
  hist_arg *a = arg;
  a->got = 0;
  MDB_dbi dbi;
  int rc = sy__store_dbi(s, SY__DB_ROUTE_HISTORY, &dbi);
  if (rc == SY_ENOTFOUND) {
    a->end = 1;
    return 0;
  }
  if (rc) return rc;
  MDB_cursor *c;
  if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0) return rc;
  unsigned char kb[8];
  sy__store_be64_put(kb, a->hi);
  MDB_val k = {8, kb}, d;
  if (a->hi == UINT64_MAX) {
    rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
  } else {
    rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); /* first key >= hi ... */
    rc = mdb_cursor_get(c, &k, &d, rc == 0 ? MDB_PREV : MDB_LAST); /* ... the one below */
  }
  while (rc == 0 && a->got < SY_ROUTES_HISTORY_BATCH) {
    if (k.mv_size != 8) {
      rc = MDB_CORRUPTED;
      break;
    }
    uint64_t v = sy__store_be64_get(k.mv_data);
    if (v >= a->hi) { /* cannot happen with a sane cursor; never loop */
      rc = MDB_NOTFOUND;
      break;
    }
    route_rec *rv = d.mv_size <= SY_STORE_MAX_RECORD_BYTES
                            ? switchyard__v1__route_version__unpack(NULL, d.mv_size, d.mv_data)
                            : NULL;
    if (!rv) {
      sy_error("store: unreadable route history entry %llu", (unsigned long long)v);
      rc = SY_EIO;
      break;
    }
    a->items[a->got++] = rv;
    a->hi = v;
    rc = mdb_cursor_get(c, &k, &d, MDB_PREV);
  }
  mdb_cursor_close(c);
  if (rc == MDB_NOTFOUND) {
    a->end = 1;
    rc = 0;
  }
  return rc;
}

static int mentions(const route_rec *rv, const char *route) {
  for (size_t i = 0; i < rv->n_routes_changed; i++)
    if (strcmp(rv->routes_changed[i], route) == 0) return 1;
  return 0;
}

int sy_routes_history(sy_store *s, const char *route, size_t limit, sy_routes_history_cb cb,
                      void *ctx) {
  if (!s || !cb) return SY_EINVAL;
  hist_arg a;
  memset(&a, 0, sizeof a);
  a.hi = UINT64_MAX;
  size_t delivered = 0;
  int rc = 0, stop = 0;
  while (!stop && !a.end) {
    if ((rc = sy__store_read(s, hist_fn, &a)) != 0) {
      for (size_t i = 0; i < a.got; i++) switchyard__v1__route_version__free_unpacked(a.items[i], NULL);
      break;
    }
    /* callbacks run with no transaction open */
    for (size_t i = 0; i < a.got; i++) {
      route_rec *rv = a.items[i];
      if (!stop && (!route || mentions(rv, route))) {
        /* entries written before route_versions existed have none: report 0s */
        uint64_t *rvs = rv->n_route_versions == rv->n_routes_changed ? rv->route_versions : NULL;
        uint64_t *zeros = NULL;
        if (!rvs && rv->n_routes_changed) {
          if (!(zeros = calloc(rv->n_routes_changed, sizeof *zeros))) {
            rc = SY_ENOMEM;
            stop = 1;
            switchyard__v1__route_version__free_unpacked(rv, NULL);
            continue;
          }
          rvs = zeros;
        }
        sy_routes_entry e = {rv->version,
                             rv->previous_version,
                             rv->ts_us,
                             rv->actor,
                             rv->reason,
                             rv->summary,
                             rv->action,
                             (const char *const *)rv->routes_changed,
                             rvs,
                             rv->n_routes_changed,
                             rv->routes_json,
                             strlen(rv->routes_json)};
        int r = cb(ctx, &e);
        free(zeros);
        if (r < 0) rc = r;
        if (r != 0 || (limit && ++delivered >= limit)) stop = 1;
      }
      switchyard__v1__route_version__free_unpacked(rv, NULL);
    }
    a.got = 0;
  }
  return rc;
}

static int first_version_cb(void *ctx, const sy_routes_entry *e) {
  *(uint64_t *)ctx = e->version;
  return 1;
}

typedef struct {
  uint64_t v;
} ptr_arg;

static int ptr_fn(sy_store *s, MDB_txn *txn, void *arg) {
  return read_pointer(s, txn, &((ptr_arg *)arg)->v);
}

int sy_routes_previous(sy_store *s, const char *route, uint64_t *version) {
  if (!s || !version) return SY_EINVAL;
  uint64_t v = 0;
  int rc;
  if (!route) {
    ptr_arg a = {0};
    rc = sy__store_read(s, ptr_fn, &a);
    v = a.v;
  } else {
    rc = sy_routes_history(s, route, 1, first_version_cb, &v);
  }
  if (rc) return rc;
  if (v <= 1) return SY_ENOTFOUND;
  *version = v - 1;
  return 0;
}

typedef struct {
  const char *route;
  uint64_t want, doc_version;
} find_rv_arg;

static int find_rv_cb(void *ctx, const sy_routes_entry *e) {
  find_rv_arg *a = ctx;
  for (size_t i = 0; i < e->n_routes_changed; i++) {
    if (strcmp(e->routes_changed[i], a->route) != 0) continue;
    if (e->route_versions[i] == a->want) {
      a->doc_version = e->version;
      return 1;
    }
    if (e->route_versions[i] < a->want) return 1; /* newest first: it is not further down */
  }
  return 0;
}

int sy_routes_find_route_version(sy_store *s, const char *route, uint64_t route_version,
                                 uint64_t *doc_version) {
  if (!s || !route || !doc_version) return SY_EINVAL;
  if (route_version == 0) return SY_ENOTFOUND;
  find_rv_arg a = {route, route_version, 0};
  int rc = sy_routes_history(s, route, 0, find_rv_cb, &a);
  if (rc) return rc;
  if (!a.doc_version) return SY_ENOTFOUND;
  *doc_version = a.doc_version;
  return 0;
}
