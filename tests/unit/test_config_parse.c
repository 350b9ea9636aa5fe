/* Tests for gateway/config: the JSON file, the flags, the final checks and
 * the key hash. Every rejection is checked by return code and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "gateway/config.h"

#define HASH_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HASH_2_TAIL "000000000000000000000000000000000000000000000000000000000000001"
#define HASH_2 "0000000000000000000000000000000000000000000000000000000000000001"

static char errbuf[1024];

/* Parses into a fresh config; the caller frees it. */
static int parse(sy_config *c, const char *json) {
  sy_config_init(c);
  errbuf[0] = '\0';
  return sy_config_parse(c, json, strlen(json), errbuf, sizeof errbuf);
}

static void expect_msg(int rc, int want_rc, const char *want, const char *what) {
  if (rc != want_rc || strstr(errbuf, want) == NULL)
    fail_msg("%s: rc %d (want %d), message \"%s\" (want \"%s\")", what, rc, want_rc, errbuf,
             want);
}

/* Writes text to a fresh temp file; returns its path (static buffer per call site). */
static void write_temp(char path[64], const char *text, size_t len) {
  snprintf(path, 64, "/tmp/sy_config_test_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
}

static const char FULL[] =
    "{\n"
    "  \"listen\": \"0.0.0.0:9090\",\n"
    "  \"workers\": 4,\n"
    "  \"data_dir\": \"/var/lib/switchyard\",\n"
    "  \"log_level\": \"debug\",\n"
    "  \"auth\": true,\n"
    "  \"default_upstream\": \"tuned\",\n"
    "  \"upstreams\": [\n"
    "    {\"name\": \"openai\", \"base_url\": \"https://api.openai.com/v1/\",\n"
    "     \"api_key_env\": \"OPENAI_API_KEY\", \"connect_timeout_ms\": 3000,\n"
    "     \"timeout_ms\": 120000, \"max_connections\": 100},\n"
    "    {\"name\": \"tuned\", \"base_url\": \"HTTP://10.0.0.5:8000//\", \"api_key_env\": null}\n"
    "  ],\n"
    "  \"client_keys\": [\n"
    "    {\"name\": \"app1\", \"sha256\": \"" HASH_ABC "\"},\n"
    "    {\"name\": \"app.2\", \"sha256\": \"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AE\"}\n"
    "  ],\n"
    "  \"limits\": {\"max_header_bytes\": 32768, \"max_body_bytes\": 1048576,\n"
    "             \"max_connections\": 500, \"idle_timeout_ms\": 30000,\n"
    "             \"header_timeout_ms\": 5000, \"body_timeout_ms\": 20000,\n"
    "             \"drain_timeout_ms\": 0},\n"
    "  \"routes\": [ {\"name\": \"support-bot\", \"arms\": [ 1, 2.5, \"x\" ] } ]\n"
    "}\n";

static void test_full_roundtrip(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, FULL), 0);
  assert_string_equal(c.listen_host, "0.0.0.0");
  assert_int_equal(c.listen_port, 9090);
  assert_int_equal(c.workers, 4);
  assert_string_equal(c.data_dir, "/var/lib/switchyard");
  assert_string_equal(c.log_level, "debug");
  assert_int_equal(c.auth, 1);
  assert_string_equal(c.default_upstream_name, "tuned");
  assert_int_equal(c.n_upstreams, 2);
  const sy_upstream_conf *a = &c.upstreams[0], *b = &c.upstreams[1];
  assert_string_equal(a->name, "openai");
  assert_string_equal(a->base_url, "https://api.openai.com/v1");
  assert_int_equal(a->https, 1);
  assert_string_equal(a->api_key_env, "OPENAI_API_KEY");
  assert_null(a->api_key);
  assert_int_equal(a->connect_timeout_ms, 3000);
  assert_int_equal(a->timeout_ms, 120000);
  assert_int_equal(a->max_connections, 100);
  assert_string_equal(b->name, "tuned");
  assert_string_equal(b->base_url, "HTTP://10.0.0.5:8000");
  assert_int_equal(b->https, 0);
  assert_null(b->api_key_env);
  assert_int_equal(b->connect_timeout_ms, SY_DEFAULT_CONNECT_TIMEOUT_MS);
  assert_int_equal(b->timeout_ms, SY_DEFAULT_UPSTREAM_TIMEOUT_MS);
  assert_int_equal(b->max_connections, SY_DEFAULT_UPSTREAM_MAX_CONNS);
  assert_ptr_equal(sy_config_upstream(&c, "tuned"), b);
  assert_null(sy_config_upstream(&c, "nope"));
  assert_int_equal(c.n_client_keys, 2);
  assert_string_equal(c.client_keys[0].name, "app1");
  unsigned char abc[32];
  sy_hash_key("abc", 3, abc);
  assert_memory_equal(c.client_keys[0].sha256, abc, 32);
  assert_string_equal(c.client_keys[1].name, "app.2");
  assert_int_equal(c.client_keys[1].sha256[0], 0xba);
  assert_int_equal(c.client_keys[1].sha256[31], 0xae);
  assert_int_equal(c.limits.max_header_bytes, 32768);
  assert_int_equal(c.limits.max_body_bytes, 1048576);
  assert_int_equal(c.limits.max_connections, 500);
  assert_int_equal(c.limits.idle_timeout_ms, 30000);
  assert_int_equal(c.limits.header_timeout_ms, 5000);
  assert_int_equal(c.limits.body_timeout_ms, 20000);
  assert_int_equal(c.limits.drain_timeout_ms, 0);
  assert_string_equal(c.routes_json, "[{\"name\":\"support-bot\",\"arms\":[1,2.5,\"x\"]}]");
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_int_equal(c.default_upstream, 1);
  assert_int_equal(c.workers, 4);
  sy_config_free(&c);
  assert_null(c.upstreams);
}

static void check_defaults(const sy_config *c) {
  assert_string_equal(c->listen_host, SY_DEFAULT_LISTEN_HOST);
  assert_int_equal(c->listen_port, SY_DEFAULT_LISTEN_PORT);
  assert_int_equal(c->workers, 0);
  assert_string_equal(c->data_dir, SY_DEFAULT_DATA_DIR);
  assert_string_equal(c->log_level, "info");
  assert_int_equal(c->auth, 1);
  assert_int_equal(c->n_upstreams, 0);
  assert_int_equal(c->n_client_keys, 0);
  assert_null(c->routes_json);
  assert_null(c->default_upstream_name);
  assert_int_equal(c->limits.max_header_bytes, SY_DEFAULT_MAX_HEADER_BYTES);
  assert_int_equal(c->limits.max_body_bytes, SY_DEFAULT_MAX_BODY_BYTES);
  assert_int_equal(c->limits.max_connections, SY_DEFAULT_MAX_CONNECTIONS);
  assert_int_equal(c->limits.idle_timeout_ms, SY_DEFAULT_IDLE_TIMEOUT_MS);
  assert_int_equal(c->limits.header_timeout_ms, SY_DEFAULT_HEADER_TIMEOUT_MS);
  assert_int_equal(c->limits.body_timeout_ms, SY_DEFAULT_BODY_TIMEOUT_MS);
  assert_int_equal(c->limits.drain_timeout_ms, SY_DEFAULT_DRAIN_TIMEOUT_MS);
}

static void test_defaults(void **state) {
  (void)state;
  sy_config c;
  sy_config_init(&c);
  check_defaults(&c);
  sy_config_free(&c);
  assert_int_equal(parse(&c, " {\n} \n"), 0);
  check_defaults(&c);
  sy_config_free(&c);
}

static void test_accepted_forms(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, "{\"listen\":\"[::1]:0\"}"), 0);
  assert_string_equal(c.listen_host, "::1");
  assert_int_equal(c.listen_port, 0);
  sy_config_free(&c);
  assert_int_equal(parse(&c, "{\"listen\":\"localhost:65535\",\"workers\":1e1}"), 0);
  assert_string_equal(c.listen_host, "127.0.0.1");
  assert_int_equal(c.listen_port, 65535);
  assert_int_equal(c.workers, 10);
  sy_config_free(&c);
  /* an escaped backslash followed by the text u0000 is not a NUL escape */
  assert_int_equal(parse(&c, "{\"data_dir\":\"a\\\\u0000\"}"), 0);
  assert_string_equal(c.data_dir, "a\\u0000");
  sy_config_free(&c);
  /* range edges are inclusive */
  assert_int_equal(parse(&c, "{\"workers\":64,\"limits\":{\"max_body_bytes\":1073741824,"
                             "\"max_header_bytes\":1024,\"drain_timeout_ms\":600000}}"),
                   0);
  assert_int_equal(c.workers, 64);
  assert_int_equal(c.limits.max_body_bytes, 1073741824);
  assert_int_equal(c.limits.max_header_bytes, 1024);
  sy_config_free(&c);
}

/* Keys present override; the rest stays as the earlier layer left it. */
static void test_layered_parse(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, FULL), 0);
  const char *second = "{\"limits\":{\"max_body_bytes\":4096},\"workers\":2,"
                       "\"upstreams\":[{\"name\":\"solo\",\"base_url\":\"http://h\"}]}";
  assert_int_equal(sy_config_parse(&c, second, strlen(second), errbuf, sizeof errbuf), 0);
  assert_int_equal(c.limits.max_body_bytes, 4096);
  assert_int_equal(c.limits.max_header_bytes, 32768);
  assert_int_equal(c.workers, 2);
  assert_int_equal(c.n_upstreams, 1);
  assert_string_equal(c.upstreams[0].name, "solo");
  assert_int_equal(c.n_client_keys, 2);
  sy_config_free(&c);
}

typedef struct reject_case {
  const char *json;
  const char *msg;
} reject_case;

static const reject_case rejects[] = {
    {"{\"frobnicate\":1}", "frobnicate: unknown key"},
    {"{\"Listen\":\"1.2.3.4:5\"}", "Listen: unknown key"},
    {"{\"a\\u0001b\":1}", "a?b: unknown key"},
    {"{\"workers\":1,\"workers\":2}", "workers: duplicate key"},
    {"{\"listen\":8080}", "listen: must be a string"},
    {"{\"listen\":\"8080\"}", "listen: expected HOST:PORT"},
    {"{\"listen\":\":8080\"}", "listen: expected HOST:PORT"},
    {"{\"listen\":\"127.0.0.1:\"}", "listen: port must be a number between 0 and 65535"},
    {"{\"listen\":\"127.0.0.1:65536\"}", "listen: port must be"},
    {"{\"listen\":\"127.0.0.1:-1\"}", "listen: port must be"},
    {"{\"listen\":\"127.0.0.1:80x\"}", "listen: port must be"},
    {"{\"listen\":\"::1:8080\"}", "listen: an IPv6 host goes in brackets"},
    {"{\"listen\":\"[::1]8080\"}", "listen: expected [IPV6]:PORT"},
    {"{\"listen\":\"[zz::1]:80\"}", "listen: \"zz::1\" is not an IPv6 address"},
    {"{\"listen\":\"example.com:80\"}", "listen: host \"example.com\" must be an IPv4"},
    {"{\"listen\":\"256.1.1.1:80\"}", "must be an IPv4 address"},
    {"{\"workers\":\"4\"}", "workers: must be an integer between 0 and 64"},
    {"{\"workers\":1.5}", "workers: must be an integer between 0 and 64"},
    {"{\"workers\":-1}", "workers: must be an integer"},
    {"{\"workers\":65}", "workers: must be an integer"},
    {"{\"workers\":true}", "workers: must be an integer"},
    {"{\"workers\":1e400}", "workers: must be an integer"},
    {"{\"workers\":99999999999999999999999}", "workers: must be an integer"},
    {"{\"data_dir\":\"\"}", "data_dir: must be a path of 1 to 4095 bytes"},
    {"{\"data_dir\":\"a\\nb\"}", "data_dir: must not contain control characters"},
    {"{\"data_dir\":null}", "data_dir: must be a string"},
    {"{\"log_level\":\"verbose\"}", "log_level: must be one of debug, info, warn, error"},
    {"{\"log_level\":[]}", "log_level: must be a string"},
    {"{\"auth\":\"false\"}", "auth: must be true or false"},
    {"{\"auth\":0}", "auth: must be true or false"},
    {"{\"default_upstream\":\"bad name\"}", "default_upstream: must be 1 to 63 characters"},
    {"{\"upstreams\":{}}", "upstreams: must be an array"},
    {"{\"upstreams\":[1]}", "upstreams[0]: must be an object"},
    {"{\"upstreams\":[{\"base_url\":\"http://a\"}]}", "upstreams[0].name: required"},
    {"{\"upstreams\":[{\"name\":\"a\"}]}", "upstreams[0].base_url: required"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\"},"
     "{\"name\":\"a\",\"base_url\":\"http://b\"}]}",
     "upstreams[1].name: duplicate name \"a\""},
    {"{\"upstreams\":[{\"name\":\"a/b\",\"base_url\":\"http://a\"}]}",
     "upstreams[0].name: must be 1 to 63 characters"},
    {"{\"upstreams\":[{\"name\":\"\",\"base_url\":\"http://a\"}]}", "upstreams[0].name: must be"},
    {"{\"upstreams\":[{\"name\":\"a123456789b123456789c123456789d123456789e123456789f123456789"
     "abcd\",\"base_url\":\"http://a\"}]}",
     "upstreams[0].name: must be 1 to 63"},
    {"{\"upstreams\":[{\"name\":\"a\",\"name\":\"b\",\"base_url\":\"http://a\"}]}",
     "upstreams[0].name: duplicate key"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"ftp://a\"}]}",
     "upstreams[0].base_url: must start with http:// or https://"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a b\"}]}",
     "upstreams[0].base_url: must not contain spaces or control characters"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\\tb\"}]}",
     "must not contain spaces or control characters"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"https://\"}]}",
     "upstreams[0].base_url: missing host"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http:///v1\"}]}", "missing host"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a/v1?x=1\"}]}",
     "upstreams[0].base_url: must not contain a query or fragment"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":7}]}", "upstreams[0].base_url: must be a string"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"api_key_env\":\"1KEY\"}]}",
     "upstreams[0].api_key_env: must be an environment variable name"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"api_key_env\":\"A-B\"}]}",
     "upstreams[0].api_key_env: must be an environment variable name"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"api_key_env\":5}]}",
     "upstreams[0].api_key_env: must be a string"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"connect_timeout_ms\":0}]}",
     "upstreams[0].connect_timeout_ms: must be an integer between 1 and 300000"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"timeout_ms\":86400001}]}",
     "upstreams[0].timeout_ms: must be an integer between 1 and 86400000"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"max_connections\":0.5}]}",
     "upstreams[0].max_connections: must be an integer between 1 and 65536"},
    {"{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"urls\":[]}]}",
     "upstreams[0].urls: unknown key"},
    {"{\"client_keys\":{}}", "client_keys: must be an array"},
    {"{\"client_keys\":[\"k\"]}", "client_keys[0]: must be an object"},
    {"{\"client_keys\":[{\"name\":\"a\",\"sha256\":\"abc\"}]}",
     "client_keys[0].sha256: must be 64 hex characters"},
    {"{\"client_keys\":[{\"name\":\"a\",\"sha256\":\"" HASH_ABC "0\"}]}",
     "client_keys[0].sha256: must be 64 hex characters"},
    {"{\"client_keys\":[{\"name\":\"a\",\"sha256\":\"g" HASH_2_TAIL "\"}]}",
     "client_keys[0].sha256: must be 64 hex characters"},
    {"{\"client_keys\":[{\"name\":\"a\",\"sha256\":1}]}", "client_keys[0].sha256: must be a string"},
    {"{\"client_keys\":[{\"name\":\"a\"}]}", "client_keys[0].sha256: required"},
    {"{\"client_keys\":[{\"sha256\":\"" HASH_ABC "\"}]}", "client_keys[0].name: required"},
    {"{\"client_keys\":[{\"name\":\"a b\",\"sha256\":\"" HASH_ABC "\"}]}",
     "client_keys[0].name: must be 1 to 63"},
    {"{\"client_keys\":[{\"name\":\"app\",\"sha256\":\"" HASH_ABC "\"},"
     "{\"name\":\"app\",\"sha256\":\"" HASH_2 "\"}]}",
     "client_keys[1].name: duplicate name \"app\""},
    {"{\"client_keys\":[{\"name\":\"a\",\"sha256\":\"" HASH_ABC "\"},"
     "{\"name\":\"b\",\"sha256\":\"" HASH_ABC "\"}]}",
     "client_keys[1].sha256: same key as client_keys[0]"},
    {"{\"client_keys\":[{\"name\":\"a\",\"key\":\"secret\"}]}", "client_keys[0].key: unknown key"},
    {"{\"limits\":[]}", "limits: must be an object"},
    {"{\"limits\":{\"max_body_bytes\":100}}",
     "limits.max_body_bytes: must be an integer between 1024 and 1073741824"},
    {"{\"limits\":{\"max_body_bytes\":1073741825}}", "limits.max_body_bytes: must be an integer"},
    {"{\"limits\":{\"max_header_bytes\":2e6}}",
     "limits.max_header_bytes: must be an integer between 1024 and 1048576"},
    {"{\"limits\":{\"max_connections\":0}}",
     "limits.max_connections: must be an integer between 1 and 1000000"},
    {"{\"limits\":{\"idle_timeout_ms\":99}}",
     "limits.idle_timeout_ms: must be an integer between 100 and 3600000"},
    {"{\"limits\":{\"header_timeout_ms\":600001}}",
     "limits.header_timeout_ms: must be an integer between 100 and 600000"},
    {"{\"limits\":{\"body_timeout_ms\":\"60000\"}}",
     "limits.body_timeout_ms: must be an integer between 100 and 3600000"},
    {"{\"limits\":{\"drain_timeout_ms\":-5}}",
     "limits.drain_timeout_ms: must be an integer between 0 and 600000"},
    {"{\"limits\":{\"max_bodybytes\":1}}", "limits.max_bodybytes: unknown key"},
    {"{\"limits\":{\"max_connections\":5,\"max_connections\":6}}",
     "limits.max_connections: duplicate key"},
    {"{\"routes\":{}}", "routes: must be an array"},
    {"{\"routes\":\"[]\"}", "routes: must be an array"},
    {"{\n\"workers\": 1,\n\"listen\" \"x\"\n}", "(root): invalid JSON near line 3"},
    {"{\"workers\": 1", "(root): invalid JSON near line 1"},
    {"{\"auth\":tru}", "(root): invalid JSON"},
    {"{\"a\":1,}", "(root): invalid JSON"},
    {"[]", "(root): must be a JSON object"},
    {"\"str\"", "(root): must be a JSON object"},
    {"42", "(root): must be a JSON object"},
    {"null", "(root): must be a JSON object"},
    {"", "(root): empty, expected a JSON object"},
    {"  \n\t ", "(root): empty"},
    {"{} x", "(root): unexpected text after the JSON value at line 1, column 4"},
    {"{}\n{}", "(root): unexpected text after the JSON value at line 2"},
    {"{\"data_dir\":\"a\\u0000b\"}", "(root): \\u0000 escape at line 1, column 15"},
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

/* Generated inputs too big to write out. */
static void test_rejects_generated(void **state) {
  (void)state;
  sy_config c;
  char *big = malloc(SY_CONFIG_MAX_FILE_BYTES + 2);
  assert_non_null(big);

  /* nesting: just over our limit, and far past cJSON's own 1000 */
  size_t depths[] = {65, 5000};
  for (size_t d = 0; d < 2; d++) {
    size_t n = 0;
    n += (size_t)sprintf(big + n, "{\"routes\":");
    for (size_t i = 0; i < depths[d]; i++) big[n++] = '[';
    for (size_t i = 0; i < depths[d]; i++) big[n++] = ']';
    big[n++] = '}';
    big[n] = '\0';
    expect_msg(parse(&c, big), SY_ECONFIG, "(root): nesting deeper than 64 levels", "deep");
    sy_config_free(&c);
  }
  /* 63 levels inside the root object (64 in all) is fine */
  {
    size_t n = (size_t)sprintf(big, "{\"routes\":");
    for (size_t i = 0; i < 63; i++) big[n++] = '[';
    for (size_t i = 0; i < 63; i++) big[n++] = ']';
    memcpy(big + n, "}", 2);
    assert_int_equal(parse(&c, big), 0);
    assert_int_equal(strlen(c.routes_json), 126);
    sy_config_free(&c);
  }
  /* a number with 400 digits */
  {
    size_t n = (size_t)sprintf(big, "{\"workers\":");
    for (size_t i = 0; i < 400; i++) big[n++] = '9';
    memcpy(big + n, "}", 2);
    expect_msg(parse(&c, big), SY_ECONFIG, "", "400 digits");
    assert_true(strstr(errbuf, "invalid JSON") || strstr(errbuf, "workers: must be"));
    sy_config_free(&c);
  }
  /* a base URL past 2048 bytes */
  {
    size_t n = (size_t)sprintf(big, "{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://h/");
    memset(big + n, 'p', 2100);
    n += 2100;
    memcpy(big + n, "\"}]}", 5);
    expect_msg(parse(&c, big), SY_ECONFIG, "upstreams[0].base_url: longer than 2048 bytes",
               "long url");
    sy_config_free(&c);
  }
  /* 65 upstreams */
  {
    size_t n = (size_t)sprintf(big, "{\"upstreams\":[");
    for (int i = 0; i < 65; i++)
      n += (size_t)sprintf(big + n, "%s{\"name\":\"u%d\",\"base_url\":\"http://h\"}",
                           i ? "," : "", i);
    memcpy(big + n, "]}", 3);
    expect_msg(parse(&c, big), SY_ECONFIG, "upstreams: at most 64 upstreams", "65 upstreams");
    sy_config_free(&c);
  }
  /* NUL in the middle, with an explicit length */
  {
    static const char nul[] = "{\"workers\":1,\n \0\"listen\":\"1.2.3.4:5\"}";
    sy_config_init(&c);
    int rc = sy_config_parse(&c, nul, sizeof nul - 1, errbuf, sizeof errbuf);
    expect_msg(rc, SY_ECONFIG, "(root): NUL byte at line 2, column 2", "NUL");
    /* trailing NUL counted in the length is still a NUL */
    rc = sy_config_parse(&c, "{}", 3, errbuf, sizeof errbuf);
    expect_msg(rc, SY_ECONFIG, "NUL byte", "trailing NUL");
    sy_config_free(&c);
  }
  /* over the size cap: rejected by length before any parsing */
  {
    memset(big, ' ', SY_CONFIG_MAX_FILE_BYTES + 1);
    big[0] = '{';
    big[SY_CONFIG_MAX_FILE_BYTES] = '}';
    sy_config_init(&c);
    int rc = sy_config_parse(&c, big, SY_CONFIG_MAX_FILE_BYTES + 1, errbuf, sizeof errbuf);
    expect_msg(rc, SY_ECONFIG, "(root): larger than 4194304 bytes", "size cap");
    /* exactly at the cap is fine */
    big[SY_CONFIG_MAX_FILE_BYTES - 1] = '}';
    rc = sy_config_parse(&c, big, SY_CONFIG_MAX_FILE_BYTES, errbuf, sizeof errbuf);
    assert_int_equal(rc, 0);
    sy_config_free(&c);
  }
  free(big);
}

/* A config that fails half way still frees cleanly (ASan checks the leak). */
static void test_partial_free(void **state) {
  (void)state;
  sy_config c;
  const char *j =
      "{\"listen\":\"0.0.0.0:1\",\"routes\":[1],\"default_upstream\":\"a\","
      "\"client_keys\":[{\"name\":\"k\",\"sha256\":\"" HASH_ABC "\"},{\"name\":\"k2\"}],"
      "\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"api_key_env\":\"X\"},"
      "{\"name\":\"b\",\"api_key_env\":\"Y\",\"base_url\":\"ftp://\"}]}";
  expect_msg(parse(&c, j), SY_ECONFIG, "client_keys[1].sha256: required", "partial 1");
  assert_string_equal(c.listen_host, "0.0.0.0");
  sy_config_free(&c);
  const char *j2 =
      "{\"routes\":[1],\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\","
      "\"api_key_env\":\"X\"},{\"name\":\"b\",\"api_key_env\":\"Y\",\"base_url\":\"ftp://\"}]}";
  expect_msg(parse(&c, j2), SY_ECONFIG, "upstreams[1].base_url: must start", "partial 2");
  assert_true(c.n_upstreams >= 1);
  sy_config_free(&c);
}

static void test_load_file(void **state) {
  (void)state;
  sy_config c;
  char path[64], dir[64];
  write_temp(path, FULL, strlen(FULL));
  sy_config_init(&c);
  assert_int_equal(sy_config_load_file(&c, path, errbuf, sizeof errbuf), 0);
  assert_int_equal(c.n_upstreams, 2);
  sy_config_free(&c);
  unlink(path);

  const char *bad = "{\n\n  \"workers\": 1,,\n}";
  write_temp(path, bad, strlen(bad));
  sy_config_init(&c);
  expect_msg(sy_config_load_file(&c, path, errbuf, sizeof errbuf), SY_ECONFIG,
             "(root): invalid JSON near line 3", "file syntax");
  assert_non_null(strstr(errbuf, path));
  sy_config_free(&c);
  unlink(path);

  char *big = malloc(SY_CONFIG_MAX_FILE_BYTES + 1);
  assert_non_null(big);
  memset(big, ' ', SY_CONFIG_MAX_FILE_BYTES + 1);
  write_temp(path, big, SY_CONFIG_MAX_FILE_BYTES + 1);
  free(big);
  sy_config_init(&c);
  expect_msg(sy_config_load_file(&c, path, errbuf, sizeof errbuf), SY_ECONFIG,
             "larger than 4194304 bytes", "file too big");
  assert_non_null(strstr(errbuf, path));
  sy_config_free(&c);
  unlink(path);

  write_temp(path, "", 0);
  sy_config_init(&c);
  expect_msg(sy_config_load_file(&c, path, errbuf, sizeof errbuf), SY_ECONFIG,
             "(root): empty", "empty file");
  sy_config_free(&c);
  unlink(path);

  sy_config_init(&c);
  expect_msg(sy_config_load_file(&c, "/nonexistent/sy.json", errbuf, sizeof errbuf),
             SY_ECONFIG, "/nonexistent/sy.json: cannot open", "missing file");
  snprintf(dir, sizeof dir, "/tmp/sy_config_dir_XXXXXX");
  assert_non_null(mkdtemp(dir));
  expect_msg(sy_config_load_file(&c, dir, errbuf, sizeof errbuf), SY_ECONFIG, "cannot",
             "directory");
  assert_non_null(strstr(errbuf, dir));
  rmdir(dir);
  sy_config_free(&c);
}

/* ---- flags ---- */

static int apply(sy_config *c, int *help, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, help);
  argv[argc++] = "switchyard";
  for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  errbuf[0] = '\0';
  return sy_config_apply_args(c, argc, argv, help, errbuf, sizeof errbuf);
}

static void test_flags_override_file(void **state) {
  (void)state;
  char path[64];
  write_temp(path, FULL, strlen(FULL));
  sy_config c;
  sy_config_init(&c);
  int help = 0;
  /* --workers comes before --config on the line, yet still wins */
  int rc = apply(&c, &help, "--workers", "3", "--config", path, "--listen=[::1]:9000",
                 "--max-body-bytes=2048", "--no-auth", "--upstream-timeout-ms", "1234",
                 "--upstream-connect-timeout-ms=77", "--upstream-max-connections", "9",
                 "--upstream-url", "https://tuned.example/v2/", "--upstream-key-env",
                 "TUNED_KEY", "--max-header-bytes", "4096", "--max-connections", "12",
                 "--idle-timeout-ms", "1000", "--header-timeout-ms=2000", "--body-timeout-ms",
                 "3000", "--drain-timeout-ms", "0", "--log-level", "warn", "--data-dir",
                 "/srv/sy", NULL);
  assert_int_equal(rc, 0);
  assert_int_equal(help, 0);
  assert_int_equal(c.workers, 3);
  assert_string_equal(c.listen_host, "::1");
  assert_int_equal(c.listen_port, 9000);
  assert_int_equal(c.auth, 0);
  assert_string_equal(c.log_level, "warn");
  assert_string_equal(c.data_dir, "/srv/sy");
  assert_int_equal(c.limits.max_body_bytes, 2048);
  assert_int_equal(c.limits.max_header_bytes, 4096);
  assert_int_equal(c.limits.max_connections, 12);
  assert_int_equal(c.limits.idle_timeout_ms, 1000);
  assert_int_equal(c.limits.header_timeout_ms, 2000);
  assert_int_equal(c.limits.body_timeout_ms, 3000);
  assert_int_equal(c.limits.drain_timeout_ms, 0);
  /* the --upstream-* flags change the upstream "default_upstream" names */
  const sy_upstream_conf *t = sy_config_upstream(&c, "tuned"), *o = sy_config_upstream(&c, "openai");
  assert_int_equal(t->timeout_ms, 1234);
  assert_int_equal(t->connect_timeout_ms, 77);
  assert_int_equal(t->max_connections, 9);
  assert_string_equal(t->base_url, "https://tuned.example/v2");
  assert_int_equal(t->https, 1);
  assert_string_equal(t->api_key_env, "TUNED_KEY");
  assert_int_equal(o->timeout_ms, 120000);
  assert_string_equal(o->base_url, "https://api.openai.com/v1");
  /* untouched file values survive */
  assert_int_equal(c.n_client_keys, 2);
  assert_non_null(c.routes_json);
  sy_config_free(&c);
  unlink(path);
}

static void test_flags_first_upstream_and_order(void **state) {
  (void)state;
  char path[64];
  const char *j = "{\"workers\":2,\"upstreams\":[{\"name\":\"x\",\"base_url\":\"http://x\"},"
                  "{\"name\":\"y\",\"base_url\":\"http://y\"}]}";
  write_temp(path, j, strlen(j));
  sy_config c;
  sy_config_init(&c);
  int rc = apply(&c, NULL, "--upstream-url=http://z", "--workers", "5", "--workers=6",
                 "--config", path, NULL);
  assert_int_equal(rc, 0);
  assert_string_equal(c.upstreams[0].base_url, "http://z");  /* no default_upstream: first */
  assert_string_equal(c.upstreams[1].base_url, "http://y");
  assert_int_equal(c.workers, 6);  /* later flag wins */
  sy_config_free(&c);
  unlink(path);
}

static void test_flags_create_default_upstream(void **state) {
  (void)state;
  sy_config c;
  sy_config_init(&c);
  int rc = apply(&c, NULL, "--upstream-key-env", "SY_TEST_NOPE", "--upstream-url",
                 "http://127.0.0.1:9999/v1/", "--no-auth", NULL);
  assert_int_equal(rc, 0);
  assert_int_equal(c.n_upstreams, 1);
  assert_string_equal(c.upstreams[0].name, "default");
  assert_string_equal(c.upstreams[0].base_url, "http://127.0.0.1:9999/v1");
  assert_string_equal(c.upstreams[0].api_key_env, "SY_TEST_NOPE");
  assert_int_equal(c.upstreams[0].timeout_ms, SY_DEFAULT_UPSTREAM_TIMEOUT_MS);
  unsetenv("SY_TEST_NOPE");
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_null(c.upstreams[0].api_key);
  sy_config_free(&c);

  /* a timeout flag alone makes the upstream but finish wants its URL */
  sy_config_init(&c);
  assert_int_equal(apply(&c, NULL, "--upstream-timeout-ms=5", "--no-auth", NULL), 0);
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "upstreams[0].base_url: required (or --upstream-url)", "no url");
  sy_config_free(&c);
}

static void test_help(void **state) {
  (void)state;
  sy_config c;
  sy_config_init(&c);
  int help = 0;
  assert_int_equal(apply(&c, &help, "--workers", "x", "--config", "/nonexistent", "-h", NULL),
                   0);
  assert_int_equal(help, 1);
  help = 0;
  assert_int_equal(apply(&c, &help, "--help", NULL), 0);
  assert_int_equal(help, 1);
  assert_int_equal(c.workers, 0);  /* nothing applied */
  help = 0;
  assert_int_equal(apply(&c, &help, NULL), 0);
  assert_int_equal(help, 0);
  sy_config_free(&c);
}

typedef struct flag_case {
  const char *args[4];
  const char *msg;
} flag_case;

static const flag_case bad_flags[] = {
    {{"--bogus"}, "--bogus: unknown option"},
    {{"--bogus=1"}, "--bogus: unknown option"},
    {{"-x"}, "-x: unknown option"},
    {{"positional"}, "unexpected argument \"positional\""},
    {{"--workers"}, "--workers: missing value"},
    {{"--listen", "--workers", "2"}, "--listen: missing value"},
    {{"--workers", "abc"}, "--workers: expected an integer between 0 and 64, got \"abc\""},
    {{"--workers=-1"}, "--workers: expected an integer"},
    {{"--workers=65"}, "--workers: expected an integer"},
    {{"--workers", " 4"}, "--workers: expected an integer"},
    {{"--workers", "+4"}, "--workers: expected an integer"},
    {{"--workers="}, "--workers: expected an integer"},
    {{"--max-body-bytes=12"}, "--max-body-bytes: expected an integer between 1024 and 1073741824"},
    {{"--idle-timeout-ms", "99999999999999999999999"}, "--idle-timeout-ms: expected an integer"},
    {{"--upstream-timeout-ms", "1.5"}, "--upstream-timeout-ms: expected an integer between 1"},
    {{"--upstream-max-connections", "0"}, "--upstream-max-connections: expected an integer"},
    {{"--listen", "nope"}, "--listen: expected HOST:PORT"},
    {{"--listen=1.2.3.4:99999"}, "--listen: port must be"},
    {{"--no-auth=1"}, "--no-auth: takes no value"},
    {{"--help=yes"}, "--help: takes no value"},
    {{"--upstream-url", "ftp://x"}, "--upstream-url: must start with http:// or https://"},
    {{"--upstream-url", "http://a b"}, "--upstream-url: must not contain spaces"},
    {{"--upstream-key-env", "a-b"}, "--upstream-key-env: must be an environment variable name"},
    {{"--log-level", "loud"}, "--log-level: must be one of debug, info, warn, error"},
    {{"--data-dir="}, "--data-dir: must be a path"},
    {{"--config", "/nonexistent/x.json"}, "/nonexistent/x.json: cannot open"},
    {{"--config"}, "--config: missing value"},
};

static void test_bad_flags(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
    sy_config c;
    sy_config_init(&c);
    const char *const *a = bad_flags[i].args;
    int rc = apply(&c, NULL, a[0], a[1], a[2], a[3], NULL);
    char what[128];
    snprintf(what, sizeof what, "flag case %zu (%s)", i, a[0]);
    expect_msg(rc, SY_ECONFIG, bad_flags[i].msg, what);
    sy_config_free(&c);
  }
}

static void test_config_file_error_via_flag(void **state) {
  (void)state;
  char path[64];
  write_temp(path, "{\"workers\":100}", 15);
  sy_config c;
  sy_config_init(&c);
  expect_msg(apply(&c, NULL, "--config", path, NULL), SY_ECONFIG,
             "workers: must be an integer between 0 and 64", "file via flag");
  assert_non_null(strstr(errbuf, path));
  sy_config_free(&c);
  unlink(path);
}

static void test_usage_lists_every_flag(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sy_config_usage(f);
  fclose(f);
  static const char *flags[] = {
      "--config FILE", "--listen HOST:PORT", "--workers N", "--data-dir DIR",
      "--log-level LEVEL", "--no-auth", "--upstream-url URL", "--upstream-key-env NAME",
      "--upstream-timeout-ms N", "--upstream-connect-timeout-ms N",
      "--upstream-max-connections N", "--max-header-bytes N", "--max-body-bytes N",
      "--max-connections N", "--idle-timeout-ms N", "--header-timeout-ms N",
      "--body-timeout-ms N", "--drain-timeout-ms N", "--no-capture", "--capture-durability MODE",
      "-h, --help", "127.0.0.1:8080",
      "./switchyard-data", "default 8388608", "default 600000", "1024..1073741824"};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (!strstr(text, flags[i])) fail_msg("usage lacks \"%s\"", flags[i]);
  free(text);
}

/* ---- finish ---- */

static void test_finish(void **state) {
  (void)state;
  sy_config c;
  assert_int_equal(parse(&c, "{\"auth\":false}"), 0);
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "upstreams: at least one upstream is required (or --upstream-url)", "none");
  sy_config_free(&c);

  const char *two = "{\"auth\":false,\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\"},"
                    "{\"name\":\"b\",\"base_url\":\"http://b\"}]";
  char j[512];
  snprintf(j, sizeof j, "%s,\"default_upstream\":\"zzz\"}", two);
  assert_int_equal(parse(&c, j), 0);
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "default_upstream: no upstream is named \"zzz\"", "unknown default");
  sy_config_free(&c);

  snprintf(j, sizeof j, "%s}", two);
  assert_int_equal(parse(&c, j), 0);
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "default_upstream: required when there is more than one upstream", "ambiguous");
  sy_config_free(&c);

  assert_int_equal(parse(&c, "{\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\"}]}"), 0);
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "client_keys: auth is on but no client keys", "auth no keys");
  assert_non_null(strstr(errbuf, "--no-auth"));
  c.auth = 0;
  free(c.log_level);
  c.log_level = strdup("chatty");
  expect_msg(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG,
             "log_level: must be one of", "bad level");
  free(c.log_level);
  c.log_level = strdup("error");
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  assert_int_equal(c.workers, cpus < 1 ? 1 : cpus > SY_MAX_WORKERS ? SY_MAX_WORKERS : cpus);
  assert_int_equal(c.default_upstream, 0);
  sy_config_free(&c);
}

static void test_finish_env_keys(void **state) {
  (void)state;
  sy_config c;
  const char *j =
      "{\"default_upstream\":\"b\",\"client_keys\":[{\"name\":\"k\",\"sha256\":\"" HASH_ABC "\"}],"
      "\"upstreams\":[{\"name\":\"a\",\"base_url\":\"http://a\",\"api_key_env\":\"SY_CFG_TEST_A\"},"
      "{\"name\":\"b\",\"base_url\":\"http://b\",\"api_key_env\":\"SY_CFG_TEST_B\"},"
      "{\"name\":\"c\",\"base_url\":\"http://c\",\"api_key_env\":\"SY_CFG_TEST_C\"},"
      "{\"name\":\"mock\",\"base_url\":\"http://127.0.0.1:1\"}]}";
  setenv("SY_CFG_TEST_A", "sk-aaa", 1);
  unsetenv("SY_CFG_TEST_B");
  setenv("SY_CFG_TEST_C", "", 1);
  assert_int_equal(parse(&c, j), 0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_int_equal(c.default_upstream, 1);
  assert_string_equal(c.upstreams[0].api_key, "sk-aaa");
  assert_null(c.upstreams[1].api_key);
  assert_null(c.upstreams[2].api_key);
  assert_null(c.upstreams[3].api_key);
  /* finishing again re-reads the environment without leaking the old copy */
  setenv("SY_CFG_TEST_A", "sk-new", 1);
  setenv("SY_CFG_TEST_B", "sk-bbb", 1);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_string_equal(c.upstreams[0].api_key, "sk-new");
  assert_string_equal(c.upstreams[1].api_key, "sk-bbb");
  /* the returned key is a copy, not the environment's memory */
  assert_ptr_not_equal(c.upstreams[0].api_key, getenv("SY_CFG_TEST_A"));
  sy_config_free(&c);
  unsetenv("SY_CFG_TEST_A");
  unsetenv("SY_CFG_TEST_B");
  unsetenv("SY_CFG_TEST_C");
}

static void test_hash(void **state) {
  (void)state;
  char hex[65];
  sy_hash_key_hex("abc", 3, hex);
  assert_string_equal(hex, HASH_ABC);
  sy_hash_key_hex("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  /* the length is honoured, not the NUL */
  sy_hash_key_hex("abcdef", 3, hex);
  assert_string_equal(hex, HASH_ABC);
  unsigned char raw[32];
  sy_hash_key("abc", 3, raw);
  assert_int_equal(raw[0], 0xba);
  assert_int_equal(raw[31], 0xad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_roundtrip),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_accepted_forms),
      cmocka_unit_test(test_layered_parse),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_rejects_generated),
      cmocka_unit_test(test_partial_free),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_flags_override_file),
      cmocka_unit_test(test_flags_first_upstream_and_order),
      cmocka_unit_test(test_flags_create_default_upstream),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_bad_flags),
      cmocka_unit_test(test_config_file_error_via_flag),
      cmocka_unit_test(test_usage_lists_every_flag),
      cmocka_unit_test(test_finish),
      cmocka_unit_test(test_finish_env_keys),
      cmocka_unit_test(test_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
