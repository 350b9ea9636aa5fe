/* Tests for the "capture" section of gateway/config, client_keys[].capture
 * and the capture flags. Every rejection is checked by return code and
 * message; ASan (build-config-asan) checks the frees after partial failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "gateway/config.h"

#define HASH_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HASH_B "0000000000000000000000000000000000000000000000000000000000000001"
#define HASH_C "0000000000000000000000000000000000000000000000000000000000000002"

static char errbuf[1024];

static int parse(sy_config *c, const char *json) {
  sy_config_init(c);
  errbuf[0] = '\0';
  return sy_config_parse(c, json, strlen(json), errbuf, sizeof errbuf);
}

static int reparse(sy_config *c, const char *json) {
  errbuf[0] = '\0';
  return sy_config_parse(c, json, strlen(json), errbuf, sizeof errbuf);
}

static void expect_msg(int rc, int want_rc, const char *want, const char *what) {
  if (rc != want_rc || strstr(errbuf, want) == NULL)
    fail_msg("%s: rc %d (want %d), message \"%s\" (want \"%s\")", what, rc, want_rc, errbuf,
             want);
}

static int apply(sy_config *c, ...) {
  char *argv[16];
  int argc = 0, help = 0;
  va_list ap;
  va_start(ap, c);
  argv[argc++] = "switchyard";
  for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;) argv[argc++] = a;
  va_end(ap);
  errbuf[0] = '\0';
  int rc = sy_config_apply_args(c, argc, argv, &help, errbuf, sizeof errbuf);
  assert_int_equal(help, 0);
  return rc;
}

static void check_capture_defaults(const sy_capture_conf *cc) {
  assert_int_equal(cc->enabled, 1);
  assert_int_equal(cc->durability, SY_CAPTURE_SYNC);
  assert_int_equal(cc->queue_size, 65536);
  assert_int_equal(cc->batch_max, 512);
  assert_int_equal(cc->flush_ms, 10);
  assert_int_equal(cc->sync_interval_ms, 1000);
  assert_int_equal(cc->keep_images, 0);
  assert_int_equal(cc->max_response_bytes, 4u << 20);
  assert_int_equal(cc->map_size_max_mb, 65536);
  assert_int_equal(cc->retention_max_age_days, 0);
  assert_int_equal(cc->retention_max_mb, 0);
  assert_null(cc->pii_patterns);
  assert_int_equal(cc->n_pii_patterns, 0);
}

static void test_defaults(void **state) {
  (void)state;
  sy_config c;
  sy_config_init(&c);
  check_capture_defaults(&c.capture);
  sy_config_free(&c);
  assert_int_equal(parse(&c, "{}"), 0);
  check_capture_defaults(&c.capture);
  sy_config_free(&c);
  assert_int_equal(parse(&c, "{\"capture\":{},\"client_keys\":[{\"name\":\"k\",\"sha256\":\"" HASH_A
                             "\"}]}"),
                   0);
  check_capture_defaults(&c.capture);
  assert_int_equal(c.client_keys[0].capture, 1);  /* absent means captured */
  sy_config_free(&c);
  /* free leaves a config that can be freed again */
  sy_config_free(&c);
  assert_null(c.capture.pii_patterns);
}

static const char FULL[] =
    "{\"capture\": {\n"
    "  \"enabled\": false, \"durability\": \"nometasync\", \"queue_size\": 1024,\n"
    "  \"batch_max\": 64, \"flush_ms\": 25, \"sync_interval_ms\": 500,\n"
    "  \"keep_images\": true, \"max_response_bytes\": 65536, \"map_size_max_mb\": 1048576,\n"
    "  \"retention\": {\"max_age_days\": 30, \"max_mb\": 20480},\n"
    "  \"pii_patterns\": [\n"
    "    {\"name\": \"TICKET\", \"pattern\": \"TCK-[0-9]{6}\"},\n"
    "    {\"pattern\": \"\\\\bEMP\\\\d{5}\\\\b\", \"name\": \"EMPLOYEE_ID_2\"}\n"
    "  ]},\n"
    " \"auth\": true, \"upstreams\": [{\"name\": \"u\", \"base_url\": \"http://u\"}],\n"
    " \"client_keys\": [\n"
    "   {\"name\": \"a\", \"sha256\": \"" HASH_A "\", \"capture\": false},\n"
    "   {\"capture\": true, \"name\": \"b\", \"sha256\": \"" HASH_B "\"},\n"
    "   {\"name\": \"c\", \"sha256\": \"" HASH_C "\"}]}\n";

static void test_full(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, FULL), 0);
  const sy_capture_conf *cc = &c.capture;
  assert_int_equal(cc->enabled, 0);
  assert_int_equal(cc->durability, SY_CAPTURE_NOMETASYNC);
  assert_int_equal(cc->queue_size, 1024);
  assert_int_equal(cc->batch_max, 64);
  assert_int_equal(cc->flush_ms, 25);
  assert_int_equal(cc->sync_interval_ms, 500);
  assert_int_equal(cc->keep_images, 1);
  assert_int_equal(cc->max_response_bytes, 65536);
  assert_int_equal(cc->map_size_max_mb, 1048576);
  assert_int_equal(cc->retention_max_age_days, 30);
  assert_int_equal(cc->retention_max_mb, 20480);
  assert_int_equal(cc->n_pii_patterns, 2);
  assert_string_equal(cc->pii_patterns[0].name, "TICKET");
  assert_string_equal(cc->pii_patterns[0].pattern, "TCK-[0-9]{6}");
  assert_string_equal(cc->pii_patterns[1].name, "EMPLOYEE_ID_2");
  assert_string_equal(cc->pii_patterns[1].pattern, "\\bEMP\\d{5}\\b");
  assert_int_equal(c.n_client_keys, 3);
  assert_int_equal(c.client_keys[0].capture, 0);
  assert_int_equal(c.client_keys[1].capture, 1);
  assert_int_equal(c.client_keys[2].capture, 1);
  /* finish neither needs nor changes the capture section */
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_int_equal(cc->queue_size, 1024);
  assert_int_equal(cc->n_pii_patterns, 2);
  sy_config_free(&c);
  assert_null(c.capture.pii_patterns);
  assert_int_equal(c.capture.n_pii_patterns, 0);
}

static void test_durability_values(void **state) {
  (void)state;
  static const struct {
    const char *name;
    sy_capture_durability want;
  } modes[] = {{"sync", SY_CAPTURE_SYNC},
               {"nometasync", SY_CAPTURE_NOMETASYNC},
               {"nosync", SY_CAPTURE_NOSYNC}};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    char j[128];
    sy_config c;
    snprintf(j, sizeof j, "{\"capture\":{\"durability\":\"%s\"}}", modes[i].name);
    sy_config_init(&c);
    c.capture.durability = (sy_capture_durability)99;  /* proves the parse wrote it */
    assert_int_equal(reparse(&c, j), 0);
    assert_int_equal(c.capture.durability, modes[i].want);
    sy_config_free(&c);
  }
}

/* Each numeric key: both ends accepted, one past each end rejected with
 * the range in the message. */
typedef struct range_case {
  const char *key;  /* "retention.x" for the nested ones */
  uint64_t lo, hi;
} range_case;

static const range_case ranges[] = {
    {"queue_size", 16, 1048576},
    {"batch_max", 1, 100000},
    {"flush_ms", 1, 10000},
    {"sync_interval_ms", 10, 600000},
    {"max_response_bytes", 1024, 67108864},
    {"map_size_max_mb", 16, 16777216},
    {"retention.max_age_days", 0, 36500},
    {"retention.max_mb", 0, 16777216},
};

static uint64_t read_field(const sy_capture_conf *cc, const char *key) {
  if (!strcmp(key, "queue_size")) return cc->queue_size;
  if (!strcmp(key, "batch_max")) return cc->batch_max;
  if (!strcmp(key, "flush_ms")) return cc->flush_ms;
  if (!strcmp(key, "sync_interval_ms")) return cc->sync_interval_ms;
  if (!strcmp(key, "max_response_bytes")) return cc->max_response_bytes;
  if (!strcmp(key, "map_size_max_mb")) return cc->map_size_max_mb;
  if (!strcmp(key, "retention.max_age_days")) return cc->retention_max_age_days;
  if (!strcmp(key, "retention.max_mb")) return cc->retention_max_mb;
  fail_msg("no field %s", key);
  return 0;
}

static void range_json(char *j, size_t n, const char *key, const char *val) {
  if (strncmp(key, "retention.", 10) == 0)
    snprintf(j, n, "{\"capture\":{\"retention\":{\"%s\":%s}}}", key + 10, val);
  else
    snprintf(j, n, "{\"capture\":{\"%s\":%s}}", key, val);
}

static void test_ranges(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
    const range_case *r = &ranges[i];
    char j[256], v[32], want[160], what[200];
    sy_config c;
    uint64_t ok[2] = {r->lo, r->hi};
    for (int e = 0; e < 2; e++) {
      snprintf(v, sizeof v, "%llu", (unsigned long long)ok[e]);
      range_json(j, sizeof j, r->key, v);
      assert_int_equal(parse(&c, j), 0);
      if (read_field(&c.capture, r->key) != ok[e])
        fail_msg("%s: stored %llu, want %llu", r->key,
                 (unsigned long long)read_field(&c.capture, r->key), (unsigned long long)ok[e]);
      sy_config_free(&c);
    }
    snprintf(want, sizeof want, "capture.%s: must be an integer between %llu and %llu", r->key,
             (unsigned long long)r->lo, (unsigned long long)r->hi);
    const char *bad[5];
    char below[32], above[32];
    size_t nb = 0;
    snprintf(above, sizeof above, "%llu", (unsigned long long)r->hi + 1);
    bad[nb++] = above;
    if (r->lo > 0) {
      snprintf(below, sizeof below, "%llu", (unsigned long long)r->lo - 1);
      bad[nb++] = below;
    } else {
      bad[nb++] = "-1";
    }
    bad[nb++] = "\"100\"";
    bad[nb++] = "100.5";
    bad[nb++] = "null";
    for (size_t b = 0; b < nb; b++) {
      range_json(j, sizeof j, r->key, bad[b]);
      snprintf(what, sizeof what, "range %s = %s", r->key, bad[b]);
      expect_msg(parse(&c, j), SY_ECONFIG, want, what);
      sy_config_free(&c);
    }
  }
}

typedef struct reject_case {
  const char *json;
  const char *msg;
} reject_case;

#define PII(x) "{\"capture\":{\"pii_patterns\":[" x "]}}"
#define KEY(x) "{\"client_keys\":[{\"name\":\"a\",\"sha256\":\"" HASH_A "\"" x "}]}"

static const reject_case rejects[] = {
    {"{\"capture\":[]}", "capture: must be an object"},
    {"{\"capture\":true}", "capture: must be an object"},
    {"{\"capture\":{},\"capture\":{}}", "capture: duplicate key"},
    {"{\"capture\":{\"enable\":true}}", "capture.enable: unknown key"},
    {"{\"capture\":{\"Enabled\":true}}", "capture.Enabled: unknown key"},
    {"{\"capture\":{\"max_age_days\":3}}", "capture.max_age_days: unknown key"},
    {"{\"capture\":{\"x\\u0007y\":3}}", "capture.x?y: unknown key"},
    {"{\"capture\":{\"enabled\":1}}", "capture.enabled: must be true or false"},
    {"{\"capture\":{\"enabled\":\"false\"}}", "capture.enabled: must be true or false"},
    {"{\"capture\":{\"enabled\":true,\"enabled\":false}}", "capture.enabled: duplicate key"},
    {"{\"capture\":{\"keep_images\":null}}", "capture.keep_images: must be true or false"},
    {"{\"capture\":{\"durability\":\"fsync\"}}",
     "capture.durability: must be one of sync, nometasync, nosync"},
    {"{\"capture\":{\"durability\":\"SYNC\"}}", "capture.durability: must be one of"},
    {"{\"capture\":{\"durability\":\"\"}}", "capture.durability: must be one of"},
    {"{\"capture\":{\"durability\":\"sync \"}}", "capture.durability: must be one of"},
    {"{\"capture\":{\"durability\":0}}", "capture.durability: must be a string"},
    {"{\"capture\":{\"batch_max\":8,\"batch_max\":9}}", "capture.batch_max: duplicate key"},
    {"{\"capture\":{\"retention\":30}}", "capture.retention: must be an object"},
    {"{\"capture\":{\"retention\":{\"max_days\":30}}}", "capture.retention.max_days: unknown key"},
    {"{\"capture\":{\"retention\":{\"max_mb\":1,\"max_mb\":2}}}",
     "capture.retention.max_mb: duplicate key"},
    {"{\"capture\":{\"retention\":{},\"retention\":{}}}", "capture.retention: duplicate key"},
    {"{\"capture\":{\"pii_patterns\":{}}}", "capture.pii_patterns: must be an array"},
    {"{\"capture\":{\"pii_patterns\":\"TCK\"}}", "capture.pii_patterns: must be an array"},
    {PII("\"TCK\""), "capture.pii_patterns[0]: must be an object"},
    {PII("{\"name\":\"A\",\"pattern\":\"a\"},[]"), "capture.pii_patterns[1]: must be an object"},
    {PII("{\"name\":\"A\",\"pattern\":\"a\"},{\"name\":\"ticket\",\"pattern\":\"b\"}"),
     "capture.pii_patterns[1].name: must match [A-Z0-9_]{1,32}"},
    {PII("{\"name\":\"\",\"pattern\":\"a\"}"), "capture.pii_patterns[0].name: must match"},
    {PII("{\"name\":\"TI-CKET\",\"pattern\":\"a\"}"), "capture.pii_patterns[0].name: must match"},
    {PII("{\"name\":\"TICKET \",\"pattern\":\"a\"}"), "capture.pii_patterns[0].name: must match"},
    {PII("{\"name\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\",\"pattern\":\"a\"}"),
     "capture.pii_patterns[0].name: must match [A-Z0-9_]{1,32}"},
    {PII("{\"name\":7,\"pattern\":\"a\"}"), "capture.pii_patterns[0].name: must be a string"},
    {PII("{\"name\":\"T\",\"pattern\":\"a\"},{\"name\":\"U\",\"pattern\":\"b\"},"
         "{\"name\":\"T\",\"pattern\":\"c\"}"),
     "capture.pii_patterns[2].name: duplicate name \"T\""},
    {PII("{\"name\":\"T\",\"name\":\"U\",\"pattern\":\"a\"}"),
     "capture.pii_patterns[0].name: duplicate key"},
    {PII("{\"name\":\"T\",\"pattern\":\"\"}"), "capture.pii_patterns[0].pattern: must not be empty"},
    {PII("{\"name\":\"T\",\"pattern\":null}"), "capture.pii_patterns[0].pattern: must be a string"},
    {PII("{\"name\":\"T\",\"pattern\":[\"a\"]}"),
     "capture.pii_patterns[0].pattern: must be a string"},
    {PII("{\"pattern\":\"a\"}"), "capture.pii_patterns[0].name: required"},
    {PII("{\"name\":\"T\"}"), "capture.pii_patterns[0].pattern: required"},
    {PII("{}"), "capture.pii_patterns[0].name: required"},
    {PII("{\"name\":\"T\",\"pattern\":\"a\",\"flags\":\"i\"}"),
     "capture.pii_patterns[0].flags: unknown key"},
    {KEY(",\"capture\":0"), "client_keys[0].capture: must be true or false"},
    {KEY(",\"capture\":\"false\""), "client_keys[0].capture: must be true or false"},
    {KEY(",\"capture\":null"), "client_keys[0].capture: must be true or false"},
    {KEY(",\"capture\":true,\"capture\":false"), "client_keys[0].capture: duplicate key"},
    {KEY(",\"Capture\":true"), "client_keys[0].Capture: unknown key"},
};

static void test_rejects(void **state) {
  (void)state;
  size_t n = sizeof rejects / sizeof rejects[0];
  assert_true(n >= 40);
  for (size_t i = 0; i < n; i++) {
    sy_config c;
    int rc = parse(&c, rejects[i].json);
    char what[600];
    snprintf(what, sizeof what, "reject case %zu (%s)", i, rejects[i].json);
    expect_msg(rc, SY_ECONFIG, rejects[i].msg, what);
    sy_config_free(&c);
  }
}

/* Counts and lengths at and past their limits. */
static void test_pattern_limits(void **state) {
  (void)state;
  size_t cap = 200000;
  char *j = malloc(cap);
  assert_non_null(j);
  sy_config c;

  for (int count = 64; count <= 65; count++) {
    size_t n = (size_t)snprintf(j, cap, "{\"capture\":{\"pii_patterns\":[");
    for (int i = 0; i < count; i++)
      n += (size_t)snprintf(j + n, cap - n, "%s{\"name\":\"P%d\",\"pattern\":\"x%d\"}",
                            i ? "," : "", i, i);
    snprintf(j + n, cap - n, "]}}");
    if (count == 64) {
      assert_int_equal(parse(&c, j), 0);
      assert_int_equal(c.capture.n_pii_patterns, 64);
      assert_string_equal(c.capture.pii_patterns[63].name, "P63");
      assert_string_equal(c.capture.pii_patterns[63].pattern, "x63");
    } else {
      expect_msg(parse(&c, j), SY_ECONFIG,
                 "capture.pii_patterns: at most 64 patterns are allowed (got 65)", "65 patterns");
      assert_int_equal(c.capture.n_pii_patterns, 0);  /* rejected before anything is kept */
    }
    sy_config_free(&c);
  }

  for (size_t len = 4096; len <= 4097; len++) {
    size_t n = (size_t)snprintf(j, cap, "{\"capture\":{\"pii_patterns\":[{\"name\":\"LONG\","
                                        "\"pattern\":\"");
    memset(j + n, 'a', len);
    n += len;
    snprintf(j + n, cap - n, "\"}]}}");
    if (len == 4096) {
      assert_int_equal(parse(&c, j), 0);
      assert_int_equal(strlen(c.capture.pii_patterns[0].pattern), 4096);
    } else {
      expect_msg(parse(&c, j), SY_ECONFIG,
                 "capture.pii_patterns[0].pattern: longer than 4096 bytes", "4097-byte pattern");
    }
    sy_config_free(&c);
  }

  /* 4096 bytes of pattern text, counted after JSON unescaping: 2048 "\\"
   * escapes are 2048 bytes, not 4096 */
  {
    size_t n = (size_t)snprintf(j, cap, "{\"capture\":{\"pii_patterns\":[{\"name\":\"ESC\","
                                        "\"pattern\":\"");
    for (int i = 0; i < 2048; i++) {
      memcpy(j + n, "\\\\", 2);
      n += 2;
    }
    snprintf(j + n, cap - n, "\"}]}}");
    assert_int_equal(parse(&c, j), 0);
    assert_int_equal(strlen(c.capture.pii_patterns[0].pattern), 2048);
    sy_config_free(&c);
  }

  /* a 32-character name is the longest */
  assert_int_equal(parse(&c, PII("{\"name\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"pattern\":\"a\"},"
                                 "{\"name\":\"0\",\"pattern\":\"b\"},{\"name\":\"_\",\"pattern\":\"c\"}")),
                   0);
  assert_int_equal(c.capture.n_pii_patterns, 3);
  assert_string_equal(c.capture.pii_patterns[0].name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
  sy_config_free(&c);
  free(j);
}

/* A second file overrides only the keys it has; a pattern list replaces the
 * old one whole; an empty list clears it. */
static void test_layered(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, FULL), 0);
  assert_int_equal(reparse(&c, "{\"capture\":{\"queue_size\":2048,\"retention\":{\"max_mb\":5}}}"),
                   0);
  assert_int_equal(c.capture.queue_size, 2048);
  assert_int_equal(c.capture.retention_max_mb, 5);
  assert_int_equal(c.capture.retention_max_age_days, 30);  /* kept */
  assert_int_equal(c.capture.batch_max, 64);                /* kept */
  assert_int_equal(c.capture.durability, SY_CAPTURE_NOMETASYNC);
  assert_int_equal(c.capture.n_pii_patterns, 2);

  assert_int_equal(reparse(&c, PII("{\"name\":\"NEW\",\"pattern\":\"n\"}")), 0);
  assert_int_equal(c.capture.n_pii_patterns, 1);
  assert_string_equal(c.capture.pii_patterns[0].name, "NEW");
  /* a name used by the old list is fine: the old list is gone */
  assert_int_equal(reparse(&c, PII("{\"name\":\"TICKET\",\"pattern\":\"t\"}")), 0);
  assert_string_equal(c.capture.pii_patterns[0].name, "TICKET");

  assert_int_equal(reparse(&c, PII("")), 0);
  assert_int_equal(c.capture.n_pii_patterns, 0);
  assert_null(c.capture.pii_patterns);

  /* client keys replaced: the new list's keys default to captured again */
  assert_int_equal(c.client_keys[0].capture, 0);
  assert_int_equal(reparse(&c, KEY("")), 0);
  assert_int_equal(c.n_client_keys, 1);
  assert_int_equal(c.client_keys[0].capture, 1);
  sy_config_free(&c);
}

/* Failures half way through a pattern list, after a list was already
 * installed, and in a later key: sy_config_free() still frees everything
 * (the ASan build reports any leak). */
static void test_partial_free(void **state) {
  (void)state;
  sy_config c;
  expect_msg(parse(&c, PII("{\"name\":\"A\",\"pattern\":\"a\"},{\"name\":\"B\",\"pattern\":\"b\"},"
                           "{\"name\":\"C\"}")),
             SY_ECONFIG, "capture.pii_patterns[2].pattern: required", "missing pattern");
  assert_int_equal(c.capture.n_pii_patterns, 3);
  assert_string_equal(c.capture.pii_patterns[2].name, "C");
  sy_config_free(&c);

  expect_msg(parse(&c, PII("{\"name\":\"A\",\"pattern\":\"a\"},{\"pattern\":\"b\",\"name\":\"bad\"}")),
             SY_ECONFIG, "capture.pii_patterns[1].name: must match", "bad name after pattern");
  sy_config_free(&c);

  assert_int_equal(parse(&c, FULL), 0);
  expect_msg(reparse(&c, "{\"capture\":{\"pii_patterns\":[{\"name\":\"X\",\"pattern\":\"x\"}],"
                         "\"flush_ms\":0}}"),
             SY_ECONFIG, "capture.flush_ms: must be an integer between 1 and 10000", "later key");
  assert_int_equal(c.capture.n_pii_patterns, 1);
  sy_config_free(&c);

  expect_msg(parse(&c, "{\"capture\":{\"pii_patterns\":[{\"name\":\"X\",\"pattern\":\"x\"}]},"
                       "\"client_keys\":[{\"name\":\"k\",\"sha256\":\"" HASH_A "\","
                       "\"capture\":false},{\"name\":\"j\",\"capture\":1}]}"),
             SY_ECONFIG, "client_keys[1].capture: must be true or false", "key capture");
  sy_config_free(&c);
}

static void test_flags(void **state) {
  (void)state;
  char path[64];
  snprintf(path, sizeof path, "/tmp/sy_config_cap_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, FULL, strlen(FULL)), (ssize_t)strlen(FULL));
  close(fd);

  sy_config c;
  sy_config_init(&c);
  assert_int_equal(apply(&c, "--no-capture", "--capture-durability", "nosync", NULL), 0);
  assert_int_equal(c.capture.enabled, 0);
  assert_int_equal(c.capture.durability, SY_CAPTURE_NOSYNC);
  assert_int_equal(c.capture.queue_size, 65536);  /* the rest untouched */
  sy_config_free(&c);

  /* the flag wins over the file wherever --config stands */
  sy_config_init(&c);
  assert_int_equal(apply(&c, "--capture-durability=sync", "--config", path, NULL), 0);
  assert_int_equal(c.capture.durability, SY_CAPTURE_SYNC);
  assert_int_equal(c.capture.enabled, 0);  /* from the file */
  assert_int_equal(c.capture.n_pii_patterns, 2);
  sy_config_free(&c);

  sy_config_init(&c);
  assert_int_equal(apply(&c, "--capture-durability", "nosync", "--capture-durability",
                         "nometasync", NULL),
                   0);
  assert_int_equal(c.capture.durability, SY_CAPTURE_NOMETASYNC);  /* later flag wins */
  assert_int_equal(c.capture.enabled, 1);
  sy_config_free(&c);
  unlink(path);

  static const struct {
    const char *a, *b;
    const char *msg;
  } bad[] = {
      {"--capture-durability", "fast",
       "--capture-durability: must be one of sync, nometasync, nosync"},
      {"--capture-durability=NOSYNC", NULL, "--capture-durability: must be one of"},
      {"--capture-durability=", NULL, "--capture-durability: must be one of"},
      {"--capture-durability", NULL, "--capture-durability: missing value"},
      {"--capture-durability", "--no-capture", "--capture-durability: missing value"},
      {"--no-capture=1", NULL, "--no-capture: takes no value"},
      {"--no-captures", NULL, "--no-captures: unknown option"},
      {"--capture", NULL, "--capture: unknown option"},
      {"--no-capture", "yes", "unexpected argument \"yes\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sy_config_init(&c);
    char what[128];
    snprintf(what, sizeof what, "flag case %zu (%s)", i, bad[i].a);
    expect_msg(apply(&c, bad[i].a, bad[i].b, NULL), SY_ECONFIG, bad[i].msg, what);
    assert_int_equal(c.capture.enabled, 1);  /* checked before anything is applied */
    sy_config_free(&c);
  }
}

static void test_usage(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sy_config_usage(f);
  fclose(f);
  static const char *want[] = {"--no-capture", "--capture-durability MODE",
                               "sync, nometasync or nosync", "--no-auth", "-h, --help"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(text, want[i])) fail_msg("usage lacks \"%s\"", want[i]);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),      cmocka_unit_test(test_full),
      cmocka_unit_test(test_durability_values), cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_rejects),       cmocka_unit_test(test_pattern_limits),
      cmocka_unit_test(test_layered),       cmocka_unit_test(test_partial_free),
      cmocka_unit_test(test_flags),         cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
