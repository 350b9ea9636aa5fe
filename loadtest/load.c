/* switchyard-load: main and the command line. */
#include "loadtest/load.h"
#include "common/err.h"
#include "common/log.h"
#include "loadtest/load_sched.h"
#include "loadtest/load_zipf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

static const char USAGE[] =
    "usage: switchyard-load URL [options]\n"
    "  URL                      http://HOST:PORT/PATH: HTTP/1.1 keep-alive, one connection per\n"
    "                           --connections (default path /v1/chat/completions)\n"
    "                           grpc://HOST:PORT: the gRPC Inference service (plaintext HTTP/2);\n"
    "                           ChatCompletion, or ChatCompletionStream for streamed requests;\n"
    "                           --connections concurrent calls over min(N, 8) connections\n"
    "Mode:\n"
    "  --rate R                 open loop: R requests/s on a fixed schedule, latency measured\n"
    "                           from each request's intended send time (omit: closed loop)\n"
    "  --connections N          connections (default 16); in closed loop, each sends its next\n"
    "                           request when the previous answer ends\n"
    "  --queue-max N            open loop: requests waiting for a free connection before\n"
    "                           new ones fail as queue_full (default 100000)\n"
    "Bounds (at least one of --requests / --duration; never more than 600 s):\n"
    "  --requests N             measured requests to send\n"
    "  --duration S             measured seconds (fractions allowed)\n"
    "  --warmup S               seconds before measuring (default 0)\n"
    "  --timeout-ms MS          per request, connect included (default 30000); over gRPC, the\n"
    "                           call's deadline\n"
    "Requests:\n"
    "  --body FILE              one JSON request body\n"
    "  --mix FILE.jsonl         weighted request mix: chat bodies, or `switchyardctl export`\n"
    "                           lines (no model: --model is used and the last assistant turn\n"
    "                           is dropped); optional \"weight\" per line\n"
    "  --model M                model for lines without one (and the built-in body)\n"
    "  --header 'K: v'          extra request header (repeatable); gRPC metadata for grpc://\n"
    "  --stream                 set \"stream\": true; report time to first byte and chunk gaps\n"
    "  --users N                end-user ids (\"user\" field, x-switchyard-user header) drawn\n"
    "  --zipf S                 from a Zipf distribution over N ids with exponent S (default 1.1)\n"
    "  --seed N                 seed for mix and user draws (default 1)\n"
    "Output:\n"
    "  --json FILE              write the JSON report to FILE (- for stdout)\n"
    "  --quiet                  no summary on stdout\n"
    "  --help                   this text\n";

static void bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "switchyard-load: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see switchyard-load --help)\n");
  exit(2);
}

static unsigned long long parse_uint(const char *opt, const char *v, unsigned long long min,
                                     unsigned long long max) {
  char *end;
  errno = 0;
  if (*v < '0' || *v > '9') bad_usage("%s needs a non-negative integer", opt);
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || *end || x < min || x > max) bad_usage("%s: value out of range", opt);
  return x;
}

static double parse_double(const char *opt, const char *v, double min, double max) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(x) || x < min || x > max)
    bad_usage("%s: value out of range", opt);
  return x;
}

/* "Name: value": a token name, no CR/LF/NUL anywhere. */
static int header_ok(const char *h) {
  size_t n = strlen(h);
  if (n == 0 || n > SY_LOAD_MAX_HEADER_BYTES) return 0;
  const char *colon = strchr(h, ':');
  if (!colon || colon == h) return 0;
  for (const char *p = h; p < colon; p++)
    if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') &&
        !((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
      return 0;
  /* the framing is ours: a second length would make the request ambiguous */
  size_t nlen = (size_t)(colon - h);
  if ((nlen == 14 && strncasecmp(h, "content-length", 14) == 0) ||
      (nlen == 17 && strncasecmp(h, "transfer-encoding", 17) == 0))
    return 0;
  return strpbrk(h, "\r\n") == NULL;
}

/* Each connection is a descriptor: raise the soft limit when it is too low.
 * 0, or -1 when even the hard limit is too low (message printed). */
static int ensure_fds(unsigned connections) {
  struct rlimit rl;
  rlim_t need = (rlim_t)connections + 64; /* stdio, the loop, the report */
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) return 0;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    fprintf(stderr, "switchyard-load: --connections %u needs %llu descriptors, the hard limit is "
            "%llu (ulimit -n)\n", connections, (unsigned long long)need,
            (unsigned long long)rl.rlim_max);
    return -1;
  }
  rl.rlim_cur = need;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    fprintf(stderr, "switchyard-load: cannot raise the descriptor limit to %llu: %s\n",
            (unsigned long long)need, strerror(errno));
    return -1;
  }
  return 0;
}

static void parse_args(int argc, char **argv, sy_load_cfg *c) {
  *c = (sy_load_cfg){.connections = SY_LOAD_DEFAULT_CONNECTIONS,
                     .timeout_ms = SY_LOAD_DEFAULT_TIMEOUT_MS,
                     .queue_max = SY_LOAD_DEFAULT_QUEUE,
                     .zipf_s = SY_LOAD_DEFAULT_ZIPF,
                     .seed = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      if (c->url) bad_usage("more than one URL ('%s')", a);
      if (strlen(a) > SY_LOAD_MAX_URL) bad_usage("%s", "URL too long");
      c->url = a;
      continue;
    }
    char name[32];
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
    if (nlen >= sizeof name) bad_usage("unknown option '%s'", a);
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
      fputs(USAGE, stdout);
      exit(0);
    }
    if (strcmp(name, "--stream") == 0 || strcmp(name, "--quiet") == 0) {
      if (eq) bad_usage("%s takes no value", name);
      if (name[2] == 's') c->stream = 1;
      else c->quiet = 1;
      continue;
    }
    static const char *const with_value[] = {
        "--url",    "--rate",   "--connections", "--queue-max", "--requests",
        "--duration", "--warmup", "--timeout-ms", "--body",     "--mix",
        "--model",  "--header", "--users",      "--zipf",      "--seed",
        "--json"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
      known |= strcmp(name, with_value[k]) == 0;
    if (!known) bad_usage("unknown option '%s'", a);
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) bad_usage("%s needs a value", name);
    if (strcmp(name, "--url") == 0) {
      if (strlen(v) > SY_LOAD_MAX_URL) bad_usage("%s", "URL too long");
      c->url = v;
    } else if (strcmp(name, "--rate") == 0) {
      c->rate = parse_double(name, v, 0.001, SY_LOAD_MAX_RATE);
    } else if (strcmp(name, "--connections") == 0) {
      c->connections = (unsigned)parse_uint(name, v, 1, SY_LOAD_MAX_CONNECTIONS);
    } else if (strcmp(name, "--queue-max") == 0) {
      c->queue_max = (size_t)parse_uint(name, v, 1, SY_LOAD_QUEUE_MAX);
    } else if (strcmp(name, "--requests") == 0) {
      c->requests = parse_uint(name, v, 1, SY_LOAD_MAX_REQUESTS);
    } else if (strcmp(name, "--duration") == 0) {
      c->duration_s = parse_double(name, v, 0.001, SY_LOAD_MAX_SECONDS);
    } else if (strcmp(name, "--warmup") == 0) {
      c->warmup_s = parse_double(name, v, 0, SY_LOAD_MAX_SECONDS);
    } else if (strcmp(name, "--timeout-ms") == 0) {
      c->timeout_ms = (unsigned)parse_uint(name, v, 1, SY_LOAD_MAX_TIMEOUT_MS);
    } else if (strcmp(name, "--body") == 0) {
      c->body_file = v;
    } else if (strcmp(name, "--mix") == 0) {
      c->mix_file = v;
    } else if (strcmp(name, "--model") == 0) {
      c->model = v;
    } else if (strcmp(name, "--header") == 0) {
      if (c->nheaders == SY_LOAD_MAX_HEADERS) bad_usage("%s", "too many --header flags (64 at most)");
      if (!header_ok(v))
        bad_usage("--header wants 'Name: value' (not Content-Length / Transfer-Encoding), got '%s'",
                  v);
      c->headers[c->nheaders++] = v;
    } else if (strcmp(name, "--users") == 0) {
      c->users = (size_t)parse_uint(name, v, 1, SY_LOAD_ZIPF_MAX_N);
    } else if (strcmp(name, "--zipf") == 0) {
      c->zipf_s = parse_double(name, v, 0, SY_LOAD_ZIPF_MAX_S);
    } else if (strcmp(name, "--seed") == 0) {
      c->seed = parse_uint(name, v, 0, UINT64_MAX);
    } else {
      c->json_path = v;
    }
  }
  if (!c->url) bad_usage("%s", "no URL given");
  if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0 &&
      strncmp(c->url, "grpc://", 7) != 0)
    bad_usage("the URL must start with http:// or grpc:// (got '%s')", c->url);
  if (!c->requests && c->duration_s <= 0)
    bad_usage("%s", "give --requests N and/or --duration S: a run is always bounded");
  if (c->warmup_s + c->duration_s > SY_LOAD_MAX_SECONDS)
    bad_usage("%s", "--warmup plus --duration is capped at 600 s");
  if (c->body_file && c->mix_file) bad_usage("%s", "--body and --mix exclude each other");
}

int main(int argc, char **argv) {
  sy_load_cfg cfg;
  parse_args(argc, argv, &cfg);
  sy_log_set_level(cfg.quiet ? SY_LOG_WARN : SY_LOG_INFO);
  if (ensure_fds(cfg.connections) != 0) return 1;

  sy_load_mix mix;
  sy_load_mix_opts mo = {.model = cfg.model, .stream = cfg.stream, .strip_user = cfg.users > 0};
  char err[512] = "";
  int rc;
  if (cfg.mix_file) rc = sy_load_mix_load(&mix, cfg.mix_file, &mo, err, sizeof err);
  else if (cfg.body_file) rc = sy_load_mix_load_body(&mix, cfg.body_file, &mo, err, sizeof err);
  else rc = sy_load_mix_default(&mix, &mo);
  if (rc) {
    fprintf(stderr, "switchyard-load: %s\n", err[0] ? err : sy_strerror(rc));
    return 1;
  }

  cfg.mix = &mix;
  sy_load_stats *st = malloc(sizeof *st);
  if (!st) {
    sy_load_mix_free(&mix);
    fprintf(stderr, "switchyard-load: out of memory\n");
    return 1;
  }
  const sy_load_target_ops *ops = strncmp(cfg.url, "grpc://", 7) == 0 ? &sy_load_grpc_ops
                                                                       : &sy_load_http_ops;
  rc = sy_load_run(&cfg, &mix, ops, st, err, sizeof err);
  if (rc) {
    fprintf(stderr, "switchyard-load: %s\n", err[0] ? err : sy_strerror(rc));
  } else {
    /* with --json - the report owns stdout, so the summary moves to stderr */
    int json_stdout = cfg.json_path && strcmp(cfg.json_path, "-") == 0;
    if (!cfg.quiet) sy_load_report_text(json_stdout ? stderr : stdout, &cfg, st);
    if (cfg.json_path && sy_load_report_json(cfg.json_path, &cfg, st) != 0) rc = SY_EIO;
  }
  free(st);
  sy_load_mix_free(&mix);
  return rc ? 1 : 0;
}
