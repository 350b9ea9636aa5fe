/* Precision and recall of the PII scrubber over tests/data/pii_corpus.tsv.
 *
 * Each corpus line is `input<TAB>expected`, where expected is the input with
 * every entity replaced by its placeholder ([EMAIL], [PHONE], ...).
 *
 * Counting method. Comparing placeholder counts alone would call a line right
 * when one entity is missed and another invented, and would miss wrong
 * boundaries. Instead, for both the expected line and the scrubber's output we
 * recover WHICH BYTES OF THE INPUT each placeholder replaced: the text between
 * placeholders is literal input, so the scrubbed line splits into literals
 * L0 P1 L1 ... Pn Ln, and the input must read L0 X1 L1 ... Xn Ln with every Xi
 * non-empty; Xi is then the span Pi replaced. (The split is found by
 * backtracking, taking each Xi as short as possible; the corpus never puts two
 * placeholders side by side, so the literals pin the split down.) An entity is
 * then the triple (start, end, type), and per type:
 *   TP = triples in both, FP = only in the output, FN = only in expected.
 * A right find with wrong boundaries, or the right span with the wrong type,
 * counts as one FP plus one FN. Look-alike lines (expected == input) can only
 * add FPs. If the output cannot be aligned with the input at all (the scrubber
 * changed text it should have copied), every expected entity of that line is
 * an FN and every placeholder in the output an FP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/scrub.h"

#define CORPUS SY_SOURCE_DIR "/tests/data/pii_corpus.tsv"
#define MAX_LINE 4096
#define MAX_ENT 32
#define NT SY_SCRUB_NTYPES

typedef struct {
  size_t s, e;
  int type;
} ent;

typedef struct {
  const char *lit[MAX_ENT + 1];
  size_t litlen[MAX_ENT + 1];
  int type[MAX_ENT];
  size_t n;
} split;

/* Splits a scrubbed line at the built-in placeholders. -1 if too many. */
static int split_line(const char *t, size_t len, split *sp) {
  sp->n = 0;
  sp->lit[0] = t;
  size_t i = 0, litstart = 0;
  while (i < len) {
    int found = -1;
    size_t plen = 0;
    if (t[i] == '[') {
      for (int k = 0; k < SY_SCRUB_CUSTOM; k++) {
        const char *nm = sy_scrub_type_name((sy_scrub_type)k);
        size_t nl = strlen(nm);
        if (i + nl + 2 <= len && !memcmp(t + i + 1, nm, nl) && t[i + 1 + nl] == ']') {
          found = k;
          plen = nl + 2;
          break;
        }
      }
    }
    if (found < 0) {
      i++;
      continue;
    }
    if (sp->n == MAX_ENT) return -1;
    sp->litlen[sp->n] = i - litstart;
    sp->type[sp->n] = found;
    sp->n++;
    i += plen;
    litstart = i;
    sp->lit[sp->n] = t + i;
  }
  sp->litlen[sp->n] = len - litstart;
  return 0;
}

/* Input must read L_k X_{k+1} L_{k+1} ... from pos; fills ents[k..]. */
static int align(const char *in, size_t len, const split *sp, size_t k, size_t pos, ent *ents) {
  if (pos + sp->litlen[k] > len || memcmp(in + pos, sp->lit[k], sp->litlen[k])) return 0;
  pos += sp->litlen[k];
  if (k == sp->n) return pos == len;
  for (size_t e = pos + 1; e <= len; e++) {
    ents[k].s = pos;
    ents[k].e = e;
    ents[k].type = sp->type[k];
    if (align(in, len, sp, k + 1, e, ents)) return 1;
  }
  return 0;
}

/* Entities of `scrubbed` as spans of `in`; -1 if it does not align. */
static int recover(const char *in, size_t len, const char *scrubbed, size_t slen, ent *ents,
                   size_t *n) {
  split sp;
  *n = 0;
  if (split_line(scrubbed, slen, &sp)) return -1;
  if (!align(in, len, &sp, 0, 0, ents)) {
    *n = sp.n; /* types are still known: all FP / FN */
    for (size_t i = 0; i < sp.n; i++) ents[i] = (ent){0, 0, sp.type[i]};
    return -1;
  }
  *n = sp.n;
  return 0;
}

static int has(const ent *a, size_t n, const ent *x) {
  for (size_t i = 0; i < n; i++)
    if (a[i].s == x->s && a[i].e == x->e && a[i].type == x->type) return 1;
  return 0;
}

static double ratio(unsigned a, unsigned b) { return b ? (double)a / b : 1.0; }

static void test_corpus(void **state) {
  (void)state;
  FILE *f = fopen(CORPUS, "r");
  assert_non_null(f);
  sy_scrub_rules *rules = NULL;
  char err[256];
  assert_int_equal(sy_scrub_rules_new(NULL, 0, &rules, err, sizeof err), 0);
  sy_scrubber *s = NULL, *ungated = NULL;
  assert_int_equal(sy_scrubber_new(rules, &s), 0);
  /* the gates are a prefilter only: every line must come out the same
   * when every rule runs on it */
  assert_int_equal(sy_scrubber_new(rules, &ungated), 0);
  sy__scrubber_set_gates(ungated, false);
  sy_buf out2;
  sy_buf_init(&out2, 4 * MAX_LINE);

  unsigned tp[NT] = {0}, fp[NT] = {0}, fn[NT] = {0}, labelled[NT] = {0};
  unsigned lines = 0, lookalikes = 0, wrong_lines = 0, lineno = 0;
  char line[MAX_LINE];
  sy_buf out;
  sy_buf_init(&out, 4 * MAX_LINE);
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t ll = strlen(line);
    assert_true(ll < sizeof line - 1 || line[ll - 1] == '\n'); /* no truncated lines */
    while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = '\0';
    if (ll == 0 || line[0] == '#') continue;
    char *tab = strchr(line, '\t');
    assert_non_null(tab);
    const char *in = line, *exp = tab + 1;
    size_t inlen = (size_t)(tab - line), explen = ll - inlen - 1;
    lines++;

    ent e_exp[MAX_ENT], e_out[MAX_ENT];
    size_t n_exp, n_out;
    /* a corpus line that does not align is a corpus bug, not a scrubber miss */
    assert_int_equal(recover(in, inlen, exp, explen, e_exp, &n_exp), 0);
    if (n_exp == 0) lookalikes++;
    for (size_t i = 0; i < n_exp; i++) labelled[e_exp[i].type]++;

    sy_buf_reset(&out);
    sy_scrub_counts c;
    assert_int_equal(sy_scrub_text(s, in, inlen, &out, &c), 0);
    assert_int_equal(c.total, 0 + c.n[0] + c.n[1] + c.n[2] + c.n[3] + c.n[4] + c.n[5] + c.n[6] + c.n[7]);
    sy_buf_reset(&out2);
    assert_int_equal(sy_scrub_text(ungated, in, inlen, &out2, NULL), 0);
    assert_int_equal(out2.len, out.len);
    assert_memory_equal(out2.data ? out2.data : "", out.data ? out.data : "", out.len);
    int aligned = recover(in, inlen, out.data ? out.data : "", out.len, e_out, &n_out) == 0;
    for (size_t i = 0; i < n_out; i++) {
      if (aligned && has(e_exp, n_exp, &e_out[i])) tp[e_out[i].type]++;
      else fp[e_out[i].type]++;
    }
    for (size_t i = 0; i < n_exp; i++)
      if (!aligned || !has(e_out, n_out, &e_exp[i])) fn[e_exp[i].type]++;
    if (out.len != explen || memcmp(out.data ? out.data : "", exp, explen)) {
      wrong_lines++;
      printf("  line %u%s\n    input:    %.*s\n    expected: %.*s\n    got:      %.*s\n", lineno,
             aligned ? "" : " (output does not align with input)", (int)inlen, in, (int)explen,
             exp, (int)out.len, out.data ? out.data : "");
    }
  }
  fclose(f);

  unsigned TP = 0, FP = 0, FN = 0;
  printf("  %-7s %5s %5s %5s %5s %9s %7s\n", "type", "label", "TP", "FP", "FN", "precision",
         "recall");
  for (int t = 0; t < SY_SCRUB_CUSTOM; t++) {
    printf("  %-7s %5u %5u %5u %5u %9.3f %7.3f\n", sy_scrub_type_name((sy_scrub_type)t),
           labelled[t], tp[t], fp[t], fn[t], ratio(tp[t], tp[t] + fp[t]),
           ratio(tp[t], tp[t] + fn[t]));
    TP += tp[t];
    FP += fp[t];
    FN += fn[t];
    /* every type is really exercised */
    assert_true(labelled[t] >= 10);
  }
  double precision = ratio(TP, TP + FP), recall = ratio(TP, TP + FN);
  printf("  %-7s %5u %5u %5u %5u %9.3f %7.3f\n", "all", TP + FN, TP, FP, FN, precision, recall);
  printf("  %u lines (%u look-alikes), %u scrubbed differently from expected\n", lines,
         lookalikes, wrong_lines);

  assert_true(lines >= 300);
  assert_true(lookalikes >= 100);
  assert_true(recall >= 0.98);
  assert_true(precision >= 0.95);

  sy_buf_free(&out);
  sy_buf_free(&out2);
  sy_scrubber_free(s);
  sy_scrubber_free(ungated);
  sy_scrub_rules_free(rules);
}

/* The counting method itself: a miss, an invention, a wrong boundary and a
 * wrong type are each seen, so the metrics above can fail. */
static void test_counting_method(void **state) {
  (void)state;
  const char *in = "mail a@b.io now";
  ent e[MAX_ENT];
  size_t n;
  assert_int_equal(recover(in, strlen(in), "mail [EMAIL] now", 16, e, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(e[0].s, 5);
  assert_int_equal(e[0].e, 11);
  assert_int_equal(e[0].type, SY_SCRUB_EMAIL);
  ent wrong_span[MAX_ENT];
  assert_int_equal(recover(in, strlen(in), "mail [EMAIL]o now", 17, wrong_span, &n), 0);
  assert_int_equal(n, 1);
  assert_false(has(e, 1, &wrong_span[0]));
  ent wrong_type[MAX_ENT];
  assert_int_equal(recover(in, strlen(in), "mail [PHONE] now", 16, wrong_type, &n), 0);
  assert_false(has(e, 1, &wrong_type[0]));
  assert_int_equal(recover(in, strlen(in), "mail a@b.io now", 15, e, &n), 0);
  assert_int_equal(n, 0);
  /* text that was changed, not replaced, does not align */
  assert_int_equal(recover(in, strlen(in), "mail [EMAIL] later", 18, e, &n), -1);
  /* several entities, with a literal that also occurs inside an entity */
  const char *in2 = "x 1.2.3.4 and 10.0.0.1 and y";
  assert_int_equal(recover(in2, strlen(in2), "x [IP] and [IP] and y", 21, e, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(e[0].s, 2);
  assert_int_equal(e[0].e, 9);
  assert_int_equal(e[1].s, 14);
  assert_int_equal(e[1].e, 22);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counting_method),
      cmocka_unit_test(test_corpus),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
