#include "gateway/jsonscan.h"

#include <string.h>

#include "common/buf.h"
#include "common/jsonwalk.h"

/* Returns the index just past the JSON string starting at s[i] == '"'.
 * memchr finds each candidate quote; one preceded by an odd number of
 * backslashes is escaped and the search goes on after it. */
static size_t skip_string(const char *s, size_t len, size_t i) {
  size_t start = ++i;
  while (i < len) {
    const char *q = memchr(s + i, '"', len - i);
    if (!q) return len;
    size_t k = (size_t)(q - s), b = k;
    while (b > start && s[b - 1] == '\\') b--;
    if (((k - b) & 1) == 0) return k + 1;
    i = k + 1;
  }
  return len;
}

/* Returns the index just past the value starting at s[i]. */
static size_t skip_value(const char *s, size_t len, size_t i) {
  if (i >= len) return len;
  if (s[i] == '"') return skip_string(s, len, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < len) {
      char ch = s[i];
      if (ch == '"') {
        i = skip_string(s, len, i);
        continue;
      }
      if (ch == '{' || ch == '[') depth++;
      else if (ch == '}' || ch == ']') {
        if (--depth == 0) return i + 1;
      }
      i++;
    }
    return len;
  }
  /* number, true, false, null */
  while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    i++;
  return i;
}

static size_t skip_ws(const char *s, size_t len, size_t i) {
  while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
  return i;
}

int sy_json_find_top_keys(const char *s, size_t len, const char *const *keys, size_t nkeys,
                          sy_json_span *out) {
  size_t found = 0, kl[16];
  for (size_t k = 0; k < nkeys; k++) {
    out[k].start = out[k].end = 0, out[k].found = 0;
    if (k < 16) kl[k] = strlen(keys[k]);
  }
  size_t i = skip_ws(s, len, 0);
  if (i >= len || s[i] != '{') return 0;
  i++;
  for (;;) {
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != '"') return (int)found;
    size_t kstart = i + 1;
    i = skip_string(s, len, i);
    size_t kend = i - 1;
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != ':') return (int)found;
    i = skip_ws(s, len, i + 1);
    size_t v0 = i;
    i = skip_value(s, len, i);
    for (size_t k = 0; k < nkeys; k++) {
      /* the first occurrence wins, as in cJSON_GetObjectItem */
      if (!out[k].found && (k < 16 ? kl[k] : strlen(keys[k])) == kend - kstart &&
          memcmp(s + kstart, keys[k], kend - kstart) == 0) {
        out[k].start = v0;
        out[k].end = i;
        out[k].found = 1;
        if (++found == nkeys) return (int)found;
      }
    }
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != ',') return (int)found;
    i++;
  }
}

int sy_json_find_top_key(const char *s, size_t len, const char *key, size_t *vstart,
                         size_t *vend) {
  sy_json_span sp;
  if (!sy_json_find_top_keys(s, len, &key, 1, &sp)) return -1;
  *vstart = sp.start;
  *vend = sp.end;
  return 0;
}

int sy_json_array_next(const char *s, size_t len, size_t *pos, sy_json_span *el) {
  size_t i = *pos;
  if (i == 0) { /* first call: step into the array */
    i = skip_ws(s, len, 0);
    if (i >= len || s[i] != '[') return 0;
    i++;
  } else { /* after an element: a comma, or the end */
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != ',') return 0;
    i++;
  }
  i = skip_ws(s, len, i);
  if (i >= len || s[i] == ']') return 0;
  el->start = i;
  el->end = skip_value(s, len, i);
  el->found = 1;
  *pos = el->end;
  return 1;
}

int sy_json_span_text(const char *json, const sy_json_span *sp, sy_buf *out) {
  if (!sp->found || sp->end - sp->start < 2 || json[sp->start] != '"') return -1;
  const char *raw = json + sp->start + 1;
  size_t n = sp->end - sp->start - 2;
  if (!memchr(raw, '\\', n)) return sy_buf_append(out, raw, n);
  size_t mark = out->len;
  int rc = sy_json_decode_string(raw, n, out);
  if (rc) { /* leave out as it was */
    out->len = mark;
    if (out->data) out->data[mark] = '\0';
  }
  return rc;
}
