/* store/: put, get, iterate, delete, ids, map growth, full map, corrupt records,
 * read-only access from another process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "common/err.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  test_rmtree(f->dir);
  free(f);
  return 0;
}

static sy_store *open_store(fixture *f, size_t map_init, size_t map_max, int ro) {
  sy_store_opts o = {0};
  o.path = f->path;
  o.read_only = ro;
  o.durability = SY_DURABLE_NOSYNC;
  o.map_size_initial = map_init;
  o.map_size_max = map_max;
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  sy_store *s = NULL;
  assert_int_equal(sy_store_open(&o, &s), 0);
  return s;
}

static int put_n(sy_store *s, int start, int n, size_t body, uint64_t *ids) {
  sy_capture *recs = calloc((size_t)n, sizeof *recs);
  const sy_capture **ptrs = calloc((size_t)n, sizeof *ptrs);
  char(*bufs)[2048] = calloc((size_t)n, sizeof *bufs);
  for (int i = 0; i < n; i++) {
    test_fill_capture(&recs[i], bufs[i], sizeof bufs[i], start + i, body);
    ptrs[i] = &recs[i];
  }
  int rc = sy_store_put_captures(s, ptrs, (size_t)n, ids);
  free(bufs);
  free(ptrs);
  free(recs);
  return rc;
}

typedef struct {
  uint64_t ids[4096];
  size_t n;
  size_t fb_total;
  sy_store *s; /* when set, the callback writes a new capture (no txn is open) */
} collect;

static int collect_cb(void *ctx, const sy_capture *cap, sy_feedback *const *fb, size_t n_fb) {
  collect *c = ctx;
  if (c->n < 4096) c->ids[c->n++] = cap->id;
  c->fb_total += n_fb;
  for (size_t i = 0; i < n_fb; i++) assert_int_equal(fb[i]->capture_id, cap->id);
  if (c->s && c->n == 1) assert_int_equal(put_n(c->s, 900, 1, 10, NULL), 0);
  return 0;
}

static void test_put_get_iter_delete(void **state) {
  fixture *f = *state;
  sy_store *s = open_store(f, 0, 0, 0);
  uint64_t ids[10];
  assert_int_equal(put_n(s, 0, 10, 100, ids), 0);
  for (int i = 1; i < 10; i++) assert_true(ids[i] > ids[i - 1]); /* frozen clock: bumped */
  assert_int_equal(ids[0], f->clk.now_us);

  sy_capture *c = NULL;
  assert_int_equal(sy_store_get_capture(s, ids[3], &c), 0);
  assert_int_equal(c->id, ids[3]);
  assert_string_equal(c->request_id, "req-3");
  assert_string_equal(c->arm, "candidate");
  assert_int_equal(c->request_body.len, 100);
  assert_int_equal(c->request_body.data[0], 'd');
  sy_store_capture_free(c);
  assert_int_equal(sy_store_get_capture(s, 12345, &c), SY_ENOTFOUND);
  assert_null(c);

  /* feedback: unknown capture, then two entries on one capture */
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = 42;
  fb.rating = SWITCHYARD__V1__FEEDBACK__RATING__UP;
  assert_int_equal(sy_store_put_feedback(s, &fb), SY_ENOTFOUND);
  fb.capture_id = ids[2];
  assert_int_equal(sy_store_put_feedback(s, &fb), 0);
  uint64_t fb1 = fb.id;
  fb.correction = "better";
  assert_int_equal(sy_store_put_feedback(s, &fb), 0);
  assert_true(fb.id > fb1);
  sy_feedback **fbs;
  size_t nfb;
  assert_int_equal(sy_store_get_feedback(s, ids[2], &fbs, &nfb), 0);
  assert_int_equal(nfb, 2);
  assert_string_equal(fbs[1]->correction, "better");
  assert_int_equal(fbs[0]->id, fb1);
  sy_store_feedback_free(fbs, nfb);

  /* iterate: all, a range, reverse with a limit */
  collect col = {0};
  sy_store_iter_opts io = {0};
  io.flags = SY_ITER_FEEDBACK;
  io.batch = 3; /* several short transactions */
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, NULL), 0);
  assert_int_equal(col.n, 10);
  assert_int_equal(col.fb_total, 2);
  for (int i = 0; i < 10; i++) assert_int_equal(col.ids[i], ids[i]);

  memset(&col, 0, sizeof col);
  io.from_id = ids[2];
  io.to_id = ids[7];
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, NULL), 0);
  assert_int_equal(col.n, 5);
  assert_int_equal(col.ids[0], ids[2]);
  assert_int_equal(col.ids[4], ids[6]);

  memset(&col, 0, sizeof col);
  io.from_id = 0;
  io.to_id = 0;
  io.flags = SY_ITER_REVERSE;
  io.limit = 4;
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, NULL), 0);
  assert_int_equal(col.n, 4);
  assert_int_equal(col.ids[0], ids[9]);
  assert_int_equal(col.ids[3], ids[6]);

  /* writing from the callback: no transaction is held, and the new record
   * (in range) is seen by a later batch */
  memset(&col, 0, sizeof col);
  memset(&io, 0, sizeof io);
  io.batch = 2;
  col.s = s;
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, NULL), 0);
  assert_int_equal(col.n, 11);

  /* delete removes the capture and its feedback */
  assert_int_equal(sy_store_delete_capture(s, ids[2]), 0);
  assert_int_equal(sy_store_delete_capture(s, ids[2]), SY_ENOTFOUND);
  assert_int_equal(sy_store_get_capture(s, ids[2], &c), SY_ENOTFOUND);
  assert_int_equal(sy_store_get_feedback(s, ids[2], &fbs, &nfb), 0);
  assert_int_equal(nfb, 0);
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(s, &st), 0);
  assert_int_equal(st.captures, 10);
  assert_int_equal(st.feedback, 0);
  assert_int_equal(st.oldest_id, ids[0]);
  assert_true(st.bytes_used > 0 && st.bytes_used <= st.file_bytes);
  sy_store_close(s);
}

static void test_ids_across_reopen(void **state) {
  fixture *f = *state;
  uint64_t last = 0;
  for (int round = 0; round < 3; round++) {
    sy_store *s = open_store(f, 0, 0, 0);
    uint64_t ids[5];
    assert_int_equal(put_n(s, round * 5, 5, 10, ids), 0);
    for (int i = 0; i < 5; i++) {
      assert_true(ids[i] > last);
      last = ids[i];
    }
    assert_int_equal(sy_store_last_id(s), last);
    sy_store_close(s);
    /* the clock stands still, or even steps back */
    if (round == 1) f->clk.now_us -= 1000000;
  }
  /* after everything is deleted, the meta record still keeps ids increasing */
  sy_store *s = open_store(f, 0, 0, 0);
  uint64_t removed = 0;
  assert_int_equal(sy_store_retention(s, 1, 0, f->clk.now_us + 10000000, 0, &removed), 0);
  assert_int_equal(removed, 15);
  sy_store_close(s);
  s = open_store(f, 0, 0, 0);
  uint64_t id;
  assert_int_equal(put_n(s, 0, 1, 10, &id), 0);
  assert_true(id > last);
  sy_store_close(s);
}

static void test_map_growth(void **state) {
  fixture *f = *state;
  sy_store *s = open_store(f, 64 << 10, 64 << 20, 0);
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(s, &st), 0);
  assert_int_equal(st.map_size, 64 << 10);
  uint64_t ids[2000];
  for (int b = 0; b < 20; b++) assert_int_equal(put_n(s, b * 100, 100, 1500, ids + b * 100), 0);
  assert_int_equal(sy_store_stats_get(s, &st), 0);
  assert_int_equal(st.captures, 2000);
  assert_true(st.map_size >= 4u << 20); /* 64 KiB doubled at least 6 times */
  for (int i = 0; i < 2000; i += 7) {
    sy_capture *c;
    assert_int_equal(sy_store_get_capture(s, ids[i], &c), 0);
    char want[32];
    snprintf(want, sizeof want, "req-%d", i);
    assert_string_equal(c->request_id, want);
    assert_int_equal(c->request_body.len, 1500);
    sy_store_capture_free(c);
  }
  sy_store_close(s);
  /* reopening keeps the grown size rather than the small initial one */
  s = open_store(f, 64 << 10, 64 << 20, 0);
  sy_store_stats st2;
  assert_int_equal(sy_store_stats_get(s, &st2), 0);
  assert_true(st2.map_size >= st.map_size);
  sy_store_close(s);
}

static void test_map_full(void **state) {
  fixture *f = *state;
  sy_store *s = open_store(f, 64 << 10, 256 << 10, 0);
  int rc = 0, ok = 0;
  for (int b = 0; b < 200 && rc == 0; b++) {
    rc = put_n(s, b * 10, 10, 1500, NULL);
    if (rc == 0) ok++;
  }
  assert_int_equal(rc, SY_EFULL);
  assert_true(ok > 5);
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(s, &st), 0);
  assert_int_equal(st.captures, (uint64_t)ok * 10); /* the failed batch left nothing */
  assert_int_equal(st.map_size, 256 << 10);
  /* retention frees room and writing works again */
  uint64_t removed;
  assert_int_equal(sy_store_retention(s, 0, st.bytes_used / 2, 0, 50, &removed), 0);
  assert_true(removed > 0);
  assert_int_equal(put_n(s, 0, 10, 1500, NULL), 0);
  sy_store_close(s);
}

static void test_corrupt_record(void **state) {
  fixture *f = *state;
  sy_store *s = open_store(f, 0, 0, 0);
  uint64_t ids[3];
  assert_int_equal(put_n(s, 0, 3, 10, ids), 0);
  /* an invalid protobuf (bad wire type / truncated varint) between good records */
  unsigned char key[8], bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint64_t bad_id = ids[2] + 1000; /* after the good ones */
  for (int i = 0; i < 8; i++) key[i] = (unsigned char)(bad_id >> (56 - 8 * i));
  assert_int_equal(sy__store_put_raw(s, "captures", key, 8, bad, sizeof bad), 0);
  sy_capture *c = (sy_capture *)1;
  assert_int_equal(sy_store_get_capture(s, bad_id, &c), SY_EIO);
  assert_null(c);
  collect col = {0};
  sy_store_iter_opts io = {0};
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, NULL), SY_EIO);
  memset(&col, 0, sizeof col);
  io.flags = SY_ITER_SKIP_CORRUPT | SY_ITER_FEEDBACK;
  uint64_t corrupt = 0;
  assert_int_equal(sy_store_iter_captures(s, &io, collect_cb, &col, &corrupt), 0);
  assert_int_equal(corrupt, 1);
  assert_int_equal(col.n, 3);
  /* a corrupt feedback entry */
  unsigned char fkey[16];
  memcpy(fkey, key, 8);
  for (int i = 0; i < 8; i++) fkey[i] = (unsigned char)(ids[0] >> (56 - 8 * i));
  memset(fkey + 8, 1, 8);
  assert_int_equal(sy__store_put_raw(s, "feedback", fkey, 16, bad, sizeof bad), 0);
  sy_feedback **fbs;
  size_t nfb;
  assert_int_equal(sy_store_get_feedback(s, ids[0], &fbs, &nfb), SY_EIO);
  assert_int_equal(sy__store_put_raw(s, "nope", fkey, 16, bad, sizeof bad), SY_EINVAL);
  sy_store_close(s);
}

/* The child opens the store read-only next to the parent's open writer, then
 * waits while the parent grows the map far past the child's mapping, and
 * must still read everything (MDB_MAP_RESIZED handled). Exit code = failures. */
static int child_reader(const char *path, int rfd, int wfd) {
  sy_store_opts o = {0};
  o.path = path;
  o.read_only = 1;
  sy_store *s = NULL;
  if (sy_store_open(&o, &s) != 0) return 10;
  sy_store_stats st;
  int fails = 0;
  if (sy_store_stats_get(s, &st) != 0 || st.captures != 5) fails++;
  if (write(wfd, "r", 1) != 1) fails++;
  char ch;
  if (read(rfd, &ch, 1) != 1) fails++;
  collect *col = calloc(1, sizeof *col);
  sy_store_iter_opts io = {0};
  if (sy_store_iter_captures(s, &io, collect_cb, col, NULL) != 0 || col->n != 2005) fails++;
  if (sy_store_stats_get(s, &st) != 0 || st.captures != 2005) fails++;
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = col->ids[0];
  if (sy_store_put_feedback(s, &fb) != SY_EINVAL) fails++; /* read-only */
  free(col);
  sy_store_close(s);
  return fails;
}

static void test_read_only_next_to_writer(void **state) {
  fixture *f = *state;
  sy_store_opts o = {0};
  o.path = f->path;
  o.read_only = 1;
  sy_store *ro = NULL;
  assert_int_equal(sy_store_open(&o, &ro), SY_ENOTFOUND); /* nothing there yet */

  sy_store *s = open_store(f, 64 << 10, 64 << 20, 0);
  assert_int_equal(put_n(s, 0, 5, 100, NULL), 0);
  int p2c[2], c2p[2];
  assert_int_equal(pipe(p2c), 0);
  assert_int_equal(pipe(c2p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* the child must not touch the parent's environment handle */
    _exit(child_reader(f->path, p2c[0], c2p[1]));
  }
  char ch;
  assert_int_equal(read(c2p[0], &ch, 1), 1);
  for (int b = 0; b < 20; b++) assert_int_equal(put_n(s, b * 100, 100, 1500, NULL), 0);
  assert_int_equal(write(p2c[1], "g", 1), 1);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  close(p2c[0]);
  close(p2c[1]);
  close(c2p[0]);
  close(c2p[1]);
  sy_store_close(s);
}

static void test_bad_args(void **state) {
  fixture *f = *state;
  sy_store_opts o = {0};
  sy_store *s = NULL;
  assert_int_equal(sy_store_open(&o, &s), SY_EINVAL);
  o.path = f->path;
  o.map_size_initial = 2 << 20;
  o.map_size_max = 1 << 20;
  assert_int_equal(sy_store_open(&o, &s), SY_EINVAL);
  s = open_store(f, 0, 0, 0);
  assert_int_equal(sy_store_put_captures(s, NULL, 0, NULL), SY_EINVAL);
  const sy_capture *one[1] = {NULL};
  assert_int_equal(sy_store_put_captures(s, one, 1, NULL), SY_EINVAL);
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  assert_int_equal(sy_store_put_feedback(s, &fb), SY_EINVAL); /* capture_id 0 */
  /* a record over the size limit is refused whole */
  sy_capture big;
  switchyard__v1__capture__init(&big);
  big.response_body.len = SY_STORE_MAX_RECORD_BYTES + 1;
  big.response_body.data = calloc(1, big.response_body.len);
  const sy_capture *bp[1] = {&big};
  assert_int_equal(sy_store_put_captures(s, bp, 1, NULL), SY_ETOOBIG);
  free(big.response_body.data);
  assert_int_equal(sy_store_last_id(s), 0);
  sy_store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_iter_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ids_across_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_map_growth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_only_next_to_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
