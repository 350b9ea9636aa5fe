#ifndef SY_MOCK_H
#define SY_MOCK_H

/* switchyard-mock internals: a mock OpenAI upstream for tests and benchmarks.
 *
 *   mock.c        main, CLI, libuv server, HTTP/1.1 parsing, write path
 *   mock_api.c    request dispatch, fault injection, errors, models, embeddings
 *   mock_chat.c   chat and text completions (plain, streamed, logprobs, tools)
 *   mock_cli.c    command line
 *   mock_state.c  the ring of recorded requests, the per-key fault counters, text helpers
 *
 * Everything runs on one libuv loop, so the context and its scratch buffers
 * are shared without locks. The HTTP layer knows nothing about OpenAI; the
 * API layer knows nothing about sockets: it turns one sy_mock_req into one
 * sy_mock_resp (status, headers, body or SSE events, and what to do with the
 * connection), which the HTTP layer then writes with the requested delays. */

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Limits on everything that comes from a client. */
#define SY_MOCK_MAX_HEADER_BYTES (64u * 1024)  /* request line + headers, else 431 */
#define SY_MOCK_MAX_DELAY_MS 600000            /* latency and chunk-delay bound */
#define SY_MOCK_MAX_CHUNKS 10000
#define SY_MOCK_MAX_N 16                       /* choices per completion */
#define SY_MOCK_MAX_DIMENSIONS 4096
#define SY_MOCK_MAX_EMBED_INPUTS 2048
#define SY_MOCK_MAX_EMBED_FLOATS (1u << 20)    /* inputs x dimensions per request */
#define SY_MOCK_ECHO_MAX 200                   /* bytes of the prompt echoed back */
#define SY_MOCK_RING 1000                      /* recorded requests kept */
#define SY_MOCK_RECORD_BODY_MAX (64u * 1024)   /* body bytes kept per record */
#define SY_MOCK_FAULT_KEYS 1024
#define SY_MOCK_FAULT_KEY_MAX 256              /* bytes of an x-mock-fault-key */
#define SY_MOCK_RESP_MAX (512u << 20)          /* a response body, /mock/requests included */
#define SY_MOCK_DEFAULT_MAX_BODY (16u << 20)

struct sockaddr_storage;

/* Process-wide settings from the command line. */
typedef struct sy_mock_cfg {
  unsigned latency_ms;
  unsigned jitter_ms;
  unsigned chunks;
  unsigned chunk_delay_ms;
  size_t max_body;
  int quiet;
} sy_mock_cfg;

/* One complete request as the HTTP layer parsed it. All memory belongs to the
 * connection and lives until the response has been built. `headers` holds
 * "name\0value\0" pairs, names lowercased; `body` is NUL-terminated. */
typedef struct sy_mock_req {
  const char *method;
  const char *url;
  size_t url_len;
  const char *headers;
  size_t headers_len;
  const char *body;
  size_t body_len;
  int http_minor;
} sy_mock_req;

/* Returns the value of the first header called `name` (lowercase), or NULL. */
const char *sy_mock_header(const sy_mock_req *r, const char *name);

typedef enum {
  SY_MOCK_SEND = 0, /* write the response */
  SY_MOCK_HANG,     /* never answer; keep the socket until the client closes it */
  SY_MOCK_RESET,    /* close with a TCP RST, no response */
  SY_MOCK_CUT,      /* write half of the body (or of the events) and close */
} sy_mock_action;

/* One response, built by the API layer and written by the HTTP layer. The
 * buffers are reused from request to request (reset, not freed). */
typedef struct sy_mock_resp {
  int status;
  sy_mock_action action;
  const char *ctype;       /* static string */
  int stream;              /* body holds events; marks holds their end offsets */
  int chunked;             /* events are framed as HTTP chunks (HTTP/1.1) */
  int close;               /* close the connection after this response */
  unsigned latency_ms;     /* before the first byte */
  unsigned chunk_delay_ms; /* between events */
  sy_buf extra;            /* extra header lines, each "Name: value\r\n" */
  sy_buf body;
  sy_buf marks;            /* uint32_t end offset of each event in body */
} sy_mock_resp;

void sy_mock_resp_init(sy_mock_resp *resp);
void sy_mock_resp_free(sy_mock_resp *resp);
/* Number of events in a streamed response and the end offset of event i. */
size_t sy_mock_resp_nevents(const sy_mock_resp *resp);
size_t sy_mock_resp_event_end(const sy_mock_resp *resp, size_t i);

/* Parses the command line into `cfg` and the listen address (host copied into
 * `host`, numeric address into `addr`). Returns the --listen text. Prints
 * usage and exits 0 for --help; prints a message and exits 2 on a bad flag. */
const char *sy_mock_cli_parse(int argc, char **argv, sy_mock_cfg *cfg, char *host, size_t hostsz,
                              int *port, struct sockaddr_storage *addr);

/* Recorded requests (a ring) and the fault counters. */
typedef struct sy_mock_record {
  uint64_t seq;
  sy_buf data; /* method \0 url \0 headers body */
  uint32_t method_len, url_len, headers_len, body_len;
} sy_mock_record;

typedef struct sy_mock_fault_key {
  uint64_t hash;
  uint64_t count;
  uint32_t len;
  char key[SY_MOCK_FAULT_KEY_MAX];
} sy_mock_fault_key;

typedef struct sy_mock_state {
  sy_mock_record ring[SY_MOCK_RING];
  size_t ring_start, ring_count;
  uint64_t next_seq;
  sy_mock_fault_key faults[SY_MOCK_FAULT_KEYS];
  size_t nfaults;
  size_t fault_evict; /* next slot to reuse once the table is full (FIFO) */
} sy_mock_state;

/* Sets up an empty state. Allocates nothing. */
void sy_mock_state_init(sy_mock_state *s);
/* Frees every record; the state stays usable. */
void sy_mock_state_free(sy_mock_state *s);
/* Records a request (body capped at SY_MOCK_RECORD_BODY_MAX) and returns its
 * sequence number (from 1). A record that cannot be stored is logged and
 * dropped; its number is still used. */
uint64_t sy_mock_state_record(sy_mock_state *s, const sy_mock_req *r);
/* Drops every record (sequence numbers keep counting). */
void sy_mock_state_clear(sy_mock_state *s);
/* Appends the records, oldest first, as a JSON array. 0 or SY_ETOOBIG/SY_ENOMEM. */
int sy_mock_state_dump(const sy_mock_state *s, sy_buf *out);
/* Counts one request carrying fault key `key` and says whether it is among the
 * first `times` such requests (1) or not (0). When the table is full the
 * oldest key is forgotten. */
int sy_mock_state_fault_hit(sy_mock_state *s, const char *key, size_t len, uint64_t times);
void sy_mock_state_faults_clear(sy_mock_state *s);

/* The API layer's context: settings, state and reusable scratch buffers. */
typedef struct sy_mock_ctx {
  sy_mock_cfg cfg;
  sy_mock_state state;
  uint64_t rng;
  sy_buf text;    /* last user message text */
  sy_buf content; /* reply text */
  sy_buf scratch; /* one event before framing */
} sy_mock_ctx;

/* Sets up the context (state included). Allocates nothing. */
void sy_mock_ctx_init(sy_mock_ctx *ctx, const sy_mock_cfg *cfg);
void sy_mock_ctx_free(sy_mock_ctx *ctx);

/* Builds the response to `r` into `resp` (reset first). Never fails: a problem
 * with the request, or with memory, becomes an error response. */
void sy_mock_api_respond(sy_mock_ctx *ctx, const sy_mock_req *r, sy_mock_resp *resp);
/* Makes `resp` an OpenAI-shaped error with `status` that closes the
 * connection (used for malformed HTTP, 413 and 431). */
void sy_mock_api_http_error(sy_mock_resp *resp, int status, const char *message);

/* Shared by the API files. */
void sy__mock_error(sy_mock_resp *resp, int status, const char *type, const char *code,
                    const char *message);
void sy__mock_resp_reset(sy_mock_resp *resp, const sy_mock_req *r);
/* Appends one SSE event "data: <payload>\n\n" (framed as a chunk when
 * resp->chunked) and records its end. 0 or SY_ETOOBIG/SY_ENOMEM. */
int sy__mock_event(sy_mock_resp *resp, const char *payload, size_t len);
/* Closes a streamed body: the terminating chunk is glued to the last event, so
 * a "cut" stream never sends it. */
int sy__mock_stream_end(sy_mock_resp *resp);
/* POST .../v1/chat/completions and .../v1/completions. */
void sy__mock_chat(sy_mock_ctx *ctx, const sy_mock_req *r, sy_mock_resp *resp, int legacy);
/* The request's confidence (x-mock-confidence, else the [[confidence=p]] marker
 * in `text`, else 0.9). */
double sy__mock_confidence(const sy_mock_req *r, const char *text, size_t len);
uint64_t sy__mock_hash(const void *p, size_t n, uint64_t seed);
/* Appends `s` escaped for the inside of a JSON string (no quotes). Bytes that
 * are not valid UTF-8 become \u00XX, so the output is always valid JSON.
 * 0 or SY_ETOOBIG/SY_ENOMEM; on failure `out` may hold part of the text. */
int sy__mock_json_esc(sy_buf *out, const char *s, size_t n);
/* Appends v in base 10 or 16 (printf costs ten times more on the hot path). */
int sy__mock_u64(sy_buf *out, uint64_t v, int base);

#endif
