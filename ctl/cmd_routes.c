/* switchyardctl routes list|get|put|split|promote|rollback|shadow|history and
 * switchyardctl report: the route half of the Admin service. Arguments are
 * checked here before anything is sent (exit 2), so a typo never reaches the
 * gateway as a half-understood change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "ctl/admin.h"
#include "ctl/ctl.h"
#include "ctl/pbjson.h"
#include "ctl/table.h"
#include "switchyard/v1/admin.pb-c.h"

#define ROUTE_JSON_MAX (1024u * 1024) /* a route file larger than this is not a route */
#define SPLIT_MAX_ARMS 64
#define REASON_MAX 1024
#define HISTORY_MAX_LIMIT 100000

static void routes_usage(FILE *out) {
  fprintf(out,
          "usage: switchyardctl routes list\n"
          "       switchyardctl routes get NAME [--version N]\n"
          "       switchyardctl routes put FILE.json|- [--expected-version N] --reason TEXT\n"
          "       switchyardctl routes split NAME ARM=BP... [--expected-version N] --reason TEXT\n"
          "       switchyardctl routes promote NAME ARM [--expected-version N] --reason TEXT\n"
          "       switchyardctl routes rollback NAME [--to-version N] [--expected-version N] "
          "--reason TEXT\n"
          "       switchyardctl routes shadow NAME ARM RATE [--expected-version N] --reason TEXT\n"
          "       switchyardctl routes shadow NAME --off [--expected-version N] --reason TEXT\n"
          "       switchyardctl routes history NAME [--limit N]\n"
          "Routes over the admin API. Every change is versioned, recorded in the history\n"
          "with your token's name and the reason, and published to all workers at once.\n"
          "put: FILE holds one route as in the config's \"routes\" array; without\n"
          "  --expected-version the route must not exist yet (else ALREADY_EXISTS); with it\n"
          "  the current version must match (else ABORTED: re-read and retry).\n"
          "split: weights in basis points (ARM=2500) or percent (ARM=25%%), summing to\n"
          "  10000; arms not listed get 0.  promote: ARM takes 100%%.\n"
          "rollback: back to the version before the current one, or --to-version N (as a\n"
          "  new version: history only grows).  shadow: mirror RATE (basis points or\n"
          "  percent) of requests to ARM; --off stops it.  history: newest first.\n\n" SY_CTL_ADMIN_COMMON_HELP);
}

static void report_usage(FILE *out) {
  fprintf(out,
          "usage: switchyardctl report NAME [--since T] [--until T] [--base ARM]\n"
          "Per-arm report of a route over a time window: requests, errors, latency p50/p99,\n"
          "tokens, cascade acceptance, shadow agreement, feedback approval with a 95%%\n"
          "(Wilson) interval, the comparison against the base arm (difference, p-value)\n"
          "and the recommendation with the rule it applied.\n"
          "  --since T, --until T  unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC), or an\n"
          "                        age like 30m, 12h, 7d (default: the last 24 hours)\n"
          "  --base ARM            arm to compare with (default: the route's first arm)\n\n" SY_CTL_ADMIN_COMMON_HELP);
}

/* ---- output ------------------------------------------------------------- */

static const char *s_or(const char *s, const char *dflt) { return s && *s ? s : dflt; }

static void fmt_bp(uint32_t bp, char *buf, size_t n) {
  snprintf(buf, n, "%u.%02u%%", bp / 100, bp % 100);
}

static void print_arms(const Switchyard__V1__RouteInfo *r) {
  static const char *const h[] = {"ARM", ">WEIGHT", "UPSTREAM", "MODEL"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 4, h);
  for (size_t i = 0; i < r->n_arms; i++) {
    const Switchyard__V1__ArmInfo *a = r->arms[i];
    char w[16];
    fmt_bp(a->weight_bp, w, sizeof w);
    const char *row[] = {a->name, w, a->upstream, a->model};
    sy_ctl_table_row(&t, row);
  }
  sy_ctl_table_print(&t, stdout);
  sy_ctl_table_free(&t);
}

/* One route: the summary, and with `definition` its JSON pretty-printed. */
static void print_route(const Switchyard__V1__RouteInfo *r, int definition) {
  char when[40], rate[16];
  sy_ctl_fmt_time(r->updated_at_us, when, sizeof when);
  printf("route    %s\n", r->name);
  printf("version  %llu (%s)\n", (unsigned long long)r->version, s_or(r->source, "?"));
  printf("updated  %s by %s", when, s_or(r->updated_by, "-"));
  if (r->reason && *r->reason) printf(": %s", r->reason);
  printf("\n");
  if (r->shadow && r->shadow->arm && *r->shadow->arm) {
    fmt_bp(r->shadow->rate_bp, rate, sizeof rate);
    printf("shadow   %s at %s\n", r->shadow->arm, rate);
  } else {
    printf("shadow   off\n");
  }
  printf("\n");
  print_arms(r);
  if (!definition) return;
  cJSON *j = r->route_json ? cJSON_Parse(r->route_json) : NULL;
  char *p = j ? cJSON_Print(j) : NULL;
  printf("\ndefinition:\n%s\n", p ? p : s_or(r->route_json, "(none)"));
  cJSON_free(p);
  cJSON_Delete(j);
}

/* Prints a RouteInfo answer (JSON or text) and frees it. */
static int finish_route(const sy_ctl_admin_opts *o, ProtobufCMessage *m, int definition) {
  int rc = 0;
  if (o->json)
    rc = sy_ctl_pbjson_print(stdout, m) ? SY_CTL_EXIT_FAILED : 0;
  else
    print_route((const Switchyard__V1__RouteInfo *)m, definition);
  protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

static void print_list(const Switchyard__V1__ListRoutesResponse *l) {
  static const char *const h[] = {"NAME", ">VERSION", "SOURCE", "ARMS", "SHADOW", "UPDATED", "BY"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 7, h);
  for (size_t i = 0; i < l->n_routes; i++) {
    const Switchyard__V1__RouteInfo *r = l->routes[i];
    sy_buf arms;
    sy_buf_init(&arms, SY_CTL_TABLE_MAX_CELL);
    for (size_t k = 0; k < r->n_arms; k++) {
      char w[16];
      fmt_bp(r->arms[k]->weight_bp, w, sizeof w);
      /* a cut cell is fine: the table marks it */
      (void)sy_buf_printf(&arms, "%s%s %s", k ? ", " : "", r->arms[k]->name, w);
    }
    char ver[24], when[40], shadow[96] = "-", rate[16];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)r->version);
    sy_ctl_fmt_time(r->updated_at_us, when, sizeof when);
    if (r->shadow && r->shadow->arm && *r->shadow->arm) {
      fmt_bp(r->shadow->rate_bp, rate, sizeof rate);
      snprintf(shadow, sizeof shadow, "%.64s %s", r->shadow->arm, rate);
    }
    const char *row[] = {r->name, ver, r->source, arms.data ? arms.data : "", shadow, when,
                         s_or(r->updated_by, "-")};
    sy_ctl_table_row(&t, row);
    sy_buf_free(&arms);
  }
  printf("table version %llu, %zu route%s\n", (unsigned long long)l->table_version, l->n_routes,
         l->n_routes == 1 ? "" : "s");
  if (l->n_routes) sy_ctl_table_print(&t, stdout);
  sy_ctl_table_free(&t);
}

static void print_history(const Switchyard__V1__GetHistoryResponse *h) {
  static const char *const hd[] = {">VERSION", "WHEN", "BY", "ACTION", "SUMMARY", "REASON"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 6, hd);
  for (size_t i = 0; i < h->n_entries; i++) {
    const Switchyard__V1__HistoryEntry *e = h->entries[i];
    char ver[24], when[40];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)e->version);
    sy_ctl_fmt_time(e->at_us, when, sizeof when);
    const char *row[] = {ver, when, s_or(e->by, "-"), e->action, e->summary, e->reason};
    sy_ctl_table_row(&t, row);
  }
  sy_ctl_table_print(&t, stdout);
  sy_ctl_table_free(&t);
}

/* ---- arguments ---------------------------------------------------------- */

typedef struct {
  sy_ctl_admin_opts o;
  const char *reason;
  uint64_t version, expected, to_version, limit;
  int have_version, have_expected, have_to, have_limit, off;
  const char *since, *until, *base;
} routes_args;

enum { O_VERSION = 1, O_EXPECTED, O_REASON, O_TO_VERSION, O_OFF, O_LIMIT, O_SINCE, O_UNTIL, O_BASE };

/* Parses options of `routes ACTION ...` / `report ...`; argv[0] is the word
 * before the options. Returns -1 for --help (usage printed), 2 for a usage
 * error, 0 with *first the index of the first positional argument. */
static int parse_opts(const char *cmd, int argc, char **argv, routes_args *a, int *first,
                      void (*usage)(FILE *)) {
  static const struct option longopts[] = {
      SY_CTL_ADMIN_LONGOPTS,
      {"version", required_argument, NULL, O_VERSION},
      {"expected-version", required_argument, NULL, O_EXPECTED},
      {"reason", required_argument, NULL, O_REASON},
      {"to-version", required_argument, NULL, O_TO_VERSION},
      {"off", no_argument, NULL, O_OFF},
      {"limit", required_argument, NULL, O_LIMIT},
      {"since", required_argument, NULL, O_SINCE},
      {"until", required_argument, NULL, O_UNTIL},
      {"base", required_argument, NULL, O_BASE},
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
    switch (c) {
    case SY_CTL_O_HELP: usage(stdout); return -1;
    case O_VERSION:
      if (sy_ctl_parse_u64(optarg, 1, UINT64_MAX, &a->version))
        return sy_ctl_usage_error(cmd, "--version: expected a version number >= 1");
      a->have_version = 1;
      break;
    case O_EXPECTED:
      if (sy_ctl_parse_u64(optarg, 0, UINT64_MAX, &a->expected))
        return sy_ctl_usage_error(cmd, "--expected-version: expected a version number");
      a->have_expected = 1;
      break;
    case O_TO_VERSION:
      if (sy_ctl_parse_u64(optarg, 1, UINT64_MAX, &a->to_version))
        return sy_ctl_usage_error(cmd, "--to-version: expected a version number >= 1");
      a->have_to = 1;
      break;
    case O_LIMIT:
      if (sy_ctl_parse_u64(optarg, 1, HISTORY_MAX_LIMIT, &a->limit))
        return sy_ctl_usage_error(cmd, "--limit: expected 1..%d", HISTORY_MAX_LIMIT);
      a->have_limit = 1;
      break;
    case O_REASON:
      if (!*optarg || strlen(optarg) > REASON_MAX)
        return sy_ctl_usage_error(cmd, "--reason: expected 1..%d bytes of text", REASON_MAX);
      a->reason = optarg;
      break;
    case O_OFF: a->off = 1; break;
    case O_SINCE: a->since = optarg; break;
    case O_UNTIL: a->until = optarg; break;
    case O_BASE: a->base = optarg; break;
    default:
      return sy_ctl_usage_error(cmd, "unknown option or missing value: %s (see --help)",
                                argv[optind - 1]);
    }
  }
  *first = optind;
  return 0;
}

/* Rejects options that the action does not take. */
static int only(const char *cmd, const routes_args *a, int version, int expected, int reason,
                int to, int off, int limit, int report) {
  if (a->have_version && !version) return sy_ctl_usage_error(cmd, "--version is not an option here");
  if (a->have_expected && !expected)
    return sy_ctl_usage_error(cmd, "--expected-version is not an option here");
  if (a->reason && !reason) return sy_ctl_usage_error(cmd, "--reason is not an option here");
  if (a->have_to && !to) return sy_ctl_usage_error(cmd, "--to-version is not an option here");
  if (a->off && !off) return sy_ctl_usage_error(cmd, "--off is not an option here");
  if (a->have_limit && !limit) return sy_ctl_usage_error(cmd, "--limit is not an option here");
  if ((a->since || a->until || a->base) && !report)
    return sy_ctl_usage_error(cmd, "--since/--until/--base are options of `report`");
  return 0;
}

/* Checked after the positional arguments, so their errors come first. */
static int need_reason(const char *cmd, const routes_args *a) {
  if (!a->reason)
    return sy_ctl_usage_error(cmd, "--reason TEXT is required (it goes into the history)");
  return 0;
}

static int need_route(const char *cmd, const char *name) {
  if (sy_ctl_check_name(name, SY_CTL_NAME_ROUTE))
    return sy_ctl_usage_error(cmd, "'%s' is not a route name (1..128 printable characters, "
                                   "no spaces)", name);
  return 0;
}

static int need_arm(const char *cmd, const char *name) {
  if (sy_ctl_check_name(name, SY_CTL_NAME_ARM))
    return sy_ctl_usage_error(cmd, "'%s' is not an arm name ([A-Za-z0-9_.:-], 1..128)", name);
  return 0;
}

/* Reads a route file ("-" = stdin) and checks it is one JSON object with a
 * valid "name". Returns 0 with *out malloc'ed, or 2 (message printed). */
static int read_route_file(const char *path, char **out) {
  const char *cmd = "routes put";
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) return sy_ctl_usage_error(cmd, "%s: cannot open: %m", path);
  sy_buf b;
  sy_buf_init(&b, ROUTE_JSON_MAX);
  char chunk[8192];
  size_t n;
  int rc = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if ((rc = sy_buf_append(&b, chunk, n)) != 0) break;
  int ioerr = ferror(f);
  if (f != stdin) fclose(f);
  if (rc || ioerr) {
    sy_buf_free(&b);
    return sy_ctl_usage_error(cmd, "%s: %s", path,
                              rc ? "larger than 1 MiB: not a route" : "read error");
  }
  cJSON *j = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
  const char *why = !j                        ? "not valid JSON"
                    : !cJSON_IsObject(j)      ? "must hold one route (a JSON object)"
                    : !cJSON_IsString(name)   ? "the route has no \"name\" string"
                    : sy_ctl_check_name(name->valuestring, SY_CTL_NAME_ROUTE)
                        ? "\"name\" is not a valid route name"
                        : NULL;
  cJSON_Delete(j);
  if (why) {
    sy_buf_free(&b);
    return sy_ctl_usage_error(cmd, "%s: %s", path, why);
  }
  *out = sy_buf_detach(&b, NULL);
  return 0;
}

/* ---- actions ------------------------------------------------------------ */

static int do_split(const routes_args *a, const char *name, int n, char **specs) {
  const char *cmd = "routes split";
  if (n < 1) return sy_ctl_usage_error(cmd, "expected NAME ARM=BP... (at least one arm)");
  if (n > SPLIT_MAX_ARMS) return sy_ctl_usage_error(cmd, "at most %d arms", SPLIT_MAX_ARMS);
  Switchyard__V1__ArmWeight w[SPLIT_MAX_ARMS], *wp[SPLIT_MAX_ARMS];
  char arms[SPLIT_MAX_ARMS][129];
  uint32_t sum = 0;
  for (int i = 0; i < n; i++) {
    const char *eq = strchr(specs[i], '=');
    size_t al = eq ? (size_t)(eq - specs[i]) : 0;
    if (!eq || al == 0 || al >= sizeof arms[i])
      return sy_ctl_usage_error(cmd, "'%s': expected ARM=BP (basis points, or a percentage "
                                     "like 25%%)", specs[i]);
    memcpy(arms[i], specs[i], al);
    arms[i][al] = '\0';
    if (need_arm(cmd, arms[i])) return SY_CTL_EXIT_USAGE;
    uint32_t bp;
    if (sy_ctl_parse_bp(eq + 1, &bp))
      return sy_ctl_usage_error(cmd, "'%s': weight must be 0..10000 basis points or a "
                                     "percentage 0..100%% in steps of 0.01%%", specs[i]);
    for (int k = 0; k < i; k++)
      if (!strcmp(arms[k], arms[i])) return sy_ctl_usage_error(cmd, "arm '%s' given twice", arms[i]);
    sum += bp;
    switchyard__v1__arm_weight__init(&w[i]);
    w[i].arm = arms[i];
    w[i].weight_bp = bp;
    wp[i] = &w[i];
  }
  if (sum != 10000)
    return sy_ctl_usage_error(cmd, "weights must sum to 10000 basis points (100%%), got %u", sum);
  if (need_reason(cmd, a)) return SY_CTL_EXIT_USAGE;
  Switchyard__V1__SetSplitRequest req = SWITCHYARD__V1__SET_SPLIT_REQUEST__INIT;
  req.name = (char *)name;
  req.n_weights = (size_t)n;
  req.weights = wp;
  req.expected_version = a->expected;
  req.reason = (char *)a->reason;
  ProtobufCMessage *resp;
  int rc = sy_ctl_admin_call(&a->o, "SetSplit", &req.base, &switchyard__v1__route_info__descriptor,
                             &resp);
  return rc ? rc : finish_route(&a->o, resp, 0);
}

static int routes_main(int argc, char **argv) {
  const char *action = argv[1];
  char cmd[48];
  snprintf(cmd, sizeof cmd, "routes %.32s", action);
  routes_args a;
  int first;
  int rc = parse_opts(cmd, argc - 1, argv + 1, &a, &first, routes_usage);
  if (rc) return rc < 0 ? 0 : rc;
  char **pos = argv + 1 + first;
  int npos = argc - 1 - first;
  ProtobufCMessage *resp = NULL;

  if (!strcmp(action, "list")) {
    if ((rc = only(cmd, &a, 0, 0, 0, 0, 0, 0, 0))) return rc;
    if (npos) return sy_ctl_usage_error(cmd, "takes no arguments");
    Switchyard__V1__ListRoutesRequest req = SWITCHYARD__V1__LIST_ROUTES_REQUEST__INIT;
    rc = sy_ctl_admin_call(&a.o, "ListRoutes", &req.base,
                           &switchyard__v1__list_routes_response__descriptor, &resp);
    if (rc) return rc;
    if (a.o.json) rc = sy_ctl_pbjson_print(stdout, resp) ? 1 : 0;
    else print_list((const Switchyard__V1__ListRoutesResponse *)resp);
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
  }
  if (!strcmp(action, "get")) {
    if ((rc = only(cmd, &a, 1, 0, 0, 0, 0, 0, 0))) return rc;
    if (npos != 1) return sy_ctl_usage_error(cmd, "expected NAME");
    if (need_route(cmd, pos[0])) return SY_CTL_EXIT_USAGE;
    Switchyard__V1__GetRouteRequest req = SWITCHYARD__V1__GET_ROUTE_REQUEST__INIT;
    req.name = pos[0];
    req.version = a.version;
    rc = sy_ctl_admin_call(&a.o, "GetRoute", &req.base, &switchyard__v1__route_info__descriptor,
                           &resp);
    return rc ? rc : finish_route(&a.o, resp, 1);
  }
  if (!strcmp(action, "put")) {
    if ((rc = only(cmd, &a, 0, 1, 1, 0, 0, 0, 0))) return rc;
    if (npos != 1) return sy_ctl_usage_error(cmd, "expected FILE.json (or - for stdin)");
    char *json;
    if ((rc = read_route_file(pos[0], &json))) return rc;
    if ((rc = need_reason(cmd, &a))) {
      free(json);
      return rc;
    }
    Switchyard__V1__PutRouteRequest req = SWITCHYARD__V1__PUT_ROUTE_REQUEST__INIT;
    req.route_json = json;
    req.expected_version = a.expected;
    req.reason = (char *)a.reason;
    rc = sy_ctl_admin_call(&a.o, "PutRoute", &req.base, &switchyard__v1__route_info__descriptor,
                           &resp);
    free(json);
    return rc ? rc : finish_route(&a.o, resp, 0);
  }
  if (!strcmp(action, "split")) {
    if ((rc = only(cmd, &a, 0, 1, 1, 0, 0, 0, 0))) return rc;
    if (npos < 1) return sy_ctl_usage_error(cmd, "expected NAME ARM=BP...");
    if (need_route(cmd, pos[0])) return SY_CTL_EXIT_USAGE;
    return do_split(&a, pos[0], npos - 1, pos + 1);
  }
  if (!strcmp(action, "promote")) {
    if ((rc = only(cmd, &a, 0, 1, 1, 0, 0, 0, 0))) return rc;
    if (npos != 2) return sy_ctl_usage_error(cmd, "expected NAME ARM");
    if (need_route(cmd, pos[0]) || need_arm(cmd, pos[1]) || need_reason(cmd, &a))
      return SY_CTL_EXIT_USAGE;
    Switchyard__V1__PromoteRequest req = SWITCHYARD__V1__PROMOTE_REQUEST__INIT;
    req.name = pos[0];
    req.arm = pos[1];
    req.expected_version = a.expected;
    req.reason = (char *)a.reason;
    rc = sy_ctl_admin_call(&a.o, "Promote", &req.base, &switchyard__v1__route_info__descriptor,
                           &resp);
    return rc ? rc : finish_route(&a.o, resp, 0);
  }
  if (!strcmp(action, "rollback")) {
    if ((rc = only(cmd, &a, 0, 1, 1, 1, 0, 0, 0))) return rc;
    if (npos != 1) return sy_ctl_usage_error(cmd, "expected NAME");
    if (need_route(cmd, pos[0]) || need_reason(cmd, &a)) return SY_CTL_EXIT_USAGE;
    Switchyard__V1__RollbackRequest req = SWITCHYARD__V1__ROLLBACK_REQUEST__INIT;
    req.name = pos[0];
    req.to_version = a.to_version;
    req.expected_version = a.expected;
    req.reason = (char *)a.reason;
    rc = sy_ctl_admin_call(&a.o, "Rollback", &req.base, &switchyard__v1__route_info__descriptor,
                           &resp);
    return rc ? rc : finish_route(&a.o, resp, 0);
  }
  if (!strcmp(action, "shadow")) {
    if ((rc = only(cmd, &a, 0, 1, 1, 0, 1, 0, 0))) return rc;
    Switchyard__V1__SetShadowRequest req = SWITCHYARD__V1__SET_SHADOW_REQUEST__INIT;
    if (a.off) {
      if (npos != 1) return sy_ctl_usage_error(cmd, "expected NAME --off (no arm, no rate)");
    } else {
      if (npos != 3) return sy_ctl_usage_error(cmd, "expected NAME ARM RATE, or NAME --off");
      if (need_arm(cmd, pos[1])) return SY_CTL_EXIT_USAGE;
      if (sy_ctl_parse_bp(pos[2], &req.rate_bp) || req.rate_bp == 0)
        return sy_ctl_usage_error(cmd, "'%s': rate must be 1..10000 basis points or a "
                                       "percentage (use --off to stop shadowing)", pos[2]);
      req.arm = pos[1];
    }
    if (need_route(cmd, pos[0]) || need_reason(cmd, &a)) return SY_CTL_EXIT_USAGE;
    req.name = pos[0];
    req.expected_version = a.expected;
    req.reason = (char *)a.reason;
    rc = sy_ctl_admin_call(&a.o, "SetShadow", &req.base, &switchyard__v1__route_info__descriptor,
                           &resp);
    return rc ? rc : finish_route(&a.o, resp, 0);
  }
  if (!strcmp(action, "history")) {
    if ((rc = only(cmd, &a, 0, 0, 0, 0, 0, 1, 0))) return rc;
    if (npos != 1) return sy_ctl_usage_error(cmd, "expected NAME");
    if (need_route(cmd, pos[0])) return SY_CTL_EXIT_USAGE;
    Switchyard__V1__GetHistoryRequest req = SWITCHYARD__V1__GET_HISTORY_REQUEST__INIT;
    req.name = pos[0];
    req.limit = (uint32_t)a.limit;
    rc = sy_ctl_admin_call(&a.o, "GetHistory", &req.base,
                           &switchyard__v1__get_history_response__descriptor, &resp);
    if (rc) return rc;
    if (a.o.json) rc = sy_ctl_pbjson_print(stdout, resp) ? 1 : 0;
    else print_history((const Switchyard__V1__GetHistoryResponse *)resp);
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
  }
  fprintf(stderr, "switchyardctl routes: unknown action '%s'\n", action);
  routes_usage(stderr);
  return SY_CTL_EXIT_USAGE;
}

int sy_ctl_cmd_routes(int argc, char **argv) {
  if (argc < 2) {
    routes_usage(stderr);
    return SY_CTL_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    routes_usage(stdout);
    return 0;
  }
  return routes_main(argc, argv);
}

/* ---- report ------------------------------------------------------------- */

static void print_report(const Switchyard__V1__GetReportResponse *r) {
  char from[40], to[40];
  sy_ctl_fmt_time(r->from_us, from, sizeof from);
  sy_ctl_fmt_time(r->to_us, to, sizeof to);
  printf("route %s, %s .. %s, base arm %s\n\n", r->route, from, to, s_or(r->base_arm, "-"));
  static const char *const h[] = {"ARM",      ">REQUESTS", ">ERRORS", ">P50 MS",  ">P99 MS",
                                  ">TOKENS IN/OUT", ">CASCADE", ">SHADOW AGREE", ">FEEDBACK",
                                  ">APPROVAL", "95% CI",  ">DIFF",   ">P-VALUE"};
  sy_ctl_table t;
  sy_ctl_table_init(&t, 13, h);
  for (size_t i = 0; i < r->n_arms; i++) {
    const Switchyard__V1__ArmReport *a = r->arms[i];
    char req[24], err[24], p50[24], p99[24], tok[48], cas[32], sh[32], fb[24], ap[16], ci[32],
        diff[16], pv[16];
    int base = r->base_arm && !strcmp(a->arm, r->base_arm);
    snprintf(req, sizeof req, "%llu", (unsigned long long)a->requests);
    snprintf(err, sizeof err, "%llu", (unsigned long long)a->errors);
    snprintf(p50, sizeof p50, "%.1f", a->latency_p50_ms);
    snprintf(p99, sizeof p99, "%.1f", a->latency_p99_ms);
    snprintf(tok, sizeof tok, "%llu/%llu", (unsigned long long)a->prompt_tokens,
             (unsigned long long)a->completion_tokens);
    if (a->cascade_attempts)
      snprintf(cas, sizeof cas, "%.1f%% of %llu", 100 * a->cascade_acceptance,
               (unsigned long long)a->cascade_attempts);
    else
      snprintf(cas, sizeof cas, "-");
    if (a->shadow_pairs)
      snprintf(sh, sizeof sh, "%.1f%% of %llu", 100 * a->shadow_agreement,
               (unsigned long long)a->shadow_pairs);
    else
      snprintf(sh, sizeof sh, "-");
    snprintf(fb, sizeof fb, "%llu", (unsigned long long)a->feedback);
    if (a->feedback) {
      snprintf(ap, sizeof ap, "%.1f%%", 100 * a->approval);
      if (a->approval_ci95)
        snprintf(ci, sizeof ci, "%.1f-%.1f%%", 100 * a->approval_ci95->low,
                 100 * a->approval_ci95->high);
      else
        snprintf(ci, sizeof ci, "-");
    } else {
      snprintf(ap, sizeof ap, "-");
      snprintf(ci, sizeof ci, "-");
    }
    if (base || !a->feedback) {
      snprintf(diff, sizeof diff, base ? "(base)" : "-");
      snprintf(pv, sizeof pv, "-");
    } else {
      snprintf(diff, sizeof diff, "%+.1f pt", 100 * a->approval_diff);
      snprintf(pv, sizeof pv, "%.3g", a->p_value);
    }
    const char *row[] = {a->arm, req, err, p50, p99, tok, cas, sh, fb, ap, ci, diff, pv};
    sy_ctl_table_row(&t, row);
  }
  if (r->n_arms) sy_ctl_table_print(&t, stdout);
  else printf("no arms with traffic in the window\n");
  sy_ctl_table_free(&t);
  printf("\nrecommendation: %s", s_or(r->recommendation, "-"));
  if (r->recommended_arm && *r->recommended_arm) printf(" %s", r->recommended_arm);
  printf("\nrule: %s\n", s_or(r->rule, "-"));
}

int sy_ctl_cmd_report(int argc, char **argv) {
  const char *cmd = "report";
  routes_args a;
  int first;
  int rc = parse_opts(cmd, argc, argv, &a, &first, report_usage);
  if (rc) return rc < 0 ? 0 : rc;
  if ((rc = only(cmd, &a, 0, 0, 0, 0, 0, 0, 1))) return rc;
  if (argc - first != 1) return sy_ctl_usage_error(cmd, "expected NAME (see --help)");
  const char *name = argv[first];
  if (need_route(cmd, name)) return SY_CTL_EXIT_USAGE;
  Switchyard__V1__GetReportRequest req = SWITCHYARD__V1__GET_REPORT_REQUEST__INIT;
  req.name = (char *)name;
  if (a.since && sy_ctl_parse_time(a.since, &req.from_us))
    return sy_ctl_usage_error(cmd, "--since '%s': expected unix seconds, YYYY-MM-DD[THH:MM[:SS]]"
                                   "[Z] or an age like 12h", a.since);
  if (a.until && sy_ctl_parse_time(a.until, &req.to_us))
    return sy_ctl_usage_error(cmd, "--until '%s': expected unix seconds, YYYY-MM-DD[THH:MM[:SS]]"
                                   "[Z] or an age like 12h", a.until);
  if (req.from_us && req.to_us && req.from_us >= req.to_us)
    return sy_ctl_usage_error(cmd, "--since must be before --until");
  if (a.base) {
    if (need_arm(cmd, a.base)) return SY_CTL_EXIT_USAGE;
    req.base_arm = (char *)a.base;
  }
  ProtobufCMessage *resp;
  rc = sy_ctl_admin_call(&a.o, "GetReport", &req.base,
                         &switchyard__v1__get_report_response__descriptor, &resp);
  if (rc) return rc;
  if (a.o.json) rc = sy_ctl_pbjson_print(stdout, resp) ? 1 : 0;
  else print_report((const Switchyard__V1__GetReportResponse *)resp);
  protobuf_c_message_free_unpacked(resp, NULL);
  return rc;
}
