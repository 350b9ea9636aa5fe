#ifndef SY_ROUTER_CONFIDENCE_H
#define SY_ROUTER_CONFIDENCE_H

#include <stddef.h>

/* Confidence of an answer from its token logprobs, and the cascade decision.
 *
 *   geomean: exp(mean(logprob))  = geometric-mean token probability
 *   min:     exp(min(logprob))   = probability of the least likely token
 *
 * Both are in [0, 1]. A logprob of -inf (probability 0) is allowed; NaN,
 * +inf or a logprob above SY_CONF_MAX_LOGPROB makes the result NaN, and no
 * tokens at all gives NaN too. A cascade ESCALATES on NaN: an answer whose
 * confidence cannot be computed is never accepted. */

#define SY_CONF_MAX_LOGPROB 1e-6           /* float rounding can give tiny positives */
#define SY_CONF_MAX_JSON_BYTES (32u << 20) /* largest response we parse for logprobs */

typedef enum { SY_CONF_GEOMEAN = 0, SY_CONF_MIN } sy_conf_method;

/* A cascade: ask `first` (with logprobs), accept its answer iff confidence >=
 * threshold, otherwise ask `escalate` and answer with that. Arms are indexes
 * into the route's arms. */
typedef struct sy_cascade {
  int first;
  int escalate;
  double threshold; /* 0..1 */
  sy_conf_method method;
} sy_cascade;

/* Running aggregate, so logprobs can be fed as they are found (JSON walk or
 * stream chunks) without storing them. Initialise with sy_conf_acc_init. */
typedef struct sy_conf_acc {
  double sum;
  double min;
  size_t n;
  int invalid; /* a NaN/+inf/positive logprob was seen */
} sy_conf_acc;

void sy_conf_acc_init(sy_conf_acc *a);
void sy_conf_acc_add(sy_conf_acc *a, double logprob);
/* The confidence by `method`; NaN if no tokens or an invalid logprob was seen. */
double sy_conf_acc_value(const sy_conf_acc *a, sy_conf_method method);

/* Array forms of the same. */
double sy_confidence_geomean(const double *logprobs, size_t n);
double sy_confidence_min(const double *logprobs, size_t n);
double sy_confidence(sy_conf_method method, const double *logprobs, size_t n);

/* Feeds choices[0].logprobs.content[].logprob of an OpenAI chat.completion
 * response body into `acc` (which the caller initialised). Allocates only
 * inside cJSON and frees it before returning.
 * Returns 0; SY_ETOOBIG for a body over SY_CONF_MAX_JSON_BYTES; SY_ENOTFOUND
 * when logprobs are absent (no choices, logprobs null/missing, content
 * missing/null or empty); SY_EINVAL when malformed (not JSON, wrong types, an
 * entry without a numeric logprob). A message goes to err (may be NULL).
 * On any error the caller escalates. */
int sy_confidence_from_chat_json(const char *json, size_t len, sy_conf_acc *acc, char *err,
                                 size_t errlen);

/* The cascade rule: 1 = accept (confidence >= threshold), 0 = escalate.
 * NaN confidence or NaN threshold escalates. */
int sy_cascade_accept(double confidence, double threshold);

/* "geomean" / "min"; "?" otherwise. */
const char *sy_conf_method_name(sy_conf_method m);
/* Parses the names above. 0 or SY_EINVAL. */
int sy_conf_method_parse(const char *s, sy_conf_method *out);

#endif
