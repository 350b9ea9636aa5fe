/* switchyard-load's request mixes: chat lines, export replay (model added,
 * final assistant turn dropped), weights, stream/user rewriting, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "common/err.h"
#include "loadtest/load_mix.h"

static cJSON *line_json(const char *line, const sy_load_mix_opts *o, sy_load_item *it) {
  char err[200] = "";
  int rc = sy__load_mix_line(line, strlen(line), o, it, err, sizeof err);
  if (rc) fail_msg("rc %d: %s", rc, err);
  cJSON *j = cJSON_Parse(it->body);
  assert_non_null(j);
  assert_int_equal(strlen(it->body), it->len);
  return j;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_chat_line(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "other"};
  sy_load_item it;
  cJSON *j = line_json("{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"content\":\"kept\"}],\"weight\":2.5,\"user\":\"u\"}",
                       &o, &it);
  /* a line with a model keeps it, and all its turns; weight is taken out */
  assert_string_equal(str(j, "model"), "m1");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), 2);
  assert_null(cJSON_GetObjectItem(j, "weight"));
  assert_string_equal(str(j, "user"), "u");
  assert_true(it.weight == 2.5);
  assert_int_equal(it.stream, 0);
  cJSON_Delete(j);
  free(it.body);
}

static void test_export_line(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "candidate-ft"};
  sy_load_item it;
  cJSON *j = line_json("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
                       "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}],"
                       "\"tools\":[],\"parallel_tool_calls\":false}",
                       &o, &it);
  assert_string_equal(str(j, "model"), "candidate-ft");
  cJSON *msgs = cJSON_GetObjectItem(j, "messages");
  assert_int_equal(cJSON_GetArraySize(msgs), 2);
  assert_string_equal(str(cJSON_GetArrayItem(msgs, 1), "role"), "user");
  assert_non_null(cJSON_GetObjectItem(j, "tools"));
  cJSON_Delete(j);
  free(it.body);

  /* without --model an export line is refused, naming the fix */
  sy_load_mix_opts none = {0};
  char err[200] = "";
  const char *line = "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}";
  assert_int_equal(sy__load_mix_line(line, strlen(line), &none, &it, err, sizeof err), SY_EINVAL);
  assert_non_null(strstr(err, "--model"));
  assert_null(it.body);

  /* only an assistant turn: nothing to replay */
  line = "{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"}]}";
  assert_int_equal(sy__load_mix_line(line, strlen(line), &o, &it, err, sizeof err), SY_EINVAL);
}

static void test_pair_line_and_rewrites(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "m", .stream = 1, .strip_user = 1};
  sy_load_item it;
  cJSON *j = line_json("{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"p\"}]},"
                       "\"preferred_output\":[],\"non_preferred_output\":[]}",
                       &o, &it);
  assert_string_equal(str(j, "model"), "m");
  assert_null(cJSON_GetObjectItem(j, "preferred_output"));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
  assert_int_equal(it.stream, 1);
  cJSON_Delete(j);
  free(it.body);

  /* stream: false is overridden, user is dropped */
  j = line_json("{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"p\"}],"
                "\"stream\":false,\"user\":\"someone\"}",
                &o, &it);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
  assert_null(cJSON_GetObjectItem(j, "user"));
  cJSON_Delete(j);
  free(it.body);

  /* a line asking for a stream by itself is marked streaming */
  sy_load_mix_opts plain = {0};
  j = line_json("{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"p\"}],"
                "\"stream\":true}",
                &plain, &it);
  assert_int_equal(it.stream, 1);
  cJSON_Delete(j);
  free(it.body);
}

static void test_bad_lines(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "m"};
  sy_load_item it;
  char err[200];
  const char *bad[] = {
      "not json",
      "[1,2]",
      "{\"model\":\"m\"}",
      "{\"model\":\"m\",\"messages\":[]}",
      "{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"p\"}]}",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"p\"}],\"weight\":0}",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"p\"}],\"weight\":\"2\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    int rc = sy__load_mix_line(bad[i], strlen(bad[i]), &o, &it, err, sizeof err);
    if (rc != SY_EINVAL) fail_msg("line %zu accepted: %s", i, bad[i]);
    assert_true(err[0] != '\0');
  }
}

static void test_parse_and_pick(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "m"};
  const char *text = "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"}]}\n"
                     "\n  \r\n"
                     "{\"model\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"2\"}],"
                     "\"weight\":3}\r\n"
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"3\"}]}";
  sy_load_mix m;
  char err[200] = "";
  assert_int_equal(sy_load_mix_parse(&m, text, strlen(text), &o, err, sizeof err), 0);
  assert_int_equal(m.n, 3);
  assert_true(m.cum[2] == 5.0);
  /* weights 1, 3, 1 over [0, 1) */
  assert_int_equal(sy_load_mix_pick(&m, 0.0), 0);
  assert_int_equal(sy_load_mix_pick(&m, 0.19), 0);
  assert_int_equal(sy_load_mix_pick(&m, 0.21), 1);
  assert_int_equal(sy_load_mix_pick(&m, 0.79), 1);
  assert_int_equal(sy_load_mix_pick(&m, 0.81), 2);
  assert_int_equal(sy_load_mix_pick(&m, 0.999999), 2);
  sy_load_mix_free(&m);
  assert_int_equal(m.n, 0);

  /* the failing line is named (blank lines count) */
  const char *bad = "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"1\"}]}\n\n{oops}\n";
  assert_int_equal(sy_load_mix_parse(&m, bad, strlen(bad), &o, err, sizeof err), SY_EINVAL);
  assert_non_null(strstr(err, "line 3"));
  assert_null(m.items);
  assert_int_equal(sy_load_mix_parse(&m, "\n\n", 2, &o, err, sizeof err), SY_EINVAL);
}

static void test_files(void **state) {
  (void)state;
  sy_load_mix_opts o = {.model = "replay"};
  sy_load_mix m;
  char err[300] = "";
  int rc = sy_load_mix_load(&m, SY_SOURCE_DIR "/tests/data/load/mix.jsonl", &o, err, sizeof err);
  if (rc) fail_msg("%s", err);
  assert_int_equal(m.n, 3);
  assert_non_null(strstr(m.items[0].body, "\"model\":\"gpt-4o-mini\""));
  assert_true(m.items[0].weight == 3);
  assert_non_null(strstr(m.items[1].body, "\"model\":\"replay\""));
  assert_null(strstr(m.items[1].body, "captured answer B"));
  assert_non_null(strstr(m.items[2].body, "load-mix pair line C"));
  assert_null(strstr(m.items[2].body, "good C"));
  sy_load_mix_free(&m);

  rc = sy_load_mix_load(&m, SY_SOURCE_DIR "/tests/data/load/export.jsonl", &o, err, sizeof err);
  if (rc) fail_msg("%s", err);
  assert_int_equal(m.n, 2);
  assert_null(strstr(m.items[1].body, "second answer"));
  assert_non_null(strstr(m.items[1].body, "first answer")); /* earlier turns stay */
  sy_load_mix_free(&m);

  assert_int_equal(sy_load_mix_load(&m, "/nonexistent/mix.jsonl", &o, err, sizeof err), SY_EIO);
  assert_non_null(strstr(err, "/nonexistent/mix.jsonl"));

  /* --body: one object over several lines */
  char path[] = "/tmp/sy_load_body_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("{\n  \"model\": \"b\",\n  \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]\n}\n", f);
  fclose(f);
  sy_load_mix_opts so = {.stream = 1};
  rc = sy_load_mix_load_body(&m, path, &so, err, sizeof err);
  unlink(path);
  if (rc) fail_msg("%s", err);
  assert_int_equal(m.n, 1);
  assert_string_equal(m.items[0].body,
                      "{\"model\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"stream\":true}");
  sy_load_mix_free(&m);

  assert_int_equal(sy_load_mix_default(&m, &(sy_load_mix_opts){0}), 0);
  assert_int_equal(m.n, 1);
  assert_non_null(strstr(m.items[0].body, "\"model\":\"gpt-4o-mini\""));
  sy_load_mix_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chat_line),  cmocka_unit_test(test_export_line),
      cmocka_unit_test(test_pair_line_and_rewrites), cmocka_unit_test(test_bad_lines),
      cmocka_unit_test(test_parse_and_pick), cmocka_unit_test(test_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
