/* switchyard-load's open-loop schedule arithmetic, the pending queue, and
 * coordinated-omission correction: a stalled server must show up in the
 * latency of every request that had to wait for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/err.h"
#include "loadtest/load_hist.h"
#include "loadtest/load_sched.h"

#define MS 1000000ull
#define T0 5000000000ull /* an arbitrary monotonic start */

static void test_intended(void **state) {
  (void)state;
  for (uint64_t i = 0; i <= 1000; i++)
    assert_int_equal(sy_load_sched_intended(T0, i, 200), T0 + i * 5 * MS);
  /* a period that is not a whole number of ns does not drift */
  assert_int_equal(sy_load_sched_intended(T0, 3, 3.0), T0 + 1000 * MS);
  assert_int_equal(sy_load_sched_intended(T0, 3000, 3.0), T0 + 1000000 * MS);
  assert_int_equal(sy_load_sched_intended(T0, 1, 3.0), T0 + 333333333);
  uint64_t prev = 0;
  for (uint64_t i = 0; i < 100000; i++) {
    uint64_t t = sy_load_sched_intended(T0, i, 7777.7);
    assert_true(i == 0 || t > prev);
    prev = t;
  }
  /* 200 req/s for 3 s: exactly 600 requests are due before the end */
  assert_int_equal(sy_load_sched_intended(T0, 600, 200), T0 + 3000 * MS);
}

static void test_due(void **state) {
  (void)state;
  assert_int_equal(sy_load_sched_due(T0, 200, T0 - 1), 0);
  assert_int_equal(sy_load_sched_due(T0, 200, T0), 1);
  assert_int_equal(sy_load_sched_due(T0, 200, T0 + 5 * MS - 1), 1);
  assert_int_equal(sy_load_sched_due(T0, 200, T0 + 5 * MS), 2);
  assert_int_equal(sy_load_sched_due(T0, 200, T0 + 3000 * MS - 1), 600);
  /* consistent with intended() for an awkward rate */
  for (uint64_t i = 1; i < 5000; i++) {
    uint64_t t = sy_load_sched_intended(T0, i, 333.3);
    assert_int_equal(sy_load_sched_due(T0, 333.3, t), i + 1);
    assert_int_equal(sy_load_sched_due(T0, 333.3, t - 1), i);
  }
}

static void test_latency(void **state) {
  (void)state;
  assert_int_equal(sy_load_sched_latency_us(T0, T0 + 20 * MS), 20000);
  assert_int_equal(sy_load_sched_latency_us(T0, T0 + 1499), 1);
  assert_int_equal(sy_load_sched_latency_us(T0, T0 + 1500), 2);
  assert_int_equal(sy_load_sched_latency_us(T0, T0 + 499), 0);
  assert_int_equal(sy_load_sched_latency_us(T0, T0), 0);
  assert_int_equal(sy_load_sched_latency_us(T0 + 10, T0), 0);
}

static void test_queue(void **state) {
  (void)state;
  sy_load_queue q;
  assert_int_equal(sy_load_queue_init(&q, 0), SY_EINVAL);
  assert_int_equal(sy_load_queue_init(&q, SY_LOAD_QUEUE_MAX + 1), SY_EINVAL);
  assert_int_equal(sy_load_queue_init(&q, 3), 0);
  sy_load_pending p = {0}, out;
  assert_int_equal(sy_load_queue_pop(&q, &out), SY_ENOTFOUND);
  /* FIFO across wrap-around, full at the cap */
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 10; round++) {
    while (q.len < 3) {
      p.intended_ns = next_in++;
      assert_int_equal(sy_load_queue_push(&q, &p), 0);
    }
    p.intended_ns = 999;
    assert_int_equal(sy_load_queue_push(&q, &p), SY_EFULL);
    assert_int_equal(q.len, 3);
    for (int k = 0; k < 2; k++) {
      assert_int_equal(sy_load_queue_pop(&q, &out), 0);
      assert_int_equal(out.intended_ns, next_out++);
    }
  }
  sy_load_queue_free(&q);
}

/* One connection, open loop at 1000 req/s. The server stalls 100 ms on
 * request 0 and then answers each request in 0.1 ms. Requests that arrive
 * during the stall wait in the queue (the engine's FIFO) and are sent when
 * the connection frees up. */
static void test_coordinated_omission(void **state) {
  (void)state;
  enum { N = 300 };
  const double rate = 1000;
  sy_load_queue q;
  assert_int_equal(sy_load_queue_init(&q, N), 0);
  sy_load_hist *corrected = malloc(sizeof *corrected), *naive = malloc(sizeof *naive);
  assert_non_null(corrected);
  assert_non_null(naive);
  sy_load_hist_init(corrected);
  sy_load_hist_init(naive);
  uint64_t lat[N], svc[N];

  int busy = 0;
  uint64_t busy_done = 0, cur_sent = 0;
  sy_load_pending cur = {0};
  uint64_t i = 0;
  size_t finished = 0;
  while (finished < N) {
    uint64_t next_arrival = i < N ? sy_load_sched_intended(T0, i, rate) : UINT64_MAX;
    if (busy && busy_done <= next_arrival) {
      /* the answer arrives; the connection takes the oldest waiting request */
      size_t k = (size_t)(cur.item);
      lat[k] = sy_load_sched_latency_us(cur.intended_ns, busy_done);
      svc[k] = sy_load_sched_latency_us(cur_sent, busy_done);
      sy_load_hist_record(corrected, lat[k]);
      sy_load_hist_record(naive, svc[k]);
      finished++;
      busy = 0;
      uint64_t now = busy_done;
      if (sy_load_queue_pop(&q, &cur) == 0) {
        busy = 1;
        cur_sent = now;
        busy_done = now + MS / 10;
      }
      continue;
    }
    sy_load_pending p = {.intended_ns = next_arrival, .item = (uint32_t)i};
    if (!busy) {
      cur = p;
      busy = 1;
      cur_sent = next_arrival;
      busy_done = next_arrival + (i == 0 ? 100 * MS : MS / 10);
    } else {
      assert_int_equal(sy_load_queue_push(&q, &p), 0);
    }
    i++;
  }

  /* request 0 took the stall itself */
  assert_int_equal(lat[0], 100000);
  /* request 1 was due at 1 ms and sent at 100 ms: 99.1 ms, though the
   * server spent only 0.1 ms on it */
  assert_int_equal(lat[1], 99100);
  assert_int_equal(svc[1], 100);
  /* request 50: sent after 49 others, at 100 + 4.9 ms, done at 105.0 ms */
  assert_int_equal(lat[50], 55000);
  /* the backlog drains at 0.9 requests per ms: gone after ~111 ms */
  assert_int_equal(lat[200], 100);
  /* what the naive (from-send) measurement would report: one slow request */
  assert_int_equal(naive->max, 100000);
  assert_int_equal(sy_load_hist_percentile(naive, 99), 100);
  /* the corrected view: about a third of the requests saw > 10 ms */
  size_t slow = 0;
  for (size_t k = 0; k < N; k++) slow += lat[k] > 10000;
  assert_true(slow >= 90 && slow <= 105);
  assert_true(sy_load_hist_percentile(corrected, 90) > 50000);
  assert_true(sy_load_hist_percentile(corrected, 50) < 1000);
  free(corrected);
  free(naive);
  sy_load_queue_free(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_intended), cmocka_unit_test(test_due),
      cmocka_unit_test(test_latency),  cmocka_unit_test(test_queue),
      cmocka_unit_test(test_coordinated_omission),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
