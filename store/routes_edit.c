/* The pure JSON half of store/routes.h: edits of a routes document behind
 * the admin RPCs (put, split, promote, shadow, delete, per-route restore).
 * No store and no router here: the caller validates the result with the
 * router's parser before storing it. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/routes.h"
#include "store/routes_internal.h"

#define FULL_BP 10000u

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int name_ok(const cJSON *v) {
  if (!cJSON_IsString(v)) return 0;
  size_t n = strlen(v->valuestring);
  return n >= 1 && n <= SY_ROUTES_MAX_NAME;
}

int sy__routes_parse_doc(const char *json, cJSON **out, char *err, size_t errlen) {
  *out = NULL;
  if (!json) json = "[]";
  if (strnlen(json, SY_ROUTES_MAX_JSON_BYTES + 1) > SY_ROUTES_MAX_JSON_BYTES)
    return fail(err, errlen, SY_ETOOBIG, "routes: over %u bytes", SY_ROUTES_MAX_JSON_BYTES);
  cJSON *doc = cJSON_ParseWithOpts(json, NULL, 1);
  if (!doc) return fail(err, errlen, SY_EINVAL, "routes: not valid JSON");
  int rc = 0;
  if (!cJSON_IsArray(doc)) {
    rc = fail(err, errlen, SY_EINVAL, "routes: must be an array");
    goto done;
  }
  int n = cJSON_GetArraySize(doc);
  if (n > SY_ROUTES_MAX_ROUTES) {
    rc = fail(err, errlen, SY_ETOOBIG, "routes: more than %d routes", SY_ROUTES_MAX_ROUTES);
    goto done;
  }
  int i = 0;
  for (cJSON *r = doc->child; r; r = r->next, i++) {
    if (!cJSON_IsObject(r)) {
      rc = fail(err, errlen, SY_EINVAL, "routes[%d]: must be an object", i);
      goto done;
    }
    if (!name_ok(cJSON_GetObjectItemCaseSensitive(r, "name"))) {
      rc = fail(err, errlen, SY_EINVAL, "routes[%d].name: required, 1..%d bytes", i,
                SY_ROUTES_MAX_NAME);
      goto done;
    }
  }
  /* unique names: sorted view, neighbours compared */
  sy__routes_named *v = NULL;
  size_t cnt = 0;
  if ((rc = sy__routes_sorted(doc, &v, &cnt)) != 0) goto done;
  for (size_t k = 1; k < cnt; k++)
    if (strcmp(v[k - 1].name, v[k].name) == 0) {
      rc = fail(err, errlen, SY_EINVAL, "routes: name \"%s\" used twice", v[k].name);
      break;
    }
  free(v);
done:
  if (rc)
    cJSON_Delete(doc);
  else
    *out = doc;
  return rc;
}

static int named_cmp(const void *a, const void *b) {
  return strcmp(((const sy__routes_named *)a)->name, ((const sy__routes_named *)b)->name);
}

int sy__routes_sorted(const cJSON *doc, sy__routes_named **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t cnt = (size_t)cJSON_GetArraySize(doc);
  if (cnt == 0) return 0;
  sy__routes_named *v = calloc(cnt, sizeof *v);
  if (!v) return SY_ENOMEM;
  size_t i = 0;
  for (const cJSON *r = doc->child; r && i < cnt; r = r->next, i++) {
    v[i].name = cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring;
    v[i].item = r;
  }
  qsort(v, cnt, sizeof *v, named_cmp);
  *out = v;
  *n = cnt;
  return 0;
}

/* ---- helpers on one route -------------------------------------------- */

static cJSON *find_route(cJSON *doc, const char *name, int *index) {
  int i = 0;
  for (cJSON *r = doc->child; r; r = r->next, i++) {
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(r, "name");
    if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0) {
      if (index) *index = i;
      return r;
    }
  }
  return NULL;
}

/* Parses cur and finds `route` in it, with the error messages every edit uses. */
static int open_route(const char *cur, const char *route, cJSON **doc, cJSON **r, char *err,
                      size_t errlen) {
  *r = NULL;
  if (!route || !*route) return fail(err, errlen, SY_EINVAL, "route: required");
  int rc = sy__routes_parse_doc(cur, doc, err, errlen);
  if (rc) return rc;
  *r = find_route(*doc, route, NULL);
  if (!*r) {
    cJSON_Delete(*doc);
    *doc = NULL;
    return fail(err, errlen, SY_ENOTFOUND, "route \"%s\": not found", route);
  }
  return 0;
}

static cJSON *arm_by_name(cJSON *arms, const char *name) {
  for (cJSON *a = arms ? arms->child : NULL; a; a = a->next) {
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
    if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0) return a;
  }
  return NULL;
}

static const char *arm_name(const cJSON *a) {
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
  return cJSON_IsString(nm) ? nm->valuestring : "?";
}

/* The arms array, checked to be an array of named objects. */
static int route_arms(cJSON *r, const char *route, cJSON **arms, char *err, size_t errlen) {
  *arms = cJSON_GetObjectItemCaseSensitive(r, "arms");
  if (!cJSON_IsArray(*arms) || !(*arms)->child)
    return fail(err, errlen, SY_EINVAL, "route \"%s\": arms: must be a non-empty array", route);
  int i = 0;
  for (cJSON *a = (*arms)->child; a; a = a->next, i++)
    if (!cJSON_IsObject(a) || !name_ok(cJSON_GetObjectItemCaseSensitive(a, "name")))
      return fail(err, errlen, SY_EINVAL, "route \"%s\": arms[%d].name: required", route, i);
  return 0;
}

static int has_cascade(const cJSON *r) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "cascade");
  return c && !cJSON_IsNull(c);
}

/* The weight an arm has, with the router's defaults for a missing one. */
static double arm_weight(const cJSON *r, const cJSON *arms, const cJSON *a) {
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(a, "weight_bp");
  if (cJSON_IsNumber(w)) return w->valuedouble;
  int lone = arms->child && !arms->child->next;
  return lone && !has_cascade(r) ? FULL_BP : 0;
}

static int set_number(cJSON *obj, const char *key, double v) {
  cJSON *num = cJSON_CreateNumber(v);
  if (!num) return SY_ENOMEM;
  if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
    if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, num)) {
      cJSON_Delete(num);
      return SY_ENOMEM;
    }
    return 0;
  }
  if (!cJSON_AddItemToObject(obj, key, num)) {
    cJSON_Delete(num);
    return SY_ENOMEM;
  }
  return 0;
}

/* Sets every arm's weight from want[] (index order of arms) and appends
 * "base 9000→8000, ft 1000→2000" for the arms that changed to sum. */
static int apply_weights(cJSON *r, cJSON *arms, const uint32_t *want, sy_buf *sum,
                         int *changed) {
  *changed = 0;
  double old[SY_ROUTES_MAX_ARMS];
  size_t i = 0;
  for (cJSON *a = arms->child; a && i < SY_ROUTES_MAX_ARMS; a = a->next, i++)
    old[i] = arm_weight(r, arms, a);
  i = 0;
  int rc = 0;
  for (cJSON *a = arms->child; a && i < SY_ROUTES_MAX_ARMS && rc == 0; a = a->next, i++) {
    if (old[i] != (double)want[i]) {
      rc = sy_buf_printf(sum, "%s%s %.0f→%u", *changed ? ", " : "", arm_name(a), old[i], want[i]);
      (*changed)++;
    }
    if (rc == 0) rc = set_number(a, "weight_bp", want[i]);
  }
  return rc;
}

/* Prints the new document and hands both strings to out. Takes doc. */
static int finish(cJSON *doc, sy_buf *sum, sy_routes_edit *out, char *err, size_t errlen) {
  char *json = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  if (!json) {
    sy_buf_free(sum);
    return SY_ENOMEM;
  }
  size_t len = strlen(json);
  if (len > SY_ROUTES_MAX_JSON_BYTES) {
    free(json);
    sy_buf_free(sum);
    return fail(err, errlen, SY_ETOOBIG, "routes: result over %u bytes",
                SY_ROUTES_MAX_JSON_BYTES);
  }
  char *s = sum->data ? sy_buf_detach(sum, NULL) : strdup("");
  if (!s) {
    free(json);
    return SY_ENOMEM;
  }
  out->json = json;
  out->len = len;
  out->summary = s;
  return 0;
}

void sy_routes_edit_free(sy_routes_edit *e) {
  if (!e) return;
  free(e->json);
  free(e->summary);
  memset(e, 0, sizeof *e);
}

/* ---- the edits ---------------------------------------------------------- */

static void list_changed_keys(const cJSON *old, const cJSON *neu, sy_buf *sum, int *n) {
  for (const cJSON *k = old->child; k; k = k->next) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(neu, k->string);
    if (!o || !cJSON_Compare(k, o, 1))
      if (sy_buf_printf(sum, "%s%s", (*n)++ ? ", " : "", k->string) != 0) return;
  }
  for (const cJSON *k = neu->child; k; k = k->next)
    if (!cJSON_GetObjectItemCaseSensitive(old, k->string))
      if (sy_buf_printf(sum, "%s%s", (*n)++ ? ", " : "", k->string) != 0) return;
}

int sy_routes_edit_put(const char *cur, const char *route_json, sy_routes_edit *out, char *err,
                       size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!route_json) return fail(err, errlen, SY_EINVAL, "route: required");
  if (strnlen(route_json, SY_ROUTES_MAX_ONE_JSON + 1) > SY_ROUTES_MAX_ONE_JSON)
    return fail(err, errlen, SY_ETOOBIG, "route: over %u bytes", SY_ROUTES_MAX_ONE_JSON);
  cJSON *nr = cJSON_ParseWithOpts(route_json, NULL, 1);
  if (!nr) return fail(err, errlen, SY_EINVAL, "route: not valid JSON");
  if (!cJSON_IsObject(nr) || !name_ok(cJSON_GetObjectItemCaseSensitive(nr, "name"))) {
    cJSON_Delete(nr);
    return fail(err, errlen, SY_EINVAL, "route.name: required, 1..%d bytes", SY_ROUTES_MAX_NAME);
  }
  const char *name = cJSON_GetObjectItemCaseSensitive(nr, "name")->valuestring;
  cJSON *doc;
  int rc = sy__routes_parse_doc(cur, &doc, err, errlen);
  if (rc) {
    cJSON_Delete(nr);
    return rc;
  }
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  int idx;
  cJSON *old = find_route(doc, name, &idx);
  if (!old) {
    if (cJSON_GetArraySize(doc) >= SY_ROUTES_MAX_ROUTES) {
      rc = fail(err, errlen, SY_ETOOBIG, "routes: more than %d routes", SY_ROUTES_MAX_ROUTES);
    } else {
      rc = sy_buf_printf(&sum, "%s: created", name);
      if (rc == 0 && !cJSON_AddItemToArray(doc, nr)) rc = SY_ENOMEM;
      if (rc == 0) nr = NULL;
    }
  } else {
    int n = 0;
    rc = sy_buf_printf(&sum, "%s: replaced (", name);
    if (rc == 0) list_changed_keys(old, nr, &sum, &n);
    if (rc == 0) rc = sy_buf_appends(&sum, n ? " changed)" : "no change)");
    if (rc == 0 && !cJSON_ReplaceItemInArray(doc, idx, nr)) rc = SY_ENOMEM;
    if (rc == 0) nr = NULL;
  }
  cJSON_Delete(nr);
  if (rc) {
    cJSON_Delete(doc);
    sy_buf_free(&sum);
    return rc;
  }
  return finish(doc, &sum, out, err, errlen);
}

int sy_routes_edit_split(const char *cur, const char *route, const sy_routes_weight *w,
                         size_t n, sy_routes_edit *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!w || n == 0) return fail(err, errlen, SY_EINVAL, "weights: at least one arm required");
  if (n > SY_ROUTES_MAX_ARMS)
    return fail(err, errlen, SY_EINVAL, "weights: more than %d arms", SY_ROUTES_MAX_ARMS);
  cJSON *doc, *r, *arms;
  int rc = open_route(cur, route, &doc, &r, err, errlen);
  if (rc) return rc;
  if ((rc = route_arms(r, route, &arms, err, errlen)) != 0) goto fail_doc;
  if (cJSON_GetArraySize(arms) > SY_ROUTES_MAX_ARMS) {
    rc = fail(err, errlen, SY_EINVAL, "route \"%s\": more than %d arms", route,
              SY_ROUTES_MAX_ARMS);
    goto fail_doc;
  }
  uint32_t want[SY_ROUTES_MAX_ARMS] = {0};
  int seen[SY_ROUTES_MAX_ARMS] = {0};
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!w[i].arm || !*w[i].arm) {
      rc = fail(err, errlen, SY_EINVAL, "weights[%zu].arm: required", i);
      goto fail_doc;
    }
    if (w[i].weight_bp > FULL_BP) {
      rc = fail(err, errlen, SY_EINVAL, "weights[%zu].weight_bp: must be 0..10000", i);
      goto fail_doc;
    }
    int k = 0;
    cJSON *a = arms->child;
    for (; a && strcmp(arm_name(a), w[i].arm) != 0; a = a->next) k++;
    if (!a) {
      rc = fail(err, errlen, SY_ENOTFOUND, "weights[%zu].arm: route \"%s\" has no arm \"%s\"", i,
                route, w[i].arm);
      goto fail_doc;
    }
    if (seen[k]++) {
      rc = fail(err, errlen, SY_EINVAL, "weights[%zu].arm: \"%s\" listed twice", i, w[i].arm);
      goto fail_doc;
    }
    want[k] = w[i].weight_bp;
    total += w[i].weight_bp;
  }
  if (total != FULL_BP) {
    rc = fail(err, errlen, SY_EINVAL, "weights: sum to %llu, must be 10000",
              (unsigned long long)total);
    goto fail_doc;
  }
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  int changed = 0;
  rc = sy_buf_printf(&sum, "%s: weights ", route);
  if (rc == 0) rc = apply_weights(r, arms, want, &sum, &changed);
  if (rc == 0 && !changed) rc = sy_buf_appends(&sum, "unchanged");
  if (rc) {
    sy_buf_free(&sum);
    goto fail_doc;
  }
  return finish(doc, &sum, out, err, errlen);
fail_doc:
  cJSON_Delete(doc);
  return rc;
}

int sy_routes_edit_promote(const char *cur, const char *route, const char *arm,
                           sy_routes_edit *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!arm || !*arm) return fail(err, errlen, SY_EINVAL, "arm: required");
  cJSON *doc, *r, *arms;
  int rc = open_route(cur, route, &doc, &r, err, errlen);
  if (rc) return rc;
  if ((rc = route_arms(r, route, &arms, err, errlen)) != 0) goto fail_doc;
  if (cJSON_GetArraySize(arms) > SY_ROUTES_MAX_ARMS) {
    rc = fail(err, errlen, SY_EINVAL, "route \"%s\": more than %d arms", route,
              SY_ROUTES_MAX_ARMS);
    goto fail_doc;
  }
  if (!arm_by_name(arms, arm)) {
    rc = fail(err, errlen, SY_ENOTFOUND, "arm: route \"%s\" has no arm \"%s\"", route, arm);
    goto fail_doc;
  }
  uint32_t want[SY_ROUTES_MAX_ARMS] = {0};
  size_t i = 0;
  for (cJSON *a = arms->child; a; a = a->next, i++) want[i] = strcmp(arm_name(a), arm) ? 0 : FULL_BP;
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  int changed = 0;
  rc = sy_buf_printf(&sum, "%s: promote %s (weights ", route, arm);
  if (rc == 0) rc = apply_weights(r, arms, want, &sum, &changed);
  if (rc == 0) rc = sy_buf_appends(&sum, changed ? ")" : "unchanged)");
  /* the cascade could still escalate away from the promoted arm */
  if (rc == 0 && has_cascade(r)) {
    cJSON_DeleteItemFromObjectCaseSensitive(r, "cascade");
    rc = sy_buf_appends(&sum, "; cascade removed");
  } else if (rc == 0 && cJSON_GetObjectItemCaseSensitive(r, "cascade")) {
    cJSON_DeleteItemFromObjectCaseSensitive(r, "cascade"); /* a null one */
  }
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(r, "shadow");
  const cJSON *sh_arm = sh ? cJSON_GetObjectItemCaseSensitive(sh, "arm") : NULL;
  if (rc == 0 && cJSON_IsString(sh_arm) && strcmp(sh_arm->valuestring, arm) == 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(r, "shadow");
    rc = sy_buf_printf(&sum, "; shadow to %s removed", arm);
  }
  int pinned = 0;
  const cJSON *rules = cJSON_GetObjectItemCaseSensitive(r, "rules");
  for (const cJSON *ru = cJSON_IsArray(rules) ? rules->child : NULL; ru; ru = ru->next) {
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(ru, "arm");
    if (cJSON_IsString(ra) && strcmp(ra->valuestring, arm) != 0) pinned++;
  }
  if (rc == 0 && pinned)
    rc = sy_buf_printf(&sum, "; note: %d rule%s still pin%s other arms", pinned,
                       pinned == 1 ? "" : "s", pinned == 1 ? "s" : "");
  if (rc) {
    sy_buf_free(&sum);
    goto fail_doc;
  }
  return finish(doc, &sum, out, err, errlen);
fail_doc:
  cJSON_Delete(doc);
  return rc;
}

/* "ft at 1000 bp" or "none", for summaries. */
static int describe_shadow(const cJSON *sh, sy_buf *b) {
  const cJSON *a = sh ? cJSON_GetObjectItemCaseSensitive(sh, "arm") : NULL;
  if (!cJSON_IsString(a)) return sy_buf_appends(b, "none");
  const cJSON *rt = cJSON_GetObjectItemCaseSensitive(sh, "rate_bp");
  return sy_buf_printf(b, "%s at %.0f bp", a->valuestring, cJSON_IsNumber(rt) ? rt->valuedouble : 0);
}

int sy_routes_edit_shadow(const char *cur, const char *route, const char *arm, uint32_t rate_bp,
                          sy_routes_edit *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (arm && rate_bp > FULL_BP) return fail(err, errlen, SY_EINVAL, "rate_bp: must be 0..10000");
  if (arm && !*arm) return fail(err, errlen, SY_EINVAL, "arm: must not be empty");
  cJSON *doc, *r, *arms;
  int rc = open_route(cur, route, &doc, &r, err, errlen);
  if (rc) return rc;
  cJSON *old = cJSON_GetObjectItemCaseSensitive(r, "shadow");
  if (old && cJSON_IsNull(old)) old = NULL;
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  if (!arm) {
    if (!old) {
      rc = fail(err, errlen, SY_ENOTFOUND, "route \"%s\": has no shadow", route);
      goto fail_doc;
    }
    rc = sy_buf_printf(&sum, "%s: shadow removed (was ", route);
    if (rc == 0) rc = describe_shadow(old, &sum);
    if (rc == 0) rc = sy_buf_appends(&sum, ")");
    cJSON_DeleteItemFromObjectCaseSensitive(r, "shadow");
  } else {
    if ((rc = route_arms(r, route, &arms, err, errlen)) != 0) goto fail_doc;
    if (!arm_by_name(arms, arm)) {
      rc = fail(err, errlen, SY_ENOTFOUND, "arm: route \"%s\" has no arm \"%s\"", route, arm);
      goto fail_doc;
    }
    rc = sy_buf_printf(&sum, "%s: shadow %s at %u bp (was ", route, arm, rate_bp);
    if (rc == 0) rc = describe_shadow(old, &sum);
    if (rc == 0) rc = sy_buf_appends(&sum, ")");
    cJSON *sh = cJSON_CreateObject();
    if (rc == 0 && (!sh || !cJSON_AddStringToObject(sh, "arm", arm) ||
                    !cJSON_AddNumberToObject(sh, "rate_bp", rate_bp)))
      rc = SY_ENOMEM;
    if (rc == 0 && old) {
      if (!cJSON_ReplaceItemInObjectCaseSensitive(r, "shadow", sh)) rc = SY_ENOMEM;
    } else if (rc == 0 && !cJSON_AddItemToObject(r, "shadow", sh)) {
      rc = SY_ENOMEM;
    }
    if (rc) cJSON_Delete(sh);
  }
  if (rc) goto fail_doc;
  return finish(doc, &sum, out, err, errlen);
fail_doc:
  sy_buf_free(&sum);
  cJSON_Delete(doc);
  return rc;
}

int sy_routes_edit_delete(const char *cur, const char *route, sy_routes_edit *out, char *err,
                          size_t errlen) {
  memset(out, 0, sizeof *out);
  cJSON *doc, *r;
  int rc = open_route(cur, route, &doc, &r, err, errlen);
  if (rc) return rc;
  cJSON_Delete(cJSON_DetachItemViaPointer(doc, r));
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  if ((rc = sy_buf_printf(&sum, "%s: deleted", route)) != 0) {
    cJSON_Delete(doc);
    return rc;
  }
  return finish(doc, &sum, out, err, errlen);
}

int sy_routes_edit_restore(const char *cur, const char *old, uint64_t old_version,
                           const char *route, sy_routes_edit *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!route || !*route) return fail(err, errlen, SY_EINVAL, "route: required");
  cJSON *doc, *odoc;
  int rc = sy__routes_parse_doc(cur, &doc, err, errlen);
  if (rc) return rc;
  if ((rc = sy__routes_parse_doc(old, &odoc, err, errlen)) != 0) {
    cJSON_Delete(doc);
    return rc;
  }
  int idx;
  cJSON *now = find_route(doc, route, &idx), *then = find_route(odoc, route, NULL);
  sy_buf sum;
  sy_buf_init(&sum, SY_ROUTES_MAX_SUMMARY);
  unsigned long long ov = (unsigned long long)old_version;
  if (!now && !then) {
    rc = fail(err, errlen, SY_ENOTFOUND, "route \"%s\": not found in the current document nor "
              "in version %llu", route, ov);
  } else if (!then) {
    cJSON_Delete(cJSON_DetachItemViaPointer(doc, now));
    rc = sy_buf_printf(&sum, "%s: removed (did not exist in version %llu)", route, ov);
  } else {
    cJSON *copy = cJSON_Duplicate(then, 1);
    if (!copy) {
      rc = SY_ENOMEM;
    } else if (now ? !cJSON_ReplaceItemInArray(doc, idx, copy) : !cJSON_AddItemToArray(doc, copy)) {
      cJSON_Delete(copy);
      rc = SY_ENOMEM;
    } else {
      rc = sy_buf_printf(&sum, "%s: restored from version %llu%s", route, ov,
                         now ? "" : " (re-created)");
    }
  }
  cJSON_Delete(odoc);
  if (rc) {
    sy_buf_free(&sum);
    cJSON_Delete(doc);
    return rc;
  }
  return finish(doc, &sum, out, err, errlen);
}

int sy_routes_find(const char *doc, const char *route, char **route_json) {
  *route_json = NULL;
  cJSON *d, *r;
  int rc = open_route(doc, route, &d, &r, NULL, 0);
  if (rc) return rc;
  *route_json = cJSON_PrintUnformatted(r);
  cJSON_Delete(d);
  return *route_json ? 0 : SY_ENOMEM;
}
