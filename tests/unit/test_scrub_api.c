/* The scrubber's contract: extra patterns, JSON, invalid UTF-8, limits,
 * failing closed, and sharing compiled rules across threads. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pcre2.h>
#include <pthread.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/scrub.h"

static sy_scrub_rules *new_rules(const sy_scrub_pattern *p, size_t n) {
  sy_scrub_rules *r = NULL;
  char err[256];
  int rc = sy_scrub_rules_new(p, n, &r, err, sizeof err);
  if (rc) printf("rules: %s\n", err);
  assert_int_equal(rc, 0);
  return r;
}

static void test_extra_patterns(void **state) {
  (void)state;
  sy_scrub_pattern p[] = {{"ticket", "TICKET-[0-9]{4}"}, {"Emp_ID", "\\bE[0-9]{6}\\b"}};
  sy_scrub_rules *r = new_rules(p, 2);
  assert_int_equal(sy_scrub_rules_count(r), sy_scrub_rules_count(r)); /* callable */
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 4096);
  sy_scrub_counts c;
  const char *in = "see TICKET-1234 from E123456 (a@b.io)";
  assert_int_equal(sy_scrub_text(s, in, strlen(in), &out, &c), 0);
  assert_string_equal(out.data, "see [TICKET] from [EMP_ID] ([EMAIL])");
  assert_int_equal(c.n[SY_SCRUB_CUSTOM], 2);
  assert_int_equal(c.n[SY_SCRUB_EMAIL], 1);
  assert_int_equal(c.total, 3);
  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

static void expect_bad(const char *name, const char *pat, const char *want1, const char *want2) {
  sy_scrub_pattern p = {name, pat};
  sy_scrub_rules *r = (sy_scrub_rules *)0x1;
  char err[256];
  assert_int_equal(sy_scrub_rules_new(&p, 1, &r, err, sizeof err), SY_ECONFIG);
  assert_null(r);
  if (!strstr(err, want1) || !strstr(err, want2)) printf("error was: %s\n", err);
  assert_non_null(strstr(err, want1));
  assert_non_null(strstr(err, want2));
}

static void test_bad_patterns(void **state) {
  (void)state;
  /* the offset is where PCRE2 gave up: the end of "(abc" */
  expect_bad("ticket", "x(abc", "pattern 'ticket': missing closing parenthesis", "at offset 5");
  expect_bad("t2", "[a-", "pattern 't2'", "offset 3");
  expect_bad("empty", "a*", "pattern 'empty'", "empty string");
  expect_bad("1abc", "x", "pattern name '1abc'", "starting with a letter");
  expect_bad("", "x", "pattern name ''", "[A-Za-z0-9_]");
  expect_bad("has-dash", "x", "pattern name 'has-dash'", "must be");
  expect_bad("abcdefghijabcdefghijabcdefghijabc", "x", "pattern name", "1-32");
  expect_bad("nul", NULL, "pattern 'nul'", "missing");
  char *huge = malloc(SY_SCRUB_MAX_PATTERN + 2);
  assert_non_null(huge);
  memset(huge, 'a', SY_SCRUB_MAX_PATTERN + 1);
  huge[SY_SCRUB_MAX_PATTERN + 1] = '\0';
  expect_bad("huge", huge, "pattern 'huge'", "longer than 4096");
  free(huge);
  sy_scrub_pattern many[SY_SCRUB_MAX_EXTRA + 1];
  for (int i = 0; i <= SY_SCRUB_MAX_EXTRA; i++) many[i] = (sy_scrub_pattern){"p", "x"};
  sy_scrub_rules *r = NULL;
  char err[128];
  assert_int_equal(sy_scrub_rules_new(many, SY_SCRUB_MAX_EXTRA + 1, &r, err, sizeof err),
                   SY_ECONFIG);
  assert_non_null(strstr(err, "too many"));
  /* a zero-length error buffer is allowed */
  sy_scrub_pattern bad = {"x", "("};
  assert_int_equal(sy_scrub_rules_new(&bad, 1, &r, NULL, 0), SY_ECONFIG);
}

static void test_json(void **state) {
  (void)state;
  sy_scrub_rules *r = new_rules(NULL, 0);
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 1 << 16);
  const char *j =
      "{ \"model\": \"gpt-4o\", \"a@b.io\": \"key stays\",\n"
      "  \"messages\": [ {\"role\": \"user\", \"content\": \"mail me: x@example.com\"},\n"
      "    {\"nested\": [[\"deep\", {\"card\": \"4111 1111 1111 1111\"}]]} ],\n"
      "  \"n\": 4111111111111111, \"ok\": true, \"none\": null, \"t\": 0.5 }";
  sy_scrub_counts c;
  assert_int_equal(sy_scrub_json(s, j, strlen(j), &out, &c), 0);
  assert_string_equal(out.data,
                      "{ \"model\": \"gpt-4o\", \"a@b.io\": \"key stays\",\n"
      "  \"messages\": [ {\"role\": \"user\", \"content\": \"mail me: [EMAIL]\"},\n"
      "    {\"nested\": [[\"deep\", {\"card\": \"[CARD]\"}]]} ],\n"
      "  \"n\": 4111111111111111, \"ok\": true, \"none\": null, \"t\": 0.5 }");
  assert_int_equal(c.n[SY_SCRUB_EMAIL], 1);
  assert_int_equal(c.n[SY_SCRUB_CARD], 1);
  assert_int_equal(c.total, 2);

  /* escapes are decoded before scrubbing and re-encoded after */
  sy_buf_reset(&out);
  const char *esc = "[\"x\\u0040example.com\\n\\\"q\\\"\"]";
  assert_int_equal(sy_scrub_json(s, esc, strlen(esc), &out, &c), 0);
  assert_string_equal(out.data, "[\"[EMAIL]\\n\\\"q\\\"\"]");

  /* failures leave out exactly as it was */
  sy_buf_reset(&out);
  sy_buf_appends(&out, "kept");
  const char *bad[] = {"{\"a\": \"x@y.io\"", "{\"a\": 1} trailing", "", "not json",
                       "[\"\\ud800\"]", "[\"\\udc00x@y.io\"]", "[\"\\ud800\\u0041\"]",
                       "[\"a\nb\"]", "[01]", "[1.]", "[-]", "[1e]", "{\"a\" 1}", "[1,]",
                       "{\"a\":1,}", "tru", "[\"\\x\"]", "[\"\\u12g4\"]", "{1:2}", "[\"a\"",
                       "\"x@y.io"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(sy_scrub_json(s, bad[i], strlen(bad[i]), &out, &c), SY_EINVAL);
    assert_string_equal(out.data, "kept");
    assert_true(strlen(sy_scrubber_last_error(s)) > 0);
  }
  /* an escaped NUL is text like any other: kept, and the rest of the string scrubbed */
  sy_buf_reset(&out);
  const char *nul = "{\"a\": \"b\\u0000c@d.io\"}";
  assert_int_equal(sy_scrub_json(s, nul, strlen(nul), &out, &c), 0);
  assert_string_equal(out.data, "{\"a\": \"b\\u0000[EMAIL]\"}");
  /* a clean document comes out byte for byte; any top-level value is JSON */
  const char *same[] = {" {\"a\" : [1, -0.5e+3, true,false , null, \"\\u00e9\\/\"]}\n", "\"plain\"", "42",
                        "[\"\\ud83d\\ude00\"]", "{}", "[]"};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    sy_buf_reset(&out);
    assert_int_equal(sy_scrub_json(s, same[i], strlen(same[i]), &out, &c), 0);
    assert_string_equal(out.data, same[i]);
    assert_int_equal(c.total, 0);
  }
  /* a string found through a surrogate-pair escape is decoded, scrubbed, re-encoded as UTF-8 */
  sy_buf_reset(&out);
  const char *pair = "[\"\\ud83d\\ude00 x@example.com\"]";
  assert_int_equal(sy_scrub_json(s, pair, strlen(pair), &out, &c), 0);
  assert_string_equal(out.data, "[\"\xf0\x9f\x98\x80 [EMAIL]\"]");
  /* "\\u0000" is an escaped backslash and text, not a NUL */
  const char *notnul = "[\"\\\\u0000\"]";
  assert_int_equal(sy_scrub_json(s, notnul, strlen(notnul), &out, &c), 0);

  /* nesting past the limit */
  sy_buf deep;
  sy_buf_init(&deep, 4096);
  for (int i = 0; i < SY_SCRUB_MAX_JSON_DEPTH + 2; i++) sy_buf_appends(&deep, "[");
  for (int i = 0; i < SY_SCRUB_MAX_JSON_DEPTH + 2; i++) sy_buf_appends(&deep, "]");
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_json(s, deep.data, deep.len, &out, &c), SY_ETOOBIG);
  assert_int_equal(out.len, 0);
  sy_buf_free(&deep);

  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

static void test_invalid_utf8_and_binary(void **state) {
  (void)state;
  sy_scrub_rules *r = new_rules(NULL, 0);
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 1 << 16);
  sy_scrub_counts c;
  /* invalid sequences pass through; PII around them is still found */
  const char in[] = "\xff\xfe a@b.io \xc3\x28 jo\xe2\x82hn@example.com x\0y 8.8.8.8 \xf0\x9f\x98";
  size_t n = sizeof in - 1;
  assert_int_equal(sy_scrub_text(s, in, n, &out, &c), 0);
  /* (bytes >= 0x80 count as letters of an address, so "jo\xe2\x82hn" is one local part) */
  const char want[] = "\xff\xfe [EMAIL] \xc3\x28 [EMAIL] x\0y [IP] \xf0\x9f\x98";
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, sizeof want - 1);
  assert_int_equal(c.total, 3);
  /* every byte value, in a pseudo-random order: must not crash or error */
  unsigned char bytes[4096];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof bytes; i++) {
    x = x * 1103515245u + 12345u;
    bytes[i] = (unsigned char)(i < 256 ? i : x >> 24);
  }
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_text(s, (const char *)bytes, sizeof bytes, &out, &c), 0);
  if (c.total == 0) assert_memory_equal(out.data, bytes, sizeof bytes);
  /* valid multi-byte text around PII */
  const char *u = "Grüße an zoë@example.de — 電話 +81 3-1234-5678";
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_text(s, u, strlen(u), &out, &c), 0);
  assert_string_equal(out.data, "Grüße an [EMAIL] — 電話 [PHONE]");
  assert_int_equal(c.total, 2);
  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

static void test_empty_and_limits(void **state) {
  (void)state;
  sy_scrub_rules *r = new_rules(NULL, 0);
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 16);
  sy_scrub_counts c;
  memset(&c, 0xff, sizeof c);
  assert_int_equal(sy_scrub_text(s, "", 0, &out, &c), 0);
  assert_int_equal(out.len, 0);
  assert_int_equal(c.total, 0);
  assert_int_equal(c.n[SY_SCRUB_EMAIL], 0);
  assert_int_equal(sy_scrub_text(s, NULL, 0, &out, NULL), 0);

  /* the output cap: nothing half-written stays behind */
  sy_buf_appends(&out, "ab");
  const char *in = "mail x@example.com and some more text past the cap";
  assert_int_equal(sy_scrub_text(s, in, strlen(in), &out, &c), SY_ETOOBIG);
  assert_string_equal(out.data, "ab");
  assert_int_equal(out.len, 2);

  /* the input limit, for text and JSON */
  size_t big = (size_t)SY_SCRUB_MAX_INPUT + 1;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, 'a', big);
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_text(s, huge, big, &out, &c), SY_ETOOBIG);
  assert_non_null(strstr(sy_scrubber_last_error(s), "limit"));
  assert_int_equal(sy_scrub_json(s, huge, big, &out, &c), SY_ETOOBIG);
  assert_int_equal(out.len, 0);
  free(huge);
  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

/* A PCRE2 error (here the match limit, hit by catastrophic backtracking in an
 * extra pattern) fails the whole call; nothing is written. */
static void test_fail_closed(void **state) {
  (void)state;
  sy_scrub_pattern p = {"evil", "(a+)+\\d"};
  sy_scrub_rules *r = new_rules(&p, 1);
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 1 << 16);
  const char *in = "mail x@example.com aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
  sy_scrub_counts c;
  sy_scrubber_set_match_limit(s, 10000);
  sy_buf_appends(&out, "prefix");
  assert_int_equal(sy_scrub_text(s, in, strlen(in), &out, &c), SY_EIO);
  assert_string_equal(out.data, "prefix");
  assert_non_null(strstr(sy_scrubber_last_error(s), "limit"));
  /* JSON fails closed the same way */
  const char *j = "{\"m\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}";
  assert_int_equal(sy_scrub_json(s, j, strlen(j), &out, &c), SY_EIO);
  assert_string_equal(out.data, "prefix");
  /* the same scrubber still works on input that does not trip the limit */
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_text(s, "x@example.com 1", 15, &out, &c), 0);
  assert_string_equal(out.data, "[EMAIL] 1");
  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

static void test_jit(void **state) {
  (void)state;
  uint32_t jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &jit);
  sy_scrub_rules *r = new_rules(NULL, 0);
  assert_true(sy_scrub_rules_count(r) > 10);
  /* with JIT support every rule is JIT-compiled; without it all run interpreted */
  assert_int_equal(sy_scrub_rules_jit_count(r), jit ? sy_scrub_rules_count(r) : 0);
  sy_scrub_rules_free(r);
}

#define NTHREADS 4
static const char *thread_text =
    "Hi, mail dana@example.com or call +1 415 555 0132; card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, host 10.0.0.7, order ORD-2024-000123.";
static const char *thread_want =
    "Hi, mail [EMAIL] or call [PHONE]; card [CARD], IBAN [IBAN], host [IP], order "
    "ORD-2024-000123.";

static void *thread_main(void *arg) {
  const sy_scrub_rules *r = arg;
  sy_scrubber *s;
  if (sy_scrubber_new(r, &s)) return (void *)1;
  sy_buf out;
  sy_buf_init(&out, 4096);
  intptr_t bad = 0;
  for (int i = 0; i < 300 && !bad; i++) {
    sy_buf_reset(&out);
    bad = sy_scrub_text(s, thread_text, strlen(thread_text), &out, NULL) != 0 ||
          strcmp(out.data, thread_want) != 0;
  }
  sy_buf_free(&out);
  sy_scrubber_free(s);
  return (void *)bad;
}

/* The gates only skip work: random inputs built from pieces of every entity
 * type come out the same with the gates on and off, as text and as JSON. */
static void test_gates_change_nothing(void **state) {
  (void)state;
  static const char *const piece[] = {
      "4111", "1111", " ", "-", ".", "@", "example.com", "x", "sk-", "sk_live_", "AKIA", "AIza",
      "ghp_", "xoxb-", "eyJ", "Bearer ", "basic ", "password=", "token: ", "://u:", "::", ":",
      "192.168.", "10.0.0.1", "DE89 3704 0044 0532 0130 00", "+44 20 7946 0958", "0044 ", "(415) ",
      "555-0132", "SSN ", "123-45-6789", "phone: ", "020 7946 0958", "-----BEGIN RSA PRIVATE KEY-----",
      "ABCDEFGHIJKLMNOP", "abcdefghij0123456789", "_", "+", "/", "=", "\t", "9", "0", "Z", "\xc3\xa9",
      "ffff:", "2001:db8::1", "user.name+tag@", "mail.example.org", "\"", "\\",
      "api_key: ", "Passphrase=", "social security number ", "ss# ", "BEARER ", "secret=",
      "private-key: ", "tel ", "call me at ", "(0)", "()", "1-800-555-0199", "4111-1111-1111-1111",
      "030 901820", "00 49 30 901820", "+1 415 555 0132", "378282246310005", "a ", "b"};
  const size_t np = sizeof piece / sizeof piece[0];
  sy_scrub_rules *r = new_rules(NULL, 0);
  sy_scrubber *g, *u;
  assert_int_equal(sy_scrubber_new(r, &g), 0);
  assert_int_equal(sy_scrubber_new(r, &u), 0);
  sy__scrubber_set_gates(u, false);
  sy_buf in, a, b, js;
  sy_buf_init(&in, 1 << 16);
  sy_buf_init(&a, 1 << 18);
  sy_buf_init(&b, 1 << 18);
  sy_buf_init(&js, 1 << 18);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  unsigned found = 0, skipped = 0;
  for (int iter = 0; iter < 20000; iter++) {
    sy_buf_reset(&in);
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int n = 1 + (int)(x % 12);
    for (int k = 0; k < n; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      assert_int_equal(sy_buf_appends(&in, piece[x % np]), 0);
    }
    sy_scrub_counts ca, cb;
    sy_buf_reset(&a);
    sy_buf_reset(&b);
    assert_int_equal(sy_scrub_text(g, in.data, in.len, &a, &ca), 0);
    assert_int_equal(sy_scrub_text(u, in.data, in.len, &b, &cb), 0);
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
      printf("gated/ungated differ on: %s\n  gated:   %s\n  ungated: %s\n", in.data, a.data, b.data);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(ca.total, cb.total);
    found += ca.total > 0;
    if (!sy__scrub_may_match(g, in.data, in.len)) {
      skipped++;
      assert_int_equal(ca.total, 0);
    }
    /* the same text as a JSON string value */
    sy_buf_reset(&js);
    sy_buf_appends(&js, "{\"k\":\"");
    sy_buf_append_json_str(&js, in.data, in.len);
    sy_buf_appends(&js, "\"}");
    sy_buf_reset(&a);
    sy_buf_reset(&b);
    assert_int_equal(sy_scrub_json(g, js.data, js.len, &a, &ca), 0);
    assert_int_equal(sy_scrub_json(u, js.data, js.len, &b, &cb), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
  }
  /* both sides of the gates were exercised */
  assert_true(found > 5000);
  assert_true(skipped > 500);
  sy_buf_free(&in);
  sy_buf_free(&a);
  sy_buf_free(&b);
  sy_buf_free(&js);
  sy_scrubber_free(g);
  sy_scrubber_free(u);
  sy_scrub_rules_free(r);
}

/* Long strings found clean are skipped the next time; a string with an
 * entity is scrubbed every time, and so is everything with the cache off. */
static void test_clean_cache(void **state) {
  (void)state;
  sy_scrub_rules *r = new_rules(NULL, 0);
  sy_scrubber *s;
  assert_int_equal(sy_scrubber_new(r, &s), 0);
  sy_buf out;
  sy_buf_init(&out, 1 << 16);
  const char *j = "{\"system\":\"You are a concise assistant. Answer in plain English and keep it short, please.\","
                  "\"user\":\"Write to me at someone.person@example.com when the report for Q3 2026 is ready.\","
                  "\"short\":\"hi\"}";
  sy_scrub_counts c;
  for (int round = 0; round < 3; round++) {
    sy_buf_reset(&out);
    assert_int_equal(sy_scrub_json(s, j, strlen(j), &out, &c), 0);
    assert_int_equal(c.total, 1);
    assert_non_null(strstr(out.data, "at [EMAIL] when"));
    assert_null(strstr(out.data, "someone.person"));
    /* the clean system prompt (>= 64 bytes) hits from the second round on;
     * the one with an address and the short string never do */
    assert_int_equal(sy__scrubber_cache_hits(s), (uint64_t)round);
  }
  /* the same bytes with an entity spliced in are another key */
  const char *j2 = "{\"system\":\"You are a concise assistant. Answer in plain English and keep it short, a@b.io\"}";
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_json(s, j2, strlen(j2), &out, &c), 0);
  assert_int_equal(c.total, 1);
  sy__scrubber_set_gates(s, false);
  uint64_t before = sy__scrubber_cache_hits(s);
  sy_buf_reset(&out);
  assert_int_equal(sy_scrub_json(s, j, strlen(j), &out, &c), 0);
  assert_int_equal(sy__scrubber_cache_hits(s), before);
  sy_buf_free(&out);
  sy_scrubber_free(s);
  sy_scrub_rules_free(r);
}

static void test_threads_share_rules(void **state) {
  (void)state;
  sy_scrub_rules *r = new_rules(NULL, 0);
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, thread_main, r), 0);
  for (int i = 0; i < NTHREADS; i++) {
    void *ret;
    assert_int_equal(pthread_join(t[i], &ret), 0);
    assert_null(ret);
  }
  sy_scrub_rules_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extra_patterns),
      cmocka_unit_test(test_bad_patterns),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_invalid_utf8_and_binary),
      cmocka_unit_test(test_empty_and_limits),
      cmocka_unit_test(test_fail_closed),
      cmocka_unit_test(test_jit),
      cmocka_unit_test(test_gates_change_nothing),
      cmocka_unit_test(test_clean_cache),
      cmocka_unit_test(test_threads_share_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
