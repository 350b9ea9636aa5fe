#ifndef SY_CTL_TABLE_H
#define SY_CTL_TABLE_H

/* Aligned text tables for switchyardctl's human output. Cells are copied;
 * columns are as wide as their widest cell (counted in UTF-8 characters).
 * A header starting with '>' marks a right-aligned (numeric) column; the
 * '>' is not printed. */

#include <stddef.h>
#include <stdio.h>

#define SY_CTL_TABLE_MAX_COLS 16
#define SY_CTL_TABLE_MAX_ROWS 100000 /* rows past this are dropped and counted */
#define SY_CTL_TABLE_MAX_CELL 256    /* longer cells are cut with "..." */

typedef struct sy_ctl_table {
  size_t ncols;
  const char *headers[SY_CTL_TABLE_MAX_COLS];
  char **cells;   /* nrows * ncols copies */
  size_t nrows, cap;
  size_t dropped; /* rows refused because of the row limit */
} sy_ctl_table;

/* Sets up a table with `ncols` (1..SY_CTL_TABLE_MAX_COLS) columns. The header
 * strings are borrowed (string literals). */
void sy_ctl_table_init(sy_ctl_table *t, size_t ncols, const char *const *headers);

/* Appends a row of ncols strings (NULL prints as ""). Returns 0, or -1 when
 * out of memory (the row is not added). */
int sy_ctl_table_row(sy_ctl_table *t, const char *const *cells);

/* Prints the header and the rows, two spaces between columns. */
void sy_ctl_table_print(const sy_ctl_table *t, FILE *out);

/* Frees the cells. */
void sy_ctl_table_free(sy_ctl_table *t);

#endif
