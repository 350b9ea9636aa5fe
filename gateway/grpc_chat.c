/* gRPC inference messages ↔ OpenAI JSON, the SSE parser and the status
 * mapping. See grpc_chat.h. */
#include "gateway/grpc_chat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"

#define POOL_MAX (1u << 22) /* bytes of pointers: far above any answer's parts */

/* ---- request → JSON ----------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  snprintf(err, errlen, fmt, a, b);
  return SY_EINVAL;
}

/* cJSON recurses without a useful limit; refuse deep nesting first. */
static int depth_ok(const char *s) {
  int in_str = 0;
  unsigned depth = 0;
  for (; *s; s++) {
    if (in_str) {
      if (*s == '\\' && s[1]) s++;
      else if (*s == '"') in_str = 0;
    } else if (*s == '"') {
      in_str = 1;
    } else if (*s == '{' || *s == '[') {
      if (++depth > SY_GRPC_MAX_JSON_DEPTH) return 0;
    } else if ((*s == '}' || *s == ']') && depth) {
      depth--;
    }
  }
  return 1;
}

/* Parses a *_json field; NULL with a message naming the field on failure. */
static cJSON *json_field(const char *text, const char *field, char *err, size_t errlen) {
  cJSON *v = depth_ok(text) ? cJSON_Parse(text) : NULL;
  if (!v) fail(err, errlen, "%s: not valid JSON (or nested deeper than 64 levels)%s", field, "");
  return v;
}

static int add_str(cJSON *o, const char *k, const char *v) {
  return cJSON_AddStringToObject(o, k, v) ? 0 : SY_ENOMEM;
}

static int build_tool_calls(cJSON *msg, const Switchyard__V1__ChatMessage *m, size_t mi,
                            char *err, size_t errlen) {
  cJSON *arr = cJSON_AddArrayToObject(msg, "tool_calls");
  if (!arr) return SY_ENOMEM;
  for (size_t i = 0; i < m->n_tool_calls; i++) {
    const Switchyard__V1__ToolCall *t = m->tool_calls[i];
    char where[64];
    snprintf(where, sizeof where, "messages[%zu].tool_calls[%zu]", mi, i);
    if (!t->function || !t->function->name[0])
      return fail(err, errlen, "%s.function.name: required%s", where, "");
    cJSON *o = cJSON_CreateObject();
    if (!o) return SY_ENOMEM;
    cJSON_AddItemToArray(arr, o);
    cJSON *fn;
    if (add_str(o, "id", t->id) || add_str(o, "type", t->type[0] ? t->type : "function") ||
        !(fn = cJSON_AddObjectToObject(o, "function")) || add_str(fn, "name", t->function->name) ||
        add_str(fn, "arguments", t->function->arguments))
      return SY_ENOMEM;
  }
  return 0;
}

static int build_message(cJSON *arr, const Switchyard__V1__ChatMessage *m, size_t i, char *err,
                         size_t errlen) {
  char where[48];
  snprintf(where, sizeof where, "messages[%zu]", i);
  if (!m->role[0]) return fail(err, errlen, "%s.role: required%s", where, "");
  if (m->content[0] && m->content_json[0])
    return fail(err, errlen, "%s: set content or content_json, not both%s", where, "");
  cJSON *o = cJSON_CreateObject();
  if (!o) return SY_ENOMEM;
  cJSON_AddItemToArray(arr, o);
  if (add_str(o, "role", m->role)) return SY_ENOMEM;
  if (m->content_json[0]) {
    char field[64];
    snprintf(field, sizeof field, "%s.content_json", where);
    cJSON *c = json_field(m->content_json, field, err, errlen);
    if (!c) return SY_EINVAL;
    cJSON_AddItemToObject(o, "content", c);
  } else if (!m->content[0] && m->n_tool_calls) {
    if (!cJSON_AddNullToObject(o, "content")) return SY_ENOMEM;
  } else if (add_str(o, "content", m->content)) {
    return SY_ENOMEM;
  }
  if (m->name[0] && add_str(o, "name", m->name)) return SY_ENOMEM;
  if (m->tool_call_id[0] && add_str(o, "tool_call_id", m->tool_call_id)) return SY_ENOMEM;
  if (m->n_tool_calls) return build_tool_calls(o, m, i, err, errlen);
  return 0;
}

static int add_num(cJSON *o, const char *k, double v) {
  return cJSON_AddNumberToObject(o, k, v) ? 0 : SY_ENOMEM;
}

/* Adds a parsed *_json field under key, checking its JSON type. */
static int add_json(cJSON *o, const char *key, const char *text, const char *field, int want,
                    char *err, size_t errlen) {
  if (!text[0]) return 0;
  cJSON *v = json_field(text, field, err, errlen);
  if (!v) return SY_EINVAL;
  if ((want == cJSON_Array && !cJSON_IsArray(v)) || (want == cJSON_Object && !cJSON_IsObject(v))) {
    cJSON_Delete(v);
    return fail(err, errlen, "%s: must be a JSON %s", field,
                want == cJSON_Array ? "array" : "object");
  }
  cJSON_AddItemToObject(o, key, v);
  return 0;
}

static int merge_extra(cJSON *o, const char *text, char *err, size_t errlen) {
  static const char *const reserved[] = {"model", "messages", "stream", "stream_options"};
  cJSON *x = NULL;
  int rc = 0;
  if (!text[0]) return 0;
  if (!(x = json_field(text, "extra_json", err, errlen))) return SY_EINVAL;
  if (!cJSON_IsObject(x)) {
    rc = fail(err, errlen, "extra_json: must be a JSON object%s%s", "", "");
    goto out;
  }
  while (x->child) {
    cJSON *it = cJSON_DetachItemViaPointer(x, x->child);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
      if (strcmp(it->string, reserved[i]) == 0) {
        rc = fail(err, errlen, "extra_json.%s: not allowed here (use the typed field)%s",
                  reserved[i], "");
        cJSON_Delete(it);
        goto out;
      }
    cJSON_DeleteItemFromObjectCaseSensitive(o, it->string); /* extra_json wins */
    cJSON_AddItemToObject(o, it->string, it);
  }
out:
  cJSON_Delete(x);
  return rc;
}

int sy_grpc_chat_body(const Switchyard__V1__ChatCompletionRequest *r, int stream, size_t max,
                      char **body, size_t *len, char *err, size_t errlen) {
  *body = NULL;
  if (!r->model[0]) return fail(err, errlen, "model: required%s%s", "", "");
  if (r->n_messages == 0) return fail(err, errlen, "messages: at least one is required%s%s", "", "");
  if (r->n_stop > SY_GRPC_MAX_STOP) return fail(err, errlen, "stop: at most 4 sequences%s%s", "", "");
  cJSON *o = cJSON_CreateObject();
  if (!o) return SY_ENOMEM;
  int rc = add_str(o, "model", r->model);
  cJSON *msgs = rc ? NULL : cJSON_AddArrayToObject(o, "messages");
  if (!rc && !msgs) rc = SY_ENOMEM;
  for (size_t i = 0; !rc && i < r->n_messages; i++) rc = build_message(msgs, r->messages[i], i, err, errlen);
  if (!rc && r->temperature_opt_case) rc = add_num(o, "temperature", r->temperature);
  if (!rc && r->top_p_opt_case) rc = add_num(o, "top_p", r->top_p);
  if (!rc && r->max_tokens_opt_case) rc = add_num(o, "max_tokens", r->max_tokens);
  if (!rc && r->n_opt_case) rc = add_num(o, "n", r->n);
  if (!rc && r->seed_opt_case) rc = add_num(o, "seed", (double)r->seed);
  if (!rc && r->presence_penalty_opt_case) rc = add_num(o, "presence_penalty", r->presence_penalty);
  if (!rc && r->frequency_penalty_opt_case)
    rc = add_num(o, "frequency_penalty", r->frequency_penalty);
  if (!rc && r->logprobs_opt_case && !cJSON_AddBoolToObject(o, "logprobs", r->logprobs))
    rc = SY_ENOMEM;
  if (!rc && r->top_logprobs_opt_case) rc = add_num(o, "top_logprobs", r->top_logprobs);
  if (!rc && r->n_stop) {
    cJSON *s = cJSON_AddArrayToObject(o, "stop");
    for (size_t i = 0; s && i < r->n_stop; i++) cJSON_AddItemToArray(s, cJSON_CreateString(r->stop[i]));
    if (!s) rc = SY_ENOMEM;
  }
  if (!rc && r->user[0]) rc = add_str(o, "user", r->user);
  if (!rc) rc = add_json(o, "tools", r->tools_json, "tools_json", cJSON_Array, err, errlen);
  if (!rc) rc = add_json(o, "tool_choice", r->tool_choice_json, "tool_choice_json", 0, err, errlen);
  if (!rc)
    rc = add_json(o, "response_format", r->response_format_json, "response_format_json",
                  cJSON_Object, err, errlen);
  if (!rc) rc = merge_extra(o, r->extra_json, err, errlen);
  if (!rc && stream) {
    if (!cJSON_AddTrueToObject(o, "stream")) rc = SY_ENOMEM;
    cJSON *so;
    if (!rc && r->include_usage &&
        (!(so = cJSON_AddObjectToObject(o, "stream_options")) || !cJSON_AddTrueToObject(so, "include_usage")))
      rc = SY_ENOMEM;
  }
  if (!rc) {
    *body = cJSON_PrintUnformatted(o);
    if (!*body) rc = SY_ENOMEM;
  }
  cJSON_Delete(o);
  if (rc == SY_ENOMEM) snprintf(err, errlen, "out of memory");
  if (!rc && (*len = strlen(*body)) > max) {
    free(*body);
    *body = NULL;
    snprintf(err, errlen, "the request body would be larger than %zu bytes", max);
    rc = SY_ETOOBIG;
  }
  return rc;
}

int sy_grpc_feedback_body(const Switchyard__V1__FeedbackRequest *r, char **body, size_t *len,
                          char *err, size_t errlen) {
  *body = NULL;
  if (r->capture_id == 0) return fail(err, errlen, "capture_id: required%s%s", "", "");
  cJSON *o = cJSON_CreateObject();
  if (!o) return SY_ENOMEM;
  char id[24];
  snprintf(id, sizeof id, "%llu", (unsigned long long)r->capture_id);
  int rc = add_str(o, "capture_id", id);
  if (!rc && r->score_opt_case) {
    if (r->rating != SWITCHYARD__V1__FEEDBACK_REQUEST__RATING__RATING_UNSPECIFIED) {
      cJSON_Delete(o);
      return fail(err, errlen, "score: set rating or score, not both%s%s", "", "");
    }
    if (!isfinite(r->score)) {
      cJSON_Delete(o);
      return fail(err, errlen, "score: must be a finite number%s%s", "", "");
    }
    rc = add_num(o, "rating", r->score);
  } else if (!rc && r->rating == SWITCHYARD__V1__FEEDBACK_REQUEST__RATING__RATING_UP) {
    rc = add_str(o, "rating", "up");
  } else if (!rc && r->rating == SWITCHYARD__V1__FEEDBACK_REQUEST__RATING__RATING_DOWN) {
    rc = add_str(o, "rating", "down");
  }
  if (!rc && r->comment[0]) rc = add_str(o, "comment", r->comment);
  if (!rc && r->correction[0]) rc = add_str(o, "correction", r->correction);
  if (!rc && r->labeller[0]) rc = add_str(o, "labeller", r->labeller);
  if (!rc && r->user[0]) rc = add_str(o, "user", r->user);
  if (!rc && r->n_tags) {
    cJSON *t = cJSON_AddArrayToObject(o, "tags");
    for (size_t i = 0; t && i < r->n_tags; i++) cJSON_AddItemToArray(t, cJSON_CreateString(r->tags[i]));
    if (!t) rc = SY_ENOMEM;
  }
  if (!rc && !(*body = cJSON_PrintUnformatted(o))) rc = SY_ENOMEM;
  cJSON_Delete(o);
  if (rc) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  *len = strlen(*body);
  return 0;
}

/* ---- JSON → messages ---------------------------------------------------------------------- */

/* Every allocation of one conversion, freed together after emit. */
typedef struct pool {
  sy_buf ptrs;
} pool;

static void *pool_add(pool *p, void *x) {
  if (!x) return NULL;
  if (sy_buf_append(&p->ptrs, &x, sizeof x) != 0) {
    free(x);
    return NULL;
  }
  return x;
}

static void *pool_calloc(pool *p, size_t n, size_t size) {
  return pool_add(p, calloc(n ? n : 1, size));
}

static void pool_free(pool *p) {
  void **v = (void **)p->ptrs.data;
  for (size_t i = 0; i < p->ptrs.len / sizeof(void *); i++) free(v[i]);
  sy_buf_free(&p->ptrs);
}

static char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) && v->valuestring ? v->valuestring : (char *)protobuf_c_empty_string;
}

static double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static uint32_t ju32(const cJSON *o, const char *k) {
  double d = jnum(o, k);
  return d > 0 && d < 4294967296.0 ? (uint32_t)d : 0;
}

/* A JSON value as text (pooled), "" for null/absent. */
static char *jtext(pool *p, const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v || cJSON_IsNull(v)) return (char *)protobuf_c_empty_string;
  char *s = pool_add(p, cJSON_PrintUnformatted(v));
  return s ? s : (char *)protobuf_c_empty_string;
}

static int tool_calls(pool *p, const cJSON *arr, Switchyard__V1__ToolCall ***out, size_t *n) {
  *n = 0;
  if (!cJSON_IsArray(arr)) return 0;
  size_t cnt = (size_t)cJSON_GetArraySize(arr);
  Switchyard__V1__ToolCall **v = pool_calloc(p, cnt, sizeof *v);
  if (!v) return SY_ENOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    Switchyard__V1__ToolCall *t = pool_calloc(p, 1, sizeof *t);
    Switchyard__V1__FunctionCall *f = pool_calloc(p, 1, sizeof *f);
    if (!t || !f) return SY_ENOMEM;
    switchyard__v1__tool_call__init(t);
    switchyard__v1__function_call__init(f);
    t->id = jstr(it, "id");
    t->type = jstr(it, "type");
    t->index = ju32(it, "index");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "function");
    if (cJSON_IsObject(fn)) {
      f->name = jstr(fn, "name");
      f->arguments = jstr(fn, "arguments");
      t->function = f;
    }
    v[(*n)++] = t;
  }
  *out = v;
  return 0;
}

static Switchyard__V1__Usage *usage(pool *p, const cJSON *root) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
  if (!cJSON_IsObject(u)) return NULL;
  Switchyard__V1__Usage *m = pool_calloc(p, 1, sizeof *m);
  if (!m) return NULL;
  switchyard__v1__usage__init(m);
  m->prompt_tokens = ju32(u, "prompt_tokens");
  m->completion_tokens = ju32(u, "completion_tokens");
  m->total_tokens = ju32(u, "total_tokens");
  return m;
}

static void set_content(pool *p, const cJSON *msg, char **content, char **content_json) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
  if (cJSON_IsString(c)) *content = c->valuestring;
  else if (c && !cJSON_IsNull(c) && content_json) *content_json = jtext(p, msg, "content");
}

static int64_t jcreated(const cJSON *root) {
  double d = jnum(root, "created");
  return d > -9.2e18 && d < 9.2e18 ? (int64_t)d : 0;
}

int sy_grpc_chat_response(const char *json, size_t len, const sy_grpc_meta *meta, int keep_raw,
                          sy_grpc_emit emit, void *ctx) {
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return SY_EINVAL;
  }
  pool p;
  sy_buf_init(&p.ptrs, POOL_MAX);
  int rc = 0;
  Switchyard__V1__ChatCompletionResponse r = SWITCHYARD__V1__CHAT_COMPLETION_RESPONSE__INIT;
  r.id = jstr(root, "id");
  r.model = jstr(root, "model");
  r.created = jcreated(root);
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  size_t n = cJSON_IsArray(choices) ? (size_t)cJSON_GetArraySize(choices) : 0;
  r.choices = pool_calloc(&p, n, sizeof *r.choices);
  if (!r.choices) rc = SY_ENOMEM;
  const cJSON *it;
  if (!rc && n) cJSON_ArrayForEach(it, choices) {
    Switchyard__V1__Choice *c = pool_calloc(&p, 1, sizeof *c);
    Switchyard__V1__ChatMessage *m = pool_calloc(&p, 1, sizeof *m);
    if (!c || !m) {
      rc = SY_ENOMEM;
      break;
    }
    switchyard__v1__choice__init(c);
    switchyard__v1__chat_message__init(m);
    c->index = ju32(it, "index");
    c->finish_reason = jstr(it, "finish_reason");
    c->logprobs_json = jtext(&p, it, "logprobs");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(it, "message");
    if (cJSON_IsObject(msg)) {
      m->role = jstr(msg, "role");
      m->name = jstr(msg, "name");
      m->tool_call_id = jstr(msg, "tool_call_id");
      set_content(&p, msg, &m->content, &m->content_json);
      if ((rc = tool_calls(&p, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), &m->tool_calls,
                           &m->n_tool_calls)) != 0)
        break;
      c->message = m;
    }
    r.choices[r.n_choices++] = c;
  }
  r.usage = usage(&p, root);
  if (keep_raw) r.raw_json = (char *)json; /* NUL-terminated by the caller's sy_buf */
  r.capture_id = meta->capture_id;
  r.route = (char *)meta->route;
  r.arm = (char *)meta->arm;
  r.request_id = (char *)meta->request_id;
  if (!rc) rc = emit(ctx, &r.base);
  pool_free(&p);
  cJSON_Delete(root);
  return rc;
}

int sy_grpc_chat_chunk(const char *json, size_t len, const sy_grpc_meta *meta, sy_grpc_emit emit,
                       void *ctx) {
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return SY_EINVAL;
  }
  pool p;
  sy_buf_init(&p.ptrs, POOL_MAX);
  int rc = 0;
  Switchyard__V1__ChatCompletionChunk k = SWITCHYARD__V1__CHAT_COMPLETION_CHUNK__INIT;
  k.id = jstr(root, "id");
  k.model = jstr(root, "model");
  k.created = jcreated(root);
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  size_t n = cJSON_IsArray(choices) ? (size_t)cJSON_GetArraySize(choices) : 0;
  k.choices = pool_calloc(&p, n, sizeof *k.choices);
  if (!k.choices) rc = SY_ENOMEM;
  const cJSON *it;
  if (!rc && n) cJSON_ArrayForEach(it, choices) {
    Switchyard__V1__ChoiceDelta *d = pool_calloc(&p, 1, sizeof *d);
    if (!d) {
      rc = SY_ENOMEM;
      break;
    }
    switchyard__v1__choice_delta__init(d);
    d->index = ju32(it, "index");
    d->finish_reason = jstr(it, "finish_reason");
    d->logprobs_json = jtext(&p, it, "logprobs");
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(it, "delta");
    if (cJSON_IsObject(delta)) {
      d->role = jstr(delta, "role");
      set_content(&p, delta, &d->content, NULL);
      if ((rc = tool_calls(&p, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"),
                           &d->tool_calls, &d->n_tool_calls)) != 0)
        break;
    }
    k.choices[k.n_choices++] = d;
  }
  k.usage = usage(&p, root);
  k.raw_json = pool_add(&p, strndup(json, len));
  if (!k.raw_json) rc = SY_ENOMEM;
  if (meta) {
    k.capture_id = meta->capture_id;
    k.route = (char *)meta->route;
    k.arm = (char *)meta->arm;
    k.request_id = (char *)meta->request_id;
  }
  if (!rc) rc = emit(ctx, &k.base);
  pool_free(&p);
  cJSON_Delete(root);
  return rc;
}

/* ---- status ------------------------------------------------------------------------------ */

grpc_status_code sy_grpc_status_for_http(int s) {
  switch (s) {
    case 200: return GRPC_STATUS_OK;
    case 400: case 405: case 422: return GRPC_STATUS_INVALID_ARGUMENT;
    case 401: return GRPC_STATUS_UNAUTHENTICATED;
    case 403: return GRPC_STATUS_PERMISSION_DENIED;
    case 404: return GRPC_STATUS_NOT_FOUND;
    case 408: case 504: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case 409: return GRPC_STATUS_ABORTED;
    case 413: case 429: case 431: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case 502: case 503: return GRPC_STATUS_UNAVAILABLE;
    default: break;
  }
  if (s >= 500) return GRPC_STATUS_INTERNAL;
  if (s >= 400) return GRPC_STATUS_FAILED_PRECONDITION;
  return GRPC_STATUS_UNKNOWN;
}

void sy_grpc_error_message(const char *body, size_t len, int http, char *out, size_t outlen) {
  cJSON *root = len ? cJSON_ParseWithLength(body, len) : NULL;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
  const char *msg = cJSON_IsObject(e) ? jstr(e, "message") : cJSON_IsString(e) ? e->valuestring : "";
  if (msg[0]) {
    snprintf(out, outlen, "%s", msg);
  } else if (len) {
    size_t n = len < 200 ? len : 200;
    snprintf(out, outlen, "HTTP %d: %.*s", http, (int)n, body);
  } else {
    snprintf(out, outlen, "HTTP %d", http);
  }
  cJSON_Delete(root);
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

/* ---- SSE ---------------------------------------------------------------------------------- */

void sy_sse_init(sy_sse *s, size_t max) {
  sy_buf_init(&s->line, max);
  sy_buf_init(&s->data, max);
  s->has_data = 0;
}

void sy_sse_free(sy_sse *s) {
  sy_buf_free(&s->line);
  sy_buf_free(&s->data);
}

static int dispatch(sy_sse *s, sy_sse_event_fn fn, void *ctx) {
  if (!s->has_data) return 0;
  s->has_data = 0;
  int rc = fn(ctx, s->data.data ? s->data.data : "", s->data.len);
  sy_buf_reset(&s->data);
  return rc;
}

static int line(sy_sse *s, const char *l, size_t n, sy_sse_event_fn fn, void *ctx) {
  if (n && l[n - 1] == '\r') n--;
  if (n == 0) return dispatch(s, fn, ctx);
  if (n >= 5 && memcmp(l, "data:", 5) == 0) {
    l += 5;
    n -= 5;
    if (n && *l == ' ') l++, n--;
    int rc = 0;
    if (s->has_data) rc = sy_buf_append(&s->data, "\n", 1);
    if (!rc) rc = sy_buf_append(&s->data, l, n);
    s->has_data = 1;
    return rc;
  }
  return 0; /* event:, id:, retry:, comments: not needed here */
}

int sy_sse_feed(sy_sse *s, const char *p, size_t n, sy_sse_event_fn fn, void *ctx) {
  while (n) {
    const char *nl = memchr(p, '\n', n);
    if (!nl) return sy_buf_append(&s->line, p, n);
    size_t k = (size_t)(nl - p);
    int rc;
    if (s->line.len) {
      if ((rc = sy_buf_append(&s->line, p, k)) != 0) return rc;
      rc = line(s, s->line.data, s->line.len, fn, ctx);
      sy_buf_reset(&s->line);
    } else {
      rc = line(s, p, k, fn, ctx);
    }
    if (rc) return rc;
    p += k + 1;
    n -= k + 1;
  }
  return 0;
}

int sy_sse_finish(sy_sse *s, sy_sse_event_fn fn, void *ctx) {
  int rc = 0;
  if (s->line.len) {
    rc = line(s, s->line.data, s->line.len, fn, ctx);
    sy_buf_reset(&s->line);
  }
  if (!rc) rc = dispatch(s, fn, ctx);
  return rc;
}
