#ifndef SY_SCRUB_H
#define SY_SCRUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* PII scrubber: every captured request/response passes through here before it
 * is written to disk. Detected entities are replaced with typed placeholders:
 *
 *   [EMAIL]  addresses (user.name+tag@sub.example.co.uk)
 *   [PHONE]  +CC international, 00CC international, North American
 *            ((415) 555-0132, 415.555.0132, 1-800-555-0199; NANP area and
 *            exchange must start with 2-9), European national numbers with a
 *            leading 0 and a separator (020 7946 0958, 030 901820), and any
 *            7-15 digit number right after a keyword (phone:, tel, mobile, call me at)
 *   [CARD]   13-19 digits, contiguous or in 4-4-4-4(-3) / 4-6-5 / 4-6-4 groups,
 *            first digit 2-6 (issued IIN ranges), Luhn-valid, not all one digit
 *   [SSN]    123-45-6789 (or any 9 digits after "SSN"/"social security"), without
 *            the never-issued ranges: area 000/666/9xx, group 00, serial 0000
 *   [IP]     IPv4 with octets 0-255 and no leading zeros; IPv6 in any form that
 *            inet_pton accepts (full, compressed, ::1, ::ffff:192.0.2.1), but not
 *            the bare "::"
 *   [IBAN]   country code + check digits + BBAN, contiguous or in groups of 4,
 *            with the country's registered length and the mod-97 check
 *   [SECRET] OpenAI/Anthropic sk-..., Stripe sk_live_/rk_live_, AWS AKIA/ASIA key
 *            ids, GitHub gh?_ / github_pat_, Slack xox?-, Google AIza, JWTs, PEM
 *            private key blocks, "password=..."-style values, and the token after
 *            "Bearer"/"Basic". The scheme word is KEPT ("Authorization: Bearer
 *            [SECRET]"): it says what was there, and is no secret itself.
 *   [NAME]   extra patterns from config (name upper-cased in the placeholder)
 *
 * Matching is PCRE2 (JIT-compiled where the platform allows, the interpreter
 * otherwise); checksums and ranges are verified in C after a regex match. Each
 * rule runs in priority order (secrets, email, IBAN, card, SSN, IP, phone,
 * then extra patterns) over the text not yet claimed by an earlier rule, so
 * an email that contains digits never also becomes a phone number. A
 * candidate that fails its check is skipped whole: a Luhn-failing 16-digit
 * number is not re-read as a shorter card or a phone.
 *
 * Any byte sequence is valid input; invalid UTF-8 never crashes or errors.
 * The built-in rules are ASCII patterns run in PCRE2 byte mode (bytes >= 0x80
 * are letters for [EMAIL], so internationalised addresses are found, and
 * nothing else), and bytes they do not replace are copied through unchanged.
 * Extra patterns run in UTF mode with PCRE2_MATCH_INVALID_UTF: "." and \p{..}
 * have their Unicode meaning, and invalid sequences simply never match.
 *
 * Fail closed: every function that produces scrubbed text returns 0 only when
 * the whole input was scanned by every rule. On any error (PCRE2 match/heap
 * limit, size limit, invalid JSON, allocation failure) it returns a negative
 * SY_* code, appends nothing to `out`, and the caller must not store the text.
 *
 * Threads: a sy_scrub_rules is immutable after sy_scrub_rules_new and may be
 * shared by any number of threads. A sy_scrubber is one thread's workspace
 * (match data, JIT stack, scratch buffers): never use one from two threads at
 * once. Create one per worker thread; the rules must outlive its scrubbers. */

/* Limits. Text or JSON larger than SY_SCRUB_MAX_INPUT is refused (SY_ETOOBIG);
 * the capture pipeline should store such bodies as a size-only stub. */
#define SY_SCRUB_MAX_INPUT (64u << 20)
#define SY_SCRUB_MAX_EXTRA 64          /* extra patterns per rule set */
#define SY_SCRUB_MAX_NAME 32           /* extra pattern name: [A-Za-z][A-Za-z0-9_]* */
#define SY_SCRUB_MAX_PATTERN 4096      /* bytes of one extra pattern */
#define SY_SCRUB_MAX_JSON_DEPTH 128    /* nesting of arrays/objects in sy_scrub_json */
#define SY_SCRUB_MAX_SPANS (1u << 22)  /* entities found in one input */
#define SY_SCRUB_MATCH_LIMIT 10000000u /* PCRE2 match limit per match attempt */
#define SY_SCRUB_HEAP_LIMIT_KIB (64u << 10) /* PCRE2 interpreter backtracking heap */

typedef enum {
  SY_SCRUB_EMAIL = 0,
  SY_SCRUB_PHONE,
  SY_SCRUB_CARD,
  SY_SCRUB_SSN,
  SY_SCRUB_IP,
  SY_SCRUB_IBAN,
  SY_SCRUB_SECRET,
  SY_SCRUB_CUSTOM, /* every extra pattern counts here */
  SY_SCRUB_NTYPES
} sy_scrub_type;

/* Entities replaced by one call, per type. */
typedef struct sy_scrub_counts {
  uint32_t n[SY_SCRUB_NTYPES];
  uint32_t total;
} sy_scrub_counts;

/* An extra pattern: matches of `pattern` (PCRE2 syntax, UTF mode) become
 * "[NAME]" with the name upper-cased. The strings are copied. */
typedef struct sy_scrub_pattern {
  const char *name;
  const char *pattern;
} sy_scrub_pattern;

typedef struct sy_scrub_rules sy_scrub_rules;
typedef struct sy_scrubber sy_scrubber;

/* Compiles the built-in rules plus `n` extra patterns (n <= SY_SCRUB_MAX_EXTRA;
 * extra may be NULL when n is 0). On success *out owns the rules (free with
 * sy_scrub_rules_free). On failure returns SY_ECONFIG for a bad extra pattern
 * (invalid name, too long, does not compile, or can match the empty string),
 * SY_EINVAL when extra is NULL with n > 0, SY_ENOMEM otherwise, and writes a one-line reason into err (when errlen > 0),
 * e.g. "pattern 'ticket': missing closing parenthesis at offset 7". */
int sy_scrub_rules_new(const sy_scrub_pattern *extra, size_t n, sy_scrub_rules **out,
                       char *err, size_t errlen);
void sy_scrub_rules_free(sy_scrub_rules *rules);
/* Number of compiled rules, and how many of them run JIT-compiled code. */
size_t sy_scrub_rules_count(const sy_scrub_rules *rules);
size_t sy_scrub_rules_jit_count(const sy_scrub_rules *rules);

/* Creates one thread's workspace over `rules` (borrowed: must outlive it).
 * 0 or SY_ENOMEM. Free with sy_scrubber_free. */
int sy_scrubber_new(const sy_scrub_rules *rules, sy_scrubber **out);
void sy_scrubber_free(sy_scrubber *s);
/* Lowers (or raises) the PCRE2 match limit for this scrubber; mainly for tests. */
void sy_scrubber_set_match_limit(sy_scrubber *s, uint32_t limit);
/* Reason for the last failure of this scrubber ("" if none). Owned by the
 * scrubber; valid until its next call. Never contains input text. */
const char *sy_scrubber_last_error(const sy_scrubber *s);

/* Scrubs `len` bytes of text (may contain NULs; need not be NUL-terminated)
 * and APPENDS the result to `out`. counts (may be NULL) is overwritten with
 * what was replaced. Returns 0, or on failure SY_ETOOBIG (len >
 * SY_SCRUB_MAX_INPUT, or out's cap reached), SY_ENOMEM, or SY_EIO (a PCRE2
 * error such as the match limit; see sy_scrubber_last_error); then out is
 * exactly as it was before the call and the text must not be stored. */
int sy_scrub_text(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                  sy_scrub_counts *counts);

/* Scrubs every string value of `len` bytes of JSON (object keys are kept as
 * they are: they are schema, not data) and APPENDS the result to `out`. Only
 * changed strings are rewritten (escapes decoded before scrubbing, the result
 * re-encoded); every other byte, whitespace and number spelling included, is
 * copied as it was, so a clean document comes out byte for byte. Strings may
 * hold any escape, "\u0000" included; numbers, true, false and null are not
 * scrubbed. Returns 0, or SY_EINVAL (not RFC 8259 JSON: syntax, trailing data,
 * a raw control character or an unpaired surrogate in a string), SY_ETOOBIG
 * (len, nesting beyond SY_SCRUB_MAX_JSON_DEPTH, or out's cap), SY_ENOMEM,
 * SY_EIO (PCRE2 error); on failure out is unchanged. */
int sy_scrub_json(sy_scrubber *s, const char *json, size_t len, sy_buf *out,
                  sy_scrub_counts *counts);

/* Whether the last sy_scrub_json on this scrubber met a string value that
 * starts with "data:" (after decoding escapes): the capture pipeline stores
 * inline images by reference and takes its slower path only then. */
bool sy_scrubber_saw_data_url(const sy_scrubber *s);

/* "EMAIL", "PHONE", ... "CUSTOM"; "?" for anything else. Static. */
const char *sy_scrub_type_name(sy_scrub_type t);

/* Internal checks, exposed for unit tests. Each takes the matched bytes. */
/* Luhn over the digits, ignoring spaces and dashes; 13-19 digits, first digit
 * 2-6, not all the same digit. */
bool sy__scrub_card_ok(const char *s, size_t n);
/* IBAN (spaces between groups allowed): registered country length and mod 97 == 1. */
bool sy__scrub_iban_ok(const char *s, size_t n);
/* 9 digits, optionally split by dashes or spaces; the issued ranges only. */
bool sy__scrub_ssn_ok(const char *s, size_t n);
bool sy__scrub_ipv4_ok(const char *s, size_t n);
bool sy__scrub_ipv6_ok(const char *s, size_t n);
/* False when no rule can match anywhere in in[0, len) (every gate closed);
 * true otherwise, and always with extra patterns. */
bool sy__scrub_may_match(sy_scrubber *s, const char *in, size_t len);
/* sy_scrub_text for the text the last sy__scrub_may_match looked at (same
 * bytes, unchanged): reuses its counts instead of scanning again. */
int sy__scrub_text_gated(sy_scrubber *s, const char *in, size_t len, sy_buf *out,
                         sy_scrub_counts *counts);
/* Tests: false runs every rule on every input (no gates, no clean-string
 * cache), to compare with the prefilters on. */
void sy__scrubber_set_gates(sy_scrubber *s, bool on);
/* The clean-string cache (sy_scrub_json): strings of at least
 * SY_SCRUB_CACHE_MIN bytes in which nothing was found are remembered by a
 * 128-bit hash, and skipped when they come again. known_clean hashes `in`
 * (kept for remember_clean, which must follow for the same bytes). */
#define SY_SCRUB_CACHE_MIN 64
#define SY_SCRUB_CACHE_SLOTS 4096 /* power of two; 64 KiB per scrubber */
bool sy__scrub_known_clean(sy_scrubber *s, const char *in, size_t len);
void sy__scrub_remember_clean(sy_scrubber *s, const char *in, size_t len);
uint64_t sy__scrubber_cache_hits(const sy_scrubber *s);
void sy__scrubber_reset_data_url(sy_scrubber *s);
void sy__scrubber_note_data_url(sy_scrubber *s);
/* scrub_json.c's view of the scrubber's workspace. */
sy_buf *sy__scrubber_str(sy_scrubber *s);
sy_buf *sy__scrubber_dec(sy_scrubber *s);
char *sy__scrubber_err(sy_scrubber *s, size_t *cap);

#endif
