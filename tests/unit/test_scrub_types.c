/* Each entity type of the PII scrubber: what is replaced, what must survive,
 * and the C checks (Luhn, mod 97, SSN ranges, IP syntax) on their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/scrub.h"

static sy_scrub_rules *g_rules;
static sy_scrubber *g_s;
static sy_buf g_out;
static sy_scrub_counts g_c;

static int setup(void **state) {
  (void)state;
  char err[256];
  if (sy_scrub_rules_new(NULL, 0, &g_rules, err, sizeof err)) return -1;
  if (sy_scrubber_new(g_rules, &g_s)) return -1;
  sy_buf_init(&g_out, 1 << 20);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sy_buf_free(&g_out);
  sy_scrubber_free(g_s);
  sy_scrub_rules_free(g_rules);
  return 0;
}

static const char *scrub(const char *in) {
  sy_buf_reset(&g_out);
  int rc = sy_scrub_text(g_s, in, strlen(in), &g_out, &g_c);
  assert_int_equal(rc, 0);
  return g_out.data ? g_out.data : "";
}

/* `in` must come out as `want`, with `n` entities of type t */
static void expect(const char *in, const char *want, sy_scrub_type t, unsigned n) {
  const char *got = scrub(in);
  if (strcmp(got, want)) printf("input: %s\n", in);
  assert_string_equal(got, want);
  assert_int_equal(g_c.n[t], n);
  assert_int_equal(g_c.total, n);
}

static void untouched(const char *in) {
  const char *got = scrub(in);
  if (strcmp(got, in)) printf("look-alike changed: %s -> %s\n", in, got);
  assert_string_equal(got, in);
  assert_int_equal(g_c.total, 0);
}

static void test_email(void **state) {
  (void)state;
  expect("to john.doe+x@mail.example.co.uk.", "to [EMAIL].", SY_SCRUB_EMAIL, 1);
  expect("<a@b.io>,c_d%e@f-g.example", "<[EMAIL]>,[EMAIL]", SY_SCRUB_EMAIL, 2);
  expect("cc o'connor@example.ie", "cc [EMAIL]", SY_SCRUB_EMAIL, 1);
  untouched("icon@2x.png lodash@4.17.21 @alice user@localhost");
}

static void test_phone(void **state) {
  (void)state;
  const char *yes[] = {"+1 415 555 0132", "(415) 555-0132", "+44 20 7946 0958", "+49 30 901820",
                       "0044 20 7946 0958", "415.555.0132", "1-800-555-0199", "+14155550132",
                       "+44 (0)20 7946 0958", "020 7946 0958", "06 12 34 56 78",
                       "+81 3-1234-5678", "+7 495 123-45-67"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    char in[128], want[128];
    snprintf(in, sizeof in, "call %s now", yes[i]);
    expect(in, "call [PHONE] now", SY_SCRUB_PHONE, 1);
    (void)want;
  }
  expect("phone: 4155550132", "phone: [PHONE]", SY_SCRUB_PHONE, 1);
  /* NANP codes start with 2-9; +1 needs ten more digits; too short; dates */
  untouched("123-456-7890 +1 2024 2025 555-0132 call on 2024-03-15 03/15/2024 +10 20 30");
  untouched("SKU 0012-3456-7890, score 3-2, ISBN 978-3-16-148410-0");
}

static void test_card(void **state) {
  (void)state;
  expect("4111 1111 1111 1111", "[CARD]", SY_SCRUB_CARD, 1);
  expect("a 4111-1111-1111-1111, b 378282246310005.", "a [CARD], b [CARD].", SY_SCRUB_CARD, 2);
  expect("amex 3782 822463 10005", "amex [CARD]", SY_SCRUB_CARD, 1);
  expect("19: 6205500000000000004", "19: [CARD]", SY_SCRUB_CARD, 1);
  /* Luhn failure, all zeros, prefix 1, mixed separators, too long */
  untouched("4111 1111 1111 1112 1234567812345678 0000 0000 0000 0000");
  untouched("4111-1111 1111-1111 12345678901234567890 1710498153123");
}

static void test_ssn(void **state) {
  (void)state;
  expect("SSN 123-45-6789.", "SSN [SSN].", SY_SCRUB_SSN, 1);
  expect("ssn: 123456789", "ssn: [SSN]", SY_SCRUB_SSN, 1);
  expect("social security number 219 09 9999", "social security number [SSN]", SY_SCRUB_SSN, 1);
  untouched("000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000");
  untouched("order 123456789 part 123-456-789");
}

static void test_ip(void **state) {
  (void)state;
  expect("10.0.0.1:8080 and 192.168.1.0/24", "[IP]:8080 and [IP]/24", SY_SCRUB_IP, 2);
  expect("[2001:db8::1]:443", "[[IP]]:443", SY_SCRUB_IP, 1);
  expect("::1 ::ffff:192.0.2.128 fe80::1%eth0", "[IP] [IP] [IP]%eth0", SY_SCRUB_IP, 3);
  expect("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]", SY_SCRUB_IP, 1);
  untouched("256.1.1.1 1.2.3 10.0.19041.1 192.168.01.1 v1.2.3.4 1.2.3.4.5");
  untouched("00:1A:2B:3C:4D:5E 10:22:33 std::vector a :: b 2024-03-15T10:22:33Z");
}

static void test_iban(void **state) {
  (void)state;
  expect("GB82 WEST 1234 5698 7654 32", "[IBAN]", SY_SCRUB_IBAN, 1);
  expect("to DE89370400440532013000.", "to [IBAN].", SY_SCRUB_IBAN, 1);
  /* the regex may run into the next word; the country length trims it */
  expect("BE68 5390 0754 7034 AND", "[IBAN] AND", SY_SCRUB_IBAN, 1);
  untouched("GB82 WEST 1234 5698 7654 33 ZZ12 3456 7890 1234 BIC COBADEFFXXX");
}

static void test_secret(void **state) {
  (void)state;
  expect("key sk-proj-Ab3dEfGh1jKlMnOpQrStUvWxYz01", "key [SECRET]", SY_SCRUB_SECRET, 1);
  expect("AKIAIOSFODNN7EXAMPLE", "[SECRET]", SY_SCRUB_SECRET, 1);
  /* the scheme word stays, the token goes (and the sentence's period stays) */
  expect("Authorization: Bearer abc.def-123.", "Authorization: Bearer [SECRET].",
         SY_SCRUB_SECRET, 1);
  expect("password=hunter2; DB_PASSWORD: S3cr3t!", "password=[SECRET]; DB_PASSWORD: [SECRET]",
         SY_SCRUB_SECRET, 2);
  expect("https://bob:pa55@host.example/x", "https://bob:[SECRET]@host.example/x",
         SY_SCRUB_SECRET, 1);
  expect("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\nafter",
         "[SECRET]\nafter", SY_SCRUB_SECRET, 1);
  untouched("the bearer of bad news; basic authentication; sk-learn; AKIA123");
}

/* Earlier rules win: an email holding a phone number is one email. */
static void test_priority_and_counts(void **state) {
  (void)state;
  const char *got = scrub("4155550132@txt.att.net, +1 415 555 0132, 4111111111111111, 8.8.8.8");
  assert_string_equal(got, "[EMAIL], [PHONE], [CARD], [IP]");
  assert_int_equal(g_c.n[SY_SCRUB_EMAIL], 1);
  assert_int_equal(g_c.n[SY_SCRUB_PHONE], 1);
  assert_int_equal(g_c.n[SY_SCRUB_CARD], 1);
  assert_int_equal(g_c.n[SY_SCRUB_IP], 1);
  assert_int_equal(g_c.total, 4);
  assert_string_equal(sy_scrub_type_name(SY_SCRUB_IBAN), "IBAN");
  assert_string_equal(sy_scrub_type_name((sy_scrub_type)99), "?");
}

static void test_luhn(void **state) {
  (void)state;
  const char *good[] = {"4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444",
                        "378282246310005", "4222222222222", "6205500000000000004"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_true(sy__scrub_card_ok(good[i], strlen(good[i])));
  const char *bad[] = {"4111111111111112", "411111111111", "41111111111111111111",
                       "0000000000000000", "1234567812345670", "8111111111111116",
                       "4111x1111111111111", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(sy__scrub_card_ok(bad[i], strlen(bad[i])));
}

static void test_mod97(void **state) {
  (void)state;
  const char *good[] = {"GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32",
                        "NO9386011117947", "MT84MALT011000012345MTLCAST001S",
                        "FR1420041010050500013M02606"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_true(sy__scrub_iban_ok(good[i], strlen(good[i])));
  const char *bad[] = {"GB82WEST12345698765433", "GB28WEST12345698765432",
                       "GB82WEST1234569876543", "GB82WEST123456987654321", "ZZ82WEST12345698765432",
                       "gb82west12345698765432", "GB82-WEST-1234-5698-7654-32", "GB8"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(sy__scrub_iban_ok(bad[i], strlen(bad[i])));
}

static void test_ssn_ranges(void **state) {
  (void)state;
  const char *good[] = {"123-45-6789", "001-01-0001", "899-99-9999", "665-12-3456", "123456789"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_true(sy__scrub_ssn_ok(good[i], strlen(good[i])));
  const char *bad[] = {"000-12-3456", "666-12-3456", "900-12-3456", "999-99-9999",
                       "123-00-4567", "123-45-0000", "12-345-678", "1234-56-789", "123-45-67890"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(sy__scrub_ssn_ok(bad[i], strlen(bad[i])));
}

static void test_ip_syntax(void **state) {
  (void)state;
  const char *v4[] = {"0.0.0.0", "255.255.255.255", "8.8.8.8", "10.0.0.1"};
  for (size_t i = 0; i < 4; i++) assert_true(sy__scrub_ipv4_ok(v4[i], strlen(v4[i])));
  const char *not4[] = {"256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "1.2.3.1000"};
  for (size_t i = 0; i < 6; i++) assert_false(sy__scrub_ipv4_ok(not4[i], strlen(not4[i])));
  const char *v6[] = {"::1", "2001:db8::", "::ffff:192.0.2.1", "fe80::1ff:fe23:4567:890a",
                      "2001:0db8:85a3:0000:0000:8a2e:0370:7334"};
  for (size_t i = 0; i < 5; i++) assert_true(sy__scrub_ipv6_ok(v6[i], strlen(v6[i])));
  const char *not6[] = {"::", ":::", "1:2:3", "00:1A:2B:3C:4D:5E", "2001:db8::1::2",
                        "12345::1", "::ffff:256.0.0.1"};
  for (size_t i = 0; i < 7; i++) assert_false(sy__scrub_ipv6_ok(not6[i], strlen(not6[i])));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_email),      cmocka_unit_test(test_phone),
      cmocka_unit_test(test_card),       cmocka_unit_test(test_ssn),
      cmocka_unit_test(test_ip),         cmocka_unit_test(test_iban),
      cmocka_unit_test(test_secret),     cmocka_unit_test(test_priority_and_counts),
      cmocka_unit_test(test_luhn),       cmocka_unit_test(test_mod97),
      cmocka_unit_test(test_ssn_ranges), cmocka_unit_test(test_ip_syntax),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
