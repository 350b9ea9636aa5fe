/* Aligned text tables (see table.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/table.h"

void sy_ctl_table_init(sy_ctl_table *t, size_t ncols, const char *const *headers) {
  assert(ncols >= 1 && ncols <= SY_CTL_TABLE_MAX_COLS);
  memset(t, 0, sizeof *t);
  t->ncols = ncols;
  for (size_t i = 0; i < ncols; i++) t->headers[i] = headers[i];
}

/* A copy of s cut to SY_CTL_TABLE_MAX_CELL bytes on a character boundary,
 * with control characters (a newline in a reason) shown as spaces. */
static char *cell_dup(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s);
  int cut = n > SY_CTL_TABLE_MAX_CELL;
  if (cut) {
    n = SY_CTL_TABLE_MAX_CELL - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  }
  char *c = malloc(n + 4);
  if (!c) return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    c[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
  }
  memcpy(c + n, cut ? "..." : "", cut ? 4 : 1);
  return c;
}

int sy_ctl_table_row(sy_ctl_table *t, const char *const *cells) {
  if (t->nrows >= SY_CTL_TABLE_MAX_ROWS) {
    t->dropped++;
    return 0;
  }
  if (t->nrows == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 16;
    char **nc = realloc(t->cells, ncap * t->ncols * sizeof *nc);
    if (!nc) return -1;
    t->cells = nc;
    t->cap = ncap;
  }
  char **row = t->cells + t->nrows * t->ncols;
  for (size_t i = 0; i < t->ncols; i++) {
    if (!(row[i] = cell_dup(cells[i]))) {
      while (i--) free(row[i]);
      return -1;
    }
  }
  t->nrows++;
  return 0;
}

/* Display width: UTF-8 continuation bytes do not count. */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
  return w;
}

static void print_cell(FILE *out, const char *s, size_t w, int right, int last) {
  size_t sw = width(s);
  size_t pad = w > sw ? w - sw : 0;
  if (right) fprintf(out, "%*s%s", (int)pad, "", s);
  else if (last) fputs(s, out);
  else fprintf(out, "%s%*s", s, (int)pad, "");
}

void sy_ctl_table_print(const sy_ctl_table *t, FILE *out) {
  size_t w[SY_CTL_TABLE_MAX_COLS];
  int right[SY_CTL_TABLE_MAX_COLS];
  for (size_t c = 0; c < t->ncols; c++) {
    const char *h = t->headers[c];
    right[c] = h[0] == '>';
    w[c] = width(h + right[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t cw = width(t->cells[r * t->ncols + c]);
      if (cw > w[c]) w[c] = cw;
    }
  }
  for (size_t c = 0; c < t->ncols; c++) {
    if (c) fputs("  ", out);
    print_cell(out, t->headers[c] + right[c], w[c], right[c], c + 1 == t->ncols);
  }
  fputc('\n', out);
  for (size_t r = 0; r < t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      if (c) fputs("  ", out);
      print_cell(out, t->cells[r * t->ncols + c], w[c], right[c], c + 1 == t->ncols);
    }
    fputc('\n', out);
  }
  if (t->dropped) fprintf(out, "(%zu more rows not shown)\n", t->dropped);
}

void sy_ctl_table_free(sy_ctl_table *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->nrows = t->cap = 0;
}
