/* switchyardctl export: writes the fine-tuning dataset from a store, read-only
 * (safe next to a running gateway). See store/export.h for what is written. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "ctl/ctl.h"
#include "ctl/timearg.h"
#include "store/export.h"
#include "store/store.h"

/* Declared in ctl/ctl.h once the command is registered; repeated here so this
 * file stands alone under -Wmissing-prototypes. */
int sy_ctl_cmd_export(int argc, char **argv);

#define PATH_MAX_LEN 4000

static void export_usage(FILE *out) {
  fprintf(out,
          "usage: switchyardctl export --db PATH [options]\n"
          "Writes OpenAI chat fine-tuning JSONL from the capture store (opened read-only).\n\n"
          "  --db PATH            store folder (required)\n"
          "  --out FILE|-         training lines (default: standard output)\n"
          "  --val-out FILE       validation lines (required with --val-fraction)\n"
          "  --val-fraction F     share of prompts for validation, 0..1 (by prompt hash)\n"
          "  --pairs-out FILE     preference pairs (OpenAI DPO JSONL)\n"
          "  --since T, --until T time range: unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC),\n"
          "                       or an age like 30m, 12h, 7d (until is exclusive)\n"
          "  --route R, --arm A, --model M   only these\n"
          "  --min-rating N       mean rating at least N (up = 1, down = -1, score as given)\n"
          "  --only-corrected     only captures with a correction\n"
          "  --only-positive      only captures rated positively\n"
          "  --exclude-negative   drop captures rated negatively\n"
          "  --include-errors     keep failed and truncated answers\n"
          "  --json-summary       summary on stderr as one JSON object\n");
}

static int parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}


/* Output file written under a temporary name and renamed on success, so a
 * failed export never leaves a half file looking complete. */
typedef struct {
  const char *path; /* NULL or "-" = stdout */
  char tmp[PATH_MAX_LEN + 16];
  FILE *fp;
} outfile;

static int out_open(outfile *o, const char *path) {
  o->path = path;
  if (!path || !strcmp(path, "-")) {
    o->fp = stdout;
    return 0;
  }
  int n = snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof o->tmp) {
    fprintf(stderr, "export: path too long: %s\n", path);
    return -1;
  }
  o->fp = fopen(o->tmp, "w");
  if (!o->fp) {
    fprintf(stderr, "export: %s: %s\n", o->tmp, strerror(errno));
    return -1;
  }
  return 0;
}

static int out_close(outfile *o, int ok) {
  if (!o->fp) return 0;
  if (o->fp == stdout) return fflush(stdout) == 0 ? 0 : -1;
  int rc = fclose(o->fp);
  o->fp = NULL;
  if (ok && rc == 0 && rename(o->tmp, o->path) == 0) return 0;
  if (ok) fprintf(stderr, "export: writing %s failed: %s\n", o->path, strerror(errno));
  unlink(o->tmp);
  return -1;
}

int sy_ctl_cmd_export(int argc, char **argv) {
  enum { O_DB = 256, O_OUT, O_VALOUT, O_VALFRAC, O_PAIRS, O_SINCE, O_UNTIL, O_ROUTE, O_ARM,
         O_MODEL, O_MINR, O_ONLYCORR, O_ONLYPOS, O_EXCLNEG, O_INCLERR, O_JSON, O_HELP };
  static const struct option longopts[] = {
      {"db", required_argument, NULL, O_DB},
      {"out", required_argument, NULL, O_OUT},
      {"val-out", required_argument, NULL, O_VALOUT},
      {"val-fraction", required_argument, NULL, O_VALFRAC},
      {"pairs-out", required_argument, NULL, O_PAIRS},
      {"since", required_argument, NULL, O_SINCE},
      {"until", required_argument, NULL, O_UNTIL},
      {"route", required_argument, NULL, O_ROUTE},
      {"arm", required_argument, NULL, O_ARM},
      {"model", required_argument, NULL, O_MODEL},
      {"min-rating", required_argument, NULL, O_MINR},
      {"only-corrected", no_argument, NULL, O_ONLYCORR},
      {"only-positive", no_argument, NULL, O_ONLYPOS},
      {"exclude-negative", no_argument, NULL, O_EXCLNEG},
      {"include-errors", no_argument, NULL, O_INCLERR},
      {"json-summary", no_argument, NULL, O_JSON},
      {"help", no_argument, NULL, O_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *out = NULL, *val_out = NULL, *pairs_out = NULL;
  int json = 0;
  sy_export_opts eo;
  memset(&eo, 0, sizeof eo);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;

  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case O_DB: db = optarg; break;
    case O_OUT: out = optarg; break;
    case O_VALOUT: val_out = optarg; break;
    case O_PAIRS: pairs_out = optarg; break;
    case O_VALFRAC:
      if (parse_double(optarg, &eo.val_fraction) || eo.val_fraction < 0 || eo.val_fraction > 1)
        goto bad;
      break;
    case O_SINCE:
      if (sy_ctl_time_arg(optarg, now_us, &eo.since_us)) goto bad;
      break;
    case O_UNTIL:
      if (sy_ctl_time_arg(optarg, now_us, &eo.until_us)) goto bad;
      break;
    case O_ROUTE: eo.route = optarg; break;
    case O_ARM: eo.arm = optarg; break;
    case O_MODEL: eo.model = optarg; break;
    case O_MINR:
      if (parse_double(optarg, &eo.min_rating)) goto bad;
      eo.has_min_rating = 1;
      break;
    case O_ONLYCORR: eo.only_corrected = 1; break;
    case O_ONLYPOS: eo.only_positive = 1; break;
    case O_EXCLNEG: eo.exclude_negative = 1; break;
    case O_INCLERR: eo.include_errors = 1; break;
    case O_JSON: json = 1; break;
    case O_HELP: export_usage(stdout); return 0;
    default: goto bad;
    }
  }
  if (optind != argc || !db) goto bad;
  if (eo.val_fraction > 0 && !val_out) {
    fprintf(stderr, "export: --val-fraction needs --val-out\n");
    goto bad;
  }
  if (eo.until_us && eo.until_us <= eo.since_us) {
    fprintf(stderr, "export: --until must be after --since\n");
    goto bad;
  }
  int only_stdout = 0;
  if ((val_out && !strcmp(val_out, "-")) || (pairs_out && !strcmp(pairs_out, "-"))) only_stdout = 1;
  if (only_stdout) {
    fprintf(stderr, "export: only --out may be '-'\n");
    goto bad;
  }

  sy_store_opts so;
  memset(&so, 0, sizeof so);
  so.path = db;
  so.read_only = 1;
  sy_store *s = NULL;
  int rc = sy_store_open(&so, &s);
  if (rc) {
    fprintf(stderr, "export: cannot open store %s: %s\n", db,
            rc == SY_ENOTFOUND ? "no store there" : sy_strerror(rc));
    return 1;
  }
  outfile ot = {0}, ov = {0}, op = {0};
  int ok = out_open(&ot, out) == 0 && (!val_out || out_open(&ov, val_out) == 0) &&
           (!pairs_out || out_open(&op, pairs_out) == 0);
  sy_export_summary sum;
  memset(&sum, 0, sizeof sum);
  if (ok) {
    eo.train = ot.fp;
    eo.val = ov.fp;
    eo.pairs = op.fp;
    rc = sy_export_run(s, &eo, &sum);
    if (rc) fprintf(stderr, "export: failed: %s\n", sy_strerror(rc));
    ok = rc == 0;
  }
  ok = (out_close(&ot, ok) == 0) & ok;
  ok = (out_close(&ov, ok) == 0) & ok;
  ok = (out_close(&op, ok) == 0) & ok;
  sy_store_close(s);
  if (json) {
    sy_buf b;
    sy_buf_init(&b, 1 << 20);
    if (sy_export_summary_json(&sum, &b) == 0) fprintf(stderr, "%s\n", b.data);
    sy_buf_free(&b);
  } else {
    sy_export_summary_print(&sum, stderr);
  }
  return ok ? 0 : 1;

bad:
  export_usage(stderr);
  return 2;
}
