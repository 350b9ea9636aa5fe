/* switchyard: the gateway daemon.
 *
 * main() blocks SIGINT/SIGTERM/SIGHUP before any thread starts (so every
 * thread, libraries' included, inherits the mask), binds the listeners,
 * starts the workers, then waits in sigwait() and runs the ordered shutdown:
 * workers stop accepting and drain in-flight requests within the deadline,
 * then everything is released. */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <http_parser.h>

#include "common/err.h"
#include "common/log.h"
#include "gateway/config.h"
#include "gateway/grpc_server.h" /* grpc: start/stop of the gRPC API */
#include "gateway/keyset.h"      /* admin: runtime client keys */
#include "gateway/routes_pub.h"  /* admin: routes from the store */
#include "gateway/upstream.h"
#include "gateway/version.h"
#include "gateway/proxy_internal.h"
#include "gateway/worker.h"
#include "router/route.h"
#include "store/store.h"

#define SY_HASH_KEY_MAX 4096

static int cmd_hash_key(int argc, char **argv) {
  char line[SY_HASH_KEY_MAX + 2];
  const char *key;
  size_t len;
  if (argc > 2) {
    fprintf(stderr, "usage: switchyard hash-key [KEY]   (no KEY: read one line from stdin)\n");
    return 2;
  }
  if (argc == 2) {
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
      printf("usage: switchyard hash-key [KEY]\n\nPrints the SHA-256 (hex) of a client key, for "
             "\"client_keys\" in the config.\nWith no KEY, reads the key from the first line of "
             "standard input (safer: it stays out of the shell history).\n");
      return 0;
    }
    key = argv[1];
    len = strlen(key);
  } else {
    if (!fgets(line, sizeof line, stdin)) {
      fprintf(stderr, "switchyard hash-key: no key on standard input\n");
      return 2;
    }
    len = strlen(line);
    if (len > SY_HASH_KEY_MAX) {
      fprintf(stderr, "switchyard hash-key: key longer than %d bytes\n", SY_HASH_KEY_MAX);
      return 2;
    }
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    key = line;
  }
  if (!len) {
    fprintf(stderr, "switchyard hash-key: empty key\n");
    return 2;
  }
  char hex[65];
  sy_hash_key_hex(key, len, hex);
  OPENSSL_cleanse(line, sizeof line);
  printf("%s\n", hex);
  return 0;
}

static uint32_t random_u32(void) {
  uint32_t v = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  if (f) {
    if (fread(&v, sizeof v, 1, f) != 1) v = 0;
    fclose(f);
  }
  return v ^ (uint32_t)getpid() ^ (uint32_t)uv_hrtime();
}

/* SIGHUP: re-reads the config file and flags, stores the file's routes as a
 * new version (actor "sighup") and publishes them atomically (precedence:
 * gateway/routes_pub.h). Anything else that changed needs a restart
 * (logged). A bad file leaves the running routes in place. */
static void reload_routes(sy_gateway *gw, int argc, char **argv) {
  sy_config nc;
  sy_config_init(&nc);
  char err[512];
  int help = 0;
  int rc = sy_config_apply_args(&nc, argc, argv, &help, err, sizeof err);
  if (!rc) rc = sy_config_finish(&nc, err, sizeof err);
  uint64_t version = 0;
  size_t count = 0;
  if (!rc) rc = sy_routes_pub_reload(gw, &nc, &version, &count, err, sizeof err);
  if (rc) {
    sy_error("SIGHUP: configuration rejected, the running routes stay: %s", err);
  } else {
    sy_info("SIGHUP: routes reloaded: %zu route(s), version %llu", count,
            (unsigned long long)version);
  }
  sy_config_free(&nc);
}

/* admin: opens the process's one store handle (shared by the capture pipe
 * and the admin API), even when capture is off: routes, their history and
 * client keys live there too. */
static int open_store(const sy_config *cfg, sy_store **out) {
  sy_store_opts so = {
      .path = cfg->data_dir,
      .durability = cfg->capture.durability == SY_CAPTURE_SYNC        ? SY_DURABLE_SYNC
                    : cfg->capture.durability == SY_CAPTURE_NOMETASYNC ? SY_DURABLE_NOMETASYNC
                                                                       : SY_DURABLE_NOSYNC,
      .map_size_max = (size_t)cfg->capture.map_size_max_mb << 20,
  };
  int rc = sy_store_open(&so, out);
  if (rc)
    fprintf(stderr, "switchyard: cannot open the store in '%s': %s (see the log above)\n",
            cfg->data_dir, sy_strerror(rc));
  return rc;
}

/* admin: releases what open_admin_state took (any of it may be NULL). */
static void close_admin_state(sy_gateway *gw) {
  sy_keyset_free(gw->keys);
  gw->keys = NULL;
  sy_store_close(gw->store);
  gw->store = NULL;
  pthread_mutex_destroy(&gw->routes_mu);
}

static int run(sy_config *cfg, int argc, char **argv) {
  sy_log_level lvl;
  if (cfg->log_level && sy_log_parse_level(cfg->log_level, &lvl) == 0) sy_log_set_level(lvl);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (cfg->limits.max_header_bytes + 1024 > 80 * 1024)
    http_parser_set_max_header_size((uint32_t)(cfg->limits.max_header_bytes + 1024));

  if (sy_upstream_global_init() != 0) {
    fprintf(stderr, "switchyard: cannot initialise libcurl\n");
    return 1;
  }

  sy_gateway gw = {.cfg = cfg, .boot_id = random_u32()};
  atomic_init(&gw.draining, 0);
  /* admin: store, client keys, then the routes (store or file, see
   * gateway/routes_pub.h for the precedence). */
  pthread_mutex_init(&gw.routes_mu, NULL);
  if (open_store(cfg, &gw.store) != 0 || sy_keyset_new(cfg, &gw.keys) != 0 ||
      sy_keyset_reload(gw.keys, gw.store) != 0) {
    fprintf(stderr, "switchyard: cannot load the client keys or open the store\n");
    close_admin_state(&gw);
    sy_upstream_global_cleanup();
    return 1;
  }
  {
    char rerr[512];
    sy_route_table *t = NULL;
    int lrc = sy_routes_pub_load(&gw, &t, rerr, sizeof rerr);
    if (lrc != 0) {
      fprintf(stderr, "switchyard: %s\n", rerr);
      close_admin_state(&gw);
      sy_upstream_global_cleanup();
      return lrc == SY_ECONFIG ? 2 : 1;
    }
    sy_route_slot_init(&gw.routes, t);
  }
  sy_shadow_cap_init(&gw.shadow_cap, SY_SHADOW_MAX_IN_FLIGHT);
  if (cfg->capture.enabled) {
    char cerr[512];
    int crc = sy_capture_open(cfg, gw.store, &gw.capture, cerr, sizeof cerr);
    if (crc) {
      fprintf(stderr, "switchyard: %s\n", cerr);
      sy_route_slot_destroy(&gw.routes);
      close_admin_state(&gw);
      sy_upstream_global_cleanup();
      return crc == SY_ECONFIG ? 2 : 1;
    }
  }
  unsigned n = cfg->workers;
  sy_worker *workers = calloc(n, sizeof *workers);
  if (!workers) {
    sy_capture_close(gw.capture);
    sy_route_slot_destroy(&gw.routes);
    close_admin_state(&gw);
    sy_upstream_global_cleanup();
    return 1;
  }

  /* Bind every worker's socket before starting any, so a bad address fails
   * start-up cleanly and port 0 resolves to one port shared by all. */
  uint16_t port = cfg->listen_port;
  unsigned bound = 0;
  int rc = 0;
  char msg[256];
  for (; bound < n; bound++) {
    uint16_t got = port;
    rc = sy_listen_socket(cfg->listen_host, port, &workers[bound].listen_fd, &got, msg, sizeof msg);
    if (rc) break;
    port = got;
  }
  if (rc) {
    fprintf(stderr, "switchyard: %s\n", msg);
    for (unsigned i = 0; i < bound; i++) close(workers[i].listen_fd);
    free(workers);
    sy_capture_close(gw.capture);
    sy_route_slot_destroy(&gw.routes);
    close_admin_state(&gw);
    sy_upstream_global_cleanup();
    return 1;
  }

  unsigned started = 0;
  for (; started < n; started++) {
    sy_worker *w = &workers[started];
    w->id = started;
    w->gw = &gw;
    w->cfg = cfg;
    w->max_conns = (cfg->limits.max_connections + n - 1) / n;
    rc = sy_worker_start(w);
    if (rc) {
      fprintf(stderr, "switchyard: cannot start worker %u: %s\n", started, uv_strerror(rc));
      break;
    }
  }

  /* grpc: the gRPC API starts once the workers run (it posts calls to them)
   * and stops before they drain. */
  sy_grpc *grpc = NULL;
  if (!rc) {
    char gerr[512];
    if ((rc = sy_grpc_start(&gw, workers, n, &grpc, gerr, sizeof gerr)) != 0)
      fprintf(stderr, "switchyard: %s\n", gerr);
  }
  /* grpc: end */

  if (!rc) {
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    printf("switchyard listening on http://%s%s%s:%u\n", v6 ? "[" : "", cfg->listen_host,
           v6 ? "]" : "", (unsigned)port);
    fflush(stdout);
    const sy_upstream_conf *up = &cfg->upstreams[cfg->default_upstream];
    sy_info("%s: %u worker(s), default upstream '%s' at %s%s, client auth %s, capture %s%s",
            sy_version_string(), n, up->name, up->base_url, up->api_key ? " (with key)" : "",
            cfg->auth ? "on" : "OFF (--no-auth)", gw.capture ? "on in " : "off",
            gw.capture ? cfg->data_dir : "");
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        reload_routes(&gw, argc, argv);
        continue;
      }
      sy_info("%s: draining (deadline %u ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
              cfg->limits.drain_timeout_ms);
      break;
    }
  }

  atomic_store(&gw.draining, 1);
  sy_grpc_stop(grpc); /* grpc: cancels its calls while the workers still run */
  for (unsigned i = 0; i < started; i++) sy_worker_drain(&workers[i]);
  for (unsigned i = 0; i < started; i++) sy_worker_join(&workers[i]);
  for (unsigned i = started; i < n; i++) close(workers[i].listen_fd);
  free(workers);
  /* After the workers: every capture they queued is committed before exit. */
  sy_capture_close(gw.capture);
  sy_route_slot_destroy(&gw.routes);
  close_admin_state(&gw); /* admin: after the capture writer and the gRPC threads */
  sy_upstream_global_cleanup();
  if (!rc) sy_info("stopped");
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "hash-key")) return cmd_hash_key(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
    printf("%s\n", sy_version_string());
    return 0;
  }
  sy_config cfg;
  sy_config_init(&cfg);
  char err[512];
  int show_help = 0;
  int rc = sy_config_apply_args(&cfg, argc, argv, &show_help, err, sizeof err);
  if (!rc && show_help) {
    sy_config_usage(stdout);
    printf("\nOther commands:\n  switchyard hash-key [KEY]   print the SHA-256 of a client key\n"
           "  switchyard --version\n");
    sy_config_free(&cfg);
    return 0;
  }
  if (!rc) rc = sy_config_finish(&cfg, err, sizeof err);
  if (rc) {
    fprintf(stderr, "switchyard: %s\n(see switchyard --help)\n", err);
    sy_config_free(&cfg);
    return 2;
  }
  rc = run(&cfg, argc, argv);
  sy_config_free(&cfg);
  return rc;
}
