/* common/jsonwalk: what is JSON and what is not, the string values it
 * visits (never member names), decoding, and depth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/jsonwalk.h"

static int walk(const char *j) { return sy_json_walk(j, strlen(j), 64, NULL, NULL, NULL); }

static void test_valid_and_invalid(void **state) {
  (void)state;
  const char *good[] = {"{}", "[]", " {\"a\" : [1, -0.5e+3, 0, 1E9, true,false , null]}\n", "\"s\"",
                        "42", "-0", "[\"\\ud83d\\ude00\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
                        "{\"a\":{\"b\":{\"c\":[[]]}}}", "\"\xc3\xa9\""};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    if (walk(good[i])) printf("rejected: %s\n", good[i]);
    assert_int_equal(walk(good[i]), 0);
  }
  const char *bad[] = {"", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[01]", "[1.]",
                       "[-]", "[1e]", "[.5]", "[+1]", "tru", "nul", "[\"a\nb\"]", "[\"\\x\"]",
                       "[\"\\u12g4\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
                       "[\"a\"", "\"abc", "{} x", "[] []", "[1 2]", "{\"a\":}", "[\"\\u00\"]",
                       "'a'", "[NaN]", "{\"a\":1}}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    size_t at = 99999;
    int rc = sy_json_walk(bad[i], strlen(bad[i]), 64, NULL, NULL, &at);
    if (rc != SY_EINVAL) printf("accepted: %s\n", bad[i]);
    assert_int_equal(rc, SY_EINVAL);
    assert_true(at <= strlen(bad[i]));
  }
  /* a length, not a terminator: the bytes after len are not looked at */
  assert_int_equal(sy_json_walk("[1]xyz", 3, 64, NULL, NULL, NULL), 0);
  assert_int_equal(sy_json_walk("[1]xyz", 2, 64, NULL, NULL, NULL), SY_EINVAL);
}

static void test_depth(void **state) {
  (void)state;
  char deep[200];
  for (int i = 0; i < 100; i++) deep[i] = '[', deep[199 - i] = ']';
  assert_int_equal(sy_json_walk(deep, 200, 100, NULL, NULL, NULL), 0);
  assert_int_equal(sy_json_walk(deep, 200, 99, NULL, NULL, NULL), SY_ETOOBIG);
}

typedef struct {
  char seen[8][32];
  int n;
  int stop_at;
} visits;

static int on_str(void *ctx, const char *raw, size_t len, int escaped) {
  visits *v = ctx;
  if (v->n == v->stop_at) return -42;
  snprintf(v->seen[v->n++], 32, "%d:%.*s", escaped, (int)len, raw);
  return 0;
}

static void test_visits_values_only(void **state) {
  (void)state;
  const char *j = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\nb\"}],\"n\":1,\"e\":\"\"}";
  visits v = {.stop_at = -1};
  assert_int_equal(sy_json_walk(j, strlen(j), 64, on_str, &v, NULL), 0);
  assert_int_equal(v.n, 4);
  assert_string_equal(v.seen[0], "0:m");
  assert_string_equal(v.seen[1], "0:user");
  assert_string_equal(v.seen[2], "1:a\\nb");
  assert_string_equal(v.seen[3], "0:");
  /* the callback's error stops the walk and is returned */
  visits w = {.stop_at = 1};
  assert_int_equal(sy_json_walk(j, strlen(j), 64, on_str, &w, NULL), -42);
  assert_int_equal(w.n, 1);
}

static void test_decode(void **state) {
  (void)state;
  sy_buf b;
  sy_buf_init(&b, 1024);
  const char *raw = "a\\u0040b \\ud83d\\ude00 \\u00e9\\\"\\\\\\/\\n\\u0000z";
  assert_int_equal(sy_json_decode_string(raw, strlen(raw), &b), 0);
  assert_int_equal(b.len, 17);
  assert_memory_equal(b.data, "a@b \xf0\x9f\x98\x80 \xc3\xa9\"\\/\n\0z", 17);
  sy_buf_reset(&b);
  assert_int_equal(sy_json_decode_string("\\ud800", 6, &b), SY_EINVAL);
  sy_buf small;
  sy_buf_init(&small, 3);
  assert_int_equal(sy_json_decode_string("abcdef", 6, &small), SY_ETOOBIG);
  sy_buf_free(&small);
  sy_buf_free(&b);
}

/* The word-at-a-time string scan: a stop byte at every offset of a long
 * string is found, and bytes that are no stop (0x20, 0x7f, 0x80-0xff) pass. */
static void test_every_offset(void **state) {
  (void)state;
  char buf[64];
  const unsigned char bad[] = {0x00, 0x01, 0x0a, 0x1f};
  const unsigned char fine[] = {0x20, 0x7f, 0x80, 0x9f, 0xc3, 0xff, 'z'};
  for (size_t n = 1; n <= 40; n++) {
    for (size_t k = 0; k < n; k++) {
      for (size_t b = 0; b < sizeof bad; b++) {
        size_t len = 0;
        buf[len++] = '[';
        buf[len++] = '"';
        for (size_t i = 0; i < n; i++) buf[len++] = i == k ? (char)bad[b] : 'a';
        buf[len++] = '"';
        buf[len++] = ']';
        assert_int_equal(sy_json_walk(buf, len, 8, NULL, NULL, NULL), SY_EINVAL);
      }
      for (size_t f = 0; f < sizeof fine; f++) {
        size_t len = 0;
        buf[len++] = '"';
        for (size_t i = 0; i < n; i++) buf[len++] = i == k ? (char)fine[f] : 'a';
        buf[len++] = '"';
        assert_int_equal(sy_json_walk(buf, len, 8, NULL, NULL, NULL), 0);
      }
      /* an escaped quote at offset k does not end the string; a bare one does */
      size_t len = 0;
      buf[len++] = '"';
      for (size_t i = 0; i < n; i++) {
        if (i == k) buf[len++] = '\\';
        buf[len++] = i == k ? '"' : 'a';
      }
      buf[len++] = '"';
      visits v = {.stop_at = -1};
      assert_int_equal(sy_json_walk(buf, len, 8, on_str, &v, NULL), 0);
      assert_int_equal(v.n, 1);
      assert_int_equal(v.seen[0][0], '1'); /* escaped */
      buf[k + 1] = '"';                     /* the backslash becomes a quote: text after the string */
      assert_int_equal(sy_json_walk(buf, len, 8, NULL, NULL, NULL), SY_EINVAL);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_and_invalid),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_visits_values_only),
      cmocka_unit_test(test_decode),
      cmocka_unit_test(test_every_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
