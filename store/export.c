#include "store/export.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/err.h"
#include "common/log.h"
#include "store/ftjson.h"

#define SPLIT_SEED 0x5357594152445631ull /* "SWYARDV1": changing it reshuffles every split */
#define NORM_MAX_BYTES (32u << 20)       /* normalised prompt/answer text */
#define LINE_MAX_BYTES (64u << 20)       /* one JSONL line */

/* ---- bounded hash sets ----------------------------------------------- */

/* Set of 128-bit hashes, open addressing; {0,0} marks an empty slot. */
typedef struct {
  XXH128_hash_t *slots;
  size_t cap, n, max;
} hset;

static int hset_grow(hset *h) {
  size_t ncap = h->cap ? h->cap * 2 : 1024;
  XXH128_hash_t *ns = calloc(ncap, sizeof *ns);
  if (!ns) return SY_ENOMEM;
  for (size_t i = 0; i < h->cap; i++) {
    XXH128_hash_t v = h->slots[i];
    if (!v.low64 && !v.high64) continue;
    size_t j = (size_t)v.low64 & (ncap - 1);
    while (ns[j].low64 || ns[j].high64) j = (j + 1) & (ncap - 1);
    ns[j] = v;
  }
  free(h->slots);
  h->slots = ns;
  h->cap = ncap;
  return 0;
}

/* 1 added, 0 already present, SY_EFULL (set at max, not added), SY_ENOMEM. */
static int hset_add(hset *h, XXH128_hash_t v) {
  if (!v.low64 && !v.high64) v.low64 = 1;
  if (h->cap) {
    for (size_t j = (size_t)v.low64 & (h->cap - 1);; j = (j + 1) & (h->cap - 1)) {
      XXH128_hash_t *s = &h->slots[j];
      if (!s->low64 && !s->high64) break;
      if (XXH128_isEqual(*s, v)) return 0;
    }
  }
  if (h->n >= h->max) return SY_EFULL;
  if ((h->n + 1) * 4 > h->cap * 3) {
    int rc = hset_grow(h);
    if (rc) return rc;
  }
  size_t j = (size_t)v.low64 & (h->cap - 1);
  while (h->slots[j].low64 || h->slots[j].high64) j = (j + 1) & (h->cap - 1);
  h->slots[j] = v;
  h->n++;
  return 1;
}

/* Prompt hash -> first positively and first negatively rated capture. */
typedef struct {
  uint64_t key; /* 0 = empty */
  uint64_t pos_id, neg_id;
  int done;
} pair_slot;

typedef struct {
  pair_slot *slots;
  size_t cap, n;
} pmap;

static pair_slot *pmap_get(pmap *m, uint64_t key) {
  if (!key) key = 1;
  /* grow at 75% load; once at the cap no more keys are added, so an empty
   * slot always remains and lookups terminate */
  if (!m->cap || ((m->n + 1) * 4 > m->cap * 3 && m->n < SY_EXPORT_MAX_PAIR_PROMPTS)) {
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    pair_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return NULL;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->slots[i].key) continue;
      size_t j = (size_t)m->slots[i].key & (ncap - 1);
      while (ns[j].key) j = (j + 1) & (ncap - 1);
      ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
  }
  size_t j = (size_t)key & (m->cap - 1);
  for (; m->slots[j].key; j = (j + 1) & (m->cap - 1))
    if (m->slots[j].key == key) return &m->slots[j];
  if (m->n >= SY_EXPORT_MAX_PAIR_PROMPTS) return NULL;
  m->slots[j].key = key;
  m->n++;
  return &m->slots[j];
}

/* ---- export state ---------------------------------------------------- */

typedef struct {
  sy_store *s;
  const sy_export_opts *o;
  sy_export_summary *sum;
  hset dedup;
  pmap pm;
  sy_buf norm;  /* normalised prompt (+ answer) */
  sy_buf norm2; /* scratch for comparing answers */
} exp_ctx;

typedef struct {
  int rated;
  double rating; /* mean */
  const char *correction; /* latest non-empty, or NULL */
} fb_info;

static void analyse_feedback(sy_feedback *const *fb, size_t n, fb_info *fi) {
  double total = 0;
  size_t cnt = 0;
  fi->correction = NULL;
  for (size_t i = 0; i < n; i++) { /* oldest first, so the last correction wins */
    const sy_feedback *f = fb[i];
    if (f->correction && f->correction[0]) fi->correction = f->correction;
    switch (f->rating) {
    case SWITCHYARD__V1__FEEDBACK__RATING__UP: total += 1; cnt++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__DOWN: total -= 1; cnt++; break;
    case SWITCHYARD__V1__FEEDBACK__RATING__SCORE: total += f->score; cnt++; break;
    default: break;
    }
  }
  fi->rated = cnt > 0;
  fi->rating = cnt ? total / (double)cnt : 0;
}

static int status_ok(const sy_capture *c) {
  return c->http_status >= 200 && c->http_status < 300 && !(c->error && c->error[0]);
}

static int is_truncated(const sy_capture *c) {
  return c->truncated || (c->finish_reason && !strcmp(c->finish_reason, "length"));
}

static void count_route(sy_export_summary *sum, const char *route) {
  for (size_t i = 0; i < sum->n_routes; i++)
    if (!strncmp(sum->routes[i].name, route, SY_EXPORT_ROUTE_NAME_MAX - 1)) {
      sum->routes[i].count++;
      return;
    }
  if (sum->n_routes == SY_EXPORT_MAX_ROUTES) {
    sum->routes_other++;
    return;
  }
  sy_export_route_count *r = &sum->routes[sum->n_routes++];
  snprintf(r->name, sizeof r->name, "%s", route);
  r->count = 1;
}

/* Prints obj, validates the line and writes it with a newline. 0, 1 (invalid,
 * not written), SY_EIO, SY_ENOMEM. */
static int emit(cJSON *obj, FILE *f, int (*validate)(const char *, size_t)) {
  char *line = cJSON_PrintUnformatted(obj);
  if (!line) return SY_ENOMEM;
  size_t len = strlen(line);
  int rc = 0;
  if (len > LINE_MAX_BYTES || validate(line, len) != 0) {
    rc = 1;
  } else if (fwrite(line, 1, len, f) != len || fputc('\n', f) == EOF) {
    sy_error("export: write failed");
    rc = SY_EIO;
  }
  cJSON_free(line);
  return rc;
}

/* 1 when two assistant messages normalise to the same bytes. */
static int same_answer(exp_ctx *x, const cJSON *a, const cJSON *b) {
  sy_buf_reset(&x->norm2);
  if (sy_ftjson_norm_message(a, &x->norm2) != 0) return 1;
  size_t la = x->norm2.len;
  if (sy_ftjson_norm_message(b, &x->norm2) != 0) return 1;
  return x->norm2.len == 2 * la && !memcmp(x->norm2.data, x->norm2.data + la, la);
}

/* Writes one DPO line; counts it under *kind_counter. Borrowed arguments. */
static int write_pair(exp_ctx *x, const cJSON *msgs, const cJSON *tools, const cJSON *pref,
                      const cJSON *npref, uint64_t *kind_counter) {
  if (!msgs || !pref || !npref || same_answer(x, pref, npref)) {
    x->sum->pairs_skipped++;
    return 0;
  }
  cJSON *obj = cJSON_CreateObject(), *in = cJSON_CreateObject();
  cJSON *pa = cJSON_CreateArray(), *na = cJSON_CreateArray();
  int rc = SY_ENOMEM;
  if (!obj || !in || !pa || !na) {
    cJSON_Delete(in);
    cJSON_Delete(pa);
    cJSON_Delete(na);
    goto out;
  }
  cJSON_AddItemToObject(obj, "input", in);
  cJSON_AddItemToObject(in, "messages", cJSON_Duplicate(msgs, 1));
  if (tools) cJSON_AddItemToObject(in, "tools", cJSON_Duplicate(tools, 1));
  cJSON_AddItemToArray(pa, cJSON_Duplicate(pref, 1));
  cJSON_AddItemToArray(na, cJSON_Duplicate(npref, 1));
  cJSON_AddItemToObject(obj, "preferred_output", pa);
  cJSON_AddItemToObject(obj, "non_preferred_output", na);
  rc = emit(obj, x->o->pairs, sy_ftjson_validate_pair);
  if (rc == 1) {
    x->sum->pairs_skipped++;
    rc = 0;
  } else if (rc == 0) {
    x->sum->pairs++;
    (*kind_counter)++;
  }
out:
  cJSON_Delete(obj);
  return rc;
}

/* The captured answer of a capture, or NULL when it failed or is empty. */
/* The answer the capture holds; a failed or cut one only when allow_failed
 * (--include-errors keeps partial answers). */
static cJSON *captured_answer(const sy_capture *c, int allow_failed) {
  cJSON *m = NULL;
  if (!status_ok(c) && !allow_failed) return NULL;
  sy_ftjson_answer(c->response_body.data, c->response_body.len, &m);
  return m;
}

/* A cascade attempt that was not accepted vs its parent's final answer. */
static int cascade_pair(exp_ctx *x, const sy_capture *att) {
  sy_capture *parent = NULL;
  sy_feedback **fb = NULL;
  size_t nfb = 0;
  cJSON *msgs = NULL, *tools = NULL, *pref = NULL, *npref = NULL;
  int rc = sy_store_get_capture(x->s, att->parent_id, &parent);
  if (rc == 0) rc = sy_store_get_feedback(x->s, att->parent_id, &fb, &nfb);
  if (rc == 0)
    rc = sy_ftjson_prompt(parent->request_body.data, parent->request_body.len, &msgs, &tools,
                          NULL);
  if (rc == 0) {
    fb_info fi;
    analyse_feedback(fb, nfb, &fi);
    pref = fi.correction ? sy_ftjson_text_answer(fi.correction) : captured_answer(parent, 0);
    npref = captured_answer(att, 0);
  }
  rc = rc == SY_ENOMEM ? rc : 0;
  if (rc == 0) rc = write_pair(x, msgs, tools, pref, npref, &x->sum->pairs_cascade);
  cJSON_Delete(msgs);
  cJSON_Delete(tools);
  cJSON_Delete(pref);
  cJSON_Delete(npref);
  sy_store_feedback_free(fb, nfb);
  sy_store_capture_free(parent);
  return rc;
}

/* Tracks rated answers by prompt; when a prompt has both a positive and a
 * negative one, writes their pair. ans is this capture's captured answer. */
static int rating_pair(exp_ctx *x, const sy_capture *c, const fb_info *fi, uint64_t phash,
                       const cJSON *msgs, const cJSON *tools, const cJSON *ans) {
  if (!fi->rated || fi->rating == 0 || !ans) return 0;
  pair_slot *sl = pmap_get(&x->pm, phash);
  if (!sl || sl->done) return 0;
  int pos = fi->rating > 0;
  uint64_t *mine = pos ? &sl->pos_id : &sl->neg_id, other = pos ? sl->neg_id : sl->pos_id;
  if (!*mine) *mine = c->id;
  if (!other) return 0;
  sl->done = 1;
  sy_capture *oc = NULL;
  cJSON *oans = NULL;
  if (sy_store_get_capture(x->s, other, &oc) == 0) oans = captured_answer(oc, 0);
  int rc = write_pair(x, msgs, tools, pos ? ans : oans, pos ? oans : ans, &x->sum->pairs_rating);
  cJSON_Delete(oans);
  sy_store_capture_free(oc);
  return rc;
}

/* Quality filters for the SFT output; returns 1 when the capture is dropped. */
static int filtered_out(exp_ctx *x, const sy_capture *c, const fb_info *fi) {
  const sy_export_opts *o = x->o;
  sy_export_summary *sum = x->sum;
  if (o->only_corrected && !fi->correction) return ++sum->filtered.not_corrected, 1;
  if (o->has_min_rating && (!fi->rated || fi->rating < o->min_rating))
    return ++sum->filtered.min_rating, 1;
  if (o->only_positive && !(fi->rated && fi->rating > 0)) return ++sum->filtered.not_positive, 1;
  if (o->exclude_negative && fi->rated && fi->rating < 0) return ++sum->filtered.negative, 1;
  if (!fi->correction && !o->include_errors) {
    if (!status_ok(c)) return ++sum->filtered.error, 1;
    if (is_truncated(c)) return ++sum->filtered.truncated, 1;
  }
  return 0;
}

/* Builds, dedups, validates and writes the SFT line. Borrowed arguments. */
static int write_sft(exp_ctx *x, const sy_capture *c, const fb_info *fi, uint64_t phash,
                     cJSON *msgs, const cJSON *tools, int parallel, const cJSON *answer) {
  sy_export_summary *sum = x->sum;
  size_t plen = x->norm.len;
  int rc = sy_buf_append(&x->norm, "\x1c", 1);
  if (rc == 0) rc = sy_ftjson_norm_message(answer, &x->norm);
  if (rc) return rc == SY_ETOOBIG ? (++sum->filtered.unparseable, 0) : rc;
  rc = hset_add(&x->dedup, XXH3_128bits(x->norm.data, x->norm.len));
  x->norm.len = plen;
  if (rc == 0) return ++sum->filtered.duplicate, 0;
  if (rc == SY_EFULL) sum->filtered.dedup_full++;
  else if (rc < 0) return rc;

  cJSON *obj = cJSON_CreateObject();
  if (!obj) return SY_ENOMEM;
  cJSON_AddItemReferenceToObject(obj, "messages", msgs);
  cJSON_AddItemToArray(msgs, cJSON_Duplicate(answer, 1));
  if (tools) cJSON_AddItemReferenceToObject(obj, "tools", (cJSON *)tools);
  if (parallel >= 0) cJSON_AddBoolToObject(obj, "parallel_tool_calls", parallel);
  /* XXH3 of the prompt only: the same prompt always lands on the same side */
  int to_val = x->o->val_fraction > 0 &&
               (double)(phash >> 11) / 9007199254740992.0 < x->o->val_fraction;
  rc = emit(obj, to_val ? x->o->val : x->o->train, sy_ftjson_validate_sft);
  cJSON_Delete(obj); /* references only: msgs and tools stay with the caller */
  if (rc == 1) return ++sum->filtered.invalid, 0;
  if (rc) return rc;
  sum->written++;
  if (to_val) sum->written_val++;
  else sum->written_train++;
  if (fi->correction) sum->from_corrected++;
  else sum->from_captured++;
  if (!fi->rated) sum->unrated++;
  else if (fi->rating > 0) sum->rated_positive++;
  else if (fi->rating < 0) sum->rated_negative++;
  else sum->rated_neutral++;
  sum->total_tokens += c->total_tokens ? c->total_tokens
                                       : (uint64_t)c->prompt_tokens + c->completion_tokens;
  count_route(sum, c->route ? c->route : "");
  return 0;
}

static int export_cb(void *ctx, const sy_capture *c, sy_feedback *const *fb, size_t nfb) {
  exp_ctx *x = ctx;
  const sy_export_opts *o = x->o;
  sy_export_summary *sum = x->sum;
  sum->scanned++;
  if (o->route && strcmp(c->route ? c->route : "", o->route)) return ++sum->filtered.route, 0;
  if (o->arm && strcmp(c->arm ? c->arm : "", o->arm)) return ++sum->filtered.arm, 0;
  if (o->model && strcmp(c->model ? c->model : "", o->model)) return ++sum->filtered.model, 0;
  if (c->kind != SWITCHYARD__V1__CAPTURE__KIND__PRIMARY) {
    sum->filtered.kind++;
    if (o->pairs && c->kind == SWITCHYARD__V1__CAPTURE__KIND__CASCADE_ATTEMPT && !c->accepted &&
        c->parent_id)
      return cascade_pair(x, c);
    return 0;
  }

  fb_info fi;
  analyse_feedback(fb, nfb, &fi);
  cJSON *msgs = NULL, *tools = NULL, *captured = NULL, *answer = NULL;
  int parallel = -1, rc = sy_ftjson_prompt(c->request_body.data, c->request_body.len, &msgs,
                                           &tools, &parallel);
  if (rc == SY_ENOMEM) return rc;
  if (rc) return ++sum->filtered.unparseable, 0;
  sy_buf_reset(&x->norm);
  if ((rc = sy_ftjson_norm_messages(msgs, &x->norm)) != 0) {
    sum->filtered.unparseable++;
    rc = 0;
    goto out;
  }
  uint64_t phash = XXH3_64bits_withSeed(x->norm.data, x->norm.len, SPLIT_SEED);
  captured = captured_answer(c, o->include_errors);

  if (o->pairs) {
    if (fi.correction) {
      cJSON *corr = sy_ftjson_text_answer(fi.correction);
      rc = write_pair(x, msgs, tools, corr, captured, &sum->pairs_correction);
      cJSON_Delete(corr);
      if (rc) goto out;
    }
    if ((rc = rating_pair(x, c, &fi, phash, msgs, tools, captured)) != 0) goto out;
  }

  if (filtered_out(x, c, &fi)) goto out;
  answer = fi.correction ? sy_ftjson_text_answer(fi.correction) : captured;
  if (!answer || !sy_ftjson_answer_nonempty(answer)) {
    sum->filtered.unparseable++;
    goto out;
  }
  rc = write_sft(x, c, &fi, phash, msgs, tools, parallel, answer);
out:
  if (answer != captured) cJSON_Delete(answer);
  cJSON_Delete(captured);
  cJSON_Delete(msgs);
  cJSON_Delete(tools);
  return rc;
}

int sy_export_run(sy_store *s, const sy_export_opts *o, sy_export_summary *sum) {
  if (!s || !o || !sum || !o->train) return SY_EINVAL;
  if (o->val_fraction < 0 || o->val_fraction > 1 || (o->val_fraction > 0 && !o->val))
    return SY_EINVAL;
  if (o->until_us && o->until_us <= o->since_us) return SY_EINVAL;
  memset(sum, 0, sizeof *sum);
  exp_ctx x = {0};
  x.s = s;
  x.o = o;
  x.sum = sum;
  x.dedup.max = o->dedup_max ? o->dedup_max : SY_EXPORT_DEFAULT_DEDUP_MAX;
  sy_buf_init(&x.norm, NORM_MAX_BYTES);
  sy_buf_init(&x.norm2, NORM_MAX_BYTES);
  sy_store_iter_opts io = {0};
  io.from_id = sy_store_id_from_time_us(o->since_us);
  io.to_id = o->until_us ? sy_store_id_from_time_us(o->until_us) : 0;
  io.flags = SY_ITER_FEEDBACK | SY_ITER_SKIP_CORRUPT;
  int rc = sy_store_iter_captures(s, &io, export_cb, &x, &sum->corrupt);
  if (rc == 0 && (fflush(o->train) != 0 || (o->val && fflush(o->val) != 0) ||
                  (o->pairs && fflush(o->pairs) != 0)))
    rc = SY_EIO;
  free(x.dedup.slots);
  free(x.pm.slots);
  sy_buf_free(&x.norm);
  sy_buf_free(&x.norm2);
  return rc;
}

/* ---- summary --------------------------------------------------------- */

#define SUMMARY_FIELDS(X)                                                                       \
  X(scanned) X(corrupt) X(written) X(written_train) X(written_val) X(from_captured)            \
  X(from_corrected) X(rated_positive) X(rated_negative) X(rated_neutral) X(unrated)            \
  X(total_tokens) X(pairs) X(pairs_correction) X(pairs_rating) X(pairs_cascade) X(pairs_skipped)
#define FILTER_FIELDS(X)                                                                        \
  X(kind) X(route) X(arm) X(model) X(not_corrected) X(min_rating) X(not_positive) X(negative)  \
  X(error) X(truncated) X(unparseable) X(duplicate) X(invalid) X(dedup_full)

int sy_export_summary_json(const sy_export_summary *sum, sy_buf *out) {
  int rc = sy_buf_appends(out, "{");
  const char *sep = "";
#define J(f)                                                                                    \
  if (rc == 0) rc = sy_buf_printf(out, "%s\"" #f "\":%llu", sep, (unsigned long long)sum->f);  \
  sep = ",";
  SUMMARY_FIELDS(J)
#undef J
  if (rc == 0) rc = sy_buf_appends(out, ",\"filtered\":{");
  sep = "";
#define J(f)                                                                                    \
  if (rc == 0)                                                                                  \
    rc = sy_buf_printf(out, "%s\"" #f "\":%llu", sep, (unsigned long long)sum->filtered.f);    \
  sep = ",";
  FILTER_FIELDS(J)
#undef J
  if (rc == 0) rc = sy_buf_appends(out, "},\"routes\":{");
  for (size_t i = 0; i < sum->n_routes && rc == 0; i++) {
    rc = sy_buf_printf(out, "%s\"", i ? "," : "");
    if (rc == 0) rc = sy_buf_append_json_str(out, sum->routes[i].name, strlen(sum->routes[i].name));
    if (rc == 0) rc = sy_buf_printf(out, "\":%llu", (unsigned long long)sum->routes[i].count);
  }
  if (rc == 0) rc = sy_buf_printf(out, "},\"routes_other\":%llu}",
                                  (unsigned long long)sum->routes_other);
  return rc;
}

void sy_export_summary_print(const sy_export_summary *sum, FILE *out) {
  fprintf(out, "export: scanned %llu captures (%llu unreadable skipped)\n",
          (unsigned long long)sum->scanned, (unsigned long long)sum->corrupt);
  fprintf(out, "  written: %llu (train %llu, validation %llu), %llu tokens\n",
          (unsigned long long)sum->written, (unsigned long long)sum->written_train,
          (unsigned long long)sum->written_val, (unsigned long long)sum->total_tokens);
  fprintf(out, "  by source: captured %llu, corrected %llu\n",
          (unsigned long long)sum->from_captured, (unsigned long long)sum->from_corrected);
  fprintf(out, "  by rating: positive %llu, negative %llu, neutral %llu, unrated %llu\n",
          (unsigned long long)sum->rated_positive, (unsigned long long)sum->rated_negative,
          (unsigned long long)sum->rated_neutral, (unsigned long long)sum->unrated);
  fprintf(out, "  by route:");
  for (size_t i = 0; i < sum->n_routes; i++)
    fprintf(out, " %s=%llu", sum->routes[i].name, (unsigned long long)sum->routes[i].count);
  if (sum->routes_other) fprintf(out, " (other)=%llu", (unsigned long long)sum->routes_other);
  fprintf(out, "\n  preference pairs: %llu (correction %llu, rating %llu, cascade %llu; "
               "%llu candidates skipped)\n",
          (unsigned long long)sum->pairs, (unsigned long long)sum->pairs_correction,
          (unsigned long long)sum->pairs_rating, (unsigned long long)sum->pairs_cascade,
          (unsigned long long)sum->pairs_skipped);
  fprintf(out, "  filtered out:");
  int any = 0;
#define P(f)                                                                                    \
  if (sum->filtered.f) any = fprintf(out, " " #f "=%llu", (unsigned long long)sum->filtered.f);
  FILTER_FIELDS(P)
#undef P
  fprintf(out, "%s\n", any ? "" : " none");
}
