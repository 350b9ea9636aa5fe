#ifndef SY_JSONSCAN_H
#define SY_JSONSCAN_H

#include <stddef.h>

/* Finds a key of the top-level JSON object in raw bytes without building a
 * tree, so the gateway can splice a new value in (the "model" rewrite)
 * without re-serialising the whole body. The input must already be known to
 * be valid JSON (the proxy parsed it). Sets [*vstart, *vend) to the bytes of
 * the key's value (quotes included for strings). Returns 0, or -1 when the
 * key is absent. Keys with escapes are not matched (OpenAI's never have). */
int sy_json_find_top_key(const char *json, size_t len, const char *key, size_t *vstart,
                         size_t *vend);

/* The same for several keys in one pass: out[k] gets keys[k]'s value span
 * (found = 1) or stays {0, 0, 0}. Returns how many keys were found. */
typedef struct {
  size_t start, end;
  int found;
} sy_json_span;
int sy_json_find_top_keys(const char *json, size_t len, const char *const *keys, size_t nkeys,
                          sy_json_span *out);

/* Iterates the elements of the JSON array in json[0, len) (known valid):
 * *pos starts at 0; each call sets *el to the next element's span and
 * returns 1, or returns 0 at the end (or when json is no array). */
int sy_json_array_next(const char *json, size_t len, size_t *pos, sy_json_span *el);

/* Appends the text of the string value whose span is sp (quotes included),
 * with escapes decoded, to out. 0; -1 when sp is absent or no string; or
 * SY_ETOOBIG / SY_ENOMEM / SY_EINVAL from the buffer or the decoder, with
 * out as it was. */
struct sy_buf;
int sy_json_span_text(const char *json, const sy_json_span *sp, struct sy_buf *out);

#endif
