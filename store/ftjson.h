#ifndef SY_FTJSON_H
#define SY_FTJSON_H

/* Fine-tuning JSON: turns captured OpenAI request/response bodies into the
 * pieces of an OpenAI chat fine-tuning example, normalises them for dedup and
 * splitting, and validates finished JSONL lines. Used by store/export.c.
 *
 * Formats produced (one JSON object per line):
 *   SFT:  {"messages":[...], "tools":[...]?, "parallel_tool_calls":bool?}
 *   DPO:  {"input":{"messages":[...], "tools":[...]?},
 *          "preferred_output":[{assistant}], "non_preferred_output":[{assistant}]}
 *
 * Everything returned as cJSON is owned by the caller (cJSON_Delete). */

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/buf.h"

#define SY_FTJSON_MAX_BODY_BYTES (16u << 20) /* request/response JSON we parse */
#define SY_FTJSON_MAX_MESSAGES 4096          /* messages in one prompt */

/* Roles accepted in an exported example. "developer" (newer OpenAI API) is
 * written as "system", which the fine-tuning format knows. */
int sy_ftjson_role_valid(const char *role);

/* Parses a chat.completions request body. *messages gets a new array of the
 * request's messages, keeping only the keys the fine-tuning format uses (role,
 * content, name, tool_calls, tool_call_id, function_call); *tools (may be
 * NULL) gets a copy of "tools" or NULL; *parallel gets parallel_tool_calls
 * (1/0) or -1 when absent. Returns 0, SY_EINVAL (not JSON, no messages, a
 * message without a valid role, too many messages) or SY_ETOOBIG/SY_ENOMEM. */
int sy_ftjson_prompt(const void *body, size_t len, cJSON **messages, cJSON **tools,
                     int *parallel);

/* Parses a chat.completion response body and returns choices[0].message as a
 * new assistant message {role, content?, tool_calls?, function_call?}.
 * 0, SY_ENOTFOUND (no choice, or an empty answer), SY_EINVAL (not JSON). */
int sy_ftjson_answer(const void *body, size_t len, cJSON **msg);

/* A new {"role":"assistant","content":text}, or NULL (out of memory). */
cJSON *sy_ftjson_text_answer(const char *text);

/* 1 when an assistant message has non-empty content or tool calls. */
int sy_ftjson_answer_nonempty(const cJSON *msg);

/* Appends a normalised form of messages / of one message to out: roles,
 * text with whitespace collapsed, trimmed and ASCII-lowercased, tool calls.
 * Equal meaning up to spacing and case gives equal bytes. 0 or SY_ETOOBIG. */
int sy_ftjson_norm_messages(const cJSON *messages, sy_buf *out);
int sy_ftjson_norm_message(const cJSON *msg, sy_buf *out);

/* Validates one finished line (without the newline): it parses, every role is
 * valid, the last message is a non-empty assistant turn (SFT), or the input
 * has messages and both outputs are one non-empty assistant message that
 * differ (pairs). 0 or SY_EINVAL. */
int sy_ftjson_validate_sft(const char *line, size_t len);
int sy_ftjson_validate_pair(const char *line, size_t len);

#endif
