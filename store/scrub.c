#define PCRE2_CODE_UNIT_WIDTH 8
/* The PII scrubber: the built-in rules and their gates, compiling them with
 * operators' extra patterns, and running them over text (store/scrub.h).
 * The C checks behind the rules are in scrub_check.c, JSON in scrub_json.c. */
#include "store/scrub.h"

#include <ctype.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/err.h"
#include "store/scrub_check.h"

/* ---- the rules ---------------------------------------------------------- */

/* Boundaries: most rules refuse to start inside a word or number, and to end
 * where a number carries on after a separator ("4111...1111.5"). */
#define NOT_AFTER_ALNUM "(?<![A-Za-z0-9_])"
#define NUM_END "(?![A-Za-z0-9_]|[.,/-][0-9])"
/* Email characters: bytes of multi-byte UTF-8 count as letters, so zoë@exämple.de
 * is found (and, erring toward privacy, so is a CJK word glued to an address). */
#define EM "A-Za-z0-9\\x80-\\xff"

/* A rule's gate: counts of bytes that every match of the rule must contain
 * (in the matched bytes themselves, \K-dropped prefixes included, never in
 * lookarounds), so a subject lacking them is skipped without calling PCRE2.
 * This is a pure prefilter: it never changes what a rule finds, only saves
 * the call (most JSON strings in a chat body, such as roles, model names and
 * ids, pass no gate at all). A check's minimum counts as part of its rule:
 * a candidate with fewer digits than its check accepts is never a span.
 * test_scrub_api.c compares every corpus line and random inputs with the
 * gates on and off. */
typedef struct {
  uint8_t digits, upper, run, colons, dots; /* at least this many; run = longest [A-Za-z0-9_-]+ */
  uint8_t cluster;  /* digits in one run of [0-9 .()/+-] (numbers written with separators) */
  uint8_t all, any; /* SY_F_* bits: every one of `all`, one of `any` */
  uint32_t letters; /* case-folded ASCII letters that must all occur */
  const char *const *words; /* NULL, or one of these must occur (ASCII case-insensitive) */
} sy_gate;

/* Keywords the keyword rules cannot match without. */
static const char *const kw_bearer[] = {"bearer", "basic", NULL};
static const char *const kw_secret[] = {"pass", "secret", "key", "token", NULL};
static const char *const kw_ssn[] = {"ssn", "ss#", "social", NULL};

#define SY_F_AT 1u
#define SY_F_DASH 2u
#define SY_F_UNDER 4u
#define SY_F_EQ 8u
#define SY_F_PLUS 16u
#define SY_F_SLASH 32u
#define SY_F_SPACE 64u
#define SY_F_COLON 128u
#define L(c) (1u << ((c) - 'a'))

static const struct {
  sy_scrub_type type;
  sy_check_fn check;
  sy_gate gate;
  const char *re;
} builtin[] = {
    /* secrets first: keys and tokens contain digit runs that look like other things.
     * A PEM block without its END line is scrubbed to the end of the text. */
    {SY_SCRUB_SECRET, NULL, {.upper = 15, .run = 10, .all = SY_F_DASH, .letters = L('b') | L('e') | L('g') | L('k')},
     "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.*?)"
     "(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\\z)"},
    {SY_SCRUB_SECRET, NULL, {.upper = 2, .run = 11, .dots = 2, .letters = L('e') | L('y') | L('j')},
     "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*"},
    {SY_SCRUB_SECRET, sy__chk_sk, {.run = 23, .all = SY_F_DASH, .letters = L('s') | L('k')}, "(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}"},
    {SY_SCRUB_SECRET, NULL, {.run = 24, .all = SY_F_UNDER, .letters = L('k')}, NOT_AFTER_ALNUM "[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"},
    {SY_SCRUB_SECRET, NULL, {.upper = 4, .run = 20, .letters = L('a') | L('i')}, "(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"},
    {SY_SCRUB_SECRET, NULL, {.run = 33, .all = SY_F_UNDER, .letters = L('g') | L('h')},
     NOT_AFTER_ALNUM "(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
                     "(?![A-Za-z0-9_])"},
    {SY_SCRUB_SECRET, NULL, {.run = 15, .all = SY_F_DASH, .letters = L('x') | L('o')}, "(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"},
    {SY_SCRUB_SECRET, NULL, {.upper = 2, .run = 39, .letters = L('a') | L('i') | L('z')}, "(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"},
    {SY_SCRUB_SECRET, sy__chk_token, {.all = SY_F_SPACE, .words = kw_bearer}, "(?i)\\b(?:bearer|basic)\\s+\\K[A-Za-z0-9._~+/-]+=*"},
    /* the password in scheme://user:password@host */
    {SY_SCRUB_SECRET, NULL, {.colons = 2, .all = SY_F_AT | SY_F_SLASH}, "://[^\\s/:@]{1,64}:\\K[^\\s/@]{3,128}(?=@)"},
    {SY_SCRUB_SECRET, sy__chk_token, {.any = SY_F_COLON | SY_F_EQ, .words = kw_secret},
     "(?i)(?<![A-Za-z0-9])(?:password|passwd|passphrase|(?:client[_-]?)?secret|api[_-]?key|"
     "(?:access[_-]?|auth[_-]?|refresh[_-]?)?token|private[_-]?key)[\"']?\\s*[:=]\\s*[\"']?"
     "\\K[^\\s\"',;]{4,}"},

    {SY_SCRUB_EMAIL, sy__chk_email, {.dots = 1, .all = SY_F_AT},
     "(?<![" EM "._%+-])(?<![" EM "]')[" EM "][" EM "._%+'-]{0,63}@"
     "(?:[" EM "](?:[" EM "-]{0,61}[" EM "])?\\.)+[A-Za-z\\x80-\\xff]{2,24}(?![" EM "_-])"},

    {SY_SCRUB_IBAN, sy__chk_iban, {.upper = 2, .digits = 2},
     "(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"
     "(?![A-Za-z0-9])"},

    /* 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4, one separator throughout */
    {SY_SCRUB_CARD, sy__chk_card, {.cluster = 13},
     "(?<![A-Za-z0-9_.,+/-])(?<![0-9] )[0-9]{4}(?:([ -])[0-9]{4}\\1[0-9]{4}\\1[0-9]{4}"
     "(?:\\1[0-9]{3})?|([ -])[0-9]{6}\\2[0-9]{4,5})(?![A-Za-z0-9_]|[ -][0-9]|[.,/][0-9])"},
    {SY_SCRUB_CARD, sy__chk_card, {.cluster = 13}, "(?<![A-Za-z0-9_.,+/-])[0-9]{13,19}" NUM_END},

    {SY_SCRUB_SSN, sy__chk_ssn, {.cluster = 9, .all = SY_F_DASH},
     "(?<![A-Za-z0-9_.,/-])(?<![0-9] )[0-9]{3}-[0-9]{2}-[0-9]{4}" NUM_END},
    {SY_SCRUB_SSN, sy__chk_ssn, {.cluster = 9, .words = kw_ssn},
     "(?i)\\b(?:ssn|social security(?: number| no\\.?)?|ss#)\\s*(?:#|no\\.?|number)?"
     "\\s*[:#=]?\\s*\\K[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4}(?![0-9])"},

    /* IPv6 before IPv4, so ::ffff:192.0.2.1 is one address */
    {SY_SCRUB_IP, sy__chk_ipv6, {.colons = 2},
     "(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
     "(?:(?:[0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![A-Za-z0-9_:]|\\.[0-9])"},
    {SY_SCRUB_IP, sy__chk_ipv4, {.digits = 4, .dots = 3},
     "(?<![A-Za-z0-9_.])(?:[0-9]{1,3}\\.){3}[0-9]{1,3}(?![A-Za-z0-9_]|\\.[0-9]|-[A-Za-z])"},

    /* +CC ... */
    {SY_SCRUB_PHONE, sy__chk_phone_plus, {.cluster = 8, .all = SY_F_PLUS},
     "(?<![A-Za-z0-9_+])\\+[0-9]{1,3}(?: ?\\(0\\))?[ .-]?\\(?[0-9]{1,4}\\)?"
     "(?:[ .-]?[0-9]{2,5}){1,5}(?![A-Za-z0-9_]|[.-][0-9])"},
    /* 00CC ... */
    {SY_SCRUB_PHONE, sy__chk_phone_00, {.cluster = 10},
     "(?<![A-Za-z0-9_+])00 ?[1-9][0-9]{0,2}(?: ?\\(0\\))?[ .-]?\\(?[0-9]{1,4}\\)?"
     "(?:[ .-]?[0-9]{2,5}){1,5}(?![A-Za-z0-9_]|[.-][0-9])"},
    /* North America: area and exchange codes start with 2-9 */
    {SY_SCRUB_PHONE, NULL, {.cluster = 10},
     "(?<![A-Za-z0-9_+.-])(?<![0-9] )(?:1[ .-]?)?"
     "(?:\\([2-9][0-9]{2}\\) ?[2-9][0-9]{2}[ .-][0-9]{4}"
     "|[2-9][0-9]{2}([ .-])[2-9][0-9]{2}\\1[0-9]{4})(?![A-Za-z0-9_]|[.-][0-9])"},
    /* any number right after a phone keyword */
    {SY_SCRUB_PHONE, sy__chk_phone_kw, {.cluster = 7},
     "(?i)\\b(?:phone|telephone|tel|mobile|cell|fax|whatsapp|sms|"
     "(?:call|text|reach)(?: me| us)?(?: at| on)?)(?: number| no\\.?| #)?\\s*[:=#]?\\s*"
     "\\K\\+?\\(?[0-9][0-9 .()-]{5,20}[0-9](?![A-Za-z0-9_@]|[.-][0-9])"},
    /* national numbers with a trunk 0: 020 7946 0958, 030 901820, 06 12 34 56 78 */
    {SY_SCRUB_PHONE, sy__chk_phone_nat, {.cluster = 9},
     "(?<![A-Za-z0-9_+.,/:-])(?<![0-9] )(?:\\(0[1-9][0-9]{0,3}\\) ?|0[1-9][0-9]{0,3}[ /-]?)"
     "[0-9]{2,8}(?:[ -][0-9]{2,8}){0,3}(?![A-Za-z0-9_]|[.,/:-][0-9])"},
};

#define SY_NBUILTIN (sizeof builtin / sizeof builtin[0])
_Static_assert(SY_NBUILTIN <= 64, "open gates are a 64-bit mask");

typedef struct {
  pcre2_code *code;
  sy_check_fn check;
  sy_scrub_type type;
  bool jit;
  bool gated; /* built-ins: skip when `gate` fails; extra patterns always run */
  sy_gate gate;
  size_t ph_len;
  char ph[SY_SCRUB_MAX_NAME + 3]; /* "[NAME]" */
} sy_rule;

struct sy_scrub_rules {
  size_t n;
  uint32_t max_captures;
  sy_rule rule[];
};

static const char *const type_names[SY_SCRUB_NTYPES] = {
    "EMAIL", "PHONE", "CARD", "SSN", "IP", "IBAN", "SECRET", "CUSTOM"};

const char *sy_scrub_type_name(sy_scrub_type t) {
  return (unsigned)t < SY_SCRUB_NTYPES ? type_names[t] : "?";
}

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Compiles one rule; on failure writes the reason (with the pattern's name). */
static int compile_rule(sy_rule *r, const char *name, const char *re, uint32_t opts, char *err,
                        size_t errlen) {
  int ec = 0;
  PCRE2_SIZE eoff = 0;
  r->code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &ec, &eoff, NULL);
  if (!r->code) {
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(ec, msg, sizeof msg) < 0) strcpy((char *)msg, "compile error");
    set_err(err, errlen, "pattern '%s': %s at offset %zu", name, (const char *)msg, (size_t)eoff);
    return ec == PCRE2_ERROR_NOMEMORY ? SY_ENOMEM : SY_ECONFIG;
  }
  uint32_t minlen = 0;
  pcre2_pattern_info(r->code, PCRE2_INFO_MINLENGTH, &minlen);
  if (minlen == 0) {
    set_err(err, errlen, "pattern '%s': can match the empty string", name);
    return SY_ECONFIG;
  }
  /* JIT is an optimisation only: without it pcre2_match runs the interpreter. */
  r->jit = pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
  return 0;
}

static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > SY_SCRUB_MAX_NAME || !isalpha((unsigned char)s[0])) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_') return false;
  return true;
}

int sy_scrub_rules_new(const sy_scrub_pattern *extra, size_t n, sy_scrub_rules **out,
                       char *err, size_t errlen) {
  int rc;
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (n && !extra) return SY_EINVAL;
  if (n > SY_SCRUB_MAX_EXTRA) {
    set_err(err, errlen, "too many extra patterns (%zu > %d)", n, SY_SCRUB_MAX_EXTRA);
    return SY_ECONFIG;
  }
  sy_scrub_rules *rs = calloc(1, sizeof *rs + (SY_NBUILTIN + n) * sizeof(sy_rule));
  if (!rs) return SY_ENOMEM;
  for (size_t i = 0; i < SY_NBUILTIN; i++) {
    sy_rule *r = &rs->rule[rs->n];
    /* Built-ins are ASCII patterns run in byte mode: a third faster than UTF
     * mode, and any byte sequence is a valid subject. */
    rc = compile_rule(r, sy_scrub_type_name(builtin[i].type), builtin[i].re, 0, err, errlen);
    if (rc) goto fail;
    rs->n++;
    r->check = builtin[i].check;
    r->type = builtin[i].type;
    r->gated = true;
    r->gate = builtin[i].gate;
    r->ph_len = (size_t)snprintf(r->ph, sizeof r->ph, "[%s]", sy_scrub_type_name(r->type));
  }
  for (size_t i = 0; i < n; i++) {
    const char *name = extra[i].name ? extra[i].name : "";
    if (!valid_name(name)) {
      rc = SY_ECONFIG;
      set_err(err, errlen, "pattern name '%.40s': must be 1-%d of [A-Za-z0-9_], starting with a letter",
              name, SY_SCRUB_MAX_NAME);
      goto fail;
    }
    if (!extra[i].pattern || strlen(extra[i].pattern) > SY_SCRUB_MAX_PATTERN) {
      rc = SY_ECONFIG;
      set_err(err, errlen, "pattern '%s': %s%zu bytes", name,
              extra[i].pattern ? "longer than " : "missing, limit ", (size_t)SY_SCRUB_MAX_PATTERN);
      goto fail;
    }
    sy_rule *r = &rs->rule[rs->n];
    /* Operators' patterns get UTF-8 semantics ("." is a character, \\p{L}
     * works); invalid sequences in the input simply never match. */
    rc = compile_rule(r, name, extra[i].pattern, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, err, errlen);
    if (rc) {
      pcre2_code_free(r->code); /* set when only the empty-match check failed */
      r->code = NULL;
      goto fail;
    }
    rs->n++;
    r->type = SY_SCRUB_CUSTOM;
    r->ph[0] = '[';
    size_t k = 0;
    for (; name[k]; k++) r->ph[k + 1] = (char)toupper((unsigned char)name[k]);
    r->ph[k + 1] = ']';
    r->ph[k + 2] = '\0';
    r->ph_len = k + 2;
  }
  for (size_t i = 0; i < rs->n; i++) {
    uint32_t caps = 0;
    pcre2_pattern_info(rs->rule[i].code, PCRE2_INFO_CAPTURECOUNT, &caps);
    if (caps + 1 > rs->max_captures) rs->max_captures = caps + 1;
  }
  *out = rs;
  return 0;
fail:
  sy_scrub_rules_free(rs);
  return rc;
}

void sy_scrub_rules_free(sy_scrub_rules *rs) {
  if (!rs) return;
  for (size_t i = 0; i < rs->n; i++) pcre2_code_free(rs->rule[i].code);
  free(rs);
}

size_t sy_scrub_rules_count(const sy_scrub_rules *rs) { return rs->n; }

size_t sy_scrub_rules_jit_count(const sy_scrub_rules *rs) {
  size_t j = 0;
  for (size_t i = 0; i < rs->n; i++) j += rs->rule[i].jit;
  return j;
}

/* ---- the per-thread scrubber ------------------------------------------- */

typedef struct {
  size_t start, end;
  uint32_t rule;
} sy_span;

/* What the gates look at, counted in one pass over the subject. */
typedef struct {
  size_t digits, upper, run, colons, dots, cluster;
  uint32_t flags, letters;
} sy_feat;

struct sy_scrubber {
  const sy_scrub_rules *rules;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  pcre2_jit_stack *jstack;
  sy_buf spans;  /* accepted sy_span, sorted, disjoint */
  sy_buf found;  /* what the current rule found */
  sy_buf merged; /* spans + found */
  sy_buf str;    /* sy_scrub_json: one scrubbed string */
  sy_buf dec;    /* sy_scrub_json: one decoded string */
  bool no_gates; /* tests: run every rule on every input */
  uint64_t open; /* the gates the last sy__scrub_may_match found open */
  /* Strings found clean before, by XXH3-128 under a per-scrubber random seed
   * (direct-mapped, allocated on first use): a chat resends its whole
   * history with every turn, and the system prompt with every request. */
  XXH128_hash_t *clean;
  XXH128_hash_t last;
  uint64_t seed, hits;
  bool data_url; /* the last sy_scrub_json met a string value starting "data:" */
  char err[256];
};

#define SPANS(b) ((sy_span *)(void *)(b)->data)
#define NSPANS(b) ((b)->len / sizeof(sy_span))

int sy_scrubber_new(const sy_scrub_rules *rules, sy_scrubber **out) {
  sy_scrubber *s = calloc(1, sizeof *s);
  if (!s) goto fail;
  s->rules = rules;
  s->md = pcre2_match_data_create(rules->max_captures, NULL);
  if (!s->md) goto fail;
  s->mctx = pcre2_match_context_create(NULL);
  if (!s->mctx) goto fail;
  pcre2_set_match_limit(s->mctx, SY_SCRUB_MATCH_LIMIT);
  pcre2_set_heap_limit(s->mctx, SY_SCRUB_HEAP_LIMIT_KIB);
  /* The default 32 KiB JIT stack is the machine stack of the calling thread;
   * a private one keeps deep backtracking in extra patterns off it. */
  s->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
  if (s->jstack) pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
  sy_buf_init(&s->spans, SY_SCRUB_MAX_SPANS * sizeof(sy_span));
  sy_buf_init(&s->found, SY_SCRUB_MAX_SPANS * sizeof(sy_span));
  sy_buf_init(&s->merged, SY_SCRUB_MAX_SPANS * sizeof(sy_span));
  sy_buf_init(&s->str, SY_SCRUB_MAX_INPUT);
  sy_buf_init(&s->dec, SY_SCRUB_MAX_INPUT);
  /* The seed keeps the cache's keys unpredictable from outside. */
  if (getentropy(&s->seed, sizeof s->seed) != 0) s->seed = (uint64_t)(uintptr_t)s ^ (uint64_t)time(NULL);
  *out = s;
  return 0;
fail:
  sy_scrubber_free(s);
  *out = NULL;
  return SY_ENOMEM;
}

void sy_scrubber_free(sy_scrubber *s) {
  if (!s) return;
  pcre2_match_data_free(s->md);
  pcre2_match_context_free(s->mctx);
  pcre2_jit_stack_free(s->jstack);
  sy_buf_free(&s->spans);
  sy_buf_free(&s->found);
  sy_buf_free(&s->merged);
  sy_buf_free(&s->str);
  sy_buf_free(&s->dec);
  free(s->clean);
  free(s);
}

void sy_scrubber_set_match_limit(sy_scrubber *s, uint32_t limit) {
  pcre2_set_match_limit(s->mctx, limit);
}

const char *sy_scrubber_last_error(const sy_scrubber *s) { return s->err; }

/* Runs rule `ri` over in[gs, ge) and appends accepted spans to s->found. The
 * subject ends at ge, so a match never runs into text an earlier rule claimed;
 * lookbehinds still see the real bytes before gs. */
static int scan_gap(sy_scrubber *s, uint32_t ri, const char *in, size_t gs, size_t ge) {
  const sy_rule *r = &s->rules->rule[ri];
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
  size_t off = gs;
  while (off < ge) {
    int mrc = pcre2_match(r->code, (PCRE2_SPTR)in, ge, off, 0, s->md, s->mctx);
    if (mrc == PCRE2_ERROR_NOMATCH) return 0;
    if (mrc < 0) {
      PCRE2_UCHAR msg[160];
      if (pcre2_get_error_message(mrc, msg, sizeof msg) < 0) strcpy((char *)msg, "?");
      snprintf(s->err, sizeof s->err, "rule %s #%u: PCRE2 error %d: %s",
               sy_scrub_type_name(r->type), ri, mrc, (const char *)msg);
      return SY_EIO;
    }
    size_t ms = ov[0], me = ov[1];
    if (me <= ms) { /* empty match (\K or lookaround in an extra pattern): step one character */
      off = (me > off ? me : off) + 1;
      while (off < ge && ((unsigned char)in[off] & 0xC0) == 0x80) off++;
      continue;
    }
    size_t next = me;
    if (!r->check || r->check(in, &ms, &me)) {
      if (me <= ms) return SY_EIO; /* a check must never empty a span */
      sy_span sp = {ms, me, ri};
      int rc = sy_buf_append(&s->found, &sp, sizeof sp);
      if (rc) {
        snprintf(s->err, sizeof s->err, "more than %u entities in one input",
                 (unsigned)SY_SCRUB_MAX_SPANS);
        return rc;
      }
      next = me;
    }
    off = next;
  }
  return 0;
}


/* Per byte: what it adds to the counts (16-bit lanes: digits, upper, dots,
 * colons), the flag it sets, the letter it is, and whether it extends a run.
 * Built once, on first use; a table keeps the scan free of branches. */
static struct {
  uint64_t lanes;
  uint32_t letter;
  uint8_t flag;
  uint8_t run;
  uint8_t num; /* in a number written with separators: [0-9 .()/+-] */
} ftab[256];  /* one 16-byte entry per byte value: one cache line serves four */
static pthread_once_t ftab_once = PTHREAD_ONCE_INIT;

static void ftab_init(void) {
  for (int c = 0; c < 256; c++) {
    if (c >= '0' && c <= '9') ftab[c].lanes = 1;
    if (c >= 'A' && c <= 'Z') ftab[c].lanes = 1ull << 16;
    if (c == '.') ftab[c].lanes = 1ull << 32;
    if (c == ':') ftab[c].lanes = 1ull << 48, ftab[c].flag = SY_F_COLON;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ftab[c].letter = L(c | 0x20);
    ftab[c].run = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' ||
                  c == '_';
  }
  ftab['@'].flag = SY_F_AT;
  ftab['-'].flag = SY_F_DASH;
  ftab['_'].flag = SY_F_UNDER;
  ftab['='].flag = SY_F_EQ;
  ftab['+'].flag = SY_F_PLUS;
  ftab['/'].flag = SY_F_SLASH;
  for (const char *p = "0123456789 .()/+-"; *p; p++) ftab[(unsigned char)*p].num = 1;
  static const char sp[] = " \t\n\v\f\r";
  for (const char *p = sp; *p; p++) ftab[(unsigned char)*p].flag = SY_F_SPACE;
}

static void features(const char *in, size_t len, sy_feat *f) {
  pthread_once(&ftab_once, ftab_init);
  memset(f, 0, sizeof *f);
  const unsigned char *p = (const unsigned char *)in;
  size_t cur = 0, run = 0, cd = 0, cluster = 0;
  uint32_t flags = 0, letters = 0;
  while (len) {
    /* 16-bit lanes cannot overflow within 65535 bytes */
    size_t n = len < 65535 ? len : 65535;
    uint64_t lanes = 0;
    for (size_t i = 0; i < n; i++) {
      unsigned c = p[i];
      lanes += ftab[c].lanes;
      flags |= ftab[c].flag;
      letters |= ftab[c].letter;
      cur = ftab[c].run ? cur + 1 : 0;
      run = cur > run ? cur : run;
      cd = ftab[c].num ? cd + (c - '0' < 10u) : 0;
      cluster = cd > cluster ? cd : cluster;
    }
    f->digits += lanes & 0xFFFF;
    f->upper += (lanes >> 16) & 0xFFFF;
    f->dots += (lanes >> 32) & 0xFFFF;
    f->colons += lanes >> 48;
    p += n;
    len -= n;
  }
  f->run = run;
  f->cluster = cluster;
  f->flags = flags;
  f->letters = letters;
}

/* Does `w` (lower case) occur in in[0, len), ignoring ASCII case? */
static bool has_word(const char *in, size_t len, const char *w) {
  size_t wl = strlen(w);
  if (len < wl) return false;
  const char *end = in + len - wl + 1; /* last possible start + 1 */
  for (int up = 0; up < 2; up++) {     /* memchr for the first letter, in either case */
    char c0 = up ? (char)(w[0] & ~0x20) : w[0];
    if (up && c0 == w[0]) break;        /* not a letter: one pass is enough */
    for (const char *p = in; p < end && (p = memchr(p, c0, (size_t)(end - p))); p++) {
      size_t k = 1;
      while (k < wl && (p[k] | 0x20) == w[k]) k++;
      if (k == wl) return true;
    }
  }
  return false;
}

static bool gate_open(const sy_rule *r, const sy_feat *f, const char *in, size_t len) {
  const sy_gate *g = &r->gate;
  if (!r->gated) return true;
  if (!(f->digits >= g->digits && f->upper >= g->upper && f->run >= g->run &&
        f->colons >= g->colons && f->dots >= g->dots && f->cluster >= g->cluster &&
        (f->flags & g->all) == g->all && (!g->any || (f->flags & g->any)) &&
        (f->letters & g->letters) == g->letters))
    return false;
  if (!g->words) return true;
  for (const char *const *w = g->words; *w; w++)
    if (has_word(in, len, *w)) return true;
  return false;
}

/* Which built-in rules' gates are open on in[0, len): bit ri. */
static uint64_t open_gates(const sy_scrubber *s, const char *in, size_t len) {
  sy_feat f;
  uint64_t open = 0;
  features(in, len, &f);
  /* Every built-in gate needs one of: 2+ digits (IBAN, IPv4, cards, SSNs,
   * phones), a token run of 10+ (keys and tokens), '@' (email, URL
   * password), ':' or '=' (password=, IPv6), or a space (Bearer): a role,
   * a model name or an id has none of them and skips the 24 checks. */
  if (f.digits < 2 && f.run < 10 && !(f.flags & (SY_F_AT | SY_F_COLON | SY_F_EQ | SY_F_SPACE)))
    return 0;
  for (size_t ri = 0; ri < SY_NBUILTIN; ri++)
    if (gate_open(&s->rules->rule[ri], &f, in, len)) open |= 1ull << ri;
  return open;
}

bool sy__scrub_may_match(sy_scrubber *s, const char *in, size_t len) {
  s->open = open_gates(s, in, len);
  if (s->no_gates || s->rules->n > SY_NBUILTIN) return len > 0;
  return s->open != 0;
}

void sy__scrubber_set_gates(sy_scrubber *s, bool on) { s->no_gates = !on; }

bool sy__scrub_known_clean(sy_scrubber *s, const char *in, size_t len) {
  if (s->no_gates || len < SY_SCRUB_CACHE_MIN) return false;
  s->last = XXH3_128bits_withSeed(in, len, s->seed);
  if (!s->clean) return false;
  XXH128_hash_t *e = &s->clean[s->last.low64 & (SY_SCRUB_CACHE_SLOTS - 1)];
  if (!XXH128_isEqual(*e, s->last)) return false;
  s->hits++;
  return true;
}

void sy__scrub_remember_clean(sy_scrubber *s, const char *in, size_t len) {
  (void)in;
  if (s->no_gates || len < SY_SCRUB_CACHE_MIN) return;
  if (!s->clean && !(s->clean = calloc(SY_SCRUB_CACHE_SLOTS, sizeof *s->clean))) return;
  s->clean[s->last.low64 & (SY_SCRUB_CACHE_SLOTS - 1)] = s->last;
}

uint64_t sy__scrubber_cache_hits(const sy_scrubber *s) { return s->hits; }

void sy__scrubber_reset_data_url(sy_scrubber *s) { s->data_url = false; }
void sy__scrubber_note_data_url(sy_scrubber *s) { s->data_url = true; }
bool sy_scrubber_saw_data_url(const sy_scrubber *s) { return s->data_url; }

/* Finds every entity; leaves them sorted and disjoint in s->spans. */
static int find_spans(sy_scrubber *s, const char *in, size_t len, const uint64_t *pre) {
  sy_buf_reset(&s->spans);
  uint64_t open = pre ? *pre : open_gates(s, in, len);
  for (uint32_t ri = 0; ri < s->rules->n; ri++) {
    if (!s->no_gates && ri < SY_NBUILTIN && !(open >> ri & 1)) continue;
    sy_buf_reset(&s->found);
    const sy_span *acc = SPANS(&s->spans);
    size_t na = NSPANS(&s->spans), gs = 0;
    for (size_t i = 0; i <= na; i++) {
      size_t ge = i < na ? acc[i].start : len;
      if (ge > gs) {
        int rc = scan_gap(s, ri, in, gs, ge);
        if (rc) return rc;
      }
      if (i < na) gs = acc[i].end;
    }
    size_t nf = NSPANS(&s->found);
    if (!nf) continue;
    sy_buf_reset(&s->merged);
    int rc = sy_buf_reserve(&s->merged, (na + nf) * sizeof(sy_span));
    if (rc) return rc;
    const sy_span *f = SPANS(&s->found);
    sy_span *m = SPANS(&s->merged);
    size_t a = 0, b = 0, k = 0;
    while (a < na || b < nf) m[k++] = (b == nf || (a < na && acc[a].start < f[b].start)) ? acc[a++] : f[b++];
    s->merged.len = k * sizeof(sy_span);
    sy_buf tmp = s->spans;
    s->spans = s->merged;
    s->merged = tmp;
  }
  return 0;
}

static int scrub_text(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                      sy_scrub_counts *counts, const uint64_t *pre);

int sy_scrub_text(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                  sy_scrub_counts *counts) {
  return scrub_text(s, in, len, out, counts, NULL);
}

int sy__scrub_text_gated(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                         sy_scrub_counts *counts) {
  return scrub_text(s, in, len, out, counts, &s->open);
}

static int scrub_text(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                      sy_scrub_counts *counts, const uint64_t *pre) {
  s->err[0] = '\0';
  if (counts) memset(counts, 0, sizeof *counts);
  if (len > SY_SCRUB_MAX_INPUT) {
    snprintf(s->err, sizeof s->err, "input of %zu bytes exceeds the %u byte limit", len,
             (unsigned)SY_SCRUB_MAX_INPUT);
    return SY_ETOOBIG;
  }
  if (len == 0) return 0;
  int rc = find_spans(s, in, len, pre);
  if (rc) {
    if (!s->err[0]) snprintf(s->err, sizeof s->err, "%s", sy_strerror(rc));
    return rc;
  }
  size_t mark = out->len, pos = 0;
  const sy_span *sp = SPANS(&s->spans);
  size_t n = NSPANS(&s->spans);
  sy_scrub_counts c = {{0}, 0};
  for (size_t i = 0; i < n && !rc; i++) {
    const sy_rule *r = &s->rules->rule[sp[i].rule];
    rc = sy_buf_append(out, in + pos, sp[i].start - pos);
    if (!rc) rc = sy_buf_append(out, r->ph, r->ph_len);
    pos = sp[i].end;
    c.n[r->type]++;
    c.total++;
  }
  if (!rc) rc = sy_buf_append(out, in + pos, len - pos);
  if (rc) {
    out->len = mark; /* fail closed: nothing half-scrubbed escapes */
    if (out->data) out->data[mark] = '\0';
    snprintf(s->err, sizeof s->err, "output: %s", sy_strerror(rc));
    return rc;
  }
  if (counts) *counts = c;
  return 0;
}

/* ---- for scrub_json.c ---------------------------------------------------- */

sy_buf *sy__scrubber_str(sy_scrubber *s) { return &s->str; }
sy_buf *sy__scrubber_dec(sy_scrubber *s) { return &s->dec; }
char *sy__scrubber_err(sy_scrubber *s, size_t *cap) {
  *cap = sizeof s->err;
  return s->err;
}
