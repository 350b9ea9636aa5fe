#ifndef SY_CAPTURE_RECORD_H
#define SY_CAPTURE_RECORD_H

#include "common/buf.h"
#include "gateway/capture.h"
#include "store/scrub.h"
#include "store/store.h"

/* Turning a finished exchange into a stored record. Runs on the capture
 * writer thread: all response parsing happens here, off the request path. */

/* Builds the record for a capture job: request fields (model, stream, user
 * hash), inline base64 images replaced by references (unless
 * capture.keep_images), a streamed answer assembled into one
 * chat.completion (or text_completion) JSON, usage and finish reason, and
 * both bodies PII-scrubbed. On success *out is owned by the caller (free
 * with sy_capture_record_free). Any failure, scrubbing included, returns a
 * negative code and no record: the caller must not store anything raw. */
int sy_capture_record_build(const sy_capture_job *job, const sy_config *cfg, sy_scrubber *scrub,
                            sy_capture **out);
void sy_capture_record_free(sy_capture *rec);

/* Builds a feedback record (comment and correction scrubbed, user hashed).
 * Same ownership and failure rules. */
int sy_feedback_record_build(const sy_capture_job *job, sy_scrubber *scrub, sy_feedback **out);
void sy_feedback_record_free(sy_feedback *fb);

/* Assembles an SSE stream of chat.completion.chunk (or text_completion)
 * events into one JSON object appended to out. *finish_reason (static or
 * NULL), *done ("data: [DONE]" seen) and *error (an error event's message,
 * malloc'ed, or NULL) describe the stream. Returns 0 or a negative code.
 * Exposed for tests. */
int sy__sse_assemble(const char *data, size_t len, sy_buf *out, int *done, char **error);
/* Tests: 1 parses every chunk into a cJSON tree, to compare with the span
 * path that chunks without tool calls or errors take. Not thread-safe. */
extern int sy__sse_tree_only;

/* SHA-256 of an end-user id, as 32 hex chars + NUL. */
void sy__user_hash(const char *user, size_t len, char out[33]);

#endif
