#ifndef SY_CTL_GRPC_CLIENT_H
#define SY_CTL_GRPC_CLIENT_H

/* A small synchronous gRPC client on gRPC C core for switchyardctl: one
 * channel, one pluck completion queue, unary and server-streaming calls with
 * protobuf-c messages, a per-call deadline and the admin bearer token.
 *
 * Not thread-safe: one client is used by one thread, one call at a time.
 * Everything here is process-lifetime sized (one command per process), but
 * every object is still freed by sy_ctl_grpc_close() so sanitizer builds see
 * no leaks. */

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Largest response message accepted (GetCapture carries two bodies). */
#define SY_CTL_GRPC_MAX_RESPONSE (64u * 1024 * 1024)
/* Largest CA bundle read for --tls-ca. */
#define SY_CTL_GRPC_MAX_CA_BYTES (1024u * 1024)
/* Status messages from the server are cut to this many bytes. */
#define SY_CTL_GRPC_STATUS_MAX 1024

/* Exit codes that scripts can rely on (ctl/ctl.h documents the same). */
enum {
  SY_CTL_EXIT_OK = 0,
  SY_CTL_EXIT_FAILED = 1,  /* the RPC failed with a status, or its answer was unusable */
  SY_CTL_EXIT_USAGE = 2,   /* bad arguments: nothing was sent */
  SY_CTL_EXIT_CONNECT = 3, /* cannot connect (UNAVAILABLE) or the deadline passed */
};

typedef struct sy_ctl_grpc_opts {
  const char *addr;        /* "host:port"; required */
  const char *token;       /* bearer token, NULL or "" = send none; never printed */
  const char *tls_ca;      /* PEM file of trusted roots; NULL = plaintext */
  const char *tls_name;    /* expected server name (override), NULL = from addr */
  long timeout_ms;         /* deadline of each call, > 0 */
} sy_ctl_grpc_opts;

/* The outcome of one call. `code` is a grpc_status_code (0 = OK). `local`
 * is set when the failure happened on this side (the answer did not decode,
 * a stream callback stopped the call): `code` is then INTERNAL or the
 * callback's choice and `message` says what went wrong. */
typedef struct sy_ctl_grpc_status {
  int code;
  int local;
  char message[SY_CTL_GRPC_STATUS_MAX];
} sy_ctl_grpc_status;

typedef struct sy_ctl_grpc sy_ctl_grpc;

/* Initialises gRPC and creates the channel (no connection is made yet: the
 * first call connects). Returns 0 and sets *out, or a negative SY_* code with
 * a message in err (the CA file cannot be read, out of memory); nothing is
 * left allocated on failure. */
int sy_ctl_grpc_open(const sy_ctl_grpc_opts *o, sy_ctl_grpc **out, char *err, size_t errlen);

/* Destroys the channel and the queue and shuts gRPC down. NULL is fine. */
void sy_ctl_grpc_close(sy_ctl_grpc *c);

/* Calls a unary method ("/switchyard.v1.Admin/Health"). On OK returns 0 and
 * sets *resp to the decoded answer (free it with
 * protobuf_c_message_free_unpacked(*resp, NULL)). Otherwise returns -1,
 * leaves *resp NULL and fills *st. st is filled on success too (code 0). */
int sy_ctl_grpc_unary(sy_ctl_grpc *c, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                      sy_ctl_grpc_status *st);

/* Called once per streamed message; `msg` is freed after the callback
 * returns. Return 0 to go on; anything else cancels the call, and the call
 * then fails locally with that value as the code (use a grpc_status_code)
 * and the callback's text in st->message if it wrote one. */
typedef int (*sy_ctl_grpc_stream_cb)(void *ctx, const ProtobufCMessage *msg,
                                     sy_ctl_grpc_status *st);

/* Calls a server-streaming method. Returns 0 when the stream ended with OK,
 * -1 otherwise (*st says why; messages already delivered stay delivered). */
int sy_ctl_grpc_stream(sy_ctl_grpc *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, sy_ctl_grpc_stream_cb cb,
                       void *cb_ctx, sy_ctl_grpc_status *st);

/* "OK", "UNAVAILABLE", ... ("UNKNOWN_CODE" past the table). Never NULL. */
const char *sy_ctl_grpc_code_name(int code);

/* Maps a failed call to an exit code (SY_CTL_EXIT_CONNECT for UNAVAILABLE
 * and DEADLINE_EXCEEDED, SY_CTL_EXIT_FAILED otherwise, 0 for OK) and prints
 * "switchyardctl: <CODE>: <message>" on stderr ("switchyardctl: <message>"
 * for a local failure) (control characters in the
 * server's text replaced). `method` names the RPC for UNIMPLEMENTED, `addr`
 * the target for connect failures; either may be NULL. */
int sy_ctl_grpc_report(const sy_ctl_grpc_status *st, const char *method, const char *addr);

#endif
