/* switchyardctl export / captures, run in-process on a seeded store. The
 * command files are included so their static helpers are testable too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "ctl/cmd_captures.c"
#include "ctl/cmd_export.c"
#include "ctl/timearg.c"
#include "store/ftjson.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char db[300];
  uint64_t ids[40];
} fixture;

#define REQ(u) "{\"messages\":[{\"role\":\"user\",\"content\":\"" u "\"}]}"
#define RESP(a) "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"" a "\"}}]}"

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->db, sizeof f->db, "%s/db", f->dir);
  sy_store_opts o = {0};
  o.path = f->db;
  sy_store *s;
  assert_int_equal(sy_store_open(&o, &s), 0);
  char req[40][96], resp[40][96];
  sy_capture c[40];
  const sy_capture *p[40];
  for (int i = 0; i < 40; i++) {
    switchyard__v1__capture__init(&c[i]);
    snprintf(req[i], sizeof req[i], REQ("question %d"), i);
    snprintf(resp[i], sizeof resp[i], RESP("answer %d"), i);
    c[i].request_body.data = (uint8_t *)req[i];
    c[i].request_body.len = strlen(req[i]);
    c[i].response_body.data = (uint8_t *)resp[i];
    c[i].response_body.len = strlen(resp[i]);
    c[i].route = i < 30 ? "support" : "sales";
    c[i].arm = i % 2 ? "cand" : "base";
    c[i].model = "m";
    c[i].http_status = 200;
    c[i].total_tokens = 3;
    p[i] = &c[i];
  }
  assert_int_equal(sy_store_put_captures(s, p, 40, f->ids), 0);
  /* feedback: 0 up (tag refund, alice), 1 down + correction (tag refund, bob),
   * 2 up (tag faq, alice) */
  static char *refund[] = {"refund"}, *faq[] = {"faq"};
  struct {
    int i, rating;
    const char *corr, *who;
    char **tags;
  } fbs[] = {{0, 1, NULL, "alice", refund}, {1, 2, "fixed answer", "bob", refund},
             {2, 1, NULL, "alice", faq}};
  for (size_t k = 0; k < 3; k++) {
    sy_feedback fb;
    switchyard__v1__feedback__init(&fb);
    fb.capture_id = f->ids[fbs[k].i];
    fb.rating = (Switchyard__V1__Feedback__Rating)fbs[k].rating;
    fb.correction = (char *)(fbs[k].corr ? fbs[k].corr : "");
    fb.labeller = (char *)fbs[k].who;
    fb.n_tags = 1;
    fb.tags = fbs[k].tags;
    assert_int_equal(sy_store_put_feedback(s, &fb), 0);
  }
  /* the commands open the store read-only themselves: one env per process */
  sy_store_close(s);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  test_rmtree(f->dir);
  free(f);
  return 0;
}

/* Runs fn(argv) with stdout redirected to a file; returns the exit code and
 * the output in *out (caller frees). */
static int run_cmd(int (*fn)(int, char **), char **argv, char **out) {
  int argc = 0;
  while (argv[argc]) argc++;
  char path[] = "/tmp/sy_ctl_out_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stdout);
  int saved = dup(1);
  dup2(fd, 1);
  int rc = fn(argc, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  struct stat st;
  fstat(fd, &st);
  *out = calloc(1, (size_t)st.st_size + 1);
  assert_int_equal(pread(fd, *out, (size_t)st.st_size, 0), st.st_size);
  close(fd);
  unlink(path);
  return rc;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  if (!fp) return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

static int lines_valid(const char *buf, int pairs) {
  int n = 0;
  for (const char *p = buf; *p;) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    size_t len = (size_t)(nl - p);
    assert_int_equal(pairs ? sy_ftjson_validate_pair(p, len) : sy_ftjson_validate_sft(p, len), 0);
    n++;
    p = nl + 1;
  }
  return n;
}

static void test_export_cmd(void **state) {
  fixture *f = *state;
  char train[400], val[400], pairs[400];
  snprintf(train, sizeof train, "%s/train.jsonl", f->dir);
  snprintf(val, sizeof val, "%s/val.jsonl", f->dir);
  snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", f->dir);
  char *argv[] = {"export", "--db", f->db, "--out", train, "--val-out", val,
                  "--val-fraction", "0.3", "--pairs-out", pairs, "--json-summary", NULL};
  char *out;
  assert_int_equal(run_cmd(sy_ctl_cmd_export, argv, &out), 0);
  assert_string_equal(out, ""); /* nothing on stdout when --out is a file */
  free(out);
  char *t = slurp(train), *v = slurp(val), *p = slurp(pairs);
  assert_non_null(t);
  assert_non_null(v);
  assert_non_null(p);
  assert_int_equal(lines_valid(t, 0) + lines_valid(v, 0), 40);
  assert_true(lines_valid(v, 0) > 0);
  assert_int_equal(lines_valid(p, 1), 1); /* the correction */
  assert_true(strstr(t, "fixed answer") || strstr(v, "fixed answer")); /* correction wins */
  free(t);
  free(v);
  free(p);
  char tmp[420];
  snprintf(tmp, sizeof tmp, "%s.tmp", train);
  assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */

  /* filters through the command line, output on stdout */
  char *argv2[] = {"export", "--db", f->db, "--route", "sales", "--since", "1000000000", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_export, argv2, &out), 0);
  assert_int_equal(lines_valid(out, 0), 10);
  free(out);
  char *argv3[] = {"export", "--db", f->db, "--only-corrected", "--out", "-", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_export, argv3, &out), 0);
  assert_int_equal(lines_valid(out, 0), 1);
  assert_non_null(strstr(out, "fixed answer"));
  free(out);
  char *argv4[] = {"export", "--db", f->db, "--until", "2000-01-01", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_export, argv4, &out), 0);
  assert_string_equal(out, "");
  free(out);
}

static void test_export_bad_args(void **state) {
  fixture *f = *state;
  char *out;
  char *a1[] = {"export", NULL};
  char *a2[] = {"export", "--db", f->db, "--bogus", NULL};
  char *a3[] = {"export", "--db", f->db, "--val-fraction", "0.2", NULL};
  char *a4[] = {"export", "--db", f->db, "--val-fraction", "1.5", "--val-out", "/dev/null", NULL};
  char *a5[] = {"export", "--db", f->db, "--since", "yesterday-ish", NULL};
  char *a6[] = {"export", "--db", f->db, "--since", "2026-01-02", "--until", "2026-01-01", NULL};
  char *a7[] = {"export", "--db", f->db, "--min-rating", "x", NULL};
  char **bad[] = {a1, a2, a3, a4, a5, a6, a7};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(run_cmd(sy_ctl_cmd_export, bad[i], &out), 2);
    free(out);
  }
  char nodb[400];
  snprintf(nodb, sizeof nodb, "%s/nothing", f->dir);
  char *a8[] = {"export", "--db", nodb, NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_export, a8, &out), 1);
  free(out);
  /* unwritable output: exit 1 */
  char *a9[] = {"export", "--db", f->db, "--out", "/nonexistent-dir/x.jsonl", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_export, a9, &out), 1);
  free(out);
}

static void test_parse_time(void **state) {
  (void)state;
  uint64_t t;
  assert_int_equal(sy_ctl_time_arg("1700000000", 0, &t), 0);
  assert_int_equal(t, 1700000000000000ull);
  assert_int_equal(sy_ctl_time_arg("2026-01-02", 0, &t), 0);
  assert_int_equal(t, 1767312000000000ull);
  assert_int_equal(sy_ctl_time_arg("2026-01-02T03:04:05Z", 0, &t), 0);
  assert_int_equal(t, 1767312000000000ull + (3 * 3600 + 4 * 60 + 5) * 1000000ull);
  assert_int_equal(sy_ctl_time_arg("7d", 10 * 86400000000ull, &t), 0);
  assert_int_equal(t, 3 * 86400000000ull);
  assert_int_equal(sy_ctl_time_arg("90m", 7200000000ull, &t), 0);
  assert_int_equal(t, 1800000000ull);
  assert_int_equal(sy_ctl_time_arg("7w", 0, &t), -1);
  assert_int_equal(sy_ctl_time_arg("2026-13-01", 0, &t), -1);
  assert_int_equal(sy_ctl_time_arg("", 0, &t), -1);
  assert_int_equal(sy_ctl_time_arg("1700000000000000", 0, &t), -1); /* microseconds: refused */
}

static void test_captures_cmd(void **state) {
  fixture *f = *state;
  char *out;
  char *a1[] = {"captures", "stats", "--db", f->db, "--json", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_captures, a1, &out), 0);
  cJSON *j = cJSON_Parse(out);
  assert_non_null(j);
  assert_int_equal(cJSON_GetObjectItem(j, "captures")->valueint, 40);
  assert_int_equal(cJSON_GetObjectItem(j, "feedback")->valueint, 3);
  assert_int_equal(cJSON_GetObjectItem(j, "corrected")->valueint, 1);
  assert_float_equal(cJSON_GetObjectItem(j, "correction_rate")->valuedouble, 1.0 / 40, 1e-9);
  assert_float_equal(cJSON_GetObjectItem(j, "approval_rate")->valuedouble, 2.0 / 3, 1e-9);
  cJSON *r = cJSON_GetObjectItem(j, "by_route");
  assert_int_equal(cJSON_GetObjectItem(r, "support")->valueint, 30);
  assert_int_equal(cJSON_GetObjectItem(r, "sales")->valueint, 10);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "by_arm"), "cand")->valueint, 20);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "by_day")), 1);
  cJSON *tag = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "approval_by_tag"), "refund");
  assert_float_equal(cJSON_GetObjectItem(tag, "approval_rate")->valuedouble, 0.5, 1e-9);
  tag = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "approval_by_tag"), "faq");
  assert_float_equal(cJSON_GetObjectItem(tag, "approval_rate")->valuedouble, 1.0, 1e-9);
  cJSON *lab = cJSON_GetObjectItem(j, "feedback_by_labeller");
  assert_int_equal(cJSON_GetObjectItem(lab, "alice")->valueint, 2);
  assert_int_equal(cJSON_GetObjectItem(lab, "bob")->valueint, 1);
  cJSON_Delete(j);
  free(out);

  char *a1h[] = {"captures", "stats", "--db", f->db, NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_captures, a1h, &out), 0);
  assert_non_null(strstr(out, "correction rate: 2.5%"));
  free(out);

  char *a2[] = {"captures", "list", "--db", f->db, "--limit", "2", "--json", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_captures, a2, &out), 0);
  char want[32];
  snprintf(want, sizeof want, "\"id\":\"%llu\"", (unsigned long long)f->ids[39]);
  assert_non_null(strstr(out, want)); /* newest first */
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_non_null(strchr(nl + 1, '\n'));
  assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n')); /* exactly two */
  free(out);

  char idarg[24];
  snprintf(idarg, sizeof idarg, "%llu", (unsigned long long)f->ids[1]);
  char *a3[] = {"captures", "show", idarg, "--db", f->db, "--json", NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_captures, a3, &out), 0);
  j = cJSON_Parse(out);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, idarg);
  cJSON *fb = cJSON_GetObjectItem(j, "feedback");
  assert_int_equal(cJSON_GetArraySize(fb), 1);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(fb, 0), "correction")->valuestring,
                      "fixed answer");
  assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "request"))); /* embedded as JSON */
  cJSON_Delete(j);
  free(out);

  char *b1[] = {"captures", NULL};
  char *b2[] = {"captures", "frobnicate", "--db", f->db, NULL};
  char *b3[] = {"captures", "show", "--db", f->db, NULL};
  char *b4[] = {"captures", "list", "--db", f->db, "--limit", "0", NULL};
  char *b5[] = {"captures", "stats", NULL};
  char **bad[] = {b1, b2, b3, b4, b5};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(run_cmd(sy_ctl_cmd_captures, bad[i], &out), 2);
    free(out);
  }
  char *n1[] = {"captures", "show", "12345", "--db", f->db, NULL};
  assert_int_equal(run_cmd(sy_ctl_cmd_captures, n1, &out), 1);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_export_cmd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_bad_args, setup, teardown),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test_setup_teardown(test_captures_cmd, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
