/* switchyard-load: an OpenAI chat request body (JSON) as a packed
 * switchyard.v1.ChatCompletionRequest, for the gRPC target (load_grpc.c).
 * See sy__load_grpc_encode in load.h for what maps where. */
#include "loadtest/load.h"
#include "common/buf.h"
#include "common/err.h"
#include "switchyard/v1/inference.pb-c.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_POOL_MAX (1u << 22) /* bytes of pointers owned by one conversion */

static int fail(char *err, size_t errsz, int rc, const char *fmt, const char *a, const char *b) {
  if (err && errsz) snprintf(err, errsz, fmt, a, b);
  return rc;
}

typedef struct conv {
  sy_buf pool; /* pointers to free after packing */
  char *err;
  size_t errsz;
} conv;

static void *own(conv *c, void *p) {
  if (p && sy_buf_append(&c->pool, &p, sizeof p) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

static void *own_calloc(conv *c, size_t n, size_t sz) { return own(c, calloc(n ? n : 1, sz)); }

/* Text of a JSON value: the string itself, or the value printed. */
static char *json_text(conv *c, const cJSON *v) {
  if (cJSON_IsString(v)) return v->valuestring;
  return own(c, cJSON_PrintUnformatted(v));
}

static int conv_tool_calls(conv *c, Switchyard__V1__ChatMessage *m, const cJSON *arr, size_t mi) {
  char where[64];
  snprintf(where, sizeof where, "messages[%zu].tool_calls", mi);
  if (!cJSON_IsArray(arr)) return fail(c->err, c->errsz, SY_EINVAL, "%s: not an array%s", where, "");
  size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
  Switchyard__V1__ToolCall **tcs = own_calloc(c, n, sizeof *tcs);
  Switchyard__V1__ToolCall *tc = own_calloc(c, n, sizeof *tc);
  Switchyard__V1__FunctionCall *fn = own_calloc(c, n, sizeof *fn);
  if (!tcs || !tc || !fn) return SY_ENOMEM;
  const cJSON *o;
  cJSON_ArrayForEach(o, arr) {
    switchyard__v1__tool_call__init(&tc[i]);
    switchyard__v1__function_call__init(&fn[i]);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
    if (!cJSON_IsString(name))
      return fail(c->err, c->errsz, SY_EINVAL, "%s: a call without function.name%s", where, "");
    if (cJSON_IsString(id)) tc[i].id = id->valuestring;
    if (cJSON_IsString(ty)) tc[i].type = ty->valuestring;
    fn[i].name = name->valuestring;
    if (args && !(fn[i].arguments = json_text(c, args))) return SY_ENOMEM;
    tc[i].function = &fn[i];
    tcs[i] = &tc[i];
    i++;
  }
  m->n_tool_calls = n;
  m->tool_calls = tcs;
  return 0;
}

static int conv_messages(conv *c, Switchyard__V1__ChatCompletionRequest *q, const cJSON *arr) {
  if (!cJSON_IsArray(arr)) return fail(c->err, c->errsz, SY_EINVAL, "messages: not an array%s%s", "", "");
  size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
  Switchyard__V1__ChatMessage **ms = own_calloc(c, n, sizeof *ms);
  Switchyard__V1__ChatMessage *m = own_calloc(c, n, sizeof *m);
  if (!ms || !m) return SY_ENOMEM;
  const cJSON *o;
  cJSON_ArrayForEach(o, arr) {
    char where[32];
    snprintf(where, sizeof where, "messages[%zu]", i);
    switchyard__v1__chat_message__init(&m[i]);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(o, "content");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(o, "tool_call_id");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(o, "tool_calls");
    if (!cJSON_IsString(role))
      return fail(c->err, c->errsz, SY_EINVAL, "%s: role must be a string%s", where, "");
    m[i].role = role->valuestring;
    if (cJSON_IsString(content)) m[i].content = content->valuestring;
    else if (content && !cJSON_IsNull(content) && !(m[i].content_json = json_text(c, content)))
      return SY_ENOMEM;
    if (cJSON_IsString(name)) m[i].name = name->valuestring;
    if (cJSON_IsString(tcid)) m[i].tool_call_id = tcid->valuestring;
    int rc;
    if (tcs && !cJSON_IsNull(tcs) && (rc = conv_tool_calls(c, &m[i], tcs, i)) != 0) return rc;
    ms[i] = &m[i];
    i++;
  }
  q->n_messages = n;
  q->messages = ms;
  return 0;
}

/* Non-negative integer that fits uint32 (JSON numbers are doubles). */
static int as_u32(const cJSON *v, uint32_t *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
      floor(v->valuedouble) != v->valuedouble)
    return 0;
  *out = (uint32_t)v->valuedouble;
  return 1;
}

/* One modelled member. 1 when it went into q, 0 when it goes to extra_json
 * unchanged (a type the proto cannot hold: the gateway then sees the same
 * body as over HTTP), negative on failure. */
static int conv_member(conv *c, Switchyard__V1__ChatCompletionRequest *q, const cJSON *v) {
  const char *k = v->string;
  uint32_t u;
  int num = cJSON_IsNumber(v);
  if (strcmp(k, "model") == 0) {
    if (!cJSON_IsString(v)) return fail(c->err, c->errsz, SY_EINVAL, "model: not a string%s%s", "", "");
    q->model = v->valuestring;
  } else if (strcmp(k, "messages") == 0) {
    int rc = conv_messages(c, q, v);
    return rc ? rc : 1;
  } else if (strcmp(k, "stream") == 0) {
    /* the method says it: ChatCompletionStream */
  } else if (strcmp(k, "stream_options") == 0) {
    q->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "include_usage"));
  } else if (strcmp(k, "temperature") == 0 && num) {
    q->temperature_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
    q->temperature = v->valuedouble;
  } else if (strcmp(k, "top_p") == 0 && num) {
    q->top_p_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__TOP_P_OPT_TOP_P;
    q->top_p = v->valuedouble;
  } else if (strcmp(k, "presence_penalty") == 0 && num) {
    q->presence_penalty_opt_case =
        SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__PRESENCE_PENALTY_OPT_PRESENCE_PENALTY;
    q->presence_penalty = v->valuedouble;
  } else if (strcmp(k, "frequency_penalty") == 0 && num) {
    q->frequency_penalty_opt_case =
        SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__FREQUENCY_PENALTY_OPT_FREQUENCY_PENALTY;
    q->frequency_penalty = v->valuedouble;
  } else if (strcmp(k, "max_tokens") == 0 && as_u32(v, &u)) {
    q->max_tokens_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__MAX_TOKENS_OPT_MAX_TOKENS;
    q->max_tokens = u;
  } else if (strcmp(k, "n") == 0 && as_u32(v, &u)) {
    q->n_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__N_OPT_N;
    q->n = u;
  } else if (strcmp(k, "top_logprobs") == 0 && as_u32(v, &u)) {
    q->top_logprobs_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__TOP_LOGPROBS_OPT_TOP_LOGPROBS;
    q->top_logprobs = u;
  } else if (strcmp(k, "seed") == 0 && num && fabs(v->valuedouble) < 9007199254740992.0 &&
             floor(v->valuedouble) == v->valuedouble) {
    q->seed_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__SEED_OPT_SEED;
    q->seed = (int64_t)v->valuedouble;
  } else if (strcmp(k, "logprobs") == 0 && cJSON_IsBool(v)) {
    q->logprobs_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__LOGPROBS_OPT_LOGPROBS;
    q->logprobs = cJSON_IsTrue(v);
  } else if (strcmp(k, "user") == 0 && cJSON_IsString(v)) {
    q->user = v->valuestring;
  } else if (strcmp(k, "stop") == 0 && cJSON_IsString(v)) {
    char **s = own_calloc(c, 1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s[0] = v->valuestring;
    q->n_stop = 1;
    q->stop = s;
  } else if (strcmp(k, "stop") == 0 && cJSON_IsArray(v)) {
    size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
    char **s = own_calloc(c, n, sizeof *s);
    if (!s) return SY_ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
      if (!cJSON_IsString(e)) return 0;
      s[i++] = e->valuestring;
    }
    q->n_stop = n;
    q->stop = s;
  } else if ((strcmp(k, "tools") == 0 || strcmp(k, "tool_choice") == 0 ||
              strcmp(k, "response_format") == 0) && !cJSON_IsNull(v)) {
    char *j = own(c, cJSON_PrintUnformatted(v)); /* JSON text, so "auto" keeps its quotes */
    if (!j) return SY_ENOMEM;
    if (k[0] == 'r') q->response_format_json = j;
    else if (k[5] == 'c') q->tool_choice_json = j;
    else q->tools_json = j;
  } else {
    return 0;
  }
  return 1;
}

int sy__load_grpc_encode(const char *json, size_t len, uint8_t **out, size_t *outlen, char *err,
                         size_t errsz) {
  char why[256] = "";
  conv c = {.err = why, .errsz = sizeof why};
  sy_buf_init(&c.pool, CONV_POOL_MAX);
  cJSON *root = cJSON_ParseWithLength(json, len), *extra = NULL;
  Switchyard__V1__ChatCompletionRequest q = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__INIT;
  int rc = 0;
  *out = NULL;
  *outlen = 0;
  if (!cJSON_IsObject(root)) {
    rc = fail(why, sizeof why, SY_EINVAL, "not a JSON object%s%s", "", "");
    goto out;
  }
  for (cJSON *v = root->child, *next; v && rc == 0; v = next) {
    next = v->next;
    int r = conv_member(&c, &q, v);
    if (r < 0) {
      rc = r;
    } else if (r == 0) {
      /* moved, not copied: the tree is thrown away after packing anyway */
      if (!extra && !(extra = cJSON_CreateObject())) rc = SY_ENOMEM;
      else cJSON_AddItemToObject(extra, v->string, cJSON_DetachItemViaPointer(root, v));
    }
  }
  if (rc == 0 && extra && !(q.extra_json = own(&c, cJSON_PrintUnformatted(extra)))) rc = SY_ENOMEM;
  if (rc == 0) {
    size_t n = protobuf_c_message_get_packed_size(&q.base);
    if (!(*out = malloc(n ? n : 1))) rc = SY_ENOMEM;
    else *outlen = protobuf_c_message_pack(&q.base, *out);
  }
out:
  if (rc == SY_EINVAL) fail(err, errsz, rc, "cannot express as a ChatCompletionRequest: %s%s", why, "");
  else if (rc) fail(err, errsz, rc, "out of memory%s%s", "", "");
  void **ptrs = (void **)c.pool.data;
  for (size_t k = 0; k < c.pool.len / sizeof *ptrs; k++) free(ptrs[k]);
  sy_buf_free(&c.pool);
  cJSON_Delete(extra);
  cJSON_Delete(root);
  return rc;
}
