/* switchyardctl health, keys, label, captures-remote and export-remote: the
 * non-route half of the Admin service. Arguments are checked before anything
 * is sent (exit 2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <grpc/status.h>

#include "ctl/admin.h"
#include "ctl/ctl.h"
#include "ctl/pbjson.h"
#include "ctl/table.h"
#include "switchyard/v1/admin.pb-c.h"

#define LIST_LIMIT_MAX 1000        /* ListCapturesRequest.limit */
#define EXPORT_LIMIT_MAX 100000000 /* ExportDatasetRequest.limit (uint32, sane) */
#define CORRECTION_MAX (256 * 1024)
#define COMMENT_MAX 4096
#define REASON_MAX 1024
#define TAGS_MAX 32
#define TAG_LEN_MAX 64
#define FILTER_STR_MAX 256

static const char *s_or(const char *s, const char *dflt) { return s && *s ? s : dflt; }

/* ---- usage -------------------------------------------------------------- */

#define FILTER_HELP                                                                          \
  "filters:\n"                                                                               \
  "  --since T, --until T  unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC), or an age like\n" \
  "                        30m, 12h, 7d\n"                                                   \
  "  --route R, --arm A, --model M, --client-key NAME   only these\n"                        \
  "  --rated-up            only captures rated positively\n"                                 \
  "  --corrected           only captures with a correction\n"                                \
  "  --ok                  only HTTP 200 answers that were not truncated\n"

static void health_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl health [options]\n"
               "Checks the gateway over the admin API: status, version, workers, capture,\n"
               "the published route table, and who you are (token name and role).\n\n"
               SY_CTL_ADMIN_COMMON_HELP);
}

static void keys_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl keys create NAME [--no-capture] [--reason TEXT]\n"
               "       switchyardctl keys revoke NAME [--reason TEXT]\n"
               "       switchyardctl keys list [--all]\n"
               "Client API keys (for /v1/... requests). create prints the key once: it is\n"
               "stored only hashed. --no-capture: this key's traffic is not captured.\n"
               "list --all includes revoked keys. NAME: [A-Za-z0-9_.-], 1..63.\n\n"
               SY_CTL_ADMIN_COMMON_HELP);
}

static void label_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl label CAPTURE_ID --verify [--tag T]... [--comment C]\n"
               "       switchyardctl label CAPTURE_ID --correct TEXT [--tag T]... [--comment C]\n"
               "Records a labeller's verdict on a captured answer: correct as captured\n"
               "(--verify), or the answer it should have been (--correct). Corrections go\n"
               "into the fine-tuning export in place of the captured answer.\n\n"
               SY_CTL_ADMIN_COMMON_HELP);
}

static void captures_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl captures-remote list [filters] [--limit N] [--after ID] "
               "[--newest]\n"
               "       switchyardctl captures-remote show ID\n"
               "Captured request/response pairs over the admin API (for a store on this\n"
               "machine, `switchyardctl captures --db` reads it directly).\n"
               "list: --limit 1..1000 (default 100); --after ID pages on (the last line says\n"
               "what to pass); --newest lists newest first.\n"
               FILTER_HELP "\n" SY_CTL_ADMIN_COMMON_HELP);
}

static void export_usage(FILE *out) {
  fprintf(out, "usage: switchyardctl export-remote [filters] [options]\n"
               "Streams the fine-tuning dataset (JSONL) from the gateway.\n"
               "  --out FILE|-          training lines (default: standard output)\n"
               "  --val-out FILE        validation lines (required with --val-fraction)\n"
               "  --val-fraction F      share for validation, 0..0.5 (deterministic by seed)\n"
               "  --seed N              split seed (default 0)\n"
               "  --format chat|preference   fine-tuning chat lines (default) or preference pairs\n"
               "  --dedup               drop duplicate prompts\n"
               "  --limit N             at most N lines\n"
               "  --json                one ExportLine per line ({\"json\":...,\"split\":...})\n"
               "                        instead of the dataset lines\n"
               "--timeout-ms bounds the whole stream: raise it for a large export. A failed\n"
               "export removes the files it was writing.\n"
               FILTER_HELP "\n" SY_CTL_ADMIN_COMMON_HELP);
}

/* ---- arguments ---------------------------------------------------------- */

enum {
  O_NO_CAPTURE = 1, O_REASON, O_ALL, O_VERIFY, O_CORRECT, O_TAG, O_COMMENT, O_LIMIT, O_AFTER,
  O_NEWEST, O_SINCE, O_UNTIL, O_ROUTE, O_ARM, O_MODEL, O_CLIENT_KEY, O_RATED_UP, O_CORRECTED,
  O_OK, O_OUT, O_VAL_OUT, O_VAL_FRACTION, O_SEED, O_FORMAT, O_DEDUP, O_NOPT
};
#define BIT(o) (1u << (o))
#define FILTER_BITS                                                                          \
  (BIT(O_SINCE) | BIT(O_UNTIL) | BIT(O_ROUTE) | BIT(O_ARM) | BIT(O_MODEL) | BIT(O_CLIENT_KEY) | \
   BIT(O_RATED_UP) | BIT(O_CORRECTED) | BIT(O_OK))

typedef struct {
  sy_ctl_admin_opts o;
  unsigned seen;
  const char *val[O_NOPT]; /* the value of each option taking one */
  const char *tags[TAGS_MAX];
  size_t ntags;
  int first; /* first positional argument */
} cmd_args;

/* Parses argv (argv[0] = the word before the options). Returns -1 for
 * --help (usage printed), 2 for a usage error, 0 otherwise. Options not in
 * `allowed` are usage errors. */
static int parse(const char *cmd, int argc, char **argv, unsigned allowed, cmd_args *a,
                 void (*usage)(FILE *)) {
  static const struct option longopts[] = {
      SY_CTL_ADMIN_LONGOPTS,
      {"no-capture", no_argument, NULL, O_NO_CAPTURE},
      {"reason", required_argument, NULL, O_REASON},
      {"all", no_argument, NULL, O_ALL},
      {"verify", no_argument, NULL, O_VERIFY},
      {"correct", required_argument, NULL, O_CORRECT},
      {"tag", required_argument, NULL, O_TAG},
      {"comment", required_argument, NULL, O_COMMENT},
      {"limit", required_argument, NULL, O_LIMIT},
      {"after", required_argument, NULL, O_AFTER},
      {"newest", no_argument, NULL, O_NEWEST},
      {"since", required_argument, NULL, O_SINCE},
      {"until", required_argument, NULL, O_UNTIL},
      {"route", required_argument, NULL, O_ROUTE},
      {"arm", required_argument, NULL, O_ARM},
      {"model", required_argument, NULL, O_MODEL},
      {"client-key", required_argument, NULL, O_CLIENT_KEY},
      {"rated-up", no_argument, NULL, O_RATED_UP},
      {"corrected", no_argument, NULL, O_CORRECTED},
      {"ok", no_argument, NULL, O_OK},
      {"out", required_argument, NULL, O_OUT},
      {"val-out", required_argument, NULL, O_VAL_OUT},
      {"val-fraction", required_argument, NULL, O_VAL_FRACTION},
      {"seed", required_argument, NULL, O_SEED},
      {"format", required_argument, NULL, O_FORMAT},
      {"dedup", no_argument, NULL, O_DEDUP},
      {NULL, 0, NULL, 0},
  };
  memset(a, 0, sizeof *a);
  sy_ctl_admin_defaults(&a->o);
  optind = 0; /* glibc: full re-initialisation, argv[0] skipped */
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    int r = sy_ctl_admin_opt(&a->o, c, optarg);
    if (r < 0) return SY_CTL_EXIT_USAGE;
    if (r > 0) continue;
    if (c == SY_CTL_O_HELP) {
      usage(stdout);
      return -1;
    }
    if (c <= 0 || c >= O_NOPT)
      return sy_ctl_usage_error(cmd, "unknown option or missing value: %s (see --help)",
                                argv[optind - 1]);
    if (!(allowed & BIT(c)))
      return sy_ctl_usage_error(cmd, "%s is not an option here (see --help)", argv[optind - 1]);
    if (c == O_TAG) {
      if (a->ntags == TAGS_MAX) return sy_ctl_usage_error(cmd, "at most %d --tag", TAGS_MAX);
      if (!*optarg || strlen(optarg) > TAG_LEN_MAX)
        return sy_ctl_usage_error(cmd, "--tag: 1..%d bytes", TAG_LEN_MAX);
      a->tags[a->ntags++] = optarg;
    } else if ((a->seen & BIT(c)) && c != O_TAG) {
      return sy_ctl_usage_error(cmd, "%s given twice", argv[optind - 1]);
    }
    a->seen |= BIT(c);
    a->val[c] = optarg;
  }
  a->first = optind;
  return 0;
}

static int has(const cmd_args *a, int o) { return (a->seen & BIT(o)) != 0; }

/* Builds the capture filter from the filter options. 0 or 2 (printed). */
static int build_filter(const char *cmd, const cmd_args *a, Switchyard__V1__CaptureFilter *f) {
  switchyard__v1__capture_filter__init(f);
  static const struct {
    int opt;
    const char *name;
  } strs[] = {{O_ROUTE, "--route"}, {O_ARM, "--arm"}, {O_MODEL, "--model"},
              {O_CLIENT_KEY, "--client-key"}};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    const char *v = a->val[strs[i].opt];
    if (has(a, strs[i].opt) && (!*v || strlen(v) > FILTER_STR_MAX))
      return sy_ctl_usage_error(cmd, "%s: 1..%d bytes", strs[i].name, FILTER_STR_MAX);
  }
  if (has(a, O_ROUTE)) f->route = (char *)a->val[O_ROUTE];
  if (has(a, O_ARM)) f->arm = (char *)a->val[O_ARM];
  if (has(a, O_MODEL)) f->model = (char *)a->val[O_MODEL];
  if (has(a, O_CLIENT_KEY)) f->client_key = (char *)a->val[O_CLIENT_KEY];
  if (has(a, O_SINCE) && sy_ctl_parse_time(a->val[O_SINCE], &f->from_us))
    return sy_ctl_usage_error(cmd, "--since '%s': expected unix seconds, YYYY-MM-DD[THH:MM[:SS]]"
                                   "[Z] or an age like 12h", a->val[O_SINCE]);
  if (has(a, O_UNTIL) && sy_ctl_parse_time(a->val[O_UNTIL], &f->to_us))
    return sy_ctl_usage_error(cmd, "--until '%s': expected unix seconds, YYYY-MM-DD[THH:MM[:SS]]"
                                   "[Z] or an age like 12h", a->val[O_UNTIL]);
  if (f->from_us && f->to_us && f->from_us >= f->to_us)
    return sy_ctl_usage_error(cmd, "--since must be before --until");
  f->only_rated_up = has(a, O_RATED_UP);
  f->only_corrected = has(a, O_CORRECTED);
  f->only_ok = has(a, O_OK);
  return 0;
}

/* Prints `m` as JSON (--json) or with `human`, frees it, returns the exit code. */
static int finish(const cmd_args *a, ProtobufCMessage *m, void (*human)(const ProtobufCMessage *)) {
  int rc = 0;
  if (a->o.json)
    rc = sy_ctl_pbjson_print(stdout, m) ? SY_CTL_EXIT_FAILED : 0;
  else
    human(m);
  protobuf_c_message_free_unpacked(m, NULL);
  if (fflush(stdout) != 0) {
    fprintf(stderr, "switchyardctl: writing the output failed: %s\n", strerror(errno));
    rc = SY_CTL_EXIT_FAILED;
  }
  return rc;
}

/* ---- health ------------------------------------------------------------- */

static void print_health(const ProtobufCMessage *m) {
  const Switchyard__V1__HealthResponse *h = (const void *)m;
  uint64_t up = h->uptime_s;
  printf("status    %s\n", s_or(h->status, "?"));
  printf("version   %s\n", s_or(h->version, "?"));
  printf("workers   %u\n", h->workers);
  printf("capture   %s\n", h->capture_enabled ? "on" : "off");
  printf("routes    %u (table version %llu)\n", h->routes, (unsigned long long)h->routes_version);
  printf("uptime    %llud %02lluh %02llum %02llus\n", (unsigned long long)(up / 86400),
         (unsigned long long)(up / 3600 % 24), (unsigned long long)(up / 60 % 60),
         (unsigned long long)(up % 60));
  printf("caller    %s (%s)\n", s_or(h->caller, "?"), s_or(h->role, "?"));
}

int sy_ctl_cmd_health(int argc, char **argv) {
  cmd_args a;
  int rc = parse("health", argc, argv, 0, &a, health_usage);
  if (rc) return rc < 0 ? 0 : rc;
  if (a.first != argc) return sy_ctl_usage_error("health", "takes no arguments");
  Switchyard__V1__HealthRequest req = SWITCHYARD__V1__HEALTH_REQUEST__INIT;
  ProtobufCMessage *resp;
  rc = sy_ctl_admin_call(&a.o, "Health", &req.base, &switchyard__v1__health_response__descriptor,
                         &resp);
  return rc ? rc : finish(&a, resp, print_health);
}

/* ---- keys --------------------------------------------------------------- */

static void print_keys_table(Switchyard__V1__KeyInfo *const *keys, size_t n) {
  static const char *const h[] = {"NAME", "PREFIX", "CREATED", "BY", "CAPTURE", "REVOKED"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 6, h);
  for (size_t i = 0; i < n; i++) {
    const Switchyard__V1__KeyInfo *k = keys[i];
    char created[40], revoked[40];
    sy_ctl_fmt_time(k->created_at_us, created, sizeof created);
    if (k->revoked) sy_ctl_fmt_time(k->revoked_at_us, revoked, sizeof revoked);
    else snprintf(revoked, sizeof revoked, "-");
    const char *row[] = {k->name, s_or(k->prefix, "-"), created, s_or(k->created_by, "-"),
                         k->capture ? "yes" : "no", revoked};
    sy_ctl_table_row(&t, row);
  }
  sy_ctl_table_print(&t, stdout);
  sy_ctl_table_free(&t);
}

static void print_created(const ProtobufCMessage *m) {
  const Switchyard__V1__CreateKeyResponse *r = (const void *)m;
  if (r->key) print_keys_table(&r->key, 1);
  /* the one line a script needs, last; the warning goes to stderr */
  printf("\nsecret: %s\n", s_or(r->secret, "(none returned)"));
  fprintf(stderr, "switchyardctl: this is the only time the key is shown: store it now\n");
}

static void print_revoked(const ProtobufCMessage *m) {
  const Switchyard__V1__RevokeKeyResponse *r = (const void *)m;
  if (r->key) print_keys_table(&r->key, 1);
}

static void print_keys(const ProtobufCMessage *m) {
  const Switchyard__V1__ListKeysResponse *r = (const void *)m;
  if (!r->n_keys) {
    printf("no keys\n");
    return;
  }
  print_keys_table(r->keys, r->n_keys);
}

int sy_ctl_cmd_keys(int argc, char **argv) {
  if (argc < 2) {
    keys_usage(stderr);
    return SY_CTL_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    keys_usage(stdout);
    return 0;
  }
  const char *action = argv[1];
  char cmd[48];
  snprintf(cmd, sizeof cmd, "keys %.32s", action);
  int is_create = !strcmp(action, "create"), is_revoke = !strcmp(action, "revoke"),
      is_list = !strcmp(action, "list");
  if (!is_create && !is_revoke && !is_list) {
    fprintf(stderr, "switchyardctl keys: unknown action '%s'\n", action);
    keys_usage(stderr);
    return SY_CTL_EXIT_USAGE;
  }
  unsigned allowed = is_create ? BIT(O_NO_CAPTURE) | BIT(O_REASON)
                     : is_revoke ? BIT(O_REASON)
                                 : BIT(O_ALL);
  cmd_args a;
  int rc = parse(cmd, argc - 1, argv + 1, allowed, &a, keys_usage);
  if (rc) return rc < 0 ? 0 : rc;
  char **pos = argv + 1 + a.first;
  int npos = argc - 1 - a.first;
  const char *reason = a.val[O_REASON];
  if (reason && (!*reason || strlen(reason) > REASON_MAX))
    return sy_ctl_usage_error(cmd, "--reason: 1..%d bytes", REASON_MAX);
  ProtobufCMessage *resp;
  if (is_list) {
    if (npos) return sy_ctl_usage_error(cmd, "takes no arguments");
    Switchyard__V1__ListKeysRequest req = SWITCHYARD__V1__LIST_KEYS_REQUEST__INIT;
    req.include_revoked = has(&a, O_ALL);
    rc = sy_ctl_admin_call(&a.o, "ListKeys", &req.base,
                           &switchyard__v1__list_keys_response__descriptor, &resp);
    return rc ? rc : finish(&a, resp, print_keys);
  }
  if (npos != 1) return sy_ctl_usage_error(cmd, "expected NAME");
  if (sy_ctl_check_name(pos[0], SY_CTL_NAME_KEY))
    return sy_ctl_usage_error(cmd, "'%s' is not a key name ([A-Za-z0-9_.-], 1..63)", pos[0]);
  if (is_create) {
    Switchyard__V1__CreateKeyRequest req = SWITCHYARD__V1__CREATE_KEY_REQUEST__INIT;
    req.name = pos[0];
    req.no_capture = has(&a, O_NO_CAPTURE);
    if (reason) req.reason = (char *)reason;
    rc = sy_ctl_admin_call(&a.o, "CreateKey", &req.base,
                           &switchyard__v1__create_key_response__descriptor, &resp);
    return rc ? rc : finish(&a, resp, print_created);
  }
  Switchyard__V1__RevokeKeyRequest req = SWITCHYARD__V1__REVOKE_KEY_REQUEST__INIT;
  req.name = pos[0];
  if (reason) req.reason = (char *)reason;
  rc = sy_ctl_admin_call(&a.o, "RevokeKey", &req.base,
                         &switchyard__v1__revoke_key_response__descriptor, &resp);
  return rc ? rc : finish(&a, resp, print_revoked);
}

/* ---- label -------------------------------------------------------------- */

static uint64_t label_id; /* for the human line; one command per process */

static void print_labelled(const ProtobufCMessage *m) {
  const Switchyard__V1__LabelCaptureResponse *r = (const void *)m;
  printf("feedback %llu recorded on capture %llu\n", (unsigned long long)r->feedback_id,
         (unsigned long long)label_id);
}

int sy_ctl_cmd_label(int argc, char **argv) {
  const char *cmd = "label";
  cmd_args a;
  int rc = parse(cmd, argc, argv, BIT(O_VERIFY) | BIT(O_CORRECT) | BIT(O_TAG) | BIT(O_COMMENT),
                 &a, label_usage);
  if (rc) return rc < 0 ? 0 : rc;
  if (argc - a.first != 1) return sy_ctl_usage_error(cmd, "expected CAPTURE_ID (see --help)");
  uint64_t id;
  if (sy_ctl_parse_u64(argv[a.first], 1, UINT64_MAX, &id))
    return sy_ctl_usage_error(cmd, "'%s' is not a capture id (a positive integer)",
                              argv[a.first]);
  if (has(&a, O_VERIFY) == has(&a, O_CORRECT))
    return sy_ctl_usage_error(cmd, "give exactly one of --verify and --correct TEXT");
  const char *corr = a.val[O_CORRECT];
  if (corr && (!*corr || strlen(corr) > CORRECTION_MAX))
    return sy_ctl_usage_error(cmd, "--correct: 1..%d bytes", CORRECTION_MAX);
  const char *comment = a.val[O_COMMENT];
  if (comment && strlen(comment) > COMMENT_MAX)
    return sy_ctl_usage_error(cmd, "--comment: at most %d bytes", COMMENT_MAX);
  Switchyard__V1__LabelCaptureRequest req = SWITCHYARD__V1__LABEL_CAPTURE_REQUEST__INIT;
  req.id = id;
  req.verified = has(&a, O_VERIFY);
  if (corr) req.correction = (char *)corr;
  if (comment) req.comment = (char *)comment;
  req.n_tags = a.ntags;
  req.tags = (char **)a.tags;
  label_id = id;
  ProtobufCMessage *resp;
  rc = sy_ctl_admin_call(&a.o, "LabelCapture", &req.base,
                         &switchyard__v1__label_capture_response__descriptor, &resp);
  return rc ? rc : finish(&a, resp, print_labelled);
}

/* ---- captures-remote ---------------------------------------------------- */

static void print_capture_list(const ProtobufCMessage *m) {
  const Switchyard__V1__ListCapturesResponse *r = (const void *)m;
  static const char *const h[] = {"ID",      "TIME",    "ROUTE",   "ARM",         "MODEL",
                                  ">STATUS", "FINISH", ">TOKENS", ">LATENCY MS", ">FB"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 10, h);
  for (size_t i = 0; i < r->n_captures; i++) {
    const Switchyard__V1__CaptureSummary *c = r->captures[i];
    char id[24], when[40], st[12], tok[12], lat[24], fb[12];
    snprintf(id, sizeof id, "%llu", (unsigned long long)c->id);
    sy_ctl_fmt_time(c->ts_us, when, sizeof when);
    snprintf(st, sizeof st, "%u", c->http_status);
    snprintf(tok, sizeof tok, "%u", c->total_tokens);
    snprintf(lat, sizeof lat, "%.1f", (double)c->latency_us / 1000.0);
    snprintf(fb, sizeof fb, "%u", c->feedback);
    const char *row[] = {id, when, s_or(c->route, "-"), s_or(c->arm, "-"), s_or(c->model, "-"),
                         st, s_or(c->finish_reason, "-"), tok, lat, fb};
    sy_ctl_table_row(&t, row);
  }
  if (r->n_captures) sy_ctl_table_print(&t, stdout);
  else printf("no captures\n");
  sy_ctl_table_free(&t);
  if (r->next_after_id)
    printf("more: --after %llu\n", (unsigned long long)r->next_after_id);
}

/* A body pretty-printed when it is JSON, else as it is. */
static void print_body(const char *title, const char *s) {
  cJSON *j = s && *s ? cJSON_Parse(s) : NULL;
  char *p = j ? cJSON_Print(j) : NULL;
  printf("\n%s:\n%s\n", title, p ? p : s_or(s, "(empty)"));
  cJSON_free(p);
  cJSON_Delete(j);
}

static void print_capture(const ProtobufCMessage *m) {
  const Switchyard__V1__CaptureInfo *c = (const void *)m;
  const Switchyard__V1__CaptureSummary *s = c->summary;
  char when[40];
  if (s) {
    sy_ctl_fmt_time(s->ts_us, when, sizeof when);
    printf("capture   %llu (%s)\n", (unsigned long long)s->id, s_or(c->kind, "primary"));
    printf("time      %s\n", when);
    printf("route     %s, arm %s, model %s, upstream %s\n", s_or(s->route, "-"),
           s_or(s->arm, "-"), s_or(s->model, "-"), s_or(c->upstream, "-"));
    printf("status    %u, finish %s, %u tokens, %.1f ms\n", s->http_status,
           s_or(s->finish_reason, "-"), s->total_tokens, (double)s->latency_us / 1000.0);
  }
  if (c->parent_id) printf("parent    %llu\n", (unsigned long long)c->parent_id);
  if (c->error && *c->error) printf("error     %s\n", c->error);
  print_body("request", c->request_json);
  print_body("response", c->response_json);
  if (!c->n_feedback) return;
  printf("\nfeedback:\n");
  static const char *const h[] = {"ID", "TIME", "RATING", "LABELLER", "TAGS", "CORRECTION",
                                  "COMMENT"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 7, h);
  for (size_t i = 0; i < c->n_feedback; i++) {
    const Switchyard__V1__FeedbackInfo *f = c->feedback[i];
    char id[24], tags[256] = "", rating[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)f->id);
    sy_ctl_fmt_time(f->ts_us, when, sizeof when);
    if (f->rating && !strcmp(f->rating, "score")) snprintf(rating, sizeof rating, "%g", f->score);
    else snprintf(rating, sizeof rating, "%s", s_or(f->rating, "-"));
    size_t off = 0;
    for (size_t k = 0; k < f->n_tags && off < sizeof tags; k++) {
      int w = snprintf(tags + off, sizeof tags - off, "%s%s", k ? "," : "", f->tags[k]);
      if (w < 0) break;
      off += (size_t)w;
    }
    const char *row[] = {id, when, rating, s_or(f->labeller, "-"), tags[0] ? tags : "-",
                         s_or(f->correction, "-"), s_or(f->comment, "-")};
    sy_ctl_table_row(&t, row);
  }
  sy_ctl_table_print(&t, stdout);
  sy_ctl_table_free(&t);
}

int sy_ctl_cmd_captures_remote(int argc, char **argv) {
  if (argc < 2) {
    captures_usage(stderr);
    return SY_CTL_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    captures_usage(stdout);
    return 0;
  }
  const char *action = argv[1];
  int is_list = !strcmp(action, "list"), is_show = !strcmp(action, "show");
  if (!is_list && !is_show) {
    fprintf(stderr, "switchyardctl captures-remote: unknown action '%s'\n", action);
    captures_usage(stderr);
    return SY_CTL_EXIT_USAGE;
  }
  const char *cmd = is_list ? "captures-remote list" : "captures-remote show";
  unsigned allowed = is_list ? FILTER_BITS | BIT(O_LIMIT) | BIT(O_AFTER) | BIT(O_NEWEST) : 0;
  cmd_args a;
  int rc = parse(cmd, argc - 1, argv + 1, allowed, &a, captures_usage);
  if (rc) return rc < 0 ? 0 : rc;
  char **pos = argv + 1 + a.first;
  int npos = argc - 1 - a.first;
  ProtobufCMessage *resp;
  if (is_show) {
    uint64_t id;
    if (npos != 1) return sy_ctl_usage_error(cmd, "expected ID");
    if (sy_ctl_parse_u64(pos[0], 1, UINT64_MAX, &id))
      return sy_ctl_usage_error(cmd, "'%s' is not a capture id (a positive integer)", pos[0]);
    Switchyard__V1__GetCaptureRequest req = SWITCHYARD__V1__GET_CAPTURE_REQUEST__INIT;
    req.id = id;
    rc = sy_ctl_admin_call(&a.o, "GetCapture", &req.base, &switchyard__v1__capture_info__descriptor,
                           &resp);
    return rc ? rc : finish(&a, resp, print_capture);
  }
  if (npos) return sy_ctl_usage_error(cmd, "takes no arguments (filters are options)");
  Switchyard__V1__ListCapturesRequest req = SWITCHYARD__V1__LIST_CAPTURES_REQUEST__INIT;
  Switchyard__V1__CaptureFilter f;
  if ((rc = build_filter(cmd, &a, &f))) return rc;
  req.filter = &f;
  uint64_t v;
  if (has(&a, O_LIMIT)) {
    if (sy_ctl_parse_u64(a.val[O_LIMIT], 1, LIST_LIMIT_MAX, &v))
      return sy_ctl_usage_error(cmd, "--limit: expected 1..%d", LIST_LIMIT_MAX);
    req.limit = (uint32_t)v;
  }
  if (has(&a, O_AFTER)) {
    if (sy_ctl_parse_u64(a.val[O_AFTER], 0, UINT64_MAX, &req.after_id))
      return sy_ctl_usage_error(cmd, "--after: expected a capture id");
  }
  req.newest_first = has(&a, O_NEWEST);
  rc = sy_ctl_admin_call(&a.o, "ListCaptures", &req.base,
                         &switchyard__v1__list_captures_response__descriptor, &resp);
  return rc ? rc : finish(&a, resp, print_capture_list);
}

/* ---- export-remote ------------------------------------------------------ */

typedef struct {
  FILE *train, *val; /* val may be NULL: everything to train */
  int json;
  uint64_t lines, ntrain, nval;
  const char *train_name, *val_name;
} export_ctx;

static int export_cb(void *ctx, const ProtobufCMessage *msg, sy_ctl_grpc_status *st) {
  export_ctx *x = ctx;
  const Switchyard__V1__ExportLine *l = (const void *)msg;
  int is_val = l->split && !strcmp(l->split, "validation");
  FILE *out = is_val && x->val ? x->val : x->train;
  const char *name = out == x->val ? x->val_name : x->train_name;
  int wrc;
  if (x->json) {
    wrc = sy_ctl_pbjson_print(out, msg);
  } else {
    const char *j = l->json ? l->json : "";
    if (strchr(j, '\n')) {
      snprintf(st->message, sizeof st->message,
               "export: the server sent a line with a newline in it (line %llu)",
               (unsigned long long)x->lines + 1);
      return GRPC_STATUS_INTERNAL;
    }
    wrc = fprintf(out, "%s\n", j) < 0 ? -1 : 0;
  }
  if (wrc) {
    snprintf(st->message, sizeof st->message, "export: writing %s failed: %s", name,
             strerror(errno));
    return GRPC_STATUS_INTERNAL;
  }
  x->lines++;
  if (is_val) x->nval++;
  else x->ntrain++;
  return 0;
}

int sy_ctl_cmd_export_remote(int argc, char **argv) {
  const char *cmd = "export-remote";
  cmd_args a;
  unsigned allowed = FILTER_BITS | BIT(O_OUT) | BIT(O_VAL_OUT) | BIT(O_VAL_FRACTION) |
                     BIT(O_SEED) | BIT(O_FORMAT) | BIT(O_DEDUP) | BIT(O_LIMIT);
  int rc = parse(cmd, argc, argv, allowed, &a, export_usage);
  if (rc) return rc < 0 ? 0 : rc;
  if (a.first != argc) return sy_ctl_usage_error(cmd, "takes no arguments (filters are options)");
  Switchyard__V1__ExportDatasetRequest req = SWITCHYARD__V1__EXPORT_DATASET_REQUEST__INIT;
  Switchyard__V1__CaptureFilter f;
  if ((rc = build_filter(cmd, &a, &f))) return rc;
  req.filter = &f;
  const char *fmt = a.val[O_FORMAT];
  if (fmt && strcmp(fmt, "chat") && strcmp(fmt, "preference"))
    return sy_ctl_usage_error(cmd, "--format: chat or preference");
  if (fmt) req.format = (char *)fmt;
  if (has(&a, O_VAL_FRACTION)) {
    char *end;
    errno = 0;
    double d = strtod(a.val[O_VAL_FRACTION], &end);
    if (errno || end == a.val[O_VAL_FRACTION] || *end || !(d >= 0 && d <= 0.5))
      return sy_ctl_usage_error(cmd, "--val-fraction: expected 0..0.5");
    req.validation_fraction = d;
  }
  if (req.validation_fraction > 0 && !has(&a, O_VAL_OUT) && !a.o.json)
    return sy_ctl_usage_error(cmd, "--val-fraction needs --val-out FILE (or --json, which "
                                   "marks each line's split)");
  uint64_t v;
  if (has(&a, O_SEED) && sy_ctl_parse_u64(a.val[O_SEED], 0, UINT64_MAX, &req.seed))
    return sy_ctl_usage_error(cmd, "--seed: expected a non-negative integer");
  if (has(&a, O_LIMIT)) {
    if (sy_ctl_parse_u64(a.val[O_LIMIT], 1, EXPORT_LIMIT_MAX, &v))
      return sy_ctl_usage_error(cmd, "--limit: expected 1..%d", EXPORT_LIMIT_MAX);
    req.limit = (uint32_t)v;
  }
  req.dedup = has(&a, O_DEDUP);

  export_ctx x;
  memset(&x, 0, sizeof x);
  x.json = a.o.json;
  const char *out = a.val[O_OUT], *val_out = a.val[O_VAL_OUT];
  int to_file = out && strcmp(out, "-");
  if (val_out && (!strcmp(val_out, "-") || (out && !strcmp(out, val_out))))
    return sy_ctl_usage_error(cmd, "--val-out must be a file of its own");
  x.train_name = to_file ? out : "standard output";
  x.train = to_file ? fopen(out, "w") : stdout;
  if (!x.train) return sy_ctl_usage_error(cmd, "--out %s: %s", out, strerror(errno));
  if (val_out) {
    x.val_name = val_out;
    if (!(x.val = fopen(val_out, "w"))) {
      int e = errno;
      if (to_file) {
        fclose(x.train);
        unlink(out);
      }
      return sy_ctl_usage_error(cmd, "--val-out %s: %s", val_out, strerror(e));
    }
  }
  rc = sy_ctl_admin_stream(&a.o, "ExportDataset", &req.base,
                           &switchyard__v1__export_line__descriptor, export_cb, &x);
  int close_err = 0;
  if (to_file) close_err |= fclose(x.train) != 0;
  else close_err |= fflush(stdout) != 0;
  if (x.val) close_err |= fclose(x.val) != 0;
  if (!rc && close_err) {
    fprintf(stderr, "switchyardctl: export: writing the output failed: %s\n", strerror(errno));
    rc = SY_CTL_EXIT_FAILED;
  }
  if (rc) {
    /* a partial dataset must not be mistaken for a whole one */
    if (to_file) unlink(out);
    if (val_out) unlink(val_out);
    return rc;
  }
  fprintf(stderr, "export: %llu lines (%llu train, %llu validation)\n",
          (unsigned long long)x.lines, (unsigned long long)x.ntrain, (unsigned long long)x.nval);
  return 0;
}
