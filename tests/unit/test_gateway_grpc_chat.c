/* Tests for gateway/grpc_chat: request → OpenAI JSON, JSON → response and
 * chunk messages, the incremental SSE parser and the HTTP → gRPC status map. */
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
#include "gateway/grpc_chat.h"

static char err[512];

static cJSON *body_of(const Switchyard__V1__ChatCompletionRequest *r, int stream, int want_rc) {
  char *body = NULL;
  size_t len = 0;
  err[0] = '\0';
  int rc = sy_grpc_chat_body(r, stream, 1u << 20, &body, &len, err, sizeof err);
  if (rc != want_rc) fail_msg("rc %d want %d (%s)", rc, want_rc, err);
  if (rc) return NULL;
  assert_int_equal(len, strlen(body));
  cJSON *j = cJSON_Parse(body);
  free(body);
  assert_non_null(j);
  return j;
}

static void test_body(void **st) {
  Switchyard__V1__ChatMessage m0 = SWITCHYARD__V1__CHAT_MESSAGE__INIT, m1 = m0;
  Switchyard__V1__ToolCall tc = SWITCHYARD__V1__TOOL_CALL__INIT;
  Switchyard__V1__FunctionCall fc = SWITCHYARD__V1__FUNCTION_CALL__INIT;
  m0.role = "user";
  m0.content_json = "[{\"type\":\"text\",\"text\":\"hi\"}]";
  fc.name = "f";
  fc.arguments = "{}";
  tc.id = "call_1";
  tc.function = &fc;
  Switchyard__V1__ToolCall *tcs[] = {&tc};
  m1.role = "assistant";
  m1.n_tool_calls = 1;
  m1.tool_calls = tcs;
  Switchyard__V1__ChatMessage *msgs[] = {&m0, &m1};
  char *stop[] = {"x"};
  Switchyard__V1__ChatCompletionRequest r = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__INIT;
  r.model = "m";
  r.n_messages = 2;
  r.messages = msgs;
  r.temperature_opt_case = SWITCHYARD__V1__CHAT_COMPLETION_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
  r.temperature = 0; /* set to zero is still sent */
  r.n_stop = 1;
  r.stop = stop;
  r.tools_json = "[{\"type\":\"function\"}]";
  r.extra_json = "{\"temperature\":0.5,\"metadata\":{\"k\":1}}";
  r.include_usage = 1;
  cJSON *j = body_of(&r, 1, 0);
  assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "m");
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0), "content")));
  cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 1);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "content")));
  cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "tool_calls"), 0);
  assert_string_equal(cJSON_GetObjectItem(t0, "type")->valuestring, "function");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(t0, "function"), "name")->valuestring, "f");
  assert_true(cJSON_GetObjectItem(j, "temperature")->valuedouble == 0.5); /* extra_json wins */
  assert_non_null(cJSON_GetObjectItem(j, "metadata"));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
  assert_null(cJSON_GetObjectItem(j, "top_p")); /* unset optional: absent */
  cJSON_Delete(j);

  r.extra_json = "{\"stream\":false}";
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "extra_json.stream"));
  r.extra_json = "[1]";
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "extra_json: must be a JSON object"));
  r.extra_json = "";
  r.tools_json = "{\"a\":1}";
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "tools_json: must be a JSON array"));
  r.tools_json = "";
  m1.role = "";
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "messages[1].role: required"));
  m1.role = "assistant";
  m0.content = "both";
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "messages[0]: set content or content_json"));
  m0.content = "";
  char deep[200];
  memset(deep, '[', 100);
  deep[100] = '\0';
  m0.content_json = deep;
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "messages[0].content_json"));
  r.n_messages = 0;
  body_of(&r, 0, SY_EINVAL);
  assert_non_null(strstr(err, "messages: at least one"));
}

typedef struct seen {
  char content[256];
  char role[32];
  uint64_t capture_id;
  uint32_t total;
  int n;
} seen;

static int grab_resp(void *ctx, const ProtobufCMessage *m) {
  seen *s = ctx;
  const Switchyard__V1__ChatCompletionResponse *r = (const void *)m;
  assert_ptr_equal(m->descriptor, &switchyard__v1__chat_completion_response__descriptor);
  snprintf(s->content, sizeof s->content, "%s", r->choices[0]->message->content);
  snprintf(s->role, sizeof s->role, "%s", r->choices[0]->message->role);
  s->capture_id = r->capture_id;
  s->total = r->usage ? r->usage->total_tokens : 0;
  /* it packs (every pointer valid) */
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n);
  protobuf_c_message_pack(m, b);
  free(b);
  return 0;
}

static void test_response(void **st) {
  const char *json = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"hello\",\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
                     "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":"
                     "\"stop\",\"logprobs\":null}],\"usage\":{\"total_tokens\":9}}";
  sy_grpc_meta meta = {.capture_id = 42, .route = "r", .arm = "a", .request_id = "x"};
  seen s = {0};
  assert_int_equal(sy_grpc_chat_response(json, strlen(json), &meta, 1, grab_resp, &s), 0);
  assert_string_equal(s.content, "hello");
  assert_string_equal(s.role, "assistant");
  assert_int_equal(s.capture_id, 42);
  assert_int_equal(s.total, 9);
  assert_int_equal(sy_grpc_chat_response("[1]", 3, &meta, 1, grab_resp, &s), SY_EINVAL);
  assert_int_equal(sy_grpc_chat_response("{", 1, &meta, 1, grab_resp, &s), SY_EINVAL);
}

static int on_ev(void *ctx, const char *d, size_t n) {
  seen *s = ctx;
  size_t l = strlen(s->content);
  snprintf(s->content + l, sizeof s->content - l, "<%.*s>", (int)n, d);
  s->n++;
  return 0;
}

static void test_sse(void **st) {
  const char *in = "data: {\"a\":1}\r\n\r\n: comment\nevent: x\ndata: l1\ndata: l2\n\ndata: [DONE]\n\n";
  /* every split point gives the same events */
  for (size_t cut = 0; cut <= strlen(in); cut++) {
    sy_sse p;
    sy_sse_init(&p, 1024);
    seen s = {0};
    assert_int_equal(sy_sse_feed(&p, in, cut, on_ev, &s), 0);
    assert_int_equal(sy_sse_feed(&p, in + cut, strlen(in) - cut, on_ev, &s), 0);
    assert_int_equal(sy_sse_finish(&p, on_ev, &s), 0);
    assert_string_equal(s.content, "<{\"a\":1}><l1\nl2><[DONE]>");
    sy_sse_free(&p);
  }
  /* an event without its blank line is delivered at the end */
  sy_sse p;
  sy_sse_init(&p, 1024);
  seen s = {0};
  assert_int_equal(sy_sse_feed(&p, "data: tail", 10, on_ev, &s), 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(sy_sse_finish(&p, on_ev, &s), 0);
  assert_string_equal(s.content, "<tail>");
  sy_sse_free(&p);
  /* a line past the cap */
  sy_sse_init(&p, 16);
  char big[64];
  memset(big, 'x', sizeof big);
  assert_int_equal(sy_sse_feed(&p, big, sizeof big, on_ev, &s), SY_ETOOBIG);
  sy_sse_free(&p);
}

static void test_status(void **st) {
  assert_int_equal(sy_grpc_status_for_http(200), GRPC_STATUS_OK);
  assert_int_equal(sy_grpc_status_for_http(400), GRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(sy_grpc_status_for_http(401), GRPC_STATUS_UNAUTHENTICATED);
  assert_int_equal(sy_grpc_status_for_http(403), GRPC_STATUS_PERMISSION_DENIED);
  assert_int_equal(sy_grpc_status_for_http(404), GRPC_STATUS_NOT_FOUND);
  assert_int_equal(sy_grpc_status_for_http(413), GRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(sy_grpc_status_for_http(429), GRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(sy_grpc_status_for_http(502), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(sy_grpc_status_for_http(503), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(sy_grpc_status_for_http(504), GRPC_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(sy_grpc_status_for_http(500), GRPC_STATUS_INTERNAL);
  char m[128];
  const char *e = "{\"error\":{\"message\":\"Rate\\nlimited\",\"type\":\"x\"}}";
  sy_grpc_error_message(e, strlen(e), 429, m, sizeof m);
  assert_string_equal(m, "Rate limited"); /* control characters made spaces */
  sy_grpc_error_message("oops", 4, 500, m, sizeof m);
  assert_string_equal(m, "HTTP 500: oops");
  sy_grpc_error_message("", 0, 502, m, sizeof m);
  assert_string_equal(m, "HTTP 502");
}

static void test_feedback_body(void **st) {
  Switchyard__V1__FeedbackRequest r = SWITCHYARD__V1__FEEDBACK_REQUEST__INIT;
  char *b = NULL;
  size_t n;
  assert_int_equal(sy_grpc_feedback_body(&r, &b, &n, err, sizeof err), SY_EINVAL);
  assert_non_null(strstr(err, "capture_id: required"));
  r.capture_id = 18446744073709551615ull;
  r.rating = SWITCHYARD__V1__FEEDBACK_REQUEST__RATING__RATING_DOWN;
  r.comment = "meh";
  assert_int_equal(sy_grpc_feedback_body(&r, &b, &n, err, sizeof err), 0);
  assert_string_equal(b, "{\"capture_id\":\"18446744073709551615\",\"rating\":\"down\",\"comment\":\"meh\"}");
  free(b);
  r.score_opt_case = SWITCHYARD__V1__FEEDBACK_REQUEST__SCORE_OPT_SCORE;
  r.score = 2;
  assert_int_equal(sy_grpc_feedback_body(&r, &b, &n, err, sizeof err), SY_EINVAL);
  assert_non_null(strstr(err, "rating or score"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_body), cmocka_unit_test(test_response), cmocka_unit_test(test_sse),
      cmocka_unit_test(test_status), cmocka_unit_test(test_feedback_body),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
