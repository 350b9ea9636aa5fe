#ifndef SY_BUF_H
#define SY_BUF_H

#include <stddef.h>
#include <stdarg.h>

/* A growing byte buffer with a hard cap, in the spirit of curl's dynbuf.
 * Every growing buffer in switchyard goes through this type, so a limit is
 * always set: appending past `max` fails with SY_ETOOBIG and leaves the
 * contents as they were. The data is always NUL-terminated (the terminator
 * is not counted in len), so it can be handed to C string functions. */
typedef struct sy_buf {
  char *data;   /* NULL until the first append */
  size_t len;
  size_t cap;   /* allocated bytes, terminator included */
  size_t max;   /* largest len allowed */
} sy_buf;

/* Sets up an empty buffer that may hold at most `max` bytes. Allocates nothing. */
void sy_buf_init(sy_buf *b, size_t max);
/* Frees the memory and leaves the buffer empty and reusable (same max). */
void sy_buf_free(sy_buf *b);
/* Empties the buffer but keeps its memory. */
void sy_buf_reset(sy_buf *b);
/* Makes room for `extra` more bytes. 0, SY_ETOOBIG or SY_ENOMEM. */
int sy_buf_reserve(sy_buf *b, size_t extra);
/* Appends bytes. 0, SY_ETOOBIG or SY_ENOMEM (the buffer is unchanged on failure). */
int sy_buf_append(sy_buf *b, const void *p, size_t n);
int sy_buf_appends(sy_buf *b, const char *s);
/* printf-style append. Same returns as sy_buf_append. */
int sy_buf_printf(sy_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sy_buf_vprintf(sy_buf *b, const char *fmt, va_list ap);
/* Appends `s` escaped as the inside of a JSON string (no quotes added). */
int sy_buf_append_json_str(sy_buf *b, const char *s, size_t n);
/* Removes the first n bytes (memmove); n > len empties the buffer. */
void sy_buf_consume(sy_buf *b, size_t n);
/* Hands the memory to the caller (free() it) and leaves the buffer empty. */
char *sy_buf_detach(sy_buf *b, size_t *len);

#endif
