/* Shared helpers for the test_store_*.c tests (header only; not a test itself). */
#ifndef SY_TEST_STORE_UTIL_H
#define SY_TEST_STORE_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* A clock the tests can freeze and move. */
typedef struct {
  uint64_t now_us;
} test_clock;

static inline uint64_t test_clock_fn(void *ctx) { return ((test_clock *)ctx)->now_us; }

/* Makes a fresh temp dir under /tmp; the store goes in <dir>/db (created by open). */
static inline void test_tmpdir(char *dir, size_t n) {
  snprintf(dir, n, "/tmp/sy_store_test_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    abort();
  }
}

/* Removes a directory tree two levels deep (dir/db/{data,lock}.mdb, dir/files). */
static inline void test_rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[4096];
    int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (n < 0 || (size_t)n >= sizeof p) continue;
    if (unlink(p) != 0) test_rmtree(p);
  }
  closedir(d);
  rmdir(dir);
}

/* Fills a capture with recognisable content; strings point into buf (>= 256 bytes). */
static inline void test_fill_capture(sy_capture *c, char *buf, size_t bufn, int i,
                                     size_t body_bytes) {
  switchyard__v1__capture__init(c);
  snprintf(buf, bufn, "req-%d", i);
  c->request_id = buf;
  c->route = "support-bot";
  c->arm = (i % 2) ? "candidate" : "base";
  c->model = "gpt-4o-mini";
  c->http_status = 200;
  c->ts_start_us = 1000 + (uint64_t)i;
  c->total_tokens = (uint32_t)i;
  c->request_body.data = (uint8_t *)buf + 64;
  c->request_body.len = body_bytes < bufn - 64 ? body_bytes : bufn - 64;
  memset(buf + 64, 'a' + i % 26, c->request_body.len);
}

#endif
