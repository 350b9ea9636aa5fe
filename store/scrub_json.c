/* sy_scrub_json: scrubs the string values of a JSON document in place, in
 * one pass over the raw bytes, without building a tree.
 *
 * The scanner validates RFC 8259 JSON (any value at the top, whitespace
 * around it, nothing after it) while it walks. Bytes are copied to the
 * output lazily: a run of unchanged input is appended only when a string
 * before it changed, or at the end, so a document in which nothing was
 * found costs one memcpy and keeps its exact bytes (whitespace, number
 * spelling, escapes). A string value is looked at only when a rule's gate
 * could open on it (sy__scrub_may_match); a string with escapes is decoded
 * first, so "x\u0040example.com" is an address like any other, and a
 * changed string is re-encoded with sy_buf_append_json_str. Object keys are
 * validated but never scrubbed: they are schema, not data. */
#include "store/scrub.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

typedef struct {
  sy_scrubber *s;
  const char *in, *p, *end;
  size_t copied;     /* input bytes [0, copied) are already in out (or replaced) */
  sy_buf *out;
  sy_scrub_counts acc;
  char *err;
  size_t errcap;
} jscan;

static int fail(jscan *j, int rc, const char *what) {
  if (!j->err[0]) snprintf(j->err, j->errcap, "%s at byte %zu", what, (size_t)(j->p - j->in));
  return rc;
}

static void skip_ws(jscan *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
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

static int put_utf8(sy_buf *b, unsigned cp) {
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

/* Decodes the escaped string body [a, b) into dec. The escapes were checked
 * by scan_string except for surrogate pairing, checked here. */
static int decode(jscan *j, const char *a, const char *b, sy_buf *dec) {
  sy_buf_reset(dec);
  const char *p = a;
  while (p < b) {
    const char *bs = memchr(p, '\\', (size_t)(b - p));
    if (!bs) bs = b;
    int rc = sy_buf_append(dec, p, (size_t)(bs - p));
    if (rc) return rc;
    if (bs == b) break;
    char c = bs[1], o = 0;
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
    default: { /* 'u' */
      unsigned cp, lo;
      hex4(bs + 2, &cp);
      p = bs + 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(j, SY_EINVAL, "invalid JSON: lone low surrogate");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (b - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
          return fail(j, SY_EINVAL, "invalid JSON: unpaired surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      rc = put_utf8(dec, cp);
      if (rc) return rc;
      continue;
    }
    }
    rc = sy_buf_append(dec, &o, 1);
    if (rc) return rc;
  }
  return 0;
}

/* At an opening quote: validates the string, and when it is a value
 * (scrub) runs the rules over its text and splices a changed one in. */
static int scan_string(jscan *j, int scrub) {
  const char *a = ++j->p; /* after the quote */
  int escaped = 0;
  for (;;) {
    if (j->p >= j->end) return fail(j, SY_EINVAL, "invalid JSON: unterminated string");
    unsigned char c = (unsigned char)*j->p;
    if (c == '"') break;
    if (c < 0x20) return fail(j, SY_EINVAL, "invalid JSON: control character in a string");
    if (c == '\\') {
      escaped = 1;
      if (j->end - j->p < 2) return fail(j, SY_EINVAL, "invalid JSON: unterminated string");
      char e = j->p[1];
      unsigned v;
      if (e == 'u') {
        if (j->end - j->p < 6 || hex4(j->p + 2, &v)) return fail(j, SY_EINVAL, "invalid JSON: bad \\u escape");
        j->p += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", e) || !e) return fail(j, SY_EINVAL, "invalid JSON: bad escape");
      j->p += 2;
      continue;
    }
    j->p++;
  }
  const char *b = j->p++; /* at the closing quote; step past it */
  if (!scrub || a == b) return 0;
  const char *txt = a;
  size_t tlen = (size_t)(b - a);
  if (escaped) {
    sy_buf *dec = sy__scrubber_dec(j->s);
    int rc = decode(j, a, b, dec);
    if (rc) return rc;
    txt = dec->data ? dec->data : "";
    tlen = dec->len;
  }
  if (!sy__scrub_may_match(j->s, txt, tlen)) return 0;
  sy_buf *str = sy__scrubber_str(j->s);
  sy_buf_reset(str);
  sy_scrub_counts c;
  int rc = sy__scrub_text_gated(j->s, txt, tlen, str, &c);
  if (rc) return rc;
  if (!c.total) return 0;
  rc = sy_buf_append(j->out, j->in + j->copied, (size_t)(a - (j->in + j->copied)));
  if (!rc) rc = sy_buf_append_json_str(j->out, str->data, str->len);
  if (rc) return rc;
  j->copied = (size_t)(b - j->in);
  for (int t = 0; t < SY_SCRUB_NTYPES; t++) j->acc.n[t] += c.n[t];
  j->acc.total += c.total;
  return 0;
}

static int scan_number(jscan *j) {
  const char *p = j->p, *e = j->end;
  if (p < e && *p == '-') p++;
  if (p >= e || *p < '0' || *p > '9') return fail(j, SY_EINVAL, "invalid JSON: bad number");
  if (*p == '0') p++;
  else while (p < e && *p >= '0' && *p <= '9') p++;
  if (p < e && *p == '.') {
    p++;
    if (p >= e || *p < '0' || *p > '9') return fail(j, SY_EINVAL, "invalid JSON: bad number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || *p < '0' || *p > '9') return fail(j, SY_EINVAL, "invalid JSON: bad number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  j->p = p;
  return 0;
}

static int scan_value(jscan *j, int depth) {
  skip_ws(j);
  if (j->p >= j->end) return fail(j, SY_EINVAL, "invalid JSON: value expected");
  char c = *j->p;
  if (c == '"') return scan_string(j, 1);
  if (c == '{' || c == '[') {
    if (depth >= SY_SCRUB_MAX_JSON_DEPTH) {
      if (!j->err[0]) snprintf(j->err, j->errcap, "JSON nested deeper than %d", SY_SCRUB_MAX_JSON_DEPTH);
      return SY_ETOOBIG;
    }
    char close = c == '{' ? '}' : ']';
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return 0;
    }
    for (;;) {
      int rc;
      if (c == '{') {
        skip_ws(j);
        if (j->p >= j->end || *j->p != '"') return fail(j, SY_EINVAL, "invalid JSON: member name expected");
        if ((rc = scan_string(j, 0))) return rc;
        skip_ws(j);
        if (j->p >= j->end || *j->p != ':') return fail(j, SY_EINVAL, "invalid JSON: ':' expected");
        j->p++;
      }
      if ((rc = scan_value(j, depth + 1))) return rc;
      skip_ws(j);
      if (j->p < j->end && *j->p == ',') {
        j->p++;
        continue;
      }
      if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
      }
      return fail(j, SY_EINVAL, "invalid JSON: ',' or end of container expected");
    }
  }
  static const char *const lit[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lit[i]);
    if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, lit[i], n)) {
      j->p += n;
      return 0;
    }
  }
  return scan_number(j);
}

int sy_scrub_json(sy_scrubber *s, const char *json, size_t len, sy_buf *out,
                  sy_scrub_counts *counts) {
  jscan j = {.s = s, .in = json, .p = json, .end = json + len, .out = out};
  j.err = sy__scrubber_err(s, &j.errcap);
  j.err[0] = '\0';
  if (counts) memset(counts, 0, sizeof *counts);
  if (len > SY_SCRUB_MAX_INPUT) {
    snprintf(j.err, j.errcap, "JSON of %zu bytes exceeds the %u byte limit", len,
             (unsigned)SY_SCRUB_MAX_INPUT);
    return SY_ETOOBIG;
  }
  size_t mark = out->len;
  int rc = scan_value(&j, 0);
  if (!rc) {
    skip_ws(&j);
    if (j.p != j.end) rc = fail(&j, SY_EINVAL, "invalid JSON: trailing data");
  }
  if (!rc) rc = sy_buf_append(out, json + j.copied, len - j.copied);
  if (rc) {
    out->len = mark; /* fail closed: nothing half-scrubbed escapes */
    if (out->data) out->data[mark] = '\0';
    if (!j.err[0]) snprintf(j.err, j.errcap, "%s", sy_strerror(rc));
    return rc;
  }
  if (counts) *counts = j.acc;
  return 0;
}
