/* gateway/keyset: config keys + store keys, reload after create/revoke,
 * entries that outlive snapshots. */
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
#include "gateway/keyset.h"
#include "store/keys.h"
#include "store/store.h"

static void hash(const char *k, unsigned char h[32]) { sy_keys_hash(k, strlen(k), h); }

static void test_config_and_store_keys(void **state) {
  (void)state;
  char dir[] = "/tmp/sy-keyset-XXXXXX";
  assert_non_null(mkdtemp(dir));
  sy_store_opts so = {.path = dir, .durability = SY_DURABLE_NOSYNC};
  sy_store *s = NULL;
  assert_int_equal(sy_store_open(&so, &s), 0);

  sy_client_key ck = {.name = "cfg", .capture = 1};
  hash("cfg-secret", ck.sha256);
  sy_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.client_keys = &ck;
  cfg.n_client_keys = 1;

  sy_keyset *ks = NULL;
  assert_int_equal(sy_keyset_new(&cfg, &ks), 0);
  assert_int_equal(sy_keyset_reload(ks, s), 0);
  assert_int_equal(sy_keyset_count(ks), 1);
  unsigned char h[32];
  hash("cfg-secret", h);
  assert_ptr_equal(sy_keyset_find(ks, h), &ck);
  assert_true(sy_keyset_config_has(ks, "cfg"));
  assert_false(sy_keyset_config_has(ks, "app"));

  char k1[SY_KEYS_TEXT_LEN + 1], k2[SY_KEYS_TEXT_LEN + 1];
  assert_int_equal(sy_keys_create(s, "app", 0, "test", k1), 0);
  assert_int_equal(sy_keys_create(s, "other", 1, "test", k2), 0);
  hash(k1, h);
  assert_null(sy_keyset_find(ks, h)); /* not published before the reload */
  assert_int_equal(sy_keyset_reload(ks, s), 0);
  assert_int_equal(sy_keyset_count(ks), 3);
  const sy_client_key *app = sy_keyset_find(ks, h);
  assert_non_null(app);
  assert_string_equal(app->name, "app");
  assert_int_equal(app->capture, 0);

  assert_int_equal(sy_keys_revoke(s, "app", "test"), 0);
  assert_int_equal(sy_keyset_reload(ks, s), 0);
  assert_null(sy_keyset_find(ks, h));
  assert_int_equal(sy_keyset_count(ks), 2);
  /* the entry a request may still hold stays valid until the set is freed */
  assert_string_equal(app->name, "app");
  unsigned char h2[32];
  hash(k2, h2);
  const sy_client_key *o1 = sy_keyset_find(ks, h2);
  assert_non_null(o1);
  assert_int_equal(sy_keyset_reload(ks, s), 0);
  assert_ptr_equal(sy_keyset_find(ks, h2), o1); /* entries are reused across reloads */
  hash("wrong", h);
  assert_null(sy_keyset_find(ks, h));

  sy_keyset_free(ks);
  sy_store_close(s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_config_and_store_keys)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
