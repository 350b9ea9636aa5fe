/* switchyard-load: the engine.
 *
 * A run goes through four phases: PRECONNECT (every slot opens its
 * connection, so connection set-up does not land on the first requests and
 * --connections N really holds N sockets open), RUNNING (the schedule
 * issues requests), DRAINING (no new requests; answers in flight and queued
 * requests are still taken, until --timeout-ms past the end) and DONE (the
 * target and the engine's handles close, the loop runs down).
 *
 * Open loop: request i is due at t0 + i/rate and carries that intended
 * time; it goes to an idle slot, or waits in the bounded queue, and its
 * latency is measured from the intended time (load_sched.h). The loop wakes
 * at the next intended time through a timerfd polled by the loop, because
 * libuv timers have millisecond resolution and a late send would be charged
 * to the server (timerfd takes an absolute CLOCK_MONOTONIC time in ns, the
 * clock uv_hrtime() reads, and needs no spinning). Closed loop: every idle slot sends at once; its intended time is
 * its send time. A slot whose connect failed backs off (10 ms, doubling to
 * 1 s) before it takes another request. */
#include "loadtest/load.h"
#include "common/err.h"
#include "common/log.h"
#include "loadtest/load_sched.h"
#include "loadtest/load_zipf.h"

#include <errno.h>
#include <signal.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define PRECONNECT_MAX_NS 3000000000ull /* start even if some connects hang */
#define BACKOFF_MIN_MS 10u
#define BACKOFF_MAX_MS 1000u
#define SIGNAL_DRAIN_NS 1000000000ull   /* after SIGINT, wait this long for answers */

typedef enum { PH_PRECONNECT, PH_RUNNING, PH_DRAINING, PH_DONE } phase;

typedef struct slot {
  int busy;
  int preconnecting;
  int backoff;          /* waiting until backoff_until */
  unsigned backoff_ms;
  uint64_t backoff_until;
  sy_load_pending p;    /* the request in flight */
  uint64_t sent_ns, first_ns, last_event_ns;
} slot;

typedef struct run {
  const sy_load_cfg *cfg;
  const sy_load_mix *mix;
  const sy_load_target_ops *ops;
  sy_load_target *target;
  sy_load_stats *st;
  uv_loop_t loop;
  int tfd;           /* timerfd for the next wake-up */
  uint64_t armed;    /* the time tfd is set for; 0 = unknown (it fired) */
  uv_poll_t tpoll;
  uv_signal_t sigint, sigterm;
  slot *slots;
  size_t nslots;
  size_t *free_stack; /* idle slots, ready for a request */
  size_t nfree;
  size_t nbackoff;
  size_t npreconnect;
  sy_load_queue q;
  sy_load_rng rng;
  sy_load_zipf zipf;
  phase ph;
  int signals;
  uint64_t start_ns, t0, measure_ns, end_ns, precon_deadline, drain_deadline;
  uint64_t next_i;      /* open loop: next schedule index */
  uint64_t issued;      /* measured requests issued */
  uint64_t inflight, inflight_measured, queued_measured;
  uint64_t first_intended, last_intended, first_send, last_send, last_done;
  int have_measured, have_send;
} run;

static void pump(run *r);

const char *sy_load_err_name(sy_load_err e) {
  static const char *const names[SY_LOAD_E_COUNT] = {
      "ok", "connect", "timeout", "http_4xx", "http_5xx", "http_other", "reset", "parse",
      "queue_full", "client"};
  return (unsigned)e < SY_LOAD_E_COUNT ? names[e] : "unknown";
}

static void count_error(run *r, sy_load_err kind) {
  r->st->errors[kind]++;
  r->st->failed++;
}

static void make_free(run *r, size_t i) { r->free_stack[r->nfree++] = i; }

static void start_backoff(run *r, size_t i, uint64_t now) {
  slot *s = &r->slots[i];
  s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
  s->backoff = 1;
  s->backoff_until = now + (uint64_t)s->backoff_ms * 1000000ull;
  r->nbackoff++;
}

/* Draws what the next scheduled request sends (mix line and user), in
 * schedule order, so a seed fixes the sequence whatever the timing. */
static sy_load_pending draw(run *r, uint64_t intended) {
  sy_load_pending p = {.intended_ns = intended, .measured = intended >= r->measure_ns};
  if (r->mix->n > 1) p.item = (uint32_t)sy_load_mix_pick(r->mix, sy_load_rng_double(&r->rng));
  if (r->cfg->users) p.user = (uint32_t)sy_load_zipf_sample(&r->zipf, &r->rng);
  return p;
}

/* 1 when the schedule has produced everything it may. */
static int bounds_reached(run *r, uint64_t t) {
  return t >= r->end_ns || (r->cfg->requests && r->issued >= r->cfg->requests);
}

static void note_issued(run *r, const sy_load_pending *p) {
  if (!p->measured) return;
  r->issued++;
  r->st->scheduled++;
  if (!r->have_measured) r->first_intended = p->intended_ns;
  r->have_measured = 1;
  r->last_intended = p->intended_ns;
}

/* Hands p to slot i. 0, or -1 when the target refused it (counted). */
static int dispatch(run *r, size_t i, const sy_load_pending *p, uint64_t now) {
  slot *s = &r->slots[i];
  s->busy = 1;
  s->p = *p;
  s->sent_ns = now;
  s->first_ns = s->last_event_ns = 0;
  sy_load_req req = {.item = &r->mix->items[p->item], .user = p->user};
  int rc = r->ops->send(r->target, i, &req);
  if (rc) {
    s->busy = 0;
    make_free(r, i);
    if (p->measured) count_error(r, SY_LOAD_E_CLIENT);
    return -1;
  }
  r->inflight++;
  if (p->measured) {
    r->inflight_measured++;
    r->st->sent++;
    if (!r->have_send) r->first_send = now;
    r->have_send = 1;
    r->last_send = now;
  } else {
    r->st->warmup++;
  }
  return 0;
}

static void finish_run(run *r) {
  if (r->ph == PH_DONE) return;
  r->ph = PH_DONE;
  r->st->unfinished = r->inflight_measured + r->queued_measured;
  r->st->elapsed_s = (double)(uv_hrtime() - r->start_ns) / 1e9;
  r->ops->close(r->target);
  uv_close((uv_handle_t *)&r->tpoll, NULL);
  uv_close((uv_handle_t *)&r->sigint, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static void start_running(run *r, uint64_t now) {
  const sy_load_cfg *cfg = r->cfg;
  double total_s = cfg->warmup_s + (cfg->duration_s > 0 ? cfg->duration_s : SY_LOAD_MAX_SECONDS);
  if (total_s > SY_LOAD_MAX_SECONDS) total_s = SY_LOAD_MAX_SECONDS; /* the hard cap */
  r->ph = PH_RUNNING;
  r->t0 = now;
  r->measure_ns = now + (uint64_t)(cfg->warmup_s * 1e9);
  r->end_ns = now + (uint64_t)(total_s * 1e9);
}

/* Answers may take up to the request timeout; a second more for the close. */
static uint64_t drain_budget(const run *r) {
  return (uint64_t)r->cfg->timeout_ms * 1000000ull + 1000000000ull;
}

static void start_draining(run *r, uint64_t now, uint64_t budget_ns) {
  if (r->ph != PH_RUNNING) return;
  r->ph = PH_DRAINING;
  r->drain_deadline = now + budget_ns;
}

/* Every slot's last connect failed: the target is down. Requests due now
 * fail at once as connect errors instead of queueing for a server that is
 * not there (their latency would mean nothing). */
static int all_down(const run *r) { return r->nbackoff == r->nslots; }

/* Open loop: issue everything due by now. */
static void issue_open(run *r, uint64_t now) {
  for (;;) {
    uint64_t intended = sy_load_sched_intended(r->t0, r->next_i, r->cfg->rate);
    if (intended > now) return;
    if (bounds_reached(r, intended)) {
      start_draining(r, now, drain_budget(r));
      return;
    }
    r->next_i++;
    sy_load_pending p = draw(r, intended);
    note_issued(r, &p);
    if (r->nfree && r->q.len == 0) {
      dispatch(r, r->free_stack[--r->nfree], &p, now);
    } else if (all_down(r)) {
      if (p.measured) count_error(r, SY_LOAD_E_CONNECT);
    } else if (sy_load_queue_push(&r->q, &p) != 0) {
      if (p.measured) count_error(r, SY_LOAD_E_QUEUE_FULL);
    } else {
      r->queued_measured += p.measured != 0;
      if (r->q.len > r->st->queue_peak) r->st->queue_peak = r->q.len;
    }
  }
}

/* Closed loop: every idle slot sends now. */
static void issue_closed(run *r, uint64_t now) {
  while (r->nfree) {
    if (bounds_reached(r, now)) {
      start_draining(r, now, drain_budget(r));
      return;
    }
    sy_load_pending p = draw(r, now);
    note_issued(r, &p);
    /* a refusal would come back at once: retry on the next wake, not in a tight loop */
    if (dispatch(r, r->free_stack[--r->nfree], &p, now) != 0) return;
  }
}

/* When the loop must look again: the next request, a slot's backoff, a
 * deadline. UINT64_MAX when only I/O can change anything. */
static uint64_t next_wake(run *r) {
  uint64_t w = UINT64_MAX;
  if (r->ph == PH_PRECONNECT) w = r->precon_deadline;
  if (r->ph == PH_RUNNING) {
    if (r->cfg->rate > 0) w = sy_load_sched_intended(r->t0, r->next_i, r->cfg->rate);
    else w = r->end_ns;
  }
  if (r->ph == PH_DRAINING) w = r->drain_deadline;
  if (r->nbackoff)
    for (size_t i = 0; i < r->nslots; i++)
      if (r->slots[i].backoff && r->slots[i].backoff_until < w) w = r->slots[i].backoff_until;
  return w;
}

static void on_tick(uv_poll_t *h, int status, int events) {
  run *r = h->data;
  uint64_t expirations;
  /* drain the expiry count; EAGAIN (nothing due yet) is harmless */
  if (read(r->tfd, &expirations, sizeof expirations) < 0) (void)0;
  r->armed = 0; /* one-shot: it is disarmed now */
  pump(r);
}

static void arm(run *r, uint64_t now) {
  uint64_t w = next_wake(r);
  if (w == r->armed) return; /* most answers change nothing: save the syscall */
  r->armed = w;
  struct itimerspec its = {{0, 0}, {0, 0}}; /* all zero disarms */
  if (w != UINT64_MAX) {
    if (w <= now) w = now + 1; /* already due: fire at once (0 would disarm) */
    its.it_value.tv_sec = (time_t)(w / 1000000000ull);
    its.it_value.tv_nsec = (long)(w % 1000000000ull);
  }
  if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
    sy_error("switchyard-load: timerfd_settime: %s", strerror(errno)); /* not expected */
}

static void pump(run *r) {
  if (r->ph == PH_DONE) return;
  uint64_t now = uv_hrtime();
  if (r->nbackoff) {
    for (size_t i = 0; i < r->nslots; i++) {
      slot *s = &r->slots[i];
      if (s->backoff && s->backoff_until <= now) {
        s->backoff = 0;
        r->nbackoff--;
        make_free(r, i);
      }
    }
  }
  if (r->ph == PH_PRECONNECT && (r->npreconnect == 0 || now >= r->precon_deadline))
    start_running(r, now);
  if (r->ph == PH_RUNNING) {
    if (r->cfg->rate > 0) issue_open(r, now);
    else issue_closed(r, now);
    /* the clock bound holds even when every slot is busy */
    if (r->ph == PH_RUNNING && now >= r->end_ns)
      start_draining(r, now, drain_budget(r));
  }
  /* queued requests go first to whichever slot frees up */
  sy_load_pending p;
  while (all_down(r) && sy_load_queue_pop(&r->q, &p) == 0) {
    r->queued_measured -= p.measured != 0;
    if (p.measured) count_error(r, SY_LOAD_E_CONNECT);
  }
  while (r->nfree && sy_load_queue_pop(&r->q, &p) == 0) {
    r->queued_measured -= p.measured != 0;
    if (dispatch(r, r->free_stack[--r->nfree], &p, now) != 0) break;
  }
  if (r->ph == PH_DRAINING &&
      ((r->inflight == 0 && r->q.len == 0) || now >= r->drain_deadline)) {
    finish_run(r);
    return;
  }
  arm(r, now);
}

/* ---------------------------------------------------------------- sink */

static void on_connected(void *ctx, size_t i, int status) {
  run *r = ctx;
  slot *s = &r->slots[i];
  if (!s->preconnecting) return;
  s->preconnecting = 0;
  r->npreconnect--;
  if (status < 0) start_backoff(r, i, uv_hrtime());
  else make_free(r, i);
  pump(r);
}

static void on_first_byte(void *ctx, size_t i, uint64_t t) {
  run *r = ctx;
  if (!r->slots[i].first_ns) r->slots[i].first_ns = t;
}

static void on_chunk(void *ctx, size_t i, uint64_t t) {
  run *r = ctx;
  slot *s = &r->slots[i];
  if (s->last_event_ns && s->p.measured)
    sy_load_hist_record(&r->st->gap, sy_load_sched_latency_us(s->last_event_ns, t));
  s->last_event_ns = t;
}

static void on_done(void *ctx, size_t i, const sy_load_result *res, uint64_t t) {
  run *r = ctx;
  slot *s = &r->slots[i];
  sy_load_stats *st = r->st;
  s->busy = 0;
  r->inflight--;
  if (res->kind == SY_LOAD_E_CONNECT) {
    start_backoff(r, i, t);
  } else {
    s->backoff_ms = 0;
    make_free(r, i);
  }
  if (s->p.measured) {
    r->inflight_measured--;
    if (t > r->last_done) r->last_done = t;
    if (res->status >= 100 && res->status < 600) {
      st->status[res->status]++;
      st->completed++;
    }
    if (res->kind == SY_LOAD_OK) {
      st->ok++;
      sy_load_hist_record(&st->latency, sy_load_sched_latency_us(s->p.intended_ns, t));
      sy_load_hist_record(&st->service, sy_load_sched_latency_us(s->sent_ns, t));
      if (s->first_ns)
        sy_load_hist_record(&st->ttfb, sy_load_sched_latency_us(s->p.intended_ns, s->first_ns));
    } else {
      count_error(r, res->kind);
    }
  }
  if (r->ph != PH_DONE) pump(r);
}

static void on_signal(uv_signal_t *h, int signum) {
  run *r = h->data;
  r->st->interrupted = 1;
  if (++r->signals > 1 || r->ph == PH_PRECONNECT) {
    finish_run(r);
    return;
  }
  start_draining(r, uv_hrtime(), SIGNAL_DRAIN_NS);
  pump(r);
}

/* ---------------------------------------------------------------- run */

static void final_numbers(run *r) {
  sy_load_stats *st = r->st;
  uint64_t end = r->last_done > r->last_intended ? r->last_done : r->last_intended;
  if (r->have_measured && end > r->first_intended) {
    st->window_s = (double)(end - r->first_intended) / 1e9;
    st->throughput = (double)st->ok / st->window_s;
  }
  if (r->cfg->rate > 0) {
    if (st->sent > 1 && r->last_send > r->first_send)
      st->achieved_rate = (double)(st->sent - 1) / ((double)(r->last_send - r->first_send) / 1e9);
  } else if (st->window_s > 0) {
    st->achieved_rate = (double)st->sent / st->window_s;
  }
}

int sy_load_run(const sy_load_cfg *cfg, const sy_load_mix *mix, const sy_load_target_ops *ops,
                sy_load_stats *st, char *err, size_t errsz) {
  run *r = calloc(1, sizeof *r);
  if (!r) return SY_ENOMEM;
  memset(st, 0, sizeof *st);
  sy_load_hist_init(&st->latency);
  sy_load_hist_init(&st->service);
  sy_load_hist_init(&st->ttfb);
  sy_load_hist_init(&st->gap);
  r->cfg = cfg;
  r->mix = mix;
  r->ops = ops;
  r->st = st;
  r->nslots = cfg->connections;
  sy_load_rng_seed(&r->rng, cfg->seed);
  int rc = SY_ENOMEM;
  r->slots = calloc(r->nslots, sizeof *r->slots);
  r->free_stack = calloc(r->nslots, sizeof *r->free_stack);
  if (!r->slots || !r->free_stack) goto fail_mem;
  if (cfg->rate > 0 && (rc = sy_load_queue_init(&r->q, cfg->queue_max)) != 0) goto fail_mem;
  if (cfg->users && (rc = sy_load_zipf_init(&r->zipf, cfg->users, cfg->zipf_s)) != 0) {
    snprintf(err, errsz, "bad --users / --zipf");
    goto fail_queue;
  }
  if ((rc = uv_loop_init(&r->loop)) != 0) {
    snprintf(err, errsz, "uv_loop_init: %s", uv_strerror(rc));
    rc = SY_EIO;
    goto fail_zipf;
  }
  sy_load_sink sink = {.ctx = r,
                       .connected = on_connected,
                       .first_byte = on_first_byte,
                       .chunk = on_chunk,
                       .done = on_done};
  if ((rc = ops->create(&r->loop, cfg, &sink, r->nslots, &r->target, err, errsz)) != 0)
    goto fail_loop;

  r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (r->tfd < 0 || uv_poll_init(&r->loop, &r->tpoll, r->tfd) != 0) {
    snprintf(err, errsz, "timerfd: %s", strerror(errno));
    rc = SY_EIO;
    goto fail_target;
  }
  uv_poll_start(&r->tpoll, UV_READABLE, on_tick);
  uv_signal_init(&r->loop, &r->sigint);
  uv_signal_init(&r->loop, &r->sigterm);
  r->tpoll.data = r->sigint.data = r->sigterm.data = r;
  uv_signal_start(&r->sigint, on_signal, SIGINT);
  uv_signal_start(&r->sigterm, on_signal, SIGTERM);

  r->start_ns = uv_hrtime();
  r->ph = PH_PRECONNECT;
  r->precon_deadline = r->start_ns + PRECONNECT_MAX_NS;
  for (size_t i = 0; i < r->nslots; i++) {
    if (ops->connect(r->target, i) == 0) {
      r->slots[i].preconnecting = 1;
      r->npreconnect++;
    } else {
      make_free(r, i);
    }
  }
  pump(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  final_numbers(r);
  close(r->tfd);
  ops->destroy(r->target);
  rc = 0;
  goto fail_loop;
fail_target:
  if (r->tfd >= 0) close(r->tfd);
  ops->close(r->target);
  uv_run(&r->loop, UV_RUN_DEFAULT); /* lets the target's handles close */
  ops->destroy(r->target);
fail_loop:
  if (uv_loop_close(&r->loop) != 0) sy_warn("switchyard-load: loop closed with handles open");
fail_zipf:
  sy_load_zipf_free(&r->zipf);
fail_queue:
  sy_load_queue_free(&r->q);
fail_mem:
  free(r->slots);
  free(r->free_stack);
  free(r);
  return rc;
}
