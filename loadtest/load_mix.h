#ifndef SY_LOAD_MIX_H
#define SY_LOAD_MIX_H

/* Request mixes for switchyard-load: the bodies it sends, loaded once at
 * start-up, serialized once, and then shared read-only by every request.
 *
 * A mix file is JSONL. Each line is one of:
 *   - a chat request body: {"model": ..., "messages": [...], ...};
 *   - a fine-tuning export line from `switchyardctl export`:
 *     {"messages": [..., {"role": "assistant", ...}], "tools"?: ...} with no
 *     "model": the model comes from opts.model and the final assistant turn
 *     is dropped, so the captured prompt is replayed and the target writes
 *     its own answer;
 *   - a preference-pair export line ({"input": {"messages": ...}, ...}):
 *     its input is replayed the same way.
 * Any line may carry "weight" (a number > 0, default 1; removed before
 * sending): lines are drawn with probability proportional to their weight.
 * Empty lines are skipped. */

#include <stddef.h>

#define SY_LOAD_MIX_MAX_FILE (256u << 20) /* bytes of a mix or body file */
#define SY_LOAD_MIX_MAX_ITEMS 1000000u    /* lines in a mix */
#define SY_LOAD_BODY_MAX (16u << 20)      /* one serialized request body */
#define SY_LOAD_MIX_MAX_WEIGHT 1e9

typedef struct sy_load_item {
  char *body;    /* serialized JSON object, NUL-terminated; owned by the mix */
  size_t len;
  double weight;
  int stream;    /* the body asks for a streamed (SSE) answer */
} sy_load_item;

typedef struct sy_load_mix {
  sy_load_item *items;
  size_t n;
  double *cum; /* cumulative weights, cum[n - 1] is the total */
} sy_load_mix;

typedef struct sy_load_mix_opts {
  const char *model; /* sets "model" on lines that have none; NULL = such lines fail */
  int stream;        /* sets "stream": true on every body */
  int strip_user;    /* removes "user" (the generator adds its own ids) */
} sy_load_mix_opts;

/* Parses JSONL text into `m`. On failure returns SY_EINVAL (bad line, with
 * the line number and reason in err), SY_ETOOBIG (a limit above) or
 * SY_ENOMEM, and leaves m empty. */
int sy_load_mix_parse(sy_load_mix *m, const char *text, size_t len, const sy_load_mix_opts *o,
                      char *err, size_t errsz);
/* Reads and parses a JSONL file (--mix). Same returns, plus SY_EIO when the
 * file cannot be read (reason in err). */
int sy_load_mix_load(sy_load_mix *m, const char *path, const sy_load_mix_opts *o, char *err,
                     size_t errsz);
/* Reads a file holding one JSON request body (--body; may span lines) as a
 * mix of one. Same returns as sy_load_mix_load. */
int sy_load_mix_load_body(sy_load_mix *m, const char *path, const sy_load_mix_opts *o, char *err,
                          size_t errsz);
/* A mix of one built-in short chat request (model from o->model, else
 * "gpt-4o-mini"), for runs without --body or --mix. 0 or SY_ENOMEM. */
int sy_load_mix_default(sy_load_mix *m, const sy_load_mix_opts *o);
/* The item for a uniform draw u in [0, 1). */
size_t sy_load_mix_pick(const sy_load_mix *m, double u);
/* Frees every body; m is empty afterwards. */
void sy_load_mix_free(sy_load_mix *m);

/* Turns one line into a body (internal; exposed for tests). 0 or SY_EINVAL /
 * SY_ETOOBIG with the reason in err, or SY_ENOMEM. */
int sy__load_mix_line(const char *line, size_t len, const sy_load_mix_opts *o, sy_load_item *out,
                      char *err, size_t errsz);

#endif
