/* Tests for the "grpc" section of gateway/config and the --grpc-* flags:
 * defaults, listeners (and "" turning them off), admin tokens and roles,
 * the SWITCHYARD_ADMIN_TOKEN environment token, TLS both-or-neither, the
 * message size range. Rejections are checked by code and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "gateway/config.h"

#define HASH_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HASH_B "0000000000000000000000000000000000000000000000000000000000000001"
#define BASE "{\"upstreams\":[{\"name\":\"u\",\"base_url\":\"http://127.0.0.1:9/v1\"}],\"auth\":false,"

static char errbuf[1024];

static int parse(sy_config *c, const char *json) {
  sy_config_init(c);
  errbuf[0] = '\0';
  return sy_config_parse(c, json, strlen(json), errbuf, sizeof errbuf);
}

static void expect_msg(int rc, const char *want, const char *what) {
  if (rc != SY_ECONFIG || strstr(errbuf, want) == NULL)
    fail_msg("%s: rc %d, message \"%s\" (want \"%s\")", what, rc, errbuf, want);
}

static void test_defaults(void **st) {
  sy_config c;
  unsetenv(SY_ADMIN_TOKEN_ENV);
  assert_int_equal(parse(&c, BASE "\"workers\":1}"), 0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  /* the inference listener is off unless configured */
  assert_string_equal(c.grpc.listen_host, "");
  assert_int_equal(c.grpc.listen_port, 0);
  assert_string_equal(c.grpc.admin_host, "127.0.0.1");
  assert_int_equal(c.grpc.admin_port, 50052);
  assert_int_equal(c.grpc.max_message_bytes, 8u << 20);
  assert_int_equal(c.grpc.n_admin_tokens, 0);
  assert_null(c.grpc.tls_cert);
  sy_config_free(&c);
}

static void test_listen_and_off(void **st) {
  sy_config c;
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"listen\":\"[::1]:0\",\"admin_listen\":\"\"}}"), 0);
  assert_string_equal(c.grpc.listen_host, "::1");
  assert_int_equal(c.grpc.listen_port, 0);
  assert_string_equal(c.grpc.admin_host, "");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"listen\":\"example.com:1\"}}"), "grpc.listen: host",
             "hostname");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"listen\":5}}"), "grpc.listen: must be a string", "type");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"lisen\":\"\"}}"), "grpc.lisen: unknown key", "typo");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":[]}"), "grpc: must be an object", "shape");
  sy_config_free(&c);
}

static void test_flags(void **st) {
  sy_config c;
  sy_config_init(&c);
  char *argv[] = {"switchyard", "--grpc-listen", "127.0.0.1:0", "--grpc-admin-listen=",
                  "--upstream-url", "http://127.0.0.1:9/v1", "--no-auth"};
  int help = 0;
  assert_int_equal(sy_config_apply_args(&c, 7, argv, &help, errbuf, sizeof errbuf), 0);
  assert_int_equal(c.grpc.listen_port, 0);
  assert_string_equal(c.grpc.admin_host, "");
  sy_config_free(&c);
  sy_config_init(&c);
  char *bad[] = {"switchyard", "--grpc-listen", "1.2.3.4:99999"};
  assert_int_equal(sy_config_apply_args(&c, 3, bad, &help, errbuf, sizeof errbuf), SY_ECONFIG);
  assert_non_null(strstr(errbuf, "--grpc-listen: port"));
  sy_config_free(&c);
}

static void test_tokens(void **st) {
  sy_config c;
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"admin_tokens\":[{\"name\":\"ci\",\"sha256\":\"" HASH_A
                                  "\",\"role\":\"admin\"},{\"name\":\"ro\",\"sha256\":\"" HASH_B
                                  "\",\"role\":\"read\"}]}}"),
                   0);
  assert_int_equal(c.grpc.n_admin_tokens, 2);
  assert_string_equal(c.grpc.admin_tokens[0].name, "ci");
  assert_int_equal(c.grpc.admin_tokens[0].role, SY_ADMIN_ROLE_ADMIN);
  assert_int_equal(c.grpc.admin_tokens[1].role, SY_ADMIN_ROLE_READ);
  assert_int_equal(c.grpc.admin_tokens[0].sha256[0], 0xba);
  sy_config_free(&c);
  static const struct {
    const char *json, *want;
  } bad[] = {
      {"[{\"name\":\"a\",\"sha256\":\"" HASH_A "\"}]", "admin_tokens[0].role: required"},
      {"[{\"name\":\"a\",\"sha256\":\"" HASH_A "\",\"role\":\"root\"}]", "role: must be"},
      {"[{\"name\":\"a\",\"role\":\"read\"}]", "admin_tokens[0].sha256: required"},
      {"[{\"sha256\":\"" HASH_A "\",\"role\":\"read\"}]", "admin_tokens[0].name: required"},
      {"[{\"name\":\"env\",\"sha256\":\"" HASH_A "\",\"role\":\"read\"}]", "reserved"},
      {"[{\"name\":\"a b\",\"sha256\":\"" HASH_A "\",\"role\":\"read\"}]", "name: must be"},
      {"[{\"name\":\"a\",\"sha256\":\"xyz\",\"role\":\"read\"}]", "64 hex"},
      {"[{\"name\":\"a\",\"sha256\":\"" HASH_A "\",\"role\":\"read\"},{\"name\":\"a\",\"sha256\":\"" HASH_B
       "\",\"role\":\"read\"}]",
       "duplicate name"},
      {"[{\"name\":\"a\",\"sha256\":\"" HASH_A "\",\"role\":\"read\"},{\"name\":\"b\",\"sha256\":\"" HASH_A
       "\",\"role\":\"read\"}]",
       "same token"},
      {"[{\"name\":\"a\",\"sha256\":\"" HASH_A "\",\"role\":\"read\",\"x\":1}]", "x: unknown key"},
      {"{}", "admin_tokens: must be an array"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char json[1024];
    snprintf(json, sizeof json, BASE "\"grpc\":{\"admin_tokens\":%s}}", bad[i].json);
    expect_msg(parse(&c, json), bad[i].want, bad[i].json);
    sy_config_free(&c);
  }
}

static void test_env_token(void **st) {
  sy_config c;
  setenv(SY_ADMIN_TOKEN_ENV, "abc", 1);
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"admin_tokens\":[{\"name\":\"ro\",\"sha256\":\"" HASH_B
                                  "\",\"role\":\"read\"}]}}"),
                   0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0); /* not added twice */
  assert_int_equal(c.grpc.n_admin_tokens, 2);
  assert_string_equal(c.grpc.admin_tokens[1].name, "env");
  assert_int_equal(c.grpc.admin_tokens[1].role, SY_ADMIN_ROLE_ADMIN);
  /* sha256("abc") is HASH_A */
  unsigned char a[32];
  sy_hash_key("abc", 3, a);
  assert_memory_equal(c.grpc.admin_tokens[1].sha256, a, 32);
  assert_int_equal(c.grpc.admin_tokens[1].sha256[0], 0xba);
  sy_config_free(&c);
  /* the same token in the file and the environment */
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"admin_tokens\":[{\"name\":\"ci\",\"sha256\":\"" HASH_A
                                  "\",\"role\":\"read\"}]}}"),
                   0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG);
  assert_non_null(strstr(errbuf, "SWITCHYARD_ADMIN_TOKEN: same token"));
  sy_config_free(&c);
  unsetenv(SY_ADMIN_TOKEN_ENV);
}

static void test_tls_and_size(void **st) {
  sy_config c;
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"tls_cert\":\"/c.pem\"}}"), 0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), SY_ECONFIG);
  assert_non_null(strstr(errbuf, "grpc.tls_key: required with grpc.tls_cert"));
  sy_config_free(&c);
  assert_int_equal(parse(&c, BASE "\"grpc\":{\"tls_key\":\"/k.pem\",\"tls_cert\":\"/c.pem\","
                                  "\"max_message_bytes\":4096}}"),
                   0);
  assert_int_equal(sy_config_finish(&c, errbuf, sizeof errbuf), 0);
  assert_string_equal(c.grpc.tls_cert, "/c.pem");
  assert_int_equal(c.grpc.max_message_bytes, 4096);
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"max_message_bytes\":4095}}"),
             "grpc.max_message_bytes: must be an integer", "too small");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"max_message_bytes\":4096.5}}"), "must be an integer",
             "fraction");
  sy_config_free(&c);
  expect_msg(parse(&c, BASE "\"grpc\":{\"tls_cert\":\"\"}}"), "grpc.tls_cert: must be a path",
             "empty path");
  sy_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),  cmocka_unit_test(test_listen_and_off),
      cmocka_unit_test(test_flags),     cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_env_token), cmocka_unit_test(test_tls_and_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
