/* Capture records: SSE assembly, image references, scrubbing, feedback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "common/err.h"
#include "gateway/capture_record.h"

static sy_scrub_rules *rules;
static sy_scrubber *scrubber;

static int setup(void **state) {
  (void)state;
  char err[128];
  if (sy_scrub_rules_new(NULL, 0, &rules, err, sizeof err)) return -1;
  return sy_scrubber_new(rules, &scrubber);
}

static int teardown(void **state) {
  (void)state;
  sy_scrubber_free(scrubber);
  sy_scrub_rules_free(rules);
  return 0;
}

static const char *STREAM =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
    "data: [DONE]\n\n";

static void test_sse_assembles_content(void **state) {
  (void)state;
  sy_buf out;
  sy_buf_init(&out, 1 << 20);
  int done;
  char *err;
  assert_int_equal(sy__sse_assemble(STREAM, strlen(STREAM), &out, &done, &err), 0);
  assert_true(done);
  assert_null(err);
  cJSON *o = cJSON_Parse(out.data);
  assert_non_null(o);
  assert_string_equal(cJSON_GetObjectItem(o, "object")->valuestring, "chat.completion");
  cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
  cJSON *msg = cJSON_GetObjectItem(c0, "message");
  assert_string_equal(cJSON_GetObjectItem(msg, "content")->valuestring, "Hello");
  assert_string_equal(cJSON_GetObjectItem(msg, "role")->valuestring, "assistant");
  assert_string_equal(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "stop");
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "usage"), "total_tokens")->valueint, 5);
  cJSON_Delete(o);
  sy_buf_free(&out);
}

static void test_sse_tool_calls_and_error(void **state) {
  (void)state;
  const char *s =
      "data: {\"id\":\"c2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
      "\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"id\":\"c2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
      "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n"
      "data: {\"id\":\"c2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
      "[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n"
      "data: {\"error\":{\"message\":\"upstream went away\",\"type\":\"api_error\"}}\n\n";
  sy_buf out;
  sy_buf_init(&out, 1 << 20);
  int done;
  char *err;
  assert_int_equal(sy__sse_assemble(s, strlen(s), &out, &done, &err), 0);
  assert_false(done);
  assert_non_null(err);
  assert_string_equal(err, "upstream went away");
  free(err);
  cJSON *o = cJSON_Parse(out.data);
  cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0), "message");
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
  cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
  assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "call_1");
  cJSON *fn = cJSON_GetObjectItem(tc, "function");
  assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather");
  assert_string_equal(cJSON_GetObjectItem(fn, "arguments")->valuestring, "{\"city\":\"Paris\"}");
  cJSON_Delete(o);
  sy_buf_free(&out);
}

static void test_sse_garbage_is_harmless(void **state) {
  (void)state;
  const char *s = "data: {not json\n\nevent: x\ndata:\n\n: comment\ndata: [DONE]";
  sy_buf out;
  sy_buf_init(&out, 1 << 16);
  int done;
  char *err;
  assert_int_equal(sy__sse_assemble(s, strlen(s), &out, &done, &err), 0);
  assert_true(done);
  assert_null(err);
  cJSON *o = cJSON_Parse(out.data);
  assert_non_null(o);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "choices")), 0);
  cJSON_Delete(o);
  sy_buf_free(&out);
}

/* Chunks without tool calls take a path without a tree; it must assemble
 * exactly what the tree path does. */
static void test_sse_fast_path_matches_tree(void **state) {
  (void)state;
  const char *streams[] = {
      STREAM,
      /* escapes, unicode, two choices out of order, a long id, created as a float */
      "data: {\"id\":\"c\\u0033\",\"object\":\"chat.completion.chunk\",\"created\":1.5e3,\"model\":\"m\\/x\","
      "\"choices\":[{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"B: \\\"q\\\"\\n\"}},"
      "{\"index\":0,\"delta\":{\"content\":\"\\ud83d\\ude00 caf\\u00e9\"},\"finish_reason\":null}]}\n\n"
      "data: {\"id\":\"other\",\"model\":\"n\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\u0041\"},"
      "\"finish_reason\":\"length\"},{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"choices\":[{\"index\":99,\"delta\":{\"content\":\"dropped\"}},{\"index\":-1},{\"index\":\"x\","
      "\"delta\":{\"content\":\"!\"}}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":4}}\n\n"
      "data: [DONE]\n\n",
      /* legacy completions */
      "data: {\"id\":\"t\",\"object\":\"text_completion\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,"
      "\"text\":\"ab\",\"finish_reason\":null}]}\n\ndata: {\"choices\":[{\"index\":0,\"text\":\"c\","
      "\"finish_reason\":\"stop\"}]}\n\n",
      /* not JSON, arrays, strings and numbers at the top, a chunk with trailing bytes */
      "data: [1,2]\n\ndata: \"s\"\n\ndata: 5\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]} tail\n\n"
      "data: {\"choices\":{\"index\":0}}\n\ndata: {\"choices\":[{\"delta\":\"no\"}]}\n\n",
  };
  for (size_t i = 0; i < sizeof streams / sizeof *streams; i++) {
    sy_buf a, b;
    sy_buf_init(&a, 1 << 20);
    sy_buf_init(&b, 1 << 20);
    int da, db;
    char *ea, *eb;
    sy__sse_tree_only = 0;
    assert_int_equal(sy__sse_assemble(streams[i], strlen(streams[i]), &a, &da, &ea), 0);
    sy__sse_tree_only = 1;
    assert_int_equal(sy__sse_assemble(streams[i], strlen(streams[i]), &b, &db, &eb), 0);
    sy__sse_tree_only = 0;
    if (strcmp(a.data, b.data)) printf("stream %zu\n  spans: %s\n  tree:  %s\n", i, a.data, b.data);
    assert_string_equal(a.data, b.data);
    assert_int_equal(da, db);
    assert_null(ea);
    assert_null(eb);
    sy_buf_free(&a);
    sy_buf_free(&b);
  }
}

static sy_config *test_config(void) {
  static sy_config cfg;
  sy_config_init(&cfg);
  return &cfg;
}

static void test_record_scrubs_and_references_images(void **state) {
  (void)state;
  sy_config *cfg = test_config();
  const char *req =
      "{\"model\":\"gpt-4o-mini\",\"user\":\"u-42\",\"messages\":[{\"role\":\"user\",\"content\":["
      "{\"type\":\"text\",\"text\":\"mail me at jane.doe@example.com\"},"
      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,aGVsbG8=\"}}]}]}";
  const char *resp = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"ok jane.doe@example.com\"},"
                     "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":4,"
                     "\"completion_tokens\":3,\"total_tokens\":7}}";
  sy_capture_job j = {.kind = SY_JOB_CAPTURE, .id = 99, .endpoint = "/v1/chat/completions",
                      .status = 200};
  j.req_body = (char *)req;
  j.req_len = strlen(req);
  j.resp_body = (char *)resp;
  j.resp_len = strlen(resp);
  sy_capture *rec = NULL;
  assert_int_equal(sy_capture_record_build(&j, cfg, scrubber, &rec), 0);
  assert_int_equal(rec->id, 99);
  assert_string_equal(rec->model, "gpt-4o-mini");
  assert_string_equal(rec->route, "gpt-4o-mini");
  assert_int_equal(strlen(rec->user_hash), 32);
  assert_int_equal(rec->total_tokens, 7);
  assert_string_equal(rec->finish_reason, "length");
  assert_true(rec->truncated);
  assert_int_equal(rec->n_binary_refs, 1);
  assert_string_equal(rec->binary_refs[0]->media_type, "image/png");
  assert_int_equal(rec->binary_refs[0]->size, 5); /* "hello" */
  /* sha256("hello") starts 2cf24dba */
  assert_int_equal(rec->binary_refs[0]->sha256.data[0], 0x2c);
  char *rb = strndup((char *)rec->request_body.data, rec->request_body.len);
  assert_null(strstr(rb, "jane.doe@example.com"));
  assert_non_null(strstr(rb, "[EMAIL]"));
  assert_null(strstr(rb, "base64"));
  assert_non_null(strstr(rb, "sy-ref:sha256:2cf24dba"));
  free(rb);
  char *sb = strndup((char *)rec->response_body.data, rec->response_body.len);
  assert_null(strstr(sb, "jane.doe"));
  free(sb);
  sy_capture_record_free(rec);
  sy_config_free(cfg);
}

/* Bodies the strict walk refuses but a lenient parser takes, and images
 * under escaped keys: nothing escapes the scrubber or the image policy. */
static void test_record_lenient_json_and_escaped_keys(void **state) {
  (void)state;
  sy_config *cfg = test_config();
  /* an escaped image_url key and data: value */
  const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"image\\u005furl\",\"image\\u005furl\":{\"url\":\"\\u0064ata:image/png;base64,aGVsbG8=\"}}]}]}";
  /* a raw TAB inside a string and a number cJSON reads: escaped PII must still be found */
  const char *resp = "{\"c\":\"mail j\\u00f6rg@ex\\u00e4mple.de\tnow\",\"k\":\"key \\u0041KIAIOSFODNN7EXAMPLE\","
                     "\"p\":\"call me at\\n+44 20 7946 0958\",\"n\":01}";
  sy_capture_job j = {.kind = SY_JOB_CAPTURE, .id = 2, .status = 200};
  j.req_body = (char *)req;
  j.req_len = strlen(req);
  j.resp_body = (char *)resp;
  j.resp_len = strlen(resp);
  sy_capture *rec = NULL;
  assert_int_equal(sy_capture_record_build(&j, cfg, scrubber, &rec), 0);
  assert_int_equal(rec->n_binary_refs, 1);
  assert_null(memmem(rec->request_body.data, rec->request_body.len, "aGVsbG8=", 8));
  char *sb = strndup((char *)rec->response_body.data, rec->response_body.len);
  assert_null(strstr(sb, "mple.de"));
  assert_null(strstr(sb, "IOSFODNN7"));
  assert_null(strstr(sb, "7946"));
  assert_non_null(strstr(sb, "[EMAIL]"));
  assert_non_null(strstr(sb, "[SECRET]"));
  assert_non_null(strstr(sb, "[PHONE]"));
  free(sb);
  sy_capture_record_free(rec);
  sy_config_free(cfg);
}

/* Usage read from the answer's bytes: odd numbers are clamped, not UB;
 * the first choice's finish_reason is the record's. */
static void test_record_usage_from_spans(void **state) {
  (void)state;
  sy_config *cfg = test_config();
  const char *resp = "{\"choices\":[{\"index\":0,\"finish_reason\":\"st\\u006fp\"},{\"finish_reason\":\"length\"}],"
                     "\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":1e12,\"total_tokens\":12.7}}";
  sy_capture_job j = {.kind = SY_JOB_CAPTURE, .id = 3, .status = 200};
  j.req_body = (char *)"{}";
  j.req_len = 2;
  j.resp_body = (char *)resp;
  j.resp_len = strlen(resp);
  sy_capture *rec = NULL;
  assert_int_equal(sy_capture_record_build(&j, cfg, scrubber, &rec), 0);
  assert_int_equal(rec->prompt_tokens, 0);
  assert_int_equal(rec->completion_tokens, UINT32_MAX);
  assert_int_equal(rec->total_tokens, 12);
  assert_string_equal(rec->finish_reason, "stop");
  assert_false(rec->truncated);
  sy_capture_record_free(rec);
  sy_config_free(cfg);
}

/* The per-thread cache of end-user hashes gives what SHA-256 gives, for
 * ids that share a slot, ids longer than it holds, and the empty id. */
static void test_user_hash_cache(void **state) {
  (void)state;
  char user[200], got[33], want[65];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 300; i++) {
      int n = snprintf(user, sizeof user, "user-%d", i);
      if (i % 50 == 0) n = snprintf(user, sizeof user, "%0120d", i); /* longer than the cache holds */
      sy__user_hash(user, (size_t)n, got);
      sy_hash_key_hex(user, (size_t)n, want);
      want[32] = '\0';
      assert_string_equal(got, want);
    }
  }
  sy__user_hash("", 0, got);
  sy_hash_key_hex("", 0, want);
  want[32] = '\0';
  assert_string_equal(got, want);
}

static void test_record_keeps_images_when_configured(void **state) {
  (void)state;
  sy_config *cfg = test_config();
  cfg->capture.keep_images = 1;
  const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,aGVsbG8=\"}}]}]}";
  sy_capture_job j = {.kind = SY_JOB_CAPTURE, .id = 1};
  j.req_body = (char *)req;
  j.req_len = strlen(req);
  sy_capture *rec = NULL;
  assert_int_equal(sy_capture_record_build(&j, cfg, scrubber, &rec), 0);
  assert_int_equal(rec->n_binary_refs, 0);
  assert_non_null(memmem(rec->request_body.data, rec->request_body.len, "aGVsbG8=", 8));
  sy_capture_record_free(rec);
  sy_config_free(cfg);
}

static void test_feedback_record(void **state) {
  (void)state;
  char *tags[] = {"billing"};
  sy_capture_job j = {.kind = SY_JOB_FEEDBACK, .capture_id = 5, .rating = 2};
  j.comment = "call me on +44 20 7946 0958";
  j.correction = "The answer is 4.";
  j.fb_user = "user-7";
  j.tags = tags;
  j.n_tags = 1;
  sy_feedback *fb = NULL;
  assert_int_equal(sy_feedback_record_build(&j, scrubber, &fb), 0);
  assert_int_equal(fb->capture_id, 5);
  assert_int_equal(fb->rating, SWITCHYARD__V1__FEEDBACK__RATING__DOWN);
  assert_null(strstr(fb->comment, "7946"));
  assert_non_null(strstr(fb->comment, "[PHONE]"));
  assert_string_equal(fb->correction, "The answer is 4.");
  assert_int_equal(strlen(fb->user_id_hash), 32);
  assert_string_equal(fb->tags[0], "billing");
  sy_feedback_record_free(fb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sse_assembles_content),
      cmocka_unit_test(test_sse_fast_path_matches_tree),
      cmocka_unit_test(test_sse_tool_calls_and_error),
      cmocka_unit_test(test_sse_garbage_is_harmless),
      cmocka_unit_test(test_record_scrubs_and_references_images),
      cmocka_unit_test(test_record_lenient_json_and_escaped_keys),
      cmocka_unit_test(test_record_usage_from_spans),
      cmocka_unit_test(test_user_hash_cache),
      cmocka_unit_test(test_record_keeps_images_when_configured),
      cmocka_unit_test(test_feedback_record),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
