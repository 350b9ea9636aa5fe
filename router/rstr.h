#ifndef SY_ROUTER_RSTR_H
#define SY_ROUTER_RSTR_H

#include <stddef.h>
#include <string.h>

/* A string owned by a route table: heap copy, NUL-terminated, length kept so
 * comparisons against request bytes (which are not NUL-terminated) need no
 * strlen. Lives exactly as long as the table that holds it. */
typedef struct sy_rstr {
  char *s;
  size_t len;
} sy_rstr;

/* 1 if the table string equals the n bytes at p. */
static inline int sy_rstr_eq(const sy_rstr *a, const char *p, size_t n) {
  return a->len == n && (n == 0 || memcmp(a->s, p, n) == 0);
}

#endif
