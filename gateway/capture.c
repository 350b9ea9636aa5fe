/* The capture writer: one thread, the only LMDB writer for captures.
 *
 * Queue: a mutex-protected FIFO list with a count, bounded by
 * capture.queue_size (feedback may use SY_CAPTURE_FEEDBACK_RESERVE more).
 * The writer takes everything queued, waits up to flush_ms for a batch to
 * fill (group commit by count and by time), builds the records, and commits
 * captures in one transaction per batch. Feedback is committed in queue
 * order after the captures queued before it, each in its own transaction,
 * so it is durable when the worker answers 200. */
#include "gateway/capture.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/capture_record.h"
#include "store/scrub.h"
#include "store/store.h"

#define SY_CAPTURE_FEEDBACK_RESERVE 1024
/* Bytes of request and response bodies held by capture jobs not yet stored
 * (queued or in the writer's hands). A burst the writer cannot follow drops
 * records instead of growing the process: the count cap alone (queue_size)
 * would let 65536 large records pile up. */
#define SY_CAPTURE_MAX_HELD_BYTES ((size_t)64 << 20)
#define SY_CAPTURE_RETENTION_EVERY_MS 60000
#define SY_CAPTURE_TRIM_AFTER 512 /* records drained at once: a backlog to give back */
#define SY_CAPTURE_DROP_LOG_EVERY_US 1000000

struct sy_capture_pipe {
  const sy_config *cfg;
  sy_store *store;
  sy_scrub_rules *rules;
  sy_scrubber *scrubber; /* the writer thread's */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sy_capture_job *head, *tail;
  size_t n;
  int stopping;
  atomic_uint_fast64_t last_id;
  atomic_uint_fast64_t last_drop_log_us;
  atomic_size_t held_bytes;  /* see SY_CAPTURE_MAX_HELD_BYTES */
  sy_capture_stats stats;
};

static uint64_t wall_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sy_capture_next_id(sy_capture_pipe *p) {
  uint64_t now = wall_us();
  uint64_t last = atomic_load(&p->last_id);
  for (;;) {
    uint64_t id = now > last ? now : last + 1;
    if (atomic_compare_exchange_weak(&p->last_id, &last, id)) return id;
  }
}

const sy_capture_stats *sy_capture_get_stats(const sy_capture_pipe *p) { return &p->stats; }

static int compile_rules(const sy_config *cfg, sy_scrub_rules **out, char *err, size_t errlen) {
  sy_scrub_pattern *pats = NULL;
  size_t n = cfg->capture.n_pii_patterns;
  if (n) {
    pats = calloc(n, sizeof *pats);
    if (!pats) return SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
      pats[i].name = cfg->capture.pii_patterns[i].name;
      pats[i].pattern = cfg->capture.pii_patterns[i].pattern;
    }
  }
  int rc = sy_scrub_rules_new(pats, n, out, err, errlen);
  free(pats);
  return rc;
}

int sy_capture_scrub_text(sy_capture_pipe *p, const sy_config *cfg, const char *in, char **out) {
  sy_scrub_rules *own = NULL;
  const sy_scrub_rules *rules = p ? p->rules : NULL;
  char err[256];
  int rc = 0;
  if (!rules) {
    if ((rc = compile_rules(cfg, &own, err, sizeof err)) != 0) return rc;
    rules = own;
  }
  sy_scrubber *s = NULL;
  rc = sy_scrubber_new(rules, &s);
  sy_buf b;
  sy_buf_init(&b, (size_t)SY_STORE_MAX_RECORD_BYTES);
  if (!rc) rc = sy_scrub_text(s, in, strlen(in), &b, NULL);
  if (!rc) {
    *out = b.data ? sy_buf_detach(&b, NULL) : strdup("");
    if (!*out) rc = SY_ENOMEM;
  }
  sy_buf_free(&b);
  sy_scrubber_free(s);
  sy_scrub_rules_free(own);
  return rc;
}

void sy_capture_job_free(sy_capture_job *j) {
  if (!j) return;
  free(j->user);
  free(j->route);
  free(j->arm);
  free(j->model);
  free(j->req_body);
  free(j->resp_body);
  free(j->error);
  free(j->comment);
  free(j->correction);
  free(j->labeller);
  free(j->fb_user);
  for (size_t i = 0; i < j->n_tags; i++) free(j->tags[i]);
  free(j->tags);
  free(j);
}

static void log_drop(sy_capture_pipe *p, const char *why) {
  uint64_t now = wall_us(), last = atomic_load(&p->last_drop_log_us);
  if (now - last < SY_CAPTURE_DROP_LOG_EVERY_US) return;
  if (!atomic_compare_exchange_strong(&p->last_drop_log_us, &last, now)) return;
  sy_warn("capture: record dropped (%s); %llu dropped so far (queue full %llu, scrub %llu, "
          "store %llu)",
          why,
          (unsigned long long)(atomic_load(&p->stats.dropped_full) +
                               atomic_load(&p->stats.dropped_scrub) +
                               atomic_load(&p->stats.dropped_store)),
          (unsigned long long)atomic_load(&p->stats.dropped_full),
          (unsigned long long)atomic_load(&p->stats.dropped_scrub),
          (unsigned long long)atomic_load(&p->stats.dropped_store));
}

/* Under p->mu: appends job to the queue if it fits (count cap `cap`, the
 * held-bytes cap, not stopping). 0, SY_EFULL (with *over_bytes set when the
 * byte cap refused it) or SY_ECLOSED. Read the job's kind before: once
 * queued, the writer may free it. */
static int enqueue_locked(sy_capture_pipe *p, sy_capture_job *job, size_t cap, int *over_bytes) {
  const size_t bytes = job->kind == SY_JOB_CAPTURE ? job->req_len + job->resp_len : 0;
  job->held_bytes = bytes;
  job->next = NULL;
  *over_bytes = bytes && atomic_load(&p->held_bytes) + bytes > SY_CAPTURE_MAX_HELD_BYTES;
  if (p->stopping) return SY_ECLOSED;
  if (p->n >= cap || *over_bytes) return SY_EFULL;
  if (p->tail) p->tail->next = job;
  else p->head = job;
  p->tail = job;
  p->n++;
  atomic_fetch_add(&p->held_bytes, bytes);
  return 0;
}

int sy_capture_submit(sy_capture_pipe *p, sy_capture_job *job) {
  const sy_job_kind kind = job->kind;
  size_t cap = p->cfg->capture.queue_size;
  if (kind == SY_JOB_FEEDBACK) cap += SY_CAPTURE_FEEDBACK_RESERVE;
  int over_bytes;
  pthread_mutex_lock(&p->mu);
  int rc = enqueue_locked(p, job, cap, &over_bytes);
  if (!rc) {
    atomic_store(&p->stats.queue_depth, p->n);
    if (p->n == 1 || p->n >= p->cfg->capture.batch_max) pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  if (kind != SY_JOB_CAPTURE) return rc;
  if (rc) {
    atomic_fetch_add(&p->stats.dropped_full, 1);
    log_drop(p, over_bytes ? "queue over its byte cap" : "queue full");
  } else {
    atomic_fetch_add(&p->stats.queued, 1);
  }
  return rc;
}

void sy_capture_submit_list(sy_capture_pipe *p, sy_capture_job *list) {
  size_t cap = p->cfg->capture.queue_size, queued = 0, dropped = 0;
  int over_bytes, any_over = 0;
  sy_capture_job *drop = NULL;
  pthread_mutex_lock(&p->mu);
  size_t before = p->n;
  while (list) {
    sy_capture_job *job = list;
    list = job->next;
    if (enqueue_locked(p, job, cap, &over_bytes) == 0) {
      queued++;
      continue;
    }
    any_over |= over_bytes;
    job->next = drop;
    drop = job;
    dropped++;
  }
  atomic_store(&p->stats.queue_depth, p->n);
  /* one wake-up: the writer sleeps only when the queue is empty */
  if (queued && (before == 0 || p->n >= p->cfg->capture.batch_max)) pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  atomic_fetch_add(&p->stats.queued, queued);
  if (dropped) {
    atomic_fetch_add(&p->stats.dropped_full, dropped);
    log_drop(p, any_over ? "queue over its byte cap" : "queue full");
  }
  while (drop) {
    sy_capture_job *j = drop;
    drop = j->next;
    sy_capture_job_free(j);
  }
}

/* ---- the writer ------------------------------------------------------------ */

typedef struct {
  sy_capture **recs;
  size_t n, cap;
} rec_batch;

static void flush_captures(sy_capture_pipe *p, rec_batch *b) {
  if (!b->n) return;
  int rc = sy_store_put_captures_keep_ids(p->store, (const sy_capture *const *)b->recs, b->n);
  if (rc) {
    atomic_fetch_add(&p->stats.dropped_store, b->n);
    sy_error("capture: storing %zu record(s) failed: %s", b->n, sy_strerror(rc));
    log_drop(p, "store error");
  } else {
    atomic_fetch_add(&p->stats.stored, b->n);
    atomic_fetch_add(&p->stats.batches, 1);
  }
  for (size_t i = 0; i < b->n; i++) sy_capture_record_free(b->recs[i]);
  b->n = 0;
}

static void do_feedback(sy_capture_pipe *p, sy_capture_job *j) {
  sy_feedback *fb = NULL;
  int rc = sy_feedback_record_build(j, p->scrubber, &fb);
  if (!rc) rc = sy_store_put_feedback(p->store, fb);
  if (!rc) {
    j->feedback_id = fb->id;
    atomic_fetch_add(&p->stats.feedback_stored, 1);
  }
  sy_feedback_record_free(fb);
  j->result = rc;
}

static void process(sy_capture_pipe *p, sy_capture_job *list, rec_batch *b) {
  while (list) {
    sy_capture_job *j = list;
    list = j->next;
    if (j->kind == SY_JOB_CAPTURE) {
      sy_capture *rec = NULL;
      int rc = sy_capture_record_build(j, p->cfg, p->scrubber, &rec);
      if (rc) {
        /* Fail closed: a record that could not be scrubbed is never stored. */
        atomic_fetch_add(&p->stats.dropped_scrub, 1);
        log_drop(p, "could not build or scrub the record");
      } else {
        if (b->n == b->cap) {
          size_t ncap = b->cap ? b->cap * 2 : 64;
          sy_capture **nr = realloc(b->recs, ncap * sizeof *nr);
          if (!nr) {
            sy_capture_record_free(rec);
            atomic_fetch_add(&p->stats.dropped_store, 1);
            atomic_fetch_sub(&p->held_bytes, j->held_bytes);
            sy_capture_job_free(j);
            continue;
          }
          b->recs = nr;
          b->cap = ncap;
        }
        b->recs[b->n++] = rec;
        if (b->n >= p->cfg->capture.batch_max) flush_captures(p, b);
      }
      atomic_fetch_sub(&p->held_bytes, j->held_bytes);
      sy_capture_job_free(j);
    } else {
      flush_captures(p, b); /* its capture may be in this batch */
      do_feedback(p, j);
      j->done(j); /* the owner frees it */
    }
  }
}

static void run_retention(sy_capture_pipe *p) {
  const sy_capture_conf *cc = &p->cfg->capture;
  if (!cc->retention_max_age_days && !cc->retention_max_mb) return;
  uint64_t removed = 0;
  int rc = sy_store_retention(p->store, (uint64_t)cc->retention_max_age_days * 86400u * 1000000u,
                              cc->retention_max_mb << 20, wall_us(), 1000, &removed);
  if (rc) sy_warn("capture: retention failed: %s", sy_strerror(rc));
  else if (removed) sy_info("capture: retention removed %llu capture(s)", (unsigned long long)removed);
}

static void *writer_main(void *arg) {
  sy_capture_pipe *p = arg;
  const sy_capture_conf *cc = &p->cfg->capture;
  rec_batch b = {0};
  uint64_t last_sync = mono_ms(), last_retention = 0, last_trim = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (!p->head && !p->stopping) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    if (p->head && !p->stopping && p->n < cc->batch_max) {
      /* Group commit: give the batch flush_ms to fill. */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)cc->flush_ms * 1000000u;
      ts.tv_sec += (time_t)(ns / 1000000000u);
      ts.tv_nsec = (long)(ns % 1000000000u);
      while (!p->stopping && p->n < cc->batch_max) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) break;
      }
    }
    sy_capture_job *list = p->head;
    size_t taken = p->n;
    p->head = p->tail = NULL;
    p->n = 0;
    atomic_store(&p->stats.queue_depth, 0);
    int stopping = p->stopping;
    pthread_mutex_unlock(&p->mu);

    process(p, list, &b);
    flush_captures(p, &b);

    uint64_t now = mono_ms();
    if (cc->durability == SY_CAPTURE_NOSYNC && now - last_sync >= cc->sync_interval_ms) {
      sy_store_sync(p->store);
      last_sync = now;
    }
    /* A backlog's bodies were allocated by the workers and freed here; glibc
     * keeps the freed pages in the workers' arenas, so after a burst the
     * process would stay at its peak. Hand them back (at most once a second). */
    if (taken >= SY_CAPTURE_TRIM_AFTER && now - last_trim >= 1000) {
      malloc_trim(0);
      last_trim = now;
    }
    if (now - last_retention >= SY_CAPTURE_RETENTION_EVERY_MS) {
      run_retention(p);
      last_retention = now;
    }
    pthread_mutex_lock(&p->mu);
    if (stopping && !p->head) break;
  }
  pthread_mutex_unlock(&p->mu);
  free(b.recs);
  return NULL;
}

/* ---- open / close ----------------------------------------------------------- */

int sy_capture_open(const sy_config *cfg, sy_store *store, sy_capture_pipe **out, char *err,
                    size_t errlen) {
  sy_capture_pipe *p = calloc(1, sizeof *p);
  if (!p) return SY_ENOMEM;
  p->cfg = cfg;
  int rc;

  char serr[256] = "";
  rc = compile_rules(cfg, &p->rules, serr, sizeof serr);
  if (rc == SY_ENOMEM) goto fail_alloc;
  if (rc) {
    snprintf(err, errlen, "capture.pii_patterns: %s", serr);
    goto fail_rules;
  }
  rc = sy_scrubber_new(p->rules, &p->scrubber);
  if (rc) {
    snprintf(err, errlen, "capture: cannot create the scrubber: %s", sy_strerror(rc));
    goto fail_scrubber;
  }

  p->store = store; /* admin: borrowed from main */
  atomic_init(&p->last_id, sy_store_last_id(p->store));
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  rc = pthread_create(&p->thread, NULL, writer_main, p);
  if (rc) {
    snprintf(err, errlen, "capture: cannot start the writer thread: %s", strerror(rc));
    rc = SY_EIO;
    goto fail_thread;
  }
  *out = p;
  return 0;

fail_thread:
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  sy_scrubber_free(p->scrubber);
fail_scrubber:
  sy_scrub_rules_free(p->rules);
fail_rules:
  free(p);
  return rc;
fail_alloc:
  free(p);
  return SY_ENOMEM;
}

void sy_capture_close(sy_capture_pipe *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  sy_info("capture: %llu stored, %llu dropped (queue full %llu, scrub %llu, store %llu), %llu "
          "feedback",
          (unsigned long long)atomic_load(&p->stats.stored),
          (unsigned long long)(atomic_load(&p->stats.dropped_full) +
                               atomic_load(&p->stats.dropped_scrub) +
                               atomic_load(&p->stats.dropped_store)),
          (unsigned long long)atomic_load(&p->stats.dropped_full),
          (unsigned long long)atomic_load(&p->stats.dropped_scrub),
          (unsigned long long)atomic_load(&p->stats.dropped_store),
          (unsigned long long)atomic_load(&p->stats.feedback_stored));
  sy_scrubber_free(p->scrubber);
  sy_scrub_rules_free(p->rules);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
