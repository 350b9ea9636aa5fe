/* switchyard-mock: command line. */
#include "loadtest/mock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char USAGE[] =
    "usage: switchyard-mock [options]\n"
    "  --listen HOST:PORT       listen address (default 127.0.0.1:9090; port 0 picks one)\n"
    "  --latency-ms N           delay before each response starts (default 0)\n"
    "  --jitter-ms N            uniform extra delay 0..N (default 0)\n"
    "  --chunks N               SSE content chunks per streamed answer (default 8)\n"
    "  --chunk-delay-ms N       delay between SSE events (default 0)\n"
    "  --max-body-bytes N       request body limit, 413 past it (default 16777216)\n"
    "  --quiet                  log warnings and errors only\n"
    "  --help                   this text\n"
    "Per-request headers: x-mock-latency-ms, x-mock-chunks, x-mock-chunk-delay-ms,\n"
    "x-mock-confidence, x-mock-fault (429|500|503|400|401|404|hang|reset|cut|malformed),\n"
    "x-mock-retry-after, x-mock-fault-key + x-mock-fail-times.\n"
    "Control: GET /healthz, GET|DELETE /mock/requests, DELETE /mock/faults.\n";

static void bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "switchyard-mock: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", USAGE);
  exit(2);
}

static unsigned long long parse_num(const char *opt, const char *v, unsigned long long min,
                                    unsigned long long max) {
  char *end;
  errno = 0;
  if (!v || *v < '0' || *v > '9') bad_usage("%s needs a non-negative integer", opt);
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || *end || x < min || x > max) bad_usage("%s: value out of range", opt);
  return x;
}

/* HOST:PORT or [V6]:PORT. Exits 2 on a bad address. */
static void parse_listen(const char *v, char *host, size_t hostsz, int *port,
                         struct sockaddr_storage *addr) {
  const char *colon = NULL, *h = v;
  size_t hlen;
  if (v[0] == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':') bad_usage("bad --listen address '%s'", v);
    h = v + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(v, ':');
    if (!colon) bad_usage("--listen wants HOST:PORT, got '%s'", v);
    hlen = (size_t)(colon - v);
  }
  if (hlen == 0 || hlen >= hostsz) bad_usage("bad --listen host in '%s'", v);
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (int)parse_num("--listen port", colon + 1, 0, 65535);
  const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
  if (uv_ip4_addr(ip, *port, (struct sockaddr_in *)addr) != 0 &&
      uv_ip6_addr(ip, *port, (struct sockaddr_in6 *)addr) != 0)
    bad_usage("--listen host must be an IP address or localhost, got '%s'", host);
}

const char *sy_mock_cli_parse(int argc, char **argv, sy_mock_cfg *out, char *host, size_t hostsz,
                              int *port, struct sockaddr_storage *addr) {
  sy_mock_cfg cfg = {.chunks = 8, .max_body = SY_MOCK_DEFAULT_MAX_BODY};
  const char *listen = "127.0.0.1:9090";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
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
    if (strcmp(name, "--quiet") == 0) {
      if (eq) bad_usage("%s takes no value", name);
      cfg.quiet = 1;
      continue;
    }
    static const char *const with_value[] = {"--listen", "--latency-ms", "--jitter-ms",
                                             "--chunks", "--chunk-delay-ms", "--max-body-bytes"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
      known |= strcmp(name, with_value[k]) == 0;
    if (!known) bad_usage("unknown option '%s'", a);
    val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!val) bad_usage("%s needs a value", name);
    if (strcmp(name, "--listen") == 0) listen = val;
    else if (strcmp(name, "--latency-ms") == 0)
      cfg.latency_ms = (unsigned)parse_num(name, val, 0, SY_MOCK_MAX_DELAY_MS);
    else if (strcmp(name, "--jitter-ms") == 0)
      cfg.jitter_ms = (unsigned)parse_num(name, val, 0, SY_MOCK_MAX_DELAY_MS);
    else if (strcmp(name, "--chunks") == 0)
      cfg.chunks = (unsigned)parse_num(name, val, 1, SY_MOCK_MAX_CHUNKS);
    else if (strcmp(name, "--chunk-delay-ms") == 0)
      cfg.chunk_delay_ms = (unsigned)parse_num(name, val, 0, SY_MOCK_MAX_DELAY_MS);
    else
      cfg.max_body = (size_t)parse_num(name, val, 1, 1ull << 30);
  }
  parse_listen(listen, host, hostsz, port, addr);
  *out = cfg;
  return listen;
}
