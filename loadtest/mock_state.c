/* switchyard-mock: the ring of recorded requests, the per-key fault counters,
 * and the small text helpers the JSON writers share. */
#include "loadtest/mock.h"

#include "common/err.h"
#include "common/log.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

/* A record holds method, url and headers (bounded by the header limit) plus
 * the capped body. */
#define REC_MAX (16 + 2 * SY_MOCK_MAX_HEADER_BYTES + SY_MOCK_RECORD_BODY_MAX + 2)

void sy_mock_state_init(sy_mock_state *s) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < SY_MOCK_RING; i++) sy_buf_init(&s->ring[i].data, REC_MAX);
  s->next_seq = 1;
}

void sy_mock_state_free(sy_mock_state *s) {
  for (size_t i = 0; i < SY_MOCK_RING; i++) sy_buf_free(&s->ring[i].data);
  s->ring_start = s->ring_count = 0;
}

void sy_mock_state_clear(sy_mock_state *s) {
  /* Keep the memory: a cleared ring fills up again at the same sizes. */
  for (size_t i = 0; i < SY_MOCK_RING; i++) sy_buf_reset(&s->ring[i].data);
  s->ring_start = s->ring_count = 0;
}

uint64_t sy_mock_state_record(sy_mock_state *s, const sy_mock_req *r) {
  uint64_t seq = s->next_seq++;
  size_t slot;
  if (s->ring_count < SY_MOCK_RING) {
    slot = (s->ring_start + s->ring_count) % SY_MOCK_RING;
    s->ring_count++;
  } else {
    slot = s->ring_start;
    s->ring_start = (s->ring_start + 1) % SY_MOCK_RING;
  }
  sy_mock_record *rec = &s->ring[slot];
  sy_buf *b = &rec->data;
  /* A body larger than the cap is cut, possibly inside a UTF-8 sequence;
   * the dump escapes bytes, so the JSON stays valid either way. */
  size_t blen = r->body_len < SY_MOCK_RECORD_BODY_MAX ? r->body_len : SY_MOCK_RECORD_BODY_MAX;
  size_t mlen = strlen(r->method);
  sy_buf_reset(b);
  int rc = sy_buf_reserve(b, mlen + 1 + r->url_len + 1 + r->headers_len + blen);
  if (rc == 0) {
    sy_buf_append(b, r->method, mlen + 1);
    sy_buf_append(b, r->url, r->url_len);
    sy_buf_append(b, "", 1);
    sy_buf_append(b, r->headers, r->headers_len);
    sy_buf_append(b, r->body, blen);
  } else {
    sy_warn("mock: cannot record request %" PRIu64 ": %s", seq, sy_strerror(rc));
    mlen = 0;
    blen = 0;
    sy_buf_reset(b);
    sy_buf_append(b, "\0\0", 2);
  }
  rec->seq = seq;
  rec->method_len = (uint32_t)mlen;
  rec->url_len = rc == 0 ? (uint32_t)r->url_len : 0;
  rec->headers_len = rc == 0 ? (uint32_t)r->headers_len : 0;
  rec->body_len = (uint32_t)blen;
  return seq;
}

int sy__mock_u64(sy_buf *out, uint64_t v, int base) {
  static const char digits[] = "0123456789abcdef";
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = digits[v % (unsigned)base];
    v /= (unsigned)base;
  } while (v);
  return sy_buf_append(out, tmp + i, sizeof tmp - i);
}

int sy__mock_json_esc(sy_buf *out, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  int rc = sy_buf_reserve(out, n); /* the common case: nothing to escape */
  size_t i = 0;
  while (rc == 0 && i < n) {
    /* Copy the longest run that needs no escaping in one append. */
    size_t j = i;
    while (j < n) {
      unsigned char c = (unsigned char)s[j];
      if (c < 0x20 || c == '"' || c == '\\') break;
      if (c < 0x80) {
        j++;
        continue;
      }
      size_t need = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
      int ok = need > 0 && j + need <= n;
      for (size_t k = 1; ok && k < need; k++) ok = ((unsigned char)s[j + k] & 0xC0) == 0x80;
      if (!ok) break;
      j += need;
    }
    if (j > i) rc = sy_buf_append(out, s + i, j - i);
    i = j;
    if (rc || i >= n) break;
    unsigned char c = (unsigned char)s[i++];
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\') {
      esc[1] = (char)c;
      rc = sy_buf_append(out, esc, 2);
    } else if (c == '\n' || c == '\r' || c == '\t') {
      esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      rc = sy_buf_append(out, esc, 2);
    } else {
      /* Other control bytes, and bytes that are not UTF-8 (a binary body, or
       * one cut inside a sequence), as \u00XX, so the output is always valid
       * JSON text. */
      rc = sy_buf_append(out, esc, 6);
    }
  }
  return rc;
}

static int json_str(sy_buf *out, const char *s, size_t n) {
  int rc = sy_buf_append(out, "\"", 1);
  if (rc == 0) rc = sy__mock_json_esc(out, s, n);
  return rc ? rc : sy_buf_append(out, "\"", 1);
}

/* Headers as a JSON object; repeated names are joined with ", " as HTTP allows. */
static int dump_headers(const char *h, size_t n, sy_buf *out) {
  int rc = sy_buf_append(out, "{", 1);
  int first = 1;
  size_t pos = 0;
  while (rc == 0 && pos < n) {
    const char *name = h + pos;
    size_t nlen = strnlen(name, n - pos);
    const char *val = name + nlen + 1;
    if (pos + nlen + 1 > n) break;
    size_t vlen = strnlen(val, n - pos - nlen - 1);
    size_t next = pos + nlen + 1 + vlen + 1;
    /* Skip a name already written by an earlier pair. */
    int seen = 0;
    for (size_t p = 0; p < pos && !seen;) {
      const char *pn = h + p;
      size_t pl = strlen(pn);
      const char *pv = pn + pl + 1;
      seen = pl == nlen && memcmp(pn, name, nlen) == 0;
      p += pl + 1 + strlen(pv) + 1;
    }
    if (!seen) {
      if (!first) rc = sy_buf_append(out, ",", 1);
      first = 0;
      if (rc == 0) rc = json_str(out, name, nlen);
      if (rc == 0) rc = sy_buf_append(out, ":\"", 2);
      int firstval = 1;
      for (size_t p = pos; rc == 0 && p < n;) {
        const char *pn = h + p;
        size_t pl = strnlen(pn, n - p);
        const char *pv = pn + pl + 1;
        size_t pvl = strnlen(pv, n - p - pl - 1);
        if (pl == nlen && memcmp(pn, name, nlen) == 0) {
          if (!firstval) rc = sy_buf_append(out, ", ", 2);
          firstval = 0;
          if (rc == 0) rc = sy__mock_json_esc(out, pv, pvl);
        }
        p += pl + 1 + pvl + 1;
      }
      if (rc == 0) rc = sy_buf_append(out, "\"", 1);
    }
    pos = next;
  }
  return rc ? rc : sy_buf_append(out, "}", 1);
}

int sy_mock_state_dump(const sy_mock_state *s, sy_buf *out) {
  int rc = sy_buf_append(out, "[", 1);
  for (size_t i = 0; rc == 0 && i < s->ring_count; i++) {
    const sy_mock_record *rec = &s->ring[(s->ring_start + i) % SY_MOCK_RING];
    const char *d = rec->data.data;
    const char *url = d + rec->method_len + 1;
    const char *hdrs = url + rec->url_len + 1;
    const char *body = hdrs + rec->headers_len;
    rc = sy_buf_printf(out, "%s{\"seq\":%" PRIu64 ",\"method\":", i ? "," : "", rec->seq);
    if (rc == 0) rc = json_str(out, d, rec->method_len);
    if (rc == 0) rc = sy_buf_appends(out, ",\"path\":");
    if (rc == 0) rc = json_str(out, url, rec->url_len);
    if (rc == 0) rc = sy_buf_appends(out, ",\"headers\":");
    if (rc == 0) rc = dump_headers(hdrs, rec->headers_len, out);
    if (rc == 0) rc = sy_buf_appends(out, ",\"body\":");
    if (rc == 0) rc = json_str(out, body, rec->body_len);
    if (rc == 0) rc = sy_buf_append(out, "}", 1);
  }
  return rc ? rc : sy_buf_append(out, "]", 1);
}

int sy_mock_state_fault_hit(sy_mock_state *s, const char *key, size_t len, uint64_t times) {
  uint64_t h = sy__mock_hash(key, len, 0);
  for (size_t i = 0; i < s->nfaults; i++) {
    sy_mock_fault_key *f = &s->faults[i];
    if (f->hash == h && f->len == len && memcmp(f->key, key, len) == 0) {
      f->count++;
      return f->count <= times;
    }
  }
  assert(len <= SY_MOCK_FAULT_KEY_MAX);
  size_t slot;
  if (s->nfaults < SY_MOCK_FAULT_KEYS) {
    slot = s->nfaults++;
  } else {
    slot = s->fault_evict;
    s->fault_evict = (s->fault_evict + 1) % SY_MOCK_FAULT_KEYS;
  }
  sy_mock_fault_key *f = &s->faults[slot];
  f->hash = h;
  f->len = (uint32_t)len;
  memcpy(f->key, key, len);
  f->count = 1;
  return 1 <= times;
}

void sy_mock_state_faults_clear(sy_mock_state *s) {
  s->nfaults = 0;
  s->fault_evict = 0;
}
