#include "gateway/capture_record.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/err.h"
#include "common/jsonwalk.h"
#include "common/log.h"
#include "gateway/jsonscan.h"

#define SY_SSE_MAX_CHOICES 16
#define SY_SSE_MAX_TOOL_CALLS 64
#define SY_SSE_MAX_FIELD 256

/* ---- small helpers --------------------------------------------------------- */

/* End users repeat (a chat sends the same id every turn): the hashes of the
 * last few are kept per thread, so most records skip the SHA-256. */
#define SY_USER_HASH_CACHE 64 /* entries, a power of two */
#define SY_USER_HASH_MAX 64   /* longer ids are hashed every time */
static __thread struct {
  size_t len;
  char user[SY_USER_HASH_MAX];
  char hex[33];
} user_cache[SY_USER_HASH_CACHE];

void sy__user_hash(const char *user, size_t len, char out[33]) {
  size_t slot = 0;
  if (len && len <= SY_USER_HASH_MAX) {
    slot = (size_t)XXH3_64bits(user, len) & (SY_USER_HASH_CACHE - 1);
    if (user_cache[slot].len == len && !memcmp(user_cache[slot].user, user, len)) {
      memcpy(out, user_cache[slot].hex, 33);
      return;
    }
  }
  char hex[65];
  sy_hash_key_hex(user, len, hex);
  memcpy(out, hex, 32);
  out[32] = '\0';
  if (len && len <= SY_USER_HASH_MAX) {
    user_cache[slot].len = len;
    memcpy(user_cache[slot].user, user, len);
    memcpy(user_cache[slot].hex, out, 33);
  }
}

static char *dup_or_empty(const char *s) {
  return s ? strdup(s) : (char *)protobuf_c_empty_string;
}

static void free_str(char *s) {
  if (s && s != protobuf_c_empty_string) free(s);
}

static const char *json_str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- SSE assembly --------------------------------------------------------------- */

typedef struct {
  char id[SY_SSE_MAX_FIELD];
  char type[32];
  sy_buf name, args;
  int used;
} sse_tool;

typedef struct {
  int used;
  sy_buf content;
  char finish[32];
  sse_tool *tools; /* SY_SSE_MAX_TOOL_CALLS entries, allocated on the first tool call */
  int n_tools;
} sse_choice;

typedef struct {
  char id[SY_SSE_MAX_FIELD];
  char model[SY_SSE_MAX_FIELD];
  double created;
  int text_completion;
  cJSON *usage;
  sse_choice ch[SY_SSE_MAX_CHOICES];
} sse_state;

static void copy_field(char *dst, size_t cap, const char *src) {
  if (!src) return;
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void sse_chunk(sse_state *st, const cJSON *chunk, size_t cap) {
  if (!st->id[0]) copy_field(st->id, sizeof st->id, json_str(chunk, "id"));
  if (!st->model[0]) copy_field(st->model, sizeof st->model, json_str(chunk, "model"));
  const cJSON *created = cJSON_GetObjectItemCaseSensitive(chunk, "created");
  if (cJSON_IsNumber(created)) st->created = created->valuedouble;
  const char *obj = json_str(chunk, "object");
  if (obj && !strcmp(obj, "text_completion")) st->text_completion = 1;
  const cJSON *usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
  if (cJSON_IsObject(usage)) {
    cJSON_Delete(st->usage);
    st->usage = cJSON_Duplicate(usage, 1);
  }
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
  const cJSON *c;
  cJSON_ArrayForEach(c, choices) {
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(c, "index");
    int i = cJSON_IsNumber(idx) ? idx->valueint : 0;
    if (i < 0 || i >= SY_SSE_MAX_CHOICES) continue;
    sse_choice *ch = &st->ch[i];
    if (!ch->used) {
      ch->used = 1;
      sy_buf_init(&ch->content, cap);
    }
    copy_field(ch->finish, sizeof ch->finish, json_str(c, "finish_reason"));
    const char *text = json_str(c, "text");
    if (text) sy_buf_appends(&ch->content, text);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c, "delta");
    if (!cJSON_IsObject(delta)) continue;
    const char *content = json_str(delta, "content");
    if (content) sy_buf_appends(&ch->content, content);
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
      const cJSON *ti = cJSON_GetObjectItemCaseSensitive(tc, "index");
      int k = cJSON_IsNumber(ti) ? ti->valueint : 0;
      if (k < 0 || k >= SY_SSE_MAX_TOOL_CALLS) continue;
      if (!ch->tools && !(ch->tools = calloc(SY_SSE_MAX_TOOL_CALLS, sizeof *ch->tools))) continue;
      sse_tool *t = &ch->tools[k];
      if (!t->used) {
        t->used = 1;
        sy_buf_init(&t->name, SY_SSE_MAX_FIELD);
        sy_buf_init(&t->args, cap);
        if (k + 1 > ch->n_tools) ch->n_tools = k + 1;
      }
      copy_field(t->id, sizeof t->id, json_str(tc, "id"));
      copy_field(t->type, sizeof t->type, json_str(tc, "type"));
      const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
      const char *name = json_str(fn, "name");
      const char *args = json_str(fn, "arguments");
      if (name) sy_buf_appends(&t->name, name);
      if (args) sy_buf_appends(&t->args, args);
    }
  }
}

static cJSON *sse_build(sse_state *st) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "id", st->id);
  cJSON_AddStringToObject(o, "object", st->text_completion ? "text_completion" : "chat.completion");
  cJSON_AddNumberToObject(o, "created", st->created);
  cJSON_AddStringToObject(o, "model", st->model);
  cJSON *choices = cJSON_AddArrayToObject(o, "choices");
  for (int i = 0; i < SY_SSE_MAX_CHOICES; i++) {
    sse_choice *ch = &st->ch[i];
    if (!ch->used) continue;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", i);
    const char *content = ch->content.data ? ch->content.data : "";
    if (st->text_completion) {
      cJSON_AddStringToObject(c, "text", content);
    } else {
      cJSON *m = cJSON_AddObjectToObject(c, "message");
      cJSON_AddStringToObject(m, "role", "assistant");
      if (ch->content.len || !ch->n_tools) cJSON_AddStringToObject(m, "content", content);
      else cJSON_AddNullToObject(m, "content");
      if (ch->n_tools) {
        cJSON *tcs = cJSON_AddArrayToObject(m, "tool_calls");
        for (int k = 0; k < ch->n_tools; k++) {
          sse_tool *t = &ch->tools[k];
          cJSON *tc = cJSON_CreateObject();
          cJSON_AddStringToObject(tc, "id", t->id);
          cJSON_AddStringToObject(tc, "type", t->type[0] ? t->type : "function");
          cJSON *fn = cJSON_AddObjectToObject(tc, "function");
          cJSON_AddStringToObject(fn, "name", t->name.data ? t->name.data : "");
          cJSON_AddStringToObject(fn, "arguments", t->args.data ? t->args.data : "");
          cJSON_AddItemToArray(tcs, tc);
        }
      }
    }
    if (ch->finish[0]) cJSON_AddStringToObject(c, "finish_reason", ch->finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(choices, c);
  }
  if (st->usage) {
    cJSON_AddItemToObject(o, "usage", st->usage);
    st->usage = NULL;
  }
  return o;
}

static void sse_free(sse_state *st) {
  for (int i = 0; i < SY_SSE_MAX_CHOICES; i++) {
    if (!st->ch[i].used) continue;
    sy_buf_free(&st->ch[i].content);
    for (int k = 0; k < st->ch[i].n_tools; k++) {
      sy_buf_free(&st->ch[i].tools[k].name);
      sy_buf_free(&st->ch[i].tools[k].args);
    }
    free(st->ch[i].tools);
  }
  cJSON_Delete(st->usage);
}

int sy__sse_tree_only;

/* ---- the common chunk without a tree ---------------------------------------- */

/* Copies a string value into a fixed field (truncated like copy_field). */
static void copy_span(char *dst, size_t cap, const char *j, const sy_json_span *sp) {
  sy_buf b;
  sy_buf_init(&b, SY_SCRUB_MAX_INPUT);
  if (sy_json_span_text(j, sp, &b) == 0 && b.data) copy_field(dst, cap, b.data);
  sy_buf_free(&b);
}

/* The same as sse_chunk for a chunk without tool calls or an error, from
 * spans of the raw bytes: a stream of small chunks no longer costs a tree
 * (allocations, a parse and a delete) each. The chunk is valid JSON. */
static void sse_chunk_fast(sse_state *st, const char *j, size_t len, size_t cap) {
  static const char *const top[] = {"id", "model", "created", "object", "usage", "choices"};
  sy_json_span f[6];
  sy_json_find_top_keys(j, len, top, 6, f);
  /* the caller checked: no "error" member, no "tool_calls" anywhere */
  if (!st->id[0]) copy_span(st->id, sizeof st->id, j, &f[0]);
  if (!st->model[0]) copy_span(st->model, sizeof st->model, j, &f[1]);
  if (f[2].found && (j[f[2].start] == '-' || (j[f[2].start] >= '0' && j[f[2].start] <= '9')))
    st->created = strtod(j + f[2].start, NULL);
  if (f[3].found && f[3].end - f[3].start == 17 && !memcmp(j + f[3].start, "\"text_completion\"", 17))
    st->text_completion = 1;
  if (f[4].found && j[f[4].start] == '{') {
    cJSON *u = cJSON_ParseWithLength(j + f[4].start, f[4].end - f[4].start);
    if (u) {
      cJSON_Delete(st->usage);
      st->usage = u;
    }
  }
  if (!f[5].found || j[f[5].start] != '[') return;
  const char *arr = j + f[5].start;
  size_t alen = f[5].end - f[5].start, pos = 0;
  sy_json_span el;
  while (sy_json_array_next(arr, alen, &pos, &el)) {
    static const char *const ck[] = {"index", "finish_reason", "text", "delta"};
    const char *o = arr + el.start;
    size_t olen = el.end - el.start;
    if (*o != '{') continue;
    sy_json_span c[4];
    sy_json_find_top_keys(o, olen, ck, 4, c);
    int i = 0;
    if (c[0].found && o[c[0].start] >= '0' && o[c[0].start] <= '9') {
      long v = strtol(o + c[0].start, NULL, 10);
      i = v > SY_SSE_MAX_CHOICES ? SY_SSE_MAX_CHOICES : (int)v;
    } else if (c[0].found && o[c[0].start] == '-') {
      i = -1;
    }
    if (i < 0 || i >= SY_SSE_MAX_CHOICES) continue;
    sse_choice *ch = &st->ch[i];
    if (!ch->used) {
      ch->used = 1;
      sy_buf_init(&ch->content, cap);
    }
    if (c[1].found && o[c[1].start] == '"') copy_span(ch->finish, sizeof ch->finish, o, &c[1]);
    sy_json_span_text(o, &c[2], &ch->content); /* "text": legacy completions */
    if (!c[3].found || o[c[3].start] != '{') continue;
    static const char *const dk[] = {"content"};
    sy_json_span d;
    sy_json_find_top_keys(o + c[3].start, c[3].end - c[3].start, dk, 1, &d);
    sy_json_span_text(o + c[3].start, &d, &ch->content);
  }
}

/* Assembles the stream into a chat.completion tree (*tree, caller frees);
 * content fields are capped at `cap` bytes. */
static int sse_assemble_tree(const char *data, size_t len, size_t cap, cJSON **tree, int *done,
                             char **error) {
  *tree = NULL;
  sse_state *st = calloc(1, sizeof *st);
  if (!st) return SY_ENOMEM;
  *done = 0;
  *error = NULL;
  const char *p = data, *end = data + len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
    const char *next = eol ? eol + 1 : end;
    if (l && p[l - 1] == '\r') l--;
    if (l >= 5 && memcmp(p, "data:", 5) == 0) {
      const char *v = p + 5;
      size_t vl = l - 5;
      if (vl && *v == ' ') v++, vl--;
      if (vl == 6 && memcmp(v, "[DONE]", 6) == 0) {
        *done = 1;
      } else {
        cJSON *chunk = NULL;
        if (!sy__sse_tree_only && sy_json_walk(v, vl, 64, NULL, NULL, NULL) == 0 &&
            !memmem(v, vl, "\"tool_calls\"", 12) &&
            !memmem(v, vl, "\"error\"", 7)) {
          sse_chunk_fast(st, v, vl, cap);
        } else if ((chunk = cJSON_ParseWithLength(v, vl))) {
          const cJSON *err = cJSON_GetObjectItemCaseSensitive(chunk, "error");
          if (err) {
            const char *m = json_str(err, "message");
            free(*error);
            *error = strdup(m ? m : "error event in stream");
          } else {
            sse_chunk(st, chunk, cap);
          }
          cJSON_Delete(chunk);
        }
      }
    }
    p = next;
  }
  cJSON *o = sse_build(st);
  sse_free(st);
  free(st);
  if (!o) return SY_ENOMEM;
  *tree = o;
  return 0;
}

int sy__sse_assemble(const char *data, size_t len, sy_buf *out, int *done, char **error) {
  cJSON *o;
  int rc = sse_assemble_tree(data, len, out->max ? out->max : len, &o, done, error);
  if (rc) return rc;
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) return SY_ENOMEM;
  rc = sy_buf_appends(out, s);
  free(s);
  return rc;
}

/* ---- images by reference -------------------------------------------------------------- */

/* Replaces "data:<type>;base64,<data>" image URLs by "sy-ref:sha256:<hex>"
 * and records a BinaryRef for each. Returns the number replaced, or < 0. */
static int refs_replace(cJSON *req, sy_capture *rec) {
  int n = 0;
  const cJSON *msg;
  cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(req, "messages")) {
    const cJSON *part;
    cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(msg, "content")) {
      cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
      cJSON *url = cJSON_GetObjectItemCaseSensitive(iu, "url");
      if (!cJSON_IsString(url) || strncmp(url->valuestring, "data:", 5) != 0) continue;
      const char *u = url->valuestring;
      const char *comma = strchr(u, ',');
      if (!comma) continue;
      const char *b64 = comma + 1;
      size_t b64len = strlen(b64);
      size_t tlen = strcspn(u + 5, ";,");
      Switchyard__V1__BinaryRef *ref = malloc(sizeof *ref);
      if (!ref) return SY_ENOMEM;
      switchyard__v1__binary_ref__init(ref);
      ref->media_type = strndup(u + 5, tlen);
      ref->sha256.data = malloc(32);
      if (!ref->media_type || !ref->sha256.data) {
        free(ref->media_type);
        free(ref->sha256.data);
        free(ref);
        return SY_ENOMEM;
      }
      /* The digest covers the decoded bytes: the same image gets the same
       * reference whatever its base64 line breaks. */
      size_t pad = b64len >= 2 && b64[b64len - 1] == '=' ? (b64[b64len - 2] == '=' ? 2 : 1) : 0;
      unsigned char *raw = malloc(b64len / 4 * 3 + 3);
      int rawlen = raw ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)(b64len - b64len % 4)) : -1;
      unsigned int dlen = 32;
      if (rawlen >= 0) {
        rawlen -= (int)pad;
        EVP_Digest(raw, (size_t)rawlen, ref->sha256.data, &dlen, EVP_sha256(), NULL);
        ref->size = (uint64_t)rawlen;
      } else {
        EVP_Digest(b64, b64len, ref->sha256.data, &dlen, EVP_sha256(), NULL);
        ref->size = b64len;
      }
      free(raw);
      ref->sha256.len = 32;
      Switchyard__V1__BinaryRef **nr =
          realloc(rec->binary_refs, (rec->n_binary_refs + 1) * sizeof *nr);
      if (!nr) {
        free(ref->media_type);
        free(ref->sha256.data);
        free(ref);
        return SY_ENOMEM;
      }
      rec->binary_refs = nr;
      rec->binary_refs[rec->n_binary_refs++] = ref;
      char repl[80] = "sy-ref:sha256:";
      static const char hx[] = "0123456789abcdef";
      for (int i = 0; i < 32; i++) {
        repl[14 + 2 * i] = hx[ref->sha256.data[i] >> 4];
        repl[15 + 2 * i] = hx[ref->sha256.data[i] & 15];
      }
      repl[78] = '\0';
      cJSON_SetValuestring(url, repl);
      n++;
    }
  }
  return n;
}

/* ---- records --------------------------------------------------------------------------- */

/* Scrubs a body into out: as JSON when it is JSON (*is_json = 1), else as text.
 * JSON that only a lenient parser takes (a raw TAB in a string, "01") is
 * re-printed strictly by cJSON and then scrubbed as JSON: scrubbed as text,
 * its escaped characters ("j\u00f6rg@...") would hide entities. */
static int scrub_body(sy_scrubber *s, const char *data, size_t len, ProtobufCBinaryData *out,
                      int *is_json) {
  sy_buf b;
  sy_buf_init(&b, (size_t)SY_STORE_MAX_RECORD_BYTES);
  int rc = sy_scrub_json(s, data, len, &b, NULL);
  if (is_json) *is_json = rc == 0;
  if (rc == SY_EINVAL) {
    const char *end = NULL;
    cJSON *lenient = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    while (lenient && end < data + len && strchr(" \t\r\n", *end) && *end) end++;
    char *strict = lenient && end == data + len ? cJSON_PrintUnformatted(lenient) : NULL;
    cJSON_Delete(lenient);
    if (strict) rc = sy_scrub_json(s, strict, strlen(strict), &b, NULL);
    if (!strict || rc == SY_EINVAL) rc = sy_scrub_text(s, data, len, &b, NULL); /* not JSON: text */
    free(strict);
  }
  if (rc) {
    sy_buf_free(&b);
    return rc;
  }
  out->data = (uint8_t *)sy_buf_detach(&b, &out->len);
  if (!out->data) out->data = (uint8_t *)strdup("");
  return 0;
}

/* The string value of a member span, decoded and malloc'ed; NULL when it is
 * absent, not a string, or out of memory. */
static char *span_string(const char *json, const sy_json_span *sp) {
  sy_buf b;
  sy_buf_init(&b, SY_SCRUB_MAX_INPUT);
  if (sy_json_span_text(json, sp, &b) != 0) {
    sy_buf_free(&b);
    return NULL;
  }
  size_t n;
  char *r = sy_buf_detach(&b, &n);
  return r ? r : strdup("");
}

/* A token count from an upstream's JSON number, clamped to uint32. */
static uint32_t token_count(double v) {
  return v <= 0 || v != v ? 0 : v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

static void usage_fields(const cJSON *resp, sy_capture *rec) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(resp, "usage");
  const cJSON *v;
  if ((v = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens")) && cJSON_IsNumber(v))
    rec->prompt_tokens = token_count(v->valuedouble);
  if ((v = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens")) && cJSON_IsNumber(v))
    rec->completion_tokens = token_count(v->valuedouble);
  if ((v = cJSON_GetObjectItemCaseSensitive(u, "total_tokens")) && cJSON_IsNumber(v))
    rec->total_tokens = token_count(v->valuedouble);
  const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp, "choices"), 0);
  const char *fr = json_str(c0, "finish_reason");
  if (fr) {
    free_str(rec->finish_reason);
    rec->finish_reason = strdup(fr);
    if (!strcmp(fr, "length")) rec->truncated = 1;
  }
}

/* usage_fields for a body that is no tree: spans of its bytes. The body
 * must be valid JSON (sy_scrub_json took it); numbers as cJSON reads them. */
static void usage_spans(const char *j, size_t len, sy_capture *rec) {
  static const char *const top[] = {"usage", "choices"};
  sy_json_span f[2];
  sy_json_find_top_keys(j, len, top, 2, f);
  if (f[0].found && j[f[0].start] == '{') {
    static const char *const uk[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
    uint32_t *dst[3] = {&rec->prompt_tokens, &rec->completion_tokens, &rec->total_tokens};
    sy_json_span u[3];
    const char *o = j + f[0].start;
    sy_json_find_top_keys(o, f[0].end - f[0].start, uk, 3, u);
    for (int k = 0; k < 3; k++)
      if (u[k].found && (o[u[k].start] == '-' || (o[u[k].start] >= '0' && o[u[k].start] <= '9'))) {
        *dst[k] = token_count(strtod(o + u[k].start, NULL));
      }
  }
  size_t pos = 0;
  sy_json_span c0;
  if (!f[1].found || !sy_json_array_next(j + f[1].start, f[1].end - f[1].start, &pos, &c0)) return;
  const char *o = j + f[1].start + c0.start;
  if (*o != '{') return;
  static const char *const fk[] = {"finish_reason"};
  sy_json_span fr;
  sy_json_find_top_keys(o, c0.end - c0.start, fk, 1, &fr);
  if (!fr.found || o[fr.start] != '"') return;
  char buf[SY_SSE_MAX_FIELD] = "";
  copy_span(buf, sizeof buf, o, &fr);
  free_str(rec->finish_reason);
  rec->finish_reason = strdup(buf);
  if (!strcmp(buf, "length")) rec->truncated = 1;
}

int sy_capture_record_build(const sy_capture_job *j, const sy_config *cfg, sy_scrubber *scrub,
                            sy_capture **out) {
  sy_capture *rec = malloc(sizeof *rec);
  if (!rec) return SY_ENOMEM;
  switchyard__v1__capture__init(rec);
  int rc = 0;
  rec->id = j->id;
  rec->ts_start_us = j->ts_start_us;
  rec->ts_end_us = j->ts_end_us;
  rec->request_id = dup_or_empty(j->request_id);
  rec->client_key_id = dup_or_empty(j->client_key);
  rec->upstream = dup_or_empty(j->upstream);
  rec->endpoint = dup_or_empty(j->endpoint);
  rec->http_status = (uint32_t)j->status;
  rec->error = dup_or_empty(j->error);
  rec->latency_total_us = j->latency_total_us;
  rec->upstream_ttfb_us = j->upstream_ttfb_us;
  rec->gateway_overhead_us = j->gateway_overhead_us;
  rec->truncated = j->resp_truncated;
  rec->kind = (Switchyard__V1__Capture__Kind)j->rec_kind;
  rec->parent_id = j->parent_id;
  rec->attempt = j->attempt;
  rec->confidence = j->confidence;
  rec->accepted = j->accepted;
  rec->sticky = j->sticky;
  if (j->arm) rec->arm = strdup(j->arm);

  /* request. The common body (no image parts) is scrubbed straight from its
   * bytes and its few fields are read in place; only a body with image_url
   * parts is parsed into a tree, for the data: URLs to become references. */
  const char *rb = j->req_body ? j->req_body : "";
  size_t rl = j->req_body ? j->req_len : 0;
  const char *user = j->user;
  char *model = NULL, *body_user = NULL;
  int is_json = 0;
  rc = scrub_body(scrub, rb, rl, &rec->request_body, &is_json);
  if (!rc && is_json && !cfg->capture.keep_images && sy_scrubber_saw_data_url(scrub)) {
    /* a string value decoded to a data: URL (under any key, escaped or
     * not): parse it into a tree for the images to become references */
    cJSON *req = cJSON_ParseWithLength(rb, rl);
    char *printed = NULL;
    if (req) {
      int n = refs_replace(req, rec);
      if (n < 0) rc = n;
      else if (n > 0 && !(printed = cJSON_PrintUnformatted(req))) rc = SY_ENOMEM;
    }
    cJSON_Delete(req);
    if (!rc && printed) {
      free(rec->request_body.data);
      rec->request_body.data = NULL;
      rc = scrub_body(scrub, printed, strlen(printed), &rec->request_body, NULL);
    }
    free(printed);
  }
  if (!rc && is_json) { /* the fields come from the request as the app sent it */
    static const char *const keys[] = {"model", "user", "stream"};
    sy_json_span sp[3];
    sy_json_find_top_keys(rb, rl, keys, 3, sp);
    model = span_string(rb, &sp[0]);
    body_user = span_string(rb, &sp[1]);
    rec->stream = sp[2].found && sp[2].end - sp[2].start == 4 && !memcmp(rb + sp[2].start, "true", 4);
  }
  /* The route is what the app asked for; the model is what the arm asked
   * the upstream for (the same on pass-through). */
  if (j->route || model) rec->route = dup_or_empty(j->route ? j->route : model);
  if (j->model || model) rec->model = dup_or_empty(j->model ? j->model : model);
  if (!user) user = body_user;
  if (user && *user) {
    char h[33];
    sy__user_hash(user, strlen(user), h);
    rec->user_hash = strdup(h);
  }
  free(model);
  free(body_user);

  /* response */
  if (!rc && j->resp_len) {
    cJSON *resp = NULL;
    char *printed = NULL;
    if (j->is_sse) {
      int done = 0;
      char *err = NULL;
      rc = sse_assemble_tree(j->resp_body, j->resp_len, cfg->capture.max_response_bytes + 65536,
                             &resp, &done, &err);
      if (!done) rec->truncated = 1;
      if (err) {
        if (rec->error == protobuf_c_empty_string || !rec->error[0]) {
          free_str(rec->error);
          rec->error = err;
        } else {
          free(err);
        }
      }
      if (!rc && !(printed = cJSON_PrintUnformatted(resp))) rc = SY_ENOMEM;
    }
    if (!rc) {
      int resp_json = 0;
      rc = scrub_body(scrub, printed ? printed : j->resp_body,
                      printed ? strlen(printed) : j->resp_len, &rec->response_body, &resp_json);
      if (resp) usage_fields(resp, rec);
      else if (resp_json) usage_spans(j->resp_body, j->resp_len, rec); /* the scrub validated it */
    }
    cJSON_Delete(resp);
    free(printed);
  }
  if (rc) {
    sy_capture_record_free(rec);
    return rc;
  }
  *out = rec;
  return 0;
}

void sy_capture_record_free(sy_capture *rec) {
  if (!rec) return;
  free_str(rec->request_id);
  free_str(rec->client_key_id);
  free_str(rec->user_hash);
  free_str(rec->route);
  free_str(rec->arm);
  free_str(rec->model);
  free_str(rec->upstream);
  free_str(rec->endpoint);
  free_str(rec->error);
  free_str(rec->finish_reason);
  free(rec->request_body.data);
  free(rec->response_body.data);
  for (size_t i = 0; i < rec->n_binary_refs; i++) {
    free(rec->binary_refs[i]->media_type);
    free(rec->binary_refs[i]->sha256.data);
    free(rec->binary_refs[i]);
  }
  free(rec->binary_refs);
  free(rec);
}

static int scrub_str(sy_scrubber *s, const char *in, char **out) {
  if (!in) {
    *out = (char *)protobuf_c_empty_string;
    return 0;
  }
  sy_buf b;
  sy_buf_init(&b, (size_t)SY_STORE_MAX_RECORD_BYTES);
  int rc = sy_scrub_text(s, in, strlen(in), &b, NULL);
  if (rc) {
    sy_buf_free(&b);
    return rc;
  }
  *out = b.data ? sy_buf_detach(&b, NULL) : strdup("");
  return *out ? 0 : SY_ENOMEM;
}

int sy_feedback_record_build(const sy_capture_job *j, sy_scrubber *scrub, sy_feedback **out) {
  sy_feedback *fb = malloc(sizeof *fb);
  if (!fb) return SY_ENOMEM;
  switchyard__v1__feedback__init(fb);
  fb->capture_id = j->capture_id;
  fb->rating = (Switchyard__V1__Feedback__Rating)j->rating;
  fb->score = j->score;
  fb->labeller = dup_or_empty(j->labeller);
  int rc = scrub_str(scrub, j->comment, &fb->comment);
  if (!rc) rc = scrub_str(scrub, j->correction, &fb->correction);
  if (!rc && j->fb_user && *j->fb_user) {
    char h[33];
    sy__user_hash(j->fb_user, strlen(j->fb_user), h);
    fb->user_id_hash = strdup(h);
  }
  if (!rc && j->n_tags) {
    fb->tags = calloc(j->n_tags, sizeof *fb->tags);
    if (!fb->tags) rc = SY_ENOMEM;
    for (size_t i = 0; !rc && i < j->n_tags; i++) {
      fb->tags[i] = strdup(j->tags[i]);
      if (!fb->tags[i]) rc = SY_ENOMEM;
      fb->n_tags = i + 1;
    }
  }
  if (rc) {
    sy_feedback_record_free(fb);
    return rc;
  }
  *out = fb;
  return 0;
}

void sy_feedback_record_free(sy_feedback *fb) {
  if (!fb) return;
  free_str(fb->comment);
  free_str(fb->correction);
  free_str(fb->labeller);
  free_str(fb->user_id_hash);
  for (size_t i = 0; i < fb->n_tags; i++) free(fb->tags[i]);
  free(fb->tags);
  free(fb);
}
