/* switchyardctl scrub: a filter that runs the capture store's PII scrubber
 * over stdin, one line in, one line out. Handy to check what a capture would
 * look like, and to try a config pattern before deploying it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "ctl/ctl.h"
#include "store/scrub.h"

/* A longer line is an error rather than being split: a split could cut an
 * email or a card number in two, and both halves would pass unscrubbed. */
#define SY_CTL_SCRUB_MAX_LINE (1u << 20)

static void scrub_usage(FILE *out) {
  fprintf(out,
          "usage: switchyardctl scrub [--pattern NAME=REGEX]... [--help]\n"
          "\n"
          "Reads text on stdin and writes it to stdout with PII replaced by typed\n"
          "placeholders ([EMAIL] [PHONE] [CARD] [SSN] [IP] [IBAN] [SECRET]), one line\n"
          "in, one line out. Lines may be at most %u bytes.\n"
          "\n"
          "  --pattern NAME=REGEX  also replace matches of the PCRE2 REGEX with [NAME]\n"
          "                        (repeatable, at most %d; NAME is [A-Za-z][A-Za-z0-9_]*)\n"
          "  --help                show this help\n"
          "\n"
          "exit status: 0 all lines scrubbed, 1 a line could not be scrubbed (it is not\n"
          "written, and nothing after it is read) or I/O failed, 2 bad usage or pattern\n",
          (unsigned)SY_CTL_SCRUB_MAX_LINE, SY_SCRUB_MAX_EXTRA);
}

/* Reads one line without its '\n' into `line`. Returns 1 with *nl set when a
 * line was read, 0 at end of input, SY_ETOOBIG past the cap, SY_EIO on a read error. */
static int read_line(FILE *in, sy_buf *line, int *nl) {
  sy_buf_reset(line);
  *nl = 0;
  int c;
  while ((c = getc_unlocked(in)) != EOF) {
    if (c == '\n') {
      *nl = 1;
      return 1;
    }
    char ch = (char)c;
    int rc = sy_buf_append(line, &ch, 1);
    if (rc) return rc;
  }
  if (ferror(in)) return SY_EIO;
  return line->len > 0 ? 1 : 0;
}

static int run(const sy_scrub_rules *rules) {
  sy_scrubber *s = NULL;
  sy_buf line, out;
  sy_buf_init(&line, SY_CTL_SCRUB_MAX_LINE);
  /* placeholders can be longer than what they replace (a 1-byte custom match
   * becomes up to 34 bytes), so the output cap is the scrubber's own limit */
  sy_buf_init(&out, SY_SCRUB_MAX_INPUT);
  int status = 1;
  if (sy_scrubber_new(rules, &s)) {
    fprintf(stderr, "switchyardctl scrub: out of memory\n");
    goto done;
  }
  int flush_each = isatty(STDOUT_FILENO);
  for (unsigned long lineno = 1;; lineno++) {
    int nl, rc = read_line(stdin, &line, &nl);
    if (rc == 0) break;
    if (rc == SY_ETOOBIG) {
      fprintf(stderr, "switchyardctl scrub: line %lu is longer than %u bytes; not written\n",
              lineno, (unsigned)SY_CTL_SCRUB_MAX_LINE);
      goto done;
    }
    if (rc < 0) {
      fprintf(stderr, "switchyardctl scrub: reading stdin: %s\n", sy_strerror(rc));
      goto done;
    }
    sy_buf_reset(&out);
    rc = sy_scrub_text(s, line.data ? line.data : "", line.len, &out, NULL);
    if (!rc && nl) rc = sy_buf_append(&out, "\n", 1);
    if (rc) {
      const char *why = sy_scrubber_last_error(s);
      fprintf(stderr, "switchyardctl scrub: line %lu: %s; not written\n", lineno,
              why[0] ? why : sy_strerror(rc));
      goto done;
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
      perror("switchyardctl scrub: writing stdout");
      goto done;
    }
    if (flush_each) fflush(stdout);
  }
  status = 0;
done:
  if (fflush(stdout) != 0 && status == 0) {
    perror("switchyardctl scrub: writing stdout");
    status = 1;
  }
  sy_scrubber_free(s);
  sy_buf_free(&line);
  sy_buf_free(&out);
  return status;
}

int sy_ctl_cmd_scrub(int argc, char **argv) {
  sy_scrub_pattern pats[SY_SCRUB_MAX_EXTRA];
  char names[SY_SCRUB_MAX_EXTRA][SY_SCRUB_MAX_NAME + 1];
  size_t np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *spec = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      scrub_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--pattern")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "switchyardctl scrub: --pattern needs NAME=REGEX\n");
        return 2;
      }
      spec = argv[++i];
    } else if (!strncmp(a, "--pattern=", 10)) {
      spec = a + 10;
    } else {
      fprintf(stderr, "switchyardctl scrub: unknown option '%s'\n", a);
      scrub_usage(stderr);
      return 2;
    }
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
      fprintf(stderr, "switchyardctl scrub: --pattern '%s': expected NAME=REGEX\n", spec);
      return 2;
    }
    if (np == SY_SCRUB_MAX_EXTRA) {
      fprintf(stderr, "switchyardctl scrub: at most %d patterns\n", SY_SCRUB_MAX_EXTRA);
      return 2;
    }
    size_t nlen = (size_t)(eq - spec);
    if (nlen > SY_SCRUB_MAX_NAME) {
      fprintf(stderr, "switchyardctl scrub: pattern name longer than %d bytes\n",
              SY_SCRUB_MAX_NAME);
      return 2;
    }
    memcpy(names[np], spec, nlen);
    names[np][nlen] = '\0';
    pats[np].name = names[np];
    pats[np].pattern = eq + 1;
    np++;
  }
  sy_scrub_rules *rules = NULL;
  char err[256];
  int rc = sy_scrub_rules_new(pats, np, &rules, err, sizeof err);
  if (rc) {
    fprintf(stderr, "switchyardctl scrub: %s\n", err[0] ? err : sy_strerror(rc));
    return rc == SY_ECONFIG ? 2 : 1;
  }
  int status = run(rules);
  sy_scrub_rules_free(rules);
  return status;
}
