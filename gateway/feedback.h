#ifndef SY_FEEDBACK_H
#define SY_FEEDBACK_H

#include "gateway/conn.h"

/* POST /v1/feedback: validates the body, hands a feedback job to the capture
 * writer and answers when it is committed (durable as the capture durability
 * mode says), 404 when the capture does not exist. Body:
 *   {"capture_id": "1732630000000000" | 1732630000000000,   required
 *    "rating": "up" | "down" | <number>,   a number is a score (positive = good)
 *    "comment": "...", "correction": "..." | {"role":"assistant","content":"..."},
 *    "tags": ["..."], "labeller": "...", "user": "..."}
 * At least one of rating, correction and comment is required. */
#define SY_FEEDBACK_MAX_COMMENT 8192
#define SY_FEEDBACK_MAX_CORRECTION (1u << 20)
#define SY_FEEDBACK_MAX_TAGS 32
#define SY_FEEDBACK_MAX_TAG_LEN 128
#define SY_FEEDBACK_MAX_NAME_LEN 256

void sy_feedback_handle(sy_conn *c);

/* GET /metrics: Prometheus text format (capture pipeline counters). */
void sy_metrics_respond(sy_conn *c);

#endif
