#ifndef SY_LOAD_H
#define SY_LOAD_H

/* switchyard-load internals: an open-loop / closed-loop load generator.
 *
 *   load.c         main and the command line
 *   load_run.c     the engine: schedule, connection slots, queue, stats
 *   load_http.c    HTTP/1.1 keep-alive target (libuv + http-parser), http:// URLs
 *   load_grpc.c    gRPC target (switchyard.v1.Inference, gRPC C core), grpc:// URLs
 *   load_grpc_req.c  the OpenAI JSON body as a ChatCompletionRequest
 *   load_report.c  the readable summary and the JSON report
 *   load_mix.c     request bodies (--body, --mix JSONL, export replay)
 *   load_hist.c    log-bucketed latency histogram
 *   load_zipf.c    seeded generator, Zipf user ids
 *   load_sched.c   open-loop schedule arithmetic and the pending queue
 *
 * The engine knows nothing about the wire: it talks to a target through
 * sy_load_target_ops (a table of functions over numbered "slots", each of
 * which carries one request at a time). The HTTP target maps a slot to a
 * keep-alive TCP connection; the gRPC target maps it to one call at a time
 * on a few shared channels (HTTP/2 connections), with the same callbacks.
 * Everything the engine sees runs on one libuv loop; nothing here is
 * thread-safe (the gRPC target's completion-queue thread only hands events
 * to the loop). */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "loadtest/load_hist.h"
#include "loadtest/load_mix.h"

/* Limits on the command line. */
#define SY_LOAD_MAX_CONNECTIONS 20000
#define SY_LOAD_MAX_HEADERS 64            /* --header flags */
#define SY_LOAD_MAX_HEADER_BYTES 8192     /* one --header */
#define SY_LOAD_MAX_SECONDS 600.0         /* hard cap on warm-up + duration */
#define SY_LOAD_MAX_RATE 10000000.0       /* req/s */
#define SY_LOAD_MAX_REQUESTS 1000000000ull
#define SY_LOAD_MAX_TIMEOUT_MS 600000u
#define SY_LOAD_MAX_URL 4096
#define SY_LOAD_DEFAULT_QUEUE 100000u
#define SY_LOAD_DEFAULT_TIMEOUT_MS 30000u
#define SY_LOAD_DEFAULT_CONNECTIONS 16u
#define SY_LOAD_DEFAULT_ZIPF 1.1

/* Why a request failed. Order is the report's order. */
typedef enum {
  SY_LOAD_OK = 0,
  SY_LOAD_E_CONNECT,    /* connection refused / unreachable / connect timed out */
  SY_LOAD_E_TIMEOUT,    /* no complete answer within --timeout-ms of sending */
  SY_LOAD_E_HTTP_4XX,
  SY_LOAD_E_HTTP_5XX,
  SY_LOAD_E_HTTP_OTHER, /* 1xx (other than 100) / 3xx final status */
  SY_LOAD_E_RESET,      /* connection reset or closed before the answer ended */
  SY_LOAD_E_PARSE,      /* the answer was not valid HTTP/1.1 */
  SY_LOAD_E_QUEUE_FULL, /* open loop: every connection busy and the queue full */
  SY_LOAD_E_CLIENT,     /* the generator itself failed (memory, limits) */
  SY_LOAD_E_COUNT
} sy_load_err;

/* "connect", "timeout", "http_4xx", ... (the JSON report's keys). */
const char *sy_load_err_name(sy_load_err e);

typedef struct sy_load_cfg {
  const char *url;
  double rate;           /* req/s; 0 = closed loop */
  unsigned connections;
  uint64_t requests;     /* measured requests to send; 0 = bounded by time only */
  double duration_s;     /* measured seconds; 0 = bounded by requests only */
  double warmup_s;       /* excluded from the statistics */
  unsigned timeout_ms;   /* per request, connect included */
  size_t queue_max;      /* open loop: requests waiting for a connection */
  const char *body_file; /* --body */
  const char *mix_file;  /* --mix */
  const char *model;
  const char *headers[SY_LOAD_MAX_HEADERS]; /* "Name: value", validated */
  size_t nheaders;
  int stream;
  size_t users;          /* Zipf-distributed end-user ids; 0 = none */
  double zipf_s;
  uint64_t seed;
  const char *json_path;
  int quiet;
  /* The loaded request mix (set by main before the run): a target that
   * encodes bodies ahead of time (gRPC) reads it in create(); every
   * sy_load_req's item points into it. */
  const sy_load_mix *mix;
} sy_load_cfg;

/* One request as a target sees it. `item` belongs to the mix and outlives
 * the run; user is a Zipf rank (1..users), 0 for no user id. */
typedef struct sy_load_req {
  const sy_load_item *item;
  uint32_t user;
} sy_load_req;

typedef struct sy_load_result {
  sy_load_err kind;
  int status; /* final HTTP status; 0 when none arrived */
} sy_load_result;

/* The engine's callbacks, called by targets from the loop. Times come from
 * uv_hrtime() at the moment the bytes were read. */
typedef struct sy_load_sink {
  void *ctx;
  /* a connect() finished: status 0 or a libuv error */
  void (*connected)(void *ctx, size_t slot, int status);
  /* the first byte of the response body (the first SSE data when streaming) */
  void (*first_byte)(void *ctx, size_t slot, uint64_t t_ns);
  /* one streamed event (SSE "...\n\n") completed */
  void (*chunk)(void *ctx, size_t slot, uint64_t t_ns);
  /* the request ended. The slot is free again when this is called, and the
   * callee may send() on it straight away. */
  void (*done)(void *ctx, size_t slot, const sy_load_result *r, uint64_t t_ns);
} sy_load_sink;

typedef struct sy_load_target sy_load_target;

typedef struct sy_load_target_ops {
  const char *name;
  /* Sets up `nslots` idle, unconnected slots on `loop`; the sink is copied.
   * 0, or a negative code with a message in err (bad URL, unresolvable host,
   * SY_ENOMEM). */
  int (*create)(uv_loop_t *loop, const sy_load_cfg *cfg, const sy_load_sink *sink, size_t nslots,
                sy_load_target **out, char *err, size_t errsz);
  /* Opens slot's connection ahead of its first request; exactly one
   * sink->connected follows a 0 return. Only on an idle, unconnected slot. */
  int (*connect)(sy_load_target *t, size_t slot);
  /* Sends req on an idle slot (connecting first if needed); exactly one
   * sink->done follows a 0 return, never from inside this call. A negative
   * return (SY_ENOMEM, SY_ETOOBIG) means nothing was sent. */
  int (*send)(sy_load_target *t, size_t slot, const sy_load_req *req);
  /* Starts closing every handle; no callback is made after this. The loop
   * must then run until the closes complete, and destroy() frees. */
  void (*close)(sy_load_target *t);
  void (*destroy)(sy_load_target *t);
} sy_load_target_ops;

/* HTTP/1.1 keep-alive over plain TCP (load_http.c). URL http://HOST:PORT[/PATH]. */
extern const sy_load_target_ops sy_load_http_ops;

/* gRPC over plaintext HTTP/2 (load_grpc.c). URL grpc://HOST:PORT. Unary items
 * call /switchyard.v1.Inference/ChatCompletion, streamed ones (--stream or
 * "stream": true) ChatCompletionStream: first_byte at the first message,
 * chunk per message, done at the status. --header flags become metadata
 * (name lowercased; Host, Connection, Content-Type, TE, User-Agent and other
 * HTTP/1.1 framing headers are dropped with a warning); user ids go in the
 * `user` field and x-switchyard-user. Status → outcome: OK → 200;
 * INVALID_ARGUMENT / FAILED_PRECONDITION / OUT_OF_RANGE → 400,
 * UNAUTHENTICATED → 401, PERMISSION_DENIED → 403, NOT_FOUND → 404,
 * ALREADY_EXISTS / ABORTED → 409, RESOURCE_EXHAUSTED → 429 (all http_4xx);
 * UNIMPLEMENTED → 501, UNKNOWN / INTERNAL / DATA_LOSS → 500 (http_5xx).
 * UNAVAILABLE and DEADLINE_EXCEEDED sent by the server (with its metadata)
 * are 503 / 504; made up by the client they are connect (the request never
 * went out), reset (it did) and timeout. An OK answer that does not decode
 * is parse. The first status message of each failing code is logged
 * (warn); gRPC's own log lines only with SWITCHYARD_LOAD_DEBUG set. Needs
 * cfg->mix. create() calls grpc_init and destroy() grpc_shutdown: one gRPC
 * target at a time per process. */
extern const sy_load_target_ops sy_load_grpc_ops;

/* Turns an OpenAI chat request body into a packed ChatCompletionRequest
 * (internal to the gRPC target; exposed for tests). model, messages (role,
 * content string, or content_json for any other content, name,
 * tool_call_id, tool_calls), the numeric and boolean parameters, stop, user,
 * tools / tool_choice / response_format (as *_json) and
 * stream_options.include_usage are modelled; "stream" is dropped (the method
 * carries it); every other member, and a modelled one of a type the proto
 * cannot hold, goes into extra_json unchanged, so the gateway builds the
 * same body as over HTTP. Unmodelled members of a message are dropped.
 * On success *out is malloc'd (caller frees) and 0 is returned; SY_EINVAL
 * (not an object, no valid role, model not a string ...; reason in err) or
 * SY_ENOMEM otherwise, with *out NULL. */
int sy__load_grpc_encode(const char *json, size_t len, uint8_t **out, size_t *outlen, char *err,
                         size_t errsz);

/* Everything a run measured. Latencies are in µs. */
typedef struct sy_load_stats {
  uint64_t scheduled;   /* measured requests the schedule produced */
  uint64_t sent;        /* of which handed to a connection */
  uint64_t completed;   /* answered with a final HTTP status (any) */
  uint64_t ok;          /* answered 2xx */
  uint64_t failed;      /* sum of errors[] */
  uint64_t unfinished;  /* still queued or in flight when the run was cut off */
  uint64_t warmup;      /* requests sent during the warm-up (not counted above) */
  uint64_t errors[SY_LOAD_E_COUNT];
  uint64_t status[600]; /* measured answers by final status */
  uint64_t queue_peak;
  uint64_t connects;    /* TCP connections opened (preconnect and reconnects) */
  double window_s;      /* measured window: first measured intended time to last answer */
  double throughput;    /* ok / window_s */
  double achieved_rate; /* open loop: measured send pace (sent - 1) / (last - first send) */
  double elapsed_s;     /* whole run, warm-up and drain included */
  int interrupted;      /* stopped by SIGINT / SIGTERM */
  sy_load_hist latency; /* from the intended send time (open loop) / send (closed) */
  sy_load_hist service; /* from the moment the request was handed to a connection */
  sy_load_hist ttfb;    /* to the first body byte, from the intended send time */
  sy_load_hist gap;     /* between consecutive streamed events */
} sy_load_stats;

/* Runs one load test to its bounds on a private loop and fills *st. 0, or
 * a negative code with a message in err (target set-up failed, SY_ENOMEM).
 * Errors of the requests themselves are counted, not returned. */
int sy_load_run(const sy_load_cfg *cfg, const sy_load_mix *mix, const sy_load_target_ops *ops,
                sy_load_stats *st, char *err, size_t errsz);

/* The readable summary. */
void sy_load_report_text(FILE *out, const sy_load_cfg *cfg, const sy_load_stats *st);
/* Writes the JSON report (config and every number) to path ("-" = stdout).
 * 0, SY_ENOMEM or SY_EIO (reason logged). */
int sy_load_report_json(const char *path, const sy_load_cfg *cfg, const sy_load_stats *st);

#endif
