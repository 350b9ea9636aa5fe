#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* switchyard's configuration: a JSON file, then command-line flags on top.
 *
 * File shape (every key optional unless said otherwise; integers must be
 * JSON integers within the range shown, never strings, fractions or negatives):
 * {
 *   "listen": "127.0.0.1:8080",          HOST:PORT; port 0..65535, 0 picks a free one.
 *                                        HOST is an IPv4 address, "localhost" (stored
 *                                        as 127.0.0.1) or an IPv6 address in brackets:
 *                                        "[::1]:8080" (stored as "::1")
 *   "workers": 0,                        0..SY_MAX_WORKERS; 0 = one per core
 *   "data_dir": "./switchyard-data",     LMDB folder (1..4095 bytes)
 *   "log_level": "info",                 debug|info|warn|error
 *   "auth": true,                        false only for local development (--no-auth)
 *   "default_upstream": "openai",        name of an upstream (required when there
 *                                        is more than one upstream)
 *   "upstreams": [ {                     at least one (required), at most SY_MAX_UPSTREAMS
 *       "name": "openai",                [A-Za-z0-9_.-], 1..63 chars, unique (required)
 *       "base_url": "https://api.openai.com/v1",  http:// or https:// (required); at
 *                                        most 2048 bytes, no spaces, control
 *                                        characters, query or fragment; trailing
 *                                        slashes are dropped
 *       "api_key_env": "OPENAI_API_KEY", env var that holds its key; may be absent
 *                                        (or null); [A-Za-z_][A-Za-z0-9_]*, 1..255
 *       "connect_timeout_ms": 5000,      1..300000
 *       "timeout_ms": 600000,            1..86400000; whole request, streams included
 *       "max_connections": 256           1..65536; per upstream, across all workers
 *   } ],
 *   "client_keys": [ {                   who may call the gateway (when auth is on);
 *                                        at most SY_MAX_CLIENT_KEYS
 *       "name": "app1",                  shown in logs and captures, never the key;
 *                                        same rule as upstream names, unique (required)
 *       "sha256": "64 hex chars"         SHA-256 of the key (`switchyard hash-key`),
 *                                        unique (required)
 *   } ],
 *   "limits": {
 *       "max_header_bytes": 65536,       1024..1048576; 431 past it
 *       "max_body_bytes": 8388608,       1024..1073741824; 413 past it
 *       "max_connections": 10000,        1..1000000; per process; further accepts are closed
 *       "idle_timeout_ms": 60000,        100..3600000; keep-alive connection with no request
 *       "header_timeout_ms": 10000,      100..600000; first byte to end of headers (slowloris)
 *       "body_timeout_ms": 60000,        100..3600000; end of headers to end of body
 *       "drain_timeout_ms": 30000        0..600000; SIGTERM: how long in-flight requests may finish
 *   },
 *   "capture": {                         the capture store (LMDB under data_dir)
 *       "enabled": true,                 --no-capture turns it off
 *       "durability": "sync",            sync|nometasync|nosync (--capture-durability)
 *       "queue_size": 65536,             16..1048576 records waiting for the writer
 *       "batch_max": 512,                1..100000 records per LMDB transaction
 *       "flush_ms": 10,                  1..10000: longest a record waits for its batch
 *       "sync_interval_ms": 1000,        10..600000: nosync mode's periodic fsync
 *       "keep_images": false,            true: keep base64 data-URL images in records
 *       "max_response_bytes": 4194304,   1024..67108864 captured per response (rest: truncated)
 *       "map_size_max_mb": 65536,        16..16777216: LMDB map ceiling
 *       "retention": { "max_age_days": 0, "max_mb": 0 },   0 = no limit
 *       "pii_patterns": [ { "name": "TICKET", "pattern": "TCK-[0-9]{6}" } ]
 *                                        extra PCRE2 patterns; name [A-Z0-9_]{1,32}
 *   },
 *   "grpc": {                            the gRPC API (gateway/grpc_server.h)
 *       "listen": "127.0.0.1:50051",     Inference + FeedbackService (--grpc-listen); off
 *                                        unless set; same address rules as "listen"
 *       "admin_listen": "127.0.0.1:50052",  Admin service (--grpc-admin-listen); "" turns
 *                                        it off; it only starts when admin tokens exist
 *       "tls_cert": PATH, "tls_key": PATH,  PEM files, both or neither; with them both
 *                                        listeners serve TLS only
 *       "admin_tokens": [ {              at most SY_MAX_ADMIN_TOKENS
 *           "name": "ci",                audit-trail name; same rule as upstream names,
 *                                        unique; "env" is reserved (below)
 *           "sha256": "64 hex chars",    SHA-256 of the token (`switchyard hash-key`), unique
 *           "role": "admin"              admin (every method) | read (read-only methods)
 *       } ],
 *       "max_message_bytes": 8388608     4096..1073741824: larger gRPC messages are refused
 *   }
 * }
 * The environment variable SWITCHYARD_ADMIN_TOKEN, when set and not empty, adds an
 * admin token named "env" with role admin (sy_config_finish).
 * client_keys[].capture: false turns capture off for that key's traffic.
 * "routes": [ ... ] is accepted (must be an array) and kept as text for router/.
 * The text must be JSON with no NUL character (raw or escaped), nested at most
 * 64 levels deep, with no key given twice in one object.
 * Unknown keys are rejected (a typo must not silently keep a default). */

#define SY_MAX_WORKERS 64
#define SY_MAX_UPSTREAMS 64
#define SY_MAX_CLIENT_KEYS 4096
#define SY_CONFIG_MAX_FILE_BYTES (4u << 20)

#define SY_DEFAULT_LISTEN_HOST "127.0.0.1"
#define SY_DEFAULT_LISTEN_PORT 8080
#define SY_DEFAULT_DATA_DIR "./switchyard-data"
#define SY_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define SY_DEFAULT_UPSTREAM_TIMEOUT_MS 600000
#define SY_DEFAULT_UPSTREAM_MAX_CONNS 256
#define SY_DEFAULT_MAX_HEADER_BYTES 65536
#define SY_DEFAULT_MAX_BODY_BYTES (8u << 20)
#define SY_DEFAULT_MAX_CONNECTIONS 10000
#define SY_DEFAULT_IDLE_TIMEOUT_MS 60000
#define SY_DEFAULT_HEADER_TIMEOUT_MS 10000
#define SY_DEFAULT_BODY_TIMEOUT_MS 60000
#define SY_DEFAULT_DRAIN_TIMEOUT_MS 30000
#define SY_MAX_ADMIN_TOKENS 256
#define SY_DEFAULT_GRPC_HOST "127.0.0.1"
#define SY_DEFAULT_GRPC_PORT 50051
#define SY_DEFAULT_GRPC_ADMIN_PORT 50052
#define SY_DEFAULT_GRPC_MAX_MESSAGE_BYTES (8u << 20)
#define SY_ADMIN_TOKEN_ENV "SWITCHYARD_ADMIN_TOKEN"
#define SY_GRPC_HOST_MAX 47       /* INET6_ADDRSTRLEN - 1: hosts are numeric addresses */

typedef struct sy_upstream_conf {
  char *name;
  char *base_url;      /* no trailing slash */
  char *api_key_env;   /* NULL when absent */
  char *api_key;       /* resolved from api_key_env at load time; NULL if unset. Never log it. */
  int https;           /* base_url starts with https:// */
  uint32_t connect_timeout_ms;
  uint32_t timeout_ms;
  uint32_t max_connections;
} sy_upstream_conf;

typedef struct sy_client_key {
  char *name;
  unsigned char sha256[32];
  int capture;         /* 0 = never capture this key's traffic (default 1) */
} sy_client_key;

typedef struct sy_pii_pattern {
  char *name;
  char *pattern;
} sy_pii_pattern;

typedef enum { SY_CAPTURE_SYNC = 0, SY_CAPTURE_NOMETASYNC, SY_CAPTURE_NOSYNC } sy_capture_durability;

typedef struct sy_capture_conf {
  int enabled;
  sy_capture_durability durability;
  uint32_t queue_size;
  uint32_t batch_max;
  uint32_t flush_ms;
  uint32_t sync_interval_ms;
  int keep_images;
  size_t max_response_bytes;
  uint64_t map_size_max_mb;
  uint32_t retention_max_age_days;
  uint64_t retention_max_mb;
  sy_pii_pattern *pii_patterns;
  size_t n_pii_patterns;
} sy_capture_conf;

typedef struct sy_limits {
  size_t max_header_bytes;
  size_t max_body_bytes;
  uint32_t max_connections;
  uint32_t idle_timeout_ms;
  uint32_t header_timeout_ms;
  uint32_t body_timeout_ms;
  uint32_t drain_timeout_ms;
} sy_limits;

typedef enum { SY_ADMIN_ROLE_READ = 0, SY_ADMIN_ROLE_ADMIN = 1 } sy_admin_role;

typedef struct sy_admin_token {
  char *name;
  unsigned char sha256[32];
  sy_admin_role role;
} sy_admin_token;

typedef struct sy_grpc_conf {
  char listen_host[SY_GRPC_HOST_MAX + 1]; /* numeric address; "": the inference listener is off */
  uint16_t listen_port;
  char admin_host[SY_GRPC_HOST_MAX + 1];  /* "": the admin listener is off */
  uint16_t admin_port;
  char *tls_cert;           /* PEM file paths; both set or both NULL */
  char *tls_key;
  sy_admin_token *admin_tokens;
  size_t n_admin_tokens;
  size_t max_message_bytes;
} sy_grpc_conf;

typedef struct sy_config {
  char *listen_host;   /* "127.0.0.1", "0.0.0.0", "::1", ... */
  uint16_t listen_port;
  uint32_t workers;    /* resolved: never 0 after sy_config_finish() */
  char *data_dir;
  char *log_level;
  int auth;            /* 1 = client keys required */
  sy_upstream_conf *upstreams;
  size_t n_upstreams;
  size_t default_upstream;  /* index into upstreams */
  sy_client_key *client_keys;
  size_t n_client_keys;
  sy_limits limits;
  sy_capture_conf capture;
  sy_grpc_conf grpc;
  char *routes_json;   /* the "routes" array re-serialised as JSON text, parsed by
                          router/ (sy_route_table_parse); NULL when absent */
  char *default_upstream_name; /* "default_upstream" as given; NULL = the first
                                  upstream. sy_config_finish() resolves it into
                                  default_upstream (the index above). */
} sy_config;

/* Fills `c` with the defaults and no upstreams. */
void sy_config_init(sy_config *c);

/* Parses a config file's JSON text into `c` (which must have been
 * sy_config_init'ed); keys present override what is there. On failure
 * returns SY_ECONFIG and writes "FIELD: problem" (for example
 * "upstreams[1].base_url: must start with http:// or https://") into err. */
int sy_config_parse(sy_config *c, const char *json, size_t len, char *err, size_t errlen);

/* Reads the file (at most SY_CONFIG_MAX_FILE_BYTES) and parses it. The
 * message names the path when the file cannot be read. */
int sy_config_load_file(sy_config *c, const char *path, char *err, size_t errlen);

/* Applies the command-line flags after argv[0] (they override the file;
 * "--config FILE" is read first wherever it stands). Sets *show_help when
 * --help is given. Returns SY_ECONFIG with a message for an unknown flag, a
 * missing or malformed value. The flags are listed by sy_config_usage(). */
int sy_config_apply_args(sy_config *c, int argc, char **argv, int *show_help,
                         char *err, size_t errlen);

/* Writes the --help text. */
void sy_config_usage(FILE *out);

/* Final checks and derived values once file and flags are applied: at least
 * one upstream, default upstream resolved, workers resolved from the core
 * count, upstream keys read from the environment, auth on with no keys is an
 * error. SY_ECONFIG with a message on failure. */
int sy_config_finish(sy_config *c, char *err, size_t errlen);

/* Finds an upstream by name; NULL if none. */
const sy_upstream_conf *sy_config_upstream(const sy_config *c, const char *name);

/* Frees everything the config owns. */
void sy_config_free(sy_config *c);

/* SHA-256 of a key, as 64 lowercase hex chars plus NUL into out[65]. */
void sy_hash_key_hex(const char *key, size_t len, char out[65]);
void sy_hash_key(const char *key, size_t len, unsigned char out[32]);

#endif
