/* switchyard-bench_store: capture store write throughput, records/s for group
 * commits of 1, 100 and 1000 records in each durability mode, plus feedback
 * puts and a read-back scan. Bounded: each cell runs at most CELL_SECONDS.
 *
 *   switchyard-bench_store [DIR]     (default: a temp dir under /tmp, removed after)
 *
 * Run it on the file system the gateway will use: on tmpfs fsync is free and
 * the SYNC numbers mean nothing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/store.h"

#define CELL_SECONDS 1.0
#define CELL_MAX_RECORDS 300000
#define BODY_BYTES 1024 /* request and response each: a typical small chat exchange */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[4096];
    int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (n < 0 || (size_t)n >= sizeof p) continue;
    if (unlink(p) != 0) rmtree(p);
  }
  closedir(d);
  rmdir(dir);
}

static int count_cb(void *ctx, const sy_capture *c, sy_feedback *const *fb, size_t n) {
  (void)c;
  (void)fb;
  (void)n;
  (*(uint64_t *)ctx)++;
  return 0;
}

int main(int argc, char **argv) {
  char base[512];
  int own_dir = argc < 2;
  if (own_dir) {
    snprintf(base, sizeof base, "/tmp/sy_bench_store_XXXXXX");
    if (!mkdtemp(base)) {
      perror("mkdtemp");
      return 1;
    }
  } else {
    snprintf(base, sizeof base, "%s", argv[1]);
  }
  static const char *mode_names[] = {"sync", "nometasync", "nosync"};
  static const size_t batches[] = {1, 100, 1000};

  static char req[BODY_BYTES], resp[BODY_BYTES];
  memset(req, 'q', sizeof req);
  memset(resp, 'r', sizeof resp);
  sy_capture tmpl;
  switchyard__v1__capture__init(&tmpl);
  tmpl.request_id = "req-0123456789abcdef";
  tmpl.client_key_id = "app-prod";
  tmpl.user_hash = "9f86d081884c7d659a2feaa0c55ad015";
  tmpl.route = "support-bot";
  tmpl.arm = "base";
  tmpl.model = "gpt-4o-mini";
  tmpl.upstream = "openai";
  tmpl.endpoint = "/v1/chat/completions";
  tmpl.request_body.data = (uint8_t *)req;
  tmpl.request_body.len = sizeof req;
  tmpl.response_body.data = (uint8_t *)resp;
  tmpl.response_body.len = sizeof resp;
  tmpl.http_status = 200;
  tmpl.finish_reason = "stop";
  tmpl.total_tokens = 420;
  const sy_capture **ptrs = calloc(1000, sizeof *ptrs);
  if (!ptrs) return 1;
  for (int i = 0; i < 1000; i++) ptrs[i] = &tmpl;

  printf("capture store write throughput (records of ~%d bytes, %.1f s per cell)\n",
         2 * BODY_BYTES + 120, CELL_SECONDS);
  printf("%-11s %6s %12s %12s %10s\n", "mode", "batch", "records", "records/s", "ms/commit");
  int failed = 0;
  for (int m = 0; m < 3; m++) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", base, mode_names[m]);
    sy_store_opts o = {0};
    o.path = path;
    o.durability = (sy_durability)m;
    sy_store *s;
    int rc = sy_store_open(&o, &s);
    if (rc) {
      fprintf(stderr, "open %s: %s\n", path, sy_strerror(rc));
      return 1;
    }
    for (size_t b = 0; b < 3; b++) {
      size_t batch = batches[b];
      uint64_t recs = 0, commits = 0;
      double t0 = now_s(), t = t0;
      while (t - t0 < CELL_SECONDS && recs < CELL_MAX_RECORDS) {
        if ((rc = sy_store_put_captures(s, ptrs, batch, NULL)) != 0) {
          fprintf(stderr, "put: %s\n", sy_strerror(rc));
          failed = 1;
          break;
        }
        recs += batch;
        commits++;
        t = now_s();
      }
      if (m == SY_DURABLE_NOSYNC) sy_store_sync(s); /* what the writer does periodically */
      t = now_s() - t0;
      printf("%-11s %6zu %12llu %12.0f %10.3f\n", mode_names[m], batch,
             (unsigned long long)recs, (double)recs / t, 1000.0 * t / (double)(commits ? commits : 1));
    }
    if (m == SY_DURABLE_SYNC) {
      /* feedback is one durable transaction per call (the 200 of POST /v1/feedback) */
      uint64_t last = sy_store_last_id(s), n = 0;
      double t0 = now_s();
      while (now_s() - t0 < CELL_SECONDS / 2 && n < 10000) {
        sy_feedback fb;
        switchyard__v1__feedback__init(&fb);
        fb.capture_id = last;
        fb.rating = SWITCHYARD__V1__FEEDBACK__RATING__UP;
        if (sy_store_put_feedback(s, &fb) != 0) break;
        n++;
      }
      printf("%-11s %6s %12llu %12.0f  (feedback puts, synced each)\n", mode_names[m], "1",
             (unsigned long long)n, (double)n / (now_s() - t0));
    }
    if (m == SY_DURABLE_NOSYNC) {
      uint64_t n = 0;
      sy_store_iter_opts io = {0};
      io.batch = 256;
      double t0 = now_s();
      rc = sy_store_iter_captures(s, &io, count_cb, &n, NULL);
      double t = now_s() - t0;
      printf("%-11s %6s %12llu %12.0f  (read-back scan, unpacked)\n", "scan", "256",
             (unsigned long long)n, (double)n / t);
      if (rc) failed = 1;
    }
    sy_store_stats st;
    if (sy_store_stats_get(s, &st) == 0)
      printf("%-11s store: %llu captures, %llu bytes in use (%.0f per record), map %llu\n",
             mode_names[m], (unsigned long long)st.captures, (unsigned long long)st.bytes_used,
             st.captures ? (double)st.bytes_used / (double)st.captures : 0.0,
             (unsigned long long)st.map_size);
    sy_store_close(s);
  }
  free(ptrs);
  if (own_dir) rmtree(base);
  return failed;
}
