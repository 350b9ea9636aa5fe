#ifndef SY_GRPC_CHAT_H
#define SY_GRPC_CHAT_H

/* Conversions between the gRPC inference messages (inference.proto) and the
 * OpenAI JSON the HTTP path speaks, plus an incremental SSE parser and the
 * HTTP → gRPC status mapping. Pure functions: no gRPC runtime, no event
 * loop, so they are unit-tested directly (tests/unit/test_gateway_grpc_chat.c). */

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "switchyard/v1/inference.pb-c.h"

#define SY_GRPC_MAX_STOP 4              /* OpenAI's own limit on stop sequences */
#define SY_GRPC_MAX_JSON_DEPTH 64       /* nesting allowed in the *_json fields */

/* What the gateway adds to every answer (from its x-switchyard-* headers). */
typedef struct sy_grpc_meta {
  uint64_t capture_id;
  const char *route, *arm, *request_id; /* "" when absent, never NULL */
} sy_grpc_meta;

/* Receives a built message; its memory lives only during the call. */
typedef int (*sy_grpc_emit)(void *ctx, const ProtobufCMessage *m);

/* The OpenAI JSON body for a chat request; stream adds "stream": true (and
 * stream_options.include_usage when asked). At most `max` bytes. Returns 0
 * with *body (malloc'ed, NUL-terminated; the caller frees it) or SY_EINVAL /
 * SY_ETOOBIG with a message naming the field ("messages[2].role: required"). */
int sy_grpc_chat_body(const Switchyard__V1__ChatCompletionRequest *r, int stream, size_t max,
                      char **body, size_t *len, char *err, size_t errlen);

/* Parses a chat.completion JSON answer into a ChatCompletionResponse and
 * hands it to emit (raw_json is the answer itself when keep_raw). Returns
 * emit's result, or SY_EINVAL when the text is not a JSON object. */
int sy_grpc_chat_response(const char *json, size_t len, const sy_grpc_meta *meta, int keep_raw,
                          sy_grpc_emit emit, void *ctx);

/* Same for one chat.completion.chunk; meta is given for the first chunk
 * only (NULL afterwards). */
int sy_grpc_chat_chunk(const char *json, size_t len, const sy_grpc_meta *meta, sy_grpc_emit emit,
                       void *ctx);

/* The POST /v1/feedback body for a FeedbackRequest. Same contract as
 * sy_grpc_chat_body. */
int sy_grpc_feedback_body(const Switchyard__V1__FeedbackRequest *r, char **body, size_t *len,
                          char *err, size_t errlen);

/* The gRPC status for an HTTP status of the gateway's answer. */
grpc_status_code sy_grpc_status_for_http(int http_status);

/* The message of an OpenAI error body ({"error":{"message":...}}), else a
 * bounded, printable excerpt of the body, else "HTTP <status>". */
void sy_grpc_error_message(const char *body, size_t len, int http_status, char *out,
                           size_t outlen);

/* Incremental text/event-stream parser: bytes arrive in any fragments;
 * each complete event's data (its "data:" lines joined by "\n") goes to the
 * callback. */
typedef int (*sy_sse_event_fn)(void *ctx, const char *data, size_t len);
typedef struct sy_sse {
  sy_buf line;   /* a partial line */
  sy_buf data;   /* the event being assembled */
  int has_data;
} sy_sse;

/* max: the longest line and the largest event. */
void sy_sse_init(sy_sse *s, size_t max);
/* 0, the callback's non-zero return (parsing stops), or SY_ETOOBIG / SY_ENOMEM. */
int sy_sse_feed(sy_sse *s, const char *p, size_t n, sy_sse_event_fn fn, void *ctx);
/* End of stream: an event not yet ended by a blank line is delivered. */
int sy_sse_finish(sy_sse *s, sy_sse_event_fn fn, void *ctx);
void sy_sse_free(sy_sse *s);

#endif
