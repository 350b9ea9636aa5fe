#ifndef SY_CAPTURE_H
#define SY_CAPTURE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"
#include "store/store.h"

/* The capture pipeline: workers hand finished exchanges (and feedback) to
 * one writer thread through a bounded queue; the writer builds the records
 * (parses the bodies, assembles streamed answers, replaces inline images by
 * references, scrubs PII), and commits them to the LMDB store in batches
 * (group commit by count and by time). A worker never blocks on it: when the
 * queue is full the record is dropped and counted.
 *
 * Ordering: jobs are committed in queue order, so feedback sent after a
 * response was received always finds its capture (the capture was queued
 * before the response's last byte left the gateway). */

typedef struct sy_capture_pipe sy_capture_pipe;
struct sy_capture_job;

typedef enum { SY_JOB_CAPTURE = 1, SY_JOB_FEEDBACK } sy_job_kind;

/* Called on the writer thread when a feedback job is done (result set); the
 * gateway uses it to wake the worker that owns the job. */
typedef void (*sy_job_done_fn)(struct sy_capture_job *job);

typedef struct sy_capture_job {
  sy_job_kind kind;
  struct sy_capture_job *next;

  /* capture ------------------------------------------------------------ */
  uint64_t id;               /* from sy_capture_next_id */
  char request_id[32];
  const char *client_key;    /* config-owned name, or NULL (no auth) */
  const char *upstream;      /* config-owned name */
  const char *endpoint;      /* static: "/v1/chat/completions", ... */
  char *user;                /* x-switchyard-user header value (owned) or NULL */
  char *req_body;            /* owned, raw request JSON */
  size_t req_len;
  char *resp_body;           /* owned, raw bytes sent to the client (capped) */
  size_t resp_len;
  int resp_truncated;        /* the capture cap cut the response */
  int is_sse;
  size_t held_bytes;         /* set by sy_capture_submit: body bytes counted against the cap */
  int status;                /* HTTP status sent, 0 = none */
  char *error;               /* owned, gateway-side error text or NULL */
  uint64_t ts_start_us, ts_end_us;
  uint64_t latency_total_us, upstream_ttfb_us, gateway_overhead_us;
  char *route, *arm, *model; /* owned; NULL = pass-through (route = requested model) */
  int sticky;                /* the arm came from a sticky key (not a random draw) */
  int rec_kind;              /* Capture.Kind: 0 primary, 1 shadow, 2 cascade attempt */
  uint64_t parent_id;        /* shadow / cascade attempt: the primary capture id */
  uint32_t attempt;          /* upstream calls before this answer (retries, fallbacks) */
  double confidence;         /* cascade confidence, when computed */
  int accepted;              /* cascade: this answer passed the threshold and was served */

  /* feedback ----------------------------------------------------------- */
  uint64_t capture_id;
  int rating;                /* Feedback.Rating */
  double score;
  char *comment, *correction, *labeller, *fb_user; /* owned or NULL */
  char **tags;               /* owned array of owned strings */
  size_t n_tags;
  /* set by the writer */
  int result;                /* 0, SY_ENOTFOUND, or another SY_* code */
  uint64_t feedback_id;

  /* owner's completion hook (feedback) */
  sy_job_done_fn done;
  void *owner;               /* the worker */
  void *conn;                /* the waiting connection; NULL once it went away */
} sy_capture_job;

typedef struct sy_capture_stats {
  atomic_uint_fast64_t queued, stored, dropped_full, dropped_scrub, dropped_store,
      feedback_stored, batches;
  atomic_uint_fast64_t queue_depth;
} sy_capture_stats;

/* Compiles the scrubber (built-in rules plus cfg->capture.pii_patterns) and
 * starts the writer thread on `store` (admin: borrowed, opened once by main
 * and shared with the admin API; it must outlive the pipe). SY_ECONFIG with
 * a message in err for a bad PII pattern. On failure nothing is left
 * running. */
int sy_capture_open(const sy_config *cfg, sy_store *store, sy_capture_pipe **out, char *err,
                    size_t errlen);

/* Stops taking jobs, commits every queued one and stops the writer. The
 * store stays open (its owner closes it). Workers must be stopped first.
 * NULL is a no-op. */
void sy_capture_close(sy_capture_pipe *p);

/* A new capture id: microseconds since the epoch, strictly increasing across
 * threads and restarts (seeded from the store's last id). Thread-safe. */
uint64_t sy_capture_next_id(sy_capture_pipe *p);

/* Queues a job; on success the pipeline owns it. Capture jobs are refused
 * (SY_EFULL, and counted as dropped) when cfg->capture.queue_size jobs are
 * waiting; feedback jobs may use a small reserve above that. Thread-safe,
 * never blocks on I/O. On failure the caller still owns the job. */
int sy_capture_submit(sy_capture_pipe *p, sy_capture_job *job);

/* Queues capture jobs (SY_JOB_CAPTURE only, linked by `next`) under one
 * lock with at most one wake-up of the writer; takes ownership of all of
 * them: what does not fit (queue or byte cap) is counted as dropped and
 * freed. Workers gather a loop turn's captures and hand them over after
 * the turn's writes (sy__worker_defer_capture), off the response path. */
void sy_capture_submit_list(sy_capture_pipe *p, sy_capture_job *list);

/* Frees a job and everything it owns. */
void sy_capture_job_free(sy_capture_job *job);

const sy_capture_stats *sy_capture_get_stats(const sy_capture_pipe *p);

/* Scrubs one text with the pipeline's PII rules (built-in plus
 * capture.pii_patterns) for writers outside the capture writer (admin
 * labels). p may be NULL (capture off): the rules are compiled for the call.
 * Thread-safe. On success *out is malloc'ed (caller frees). Fails closed:
 * a negative code and no text. */
int sy_capture_scrub_text(sy_capture_pipe *p, const sy_config *cfg, const char *in, char **out);

#endif
