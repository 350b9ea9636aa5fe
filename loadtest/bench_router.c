/* switchyard-bench_router: ns per sy_router_decide.
 *
 * Usage: switchyard-bench_router [decisions_per_case]   (default 10,000,000)
 *
 * One table of 100 filler routes plus the four measured ones, so the lookup
 * is not a one-entry special case. Each case cycles through 4096 distinct
 * user ids (sticky hashing on every call) and a fresh random number per call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "router/router.h"

#define N_USERS 4096

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000ull;
  if (n == 0) n = 1;
  sy_buf b;
  sy_buf_init(&b, SY_ROUTE_MAX_JSON_BYTES);
  sy_buf_appends(&b, "[");
  for (int i = 0; i < 100; i++)
    sy_buf_printf(&b,
                  "{\"name\":\"filler-%d\",\"arms\":[{\"name\":\"a\",\"upstream\":\"openai\","
                  "\"weight_bp\":5000},{\"name\":\"b\",\"upstream\":\"vllm\",\"weight_bp\":5000}]},",
                  i);
  sy_buf_appends(
      &b,
      "{\"name\":\"two-arm\",\"arms\":[{\"name\":\"base\",\"upstream\":\"openai\",\"model\":\"gpt-4o-mini\","
      "\"weight_bp\":9000},{\"name\":\"ft\",\"upstream\":\"vllm\",\"model\":\"ft-v3\",\"weight_bp\":1000}],"
      "\"fallback\":[\"base\"]},"
      "{\"name\":\"cascade\",\"arms\":[{\"name\":\"ft\",\"upstream\":\"vllm\",\"model\":\"ft-v3\"},"
      "{\"name\":\"base\",\"upstream\":\"openai\",\"model\":\"gpt-4o-mini\"}],"
      "\"cascade\":{\"first\":\"ft\",\"escalate\":\"base\",\"threshold\":0.8},\"fallback\":[\"base\"]},"
      "{\"name\":\"shadow\",\"arms\":[{\"name\":\"base\",\"upstream\":\"openai\",\"model\":\"gpt-4o-mini\","
      "\"weight_bp\":10000},{\"name\":\"ft\",\"upstream\":\"vllm\",\"model\":\"ft-v3\"}],"
      "\"shadow\":{\"arm\":\"ft\",\"rate_bp\":1000}}]");
  sy_route_table *t;
  char err[256];
  if (sy_route_table_parse(b.data, b.len, NULL, &t, err, sizeof err)) {
    fprintf(stderr, "bench_router: %s\n", err);
    return 1;
  }
  sy_buf_free(&b);

  static char users[N_USERS][24];
  static size_t user_len[N_USERS];
  for (int i = 0; i < N_USERS; i++)
    user_len[i] = (size_t)snprintf(users[i], sizeof users[i], "user-%08x", (unsigned)(i * 2654435761u));

  static const struct {
    const char *label, *model;
  } cases[] = {
      {"2-arm sticky split (90/10)", "two-arm"},
      {"cascade-only route", "cascade"},
      {"10% shadow route", "shadow"},
      {"pass-through (unknown model)", "gpt-4o"},
  };
  printf("sy_router_decide, %llu decisions per case, %zu routes in the table\n",
         (unsigned long long)n, sy_route_table_count(t));
  printf("%-30s %10s %12s\n", "case", "ns/decide", "check");
  uint64_t rnd = 0x853c49e6748fea9bull;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    sy_route_request q;
    memset(&q, 0, sizeof q);
    q.model = cases[c].model;
    q.model_len = strlen(q.model);
    q.prompt_bytes = 2000;
    uint64_t check = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
      unsigned u = (unsigned)(i & (N_USERS - 1));
      q.user = users[u];
      q.user_len = user_len[u];
      rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
      sy_route_decision d;
      sy_router_decide(t, &q, rnd, &d);
      /* consume the result so the call cannot be dropped */
      check += (uint64_t)(d.arm_index + 1) + (uint64_t)(d.shadow_arm + 1) * 7 + (uint64_t)d.cascade * 13;
    }
    uint64_t dt = now_ns() - t0;
    printf("%-30s %10.1f %12llu\n", cases[c].label, (double)dt / (double)n, (unsigned long long)check);
  }
  sy_route_table_unref(t);
  return 0;
}
