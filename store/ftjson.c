#include "store/ftjson.h"

#include <ctype.h>
#include <string.h>

#include "common/err.h"

static const char *const roles[] = {"system", "user", "assistant", "tool", "function"};
/* keys of a message that the fine-tuning format knows; the rest is dropped */
static const char *const msg_keys[] = {"role",       "content",      "name",
                                       "tool_calls", "tool_call_id", "function_call"};

int sy_ftjson_role_valid(const char *role) {
  if (!role) return 0;
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
    if (!strcmp(role, roles[i])) return 1;
  return 0;
}

static cJSON *parse(const void *body, size_t len, int *rc) {
  *rc = 0;
  if (len > SY_FTJSON_MAX_BODY_BYTES) {
    *rc = SY_ETOOBIG;
    return NULL;
  }
  if (!body || len == 0) {
    *rc = SY_EINVAL;
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(body, len);
  if (!j) *rc = SY_EINVAL;
  return j;
}

/* Copies the keys the format knows; maps developer -> system. NULL on a bad role. */
static cJSON *copy_message(const cJSON *m) {
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
  if (!cJSON_IsString(role)) return NULL;
  const char *r = role->valuestring;
  if (!strcmp(r, "developer")) r = "system";
  if (!sy_ftjson_role_valid(r)) return NULL;
  cJSON *out = cJSON_CreateObject();
  if (!out || !cJSON_AddStringToObject(out, "role", r)) goto fail;
  for (size_t i = 1; i < sizeof msg_keys / sizeof msg_keys[0]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, msg_keys[i]);
    if (!v || cJSON_IsNull(v)) continue;
    cJSON *c = cJSON_Duplicate(v, 1);
    if (!c) goto fail;
    cJSON_AddItemToObject(out, msg_keys[i], c);
  }
  return out;
fail:
  cJSON_Delete(out);
  return NULL;
}

int sy_ftjson_prompt(const void *body, size_t len, cJSON **messages, cJSON **tools,
                     int *parallel) {
  *messages = NULL;
  if (tools) *tools = NULL;
  if (parallel) *parallel = -1;
  int rc;
  cJSON *req = parse(body, len, &rc);
  if (!req) return rc;
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
  int n = cJSON_GetArraySize(msgs);
  if (!cJSON_IsArray(msgs) || n == 0) {
    rc = SY_EINVAL;
    goto out;
  }
  if (n > SY_FTJSON_MAX_MESSAGES) {
    rc = SY_ETOOBIG;
    goto out;
  }
  cJSON *arr = cJSON_CreateArray();
  if (!arr) {
    rc = SY_ENOMEM;
    goto out;
  }
  const cJSON *m;
  cJSON_ArrayForEach(m, msgs) {
    cJSON *c = copy_message(m);
    if (!c) {
      cJSON_Delete(arr);
      rc = SY_EINVAL;
      goto out;
    }
    cJSON_AddItemToArray(arr, c);
  }
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "tools");
  if (tools && cJSON_IsArray(t) && cJSON_GetArraySize(t) > 0) {
    *tools = cJSON_Duplicate(t, 1);
    if (!*tools) {
      cJSON_Delete(arr);
      rc = SY_ENOMEM;
      goto out;
    }
  }
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "parallel_tool_calls");
  if (parallel && cJSON_IsBool(p)) *parallel = cJSON_IsTrue(p);
  *messages = arr;
out:
  cJSON_Delete(req);
  return rc;
}

static int content_nonempty(const cJSON *c) {
  if (cJSON_IsString(c)) {
    for (const char *p = c->valuestring; *p; p++)
      if (!isspace((unsigned char)*p)) return 1;
    return 0;
  }
  if (cJSON_IsArray(c)) { /* content parts: any part with non-blank text counts */
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
      if (content_nonempty(cJSON_GetObjectItemCaseSensitive(part, "text"))) return 1;
    }
  }
  return 0;
}

int sy_ftjson_answer_nonempty(const cJSON *msg) {
  if (content_nonempty(cJSON_GetObjectItemCaseSensitive(msg, "content"))) return 1;
  const cJSON *tc = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
  if (cJSON_IsArray(tc) && cJSON_GetArraySize(tc) > 0) return 1;
  return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(msg, "function_call"));
}

int sy_ftjson_answer(const void *body, size_t len, cJSON **msg) {
  *msg = NULL;
  int rc;
  cJSON *resp = parse(body, len, &rc);
  if (!resp) return rc;
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(resp, "choices");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
  rc = SY_ENOTFOUND;
  if (cJSON_IsObject(m) && sy_ftjson_answer_nonempty(m)) {
    cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "role", "assistant")) {
      cJSON_Delete(out);
      rc = SY_ENOMEM;
      goto done;
    }
    static const char *const keep[] = {"content", "tool_calls", "function_call"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[i]);
      if (!v || cJSON_IsNull(v)) continue;
      cJSON_AddItemToObject(out, keep[i], cJSON_Duplicate(v, 1));
    }
    *msg = out;
    rc = 0;
  }
done:
  cJSON_Delete(resp);
  return rc;
}

cJSON *sy_ftjson_text_answer(const char *text) {
  cJSON *m = cJSON_CreateObject();
  if (!m || !cJSON_AddStringToObject(m, "role", "assistant") ||
      !cJSON_AddStringToObject(m, "content", text)) {
    cJSON_Delete(m);
    return NULL;
  }
  return m;
}

/* Appends text with whitespace runs collapsed, trimmed, ASCII-lowercased. */
static int norm_text(const char *s, sy_buf *out) {
  int space = 0, any = 0, rc = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
    if (isspace(*p)) {
      space = any;
      continue;
    }
    char c = (char)tolower(*p);
    if (space) rc = sy_buf_append(out, " ", 1);
    if (rc == 0) rc = sy_buf_append(out, &c, 1);
    space = 0;
    any = 1;
  }
  return rc;
}

static int norm_content(const cJSON *c, sy_buf *out) {
  if (cJSON_IsString(c)) return norm_text(c->valuestring, out);
  if (!cJSON_IsArray(c)) return 0;
  const cJSON *part;
  int rc = 0;
  cJSON_ArrayForEach(part, c) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (cJSON_IsString(t)) rc = norm_text(t->valuestring, out);
    else { /* images and other parts: their JSON, as is */
      char *js = cJSON_PrintUnformatted(part);
      if (!js) return SY_ENOMEM;
      rc = sy_buf_appends(out, js);
      cJSON_free(js);
    }
    if (rc == 0) rc = sy_buf_append(out, "\x1d", 1);
    if (rc) return rc;
  }
  return 0;
}

int sy_ftjson_norm_message(const cJSON *msg, sy_buf *out) {
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
  int rc = sy_buf_appends(out, cJSON_IsString(role) ? role->valuestring : "?");
  if (rc == 0) rc = sy_buf_append(out, "\x1f", 1);
  if (rc == 0) rc = norm_content(cJSON_GetObjectItemCaseSensitive(msg, "content"), out);
  static const char *const extra[] = {"tool_calls", "tool_call_id", "function_call"};
  for (size_t i = 0; i < sizeof extra / sizeof extra[0] && rc == 0; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, extra[i]);
    if (!v || cJSON_IsNull(v)) continue;
    char *js = cJSON_PrintUnformatted(v);
    if (!js) return SY_ENOMEM;
    rc = sy_buf_append(out, "\x1f", 1);
    if (rc == 0) rc = sy_buf_appends(out, js);
    cJSON_free(js);
  }
  if (rc == 0) rc = sy_buf_append(out, "\x1e", 1);
  return rc;
}

int sy_ftjson_norm_messages(const cJSON *messages, sy_buf *out) {
  const cJSON *m;
  cJSON_ArrayForEach(m, messages) {
    int rc = sy_ftjson_norm_message(m, out);
    if (rc) return rc;
  }
  return 0;
}

/* Every element is an object with a valid role. */
static int messages_valid(const cJSON *msgs) {
  if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) return 0;
  const cJSON *m;
  cJSON_ArrayForEach(m, msgs) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsObject(m) || !cJSON_IsString(r) || !sy_ftjson_role_valid(r->valuestring))
      return 0;
  }
  return 1;
}

static int is_assistant_answer(const cJSON *m) {
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
  return cJSON_IsString(r) && !strcmp(r->valuestring, "assistant") &&
         sy_ftjson_answer_nonempty(m);
}

int sy_ftjson_validate_sft(const char *line, size_t len) {
  cJSON *j = cJSON_ParseWithLength(line, len);
  if (!j) return SY_EINVAL;
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
  int ok = messages_valid(msgs) && cJSON_GetArraySize(msgs) >= 2 &&
           is_assistant_answer(cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1));
  const cJSON *tools = cJSON_GetObjectItemCaseSensitive(j, "tools");
  if (tools && !cJSON_IsArray(tools)) ok = 0;
  cJSON_Delete(j);
  return ok ? 0 : SY_EINVAL;
}

static int one_answer(const cJSON *arr) {
  return cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 1 &&
         is_assistant_answer(cJSON_GetArrayItem(arr, 0));
}

int sy_ftjson_validate_pair(const char *line, size_t len) {
  cJSON *j = cJSON_ParseWithLength(line, len);
  if (!j) return SY_EINVAL;
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "input");
  const cJSON *pref = cJSON_GetObjectItemCaseSensitive(j, "preferred_output");
  const cJSON *npref = cJSON_GetObjectItemCaseSensitive(j, "non_preferred_output");
  int ok = cJSON_IsObject(in) && messages_valid(cJSON_GetObjectItemCaseSensitive(in, "messages")) &&
           one_answer(pref) && one_answer(npref) && !cJSON_Compare(pref, npref, 1);
  cJSON_Delete(j);
  return ok ? 0 : SY_EINVAL;
}
