#ifndef SY_CTL_ADMIN_H
#define SY_CTL_ADMIN_H

/* What every switchyardctl admin sub-command shares: the connection options
 * (--addr, --token, --tls-ca, --tls-server-name, --timeout-ms, --json and
 * their environment variables), one-shot RPCs with status → exit code, and
 * argument parsers that reject bad input before anything is sent.
 *
 * Exit codes: 0 ok, 1 the RPC failed (a status line on stderr), 2 usage
 * error (nothing sent), 3 cannot connect or the deadline passed. */

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "ctl/grpc_client.h"

#define SY_CTL_ADMIN_DEFAULT_ADDR "127.0.0.1:50052"
#define SY_CTL_ADMIN_DEFAULT_TIMEOUT_MS 10000
#define SY_CTL_ADMIN_MAX_TIMEOUT_MS 3600000L /* an hour: a longer export is a mistake */
#define SY_CTL_ADMIN_SERVICE "/switchyard.v1.Admin/"

typedef struct sy_ctl_admin_opts {
  const char *addr;
  const char *token;
  const char *tls_ca;
  const char *tls_name;
  long timeout_ms;
  int json;
} sy_ctl_admin_opts;

/* getopt_long codes of the common options (command options use < 0x1000). */
enum {
  SY_CTL_O_ADDR = 0x1000,
  SY_CTL_O_TOKEN,
  SY_CTL_O_TLS_CA,
  SY_CTL_O_TLS_NAME,
  SY_CTL_O_TIMEOUT,
  SY_CTL_O_JSON,
  SY_CTL_O_HELP,
};

/* The common entries of a command's struct option array. */
#define SY_CTL_ADMIN_LONGOPTS                                              \
  {"addr", required_argument, NULL, SY_CTL_O_ADDR},                        \
      {"token", required_argument, NULL, SY_CTL_O_TOKEN},                  \
      {"tls-ca", required_argument, NULL, SY_CTL_O_TLS_CA},                \
      {"tls-server-name", required_argument, NULL, SY_CTL_O_TLS_NAME},     \
      {"timeout-ms", required_argument, NULL, SY_CTL_O_TIMEOUT},           \
      {"json", no_argument, NULL, SY_CTL_O_JSON},                          \
      {"help", no_argument, NULL, SY_CTL_O_HELP}

/* Text for the usage messages. */
#define SY_CTL_ADMIN_COMMON_HELP                                                               \
  "common options:\n"                                                                          \
  "  --addr HOST:PORT       admin listener (env SWITCHYARD_ADMIN_ADDR, default "               \
  SY_CTL_ADMIN_DEFAULT_ADDR ")\n"                                                              \
  "  --token T              admin token (env SWITCHYARD_ADMIN_TOKEN; prefer the env)\n"        \
  "  --tls-ca FILE          trusted CA (PEM): use TLS (env SWITCHYARD_TLS_CA)\n"               \
  "  --tls-server-name N    name expected in the server certificate (default: from --addr)\n"  \
  "  --timeout-ms N         deadline of each call (default 10000)\n"                           \
  "  --json                 print the response as JSON (64-bit integers as strings)\n"         \
  "exit codes: 0 ok, 1 the call failed, 2 usage error, 3 cannot connect or deadline exceeded\n"

/* Fills the defaults from the environment. */
void sy_ctl_admin_defaults(sy_ctl_admin_opts *o);

/* Handles one getopt_long result if it is a common option. Returns 1 when
 * handled, 0 when it is not a common option (SY_CTL_O_HELP is not handled:
 * the command prints its own usage), -1 for a bad value (message printed). */
int sy_ctl_admin_opt(sy_ctl_admin_opts *o, int c, const char *arg);

/* Calls Admin/<method> once: connects, calls, prints a failure and returns
 * the exit code (0 with *resp set on success: free it with
 * protobuf_c_message_free_unpacked). */
int sy_ctl_admin_call(const sy_ctl_admin_opts *o, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp);

/* Calls a server-streaming Admin/<method>; cb as in grpc_client.h. Returns
 * the exit code (the failure already printed). */
int sy_ctl_admin_stream(const sy_ctl_admin_opts *o, const char *method,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                        sy_ctl_grpc_stream_cb cb, void *ctx);

/* Parsers: 0 ok, -1 bad (nothing printed). */
int sy_ctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Basis points: "2500" or a percentage "25%" / "12.5%"; 0..10000. */
int sy_ctl_parse_bp(const char *s, uint32_t *out);
/* A time: unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC), or an age (30m,
 * 12h, 7d) before now. Microseconds since the epoch. */
int sy_ctl_parse_time(const char *s, uint64_t *out_us);
/* Names as the gateway takes them (router/route.h, admin.proto). */
typedef enum {
  SY_CTL_NAME_ROUTE, /* 1..128 printable non-space ASCII */
  SY_CTL_NAME_ARM,   /* [A-Za-z0-9_.:-], 1..128 */
  SY_CTL_NAME_KEY,   /* [A-Za-z0-9_.-], 1..63 */
} sy_ctl_name_kind;
int sy_ctl_check_name(const char *s, sy_ctl_name_kind k);

/* "2024-05-01 12:00:03Z" (UTC) or "-" for 0. */
void sy_ctl_fmt_time(uint64_t us, char *buf, size_t n);

/* Prints the usage error "switchyardctl CMD: MSG" and returns 2. */
int sy_ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
