#ifndef SY_STORE_REPORT_H
#define SY_STORE_REPORT_H

/* GetReport: how the arms of one route did over a time window, computed
 * from the captures and their feedback, ending in a recommendation.
 *
 * What is counted, per arm (the capture's `arm` field), over the captures
 * of the route whose id (= commit time) is in [from_us, to_us):
 *   requests      PRIMARY captures (answers the clients received)
 *   errors        of those, http_status >= 400 or a non-empty error text
 *   latency       p50 / p99 of latency_total_us over the requests that are
 *                 not errors (a 429 in 2 ms would flatter an arm); nearest
 *                 rank: the value at position ceil(p * n) of the sorted
 *                 sample. Exact up to SY_REPORT_MAX_LATENCY_SAMPLES per arm,
 *                 then a uniform reservoir sample of that size
 *                 (latency_exact = 0).
 *   tokens        sums of prompt / completion / total tokens of the requests
 *   cascade       decisions on the arm as a cascade's first (cheaper) arm:
 *                 a PRIMARY capture with accepted = true (its answer was
 *                 served), or a CASCADE_ATTEMPT capture (rejected and
 *                 escalated, unless it says accepted). acceptance =
 *                 accepted / decisions.
 *   shadow        SHADOW captures answered by the arm. compared: both the
 *                 shadow and its parent PRIMARY (parent_id, looked up even
 *                 outside the window) have a 2xx answer with text; agreed:
 *                 the two answers are equal after normalisation (trim,
 *                 collapse whitespace runs to one space, ASCII lowercase).
 *                 The answer text is choices[0].message.content, or for tool
 *                 calls the list of "name(arguments)". agreement = agreed /
 *                 compared.
 *   feedback      feedback entries on the arm's PRIMARY captures; a capture is
 *                 rated when it has >= 1 UP / DOWN / SCORE entry, and
 *                 approved when the mean of those (UP = +1, DOWN = -1, SCORE =
 *                 score) is > 0 (the export's rating rule). approval =
 *                 approved / rated with a 95% Wilson score interval.
 * A rate whose denominator is 0 is reported as 0 (JSON: null); look at the
 * count.
 *
 * Comparison with the base arm: difference of approval rates (candidate -
 * base) and the two-sided p-value of a pooled two-proportion z-test.
 *
 * Recommendation for each candidate arm against the base, first rule that
 * applies (thresholds are the named constants below):
 *   1. keep testing  the candidate or the base has no requests
 *   2. roll back     candidate error rate > SY_REPORT_ERROR_RATIO x base's
 *                    and at least SY_REPORT_ERROR_MIN_DIFF above it, with
 *                    >= SY_REPORT_MIN_REQUESTS candidate requests
 *   3. keep testing  fewer than SY_REPORT_MIN_RATED rated answers on either arm
 *   4. roll back / promote  p < alpha and the candidate's approval is lower /
 *                    higher; alpha = SY_REPORT_ALPHA divided by the number of
 *                    candidate arms (Bonferroni, so three candidates do not
 *                    triple the false alarms)
 *   5. keep testing  no significant difference
 * The route's recommendation: roll back the first candidate (arm order) that
 * gets roll back; else promote the promoted candidate with the highest
 * approval; else keep testing, with the rule of the candidate with the most
 * requests; "keep testing" when there is no candidate arm at all. Each
 * verdict carries the rule text it applied, e.g.
 *   "promote: ft approval 0.85 [0.79,0.89] vs base (base) 0.70 [0.63,0.76],
 *    p=0.00033 < 0.05 with >= 100 rated answers per arm" */

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "store/store.h"

#define SY_REPORT_MAX_ARMS 16                 /* arms reported; captures of further arms are
                                                 counted in other_arm_captures */
#define SY_REPORT_MAX_NAME 128                /* route and arm names (longer: not matched) */
#define SY_REPORT_MAX_RULE 512
#define SY_REPORT_MAX_LATENCY_SAMPLES 100000  /* per arm; 800 KB */
#define SY_REPORT_MAX_ANSWER_BYTES (1u << 20) /* answer text compared for shadows */
#define SY_REPORT_MIN_RATED 100               /* rated answers per arm before deciding on approval */
#define SY_REPORT_MIN_REQUESTS 100            /* candidate requests before the error rule */
#define SY_REPORT_ALPHA 0.05
#define SY_REPORT_ERROR_RATIO 2.0
#define SY_REPORT_ERROR_MIN_DIFF 0.01         /* 1 percentage point */
#define SY_REPORT_Z95 1.959963984540054       /* two-sided 95% normal quantile */

typedef enum {
  SY_REPORT_KEEP_TESTING = 0,
  SY_REPORT_PROMOTE,
  SY_REPORT_ROLL_BACK,
} sy_report_verdict;

/* "keep testing", "promote", "roll back". */
const char *sy_report_verdict_name(sy_report_verdict v);

typedef struct {
  char name[SY_REPORT_MAX_NAME + 1];
  int is_base;
  uint64_t requests, errors;
  double error_rate;
  uint64_t latency_n; /* requests in the latency sample's population */
  int latency_exact;
  uint64_t latency_p50_us, latency_p99_us;
  uint64_t prompt_tokens, completion_tokens, total_tokens;
  uint64_t cascade_decisions, cascade_accepted;
  double cascade_acceptance;
  uint64_t shadows, shadow_errors, shadow_compared, shadow_agreed;
  double shadow_agreement;
  uint64_t feedback, corrections, rated, approved;
  double approval, approval_lo, approval_hi;
  /* against the base arm (candidates only) */
  int has_comparison;
  double approval_diff, z, p_value;
  sy_report_verdict verdict;
  char rule[SY_REPORT_MAX_RULE];
} sy_report_arm;

typedef struct {
  char route[SY_REPORT_MAX_NAME + 1];
  uint64_t from_us, to_us;
  char base_arm[SY_REPORT_MAX_NAME + 1];
  uint64_t captures;           /* captures of the route in the window, all kinds */
  uint64_t other_arm_captures; /* of arms beyond SY_REPORT_MAX_ARMS, not counted */
  uint64_t corrupt;            /* unreadable records skipped */
  size_t n_arms;
  sy_report_arm arms[SY_REPORT_MAX_ARMS]; /* base first, then in order of appearance */
  sy_report_verdict verdict;
  char target_arm[SY_REPORT_MAX_NAME + 1]; /* the arm the verdict is about ("" if none) */
  char rule[SY_REPORT_MAX_RULE];
} sy_report;

/* Scans the route's captures (with feedback) in [from_us, to_us) (to_us 0 =
 * no end) and fills *out (caller's memory; ~25 KB). base_arm NULL = the arm
 * with the most requests. Works in the store's short read transactions and
 * holds at most SY_REPORT_MAX_LATENCY_SAMPLES latencies per arm. 0,
 * SY_EINVAL (no route, names over SY_REPORT_MAX_NAME, from >= to),
 * SY_ENOMEM, SY_EIO. An empty window is not an error: zero counts and
 * "keep testing". */
int sy_report_compute(sy_store *s, const char *route, uint64_t from_us, uint64_t to_us,
                      const char *base_arm, sy_report *out);

/* Computes every derived field (rates, intervals, comparisons, verdicts)
 * from the counts in r, marking the arm named r->base_arm as the base (the
 * one with most requests when r->base_arm is ""). sy_report_compute calls
 * it; exposed so the rules can be tested on made-up counts. */
void sy_report_finish(sy_report *r);

/* Appends the report as one JSON object to b:
 * {"route","from_us","to_us","base_arm","captures","other_arm_captures",
 *  "arms":[{"name","is_base","requests","errors","error_rate",
 *    "latency_us":{"p50","p99","n","exact"},
 *    "tokens":{"prompt","completion","total"},
 *    "cascade":{"decisions","accepted","acceptance"},
 *    "shadow":{"requests","errors","compared","agreed","agreement"},
 *    "feedback":{"entries","corrections","rated","approved","approval",
 *                "ci95":[lo,hi]},
 *    "vs_base":{"approval_diff","z","p_value"} (candidates with comparison),
 *    "verdict","rule"}],
 *  "recommendation":{"verdict","arm","rule"}}
 * Rates with a zero denominator are null. 0, SY_ETOOBIG, SY_ENOMEM (b may
 * then hold a partial object: reset it). */
int sy_report_to_json(const sy_report *r, sy_buf *b);

/* ---- the statistics, exposed for tests ---------------------------------- */

/* Wilson score interval for x successes out of n at normal quantile z.
 * n == 0 gives [0, 0]. */
void sy_report_wilson(uint64_t x, uint64_t n, double z, double *lo, double *hi);

/* Pooled two-proportion z-test of x1/n1 against x2/n2: z = (p1 - p2) / se
 * and the two-sided p-value. z = 0, p = 1 when n1 or n2 is 0 or the pooled
 * proportion is 0 or 1. */
void sy_report_two_prop(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, double *z,
                        double *p);

/* Nearest-rank percentile (0 < p <= 1) of a sorted array; 0 when n == 0. */
uint64_t sy_report_percentile(const uint64_t *sorted, size_t n, double p);

/* Normalises an answer for comparison into b: trim, whitespace runs to one
 * space, ASCII lowercase. 0, SY_ETOOBIG, SY_ENOMEM. */
int sy_report_normalise(const char *s, size_t n, sy_buf *b);

#endif
