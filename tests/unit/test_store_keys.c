/* store/keys: create, list, revoke, duplicates, load_all for the gateway's
 * auth set, persistence, and that the plaintext key never reaches the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "store/keys.h"
#include "tests/unit/test_store_util.h"

typedef struct {
  char dir[256];
  char path[300];
  test_clock clk;
  sy_store *s;
} fixture;

static sy_store *open_at(fixture *f) {
  sy_store_opts o = {0};
  o.path = f->path;
  o.durability = SY_DURABLE_NOSYNC; /* keys force their own sync */
  o.clock_us = test_clock_fn;
  o.clock_ctx = &f->clk;
  sy_store *s = NULL;
  assert_int_equal(sy_store_open(&o, &s), 0);
  return s;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/db", f->dir);
  f->clk.now_us = 1700000000000000ull;
  f->s = open_at(f);
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
  char names[8][64];
  unsigned char sha[8][32];
  int revoked[8], capture[8];
  char created_by[8][32], revoked_by[8][32], prefix[8][16];
  uint64_t created[8], revoked_ts[8];
  size_t n;
  int stop;
} seen;

static int collect(void *ctx, const sy_key_info *k) {
  seen *s = ctx;
  assert_true(s->n < 8);
  snprintf(s->names[s->n], 64, "%s", k->name);
  memcpy(s->sha[s->n], k->sha256, 32);
  s->revoked[s->n] = k->revoked;
  s->capture[s->n] = k->capture;
  snprintf(s->created_by[s->n], 32, "%s", k->created_by);
  snprintf(s->revoked_by[s->n], 32, "%s", k->revoked_by);
  snprintf(s->prefix[s->n], 16, "%s", k->prefix);
  s->created[s->n] = k->created_ts_us;
  s->revoked_ts[s->n] = k->revoked_ts_us;
  s->n++;
  return s->stop;
}

static int key_shape_ok(const char *k) {
  if (strlen(k) != SY_KEYS_TEXT_LEN || strncmp(k, "sy-", 3) != 0) return 0;
  for (size_t i = 3; i < SY_KEYS_TEXT_LEN; i++) {
    char c = k[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return 0;
  }
  return 1;
}

static void test_create_list_revoke(void **state) {
  fixture *f = *state;
  char k1[SY_KEYS_TEXT_LEN + 1], k2[SY_KEYS_TEXT_LEN + 1];
  f->clk.now_us = 111;
  assert_int_equal(sy_keys_create(f->s, "app2", 1, "alice", k1), 0);
  f->clk.now_us = 222;
  assert_int_equal(sy_keys_create(f->s, "app1", 0, "bob", k2), 0);
  assert_true(key_shape_ok(k1));
  assert_true(key_shape_ok(k2));
  assert_string_not_equal(k1, k2);

  seen s = {0};
  assert_int_equal(sy_keys_list(f->s, collect, &s), 0);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.names[0], "app1"); /* name order */
  assert_string_equal(s.names[1], "app2");
  unsigned char h[32];
  sy_keys_hash(k2, strlen(k2), h);
  assert_memory_equal(s.sha[0], h, 32);
  sy_keys_hash(k1, strlen(k1), h);
  assert_memory_equal(s.sha[1], h, 32);
  assert_int_equal(s.capture[0], 0);
  assert_int_equal(s.capture[1], 1);
  assert_string_equal(s.created_by[0], "bob");
  assert_int_equal(s.created[0], 222);
  assert_int_equal(s.created[1], 111);
  assert_int_equal(strncmp(s.prefix[1], k1, SY_KEYS_PREFIX_LEN), 0);
  assert_int_equal(strlen(s.prefix[1]), SY_KEYS_PREFIX_LEN);
  assert_int_equal(s.revoked[0] + s.revoked[1], 0);

  /* SHA-256 is the standard one (what the gateway's sy_hash_key computes) */
  sy_keys_hash("abc", 3, h);
  static const unsigned char abc[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
      0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  assert_memory_equal(h, abc, 32);

  f->clk.now_us = 333;
  assert_int_equal(sy_keys_revoke(f->s, "app2", "carol"), 0);
  f->clk.now_us = 444;
  assert_int_equal(sy_keys_revoke(f->s, "app2", "dave"), 0); /* no-op, first one kept */
  assert_int_equal(sy_keys_revoke(f->s, "nope", "carol"), SY_ENOTFOUND);

  sy_key_info info;
  void *hd = NULL;
  assert_int_equal(sy_keys_get(f->s, "app2", &info, &hd), 0);
  assert_true(info.revoked);
  assert_int_equal(info.revoked_ts_us, 333);
  assert_string_equal(info.revoked_by, "carol");
  assert_string_equal(info.created_by, "alice");
  assert_int_equal(info.created_ts_us, 111);
  assert_true(info.capture);
  sy_keys_info_free(hd);
  assert_int_equal(sy_keys_get(f->s, "nope", &info, &hd), SY_ENOTFOUND);
  assert_null(hd);

  memset(&s, 0, sizeof s);
  assert_int_equal(sy_keys_load_all(f->s, collect, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.names[0], "app1");
  memset(&s, 0, sizeof s);
  assert_int_equal(sy_keys_list(f->s, collect, &s), 0);
  assert_int_equal(s.n, 2);
  assert_true(s.revoked[1]);

  /* callback stop and error */
  memset(&s, 0, sizeof s);
  s.stop = 1;
  assert_int_equal(sy_keys_list(f->s, collect, &s), 0);
  assert_int_equal(s.n, 1);
  memset(&s, 0, sizeof s);
  s.stop = SY_EIO;
  assert_int_equal(sy_keys_list(f->s, collect, &s), SY_EIO);

  /* survives a restart */
  sy_store_close(f->s);
  f->s = open_at(f);
  memset(&s, 0, sizeof s);
  assert_int_equal(sy_keys_load_all(f->s, collect, &s), 0);
  assert_int_equal(s.n, 1);
  sy_keys_hash(k2, strlen(k2), h);
  assert_memory_equal(s.sha[0], h, 32);
}

static void test_duplicates_and_bad_names(void **state) {
  fixture *f = *state;
  char k[SY_KEYS_TEXT_LEN + 1];
  assert_int_equal(sy_keys_create(f->s, "app", 1, "a", k), 0);
  assert_int_equal(sy_keys_create(f->s, "app", 1, "a", k), SY_EEXIST);
  assert_string_equal(k, ""); /* zeroed on failure */
  assert_int_equal(sy_keys_revoke(f->s, "app", "a"), 0);
  assert_int_equal(sy_keys_create(f->s, "app", 1, "a", k), SY_EEXIST); /* names never reused */

  assert_int_equal(sy_keys_create(f->s, "", 1, "a", k), SY_EINVAL);
  assert_int_equal(sy_keys_create(f->s, "has space", 1, "a", k), SY_EINVAL);
  assert_int_equal(sy_keys_create(f->s, "x/y", 1, "a", k), SY_EINVAL);
  assert_int_equal(sy_keys_create(f->s, NULL, 1, "a", k), SY_EINVAL);
  char longname[SY_KEYS_MAX_NAME + 2];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(sy_keys_create(f->s, longname, 1, "a", k), SY_EINVAL);
  longname[SY_KEYS_MAX_NAME] = '\0';
  assert_int_equal(sy_keys_create(f->s, longname, 1, NULL, k), 0);
  assert_int_equal(sy_keys_create(f->s, "ok.name-1_x", 1, "a", k), 0);
  assert_int_equal(sy_keys_revoke(f->s, "", "a"), SY_EINVAL);
}

/* Looks for `needle` anywhere in a file. */
static int file_contains(const char *path, const void *needle, size_t n) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)sz);
  assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
  fclose(fp);
  int found = memmem(buf, (size_t)sz, needle, n) != NULL;
  free(buf);
  return found;
}

static void test_plaintext_never_stored(void **state) {
  fixture *f = *state;
  char keys[20][SY_KEYS_TEXT_LEN + 1];
  for (int i = 0; i < 20; i++) {
    char name[16];
    snprintf(name, sizeof name, "k%d", i);
    assert_int_equal(sy_keys_create(f->s, name, 1, "ops", keys[i]), 0);
    if (i % 2) assert_int_equal(sy_keys_revoke(f->s, name, "ops"), 0);
  }
  sy_store_close(f->s);
  f->s = NULL;
  char file[400];
  snprintf(file, sizeof file, "%s/data.mdb", f->path);
  unsigned char h[32];
  sy_keys_hash(keys[0], SY_KEYS_TEXT_LEN, h);
  assert_true(file_contains(file, h, 32)); /* the scan does find what is there */
  assert_true(file_contains(file, keys[0], SY_KEYS_PREFIX_LEN));
  for (int i = 0; i < 20; i++) {
    /* neither the whole key nor its secret part past the shown prefix */
    assert_false(file_contains(file, keys[i], SY_KEYS_TEXT_LEN));
    assert_false(file_contains(file, keys[i] + SY_KEYS_PREFIX_LEN, 8));
  }
  f->s = open_at(f);
}

static void test_keys_are_random(void **state) {
  fixture *f = *state;
  /* 200 keys: all distinct, and every base62 character shows up (a broken
   * generator, e.g. modulo of a constant, would fail this) */
  int counts[128] = {0};
  char prev[SY_KEYS_TEXT_LEN + 1] = "";
  for (int i = 0; i < 200; i++) {
    char name[16], k[SY_KEYS_TEXT_LEN + 1];
    snprintf(name, sizeof name, "r%d", i);
    assert_int_equal(sy_keys_create(f->s, name, 1, "ops", k), 0);
    assert_string_not_equal(k, prev);
    memcpy(prev, k, sizeof k);
    for (size_t j = 3; j < SY_KEYS_TEXT_LEN; j++) counts[(int)k[j]]++;
  }
  int distinct = 0;
  for (int c = 0; c < 128; c++) distinct += counts[c] > 0;
  assert_int_equal(distinct, 62);
}

static void test_read_only(void **state) {
  fixture *f = *state;
  char k[SY_KEYS_TEXT_LEN + 1];
  assert_int_equal(sy_keys_create(f->s, "app", 1, "a", k), 0);
  sy_store_opts o = {0};
  o.path = f->path;
  o.read_only = 1;
  sy_store *ro = NULL;
  assert_int_equal(sy_store_open(&o, &ro), 0);
  seen s = {0};
  assert_int_equal(sy_keys_load_all(ro, collect, &s), 0);
  assert_int_equal(s.n, 1);
  assert_int_equal(sy_keys_create(ro, "b", 1, "a", k), SY_EINVAL);
  assert_int_equal(sy_keys_revoke(ro, "app", "a"), SY_EINVAL);
  sy_store_close(ro);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_list_revoke, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicates_and_bad_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plaintext_never_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keys_are_random, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
