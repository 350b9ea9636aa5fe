#ifndef SY_STORE_ROUTES_INTERNAL_H
#define SY_STORE_ROUTES_INTERNAL_H

/* Shared between routes.c (the stored document) and routes_edit.c (the JSON
 * edits); not for use outside store/. */

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses a routes document (NULL = "[]") and checks the shape the store
 * relies on: an array of at most SY_ROUTES_MAX_ROUTES objects, each with a
 * string "name" of 1..SY_ROUTES_MAX_NAME bytes, names unique, text at most
 * SY_ROUTES_MAX_JSON_BYTES. On success *out is the caller's (cJSON_Delete).
 * 0, SY_EINVAL or SY_ETOOBIG with a message in err (may be NULL). */
int sy__routes_parse_doc(const char *json, cJSON **out, char *err, size_t errlen);

typedef struct {
  const char *name;   /* points into item */
  const cJSON *item;
} sy__routes_named;

/* The routes of a parsed document sorted by name (for merging two
 * documents). *out is the caller's (free()), NULL when the doc is empty.
 * 0 or SY_ENOMEM. */
int sy__routes_sorted(const cJSON *doc, sy__routes_named **out, size_t *n);

#endif
