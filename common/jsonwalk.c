#include "common/jsonwalk.h"

#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

typedef struct {
  const char *in, *p, *end;
  int max_depth;
  sy_json_string_fn cb;
  void *ctx;
} walk;

static void skip_ws(walk *w) {
  while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r')) w->p++;
}

static int hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (unsigned)((c | 0x20) - 'a' + 10);
    else return -1;
    *v = *v << 4 | d;
  }
  return 0;
}

/* \uXXXX at p (p[0] == '\\', p[1] == 'u') with at least 6 bytes: the code
 * unit, or -1 when the hex digits are bad. */
static long unit_at(const char *p, const char *end) {
  unsigned v;
  if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &v)) return -1;
  return (long)v;
}

/* The bytes that end a plain run inside a string. */
static const unsigned char stop[256] = {[0 ... 0x1F] = 1, ['"'] = 1, ['\\'] = 1};

/* Eight bytes at a time (SWAR): nonzero when any byte of x is '"', '\\' or
 * below 0x20. The classic "has a zero byte" test on x ^ '"' and x ^ '\\',
 * and the "has a byte less than n" test for control characters; bytes of
 * 0x80 and above never trigger a false negative (at worst a false positive
 * that the byte loop below sorts out). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t has_stop(uint64_t x) {
  uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
  return ((q - ONES) & ~q & HIGHS) | ((b - ONES) & ~b & HIGHS) | ((x - ONES * 0x20) & ~x & HIGHS);
}

/* At an opening quote. */
static int scan_string(walk *w, int is_value) {
  const char *a = ++w->p;
  int escaped = 0;
  for (;;) {
    while (w->end - w->p >= 8) { /* plain text goes by in words */
      uint64_t x;
      memcpy(&x, w->p, 8);
      if (has_stop(x)) break;
      w->p += 8;
    }
    while (w->p < w->end && !stop[(unsigned char)*w->p]) w->p++;
    if (w->p >= w->end) return SY_EINVAL; /* unterminated */
    unsigned char c = (unsigned char)*w->p;
    if (c == '"') break;
    if (c < 0x20) return SY_EINVAL; /* raw control character */
    escaped = 1;
    if (w->end - w->p < 2) return SY_EINVAL;
    char e = w->p[1];
    if (e == 'u') {
      long u = unit_at(w->p, w->end);
      if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return SY_EINVAL; /* bad hex, lone low half */
      w->p += 6;
      if (u >= 0xD800 && u <= 0xDBFF) { /* a high half needs its low half next */
        long lo = unit_at(w->p, w->end);
        if (lo < 0xDC00 || lo > 0xDFFF) return SY_EINVAL;
        w->p += 6;
      }
      continue;
    }
    if (!e || !strchr("\"\\/bfnrt", e)) return SY_EINVAL;
    w->p += 2;
  }
  const char *b = w->p++;
  if (is_value && w->cb) return w->cb(w->ctx, a, (size_t)(b - a), escaped);
  return 0;
}

static int digits(walk *w) {
  const char *s = w->p;
  while (w->p < w->end && *w->p >= '0' && *w->p <= '9') w->p++;
  return w->p > s ? 0 : SY_EINVAL;
}

static int scan_number(walk *w) {
  if (w->p < w->end && *w->p == '-') w->p++;
  if (w->p < w->end && *w->p == '0') w->p++;
  else if (digits(w)) return SY_EINVAL;
  if (w->p < w->end && *w->p == '.') {
    w->p++;
    if (digits(w)) return SY_EINVAL;
  }
  if (w->p < w->end && (*w->p == 'e' || *w->p == 'E')) {
    w->p++;
    if (w->p < w->end && (*w->p == '+' || *w->p == '-')) w->p++;
    if (digits(w)) return SY_EINVAL;
  }
  return 0;
}

static int scan_value(walk *w, int depth) {
  skip_ws(w);
  if (w->p >= w->end) return SY_EINVAL;
  char c = *w->p;
  if (c == '"') return scan_string(w, 1);
  if (c == '{' || c == '[') {
    if (depth >= w->max_depth) return SY_ETOOBIG;
    char close = c == '{' ? '}' : ']';
    w->p++;
    skip_ws(w);
    if (w->p < w->end && *w->p == close) {
      w->p++;
      return 0;
    }
    for (;;) {
      int rc;
      if (c == '{') {
        skip_ws(w);
        if (w->p >= w->end || *w->p != '"') return SY_EINVAL;
        if ((rc = scan_string(w, 0))) return rc;
        skip_ws(w);
        if (w->p >= w->end || *w->p != ':') return SY_EINVAL;
        w->p++;
      }
      if ((rc = scan_value(w, depth + 1))) return rc;
      skip_ws(w);
      if (w->p < w->end && *w->p == ',') {
        w->p++;
        continue;
      }
      if (w->p < w->end && *w->p == close) {
        w->p++;
        return 0;
      }
      return SY_EINVAL;
    }
  }
  static const char *const lit[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lit[i]);
    if ((size_t)(w->end - w->p) >= n && !memcmp(w->p, lit[i], n)) {
      w->p += n;
      return 0;
    }
  }
  return scan_number(w);
}

int sy_json_walk(const char *json, size_t len, int max_depth, sy_json_string_fn cb, void *ctx,
                 size_t *err_at) {
  walk w = {.in = json, .p = json, .end = json + len, .max_depth = max_depth, .cb = cb, .ctx = ctx};
  int rc = scan_value(&w, 0);
  if (!rc) {
    skip_ws(&w);
    if (w.p != w.end) rc = SY_EINVAL; /* trailing data */
  }
  if (rc && err_at) *err_at = (size_t)(w.p - w.in);
  return rc;
}

static int put_utf8(sy_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | cp >> 6);
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12);
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18);
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return sy_buf_append(b, u, n);
}

int sy_json_decode_string(const char *raw, size_t len, sy_buf *dst) {
  const char *p = raw, *b = raw + len;
  while (p < b) {
    const char *bs = memchr(p, '\\', (size_t)(b - p));
    if (!bs) bs = b;
    int rc = sy_buf_append(dst, p, (size_t)(bs - p));
    if (rc) return rc;
    if (bs == b) break;
    if (b - bs < 2) return SY_EINVAL;
    char c = bs[1], o;
    p = bs + 2;
    switch (c) {
    case '"': o = '"'; break;
    case '\\': o = '\\'; break;
    case '/': o = '/'; break;
    case 'b': o = '\b'; break;
    case 'f': o = '\f'; break;
    case 'n': o = '\n'; break;
    case 'r': o = '\r'; break;
    case 't': o = '\t'; break;
    case 'u': {
      long cp = unit_at(bs, b);
      if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return SY_EINVAL;
      p = bs + 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = unit_at(p, b);
        if (lo < 0xDC00 || lo > 0xDFFF) return SY_EINVAL;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      rc = put_utf8(dst, (unsigned long)cp);
      if (rc) return rc;
      continue;
    }
    default: return SY_EINVAL;
    }
    rc = sy_buf_append(dst, &o, 1);
    if (rc) return rc;
  }
  return 0;
}
