#include "gateway/respond.h"

#include <string.h>

const char *sy_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

const char *sy_openai_error_type(int status) {
  if (status == 401) return "authentication_error";
  if (status == 403) return "permission_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

static int put_opt_str(sy_buf *out, const char *s) {
  if (!s) return sy_buf_appends(out, "null");
  int rc = sy_buf_appends(out, "\"");
  if (!rc) rc = sy_buf_append_json_str(out, s, strlen(s));
  if (!rc) rc = sy_buf_appends(out, "\"");
  return rc;
}

int sy_openai_error_json(sy_buf *out, const char *message, const char *type, const char *param,
                         const char *code) {
  int rc = sy_buf_appends(out, "{\"error\":{\"message\":");
  if (!rc) rc = put_opt_str(out, message ? message : "");
  if (!rc) rc = sy_buf_appends(out, ",\"type\":");
  if (!rc) rc = put_opt_str(out, type);
  if (!rc) rc = sy_buf_appends(out, ",\"param\":");
  if (!rc) rc = put_opt_str(out, param);
  if (!rc) rc = sy_buf_appends(out, ",\"code\":");
  if (!rc) rc = put_opt_str(out, code);
  if (!rc) rc = sy_buf_appends(out, "}}");
  return rc;
}
