/* switchyard-mock: chat and text completions, plain and streamed, with
 * logprobs and forced tool calls. Every answer is a pure function of the
 * request, so tests can predict it byte for byte. */
#include "loadtest/mock.h"

#include "common/err.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOKENS 512 /* the reply is at most ~240 bytes, so far fewer tokens */
static const char TOOL_ARGS[] = "{\"echo\":true}";

typedef struct chat_in {
  const char *model;
  int legacy, stream, include_usage, logprobs, n;
  const char *tool;  /* forced tool name, or NULL */
  size_t prompt_words;
  char lpstr[32];    /* ln(confidence), printed to round-trip exactly */
  char id[48];
} chat_in;

static const unsigned char SPACE[256] = {['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1,
                                         ['\r'] = 1, [' '] = 1};

static int is_space(char c) { return SPACE[(unsigned char)c]; }

static size_t words(const char *s, size_t n) {
  size_t w = 0;
  int prev_space = 1;
  for (size_t i = 0; i < n; i++) {
    int sp = is_space(s[i]);
    w += (size_t)(prev_space & !sp);
    prev_space = sp;
  }
  return w;
}

/* A token is a run of non-space bytes plus the spaces after it, so the tokens
 * concatenate to the reply exactly. Fills starts[] (count+1 entries, the last
 * being n) and returns the count. */
static size_t tokenize(const char *s, size_t n, size_t *starts, size_t max) {
  size_t count = 0, i = 0;
  while (i < n && count < max) {
    starts[count++] = i;
    while (i < n && !is_space(s[i])) i++;
    while (i < n && is_space(s[i])) i++;
  }
  starts[count] = n;
  return count;
}

static size_t utf8_ceil(const char *s, size_t n, size_t pos) {
  while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
  return pos;
}

static size_t utf8_floor(const char *s, size_t n, size_t pos) {
  if (pos >= n) return n;
  while (pos > 0 && ((unsigned char)s[pos] & 0xC0) == 0x80) pos--;
  return pos;
}

/* {"content":[{"token":..,"logprob":..,"bytes":[..],"top_logprobs":[]},...]} for
 * the tokens between byte offsets tokens[a] and tokens[b]. */
static int logprobs_json(sy_buf *b, const char *s, const size_t *tokens, size_t a, size_t e,
                         const chat_in *in) {
  int rc = sy_buf_appends(b, "{\"content\":[");
  for (size_t t = a; rc == 0 && t < e; t++) {
    size_t from = tokens[t], to = tokens[t + 1];
    rc = sy_buf_appends(b, t > a ? ",{\"token\":\"" : "{\"token\":\"");
    if (rc == 0) rc = sy__mock_json_esc(b, s + from, to - from);
    if (rc == 0) rc = sy_buf_appends(b, "\",\"logprob\":");
    if (rc == 0) rc = sy_buf_appends(b, in->lpstr);
    if (rc == 0) rc = sy_buf_appends(b, ",\"bytes\":[");
    for (size_t k = from; rc == 0 && k < to; k++) {
      if (k > from) rc = sy_buf_append(b, ",", 1);
      if (rc == 0) rc = sy__mock_u64(b, (unsigned char)s[k], 10);
    }
    if (rc == 0) rc = sy_buf_appends(b, "],\"top_logprobs\":[]}");
  }
  return rc ? rc : sy_buf_appends(b, "]}");
}

/* Appends the words of a message's content (string, or array of parts with
 * "text") to the count, and its text to `text` when `keep`. */
static int message_text(const cJSON *content, sy_buf *text, int keep, size_t *count) {
  int rc = 0;
  if (cJSON_IsString(content)) {
    size_t n = strlen(content->valuestring);
    *count += words(content->valuestring, n);
    if (keep) rc = sy_buf_append(text, content->valuestring, n);
  } else if (cJSON_IsArray(content)) {
    for (const cJSON *part = content->child; rc == 0 && part; part = part->next) {
      const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
      if (!cJSON_IsString(t)) continue;
      size_t n = strlen(t->valuestring);
      *count += words(t->valuestring, n);
      if (keep) rc = sy_buf_append(text, t->valuestring, n);
    }
  }
  return rc;
}

/* Reads what the answer depends on. Returns an error message for a 400, or NULL. */
static const char *parse_request(sy_mock_ctx *ctx, const sy_mock_req *r, const cJSON *req,
                                 chat_in *in) {
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
  if (!cJSON_IsString(model)) return "you must provide a model parameter";
  in->model = model->valuestring;
  in->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
  const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
  in->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(req, "n");
  in->n = 1;
  if (cJSON_IsNumber(n) && n->valuedouble > 1)
    in->n = n->valuedouble >= SY_MOCK_MAX_N ? SY_MOCK_MAX_N : (int)n->valuedouble;
  sy_buf_reset(&ctx->text);
  in->prompt_words = 0;
  if (in->legacy) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    const cJSON *first = cJSON_IsArray(p) ? p->child : p;
    if (cJSON_IsString(first) &&
        sy_buf_appends(&ctx->text, first->valuestring) != 0)
      return "prompt too large";
    if (cJSON_IsArray(p)) {
      for (const cJSON *e = p->child; e; e = e->next)
        if (cJSON_IsString(e)) in->prompt_words += words(e->valuestring, strlen(e->valuestring));
    } else {
      in->prompt_words = words(ctx->text.data ? ctx->text.data : "", ctx->text.len);
    }
    return NULL;
  }
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
  if (!cJSON_IsArray(msgs)) return "Missing required parameter: 'messages'.";
  for (const cJSON *m = msgs->child; m; m = m->next) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    int user = cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0;
    if (user) sy_buf_reset(&ctx->text);
    if (message_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &ctx->text, user,
                     &in->prompt_words) != 0)
      return "messages too large";
  }
  in->logprobs = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "logprobs"));
  double p = sy__mock_confidence(r, ctx->text.data, ctx->text.len);
  if (p < 0) return "mock: x-mock-confidence must be a number in (0, 1]";
  if (in->logprobs) snprintf(in->lpstr, sizeof in->lpstr, "%.17g", log(p));

  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
  const cJSON *choice = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
  in->tool = NULL;
  if (cJSON_IsArray(tools) && tools->child) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(choice, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tools->child, "function"), "name");
    if (cJSON_IsObject(choice) && cJSON_IsString(name))
      in->tool = name->valuestring;
    else if (cJSON_IsString(choice) && strcmp(choice->valuestring, "required") == 0)
      in->tool = cJSON_IsString(first) ? first->valuestring : "tool";
  }
  return NULL;
}

/* One streamed event: the shared prefix (kept at the start of scratch) plus
 * `body`, which closes the choices array and the object. */
static int emit(sy_mock_ctx *ctx, sy_mock_resp *resp, size_t prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int emit(sy_mock_ctx *ctx, sy_mock_resp *resp, size_t prefix, const char *fmt, ...) {
  sy_buf *s = &ctx->scratch;
  s->len = prefix;
  s->data[prefix] = '\0';
  va_list ap;
  va_start(ap, fmt);
  int rc = sy_buf_vprintf(s, fmt, ap);
  va_end(ap);
  return rc ? rc : sy__mock_event(resp, s->data, s->len);
}

/* Sends what the scratch holds (prefix plus parts appended with escaping). */
static int emit_raw(sy_mock_ctx *ctx, sy_mock_resp *resp) {
  return sy__mock_event(resp, ctx->scratch.data, ctx->scratch.len);
}

static int stream(sy_mock_ctx *ctx, sy_mock_resp *resp, const chat_in *in, const char *c,
                  size_t clen, const size_t *tokens, size_t ntok) {
  sy_buf *s = &ctx->scratch;
  const char *tail = in->include_usage ? "]," "\"usage\":null}" : "]}";
  int rc;
  sy_buf_reset(s);
  rc = sy_buf_printf(s, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":1700000000,\"model\":\"",
                     in->id, in->legacy ? "text_completion" : "chat.completion.chunk");
  if (rc == 0) rc = sy__mock_json_esc(s, in->model, strlen(in->model));
  if (rc == 0)
    rc = sy_buf_appends(s, in->legacy ? "\",\"choices\":["
                                      : "\",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
  if (rc) return rc;
  size_t prefix = s->len;
  resp->stream = 1;
  resp->ctype = "text/event-stream; charset=utf-8";

  for (int i = 0; rc == 0 && !in->legacy && i < in->n; i++) {
    if (!in->tool) {
      rc = emit(ctx, resp, prefix,
                "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                "\"logprobs\":null,\"finish_reason\":null}%s",
                i, tail);
      continue;
    }
    s->len = prefix;
    rc = sy_buf_printf(s,
                       "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_1\",\"type\":"
                       "\"function\",\"function\":{\"name\":\"",
                       i);
    if (rc == 0) rc = sy__mock_json_esc(s, in->tool, strlen(in->tool));
    if (rc == 0)
      rc = sy_buf_printf(s, "\",\"arguments\":\"\"}}]},\"logprobs\":null,"
                            "\"finish_reason\":null}%s", tail);
    if (rc == 0) rc = emit_raw(ctx, resp);
  }

  /* Content pieces: near-equal byte ranges on UTF-8 boundaries, or groups of
   * whole tokens when logprobs are on, so each chunk's logprobs match its text. */
  const char *src = in->tool ? TOOL_ARGS : c;
  size_t slen = in->tool ? sizeof TOOL_ARGS - 1 : clen;
  int by_token = in->logprobs && !in->tool;
  size_t chunks = ctx->cfg.chunks ? ctx->cfg.chunks : 1;
  for (size_t k = 0; rc == 0 && k < chunks; k++) {
    size_t ta = 0, tb = 0, a, b;
    if (by_token) {
      ta = k * ntok / chunks;
      tb = (k + 1) * ntok / chunks;
      a = tokens[ta];
      b = tokens[tb];
    } else {
      a = utf8_ceil(src, slen, k * slen / chunks);
      b = utf8_ceil(src, slen, (k + 1) * slen / chunks);
    }
    if (a == b) continue;
    for (int i = 0; rc == 0 && i < in->n; i++) {
      s->len = prefix;
      if (in->legacy)
        rc = sy_buf_appends(s, "{\"text\":\"");
      else if (in->tool)
        rc = sy_buf_printf(s, "{\"index\":%d,\"delta\":{\"tool_calls\":[{\"index\":0,"
                              "\"function\":{\"arguments\":\"", i);
      else if ((rc = sy_buf_appends(s, "{\"index\":")) == 0 &&
               (rc = sy__mock_u64(s, (uint64_t)i, 10)) == 0)
        rc = sy_buf_appends(s, ",\"delta\":{\"content\":\"");
      if (rc == 0) rc = sy__mock_json_esc(s, src + a, b - a);
      if (rc == 0) {
        if (in->legacy)
          rc = sy_buf_printf(s, "\",\"index\":%d,\"logprobs\":null,\"finish_reason\":null}%s", i,
                             tail);
        else
          rc = sy_buf_appends(s, in->tool ? "\"}}]},\"logprobs\":" : "\"},\"logprobs\":");
      }
      if (rc == 0 && !in->legacy) {
        rc = by_token ? logprobs_json(s, c, tokens, ta, tb, in) : sy_buf_appends(s, "null");
        if (rc == 0) rc = sy_buf_appends(s, ",\"finish_reason\":null}");
        if (rc == 0) rc = sy_buf_appends(s, tail);
      }
      if (rc == 0) rc = emit_raw(ctx, resp);
    }
  }
  const char *fin = in->tool ? "tool_calls" : "stop";
  for (int i = 0; rc == 0 && i < in->n; i++) {
    if (in->legacy)
      rc = emit(ctx, resp, prefix,
                "{\"text\":\"\",\"index\":%d,\"logprobs\":null,\"finish_reason\":\"stop\"}%s", i,
                tail);
    else
      rc = emit(ctx, resp, prefix,
                "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}%s", i, fin,
                tail);
  }
  if (rc == 0 && in->include_usage) {
    size_t comp = (in->tool ? 1 : words(c, clen)) * (size_t)in->n;
    rc = emit(ctx, resp, prefix,
              "],\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
              in->prompt_words, comp, in->prompt_words + comp);
  }
  return rc ? rc : sy__mock_stream_end(resp);
}

static int plain(sy_buf *b, const chat_in *in, const char *c, size_t clen, const size_t *tokens,
                 size_t ntok) {
  int rc = sy_buf_appends(b, "{\"id\":\"");
  if (rc == 0) rc = sy_buf_appends(b, in->id);
  if (rc == 0)
    rc = sy_buf_appends(b, in->legacy ? "\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\""
                                      : "\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"");
  if (rc == 0) rc = sy__mock_json_esc(b, in->model, strlen(in->model));
  if (rc == 0) rc = sy_buf_appends(b, "\",\"choices\":[");
  for (int i = 0; rc == 0 && i < in->n; i++) {
    if (i) rc = sy_buf_append(b, ",", 1);
    if (rc) break;
    if (in->legacy) {
      rc = sy_buf_appends(b, "{\"text\":\"");
      if (rc == 0) rc = sy__mock_json_esc(b, c, clen);
      if (rc == 0)
        rc = sy_buf_printf(b, "\",\"index\":%d,\"logprobs\":null,\"finish_reason\":\"stop\"}", i);
    } else if (in->tool) {
      rc = sy_buf_printf(b, "{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":null,"
                            "\"tool_calls\":[{\"id\":\"call_mock_1\",\"type\":\"function\","
                            "\"function\":{\"name\":\"", i);
      if (rc == 0) rc = sy__mock_json_esc(b, in->tool, strlen(in->tool));
      if (rc == 0) rc = sy_buf_appends(b, "\",\"arguments\":\"");
      if (rc == 0) rc = sy__mock_json_esc(b, TOOL_ARGS, sizeof TOOL_ARGS - 1);
      if (rc == 0)
        rc = sy_buf_appends(b, "\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}");
    } else {
      rc = sy_buf_appends(b, "{\"index\":");
      if (rc == 0) rc = sy__mock_u64(b, (uint64_t)i, 10);
      if (rc == 0) rc = sy_buf_appends(b, ",\"message\":{\"role\":\"assistant\",\"content\":\"");
      if (rc == 0) rc = sy__mock_json_esc(b, c, clen);
      if (rc == 0) rc = sy_buf_appends(b, "\"},\"logprobs\":");
      if (rc == 0)
        rc = in->logprobs ? logprobs_json(b, c, tokens, 0, ntok, in) : sy_buf_appends(b, "null");
      if (rc == 0) rc = sy_buf_appends(b, ",\"finish_reason\":\"stop\"}");
    }
  }
  size_t comp = (in->tool ? 1 : words(c, clen)) * (size_t)in->n;
  if (rc == 0) rc = sy_buf_appends(b, "],\"usage\":{\"prompt_tokens\":");
  if (rc == 0) rc = sy__mock_u64(b, in->prompt_words, 10);
  if (rc == 0) rc = sy_buf_appends(b, ",\"completion_tokens\":");
  if (rc == 0) rc = sy__mock_u64(b, comp, 10);
  if (rc == 0) rc = sy_buf_appends(b, ",\"total_tokens\":");
  if (rc == 0) rc = sy__mock_u64(b, in->prompt_words + comp, 10);
  if (rc == 0) rc = sy_buf_appends(b, in->legacy ? "}}" : "},\"system_fingerprint\":\"fp_mock\"}");
  return rc;
}

void sy__mock_chat(sy_mock_ctx *ctx, const sy_mock_req *r, sy_mock_resp *resp, int legacy) {
  cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
  if (!cJSON_IsObject(req)) {
    cJSON_Delete(req);
    sy__mock_error(resp, 400, "invalid_request_error", NULL,
                   "We could not parse the JSON body of your request. (HINT: This likely means "
                   "you aren't using your HTTP library correctly.)");
    return;
  }
  chat_in in = {.legacy = legacy};
  const char *bad = parse_request(ctx, r, req, &in);
  if (bad) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL, bad);
    cJSON_Delete(req);
    return;
  }
  snprintf(in.id, sizeof in.id, "%s%016llx", legacy ? "cmpl-mock-" : "chatcmpl-mock-",
           (unsigned long long)sy__mock_hash(r->body, r->body_len, 0));

  /* The reply: a fixed prefix plus at most SY_MOCK_ECHO_MAX bytes of the prompt. */
  sy_buf *c = &ctx->content;
  sy_buf_reset(c);
  size_t echo = utf8_floor(ctx->text.data, ctx->text.len, SY_MOCK_ECHO_MAX);
  int rc = sy_buf_appends(c, legacy ? "This is a mock completion of: " : "This is a mock reply to: ");
  if (rc == 0) rc = sy_buf_append(c, ctx->text.data, echo);
  size_t tokens[MAX_TOKENS + 1];
  /* Only logprobs need the tokens (usage counts words without them). */
  size_t ntok = rc == 0 && in.logprobs ? tokenize(c->data, c->len, tokens, MAX_TOKENS) : 0;

  if (rc == 0) rc = in.stream ? stream(ctx, resp, &in, c->data, c->len, tokens, ntok)
                              : plain(&resp->body, &in, c->data, c->len, tokens, ntok);
  if (rc) sy__mock_error(resp, 500, "server_error", NULL, "mock: response too large");
  cJSON_Delete(req);
  /* Do not keep a huge prompt's memory for the rest of the run. */
  if (ctx->text.cap > (1u << 20)) sy_buf_free(&ctx->text);
  if (ctx->content.cap > (1u << 20)) sy_buf_free(&ctx->content);
  if (ctx->scratch.cap > (1u << 20)) sy_buf_free(&ctx->scratch);
}
