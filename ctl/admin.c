/* Shared pieces of the admin sub-commands (see admin.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/admin.h"
#include "ctl/timearg.h"

#define KEY_NAME_MAX 63    /* admin.proto CreateKeyRequest.name */
#define ROUTE_NAME_MAX 128 /* router/route.h: route and arm names */
#define METHOD_MAX 96

void sy_ctl_admin_defaults(sy_ctl_admin_opts *o) {
  memset(o, 0, sizeof *o);
  const char *e = getenv("SWITCHYARD_ADMIN_ADDR");
  o->addr = e && *e ? e : SY_CTL_ADMIN_DEFAULT_ADDR;
  e = getenv("SWITCHYARD_ADMIN_TOKEN");
  o->token = e && *e ? e : NULL;
  e = getenv("SWITCHYARD_TLS_CA");
  o->tls_ca = e && *e ? e : NULL;
  o->timeout_ms = SY_CTL_ADMIN_DEFAULT_TIMEOUT_MS;
}

int sy_ctl_admin_opt(sy_ctl_admin_opts *o, int c, const char *arg) {
  uint64_t v;
  switch (c) {
  case SY_CTL_O_ADDR:
    if (!*arg || strlen(arg) > 255) {
      fprintf(stderr, "switchyardctl: --addr: expected HOST:PORT\n");
      return -1;
    }
    o->addr = arg;
    return 1;
  case SY_CTL_O_TOKEN: o->token = *arg ? arg : NULL; return 1;
  case SY_CTL_O_TLS_CA: o->tls_ca = *arg ? arg : NULL; return 1;
  case SY_CTL_O_TLS_NAME: o->tls_name = *arg ? arg : NULL; return 1;
  case SY_CTL_O_TIMEOUT:
    if (sy_ctl_parse_u64(arg, 1, SY_CTL_ADMIN_MAX_TIMEOUT_MS, &v)) {
      fprintf(stderr, "switchyardctl: --timeout-ms: expected 1..%ld milliseconds\n",
              SY_CTL_ADMIN_MAX_TIMEOUT_MS);
      return -1;
    }
    o->timeout_ms = (long)v;
    return 1;
  case SY_CTL_O_JSON: o->json = 1; return 1;
  default: return 0;
  }
}

/* HOST:PORT with a port in 1..65535, or a gRPC target URI (unix:/path,
 * dns:///host:port) passed through as it is. */
static int addr_ok(const char *a) {
  if (!strncmp(a, "unix:", 5) || strstr(a, ":///")) return 1;
  const char *colon = strrchr(a, ':');
  uint64_t port;
  return colon && colon != a && !sy_ctl_parse_u64(colon + 1, 1, 65535, &port);
}

static int open_client(const sy_ctl_admin_opts *o, sy_ctl_grpc **c) {
  if (!addr_ok(o->addr)) {
    fprintf(stderr, "switchyardctl: address '%s': expected HOST:PORT (--addr or "
                    "SWITCHYARD_ADMIN_ADDR)\n", o->addr);
    return SY_CTL_EXIT_USAGE;
  }
  sy_ctl_grpc_opts go = {o->addr, o->token, o->tls_ca, o->tls_name, o->timeout_ms};
  char err[512];
  if (sy_ctl_grpc_open(&go, c, err, sizeof err) != 0) {
    fprintf(stderr, "switchyardctl: %s\n", err);
    /* an unreadable CA file is the caller's argument: a usage error */
    return SY_CTL_EXIT_USAGE;
  }
  return 0;
}

static void method_path(const char *method, char *buf, size_t n) {
  snprintf(buf, n, "%s%s", SY_CTL_ADMIN_SERVICE, method);
}

int sy_ctl_admin_call(const sy_ctl_admin_opts *o, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp) {
  sy_ctl_grpc *c;
  *resp = NULL;
  int rc = open_client(o, &c);
  if (rc) return rc;
  char path[METHOD_MAX];
  method_path(method, path, sizeof path);
  sy_ctl_grpc_status st;
  sy_ctl_grpc_unary(c, path, req, resp_desc, resp, &st);
  sy_ctl_grpc_close(c);
  return sy_ctl_grpc_report(&st, path + 1, o->addr);
}

int sy_ctl_admin_stream(const sy_ctl_admin_opts *o, const char *method,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                        sy_ctl_grpc_stream_cb cb, void *ctx) {
  sy_ctl_grpc *c;
  int rc = open_client(o, &c);
  if (rc) return rc;
  char path[METHOD_MAX];
  method_path(method, path, sizeof path);
  sy_ctl_grpc_status st;
  sy_ctl_grpc_stream(c, path, req, resp_desc, cb, ctx, &st);
  sy_ctl_grpc_close(c);
  return sy_ctl_grpc_report(&st, path + 1, o->addr);
}

int sy_ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return -1; /* strtoull would take "-1" and " 1" */
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

int sy_ctl_parse_bp(const char *s, uint32_t *out) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 16) return -1;
  if (s[n - 1] != '%') {
    uint64_t v;
    if (sy_ctl_parse_u64(s, 0, 10000, &v)) return -1;
    *out = (uint32_t)v;
    return 0;
  }
  char num[17];
  memcpy(num, s, n - 1);
  num[n - 1] = '\0';
  if (num[0] < '0' || num[0] > '9') return -1;
  char *end;
  errno = 0;
  double pct = strtod(num, &end);
  if (errno || *end || !(pct >= 0 && pct <= 100)) return -1;
  double bp = pct * 100.0;
  /* 12.345% is not a whole number of basis points: refuse, do not round */
  if (fabs(bp - round(bp)) > 1e-6) return -1;
  *out = (uint32_t)round(bp);
  return 0;
}

int sy_ctl_parse_time(const char *s, uint64_t *out_us) {
  return sy_ctl_time_arg(s, (uint64_t)time(NULL) * 1000000u, out_us);
}

int sy_ctl_check_name(const char *s, sy_ctl_name_kind k) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > (k == SY_CTL_NAME_KEY ? KEY_NAME_MAX : ROUTE_NAME_MAX)) return -1;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok;
    if (k == SY_CTL_NAME_ROUTE)
      ok = c > ' ' && c < 0x7f;
    else
      ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || (k == SY_CTL_NAME_ARM && c == ':');
    if (!ok) return -1;
  }
  return 0;
}

void sy_ctl_fmt_time(uint64_t us, char *buf, size_t n) {
  if (!us) {
    snprintf(buf, n, "-");
    return;
  }
  time_t t = (time_t)(us / 1000000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  if (!strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm)) snprintf(buf, n, "?");
}

int sy_ctl_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "switchyardctl %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return SY_CTL_EXIT_USAGE;
}
