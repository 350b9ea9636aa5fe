#ifndef SY_PROXY_INTERNAL_H
#define SY_PROXY_INTERNAL_H

/* Shared between proxy.c (what comes in: dispatch, auth, validation, the
 * routing decision, capture) and exchange.c (what goes out: attempts,
 * retries, fallbacks, the cascade, shadow calls). Not a public interface. */

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "gateway/capture.h"
#include "gateway/conn.h"
#include "gateway/upstream.h"
#include "gateway/worker.h"
#include "router/router.h"

#define SY_MAX_UPSTREAM_HEADER_BYTES (96u * 1024)
#define SY_SHADOW_MAX_IN_FLIGHT 64

typedef enum { SY_CASCADE_NONE = 0, SY_CASCADE_FIRST, SY_CASCADE_ESCALATED } sy_cascade_phase;

typedef struct sy_proxy {
  sy_conn *c;
  sy_worker *w;
  sy_upstream_req *up;
  const sy_upstream_conf *ups;  /* the current attempt's upstream */
  const char *path;             /* upstream path ("/chat/completions?x"), in the request */
  size_t path_len;
  sy_buf hdrs;                  /* client headers to forward, NUL-separated */
  size_t n_hdrs;
  sy_buf body;                  /* the body sent on the current attempt */

  /* routing */
  sy_route_table *table;        /* reference held for the request's lifetime */
  sy_route_decision d;
  int arm;                      /* current arm index, -1 = pass-through */
  size_t fb_pos;                /* next entry of d.fallback to try */
  uint32_t tries_on_arm;
  uint32_t attempts;            /* upstream calls made so far */
  uint64_t deadline_ms;         /* monotonic ms, 0 = none */
  uv_timer_t *retry_timer;      /* backoff wait; closed and freed on its own */
  int discard;                  /* this attempt's answer is not the client's (retrying) */
  sy_retry_action planned;      /* what to do when the discarded attempt ends */
  int64_t planned_wait_ms;
  int is_route;                 /* a route matched (retries, headers) */
  int client_stream;            /* the client asked for SSE */
  int client_logprobs;          /* the client asked for logprobs */
  int include_usage;            /* stream_options.include_usage */

  /* cascade */
  sy_cascade_phase cascade;
  sy_buf cbuf;                  /* the first arm's answer, held back */
  double confidence;

  /* the answer */
  int is_sse, head_sent, status;
  int paused;                   /* on_body returned SY_UP_PAUSE; resume when writable */

  /* capture */
  sy_capture_job *job;
  sy_buf resp;
  uint64_t t_up_start_ns, t_first_byte_ns;
} sy_proxy;

/* A mirrored call whose answer only goes to the capture store. */
typedef struct sy_shadow {
  sy_worker *w;
  sy_upstream_req *up;
  struct sy_shadow *next, *prev;
  sy_buf hdrs;
  size_t n_hdrs;
  sy_buf body;
  sy_buf resp;
  int status, is_sse;
  sy_capture_job *job;
  uint64_t t_start_ns, t_first_byte_ns;
} sy_shadow;

/* exchange.c */
void sy__exchange_start(sy_proxy *px);
void sy__exchange_client_gone(sy_proxy *px);
void sy__shadow_start(sy_proxy *px);
void sy__shadows_abort_all(sy_worker *w);

/* proxy.c */
void sy__proxy_free(sy_proxy *px);
/* Completes the primary capture record and hands it to the writer. */
void sy__capture_finish(sy_proxy *px, int status, const char *error);
/* A capture job for an extra record (cascade attempt, shadow), or NULL. */
sy_capture_job *sy__capture_side_job(sy_proxy *px, int kind, const sy_route_arm *arm,
                                     const sy_upstream_conf *ups);
/* Builds the header lines for one upstream: the client's, plus the upstream's key. */
int sy__upstream_headers(const sy_buf *base, size_t n_base, const sy_upstream_conf *ups,
                         sy_buf *out, size_t *n_out);
uint64_t sy__mono_ms(void);
uint64_t sy__wall_us(void);

#endif
