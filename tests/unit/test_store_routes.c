/* store/routes: versioned routes documents (put, get, conflicts, history,
 * rollback targets, persistence) and the pure JSON edits with their
 * summaries and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>

#include "common/err.h"
#include "store/routes.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
  sy_store *s;
} fixture;

static sy_store *open_at(fixture *f) {
  sy_store_opts o = {0};
  o.path = f->path;
  o.durability = SY_DURABLE_NOSYNC;
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  sy_store *s = NULL;
  assert_int_equal(sy_store_open(&o, &s), 0);
  return s;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  f->s = open_at(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sy_store_close(f->s);
  test_rmtree(f->dir);
  free(f);
  return 0;
}

#define R_A "{\"name\":\"a\",\"arms\":[{\"name\":\"base\",\"upstream\":\"u\"}]}"
#define R_A2 "{\"name\":\"a\",\"arms\":[{\"name\":\"base\",\"upstream\":\"v\"}]}"
#define R_B "{\"name\":\"b\",\"arms\":[{\"name\":\"base\",\"upstream\":\"u\"}]}"
#define R_C "{\"name\":\"c\",\"arms\":[{\"name\":\"base\",\"upstream\":\"u\"}]}"

/* ---- stored documents --------------------------------------------------- */

static void test_put_get_conflict(void **state) {
  fixture *f = *state;
  uint64_t v = 99;
  char *json = NULL;
  size_t len = 0;
  assert_int_equal(sy_routes_get_current(f->s, &v, &json, &len), SY_ENOTFOUND);
  assert_null(json);

  const char *d1 = "[" R_A "]";
  uint64_t nv = 0;
  assert_int_equal(sy_routes_put(f->s, 0, d1, "alice", "seed", "a: created", &nv), 0);
  assert_int_equal(nv, 1);
  assert_int_equal(sy_routes_get_current(f->s, &v, &json, &len), 0);
  assert_int_equal(v, 1);
  assert_string_equal(json, d1);
  assert_int_equal(len, strlen(d1));
  free(json);

  /* 0 means "must not exist yet"; a stale version conflicts; nothing changes */
  const char *d2 = "[" R_A "," R_B "]";
  assert_int_equal(sy_routes_put(f->s, 0, d2, "bob", NULL, NULL, &nv), SY_ECONFLICT);
  assert_int_equal(sy_routes_put(f->s, 2, d2, "bob", NULL, NULL, &nv), SY_ECONFLICT);
  assert_int_equal(sy_routes_get_current(f->s, &v, &json, NULL), 0);
  assert_int_equal(v, 1);
  free(json);

  assert_int_equal(sy_routes_put(f->s, 1, d2, "bob", NULL, NULL, &nv), 0);
  assert_int_equal(nv, 2);
  assert_int_equal(sy_routes_put(f->s, SY_ROUTES_ANY_VERSION, "[]", "carol", NULL, NULL, &nv), 0);
  assert_int_equal(nv, 3);

  assert_int_equal(sy_routes_get_version(f->s, 1, &json, &len), 0);
  assert_string_equal(json, d1);
  free(json);
  assert_int_equal(sy_routes_get_version(f->s, 2, &json, &len), 0);
  assert_string_equal(json, d2);
  free(json);
  assert_int_equal(sy_routes_get_version(f->s, 4, &json, &len), SY_ENOTFOUND);
  assert_int_equal(sy_routes_get_version(f->s, 0, &json, &len), SY_ENOTFOUND);

  /* survives a restart */
  sy_store_close(f->s);
  f->s = open_at(f);
  assert_int_equal(sy_routes_get_current(f->s, &v, &json, NULL), 0);
  assert_int_equal(v, 3);
  assert_string_equal(json, "[]");
  free(json);
  assert_int_equal(sy_routes_put(f->s, 3, d1, "dave", NULL, NULL, &nv), 0);
  assert_int_equal(nv, 4);
}

static void test_put_rejects(void **state) {
  fixture *f = *state;
  uint64_t nv = 0;
  assert_int_equal(sy_routes_put(f->s, 0, "not json", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "{\"name\":\"a\"}", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "[1]", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "[{\"arms\":[]}]", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "[{\"name\":\"\"}]", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "[" R_A "," R_A2 "]", NULL, NULL, NULL, &nv),
                   SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, "[] x", NULL, NULL, NULL, &nv), SY_EINVAL);
  assert_int_equal(sy_routes_put(f->s, 0, NULL, NULL, NULL, NULL, &nv), SY_EINVAL);

  char *big = malloc(SY_ROUTES_MAX_JSON_BYTES + 16);
  memset(big, ' ', SY_ROUTES_MAX_JSON_BYTES + 8);
  big[0] = '[';
  big[SY_ROUTES_MAX_JSON_BYTES + 8] = ']';
  big[SY_ROUTES_MAX_JSON_BYTES + 9] = '\0';
  assert_int_equal(sy_routes_put(f->s, 0, big, NULL, NULL, NULL, &nv), SY_ETOOBIG);
  memset(big, 'r', SY_ROUTES_MAX_REASON + 1);
  big[SY_ROUTES_MAX_REASON + 1] = '\0';
  assert_int_equal(sy_routes_put(f->s, 0, "[]", NULL, big, NULL, &nv), SY_ETOOBIG);
  free(big);

  char *json = NULL;
  assert_int_equal(sy_routes_get_current(f->s, NULL, &json, NULL), SY_ENOTFOUND);
}

typedef struct {
  uint64_t versions[16];
  char summaries[16][64];
  char changed[16][64];
  size_t n;
  int stop_after; /* 0 = never; < 0: return that error */
} hist_rec;

static int hist_cb(void *ctx, const sy_routes_entry *e) {
  hist_rec *h = ctx;
  assert_true(h->n < 16);
  h->versions[h->n] = e->version;
  snprintf(h->summaries[h->n], sizeof h->summaries[0], "%s|%s|%s|%llu", e->actor, e->reason,
           e->summary, (unsigned long long)e->previous_version);
  h->changed[h->n][0] = '\0';
  for (size_t i = 0; i < e->n_routes_changed; i++) {
    strcat(h->changed[h->n], e->routes_changed[i]);
    strcat(h->changed[h->n], i + 1 < e->n_routes_changed ? "," : "");
  }
  assert_int_equal(e->json_len, strlen(e->json));
  h->n++;
  if (h->stop_after < 0) return h->stop_after;
  return h->stop_after && (int)h->n >= h->stop_after;
}

/* v1 creates a,b; v2 changes a; v3 adds c; v4 deletes b */
static void make_history(fixture *f) {
  uint64_t nv;
  f->clk.now_us = 1000;
  assert_int_equal(sy_routes_put(f->s, 0, "[" R_A "," R_B "]", "alice", "seed", "s1", &nv), 0);
  f->clk.now_us = 2000;
  assert_int_equal(sy_routes_put(f->s, 1, "[" R_A2 "," R_B "]", "bob", "ups", "s2", &nv), 0);
  f->clk.now_us = 3000;
  assert_int_equal(
      sy_routes_put(f->s, 2, "[" R_A2 "," R_B "," R_C "]", "carol", "new", "s3", &nv), 0);
  f->clk.now_us = 4000;
  assert_int_equal(sy_routes_put(f->s, 3, "[" R_A2 "," R_C "]", "dave", "gone", "s4", &nv), 0);
  assert_int_equal(nv, 4);
}

static void test_history(void **state) {
  fixture *f = *state;
  hist_rec h = {0};
  assert_int_equal(sy_routes_history(f->s, NULL, 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 0);

  make_history(f);
  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, NULL, 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 4);
  for (size_t i = 0; i < 4; i++) assert_int_equal(h.versions[i], 4 - i); /* newest first */
  assert_string_equal(h.summaries[0], "dave|gone|s4|3");
  assert_string_equal(h.summaries[3], "alice|seed|s1|0");
  assert_string_equal(h.changed[0], "b");
  assert_string_equal(h.changed[1], "c");
  assert_string_equal(h.changed[2], "a");
  assert_string_equal(h.changed[3], "a,b");

  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, "a", 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 2);
  assert_int_equal(h.versions[0], 2);
  assert_int_equal(h.versions[1], 1);
  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, "b", 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 2);
  assert_int_equal(h.versions[0], 4);
  assert_int_equal(h.versions[1], 1);
  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, "nope", 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 0);

  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, NULL, 2, hist_cb, &h), 0);
  assert_int_equal(h.n, 2);
  memset(&h, 0, sizeof h);
  h.stop_after = 3;
  assert_int_equal(sy_routes_history(f->s, NULL, 0, hist_cb, &h), 0);
  assert_int_equal(h.n, 3);
  memset(&h, 0, sizeof h);
  h.stop_after = SY_EIO;
  assert_int_equal(sy_routes_history(f->s, NULL, 0, hist_cb, &h), SY_EIO);
  assert_int_equal(h.n, 1);

  /* a put with no real change is still a version, changing no route */
  uint64_t nv;
  assert_int_equal(sy_routes_put(f->s, 4, "[" R_C "," R_A2 "]", "eve", "", "", &nv), 0);
  memset(&h, 0, sizeof h);
  assert_int_equal(sy_routes_history(f->s, NULL, 1, hist_cb, &h), 0);
  assert_int_equal(h.versions[0], 5);
  assert_string_equal(h.changed[0], "");
}

typedef struct {
  uint64_t last;
  size_t n;
  int ok;
} seq_check;

static int seq_cb(void *ctx, const sy_routes_entry *e) {
  seq_check *st = ctx;
  if (st->n && e->version != st->last - 1) st->ok = 0; /* strictly consecutive, newest first */
  st->last = e->version;
  st->n++;
  return 0;
}

static void test_history_many_batches(void **state) {
  fixture *f = *state;
  uint64_t nv = 0;
  char doc[128];
  for (int i = 0; i < 3 * SY_ROUTES_HISTORY_BATCH + 5; i++) {
    snprintf(doc, sizeof doc, "[{\"name\":\"r\",\"n\":%d}]", i);
    assert_int_equal(sy_routes_put(f->s, nv, doc, "x", NULL, NULL, &nv), 0);
  }
  seq_check st = {0, 0, 1};
  assert_int_equal(sy_routes_history(f->s, "r", 0, seq_cb, &st), 0);
  assert_true(st.ok);
  assert_int_equal(st.n, 3 * SY_ROUTES_HISTORY_BATCH + 5);
  assert_int_equal(st.last, 1);
}

static void test_previous_and_rollback(void **state) {
  fixture *f = *state;
  uint64_t v = 0;
  assert_int_equal(sy_routes_previous(f->s, NULL, &v), SY_ENOTFOUND);
  make_history(f);
  assert_int_equal(sy_routes_previous(f->s, NULL, &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(sy_routes_previous(f->s, "a", &v), 0);
  assert_int_equal(v, 1); /* a last changed in v2: its previous definition is v1's */
  assert_int_equal(sy_routes_previous(f->s, "b", &v), 0);
  assert_int_equal(v, 3); /* deleted in v4: v3 still had it */
  assert_int_equal(sy_routes_previous(f->s, "c", &v), 0);
  assert_int_equal(v, 2); /* created in v3: v2 did not have it */
  assert_int_equal(sy_routes_previous(f->s, "nope", &v), SY_ENOTFOUND);

  /* per-route rollback of a: take v1's definition, keep c as it is */
  char *cur = NULL, *old = NULL;
  uint64_t cv;
  assert_int_equal(sy_routes_previous(f->s, "a", &v), 0);
  assert_int_equal(sy_routes_get_current(f->s, &cv, &cur, NULL), 0);
  assert_int_equal(sy_routes_get_version(f->s, v, &old, NULL), 0);
  sy_routes_edit e;
  char err[256];
  assert_int_equal(sy_routes_edit_restore(cur, old, v, "a", &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "a: restored from version 1");
  uint64_t nv;
  assert_int_equal(sy_routes_put(f->s, cv, e.json, "ops", "bad upstream", e.summary, &nv), 0);
  assert_int_equal(nv, 5);
  char *a_now = NULL, *a_then = NULL, *c_now = NULL;
  char *doc = NULL;
  assert_int_equal(sy_routes_get_current(f->s, NULL, &doc, NULL), 0);
  assert_int_equal(sy_routes_find(doc, "a", &a_now), 0);
  assert_int_equal(sy_routes_find(old, "a", &a_then), 0);
  assert_string_equal(a_now, a_then);
  assert_int_equal(sy_routes_find(doc, "c", &c_now), 0);
  free(a_now);
  char *b_now = NULL;
  assert_int_equal(sy_routes_find(doc, "b", &b_now), SY_ENOTFOUND);
  assert_null(b_now);
  free(a_then);
  free(c_now);
  free(doc);
  free(cur);
  free(old);
  sy_routes_edit_free(&e);
  /* the rollback is itself a change of a in the history */
  assert_int_equal(sy_routes_previous(f->s, "a", &v), 0);
  assert_int_equal(v, 4);

  /* whole-document rollback: previous version's text as a new version */
  assert_int_equal(sy_routes_previous(f->s, NULL, &v), 0);
  assert_int_equal(v, 4);
  assert_int_equal(sy_routes_get_version(f->s, v, &old, NULL), 0);
  assert_int_equal(sy_routes_put(f->s, 5, old, "ops", "undo", "rollback to version 4", &nv), 0);
  assert_int_equal(nv, 6);
  assert_int_equal(sy_routes_get_current(f->s, &cv, &cur, NULL), 0);
  assert_int_equal(cv, 6);
  assert_string_equal(cur, old);
  free(cur);
  free(old);
}

typedef struct {
  uint64_t rv;
  char action[16];
} last_b_rec;
static int last_b(void *ctx, const sy_routes_entry *e);

static void test_route_versions(void **state) {
  fixture *f = *state;
  make_history(f);
  sy_routes_route_state st;
  assert_int_equal(sy_routes_get_route_state(f->s, "a", &st), 0);
  assert_int_equal(st.route_version, 2);
  assert_int_equal(st.doc_version, 2);
  assert_true(st.exists);
  assert_int_equal(sy_routes_get_route_state(f->s, "b", &st), 0);
  assert_int_equal(st.route_version, 2); /* created, deleted */
  assert_int_equal(st.doc_version, 4);
  assert_false(st.exists);
  assert_int_equal(sy_routes_get_route_state(f->s, "c", &st), 0);
  assert_int_equal(st.route_version, 1);
  assert_int_equal(sy_routes_get_route_state(f->s, "zz", &st), SY_ENOTFOUND);

  uint64_t dv = 0;
  assert_int_equal(sy_routes_find_route_version(f->s, "a", 1, &dv), 0);
  assert_int_equal(dv, 1);
  assert_int_equal(sy_routes_find_route_version(f->s, "a", 2, &dv), 0);
  assert_int_equal(dv, 2);
  assert_int_equal(sy_routes_find_route_version(f->s, "b", 2, &dv), 0);
  assert_int_equal(dv, 4);
  assert_int_equal(sy_routes_find_route_version(f->s, "a", 3, &dv), SY_ENOTFOUND);
  assert_int_equal(sy_routes_find_route_version(f->s, "a", 0, &dv), SY_ENOTFOUND);

  /* per-route preconditions, checked in the write transaction */
  sy_routes_put_opts o = {4, "a", 1, "ops", "r", "s", "put"};
  uint64_t nv = 0;
  const char *d5 = "[" R_A "," R_C "]";
  assert_int_equal(sy_routes_put_ex(f->s, &o, d5, &nv), SY_ECONFLICT);
  o.route_expected = 0;
  assert_int_equal(sy_routes_put_ex(f->s, &o, d5, &nv), SY_EEXIST);
  o.route = "zz";
  o.route_expected = 5;
  assert_int_equal(sy_routes_put_ex(f->s, &o, d5, &nv), SY_ENOTFOUND);
  o.route = "a";
  o.route_expected = 2;
  assert_int_equal(sy_routes_put_ex(f->s, &o, d5, &nv), 0);
  assert_int_equal(nv, 5);
  assert_int_equal(sy_routes_get_route_state(f->s, "a", &st), 0);
  assert_int_equal(st.route_version, 3);
  /* a deleted route may be created again with 0; its counter goes on */
  sy_routes_put_opts o2 = {5, "b", 0, "ops", "back", "b: created", "put"};
  assert_int_equal(sy_routes_put_ex(f->s, &o2, "[" R_A "," R_B "," R_C "]", &nv), 0);
  assert_int_equal(sy_routes_get_route_state(f->s, "b", &st), 0);
  assert_int_equal(st.route_version, 3);
  assert_true(st.exists);

  last_b_rec got = {0, ""};
  assert_int_equal(sy_routes_history(f->s, "b", 1, last_b, &got), 0);
  assert_int_equal(got.rv, 3);
  assert_string_equal(got.action, "put");
}

static int last_b(void *ctx, const sy_routes_entry *e) {
  last_b_rec *g = ctx;
  for (size_t i = 0; i < e->n_routes_changed; i++)
    if (!strcmp(e->routes_changed[i], "b")) g->rv = e->route_versions[i];
  snprintf(g->action, sizeof g->action, "%s", e->action);
  return 0;
}

typedef struct {
  sy_store *s;
  int calls;
  int race_on_first; /* change route c from inside the first call */
  uint64_t seen_version;
  int fail;
} split_ctx;

static int split_fn(void *ctx, uint64_t cur_version, const char *cur, sy_routes_edit *out,
                    char *err, size_t errlen) {
  split_ctx *c = ctx;
  c->calls++;
  c->seen_version = cur_version;
  if (c->fail) {
    snprintf(err, errlen, "routes[0].arms[1].upstream: unknown upstream \"vllm\"");
    return SY_EINVAL;
  }
  if (c->race_on_first && c->calls == 1) {
    /* someone else changes another route between our read and our put */
    char *doc = NULL;
    uint64_t v;
    assert_int_equal(sy_routes_get_current(c->s, &v, &doc, NULL), 0);
    sy_routes_edit e;
    assert_int_equal(sy_routes_edit_put(doc, "{\"name\":\"c\",\"x\":1}", &e, NULL, 0), 0);
    assert_int_equal(sy_routes_put(c->s, v, e.json, "other", NULL, e.summary, NULL), 0);
    sy_routes_edit_free(&e);
    free(doc);
  }
  sy_routes_weight w[] = {{"base", 8000}, {"ft", 2000}};
  return sy_routes_edit_split(cur, "support-bot", w, 2, out, err, errlen);
}

#define SB_DOC                                                                                    \
  "[{\"name\":\"support-bot\",\"arms\":[{\"name\":\"base\",\"upstream\":\"o\",\"weight_bp\":"    \
  "9000},{\"name\":\"ft\",\"upstream\":\"v\",\"weight_bp\":1000}]}," R_C "]"

typedef struct {
  char summary[128];
  char action[16];
} last_entry;

static int last_cb(void *ctx, const sy_routes_entry *e) {
  last_entry *l = ctx;
  snprintf(l->summary, sizeof l->summary, "%s", e->summary);
  snprintf(l->action, sizeof l->action, "%s", e->action);
  return 1;
}

static void test_apply(void **state) {
  fixture *f = *state;
  uint64_t nv = 0, rv = 0;
  assert_int_equal(sy_routes_put(f->s, 0, SB_DOC, "seed", NULL, NULL, &nv), 0);
  split_ctx c = {f->s, 0, 0, 0, 0};
  sy_routes_put_opts o = {0, "support-bot", 1, "alice", "ramp", NULL, "split"};
  char err[256];
  assert_int_equal(sy_routes_apply(f->s, &o, split_fn, &c, &nv, &rv, err, sizeof err), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.seen_version, 1);
  assert_int_equal(nv, 2);
  assert_int_equal(rv, 2);
  last_entry l;
  assert_int_equal(sy_routes_history(f->s, NULL, 1, last_cb, &l), 0);
  assert_string_equal(l.summary, "support-bot: weights base 9000→8000, ft 1000→2000");
  assert_string_equal(l.action, "split");

  /* the route moved on: its expected version no longer matches */
  c.calls = 0;
  assert_int_equal(sy_routes_apply(f->s, &o, split_fn, &c, &nv, &rv, err, sizeof err),
                   SY_ECONFLICT);
  assert_string_equal(err, "expected_version: route \"support-bot\" is at another version");

  /* a race on another route: retried on the newer document, nothing lost */
  o.route_expected = SY_ROUTES_ANY_VERSION;
  c.calls = 0;
  c.race_on_first = 1;
  assert_int_equal(sy_routes_apply(f->s, &o, split_fn, &c, &nv, &rv, err, sizeof err), 0);
  assert_int_equal(c.calls, 2);
  assert_int_equal(nv, 4); /* 3 was the other writer's */
  assert_int_equal(c.seen_version, 3);
  char *doc = NULL, *rc_json = NULL;
  assert_int_equal(sy_routes_get_current(f->s, NULL, &doc, NULL), 0);
  assert_int_equal(sy_routes_find(doc, "c", &rc_json), 0);
  assert_string_equal(rc_json, "{\"name\":\"c\",\"x\":1}");
  free(rc_json);
  free(doc);
  assert_int_equal(rv, 0); /* the weights were already 8000/2000: route unchanged */

  /* the callback's validation failure comes back with its message */
  c.fail = 1;
  assert_int_equal(sy_routes_apply(f->s, &o, split_fn, &c, &nv, &rv, err, sizeof err), SY_EINVAL);
  assert_string_equal(err, "routes[0].arms[1].upstream: unknown upstream \"vllm\"");
}

typedef struct {
  sy_store *s;
  int ok;
} racer;

static void *race_fn(void *arg) {
  racer *r = arg;
  for (int i = 0; i < 20; i++) {
    uint64_t nv;
    if (sy_routes_put(r->s, SY_ROUTES_ANY_VERSION, "[" R_A "]", "t", NULL, NULL, &nv) == 0)
      r->ok++;
  }
  return NULL;
}

static void test_concurrent_puts(void **state) {
  fixture *f = *state;
  racer r[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    r[i].s = f->s;
    r[i].ok = 0;
    assert_int_equal(pthread_create(&t[i], NULL, race_fn, &r[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  int total = 0;
  for (int i = 0; i < 4; i++) total += r[i].ok;
  assert_int_equal(total, 80);
  uint64_t v;
  char *json;
  assert_int_equal(sy_routes_get_current(f->s, &v, &json, NULL), 0);
  assert_int_equal(v, 80);
  free(json);
}

/* ---- JSON edits --------------------------------------------------------- */

#define SB                                                                                        \
  "{\"name\":\"support-bot\",\"arms\":[{\"name\":\"base\",\"upstream\":\"openai\","               \
  "\"weight_bp\":9000},{\"name\":\"ft\",\"upstream\":\"vllm\",\"weight_bp\":1000}],"              \
  "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0.8},"                     \
  "\"rules\":[{\"arm\":\"base\",\"min_prompt_tokens\":1000}],"                                     \
  "\"shadow\":{\"arm\":\"ft\",\"rate_bp\":500}}"
#define DOC "[" SB "," R_A "]"

static double weight_of(const char *doc, const char *route, const char *arm) {
  cJSON *d = cJSON_Parse(doc);
  assert_non_null(d);
  double w = -1;
  for (cJSON *r = d->child; r; r = r->next) {
    if (strcmp(cJSON_GetObjectItem(r, "name")->valuestring, route)) continue;
    for (cJSON *a = cJSON_GetObjectItem(r, "arms")->child; a; a = a->next)
      if (!strcmp(cJSON_GetObjectItem(a, "name")->valuestring, arm))
        w = cJSON_GetObjectItem(a, "weight_bp")->valuedouble;
  }
  cJSON_Delete(d);
  return w;
}

static int route_has(const char *doc, const char *route, const char *key) {
  char *r = NULL;
  if (sy_routes_find(doc, route, &r) != 0) return -1;
  cJSON *o = cJSON_Parse(r);
  free(r);
  int has = cJSON_GetObjectItem(o, key) != NULL;
  cJSON_Delete(o);
  return has;
}

static void test_edit_split(void **state) {
  (void)state;
  sy_routes_edit e;
  char err[256];
  sy_routes_weight w[] = {{"base", 8000}, {"ft", 2000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", w, 2, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "support-bot: weights base 9000→8000, ft 1000→2000");
  assert_true(weight_of(e.json, "support-bot", "base") == 8000);
  assert_true(weight_of(e.json, "support-bot", "ft") == 2000);
  assert_int_equal(route_has(e.json, "support-bot", "cascade"), 1); /* untouched */
  assert_int_equal(route_has(e.json, "a", "arms"), 1);
  sy_routes_edit_free(&e);
  assert_null(e.json);

  /* the same weights again: unchanged; an arm left out gets 0 */
  sy_routes_weight same[] = {{"ft", 1000}, {"base", 9000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", same, 2, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "support-bot: weights unchanged");
  sy_routes_edit_free(&e);
  sy_routes_weight all[] = {{"ft", 10000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", all, 1, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "support-bot: weights base 9000→0, ft 1000→10000");
  sy_routes_edit_free(&e);

  /* a lone arm without weight counts as the router's default 10000 */
  sy_routes_weight lone[] = {{"base", 10000}};
  assert_int_equal(sy_routes_edit_split(DOC, "a", lone, 1, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "a: weights unchanged");
  assert_true(weight_of(e.json, "a", "base") == 10000);
  sy_routes_edit_free(&e);

  sy_routes_weight bad_sum[] = {{"base", 8000}, {"ft", 1000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", bad_sum, 2, &e, err, sizeof err),
                   SY_EINVAL);
  assert_string_equal(err, "weights: sum to 9000, must be 10000");
  assert_null(e.json);
  sy_routes_weight no_arm[] = {{"base", 5000}, {"gpt5", 5000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", no_arm, 2, &e, err, sizeof err),
                   SY_ENOTFOUND);
  assert_string_equal(err, "weights[1].arm: route \"support-bot\" has no arm \"gpt5\"");
  sy_routes_weight dup[] = {{"base", 5000}, {"base", 5000}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", dup, 2, &e, err, sizeof err),
                   SY_EINVAL);
  assert_string_equal(err, "weights[1].arm: \"base\" listed twice");
  sy_routes_weight over[] = {{"base", 10001}};
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", over, 1, &e, err, sizeof err),
                   SY_EINVAL);
  assert_string_equal(err, "weights[0].weight_bp: must be 0..10000");
  assert_int_equal(sy_routes_edit_split(DOC, "nope", w, 2, &e, err, sizeof err), SY_ENOTFOUND);
  assert_string_equal(err, "route \"nope\": not found");
  assert_int_equal(sy_routes_edit_split(DOC, "support-bot", w, 0, &e, err, sizeof err), SY_EINVAL);
  assert_int_equal(sy_routes_edit_split("[1,2]", "support-bot", w, 2, &e, err, sizeof err),
                   SY_EINVAL);
  assert_string_equal(err, "routes[0]: must be an object");
  assert_int_equal(sy_routes_edit_split(NULL, "x", w, 2, &e, NULL, 0), SY_ENOTFOUND);
}

static void test_edit_promote(void **state) {
  (void)state;
  sy_routes_edit e;
  char err[256];
  assert_int_equal(sy_routes_edit_promote(DOC, "support-bot", "ft", &e, err, sizeof err), 0);
  assert_string_equal(e.summary,
                      "support-bot: promote ft (weights base 9000→0, ft 1000→10000); cascade "
                      "removed; shadow to ft removed; note: 1 rule still pins other arms");
  assert_true(weight_of(e.json, "support-bot", "ft") == 10000);
  assert_true(weight_of(e.json, "support-bot", "base") == 0);
  assert_int_equal(route_has(e.json, "support-bot", "cascade"), 0);
  assert_int_equal(route_has(e.json, "support-bot", "shadow"), 0);
  assert_int_equal(route_has(e.json, "support-bot", "rules"), 1);
  /* promoting again is a no-op edit */
  sy_routes_edit e2;
  assert_int_equal(sy_routes_edit_promote(e.json, "support-bot", "ft", &e2, err, sizeof err), 0);
  assert_string_equal(e2.summary, "support-bot: promote ft (weights unchanged); note: 1 rule "
                                  "still pins other arms");
  sy_routes_edit_free(&e2);
  sy_routes_edit_free(&e);

  /* promoting base keeps a shadow to ft */
  assert_int_equal(sy_routes_edit_promote(DOC, "support-bot", "base", &e, err, sizeof err), 0);
  assert_string_equal(e.summary,
                      "support-bot: promote base (weights base 9000→10000, ft 1000→0); cascade "
                      "removed");
  assert_int_equal(route_has(e.json, "support-bot", "shadow"), 1);
  sy_routes_edit_free(&e);

  assert_int_equal(sy_routes_edit_promote(DOC, "support-bot", "zz", &e, err, sizeof err),
                   SY_ENOTFOUND);
  assert_string_equal(err, "arm: route \"support-bot\" has no arm \"zz\"");
  assert_int_equal(sy_routes_edit_promote(DOC, "support-bot", "", &e, err, sizeof err), SY_EINVAL);
  assert_int_equal(sy_routes_edit_promote(DOC, "zz", "ft", &e, err, sizeof err), SY_ENOTFOUND);
}

static void test_edit_shadow(void **state) {
  (void)state;
  sy_routes_edit e, e2;
  char err[256];
  assert_int_equal(sy_routes_edit_shadow(DOC, "support-bot", "base", 2500, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "support-bot: shadow base at 2500 bp (was ft at 500 bp)");
  char *r = NULL;
  assert_int_equal(sy_routes_find(e.json, "support-bot", &r), 0);
  assert_non_null(strstr(r, "\"shadow\":{\"arm\":\"base\",\"rate_bp\":2500}"));
  free(r);
  sy_routes_edit_free(&e);

  assert_int_equal(sy_routes_edit_shadow(DOC, "support-bot", NULL, 0, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "support-bot: shadow removed (was ft at 500 bp)");
  assert_int_equal(route_has(e.json, "support-bot", "shadow"), 0);
  assert_int_equal(sy_routes_edit_shadow(e.json, "support-bot", NULL, 0, &e2, err, sizeof err),
                   SY_ENOTFOUND);
  assert_string_equal(err, "route \"support-bot\": has no shadow");
  assert_int_equal(sy_routes_edit_shadow(e.json, "support-bot", "ft", 100, &e2, err, sizeof err),
                   0);
  assert_string_equal(e2.summary, "support-bot: shadow ft at 100 bp (was none)");
  sy_routes_edit_free(&e2);
  sy_routes_edit_free(&e);

  assert_int_equal(sy_routes_edit_shadow(DOC, "support-bot", "ft", 10001, &e, err, sizeof err),
                   SY_EINVAL);
  assert_string_equal(err, "rate_bp: must be 0..10000");
  assert_int_equal(sy_routes_edit_shadow(DOC, "support-bot", "zz", 10, &e, err, sizeof err),
                   SY_ENOTFOUND);
}

static void test_edit_put_delete_restore(void **state) {
  (void)state;
  sy_routes_edit e, e2;
  char err[256];
  assert_int_equal(sy_routes_edit_put(NULL, R_A, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "a: created");
  assert_string_equal(e.json, "[" R_A "]");
  assert_int_equal(sy_routes_edit_put(e.json, R_B, &e2, err, sizeof err), 0);
  assert_string_equal(e2.json, "[" R_A "," R_B "]"); /* appended, order kept */
  sy_routes_edit_free(&e);
  assert_int_equal(
      sy_routes_edit_put(e2.json,
                         "{\"name\":\"a\",\"arms\":[{\"name\":\"base\",\"upstream\":\"v\"}],"
                         "\"capture\":false}",
                         &e, err, sizeof err),
      0);
  assert_string_equal(e.summary, "a: replaced (arms, capture changed)");
  assert_int_equal(strncmp(e.json, "[{\"name\":\"a\"", 12), 0); /* replaced in place */
  sy_routes_edit_free(&e);
  assert_int_equal(sy_routes_edit_put(e2.json, R_A, &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "a: replaced (no change)");
  sy_routes_edit_free(&e);

  assert_int_equal(sy_routes_edit_put(e2.json, "{\"arms\":[]}", &e, err, sizeof err), SY_EINVAL);
  assert_string_equal(err, "route.name: required, 1..128 bytes");
  assert_int_equal(sy_routes_edit_put(e2.json, "[" R_A "]", &e, err, sizeof err), SY_EINVAL);
  assert_int_equal(sy_routes_edit_put(e2.json, "{", &e, err, sizeof err), SY_EINVAL);

  assert_int_equal(sy_routes_edit_delete(e2.json, "a", &e, err, sizeof err), 0);
  assert_string_equal(e.summary, "a: deleted");
  assert_string_equal(e.json, "[" R_B "]");
  sy_routes_edit none;
  assert_int_equal(sy_routes_edit_delete(e.json, "a", &none, err, sizeof err), SY_ENOTFOUND);
  assert_null(none.json);

  /* restore: re-create a from an old document, replace, remove */
  sy_routes_edit e3;
  assert_int_equal(sy_routes_edit_restore(e.json, e2.json, 7, "a", &e3, err, sizeof err), 0);
  assert_string_equal(e3.summary, "a: restored from version 7 (re-created)");
  assert_string_equal(e3.json, "[" R_B "," R_A "]");
  sy_routes_edit_free(&e3);
  assert_int_equal(sy_routes_edit_restore(e2.json, "[" R_A2 "]", 3, "a", &e3, err, sizeof err), 0);
  assert_string_equal(e3.summary, "a: restored from version 3");
  assert_string_equal(e3.json, "[" R_A2 "," R_B "]");
  sy_routes_edit_free(&e3);
  assert_int_equal(sy_routes_edit_restore(e2.json, "[]", 2, "b", &e3, err, sizeof err), 0);
  assert_string_equal(e3.summary, "b: removed (did not exist in version 2)");
  assert_string_equal(e3.json, "[" R_A "]");
  sy_routes_edit_free(&e3);
  assert_int_equal(sy_routes_edit_restore(e2.json, "[]", 2, "zz", &e3, err, sizeof err),
                   SY_ENOTFOUND);
  sy_routes_edit_free(&e);
  sy_routes_edit_free(&e2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_conflict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_put_rejects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history_many_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_previous_and_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_route_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
      cmocka_unit_test(test_edit_split),
      cmocka_unit_test(test_edit_promote),
      cmocka_unit_test(test_edit_shadow),
      cmocka_unit_test(test_edit_put_delete_restore),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
