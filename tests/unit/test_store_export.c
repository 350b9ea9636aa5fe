/* store/export: fine-tuning JSONL, filters, corrections, tools, dedup, split,
 * preference pairs, validation, summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "store/export.h"
#include "store/ftjson.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
  sy_store *s;
  uint64_t id[16];
} fixture;

typedef struct {
  const char *route, *arm, *model, *req, *resp, *finish;
  uint32_t status;
  int truncated;
  int kind;
  uint64_t parent;
  uint32_t tokens;
} spec;

static uint64_t add(fixture *f, const spec *sp) {
  sy_capture c;
  switchyard__v1__capture__init(&c);
  c.route = (char *)(sp->route ? sp->route : "A");
  c.arm = (char *)(sp->arm ? sp->arm : "base");
  c.model = (char *)(sp->model ? sp->model : "m1");
  c.request_body.data = (uint8_t *)sp->req;
  c.request_body.len = strlen(sp->req);
  c.response_body.data = (uint8_t *)sp->resp;
  c.response_body.len = strlen(sp->resp);
  c.http_status = sp->status ? sp->status : 200;
  c.finish_reason = (char *)(sp->finish ? sp->finish : "stop");
  c.truncated = sp->truncated;
  c.kind = (Switchyard__V1__Capture__Kind)sp->kind;
  c.parent_id = sp->parent;
  c.total_tokens = sp->tokens ? sp->tokens : 10;
  const sy_capture *p[1] = {&c};
  uint64_t id = 0;
  f->clk.now_us += 1000;
  assert_int_equal(sy_store_put_captures(f->s, p, 1, &id), 0);
  return id;
}

static void feedback(fixture *f, uint64_t id, int rating, const char *correction) {
  sy_feedback fb;
  switchyard__v1__feedback__init(&fb);
  fb.capture_id = id;
  fb.rating = (Switchyard__V1__Feedback__Rating)rating;
  if (correction) fb.correction = (char *)correction;
  f->clk.now_us += 10;
  assert_int_equal(sy_store_put_feedback(f->s, &fb), 0);
}

#define REQ(u) "{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"   \
               "{\"role\":\"user\",\"content\":\"" u "\"}]}"
#define RESP(a) "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" a  \
                "\"},\"finish_reason\":\"stop\"}]}"
#define UP SWITCHYARD__V1__FEEDBACK__RATING__UP
#define DOWN SWITCHYARD__V1__FEEDBACK__RATING__DOWN

static const char *tools_req =
    "{\"model\":\"x\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
    "\"messages\":[{\"role\":\"developer\",\"content\":\"use tools\"},{\"role\":\"user\","
    "\"content\":\"weather in Oslo?\"}]}";
static const char *tools_resp =
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,"
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},\"finish_reason\":"
    "\"tool_calls\"}]}";

/* The dataset (index: what it is):
 *  0 A/base  2+2 -> 4, UP            6 duplicate of 0 (spacing/case)
 *  1 A/cand  France -> Lyon, DOWN,   7 joke -> joke A, UP
 *    corrections "Paris" then        8 joke -> joke B, DOWN
 *    "Paris."                        9 SHADOW
 *  2 B/base  tools + tool_calls     10 cascade parent (primary) -> good answer
 *  3 A       HTTP 500               11 cascade attempt of 10, not accepted
 *  4 A       truncated (length)     12 request not JSON
 *  5 A/base model m2 "hello" -> hi */
static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  sy_store_opts o = {0};
  o.path = f->path;
  o.durability = SY_DURABLE_NOSYNC;
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  assert_int_equal(sy_store_open(&o, &f->s), 0);
  f->id[0] = add(f, &(spec){.req = REQ("What is 2+2?"), .resp = RESP("4"), .tokens = 7});
  f->id[1] = add(f, &(spec){.arm = "cand", .req = REQ("Capital of France?"), .resp = RESP("Lyon")});
  f->id[2] = add(f, &(spec){.route = "B", .req = tools_req, .resp = tools_resp});
  f->id[3] = add(f, &(spec){.req = REQ("crash"), .resp = "{\"error\":{\"message\":\"boom\"}}",
                            .status = 500});
  f->id[4] = add(f, &(spec){.req = REQ("long story"), .resp = RESP("once upon"),
                            .finish = "length"});
  f->id[5] = add(f, &(spec){.model = "m2", .req = REQ("hello"), .resp = RESP("hi")});
  f->id[6] = add(f, &(spec){.req = REQ("  what IS   2+2? "), .resp = RESP("4")});
  f->id[7] = add(f, &(spec){.req = REQ("Tell me a joke"), .resp = RESP("joke A")});
  f->id[8] = add(f, &(spec){.req = REQ("tell me a joke"), .resp = RESP("joke B")});
  f->id[9] = add(f, &(spec){.req = REQ("shadowed"), .resp = RESP("shadow answer"),
                            .kind = SWITCHYARD__V1__CAPTURE__KIND__SHADOW});
  f->id[10] = add(f, &(spec){.req = REQ("hard question"), .resp = RESP("good answer")});
  f->id[11] = add(f, &(spec){.arm = "cand", .req = REQ("hard question"),
                             .resp = RESP("cheap answer"), .parent = f->id[10],
                             .kind = SWITCHYARD__V1__CAPTURE__KIND__CASCADE_ATTEMPT});
  f->id[12] = add(f, &(spec){.req = "{not json", .resp = RESP("x")});
  feedback(f, f->id[0], UP, NULL);
  feedback(f, f->id[1], DOWN, "Paris");
  feedback(f, f->id[1], 0, "Paris.");
  feedback(f, f->id[7], UP, NULL);
  feedback(f, f->id[8], DOWN, NULL);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  sy_store_close(f->s);
  test_rmtree(f->dir);
  free(f);
  return 0;
}

typedef struct {
  char *buf[3];
  size_t len[3];
  FILE *fp[3];
} outputs;

static void out_open(outputs *o, sy_export_opts *eo) {
  for (int i = 0; i < 3; i++) {
    o->buf[i] = NULL;
    o->fp[i] = open_memstream(&o->buf[i], &o->len[i]);
  }
  eo->train = o->fp[0];
  eo->val = o->fp[1];
  eo->pairs = o->fp[2];
}

static void out_close(outputs *o) {
  for (int i = 0; i < 3; i++) fclose(o->fp[i]);
}

static void out_free(outputs *o) {
  for (int i = 0; i < 3; i++) free(o->buf[i]);
}

/* Counts lines, checking each one validates as SFT (which = 0) or pair (1). */
static int count_lines(const char *buf, int which) {
  int n = 0;
  for (const char *p = buf; p && *p;) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    size_t len = (size_t)(nl - p);
    assert_int_equal(which ? sy_ftjson_validate_pair(p, len) : sy_ftjson_validate_sft(p, len), 0);
    n++;
    p = nl + 1;
  }
  return n;
}

/* Runs an export with o (outputs are set here) and returns the train line count. */
static int run(fixture *f, sy_export_opts *o, sy_export_summary *sum, outputs *out) {
  out_open(out, o);
  assert_int_equal(sy_export_run(f->s, o, sum), 0);
  out_close(out);
  count_lines(out->buf[2], 1);
  count_lines(out->buf[1], 0);
  return count_lines(out->buf[0], 0);
}

/* Finds the line whose first user message contains needle; returns it parsed. */
static cJSON *find_line(const char *buf, const char *needle) {
  for (const char *p = buf; p && *p;) {
    const char *nl = strchr(p, '\n');
    cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
    cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    if (!msgs) msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "input"), "messages");
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
      const cJSON *c = cJSON_GetObjectItem(m, "content");
      if (cJSON_IsString(c) && strstr(c->valuestring, needle)) return j;
    }
    cJSON_Delete(j);
    p = nl + 1;
  }
  return NULL;
}

static const char *last_content(const cJSON *line) {
  const cJSON *msgs = cJSON_GetObjectItem(line, "messages");
  const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
  const cJSON *c = cJSON_GetObjectItem(last, "content");
  return cJSON_IsString(c) ? c->valuestring : NULL;
}

static void test_default_export(void **state) {
  fixture *f = *state;
  sy_export_opts o = {0};
  sy_export_summary sum;
  outputs out;
  /* written: 0, 1 (corrected), 2 (tools), 5, 7, 8, 10 */
  assert_int_equal(run(f, &o, &sum, &out), 7);
  assert_int_equal(sum.scanned, 13);
  assert_int_equal(sum.written, 7);
  assert_int_equal(sum.written_train, 7);
  assert_int_equal(sum.from_corrected, 1);
  assert_int_equal(sum.from_captured, 6);
  assert_int_equal(sum.rated_positive, 2);
  assert_int_equal(sum.rated_negative, 2);
  assert_int_equal(sum.unrated, 3);
  assert_int_equal(sum.filtered.error, 1);
  assert_int_equal(sum.filtered.truncated, 1);
  assert_int_equal(sum.filtered.duplicate, 1);
  assert_int_equal(sum.filtered.kind, 2);
  assert_int_equal(sum.filtered.unparseable, 1);
  assert_int_equal(sum.total_tokens, 7 + 6 * 10);
  assert_int_equal(sum.n_routes, 2);
  assert_string_equal(sum.routes[0].name, "A");
  assert_int_equal(sum.routes[0].count, 6);
  assert_int_equal(sum.routes[1].count, 1);

  /* correction wins, the latest one */
  cJSON *l = find_line(out.buf[0], "France");
  assert_non_null(l);
  assert_string_equal(last_content(l), "Paris.");
  cJSON_Delete(l);
  /* tools carried, developer -> system, tool_calls in the assistant turn */
  l = find_line(out.buf[0], "Oslo");
  assert_non_null(l);
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(l, "tools")));
  const cJSON *msgs = cJSON_GetObjectItem(l, "messages");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring,
                      "system");
  const cJSON *ans = cJSON_GetArrayItem(msgs, 2);
  assert_string_equal(cJSON_GetObjectItem(ans, "role")->valuestring, "assistant");
  assert_null(cJSON_GetObjectItem(ans, "content"));
  assert_null(cJSON_GetObjectItem(ans, "refusal"));
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "tool_calls"),
                                                              0), "id")->valuestring, "call_1");
  cJSON_Delete(l);
  assert_null(find_line(out.buf[0], "shadowed"));
  out_free(&out);

  /* pairs: one of each kind */
  assert_int_equal(sum.pairs, 3);
  assert_int_equal(sum.pairs_correction, 1);
  assert_int_equal(sum.pairs_rating, 1);
  assert_int_equal(sum.pairs_cascade, 1);
}

static const char *out_of(const cJSON *arr) {
  return cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "content")->valuestring;
}

static void test_pairs(void **state) {
  fixture *f = *state;
  sy_export_opts o = {0};
  sy_export_summary sum;
  outputs out;
  run(f, &o, &sum, &out);
  assert_int_equal(count_lines(out.buf[2], 1), 3);
  cJSON *l = find_line(out.buf[2], "France");
  assert_non_null(l);
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "preferred_output")), "Paris.");
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "non_preferred_output")), "Lyon");
  cJSON_Delete(l);
  l = find_line(out.buf[2], "joke");
  assert_non_null(l);
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "preferred_output")), "joke A");
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "non_preferred_output")), "joke B");
  cJSON_Delete(l);
  l = find_line(out.buf[2], "hard question");
  assert_non_null(l);
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "preferred_output")), "good answer");
  assert_string_equal(out_of(cJSON_GetObjectItem(l, "non_preferred_output")), "cheap answer");
  cJSON_Delete(l);
  out_free(&out);
  /* no pairs output, no pairs */
  o.pairs = NULL;
  out_open(&out, &o);
  o.pairs = NULL;
  assert_int_equal(sy_export_run(f->s, &o, &sum), 0);
  out_close(&out);
  assert_int_equal(sum.pairs, 0);
  assert_int_equal(out.len[2], 0);
  out_free(&out);
}

static void test_filters(void **state) {
  fixture *f = *state;
  sy_export_summary sum;
  outputs out;
  sy_export_opts o = {0};
  o.route = "B";
  assert_int_equal(run(f, &o, &sum, &out), 1);
  assert_int_equal(sum.filtered.route, 12);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.arm = "cand";
  assert_int_equal(run(f, &o, &sum, &out), 1); /* 1; 11 is a cascade attempt */
  assert_int_equal(sum.filtered.arm, 11);
  assert_int_equal(sum.filtered.kind, 1);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.model = "m2";
  assert_int_equal(run(f, &o, &sum, &out), 1);
  assert_int_equal(sum.filtered.model, 12);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.has_min_rating = 1;
  o.min_rating = 0.5;
  assert_int_equal(run(f, &o, &sum, &out), 2); /* 0 and 7 */
  assert_int_equal(sum.filtered.min_rating, 8);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.only_corrected = 1;
  assert_int_equal(run(f, &o, &sum, &out), 1);
  assert_int_equal(sum.filtered.not_corrected, 9);
  assert_int_equal(sum.from_corrected, 1);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.only_positive = 1;
  assert_int_equal(run(f, &o, &sum, &out), 2);
  assert_int_equal(sum.filtered.not_positive, 8);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.exclude_negative = 1;
  assert_int_equal(run(f, &o, &sum, &out), 5); /* 1 and 8 dropped */
  assert_int_equal(sum.filtered.negative, 2);
  out_free(&out);

  memset(&o, 0, sizeof o);
  o.include_errors = 1;
  assert_int_equal(run(f, &o, &sum, &out), 8); /* + truncated 4; 3 has no answer */
  assert_int_equal(sum.filtered.error, 0);
  assert_int_equal(sum.filtered.unparseable, 2);
  cJSON *l = find_line(out.buf[0], "long story");
  assert_non_null(l);
  cJSON_Delete(l);
  out_free(&out);

  /* time range [id 2, id 5): 2 written, 3 error, 4 truncated */
  memset(&o, 0, sizeof o);
  o.since_us = sy_store_time_us_from_id(f->id[2]);
  o.until_us = sy_store_time_us_from_id(f->id[5]);
  assert_int_equal(run(f, &o, &sum, &out), 1);
  assert_int_equal(sum.scanned, 3);
  out_free(&out);

  /* bad options */
  memset(&o, 0, sizeof o);
  assert_int_equal(sy_export_run(f->s, &o, &sum), SY_EINVAL); /* no train output */
  o.train = stdout;
  o.val_fraction = 0.5; /* without a val output */
  assert_int_equal(sy_export_run(f->s, &o, &sum), SY_EINVAL);
}

static void test_split_deterministic(void **state) {
  fixture *f = *state;
  char req[128], resp[128];
  for (int i = 0; i < 400; i++) {
    snprintf(req, sizeof req, REQ("question number %d"), i);
    snprintf(resp, sizeof resp, RESP("answer %d"), i);
    add(f, &(spec){.route = "S", .req = req, .resp = resp});
  }
  /* the same prompt with another answer must land on the same side */
  add(f, &(spec){.route = "S", .req = REQ("question number 7"), .resp = RESP("other answer")});
  sy_export_opts o = {0};
  o.route = "S";
  o.val_fraction = 0.25;
  sy_export_summary s1, s2;
  outputs a, b;
  int train = run(f, &o, &s1, &a);
  int val = count_lines(a.buf[1], 0);
  assert_int_equal(train + val, 401);
  assert_int_equal(s1.written_val, (uint64_t)val);
  assert_in_range(val, 60, 140); /* 25% of 401 = 100, binomial sd ~9 */
  run(f, &o, &s2, &b);
  assert_int_equal(a.len[0], b.len[0]);
  assert_memory_equal(a.buf[0], b.buf[0], a.len[0]);
  assert_int_equal(a.len[1], b.len[1]);
  assert_memory_equal(a.buf[1], b.buf[1], a.len[1]);
  int in_val = strstr(a.buf[1], "question number 7\"") != NULL;
  int in_train = strstr(a.buf[0], "question number 7\"") != NULL;
  assert_true(in_val != in_train);
  const char *side = in_val ? a.buf[1] : a.buf[0];
  assert_non_null(strstr(side, "other answer"));
  out_free(&a);
  out_free(&b);

  /* a tiny dedup set stops deduplicating, counted, instead of failing */
  memset(&o, 0, sizeof o);
  o.route = "S";
  o.dedup_max = 10;
  assert_int_equal(run(f, &o, &s1, &a), 401);
  assert_int_equal(s1.filtered.dedup_full, 391);
  out_free(&a);
}

static void test_validate_and_summary(void **state) {
  fixture *f = *state;
  static const char *bad_sft[] = {
      "not json",
      "{\"messages\":[]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
      "{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"},{\"role\":\"assistant\","
      "\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
      "\"content\":\"  \"}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
      "\"content\":\"x\"}],\"tools\":{}}",
  };
  for (size_t i = 0; i < sizeof bad_sft / sizeof bad_sft[0]; i++)
    assert_int_equal(sy_ftjson_validate_sft(bad_sft[i], strlen(bad_sft[i])), SY_EINVAL);
  const char *good = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
                     "\"assistant\",\"content\":\"x\"}]}";
  assert_int_equal(sy_ftjson_validate_sft(good, strlen(good)), 0);
  const char *same = "{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]},"
                     "\"preferred_output\":[{\"role\":\"assistant\",\"content\":\"a\"}],"
                     "\"non_preferred_output\":[{\"role\":\"assistant\",\"content\":\"a\"}]}";
  assert_int_equal(sy_ftjson_validate_pair(same, strlen(same)), SY_EINVAL);
  const char *pair = "{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]},"
                     "\"preferred_output\":[{\"role\":\"assistant\",\"content\":\"a\"}],"
                     "\"non_preferred_output\":[{\"role\":\"assistant\",\"content\":\"b\"}]}";
  assert_int_equal(sy_ftjson_validate_pair(pair, strlen(pair)), 0);

  /* the summary JSON parses and carries the counts */
  sy_export_opts o = {0};
  sy_export_summary sum;
  outputs out;
  run(f, &o, &sum, &out);
  out_free(&out);
  sy_buf b;
  sy_buf_init(&b, 1 << 16);
  assert_int_equal(sy_export_summary_json(&sum, &b), 0);
  cJSON *j = cJSON_Parse(b.data);
  assert_non_null(j);
  assert_int_equal(cJSON_GetObjectItem(j, "written")->valueint, 7);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "filtered"), "duplicate")->valueint,
                   1);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "routes"), "A")->valueint, 6);
  cJSON_Delete(j);
  sy_buf_free(&b);
  FILE *devnull = fopen("/dev/null", "w");
  sy_export_summary_print(&sum, devnull);
  fclose(devnull);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_default_export, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pairs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_split_deterministic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_validate_and_summary, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
