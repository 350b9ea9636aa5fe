#ifndef SY_SCRUB_CHECK_H
#define SY_SCRUB_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Internal to the scrubber (store/scrub.c's rule table): the checks a
 * built-in rule's match must also pass. A check may narrow [*start, *end)
 * (never widen it) and returns false to reject the candidate; `in` is the
 * whole subject. */
typedef bool (*sy_check_fn)(const char *in, size_t *start, size_t *end);

bool sy__chk_iban(const char *in, size_t *st, size_t *en);
bool sy__chk_card(const char *in, size_t *st, size_t *en);
bool sy__chk_ssn(const char *in, size_t *st, size_t *en);
bool sy__chk_ipv4(const char *in, size_t *st, size_t *en);
bool sy__chk_ipv6(const char *in, size_t *st, size_t *en);
bool sy__chk_email(const char *in, size_t *st, size_t *en);
bool sy__chk_phone_plus(const char *in, size_t *st, size_t *en);
bool sy__chk_phone_00(const char *in, size_t *st, size_t *en);
bool sy__chk_phone_kw(const char *in, size_t *st, size_t *en);
bool sy__chk_phone_nat(const char *in, size_t *st, size_t *en);
bool sy__chk_token(const char *in, size_t *st, size_t *en);
bool sy__chk_sk(const char *in, size_t *st, size_t *en);

#endif
