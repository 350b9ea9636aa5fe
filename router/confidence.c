#include "router/confidence.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

void sy_conf_acc_init(sy_conf_acc *a) {
  a->sum = 0.0;
  a->min = INFINITY;
  a->n = 0;
  a->invalid = 0;
}

void sy_conf_acc_add(sy_conf_acc *a, double lp) {
  /* isnan/isinf first: comparisons with NaN are all false. -inf is a valid
   * "probability 0" token (some servers emit it for forced tokens). */
  if (isnan(lp) || lp > SY_CONF_MAX_LOGPROB) {
    a->invalid = 1;
    return;
  }
  if (lp > 0.0) lp = 0.0;
  a->sum += lp;
  if (lp < a->min) a->min = lp;
  a->n++;
}

double sy_conf_acc_value(const sy_conf_acc *a, sy_conf_method method) {
  if (a->invalid || a->n == 0) return NAN;
  switch (method) {
  case SY_CONF_GEOMEAN: return exp(a->sum / (double)a->n);
  case SY_CONF_MIN: return exp(a->min);
  }
  return NAN;
}

double sy_confidence(sy_conf_method method, const double *logprobs, size_t n) {
  sy_conf_acc a;
  sy_conf_acc_init(&a);
  for (size_t i = 0; i < n; i++) sy_conf_acc_add(&a, logprobs[i]);
  return sy_conf_acc_value(&a, method);
}

double sy_confidence_geomean(const double *logprobs, size_t n) {
  return sy_confidence(SY_CONF_GEOMEAN, logprobs, n);
}

double sy_confidence_min(const double *logprobs, size_t n) {
  return sy_confidence(SY_CONF_MIN, logprobs, n);
}

static int fail(char *err, size_t errlen, int code, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  return code;
}

int sy_confidence_from_chat_json(const char *json, size_t len, sy_conf_acc *acc, char *err,
                                 size_t errlen) {
  if (len > SY_CONF_MAX_JSON_BYTES)
    return fail(err, errlen, SY_ETOOBIG, "response too large for logprobs");
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return fail(err, errlen, SY_EINVAL, "response is not JSON");
  int rc = 0;
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  if (!cJSON_IsArray(choices)) {
    rc = choices ? fail(err, errlen, SY_EINVAL, "choices: not an array")
                 : fail(err, errlen, SY_ENOTFOUND, "choices: absent");
    goto out;
  }
  const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
  if (!c0) {
    rc = fail(err, errlen, SY_ENOTFOUND, "choices: empty");
    goto out;
  }
  if (!cJSON_IsObject(c0)) {
    rc = fail(err, errlen, SY_EINVAL, "choices[0]: not an object");
    goto out;
  }
  const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c0, "logprobs");
  if (!lp || cJSON_IsNull(lp)) {
    rc = fail(err, errlen, SY_ENOTFOUND, "choices[0].logprobs: absent");
    goto out;
  }
  if (!cJSON_IsObject(lp)) {
    rc = fail(err, errlen, SY_EINVAL, "choices[0].logprobs: not an object");
    goto out;
  }
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(lp, "content");
  if (!content || cJSON_IsNull(content)) {
    rc = fail(err, errlen, SY_ENOTFOUND, "choices[0].logprobs.content: absent");
    goto out;
  }
  if (!cJSON_IsArray(content)) {
    rc = fail(err, errlen, SY_EINVAL, "choices[0].logprobs.content: not an array");
    goto out;
  }
  if (!content->child) {
    rc = fail(err, errlen, SY_ENOTFOUND, "choices[0].logprobs.content: empty");
    goto out;
  }
  const cJSON *tok;
  cJSON_ArrayForEach(tok, content) {
    const cJSON *v = cJSON_IsObject(tok) ? cJSON_GetObjectItemCaseSensitive(tok, "logprob") : NULL;
    if (!cJSON_IsNumber(v)) {
      rc = fail(err, errlen, SY_EINVAL, "choices[0].logprobs.content[]: entry without a numeric logprob");
      goto out;
    }
    sy_conf_acc_add(acc, v->valuedouble);
  }
out:
  cJSON_Delete(root);
  return rc;
}

int sy_cascade_accept(double confidence, double threshold) {
  /* Written so that NaN on either side is false, i.e. escalate. */
  return confidence >= threshold;
}

const char *sy_conf_method_name(sy_conf_method m) {
  switch (m) {
  case SY_CONF_GEOMEAN: return "geomean";
  case SY_CONF_MIN: return "min";
  }
  return "?";
}

int sy_conf_method_parse(const char *s, sy_conf_method *out) {
  if (!strcmp(s, "geomean")) *out = SY_CONF_GEOMEAN;
  else if (!strcmp(s, "min")) *out = SY_CONF_MIN;
  else return SY_EINVAL;
  return 0;
}
