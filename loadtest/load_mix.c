#include "loadtest/load_mix.h"
#include "common/buf.h"
#include "common/err.h"
#include "loadtest/load_zipf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MODEL "gpt-4o-mini"

static int fail(char *err, size_t errsz, int rc, const char *msg) {
  if (err && errsz) snprintf(err, errsz, "%s", msg);
  return rc;
}

/* Replaces (or adds) key with item; item is consumed either way. */
static int set_item(cJSON *obj, const char *key, cJSON *item) {
  if (!item) return SY_ENOMEM;
  if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
    if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
      cJSON_Delete(item);
      return SY_ENOMEM;
    }
    return 0;
  }
  if (!cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    return SY_ENOMEM;
  }
  return 0;
}

/* An export line's prompt is everything before its final assistant turn. */
static void drop_last_assistant(cJSON *msgs) {
  int n = cJSON_GetArraySize(msgs);
  if (n <= 0) return;
  cJSON *role = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, n - 1), "role");
  if (cJSON_IsString(role) && strcmp(role->valuestring, "assistant") == 0)
    cJSON_DeleteItemFromArray(msgs, n - 1);
}

int sy__load_mix_line(const char *line, size_t len, const sy_load_mix_opts *o, sy_load_item *out,
                      char *err, size_t errsz) {
  out->body = NULL;
  out->len = 0;
  out->weight = 1;
  out->stream = 0;
  if (len > SY_LOAD_BODY_MAX) return fail(err, errsz, SY_ETOOBIG, "body larger than 16 MiB");
  cJSON *root = cJSON_ParseWithLength(line, len);
  int rc = SY_EINVAL;
  if (!root || !cJSON_IsObject(root)) {
    fail(err, errsz, rc, "not a JSON object");
    goto out;
  }
  cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "weight");
  if (w) {
    if (!cJSON_IsNumber(w) || !(w->valuedouble > 0) || w->valuedouble > SY_LOAD_MIX_MAX_WEIGHT) {
      fail(err, errsz, rc, "\"weight\" must be a number in (0, 1e9]");
      goto out;
    }
    out->weight = w->valuedouble;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "weight");
  }
  /* a preference-pair export line: replay its input */
  cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
  if (!cJSON_GetObjectItemCaseSensitive(root, "messages") && cJSON_IsObject(input)) {
    cJSON_DetachItemViaPointer(root, input);
    cJSON_Delete(root);
    root = input;
  }
  cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
  if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
    fail(err, errsz, rc, "\"messages\" must be a non-empty array");
    goto out;
  }
  cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!cJSON_IsString(model)) {
    if (model) {
      fail(err, errsz, rc, "\"model\" must be a string");
      goto out;
    }
    if (!o->model) {
      fail(err, errsz, rc, "no \"model\" (an export line?): pass --model");
      goto out;
    }
    drop_last_assistant(msgs);
    if (cJSON_GetArraySize(msgs) == 0) {
      fail(err, errsz, rc, "nothing left to replay once the assistant turn is dropped");
      goto out;
    }
    if ((rc = set_item(root, "model", cJSON_CreateString(o->model))) != 0) goto out;
    rc = SY_EINVAL;
  }
  if (o->stream && (rc = set_item(root, "stream", cJSON_CreateTrue())) != 0) goto out;
  if (o->strip_user) cJSON_DeleteItemFromObjectCaseSensitive(root, "user");
  out->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
  out->body = cJSON_PrintUnformatted(root);
  if (!out->body) {
    rc = SY_ENOMEM;
    goto out;
  }
  out->len = strlen(out->body);
  if (out->len > SY_LOAD_BODY_MAX) {
    free(out->body);
    out->body = NULL;
    out->len = 0;
    rc = fail(err, errsz, SY_ETOOBIG, "body larger than 16 MiB");
    goto out;
  }
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

void sy_load_mix_free(sy_load_mix *m) {
  for (size_t i = 0; i < m->n; i++) free(m->items[i].body);
  free(m->items);
  free(m->cum);
  m->items = NULL;
  m->cum = NULL;
  m->n = 0;
}

/* Allocates the arrays for up to `n` items. */
static int mix_alloc(sy_load_mix *m, size_t n) {
  m->n = 0;
  m->items = calloc(n ? n : 1, sizeof *m->items);
  m->cum = calloc(n ? n : 1, sizeof *m->cum);
  if (!m->items || !m->cum) {
    sy_load_mix_free(m);
    return SY_ENOMEM;
  }
  return 0;
}

static void mix_add(sy_load_mix *m, const sy_load_item *it) {
  m->cum[m->n] = (m->n ? m->cum[m->n - 1] : 0) + it->weight;
  m->items[m->n++] = *it;
}

static int blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
  return 1;
}

int sy_load_mix_parse(sy_load_mix *m, const char *text, size_t len, const sy_load_mix_opts *o,
                      char *err, size_t errsz) {
  m->items = NULL;
  m->cum = NULL;
  m->n = 0;
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  lines++;
  if (lines > SY_LOAD_MIX_MAX_ITEMS + 1)
    return fail(err, errsz, SY_ETOOBIG, "more than 1000000 lines");
  int rc = mix_alloc(m, lines);
  if (rc) return rc;
  size_t lineno = 0, pos = 0;
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    lineno++;
    if (!blank(text + pos, end - pos)) {
      if (m->n == SY_LOAD_MIX_MAX_ITEMS) {
        rc = fail(err, errsz, SY_ETOOBIG, "more than 1000000 requests");
        goto bad;
      }
      sy_load_item it;
      char why[160];
      rc = sy__load_mix_line(text + pos, end - pos, o, &it, why, sizeof why);
      if (rc) {
        if (err && errsz) snprintf(err, errsz, "line %zu: %s", lineno, why);
        goto bad;
      }
      mix_add(m, &it);
    }
    pos = end + 1;
  }
  if (m->n == 0) {
    rc = fail(err, errsz, SY_EINVAL, "no requests in the mix");
    goto bad;
  }
  return 0;
bad:
  sy_load_mix_free(m);
  return rc;
}

/* Reads a whole file into b (capped at SY_LOAD_MIX_MAX_FILE). */
static int read_file(const char *path, sy_buf *b, char *err, size_t errsz) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err && errsz) snprintf(err, errsz, "%s: %s", path, strerror(errno));
    return SY_EIO;
  }
  int rc = 0;
  for (;;) {
    size_t want = b->max - b->len;
    if (want > 65536) want = 65536;
    if (want == 0) {
      if (fgetc(f) != EOF) rc = SY_ETOOBIG;
      break;
    }
    if ((rc = sy_buf_reserve(b, want)) != 0) break;
    size_t got = fread(b->data + b->len, 1, want, f);
    b->len += got;
    b->data[b->len] = '\0';
    if (got < want) {
      if (ferror(f)) rc = SY_EIO;
      break;
    }
  }
  fclose(f);
  if (rc == SY_ETOOBIG && err && errsz) snprintf(err, errsz, "%s: larger than 256 MiB", path);
  else if (rc && err && errsz) snprintf(err, errsz, "%s: read error", path);
  return rc;
}

int sy_load_mix_load(sy_load_mix *m, const char *path, const sy_load_mix_opts *o, char *err,
                     size_t errsz) {
  sy_buf b;
  sy_buf_init(&b, SY_LOAD_MIX_MAX_FILE);
  m->items = NULL;
  m->cum = NULL;
  m->n = 0;
  char why[200] = "";
  int rc = read_file(path, &b, err, errsz);
  if (rc == 0) {
    rc = sy_load_mix_parse(m, b.data ? b.data : "", b.len, o, why, sizeof why);
    if (rc && err && errsz) snprintf(err, errsz, "%s: %s", path, why);
  }
  sy_buf_free(&b);
  return rc;
}

int sy_load_mix_load_body(sy_load_mix *m, const char *path, const sy_load_mix_opts *o, char *err,
                          size_t errsz) {
  sy_buf b;
  sy_buf_init(&b, SY_LOAD_BODY_MAX);
  m->items = NULL;
  m->cum = NULL;
  m->n = 0;
  int rc = read_file(path, &b, err, errsz);
  if (rc == 0 && (rc = mix_alloc(m, 1)) == 0) {
    sy_load_item it;
    char why[160];
    rc = sy__load_mix_line(b.data ? b.data : "", b.len, o, &it, why, sizeof why);
    if (rc == 0) mix_add(m, &it);
    else {
      if (err && errsz) snprintf(err, errsz, "%s: %s", path, why);
      sy_load_mix_free(m);
    }
  }
  sy_buf_free(&b);
  return rc;
}

int sy_load_mix_default(sy_load_mix *m, const sy_load_mix_opts *o) {
  sy_load_mix_opts d = *o;
  if (!d.model) d.model = DEFAULT_MODEL;
  static const char body[] =
      "{\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in one short sentence.\"}]}";
  int rc = mix_alloc(m, 1);
  if (rc) return rc;
  sy_load_item it;
  rc = sy__load_mix_line(body, sizeof body - 1, &d, &it, NULL, 0);
  if (rc) {
    sy_load_mix_free(m);
    return rc;
  }
  mix_add(m, &it);
  return 0;
}

size_t sy_load_mix_pick(const sy_load_mix *m, double u) {
  if (m->n <= 1) return 0;
  return sy_load_cum_search(m->cum, m->n, u * m->cum[m->n - 1]);
}
