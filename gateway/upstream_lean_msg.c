/* The lean client's message helpers: base URL parsing, the request head it
 * writes, the response head filter. Pure functions over buffers, so the
 * connection code in upstream_lean.c only moves bytes and states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "gateway/upstream_lean.h"

enum { HDR_NONE = 0, HDR_FIELD, HDR_VALUE, HDR_SKIP };

/* ---- base URL --------------------------------------------------------------------------- */

int sy__lean_parse_url(const char *url, sy__lean_url *u) {
  if (strncmp(url, "http://", 7) != 0) return SY_EINVAL;
  const char *auth = url + 7, *hs = auth, *he, *q;
  if (*hs == '[') {
    he = strchr(hs, ']');
    if (!he) return SY_EINVAL;
    hs++;
    q = he + 1;
  } else {
    he = hs + strcspn(hs, ":/?#");
    q = he;
  }
  unsigned long port = 80;
  if (*q == ':') {
    char *end;
    port = strtoul(q + 1, &end, 10);
    if (end == q + 1 || q[1] < '0' || q[1] > '9' || port == 0 || port > 65535) return SY_EINVAL;
    q = end;
  }
  if ((*q && *q != '/') || he == hs || he - hs > 255 || memchr(auth, '@', (size_t)(q - auth)) ||
      strpbrk(q, "?# \t\r\n"))
    return SY_EINVAL;
  u->host = hs;
  u->host_len = (size_t)(he - hs);
  u->port = (uint16_t)port;
  u->authority = auth;
  u->authority_len = (size_t)(q - auth);
  u->prefix = q;
  return 0;
}

/* ---- request head --------------------------------------------------------------------------- */

static int has_crlf(const char *s, size_t n) {
  return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

/* Fields that frame the message: the client writes those itself, a second
 * copy from the caller would make the request ambiguous (smuggling). */
static int framing_header(const char *name, size_t n) {
  return (n == 14 && strncasecmp(name, "content-length", 14) == 0) ||
         (n == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) ||
         (n == 10 && strncasecmp(name, "connection", 10) == 0);
}

int sy__lean_build_head(sy_buf *out, const sy_upstream_spec *s, const char *prefix,
                        size_t prefix_len, const char *host_line, size_t host_line_len) {
  size_t mlen = strlen(s->method);
  if (!mlen || strpbrk(s->method, " \t\r\n") || memchr(s->path, ' ', s->path_len) ||
      has_crlf(s->path, s->path_len))
    return SY_EINVAL;
  /* First pass: check the lines and size the buffer, so it is allocated once. */
  size_t total = mlen + 2 + prefix_len + s->path_len + 11 + host_line_len + 40;
  int own_host = 0;
  const char *line = s->headers;
  for (size_t i = 0; i < s->n_headers; i++) {
    size_t n = strlen(line);
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line || has_crlf(line, n)) return SY_EINVAL;
    if (colon - line == 4 && strncasecmp(line, "host", 4) == 0) own_host = 1;
    total += n + 2;
    line += n + 1;
  }
  if (total > out->max) return SY_ETOOBIG;
  int rc = sy_buf_reserve(out, total);
  if (rc) return rc;
  /* Reserved: the appends below cannot fail. */
  sy_buf_append(out, s->method, mlen);
  sy_buf_append(out, " ", 1);
  sy_buf_append(out, prefix, prefix_len);
  sy_buf_append(out, s->path, s->path_len);
  if (prefix_len + s->path_len == 0) sy_buf_append(out, "/", 1);
  sy_buf_append(out, " HTTP/1.1\r\n", 11);
  if (!own_host) sy_buf_append(out, host_line, host_line_len);
  line = s->headers;
  for (size_t i = 0; i < s->n_headers; i++) {
    size_t n = strlen(line);
    const char *colon = memchr(line, ':', n);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    /* "Name:" with nothing after it is libcurl's "do not send this field". */
    if (*v && !framing_header(line, (size_t)(colon - line))) {
      sy_buf_append(out, line, n);
      sy_buf_append(out, "\r\n", 2);
    }
    line += n + 1;
  }
  int no_len = s->body_len == 0 &&
               (strcmp(s->method, "GET") == 0 || strcmp(s->method, "HEAD") == 0 ||
                strcmp(s->method, "DELETE") == 0 || strcmp(s->method, "OPTIONS") == 0);
  char cl[40];
  int m = no_len ? snprintf(cl, sizeof cl, "\r\n")
                 : snprintf(cl, sizeof cl, "Content-Length: %zu\r\n\r\n", s->body_len);
  return sy_buf_append(out, cl, (size_t)m);
}

/* ---- response head ----------------------------------------------------------------------------- */

static int is_hop_header(const char *name, size_t n) {
#define H(s) {s, sizeof s - 1}
  static const struct {
    const char *s;
    size_t n;
  } hop[] = {H("connection"), H("keep-alive"), H("proxy-connection"), H("transfer-encoding"),
             H("te"), H("trailer"), H("upgrade"), H("content-length"), H("proxy-authenticate")};
#undef H
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (hop[i].n == n && strncasecmp(hop[i].s, name, n) == 0) return 1;
  return 0;
}

void sy__lean_head_init(sy__lean_head *h, size_t max) {
  sy_buf_init(&h->lines, max);
  h->raw = h->name_off = 0;
  h->max = max;
  h->state = HDR_NONE;
}

void sy__lean_head_reset(sy__lean_head *h) {
  sy_buf_reset(&h->lines);
  h->raw = h->name_off = 0;
  h->state = HDR_NONE;
}

int sy__lean_head_count(sy__lean_head *h, size_t n) {
  h->raw += n;
  return h->raw > h->max ? SY_ETOOBIG : 0;
}

/* The current line's value starts (or the line ends without one): decide
 * whether the line is kept, now that the whole name is known. */
static int value_start(sy__lean_head *h) {
  sy_buf *b = &h->lines;
  if (is_hop_header(b->data + h->name_off, b->len - h->name_off)) {
    b->len = h->name_off;
    b->data[b->len] = '\0';
    h->state = HDR_SKIP;
    return 0;
  }
  h->state = HDR_VALUE;
  return sy_buf_append(b, ": ", 2);
}

static int line_end(sy__lean_head *h) {
  int rc = 0;
  if (h->state == HDR_FIELD) rc = value_start(h);
  if (!rc && h->state == HDR_VALUE) rc = sy_buf_append(&h->lines, "\r\n", 2);
  h->state = HDR_NONE;
  return rc;
}

/* http-parser may hand a name or a value in several pieces (split reads). */
int sy__lean_head_field(sy__lean_head *h, const char *at, size_t len) {
  int rc = sy__lean_head_count(h, len + 4); /* ": " and CRLF as sent */
  if (rc) return rc;
  if (h->state != HDR_FIELD) {
    if ((rc = line_end(h))) return rc;
    h->name_off = h->lines.len;
    h->state = HDR_FIELD;
  }
  return sy_buf_append(&h->lines, at, len);
}

int sy__lean_head_value(sy__lean_head *h, const char *at, size_t len) {
  int rc = sy__lean_head_count(h, len);
  if (rc) return rc;
  if (h->state == HDR_FIELD && (rc = value_start(h))) return rc;
  return h->state == HDR_VALUE ? sy_buf_append(&h->lines, at, len) : 0;
}

int sy__lean_head_end(sy__lean_head *h) { return line_end(h); }
