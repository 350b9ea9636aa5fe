#ifndef SY_JSONWALK_H
#define SY_JSONWALK_H

#include <stddef.h>

/* A validating walk over raw JSON bytes, without building a tree: RFC 8259
 * (any value at the top, whitespace around it, nothing after it; strings
 * without raw control characters, valid escapes, surrogates in pairs;
 * numbers in JSON's grammar). The proxy uses it to check a request body and
 * the scrubber to visit string values, where a cJSON tree would cost a
 * parse, an allocation per node and a print. */

/* Called for every string value (not for object member names): the bytes
 * between the quotes, as they are in the input (escapes not decoded).
 * `escaped` is 1 when they contain a backslash. A non-zero return stops the
 * walk and is returned by sy_json_walk. */
typedef int (*sy_json_string_fn)(void *ctx, const char *raw, size_t len, int escaped);

/* Walks json[0, len). Returns 0, SY_EINVAL (not JSON), SY_ETOOBIG (arrays
 * and objects nested deeper than max_depth), or the callback's return. On
 * SY_EINVAL / SY_ETOOBIG, *err_at (may be NULL) is the byte offset where it
 * went wrong. `cb` may be NULL (validate only). */
int sy_json_walk(const char *json, size_t len, int max_depth, sy_json_string_fn cb, void *ctx,
                 size_t *err_at);

/* Decodes a string body from sy_json_walk (escapes included) into UTF-8 and
 * appends it to dst (a sy_buf). 0, SY_EINVAL (only for input sy_json_walk
 * did not accept), SY_ETOOBIG or SY_ENOMEM. */
struct sy_buf;
int sy_json_decode_string(const char *raw, size_t len, struct sy_buf *dst);

#endif
