/* store/: retention by age and by size (oldest first, with feedback), in bounded
 * transactions, next to a running writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
  sy_store *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  sy_store_opts o = {0};
  o.path = f->path;
  o.durability = SY_DURABLE_NOSYNC;
  o.map_size_initial = 1 << 20;
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  assert_int_equal(sy_store_open(&o, &f->s), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sy_store_close(f->s);
  test_rmtree(f->dir);
  free(f);
  return 0;
}

static uint64_t put_one(sy_store *s, int i, size_t body) {
  static char buf[8192];
  sy_capture c;
  test_fill_capture(&c, buf, sizeof buf, i, body);
  const sy_capture *p[1] = {&c};
  uint64_t id = 0;
  assert_int_equal(sy_store_put_captures(s, p, 1, &id), 0);
  return id;
}

static void add_feedback(sy_store *s, uint64_t id, int n) {
  for (int i = 0; i < n; i++) {
    sy_feedback fb;
    switchyard__v1__feedback__init(&fb);
    fb.capture_id = id;
    fb.rating = SWITCHYARD__V1__FEEDBACK__RATING__UP;
    assert_int_equal(sy_store_put_feedback(s, &fb), 0);
  }
}

static size_t fb_count(sy_store *s, uint64_t id) {
  sy_feedback **fb;
  size_t n;
  assert_int_equal(sy_store_get_feedback(s, id, &fb, &n), 0);
  sy_store_feedback_free(fb, n);
  return n;
}

static void test_by_age(void **state) {
  fixture *f = *state;
  uint64_t ids[10];
  uint64_t t0 = f->clk.now_us;
  for (int i = 0; i < 10; i++) {
    f->clk.now_us = t0 + (uint64_t)i * 1000000;
    ids[i] = put_one(f->s, i, 100);
    add_feedback(f->s, ids[i], 2);
  }
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(f->s, &st), 0);
  assert_int_equal(st.feedback, 20);
  uint64_t removed = 99;
  /* nothing is old enough yet */
  assert_int_equal(sy_store_retention(f->s, 20000000, 0, t0 + 9000000, 0, &removed), 0);
  assert_int_equal(removed, 0);
  /* older than 5.5 s at t0+9 s: captures 0..3; one per transaction */
  assert_int_equal(sy_store_retention(f->s, 5500000, 0, t0 + 9000000, 1, &removed), 0);
  assert_int_equal(removed, 4);
  assert_int_equal(sy_store_stats_get(f->s, &st), 0);
  assert_int_equal(st.captures, 6);
  assert_int_equal(st.feedback, 12);
  assert_int_equal(st.oldest_id, ids[4]);
  sy_capture *c;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(sy_store_get_capture(f->s, ids[i], &c), SY_ENOTFOUND);
    assert_int_equal(fb_count(f->s, ids[i]), 0);
  }
  for (int i = 4; i < 10; i++) assert_int_equal(fb_count(f->s, ids[i]), 2);
  /* feedback on a capture removed by retention: not found */
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = ids[0];
  assert_int_equal(sy_store_put_feedback(f->s, &fb), SY_ENOTFOUND);
}

static void test_by_size(void **state) {
  fixture *f = *state;
  enum { N = 500 };
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    ids[i] = put_one(f->s, i, 2000);
    if (i % 10 == 0) add_feedback(f->s, ids[i], 1);
  }
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(f->s, &st), 0);
  uint64_t budget = st.bytes_used / 2;
  uint64_t removed = 0;
  assert_int_equal(sy_store_retention(f->s, 0, budget, 0, 50, &removed), 0);
  assert_int_equal(sy_store_stats_get(f->s, &st), 0);
  assert_true(st.bytes_used <= budget);
  assert_in_range(removed, N / 3, N * 3 / 4); /* about half, not everything */
  assert_int_equal(st.captures, N - removed);
  assert_int_equal(st.oldest_id, ids[removed]); /* oldest first, contiguous */
  assert_int_equal(st.newest_id, ids[N - 1]);
  uint64_t fb_left = 0;
  for (int i = 0; i < N; i += 10) fb_left += fb_count(f->s, ids[i]);
  assert_int_equal(st.feedback, fb_left);
  assert_int_equal(fb_left, N / 10 - (removed + 9) / 10); /* multiples of 10 left */
}

typedef struct {
  sy_store *s;
  int stop;
  uint64_t max_put_us;
  int puts;
} writer_arg;

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void *writer(void *p) {
  writer_arg *w = p;
  static char buf[8192];
  sy_capture c[20];
  const sy_capture *ptr[20];
  for (int i = 0; i < 20; i++) {
    test_fill_capture(&c[i], buf, sizeof buf, i, 500);
    ptr[i] = &c[i];
  }
  while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST) && w->puts < 2000) {
    uint64_t t = mono_us();
    if (sy_store_put_captures(w->s, ptr, 20, NULL) != 0) break;
    t = mono_us() - t;
    if (t > w->max_put_us) w->max_put_us = t;
    __atomic_fetch_add(&w->puts, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

/* Retention runs while another thread writes batches; both make progress and
 * the writer is never blocked for long (bounded retention transactions). */
static void test_concurrent_with_writer(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 3000; i++) put_one(f->s, i, 500);
  sy_store_stats st;
  assert_int_equal(sy_store_stats_get(f->s, &st), 0);
  f->clk.now_us += 10000000; /* new writes are 10 s younger than the 3000 */
  writer_arg w = {f->s, 0, 0, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
  /* let the writer get going first, so retention really runs next to it */
  for (int i = 0; i < 5000 && __atomic_load_n(&w.puts, __ATOMIC_SEQ_CST) == 0; i++) usleep(1000);
  uint64_t removed = 0;
  /* the age cutoff is just below the writer's ids: removes the 3000, in small txns */
  assert_int_equal(sy_store_retention(f->s, 1, 0, f->clk.now_us, 100, &removed), 0);
  __atomic_store_n(&w.stop, 1, __ATOMIC_SEQ_CST);
  pthread_join(th, NULL);
  assert_int_equal(removed, 3000);
  assert_true(w.puts > 0);
  assert_true(w.max_put_us < 2000000); /* generous for slow CI; typical is < 10 ms */
  sy_store_stats st2;
  assert_int_equal(sy_store_stats_get(f->s, &st2), 0);
  assert_int_equal(st2.captures + removed, 3000 + (uint64_t)w.puts * 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_by_age, setup, teardown),
      cmocka_unit_test_setup_teardown(test_by_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_with_writer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
