#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

static void test_append_and_cap(void **state) {
  (void)state;
  sy_buf b;
  sy_buf_init(&b, 8);
  assert_int_equal(sy_buf_appends(&b, "abcd"), 0);
  assert_int_equal(sy_buf_appends(&b, "efgh"), 0);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "abcdefgh");
  /* one byte past the cap fails and leaves the contents alone */
  assert_int_equal(sy_buf_appends(&b, "i"), SY_ETOOBIG);
  assert_int_equal(b.len, 8);
  assert_string_equal(b.data, "abcdefgh");
  sy_buf_consume(&b, 3);
  assert_string_equal(b.data, "defgh");
  sy_buf_free(&b);
  assert_null(b.data);
}

static void test_printf_and_json(void **state) {
  (void)state;
  sy_buf b;
  sy_buf_init(&b, 64);
  assert_int_equal(sy_buf_printf(&b, "%d-%s", 42, "x"), 0);
  assert_string_equal(b.data, "42-x");
  sy_buf_reset(&b);
  assert_int_equal(sy_buf_append_json_str(&b, "a\"b\\c\n\x01", 7), 0);
  assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001");
  /* an escape that does not fit is rolled back whole */
  sy_buf c;
  sy_buf_init(&c, 3);
  assert_int_equal(sy_buf_append_json_str(&c, "ab\n", 3), SY_ETOOBIG);
  assert_int_equal(c.len, 0);
  sy_buf_free(&c);
  sy_buf_free(&b);
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(sy_strerror(SY_ETOOBIG), "size limit exceeded");
  assert_non_null(sy_strerror(-2));
  assert_string_equal(sy_strerror(12345), "unknown error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_and_cap),
      cmocka_unit_test(test_printf_and_json),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
