#ifndef SY_RESPOND_H
#define SY_RESPOND_H

#include "common/buf.h"

/* OpenAI-shaped error bodies and HTTP status words, shared by every place
 * that answers on the gateway's own behalf. */

/* The reason phrase for a status ("Not Found"); "Unknown" for odd codes. */
const char *sy_http_reason(int status);

/* Appends {"error":{"message":...,"type":...,"param":...,"code":...}} to out.
 * param and code may be NULL (written as null). Returns sy_buf_append's code. */
int sy_openai_error_json(sy_buf *out, const char *message, const char *type, const char *param,
                         const char *code);

/* The OpenAI error "type" that fits a status the gateway itself produces:
 * 400/404/405/408/413/431 → invalid_request_error, 401 → authentication_error...
 * 5xx → api_error. Static string. */
const char *sy_openai_error_type(int status);

#endif
