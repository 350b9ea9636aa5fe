/* switchyardctl scrub, run in-process with stdin/stdout redirected to files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl/cmd_scrub.c" /* the command under test; links sy_scrub */

static char g_out[1 << 16];
static size_t g_outlen;

/* Runs the command on `in` (n bytes); returns its exit status, output in g_out. */
static int run_cmd(const char *in, size_t n, int argc, char **argv) {
  FILE *fin = tmpfile(), *fout = tmpfile();
  assert_non_null(fin);
  assert_non_null(fout);
  assert_int_equal(fwrite(in, 1, n, fin), n);
  rewind(fin);
  fflush(stdout);
  int save_in = dup(0), save_out = dup(1);
  dup2(fileno(fin), 0);
  dup2(fileno(fout), 1);
  clearerr(stdin);
  int rc = sy_ctl_cmd_scrub(argc, argv);
  fflush(stdout);
  dup2(save_in, 0);
  dup2(save_out, 1);
  close(save_in);
  close(save_out);
  clearerr(stdin);
  rewind(fout);
  g_outlen = fread(g_out, 1, sizeof g_out - 1, fout);
  g_out[g_outlen] = '\0';
  fclose(fin);
  fclose(fout);
  return rc;
}

static void test_lines(void **state) {
  (void)state;
  char *argv[] = {"scrub"};
  const char *in = "mail a@b.io\n\nno pii here\r\ncall +1 415 555 0132";
  assert_int_equal(run_cmd(in, strlen(in), 1, argv), 0);
  /* one line in, one line out; no newline is added to an unterminated last line */
  assert_string_equal(g_out, "mail [EMAIL]\n\nno pii here\r\ncall [PHONE]");
}

static void test_patterns_and_usage(void **state) {
  (void)state;
  char *a1[] = {"scrub", "--pattern", "ticket=TICKET-\\d+", "--pattern=emp=E\\d{6}"};
  const char *in = "TICKET-42 E123456 x@y.io\n";
  assert_int_equal(run_cmd(in, strlen(in), 4, a1), 0);
  assert_string_equal(g_out, "[TICKET] [EMP] [EMAIL]\n");
  char *a2[] = {"scrub", "--pattern", "bad=(x"};
  assert_int_equal(run_cmd("", 0, 3, a2), 2);
  char *a3[] = {"scrub", "--pattern", "noequals"};
  assert_int_equal(run_cmd("", 0, 3, a3), 2);
  char *a4[] = {"scrub", "--bogus"};
  assert_int_equal(run_cmd("", 0, 2, a4), 2);
  char *a5[] = {"scrub", "--pattern"};
  assert_int_equal(run_cmd("", 0, 2, a5), 2);
  char *a6[] = {"scrub", "--help"};
  assert_int_equal(run_cmd("", 0, 2, a6), 0);
  assert_non_null(strstr(g_out, "usage: switchyardctl scrub"));
}

/* A line past the cap is an error: the lines before it are out, it is not. */
static void test_long_line(void **state) {
  (void)state;
  size_t n = SY_CTL_SCRUB_MAX_LINE + 20;
  char *in = malloc(n);
  assert_non_null(in);
  memcpy(in, "a@b.io\n", 7);
  memset(in + 7, 'x', n - 8);
  in[n - 1] = '\n';
  char *argv[] = {"scrub"};
  assert_int_equal(run_cmd(in, n, 1, argv), 1);
  assert_string_equal(g_out, "[EMAIL]\n");
  /* exactly at the cap is fine */
  size_t m = SY_CTL_SCRUB_MAX_LINE + 1;
  memset(in, 'y', m - 1);
  in[m - 1] = '\n';
  assert_int_equal(run_cmd(in, m, 1, argv), 0);
  assert_int_equal(g_outlen, sizeof g_out - 1 < m ? sizeof g_out - 1 : m);
  free(in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_patterns_and_usage),
      cmocka_unit_test(test_long_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
