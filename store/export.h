#ifndef SY_EXPORT_H
#define SY_EXPORT_H

/* Dataset export: reads captures (and their feedback) from a store and writes
 * OpenAI chat fine-tuning JSONL, optionally split into train/validation, and
 * preference pairs in OpenAI's DPO JSONL format (store/ftjson.h shows both).
 *
 * What goes into the SFT file: PRIMARY captures in the time range and
 * matching route/arm/model, whose request has a valid "messages" array. The
 * assistant turn is the latest correction when the capture has one (gold),
 * else the captured answer (choices[0].message, tool calls included). Filters,
 * in this order, each counted in sy_export_summary.filtered:
 *   kind          not a PRIMARY capture (shadow answers, cascade attempts)
 *   route/arm/model  does not match the option
 *   not_corrected --only-corrected and no correction
 *   min_rating    rating below min_rating, or unrated, when has_min_rating
 *   not_positive  --only-positive and the rating is not > 0
 *   negative      --exclude-negative and the rating is < 0
 *   error         (captured answers only) HTTP status not 2xx or an error
 *   truncated     (captured answers only) truncated or finish_reason "length"
 *   unparseable   request not usable JSON / no usable assistant answer
 *   duplicate     same normalised prompt + answer already written
 *   invalid       the finished line failed validation (never written)
 * A capture's rating is the mean of its rated feedback: UP = +1, DOWN = -1,
 * SCORE = score (so scores should be signed, e.g. -1..1); no rated feedback
 * = unrated. Positive means > 0, negative < 0.
 *
 * Preference pairs (written when opts.pairs is set) only need the scope
 * filters (kind aside, time, route, arm, model); the quality filters above do
 * not apply, since the rejected side is by nature a bad answer:
 *   correction  the latest correction (preferred) vs the captured answer
 *   rating      a positively vs a negatively rated captured answer to the
 *               same normalised prompt (the first of each; one pair per prompt)
 *   cascade     a CASCADE_ATTEMPT that was not accepted (non-preferred) vs the
 *               final answer of its parent capture (parent_id; its correction
 *               when it has one)
 *
 * Train/validation: a capture goes to validation when a hash of its
 * normalised prompt falls below val_fraction, so the same prompt always lands
 * on the same side (no train/val leakage) and reruns give the same split.
 * Dedup keeps a set of 128-bit hashes of the normalised prompt+answer; when it
 * holds dedup_max entries, later examples are no longer deduplicated (counted
 * in filtered.dedup_full). */

#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "store/store.h"

#define SY_EXPORT_MAX_ROUTES 64                /* routes named in the summary; more = "other" */
#define SY_EXPORT_ROUTE_NAME_MAX 64            /* longer route names are cut in the summary */
#define SY_EXPORT_DEFAULT_DEDUP_MAX (1u << 22) /* 4M hashes, 64 MiB at most */
#define SY_EXPORT_MAX_PAIR_PROMPTS (1u << 20)  /* prompts tracked for rating pairs */

typedef struct {
  uint64_t since_us;   /* 0 = from the oldest */
  uint64_t until_us;   /* exclusive; 0 = to the newest */
  const char *route;   /* NULL = any */
  const char *arm;     /* NULL = any */
  const char *model;   /* NULL = any */
  int has_min_rating;
  double min_rating;
  int only_corrected;
  int only_positive;
  int exclude_negative;
  int include_errors;  /* keep error and truncated captured answers */
  double val_fraction; /* 0..1; > 0 needs val */
  size_t dedup_max;    /* 0 = SY_EXPORT_DEFAULT_DEDUP_MAX */
  FILE *train;         /* required */
  FILE *val;           /* validation lines; may be NULL when val_fraction is 0 */
  FILE *pairs;         /* preference pairs; NULL = none */
} sy_export_opts;

typedef struct {
  char name[SY_EXPORT_ROUTE_NAME_MAX];
  uint64_t count;
} sy_export_route_count;

typedef struct {
  uint64_t scanned;       /* captures read */
  uint64_t corrupt;       /* unreadable records skipped */
  uint64_t written;       /* SFT lines written (train + val) */
  uint64_t written_train;
  uint64_t written_val;
  uint64_t from_captured; /* assistant turn = captured answer */
  uint64_t from_corrected;/* assistant turn = correction */
  uint64_t rated_positive;/* of the written lines */
  uint64_t rated_negative;
  uint64_t rated_neutral; /* rated, mean exactly 0 */
  uint64_t unrated;
  uint64_t total_tokens;  /* sum of the captures' total_tokens, written lines */
  uint64_t pairs;         /* preference lines written */
  uint64_t pairs_correction;
  uint64_t pairs_rating;
  uint64_t pairs_cascade;
  uint64_t pairs_skipped; /* candidates dropped: missing/invalid/identical answers */
  struct {
    uint64_t kind, route, arm, model, not_corrected, min_rating, not_positive, negative, error,
        truncated, unparseable, duplicate, invalid, dedup_full;
  } filtered;
  sy_export_route_count routes[SY_EXPORT_MAX_ROUTES]; /* written lines by route */
  size_t n_routes;
  uint64_t routes_other;
} sy_export_summary;

/* Runs an export over the store (which may be opened read-only). Fills *sum
 * (zeroed first). Output is written with fwrite; the caller owns and closes
 * the FILEs. Returns 0, SY_EINVAL (bad options), SY_EIO (a write failed or the
 * store failed), SY_ENOMEM. Unreadable records are skipped and counted, not
 * fatal. On failure the outputs hold a prefix of valid lines. */
int sy_export_run(sy_store *s, const sy_export_opts *o, sy_export_summary *sum);

/* Appends the summary as one JSON object to out. 0 or SY_ETOOBIG/SY_ENOMEM. */
int sy_export_summary_json(const sy_export_summary *sum, sy_buf *out);

/* Writes the summary for humans, several lines. */
void sy_export_summary_print(const sy_export_summary *sum, FILE *out);

#endif
