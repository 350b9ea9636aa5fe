/* switchyard-mock: request dispatch, fault injection, errors, models, embeddings. */
#include "loadtest/mock.h"

#include "common/err.h"
#include "common/log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

static const char *const MODELS[] = {"gpt-4o-mini", "gpt-4o", "mock-small", "mock-large"};
#define NMODELS (sizeof MODELS / sizeof MODELS[0])

uint64_t sy__mock_hash(const void *p, size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(p, n, seed);
}

void sy_mock_ctx_init(sy_mock_ctx *ctx, const sy_mock_cfg *cfg) {
  ctx->cfg = *cfg;
  sy_mock_state_init(&ctx->state);
  ctx->rng = 0x9E3779B97F4A7C15ull;
  sy_buf_init(&ctx->text, cfg->max_body);
  sy_buf_init(&ctx->content, cfg->max_body + 256);
  sy_buf_init(&ctx->scratch, SY_MOCK_RESP_MAX);
}

void sy_mock_ctx_free(sy_mock_ctx *ctx) {
  sy_mock_state_free(&ctx->state);
  sy_buf_free(&ctx->text);
  sy_buf_free(&ctx->content);
  sy_buf_free(&ctx->scratch);
}

void sy_mock_resp_init(sy_mock_resp *resp) {
  memset(resp, 0, sizeof *resp);
  sy_buf_init(&resp->extra, 4096);
  sy_buf_init(&resp->body, SY_MOCK_RESP_MAX);
  sy_buf_init(&resp->marks, (SY_MOCK_MAX_CHUNKS + 8) * SY_MOCK_MAX_N * sizeof(uint32_t));
}

void sy_mock_resp_free(sy_mock_resp *resp) {
  sy_buf_free(&resp->extra);
  sy_buf_free(&resp->body);
  sy_buf_free(&resp->marks);
}

size_t sy_mock_resp_nevents(const sy_mock_resp *resp) { return resp->marks.len / sizeof(uint32_t); }

size_t sy_mock_resp_event_end(const sy_mock_resp *resp, size_t i) {
  uint32_t end;
  memcpy(&end, resp->marks.data + i * sizeof end, sizeof end);
  return end;
}

void sy__mock_resp_reset(sy_mock_resp *resp, const sy_mock_req *r) {
  resp->status = 200;
  resp->action = SY_MOCK_SEND;
  resp->ctype = "application/json";
  resp->stream = 0;
  resp->chunked = r ? r->http_minor >= 1 : 1;
  resp->close = 0;
  resp->latency_ms = 0;
  resp->chunk_delay_ms = 0;
  sy_buf_reset(&resp->extra);
  sy_buf_reset(&resp->body);
  sy_buf_reset(&resp->marks);
}

const char *sy_mock_header(const sy_mock_req *r, const char *name) {
  size_t pos = 0;
  while (pos < r->headers_len) {
    const char *n = r->headers + pos;
    size_t nlen = strlen(n);
    const char *v = n + nlen + 1;
    if (strcmp(n, name) == 0) return v;
    pos += nlen + 1 + strlen(v) + 1;
  }
  return NULL;
}

void sy__mock_error(sy_mock_resp *resp, int status, const char *type, const char *code,
                    const char *message) {
  resp->status = status;
  resp->stream = 0;
  resp->ctype = "application/json";
  sy_buf_reset(&resp->body);
  sy_buf_reset(&resp->marks);
  sy_buf *b = &resp->body;
  int rc = sy_buf_appends(b, "{\"error\":{\"message\":\"");
  if (rc == 0) rc = sy__mock_json_esc(b, message, strlen(message));
  if (rc == 0) rc = sy_buf_printf(b, "\",\"type\":\"%s\",\"param\":null,\"code\":", type);
  if (rc == 0) rc = code ? sy_buf_printf(b, "\"%s\"}}", code) : sy_buf_appends(b, "null}}");
  if (rc) sy_buf_reset(b); /* out of memory: an empty 5xx is still an answer */
}

void sy_mock_api_http_error(sy_mock_resp *resp, int status, const char *message) {
  sy__mock_resp_reset(resp, NULL);
  sy__mock_error(resp, status, "invalid_request_error", NULL, message);
  resp->close = 1;
}

int sy__mock_event(sy_mock_resp *resp, const char *payload, size_t len) {
  sy_buf *b = &resp->body;
  size_t start = b->len;
  int rc = 0;
  if (resp->chunked) {
    rc = sy__mock_u64(b, len + 8, 16);
    if (rc == 0) rc = sy_buf_append(b, "\r\n", 2);
  }
  if (rc == 0) rc = sy_buf_append(b, "data: ", 6);
  if (rc == 0) rc = sy_buf_append(b, payload, len);
  if (rc == 0) rc = sy_buf_append(b, "\n\n", 2);
  if (rc == 0 && resp->chunked) rc = sy_buf_append(b, "\r\n", 2);
  if (rc == 0) {
    uint32_t end = (uint32_t)b->len;
    rc = sy_buf_append(&resp->marks, &end, sizeof end);
  }
  if (rc) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}

int sy__mock_stream_end(sy_mock_resp *resp) {
  int rc = sy__mock_event(resp, "[DONE]", 6);
  if (rc == 0 && resp->chunked) {
    rc = sy_buf_append(&resp->body, "0\r\n\r\n", 5);
    if (rc == 0) {
      uint32_t end = (uint32_t)resp->body.len;
      memcpy(resp->marks.data + resp->marks.len - sizeof end, &end, sizeof end);
    }
  }
  return rc;
}

double sy__mock_confidence(const sy_mock_req *r, const char *text, size_t len) {
  const char *h = sy_mock_header(r, "x-mock-confidence");
  if (h) {
    char *end;
    double p = strtod(h, &end);
    while (*end == ' ' || *end == '\t') end++;
    return end != h && *end == '\0' && p > 0.0 && p <= 1.0 ? p : -1.0;
  }
  static const char marker[] = "[[confidence=";
  const char *m = text ? memmem(text, len, marker, sizeof marker - 1) : NULL;
  if (m) {
    /* text is NUL-terminated (an sy_buf), so strtod cannot run off its end. */
    const char *num = m + sizeof marker - 1;
    char *end;
    double p = strtod(num, &end);
    if (end != num && end[0] == ']' && end[1] == ']' && p > 0.0 && p <= 1.0) return p;
  }
  return 0.9;
}

/* A decimal header value in [0, max] (surrounding blanks allowed). 1 if absent,
 * 0 if present and valid, -1 if malformed. Out-of-range values are clamped. */
static int header_uint(const sy_mock_req *r, const char *name, uint64_t max, uint64_t *out) {
  const char *v = sy_mock_header(r, name);
  if (!v) return 1;
  while (*v == ' ' || *v == '\t') v++;
  if (*v < '0' || *v > '9') return -1;
  uint64_t x = 0;
  for (; *v >= '0' && *v <= '9'; v++) x = x > max ? x : x * 10 + (uint64_t)(*v - '0');
  while (*v == ' ' || *v == '\t') v++;
  if (*v) return -1;
  *out = x > max ? max : x;
  return 0;
}

static uint64_t rng_next(sy_mock_ctx *ctx) {
  uint64_t x = ctx->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  ctx->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* --- faults ------------------------------------------------------------- */

/* Applies x-mock-fault. Returns 1 when the response is decided (fault or a
 * bad fault header), 0 to answer normally. */
static int apply_fault(sy_mock_ctx *ctx, const sy_mock_req *r, sy_mock_resp *resp) {
  const char *fault = sy_mock_header(r, "x-mock-fault");
  if (!fault) return 0;
  uint64_t times = 0;
  int trc = header_uint(r, "x-mock-fail-times", UINT64_MAX / 16, &times);
  if (trc < 0) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL, "mock: bad x-mock-fail-times");
    return 1;
  }
  if (trc == 0) {
    /* Without a key all such requests share the empty key. */
    const char *key = sy_mock_header(r, "x-mock-fault-key");
    size_t klen = key ? strlen(key) : 0;
    if (klen > SY_MOCK_FAULT_KEY_MAX) {
      sy__mock_error(resp, 400, "invalid_request_error", NULL, "mock: x-mock-fault-key too long");
      return 1;
    }
    if (!sy_mock_state_fault_hit(&ctx->state, key ? key : "", klen, times)) return 0;
  }
  if (strcmp(fault, "429") == 0) {
    const char *ra = sy_mock_header(r, "x-mock-retry-after");
    size_t ralen = ra ? strlen(ra) : 0;
    int ok = ra && ralen > 0 && ralen <= 64;
    for (size_t i = 0; ok && i < ralen; i++) ok = ra[i] >= 0x20 && ra[i] < 0x7f;
    sy_buf_printf(&resp->extra, "Retry-After: %s\r\n", ok ? ra : "1");
    sy__mock_error(resp, 429, "requests", "rate_limit_exceeded",
                   "Rate limit reached for requests (mock). Please try again later.");
  } else if (strcmp(fault, "500") == 0) {
    sy__mock_error(resp, 500, "server_error", NULL,
                   "The server had an error while processing your request (mock).");
  } else if (strcmp(fault, "503") == 0) {
    sy__mock_error(resp, 503, "server_error", NULL,
                   "The engine is currently overloaded, please try again later (mock).");
  } else if (strcmp(fault, "400") == 0) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL, "Bad request (mock fault).");
  } else if (strcmp(fault, "401") == 0) {
    sy__mock_error(resp, 401, "invalid_request_error", "invalid_api_key",
                   "Incorrect API key provided (mock).");
  } else if (strcmp(fault, "404") == 0) {
    sy__mock_error(resp, 404, "invalid_request_error", "model_not_found",
                   "The model does not exist or you do not have access to it (mock).");
  } else if (strcmp(fault, "hang") == 0) {
    resp->action = SY_MOCK_HANG;
  } else if (strcmp(fault, "reset") == 0) {
    resp->action = SY_MOCK_RESET;
  } else if (strcmp(fault, "malformed") == 0) {
    sy_buf_reset(&resp->body);
    sy_buf_appends(&resp->body, "{\"id\": \"chatcmpl-broken\", \"choices\": [");
  } else if (strcmp(fault, "cut") == 0) {
    resp->action = SY_MOCK_CUT; /* the normal answer is built, then cut when written */
    return 0;
  } else {
    sy__mock_error(resp, 400, "invalid_request_error", NULL,
                   "mock: x-mock-fault must be one of 429, 500, 503, 400, 401, 404, hang, "
                   "reset, cut, malformed");
  }
  return 1;
}

/* --- models and embeddings ---------------------------------------------- */

static int model_json(sy_buf *b, const char *id) {
  return sy_buf_printf(b,
                       "{\"id\":\"%s\",\"object\":\"model\",\"created\":1700000000,"
                       "\"owned_by\":\"switchyard-mock\"}",
                       id);
}

static void models(const char *id, size_t idlen, sy_mock_resp *resp) {
  sy_buf *b = &resp->body;
  int rc = 0;
  if (!id) {
    rc = sy_buf_appends(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; rc == 0 && i < NMODELS; i++) {
      if (i) rc = sy_buf_append(b, ",", 1);
      if (rc == 0) rc = model_json(b, MODELS[i]);
    }
    if (rc == 0) rc = sy_buf_appends(b, "]}");
  } else {
    for (size_t i = 0; i < NMODELS; i++)
      if (strlen(MODELS[i]) == idlen && memcmp(MODELS[i], id, idlen) == 0) {
        rc = model_json(b, MODELS[i]);
        goto out;
      }
    sy__mock_error(resp, 404, "invalid_request_error", "model_not_found",
                   "The model does not exist or you do not have access to it.");
    return;
  }
out:
  if (rc) sy__mock_error(resp, 500, "server_error", NULL, "mock: out of memory");
}

static size_t count_words(const char *s, size_t n) {
  size_t words = 0;
  int in = 0;
  for (size_t i = 0; i < n; i++) {
    int sp = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' ||
             s[i] == '\v';
    if (!sp && !in) words++;
    in = !sp;
  }
  return words;
}

/* A deterministic unit vector from the hash of one input. */
static void embed_vec(uint64_t seed, float *v, size_t dims) {
  double sum = 0;
  uint64_t x = seed;
  for (size_t i = 0; i < dims; i++) {
    x += 0x9E3779B97F4A7C15ull; /* splitmix64 */
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double d = (double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
    v[i] = (float)d;
    sum += d * d;
  }
  double norm = sqrt(sum);
  for (size_t i = 0; i < dims; i++) v[i] = norm > 0 ? (float)(v[i] / norm) : (i == 0);
}

static int base64(sy_buf *b, const unsigned char *p, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int rc = sy_buf_reserve(b, (n + 2) / 3 * 4);
  if (rc) return rc;
  char *o = b->data + b->len;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = tab[(v >> 6) & 63];
    *o++ = tab[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

static int is_token_array(const cJSON *a) {
  if (!cJSON_IsArray(a)) return 0;
  for (const cJSON *t = a->child; t; t = t->next)
    if (!cJSON_IsNumber(t)) return 0;
  return 1;
}

/* Hash and word count of one embeddings input (a string or a token array). */
static int embed_input(const cJSON *in, uint64_t *hash, size_t *tokens) {
  if (cJSON_IsString(in)) {
    size_t n = strlen(in->valuestring);
    *hash = sy__mock_hash(in->valuestring, n, 1);
    *tokens = count_words(in->valuestring, n);
    return 0;
  }
  if (!is_token_array(in)) return -1;
  uint64_t h = 2;
  size_t count = 0;
  for (const cJSON *t = in->child; t; t = t->next, count++) {
    int64_t v = (int64_t)t->valuedouble;
    h = sy__mock_hash(&v, sizeof v, h);
  }
  *hash = h;
  *tokens = count;
  return 0;
}

static void embeddings(const cJSON *req, sy_mock_resp *resp) {
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
  const cJSON *dimj = cJSON_GetObjectItemCaseSensitive(req, "dimensions");
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(req, "encoding_format");
  if (!cJSON_IsString(model)) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL, "you must provide a model parameter");
    return;
  }
  /* One input: a string or one token array; many: an array of those. */
  int single = cJSON_IsString(input) || (is_token_array(input) && input->child);
  int ninputs = single ? 1 : cJSON_IsArray(input) ? cJSON_GetArraySize(input) : 0;
  if (ninputs <= 0 || ninputs > (int)SY_MOCK_MAX_EMBED_INPUTS) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL,
                   "'input' must be a non-empty string or array of at most 2048 inputs");
    return;
  }
  double dd = 8;
  if (dimj) {
    if (!cJSON_IsNumber(dimj) || dimj->valuedouble < 1) {
      sy__mock_error(resp, 400, "invalid_request_error", NULL, "'dimensions' must be >= 1");
      return;
    }
    dd = dimj->valuedouble;
  }
  size_t dims = dd > SY_MOCK_MAX_DIMENSIONS ? SY_MOCK_MAX_DIMENSIONS : (size_t)dd;
  if ((size_t)ninputs * dims > SY_MOCK_MAX_EMBED_FLOATS) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL, "mock: too many embedding values");
    return;
  }
  int b64 = cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0;
  float vec[SY_MOCK_MAX_DIMENSIONS];
  sy_buf *b = &resp->body;
  int rc = sy_buf_appends(b, "{\"object\":\"list\",\"data\":[");
  size_t tokens = 0;
  const cJSON *in = single ? input : input->child;
  for (int i = 0; rc == 0 && i < ninputs; i++, in = in->next) {
    uint64_t h;
    size_t t;
    if (embed_input(in, &h, &t) < 0) {
      sy__mock_error(resp, 400, "invalid_request_error", NULL,
                     "each input must be a string or an array of tokens");
      return;
    }
    tokens += t;
    embed_vec(h, vec, dims);
    rc = sy_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
    if (rc == 0 && b64) {
      unsigned char le[sizeof vec];
      for (size_t k = 0; k < dims; k++) {
        uint32_t u;
        memcpy(&u, &vec[k], 4);
        for (int j = 0; j < 4; j++) le[k * 4 + (size_t)j] = (unsigned char)(u >> (8 * j));
      }
      rc = sy_buf_append(b, "\"", 1);
      if (rc == 0) rc = base64(b, le, dims * 4);
      if (rc == 0) rc = sy_buf_append(b, "\"}", 2);
    } else if (rc == 0) {
      rc = sy_buf_append(b, "[", 1);
      for (size_t k = 0; rc == 0 && k < dims; k++)
        rc = sy_buf_printf(b, "%s%.9g", k ? "," : "", (double)vec[k]);
      if (rc == 0) rc = sy_buf_append(b, "]}", 2);
    }
  }
  if (rc == 0) rc = sy_buf_appends(b, "],\"model\":\"");
  if (rc == 0) rc = sy__mock_json_esc(b, model->valuestring, strlen(model->valuestring));
  if (rc == 0)
    rc = sy_buf_printf(b, "\",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", tokens,
                       tokens);
  if (rc) sy__mock_error(resp, 500, "server_error", NULL, "mock: response too large");
}

/* --- dispatch ----------------------------------------------------------- */

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void method_not_allowed(sy_mock_resp *resp, const char *allow) {
  sy_buf_printf(&resp->extra, "Allow: %s\r\n", allow);
  sy__mock_error(resp, 405, "invalid_request_error", NULL, "Method not allowed.");
}

/* The control paths (/mock/..., /healthz): never delayed, faulted or recorded. */
static void control(sy_mock_ctx *ctx, const sy_mock_req *r, const char *path, size_t n,
                    sy_mock_resp *resp) {
  int get = strcmp(r->method, "GET") == 0, del = strcmp(r->method, "DELETE") == 0;
  int rc = 0;
  if (n == 8 && memcmp(path, "/healthz", 8) == 0) {
    if (!get) return method_not_allowed(resp, "GET");
    rc = sy_buf_appends(&resp->body, "{\"status\":\"ok\"}");
  } else if (n == 14 && memcmp(path, "/mock/requests", 14) == 0) {
    if (get) {
      rc = sy_mock_state_dump(&ctx->state, &resp->body);
    } else if (del) {
      sy_mock_state_clear(&ctx->state);
      rc = sy_buf_appends(&resp->body, "{\"status\":\"ok\"}");
    } else {
      return method_not_allowed(resp, "GET, DELETE");
    }
  } else if (n == 12 && memcmp(path, "/mock/faults", 12) == 0) {
    if (!del) return method_not_allowed(resp, "DELETE");
    sy_mock_state_faults_clear(&ctx->state);
    rc = sy_buf_appends(&resp->body, "{\"status\":\"ok\"}");
  } else {
    sy__mock_error(resp, 404, "invalid_request_error", NULL, "Unknown mock control path.");
  }
  if (rc) sy__mock_error(resp, 500, "server_error", NULL, "mock: response too large");
}

void sy_mock_api_respond(sy_mock_ctx *ctx, const sy_mock_req *r, sy_mock_resp *resp) {
  sy__mock_resp_reset(resp, r);
  /* The path is the URL up to '?' or '#', after the authority of an absolute URL. */
  const char *path = r->url;
  size_t n = strcspn(r->url, "?#");
  if (n > 8 && (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0)) {
    const char *p = memchr(path + 8, '/', n - 8);
    n = p ? n - (size_t)(p - path) : 0;
    path = p ? p : "/";
  }
  if ((n == 8 && memcmp(path, "/healthz", 8) == 0) || (n >= 6 && memcmp(path, "/mock/", 6) == 0))
    return control(ctx, r, path, n, resp);

  uint64_t seq = sy_mock_state_record(&ctx->state, r);
  if (sy_buf_appends(&resp->extra, "x-mock-seq: ") == 0 && sy__mock_u64(&resp->extra, seq, 10) == 0)
    sy_buf_append(&resp->extra, "\r\n", 2);

  uint64_t latency = ctx->cfg.latency_ms, delay = ctx->cfg.chunk_delay_ms, chunks = 0;
  if (header_uint(r, "x-mock-latency-ms", SY_MOCK_MAX_DELAY_MS, &latency) < 0 ||
      header_uint(r, "x-mock-chunk-delay-ms", SY_MOCK_MAX_DELAY_MS, &delay) < 0 ||
      header_uint(r, "x-mock-chunks", SY_MOCK_MAX_CHUNKS, &chunks) < 0) {
    sy__mock_error(resp, 400, "invalid_request_error", NULL,
                   "mock: x-mock-latency-ms, x-mock-chunk-delay-ms and x-mock-chunks must be "
                   "decimal integers");
    return;
  }
  if (ctx->cfg.jitter_ms) latency += rng_next(ctx) % ((uint64_t)ctx->cfg.jitter_ms + 1);
  resp->latency_ms = (unsigned)latency;
  resp->chunk_delay_ms = (unsigned)delay;
  if (apply_fault(ctx, r, resp)) return;

  int post = strcmp(r->method, "POST") == 0;
  int chat = ends_with(path, n, "/v1/chat/completions");
  int legacy = !chat && ends_with(path, n, "/v1/completions");
  int embed = ends_with(path, n, "/v1/embeddings");
  if (chat || legacy || embed) {
    if (!post) return method_not_allowed(resp, "POST");
    if (chat || legacy) {
      /* x-mock-chunks 0 means "use the default"; 1..10000 overrides it. */
      unsigned saved = ctx->cfg.chunks;
      if (chunks) ctx->cfg.chunks = (unsigned)chunks;
      sy__mock_chat(ctx, r, resp, legacy);
      ctx->cfg.chunks = saved;
      return;
    }
    cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(req)) {
      sy__mock_error(resp, 400, "invalid_request_error", NULL,
                     "We could not parse the JSON body of your request.");
    } else {
      embeddings(req, resp);
    }
    cJSON_Delete(req);
    return;
  }
  const char *m = memmem(path, n, "/v1/models", 10);
  if (m && (ends_with(path, n, "/v1/models") || m[10] == '/')) {
    if (strcmp(r->method, "GET") != 0) return method_not_allowed(resp, "GET");
    const char *id = m[10] == '/' ? m + 11 : NULL;
    return models(id, id ? n - (size_t)(id - path) : 0, resp);
  }
  char msg[160];
  snprintf(msg, sizeof msg, "Invalid URL (%s %.*s)", r->method, (int)(n > 100 ? 100 : n), path);
  sy__mock_error(resp, 404, "invalid_request_error", NULL, msg);
}
