/* switchyard-bench_scrub: PII scrubber throughput.
 *
 * Builds ~8 MiB of chat-like text deterministically (a fixed-seed PRNG over
 * a word list, with PII in about one sentence in twelve and number-heavy
 * look-alikes in others), cut into documents of 0.5-8 KiB the way captured
 * prompts and answers are, and scrubs it N times (default 3):
 *   text: sy_scrub_text on each document
 *   json: sy_scrub_json on each document wrapped as a chat completion request
 *   one:  sy_scrub_text on the whole 8 MiB as a single input
 * and prints MB/s (1 MB = 10^6 bytes of input) for each pass.
 *
 * usage: switchyard-bench_scrub [ITERATIONS]   (1..20) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/scrub.h"

#define CORPUS_BYTES (8u << 20)
#define MAX_DOCS 16384

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static uint32_t pick(uint32_t n) { return next_u32() % n; }

static const char *const words[] = {
    "the", "model", "please", "summarize", "this", "ticket", "customer", "reply", "with",
    "a", "short", "answer", "about", "their", "order", "and", "refund", "policy", "we",
    "should", "explain", "how", "to", "configure", "the", "gateway", "for", "streaming",
    "responses", "in", "production", "when", "latency", "is", "high", "write", "code",
    "that", "parses", "JSON", "input", "returns", "error", "message", "if", "fails",
    "translate", "following", "paragraph", "into", "German", "keep", "tone", "friendly",
    "invoice", "shipping", "address", "account", "delivery", "was", "late", "by", "two",
    "days", "can", "you", "help", "me", "draft", "an", "email", "manager", "regarding",
    "budget", "next", "quarter", "analysis", "shows", "growth", "of", "users", "retention",
    "improved", "after", "release", "function", "returns", "null", "pointer", "crash",
    "stack", "trace", "below", "thanks", "regards", "hello", "team", "meeting", "notes",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const ibans[] = {"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
                                    "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300"};

static void add_card(sy_buf *b) {
  int d[16] = {4};
  for (int i = 1; i < 15; i++) d[i] = (int)pick(10);
  int sum = 0; /* choose the check digit so Luhn holds */
  for (int i = 0; i < 15; i++) {
    int x = d[14 - i];
    if ((i & 1) == 0) {
      x *= 2;
      if (x > 9) x -= 9;
    }
    sum += x;
  }
  d[15] = (10 - sum % 10) % 10;
  for (int i = 0; i < 16; i++) sy_buf_printf(b, "%s%d", i && i % 4 == 0 ? " " : "", d[i]);
}

static void add_pii(sy_buf *b) {
  switch (pick(10)) {
  case 0: sy_buf_printf(b, "user%u.name@example%u.com", pick(10000), pick(50)); break;
  case 1: sy_buf_printf(b, "+1 415 555 %04u", pick(10000)); break;
  case 2: sy_buf_printf(b, "+44 20 7946 %04u", pick(10000)); break;
  case 3: add_card(b); break;
  case 4: sy_buf_printf(b, "10.%u.%u.%u", pick(256), pick(256), pick(256)); break;
  case 5: sy_buf_appends(b, ibans[pick(4)]); break;
  case 6: sy_buf_printf(b, "%03u-%02u-%04u", 100 + pick(600), 10 + pick(90), 1000 + pick(9000)); break;
  case 7: sy_buf_printf(b, "sk-proj-%08x%08x%08xAbC", next_u32(), next_u32(), next_u32()); break;
  case 8: sy_buf_printf(b, "2001:db8::%x", pick(65536)); break;
  default: sy_buf_printf(b, "(212) 555-%04u", pick(10000)); break;
  }
}

static void add_lookalike(sy_buf *b) {
  switch (pick(6)) {
  case 0: sy_buf_printf(b, "ORD-2024-%06u", pick(1000000)); break;
  case 1: sy_buf_printf(b, "2024-%02u-%02uT10:%02u:33Z", 1 + pick(12), 1 + pick(28), pick(60)); break;
  case 2: sy_buf_printf(b, "v%u.%u.%u", pick(5), pick(20), pick(100)); break;
  case 3: sy_buf_printf(b, "$%u,%03u.%02u", 1 + pick(99), pick(1000), pick(100)); break;
  case 4: sy_buf_printf(b, "%08x-%04x-4%03x-a%03x-%08x%04x", next_u32(), pick(65536), pick(4096),
                        pick(4096), next_u32(), pick(65536)); break;
  default: sy_buf_printf(b, "#%u", pick(1000000000)); break;
  }
}

static void add_sentence(sy_buf *b) {
  uint32_t n = 6 + pick(14);
  for (uint32_t i = 0; i < n; i++) {
    if (i) sy_buf_appends(b, " ");
    sy_buf_appends(b, words[pick(NWORDS)]);
  }
  uint32_t r = pick(12);
  if (r == 0) {
    sy_buf_appends(b, " ");
    add_pii(b);
  } else if (r < 4) {
    sy_buf_appends(b, " ");
    add_lookalike(b);
  }
  sy_buf_appends(b, pick(5) ? ". " : ".\n");
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 3;
  if (iters < 1 || iters > 20) {
    fprintf(stderr, "usage: %s [ITERATIONS 1..20]\n", argv[0]);
    return 2;
  }
  static size_t doc_off[MAX_DOCS + 1];
  size_t ndocs = 0;
  sy_buf text, json, out;
  sy_buf_init(&text, CORPUS_BYTES + 65536);
  sy_buf_init(&json, 2 * CORPUS_BYTES);
  sy_buf_init(&out, 4 * CORPUS_BYTES);
  static size_t json_off[MAX_DOCS + 1];
  while (text.len < CORPUS_BYTES && ndocs < MAX_DOCS) {
    doc_off[ndocs] = text.len;
    size_t want = 512 + pick(7680);
    size_t start = text.len;
    while (text.len - start < want) add_sentence(&text);
    json_off[ndocs] = json.len;
    sy_buf_appends(&json, "{\"model\":\"support-bot\",\"temperature\":0.7,\"messages\":["
                          "{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
                          "{\"role\":\"user\",\"content\":\"");
    sy_buf_append_json_str(&json, text.data + start, text.len - start);
    sy_buf_appends(&json, "\"}],\"user\":\"u-1234\"}");
    ndocs++;
  }
  doc_off[ndocs] = text.len;
  json_off[ndocs] = json.len;

  sy_scrub_rules *rules = NULL;
  sy_scrubber *s = NULL;
  char err[256];
  if (sy_scrub_rules_new(NULL, 0, &rules, err, sizeof err) || sy_scrubber_new(rules, &s)) {
    fprintf(stderr, "bench_scrub: setup failed: %s\n", err);
    return 1;
  }
  printf("corpus: %zu bytes of text in %zu documents (%zu bytes as JSON); %zu rules, %zu JIT\n",
         text.len, ndocs, json.len, sy_scrub_rules_count(rules), sy_scrub_rules_jit_count(rules));

  int status = 0;
  for (int it = 0; it < iters && !status; it++) {
    sy_scrub_counts c;
    unsigned long found = 0;
    double t0 = now();
    for (size_t d = 0; d < ndocs && !status; d++) {
      sy_buf_reset(&out);
      if (sy_scrub_text(s, text.data + doc_off[d], doc_off[d + 1] - doc_off[d], &out, &c)) status = 1;
      found += c.total;
    }
    double t1 = now();
    unsigned long jfound = 0;
    for (size_t d = 0; d < ndocs && !status; d++) {
      sy_buf_reset(&out);
      if (sy_scrub_json(s, json.data + json_off[d], json_off[d + 1] - json_off[d], &out, &c))
        status = 1;
      jfound += c.total;
    }
    double t2 = now();
    sy_buf_reset(&out);
    if (!status && sy_scrub_text(s, text.data, text.len, &out, &c)) status = 1;
    double t3 = now();
    if (status) {
      fprintf(stderr, "bench_scrub: scrub failed: %s\n", sy_scrubber_last_error(s));
      break;
    }
    printf("pass %d: text %7.1f MB/s (%lu entities)  json %7.1f MB/s (%lu)  "
           "one 8MiB text %7.1f MB/s (%u)\n",
           it + 1, text.len / 1e6 / (t1 - t0), found, json.len / 1e6 / (t2 - t1), jfound,
           text.len / 1e6 / (t3 - t2), c.total);
  }
  sy_scrubber_free(s);
  sy_scrub_rules_free(rules);
  sy_buf_free(&text);
  sy_buf_free(&json);
  sy_buf_free(&out);
  return status;
}
