#include "common/buf.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy_buf_init(sy_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void sy_buf_free(sy_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void sy_buf_reset(sy_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

int sy_buf_reserve(sy_buf *b, size_t extra) {
  if (extra > b->max || b->len > b->max - extra) return SY_ETOOBIG;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t ncap = b->cap ? b->cap : 256;
  while (ncap < need) ncap *= 2;
  if (ncap > b->max + 1) ncap = b->max + 1;
  char *p = realloc(b->data, ncap);
  if (!p) return SY_ENOMEM;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int sy_buf_append(sy_buf *b, const void *p, size_t n) {
  int rc = sy_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int sy_buf_appends(sy_buf *b, const char *s) { return sy_buf_append(b, s, strlen(s)); }

int sy_buf_vprintf(sy_buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0) return SY_EINVAL;
  int rc = sy_buf_reserve(b, (size_t)n);
  if (rc) return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int sy_buf_printf(sy_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = sy_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int sy_buf_append_json_str(sy_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t start = b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[7];
    const char *out = NULL;
    size_t olen = 0;
    switch (c) {
    case '"': out = "\\\""; olen = 2; break;
    case '\\': out = "\\\\"; olen = 2; break;
    case '\n': out = "\\n"; olen = 2; break;
    case '\r': out = "\\r"; olen = 2; break;
    case '\t': out = "\\t"; olen = 2; break;
    default:
      if (c < 0x20) {
        esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
        esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
        out = esc; olen = 6;
      }
    }
    int rc = out ? sy_buf_append(b, out, olen) : sy_buf_append(b, &s[i], 1);
    if (rc) {
      b->len = start;
      if (b->data) b->data[start] = '\0';
      return rc;
    }
  }
  return 0;
}

void sy_buf_consume(sy_buf *b, size_t n) {
  if (n >= b->len) {
    sy_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

char *sy_buf_detach(sy_buf *b, size_t *len) {
  char *p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}
