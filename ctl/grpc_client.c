/* Synchronous gRPC calls on gRPC C core for switchyardctl (see grpc_client.h).
 *
 * Each call is a short sequence of batches on one pluck queue:
 *   1. send initial metadata (+ authorization), the request, close; receive
 *      the initial metadata;
 *   2. receive messages one batch at a time (one for unary, until the end of
 *      the stream for server streaming);
 *   3. receive the status.
 * The call carries its deadline, so every batch completes by then; pluck
 * waits a little past it only as a safety net. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "common/buf.h"
#include "common/err.h"
#include "ctl/grpc_client.h"

#define TOKEN_MAX 4096      /* longer "tokens" are a mistake (a file pasted in) */
#define PLUCK_GRACE_MS 5000 /* safety margin past the call's deadline */

struct sy_ctl_grpc {
  grpc_channel *ch;
  grpc_completion_queue *cq;
  char *auth; /* "Bearer <token>" or NULL */
  long timeout_ms;
  int grpc_inited;
};

/* Indexed by grpc_status_code (grpc/impl/codegen/status.h: 0..16). */
static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *sy_ctl_grpc_code_name(int code) {
  if (code < 0 || (size_t)code >= sizeof code_names / sizeof code_names[0]) return "UNKNOWN_CODE";
  return code_names[code];
}

/* gRPC's own log lines (connection attempts, TLS handshakes) would bury the
 * one line a script reads; they are shown only with SWITCHYARDCTL_DEBUG set. */
static void quiet_log(gpr_log_func_args *args) { (void)args; }

static int read_file(const char *path, size_t max, char **out, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return SY_EIO;
  }
  sy_buf b;
  sy_buf_init(&b, max);
  char chunk[8192];
  size_t n;
  int rc = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if ((rc = sy_buf_append(&b, chunk, n)) != 0) break;
  if (!rc && ferror(f)) rc = SY_EIO;
  fclose(f);
  if (!rc && b.len == 0) rc = SY_EINVAL;
  if (rc) {
    snprintf(err, errlen, "%s: %s", path,
             rc == SY_ETOOBIG ? "file too large" : rc == SY_EINVAL ? "empty file" : sy_strerror(rc));
    sy_buf_free(&b);
    return rc;
  }
  *out = sy_buf_detach(&b, NULL);
  return 0;
}

int sy_ctl_grpc_open(const sy_ctl_grpc_opts *o, sy_ctl_grpc **out, char *err, size_t errlen) {
  char *pem = NULL;
  grpc_channel_credentials *creds = NULL;
  int rc;
  *out = NULL;
  if (o->token && strlen(o->token) > TOKEN_MAX) {
    snprintf(err, errlen, "token longer than %d bytes", TOKEN_MAX);
    return SY_EINVAL;
  }
  if (o->tls_ca && (rc = read_file(o->tls_ca, SY_CTL_GRPC_MAX_CA_BYTES, &pem, err, errlen)) != 0)
    return rc;
  sy_ctl_grpc *c = calloc(1, sizeof *c);
  if (!c) goto nomem;
  c->timeout_ms = o->timeout_ms;
  if (o->token && *o->token) {
    size_t n = strlen(o->token) + sizeof "Bearer ";
    if (!(c->auth = malloc(n))) goto nomem;
    snprintf(c->auth, n, "Bearer %s", o->token);
  }

  if (!getenv("SWITCHYARDCTL_DEBUG")) gpr_set_log_function(quiet_log);
  /* Host names resolve with getaddrinfo (like every other tool here: /etc/hosts,
   * nsswitch) rather than gRPC's bundled c-ares, which also leaks a few bytes
   * per lookup of "localhost" on this platform (LeakSanitizer). A value the
   * user set wins. */
  setenv("GRPC_DNS_RESOLVER", "native", 0);
  grpc_init();
  c->grpc_inited = 1;

  grpc_arg args[2];
  size_t nargs = 0;
  args[nargs].type = GRPC_ARG_INTEGER;
  args[nargs].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[nargs].value.integer = (int)SY_CTL_GRPC_MAX_RESPONSE;
  nargs++;
  if (o->tls_ca && o->tls_name && *o->tls_name) {
    args[nargs].type = GRPC_ARG_STRING;
    args[nargs].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[nargs].value.string = (char *)o->tls_name;
    nargs++;
  }
  grpc_channel_args cargs = {nargs, args};

  creds = pem ? grpc_ssl_credentials_create(pem, NULL, NULL, NULL)
              : grpc_insecure_credentials_create();
  if (!creds) {
    snprintf(err, errlen, "cannot create %s channel credentials", pem ? "TLS" : "plaintext");
    rc = SY_EIO;
    goto fail;
  }
  c->ch = grpc_channel_create(o->addr, creds, &cargs);
  grpc_channel_credentials_release(creds);
  creds = NULL;
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!c->ch || !c->cq) {
    snprintf(err, errlen, "cannot create a channel to %s", o->addr);
    rc = SY_EIO;
    goto fail;
  }
  free(pem);
  *out = c;
  return 0;

nomem:
  snprintf(err, errlen, "out of memory");
  rc = SY_ENOMEM;
fail:
  free(pem);
  sy_ctl_grpc_close(c);
  return rc;
}

void sy_ctl_grpc_close(sy_ctl_grpc *c) {
  if (!c) return;
  if (c->ch) grpc_channel_destroy(c->ch);
  if (c->cq) {
    grpc_completion_queue_shutdown(c->cq);
    /* A pluck queue drains with pluck on no tag: nothing is outstanding, so
     * the shutdown event is the only one left. */
    while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
  }
  if (c->grpc_inited) grpc_shutdown();
  if (c->auth) {
    /* the token should not outlive its use in a core dump */
    memset(c->auth, 0, strlen(c->auth));
    free(c->auth);
  }
  free(c);
}

static void set_status(sy_ctl_grpc_status *st, int code, int local, const char *msg) {
  st->code = code;
  st->local = local;
  snprintf(st->message, sizeof st->message, "%s", msg);
}

/* Runs one batch and waits for it. Returns 1 when it succeeded. */
static int run_batch(sy_ctl_grpc *c, grpc_call *call, const grpc_op *ops, size_t n, void *tag,
                     gpr_timespec limit) {
  if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, limit, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    /* The deadline should have ended the call already; force it. The batch
     * still completes (failed) and must be collected before going on. */
    grpc_call_cancel(call, NULL);
    ev = grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  }
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Decodes a received byte buffer. Returns the message or NULL (st set). */
static ProtobufCMessage *decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc,
                                sy_ctl_grpc_status *st) {
  size_t len = grpc_byte_buffer_length(bb);
  if (len > SY_CTL_GRPC_MAX_RESPONSE) {
    set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, 1, "response larger than the client's limit");
    return NULL;
  }
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) {
    set_status(st, GRPC_STATUS_INTERNAL, 1, "cannot read the response (compressed?)");
    return NULL;
  }
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!m) {
    char msg[200];
    snprintf(msg, sizeof msg, "cannot decode the response as %s (client and server protos differ?)",
             desc->name);
    set_status(st, GRPC_STATUS_INTERNAL, 1, msg);
  }
  return m;
}

/* The common call: delivers messages to cb (stream) or keeps the first one
 * in *one (unary). */
static int do_call(sy_ctl_grpc *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *desc, sy_ctl_grpc_stream_cb cb,
                   void *cb_ctx, ProtobufCMessage **one, sy_ctl_grpc_status *st) {
  memset(st, 0, sizeof *st);
  if (one) *one = NULL;

  size_t plen = protobuf_c_message_get_packed_size(req);
  uint8_t *packed = malloc(plen ? plen : 1);
  if (!packed) {
    set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, 1, "out of memory");
    return -1;
  }
  protobuf_c_message_pack(req, packed);
  grpc_slice ps = grpc_slice_from_copied_buffer((const char *)packed, plen);
  free(packed);
  grpc_byte_buffer *send_bb = grpc_raw_byte_buffer_create(&ps, 1);
  grpc_slice_unref(ps);

  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
  gpr_timespec limit = gpr_time_add(deadline, gpr_time_from_millis(PLUCK_GRACE_MS, GPR_TIMESPAN));
  grpc_slice mslice = grpc_slice_from_static_string(method);
  grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, mslice,
                                             NULL, deadline, NULL);
  grpc_slice_unref(mslice);

  grpc_metadata md;
  memset(&md, 0, sizeof md);
  if (c->auth) {
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_copied_string(c->auth);
  }
  grpc_metadata_array init_md, trail_md;
  grpc_metadata_array_init(&init_md);
  grpc_metadata_array_init(&trail_md);

  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->auth ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = c->auth ? &md : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
  int sent = run_batch(c, call, ops, 4, (void *)1, limit);

  /* Messages. A failed send (no connection) still ends with a status below. */
  int stop = 0;
  while (sent && !stop) {
    grpc_byte_buffer *recv_bb = NULL;
    grpc_op rop;
    memset(&rop, 0, sizeof rop);
    rop.op = GRPC_OP_RECV_MESSAGE;
    rop.data.recv_message.recv_message = &recv_bb;
    if (!run_batch(c, call, &rop, 1, (void *)2, limit) || !recv_bb) break;
    ProtobufCMessage *m = decode(recv_bb, desc, st);
    grpc_byte_buffer_destroy(recv_bb);
    if (!m) {
      stop = 1;
    } else if (one) {
      if (*one) { /* a unary method answered twice: protocol error, keep the first */
        protobuf_c_message_free_unpacked(m, NULL);
      } else {
        *one = m;
      }
    } else {
      int r = cb(cb_ctx, m, st);
      protobuf_c_message_free_unpacked(m, NULL);
      if (r) {
        if (!st->message[0]) snprintf(st->message, sizeof st->message, "stopped by the client");
        st->code = r;
        st->local = 1;
        stop = 1;
      }
    }
  }
  if (stop) grpc_call_cancel(call, NULL);

  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op sop;
  memset(&sop, 0, sizeof sop);
  sop.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  sop.data.recv_status_on_client.trailing_metadata = &trail_md;
  sop.data.recv_status_on_client.status = &code;
  sop.data.recv_status_on_client.status_details = &details;
  int got_status = run_batch(c, call, &sop, 1, (void *)3, limit);
  if (!stop) {
    if (!got_status) {
      set_status(st, GRPC_STATUS_UNKNOWN, 1, "the call ended without a status");
    } else {
      st->code = (int)code;
      size_t dl = GRPC_SLICE_LENGTH(details);
      if (dl >= sizeof st->message) dl = sizeof st->message - 1;
      memcpy(st->message, GRPC_SLICE_START_PTR(details), dl);
      st->message[dl] = '\0';
      if (code == GRPC_STATUS_OK && one && !*one)
        set_status(st, GRPC_STATUS_INTERNAL, 1, "the server answered OK without a message");
    }
  }
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&init_md);
  grpc_metadata_array_destroy(&trail_md);
  if (c->auth) {
    grpc_slice_unref(md.key);
    grpc_slice_unref(md.value);
  }
  grpc_byte_buffer_destroy(send_bb);
  grpc_call_unref(call);

  if (st->code == GRPC_STATUS_OK) return 0;
  if (one && *one) {
    protobuf_c_message_free_unpacked(*one, NULL);
    *one = NULL;
  }
  return -1;
}

int sy_ctl_grpc_unary(sy_ctl_grpc *c, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                      sy_ctl_grpc_status *st) {
  return do_call(c, method, req, resp_desc, NULL, NULL, resp, st);
}

int sy_ctl_grpc_stream(sy_ctl_grpc *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, sy_ctl_grpc_stream_cb cb,
                       void *cb_ctx, sy_ctl_grpc_status *st) {
  return do_call(c, method, req, resp_desc, cb, cb_ctx, NULL, st);
}

int sy_ctl_grpc_report(const sy_ctl_grpc_status *st, const char *method, const char *addr) {
  if (st->code == GRPC_STATUS_OK) return SY_CTL_EXIT_OK;
  char msg[SY_CTL_GRPC_STATUS_MAX];
  size_t i = 0;
  /* the server's text goes to a terminal: no escape sequences through */
  for (; st->message[i] && i + 1 < sizeof msg; i++) {
    unsigned char ch = (unsigned char)st->message[i];
    msg[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
  }
  msg[i] = '\0';
  if (!msg[0]) snprintf(msg, sizeof msg, "(no message)");
  const char *name = sy_ctl_grpc_code_name(st->code);
  if (st->local)
    fprintf(stderr, "switchyardctl: %s\n", msg); /* not the server's status: no code shown */
  else if (st->code == GRPC_STATUS_UNIMPLEMENTED && method)
    fprintf(stderr, "switchyardctl: %s: %s (%s is not served by the gateway at %s)\n", name, msg,
            method, addr ? addr : "this address");
  else if (st->code == GRPC_STATUS_UNAVAILABLE && addr)
    fprintf(stderr, "switchyardctl: %s: cannot reach %s: %s\n", name, addr, msg);
  else if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED && addr)
    fprintf(stderr, "switchyardctl: %s: %s (no answer from %s in time; --timeout-ms sets the "
                    "limit)\n", name, msg, addr);
  else
    fprintf(stderr, "switchyardctl: %s: %s\n", name, msg);
  if (st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
    return SY_CTL_EXIT_CONNECT;
  return SY_CTL_EXIT_FAILED;
}
