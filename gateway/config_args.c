/* switchyard configuration, second half: the value rules the file and the
 * flags share (addresses, URLs, paths, names), the command-line flags, --help
 * and the final checks once file and flags are in. The file parser and the
 * range tables are in config.c. */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/config_internal.h"

/* ---- value checks shared by the file and the flags ---------------------- */

int sy__config_parse_uint_text(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  uint64_t v = 0;
  if (!*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* 1..max bytes from [A-Za-z0-9_] plus `extra`; digits may not lead when
 * !digit_first (environment variable names). */
int sy__config_valid_chars(const char *s, size_t max, const char *extra, int digit_first) {
  size_t n = strlen(s);
  if (n == 0 || n > max || (!digit_first && s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || strchr(extra, ch)))
      return 0;
  }
  return 1;
}

static int valid_env_name(const char *s) {
  return sy__config_valid_chars(s, SY__CONF_MAX_ENV_NAME, "", 0);
}

static int has_ctl(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
  return 0;
}

int sy__config_check_path(const char *s, const char *what, char *err, size_t errlen) {
  if (!*s || strlen(s) > SY__CONF_MAX_PATH)
    return sy__config_fail(err, errlen, "%s: must be a path of 1 to %d bytes", what,
                           SY__CONF_MAX_PATH);
  if (has_ctl(s))
    return sy__config_fail(err, errlen, "%s: must not contain control characters", what);
  return 0;
}

/* "HOST:PORT", "[V6]:PORT" or "localhost:PORT" into host (brackets dropped)
 * and port. Only numeric addresses: the listener binds without a resolver. */
int sy__config_parse_listen(const char *s, char **host, uint16_t *port, const char *what, char *err,
                            size_t errlen) {
  char h[SY__CONF_MAX_LISTEN + 1];
  const char *colon;
  size_t hlen = strlen(s);
  if (hlen > SY__CONF_MAX_LISTEN)
    return sy__config_fail(err, errlen, "%s: longer than %d bytes", what, SY__CONF_MAX_LISTEN);
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return sy__config_fail(err, errlen, "%s: expected [IPV6]:PORT, e.g. [::1]:8080", what);
    hlen = (size_t)(close - s - 1);
    memcpy(h, s + 1, hlen);
    h[hlen] = '\0';
    colon = close + 1;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, h, &a6) != 1)
      return sy__config_fail(err, errlen, "%s: \"%s\" is not an IPv6 address", what, h);
  } else {
    colon = strrchr(s, ':');
    if (!colon || colon == s) return sy__config_fail(err, errlen, "%s: expected HOST:PORT", what);
    hlen = (size_t)(colon - s);
    memcpy(h, s, hlen);
    h[hlen] = '\0';
    struct in_addr a4;
    if (memchr(h, ':', hlen))
      return sy__config_fail(err, errlen, "%s: an IPv6 host goes in brackets, e.g. [::1]:8080",
                             what);
    if (strcmp(h, "localhost") == 0) {
      memcpy(h, "127.0.0.1", sizeof "127.0.0.1");
    } else if (inet_pton(AF_INET, h, &a4) != 1) {
      char sb[SY__CONF_SHOWN + 4];
      return sy__config_fail(err, errlen,
                             "%s: host \"%s\" must be an IPv4 address, localhost or [IPv6 address]",
                             what, sy__config_shown(h, sb));
    }
  }
  uint64_t p;
  if (strlen(colon + 1) > 5 || sy__config_parse_uint_text(colon + 1, 0, 65535, &p) != 0)
    return sy__config_fail(err, errlen, "%s: port must be a number between 0 and 65535", what);
  if (sy__config_set_str(host, h) != 0) return sy__config_fail_nomem(err, errlen);
  *port = (uint16_t)p;
  return 0;
}

static int starts_with_ci(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int sy__config_set_base_url(sy_upstream_conf *u, const char *s, const char *what, char *err,
                            size_t errlen) {
  size_t n = strlen(s);
  size_t scheme;
  if (starts_with_ci(s, "https://"))
    scheme = 8;
  else if (starts_with_ci(s, "http://"))
    scheme = 7;
  else
    return sy__config_fail(err, errlen, "%s: must start with http:// or https://", what);
  if (n > SY__CONF_MAX_URL)
    return sy__config_fail(err, errlen, "%s: longer than %d bytes", what, SY__CONF_MAX_URL);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch == 0x7f)
      return sy__config_fail(err, errlen, "%s: must not contain spaces or control characters",
                             what);
    if (ch == '?' || ch == '#')
      return sy__config_fail(err, errlen, "%s: must not contain a query or fragment", what);
  }
  if (s[scheme] == '\0' || s[scheme] == '/')
    return sy__config_fail(err, errlen, "%s: missing host after the scheme", what);
  /* Paths are appended as "/chat/completions", so keep no trailing slash. */
  while (n > scheme + 1 && s[n - 1] == '/') n--;
  char *copy = strndup(s, n);
  if (!copy) return sy__config_fail_nomem(err, errlen);
  free(u->base_url);
  u->base_url = copy;
  u->https = (scheme == 8);
  return 0;
}

int sy__config_set_env_name(char **dst, const char *s, const char *what, char *err, size_t errlen) {
  if (!valid_env_name(s))
    return sy__config_fail(err, errlen,
                           "%s: must be an environment variable name (A-Z a-z 0-9 _, 1 to %d "
                           "characters, not starting with a digit)",
                           what, SY__CONF_MAX_ENV_NAME);
  return sy__config_set_str(dst, s) == 0 ? 0 : sy__config_fail_nomem(err, errlen);
}

int sy__config_parse_durability(const char *s, sy_capture_durability *out) {
  static const char *const names[] = {"sync", "nometasync", "nosync"};
  static const sy_capture_durability modes[] = {SY_CAPTURE_SYNC, SY_CAPTURE_NOMETASYNC,
                                                SY_CAPTURE_NOSYNC};
  for (size_t i = 0; i < SY__N_OF(names); i++)
    if (strcmp(s, names[i]) == 0) {
      *out = modes[i];
      return 0;
    }
  return -1;
}

/* ---- flags ------------------------------------------------------------- */

enum flag_kind {
  F_CONFIG, F_LISTEN, F_WORKERS, F_DATA_DIR, F_LOG_LEVEL, F_NO_AUTH,
  F_UP_URL, F_UP_KEY_ENV, F_UP_NUM, F_LIMIT, F_NO_CAPTURE, F_CAPTURE_DURABILITY, F_HELP,
  F_GRPC_LISTEN, F_GRPC_ADMIN_LISTEN,
};

static const struct {
  const char *name;
  enum flag_kind kind;
} flag_names[] = {
    {"--config", F_CONFIG},         {"--listen", F_LISTEN},
    {"--workers", F_WORKERS},       {"--data-dir", F_DATA_DIR},
    {"--log-level", F_LOG_LEVEL},   {"--no-auth", F_NO_AUTH},
    {"--upstream-url", F_UP_URL},   {"--upstream-key-env", F_UP_KEY_ENV},
    {"--no-capture", F_NO_CAPTURE}, {"--capture-durability", F_CAPTURE_DURABILITY},
    {"--help", F_HELP},             {"-h", F_HELP},
    {"--grpc-listen", F_GRPC_LISTEN}, {"--grpc-admin-listen", F_GRPC_ADMIN_LISTEN},
};

typedef struct flag_arg {
  enum flag_kind kind;
  const sy__num_spec *spec;  /* F_UP_NUM, F_LIMIT */
  const char *name;          /* as typed, up to name_len */
  int name_len;
  const char *value;         /* NULL for flags without one */
} flag_arg;

static int lookup_flag(const char *name, size_t n, flag_arg *f) {
  for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++)
    if (strlen(flag_names[i].name) == n && memcmp(flag_names[i].name, name, n) == 0) {
      f->kind = flag_names[i].kind;
      return 0;
    }
  static const sy__num_spec *const tables[] = {sy__config_up_specs, sy__config_limit_specs};
  const size_t counts[] = {sy__config_n_up_specs, sy__config_n_limit_specs};
  for (size_t t = 0; t < 2; t++)
    for (size_t i = 0; i < counts[t]; i++)
      if (strlen(tables[t][i].flag) == n && memcmp(tables[t][i].flag, name, n) == 0) {
        f->kind = t == 0 ? F_UP_NUM : F_LIMIT;
        f->spec = &tables[t][i];
        return 0;
      }
  return -1;
}

/* Reads the flag at argv[*i] (and its value, advancing *i past it). */
static int next_flag(int argc, char **argv, int *i, flag_arg *f, char *err, size_t errlen) {
  const char *a = argv[*i];
  char sb[SY__CONF_SHOWN + 4];
  memset(f, 0, sizeof *f);
  if (a[0] != '-')
    return sy__config_fail(err, errlen, "unexpected argument \"%s\" (options start with --)",
                           sy__config_shown(a, sb));
  const char *eq = strchr(a, '=');
  size_t n = eq ? (size_t)(eq - a) : strlen(a);
  f->name = a;
  f->name_len = n > SY__CONF_SHOWN ? SY__CONF_SHOWN : (int)n;
  if (lookup_flag(a, n, f) != 0)
    return sy__config_fail(err, errlen, "%.*s: unknown option (see --help)", f->name_len, a);
  int wants_value = f->kind != F_NO_AUTH && f->kind != F_NO_CAPTURE && f->kind != F_HELP;
  if (!wants_value) {
    if (eq) return sy__config_fail(err, errlen, "%.*s: takes no value", f->name_len, a);
    return 0;
  }
  if (eq) {
    f->value = eq + 1;
  } else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
    f->value = argv[++*i];
  } else {
    return sy__config_fail(err, errlen, "%.*s: missing value", f->name_len, a);
  }
  return 0;
}

/* The upstream the --upstream-* flags change: the one "default_upstream"
 * names, else the first; with none yet, a new one called "default". */
static sy_upstream_conf *flag_upstream(sy_config *c) {
  if (c->n_upstreams == 0) {
    sy_upstream_conf *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    sy__config_upstream_defaults(u);
    if (!(u->name = strdup("default"))) {
      free(u);
      return NULL;
    }
    free(c->upstreams);
    c->upstreams = u;
    c->n_upstreams = 1;
    return u;
  }
  if (c->default_upstream_name)
    for (size_t i = 0; i < c->n_upstreams; i++)
      if (strcmp(c->upstreams[i].name, c->default_upstream_name) == 0) return &c->upstreams[i];
  return &c->upstreams[0];
}

static int apply_flag(sy_config *c, const flag_arg *f, char *err, size_t errlen) {
  char what[SY__CONF_SHOWN + 1], sb[SY__CONF_SHOWN + 4];
  snprintf(what, sizeof what, "%.*s", f->name_len, f->name);
  const char *v = f->value;
  uint64_t x;
  sy_log_level lvl;
  sy_upstream_conf *u;
  switch (f->kind) {
    case F_CONFIG:
    case F_HELP:
      return 0;  /* handled before the others */
    case F_LISTEN:
      return sy__config_parse_listen(v, &c->listen_host, &c->listen_port, what, err, errlen);
    case F_GRPC_LISTEN:
      return sy__config_grpc_listen(c->grpc.listen_host, &c->grpc.listen_port, v, what, err,
                                    errlen);
    case F_GRPC_ADMIN_LISTEN:
      return sy__config_grpc_listen(c->grpc.admin_host, &c->grpc.admin_port, v, what, err,
                                    errlen);
    case F_WORKERS:
      if (sy__config_parse_uint_text(v, 0, SY_MAX_WORKERS, &x) != 0)
        return sy__config_fail(err, errlen,
                               "%s: expected an integer between 0 and %llu, got \"%s\"", what,
                               (unsigned long long)SY_MAX_WORKERS, sy__config_shown(v, sb));
      c->workers = (uint32_t)x;
      return 0;
    case F_DATA_DIR: {
      int rc = sy__config_check_path(v, what, err, errlen);
      if (rc != 0) return rc;
      return sy__config_set_str(&c->data_dir, v) == 0 ? 0 : sy__config_fail_nomem(err, errlen);
    }
    case F_LOG_LEVEL:
      if (sy_log_parse_level(v, &lvl) != 0)
        return sy__config_fail(err, errlen, "%s: %s", what, SY__CONF_LEVEL_RULE);
      return sy__config_set_str(&c->log_level, v) == 0 ? 0 : sy__config_fail_nomem(err, errlen);
    case F_NO_AUTH:
      c->auth = 0;
      return 0;
    case F_NO_CAPTURE:
      c->capture.enabled = 0;
      return 0;
    case F_CAPTURE_DURABILITY:
      if (sy__config_parse_durability(v, &c->capture.durability) != 0)
        return sy__config_fail(err, errlen, "%s: %s", what, SY__CONF_DURABILITY_RULE);
      return 0;
    case F_UP_URL:
      if (!(u = flag_upstream(c))) return sy__config_fail_nomem(err, errlen);
      return sy__config_set_base_url(u, v, what, err, errlen);
    case F_UP_KEY_ENV:
      if (!(u = flag_upstream(c))) return sy__config_fail_nomem(err, errlen);
      return sy__config_set_env_name(&u->api_key_env, v, what, err, errlen);
    case F_UP_NUM:
    case F_LIMIT:
      if (sy__config_parse_uint_text(v, f->spec->lo, f->spec->hi, &x) != 0)
        return sy__config_fail(err, errlen,
                               "%s: expected an integer between %llu and %llu, got \"%s\"", what,
                               (unsigned long long)f->spec->lo, (unsigned long long)f->spec->hi,
                               sy__config_shown(v, sb));
      if (f->kind == F_LIMIT) {
        sy__config_spec_set(&c->limits, f->spec, x);
        return 0;
      }
      if (!(u = flag_upstream(c))) return sy__config_fail_nomem(err, errlen);
      sy__config_spec_set(u, f->spec, x);
      return 0;
  }
  return sy__config_fail(err, errlen, "%s: not handled", what);  /* unreachable: kinds are closed */
}

int sy_config_apply_args(sy_config *c, int argc, char **argv, int *show_help, char *err,
                         size_t errlen) {
  flag_arg f;
  int rc;
  /* Pass 1: check every flag, answer --help, and read --config files, so
   * the file lies under the flags whatever the order on the line. */
  for (int i = 1; i < argc; i++) {
    if ((rc = next_flag(argc, argv, &i, &f, err, errlen)) != 0) return rc;
    if (f.kind == F_HELP) {
      if (show_help) *show_help = 1;
      return 0;  /* help wins over everything else on the line */
    }
  }
  for (int i = 1; i < argc; i++) {
    next_flag(argc, argv, &i, &f, err, errlen);
    if (f.kind == F_CONFIG && (rc = sy_config_load_file(c, f.value, err, errlen)) != 0)
      return rc;
  }
  for (int i = 1; i < argc; i++) {
    next_flag(argc, argv, &i, &f, err, errlen);
    if ((rc = apply_flag(c, &f, err, errlen)) != 0) return rc;
  }
  return 0;
}

void sy_config_usage(FILE *out) {
  fprintf(out,
          "Usage: switchyard [OPTIONS]\n"
          "\n"
          "OpenAI-compatible model-routing gateway. Settings come from the JSON file\n"
          "given with --config, then from the options below, which override it.\n"
          "Every option with a value also takes the --option=VALUE form.\n"
          "\n"
          "  %-34s %s\n"
          "  %-34s %s (default %s:%d)\n"
          "  %-34s %s (default 0)\n"
          "  %-34s %s (default %s)\n"
          "  %-34s %s (default info)\n"
          "  %-34s %s\n"
          "  %-34s %s\n"
          "  %-34s %s\n",
          "--config FILE", "JSON config file, read before the other options (default none)",
          "--listen HOST:PORT", "address to serve on; IPv6 as [::1]:8080, port 0 = any",
          SY_DEFAULT_LISTEN_HOST, SY_DEFAULT_LISTEN_PORT, "--workers N",
          "worker loops, 0..64, 0 = one per core", "--data-dir DIR", "LMDB folder",
          SY_DEFAULT_DATA_DIR, "--log-level LEVEL", "debug, info, warn or error", "--no-auth",
          "accept calls without a client key (local development only)",
          "--upstream-url URL",
          "base URL (http:// or https://) of the default upstream; creates one\n"
          "                                     named \"default\" when the file has none",
          "--upstream-key-env NAME",
          "environment variable holding the default upstream's API key");
  static const sy__num_spec *const tables[] = {sy__config_up_specs, sy__config_limit_specs};
  const size_t counts[] = {sy__config_n_up_specs, sy__config_n_limit_specs};
  for (size_t t = 0; t < 2; t++)
    for (size_t i = 0; i < counts[t]; i++) {
      const sy__num_spec *s = &tables[t][i];
      char name[64];
      snprintf(name, sizeof name, "%s N", s->flag);
      fprintf(out, "  %-34s %s\n  %-34s (%llu..%llu, default %llu)\n", name, s->help, "",
              (unsigned long long)s->lo, (unsigned long long)s->hi,
              (unsigned long long)s->def);
    }
  fprintf(out,
          "  %-34s %s\n  %-34s (default %s:%d; \"\" = off)\n"
          "  %-34s %s\n  %-34s (default %s:%d; \"\" = off; needs admin tokens)\n",
          "--grpc-listen HOST:PORT", "gRPC inference + feedback API address", "",
          SY_DEFAULT_GRPC_HOST, SY_DEFAULT_GRPC_PORT, "--grpc-admin-listen HOST:PORT",
          "gRPC admin API address", "", SY_DEFAULT_GRPC_HOST, SY_DEFAULT_GRPC_ADMIN_PORT);
  fprintf(out,
          "  %-34s %s\n"
          "  %-34s %s\n"
          "  %-34s %s\n"
          "\n"
          "The default upstream is the one \"default_upstream\" names in the file, else\n"
          "the first. Upstream API keys are read from the environment, never from flags.\n"
          "The admin token in $" SY_ADMIN_TOKEN_ENV " (if set) is an admin token named \"env\".\n",
          "--no-capture", "do not record requests and responses in the capture store",
          "--capture-durability MODE",
          "sync, nometasync or nosync: how capture batches reach the disk\n"
          "                                     (default sync; nosync fsyncs on a timer)",
          "-h, --help", "print this text and exit (other options are ignored)");
}

/* ---- final checks -------------------------------------------------------- */

const sy_upstream_conf *sy_config_upstream(const sy_config *c, const char *name) {
  for (size_t i = 0; i < c->n_upstreams; i++)
    if (strcmp(c->upstreams[i].name, name) == 0) return &c->upstreams[i];
  return NULL;
}

int sy_config_finish(sy_config *c, char *err, size_t errlen) {
  if ((!c->listen_host && !(c->listen_host = strdup(SY_DEFAULT_LISTEN_HOST))) ||
      (!c->data_dir && !(c->data_dir = strdup(SY_DEFAULT_DATA_DIR))) ||
      (!c->log_level && !(c->log_level = strdup("info"))))
    return sy__config_fail_nomem(err, errlen);
  sy_log_level lvl;
  if (sy_log_parse_level(c->log_level, &lvl) != 0)
    return sy__config_fail(err, errlen, "log_level: %s", SY__CONF_LEVEL_RULE);
  if (c->n_upstreams == 0)
    return sy__config_fail(err, errlen,
                           "upstreams: at least one upstream is required (or --upstream-url)");
  for (size_t i = 0; i < c->n_upstreams; i++)
    if (!c->upstreams[i].base_url)
      return sy__config_fail(err, errlen, "upstreams[%zu].base_url: required (or --upstream-url)",
                             i);
  if (c->default_upstream_name) {
    const sy_upstream_conf *u = sy_config_upstream(c, c->default_upstream_name);
    if (!u)
      return sy__config_fail(err, errlen, "default_upstream: no upstream is named \"%s\"",
                             c->default_upstream_name);
    c->default_upstream = (size_t)(u - c->upstreams);
  } else if (c->n_upstreams > 1) {
    return sy__config_fail(err, errlen,
                           "default_upstream: required when there is more than one upstream");
  } else {
    c->default_upstream = 0;
  }
  if (c->auth && c->n_client_keys == 0)
    return sy__config_fail(err, errlen,
                           "client_keys: auth is on but no client keys are configured; add "
                           "client_keys to the config file (hash keys with `switchyard hash-key`) "
                           "or pass --no-auth for local development");
  if (c->workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n < 1 ? 1 : n > SY_MAX_WORKERS ? SY_MAX_WORKERS : (uint32_t)n;
  }
  for (size_t i = 0; i < c->n_upstreams; i++) {
    sy_upstream_conf *u = &c->upstreams[i];
    sy__config_secret_free(&u->api_key);
    const char *key = u->api_key_env ? getenv(u->api_key_env) : NULL;
    /* An empty variable counts as unset: an empty bearer token is no key. */
    if (key && *key && !(u->api_key = strdup(key))) return sy__config_fail_nomem(err, errlen);
  }
  return sy__config_finish_grpc(c, err, errlen);
}
