/* sy_scrub_json: scrubs the string values of a JSON document in one pass
 * over the raw bytes (common/jsonwalk.h validates and visits them), without
 * building a tree.
 *
 * Bytes are copied to the output lazily: a run of unchanged input is
 * appended only when a string after it changed, or at the end, so a
 * document in which nothing was found costs one memcpy and keeps its exact
 * bytes (whitespace, number spelling, escapes). A string value is looked at
 * only when a rule's gate could open on it (sy__scrub_may_match); a string
 * with escapes is decoded first, so "x\u0040example.com" is an address like
 * any other, and a changed string is re-encoded with sy_buf_append_json_str.
 * Long strings found clean are remembered (sy__scrub_known_clean), so the
 * history a chat resends with every turn is scanned once.
 * Object keys are never scrubbed: they are schema, not data. */
#include "store/scrub.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/jsonwalk.h"

typedef struct {
  sy_scrubber *s;
  const char *in;
  size_t copied; /* input bytes [0, copied) are already in out (or replaced) */
  sy_buf *out;
  sy_scrub_counts acc;
} splice;

static int on_string(void *ctx, const char *raw, size_t len, int escaped) {
  splice *sp = ctx;
  const char *txt = raw;
  size_t tlen = len;
  if (!len) return 0;
  if (escaped) {
    sy_buf *dec = sy__scrubber_dec(sp->s);
    sy_buf_reset(dec);
    int rc = sy_json_decode_string(raw, len, dec);
    if (rc) return rc;
    txt = dec->data ? dec->data : "";
    tlen = dec->len;
  }
  if (tlen >= 5 && !memcmp(txt, "data:", 5)) sy__scrubber_note_data_url(sp->s);
  if (sy__scrub_known_clean(sp->s, txt, tlen)) return 0;
  if (!sy__scrub_may_match(sp->s, txt, tlen)) {
    sy__scrub_remember_clean(sp->s, txt, tlen);
    return 0;
  }
  sy_buf *str = sy__scrubber_str(sp->s);
  sy_buf_reset(str);
  sy_scrub_counts c;
  int rc = sy__scrub_text_gated(sp->s, txt, tlen, str, &c);
  if (rc) return rc;
  if (!c.total) {
    sy__scrub_remember_clean(sp->s, txt, tlen);
    return 0;
  }
  rc = sy_buf_append(sp->out, sp->in + sp->copied, (size_t)(raw - (sp->in + sp->copied)));
  if (!rc) rc = sy_buf_append_json_str(sp->out, str->data, str->len);
  if (rc) return rc;
  sp->copied = (size_t)(raw + len - sp->in);
  for (int t = 0; t < SY_SCRUB_NTYPES; t++) sp->acc.n[t] += c.n[t];
  sp->acc.total += c.total;
  return 0;
}

int sy_scrub_json(sy_scrubber *s, const char *json, size_t len, sy_buf *out,
                  sy_scrub_counts *counts) {
  size_t errcap;
  char *err = sy__scrubber_err(s, &errcap);
  err[0] = '\0';
  if (counts) memset(counts, 0, sizeof *counts);
  if (len > SY_SCRUB_MAX_INPUT) {
    snprintf(err, errcap, "JSON of %zu bytes exceeds the %u byte limit", len,
             (unsigned)SY_SCRUB_MAX_INPUT);
    return SY_ETOOBIG;
  }
  splice sp = {.s = s, .in = json, .out = out};
  sy__scrubber_reset_data_url(s);
  size_t mark = out->len, at = 0;
  int rc = sy_json_walk(json, len, SY_SCRUB_MAX_JSON_DEPTH, on_string, &sp, &at);
  if (rc == SY_EINVAL && !err[0]) snprintf(err, errcap, "invalid JSON at byte %zu", at);
  if (rc == SY_ETOOBIG && !err[0])
    snprintf(err, errcap, "JSON nested deeper than %d", SY_SCRUB_MAX_JSON_DEPTH);
  if (!rc) rc = sy_buf_append(out, json + sp.copied, len - sp.copied);
  if (rc) {
    out->len = mark; /* fail closed: nothing half-scrubbed escapes */
    if (out->data) out->data[mark] = '\0';
    if (!err[0]) snprintf(err, errcap, "%s", sy_strerror(rc));
    return rc;
  }
  if (counts) *counts = sp.acc;
  return 0;
}
