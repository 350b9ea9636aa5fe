/* The checks run in C after a built-in rule's regex matched: checksums
 * (Luhn, mod 97), issued ranges, address syntax, and the shape rules that
 * keep look-alikes out (dates after a phone keyword, "icon@2x.png"). Each
 * may narrow the match and returns false to reject the candidate. */
#include "store/scrub_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "store/scrub.h"

static size_t count_digits(const char *s, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; i++) d += (s[i] >= '0' && s[i] <= '9');
  return d;
}

bool sy__scrub_card_ok(const char *s, size_t n) {
  int digits[19];
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9') {
      if (nd == 19) return false;
      digits[nd++] = s[i] - '0';
    } else if (s[i] != ' ' && s[i] != '-') {
      return false;
    }
  }
  if (nd < 13 || digits[0] < 2 || digits[0] > 6) return false;
  bool same = true;
  for (size_t i = 1; i < nd; i++) same = same && digits[i] == digits[0];
  if (same) return false;
  int sum = 0;
  for (size_t i = 0; i < nd; i++) {
    int d = digits[nd - 1 - i];
    if (i & 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 == 0;
}

bool sy__scrub_ssn_ok(const char *s, size_t n) {
  char d[9];
  if (n == 11) { /* 123-45-6789 or 123 45 6789 */
    if (s[3] != s[6] || (s[3] != '-' && s[3] != ' ')) return false;
    memcpy(d, s, 3);
    memcpy(d + 3, s + 4, 2);
    memcpy(d + 5, s + 7, 4);
  } else if (n == 9) {
    memcpy(d, s, 9);
  } else {
    return false;
  }
  for (int i = 0; i < 9; i++)
    if (d[i] < '0' || d[i] > '9') return false;
  if (!memcmp(d, "000", 3) || !memcmp(d, "666", 3) || d[0] == '9') return false;
  if (!memcmp(d + 3, "00", 2) || !memcmp(d + 5, "0000", 4)) return false;
  return true;
}

bool sy__scrub_ipv4_ok(const char *s, size_t n) {
  size_t i = 0;
  for (int oct = 0; oct < 4; oct++) {
    if (oct > 0) {
      if (i >= n || s[i] != '.') return false;
      i++;
    }
    size_t b = i;
    unsigned v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - b < 3) v = v * 10 + (unsigned)(s[i++] - '0');
    /* no leading zeros: "010" is octal to some parsers and a version to people */
    if (i == b || v > 255 || (s[b] == '0' && i - b > 1)) return false;
  }
  return i == n;
}

bool sy__scrub_ipv6_ok(const char *s, size_t n) {
  char tmp[64];
  unsigned char addr[16];
  if (n >= sizeof tmp || n < 3) return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  if (!strcmp(tmp, "::")) return false; /* "Foo :: Bar" in prose or type signatures */
  return inet_pton(AF_INET6, tmp, addr) == 1;
}

/* Registered IBAN lengths (SWIFT IBAN registry). */
static const struct { char cc[3]; unsigned char len; } iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static size_t iban_country_len(const char *cc) {
  for (size_t i = 0; i < sizeof iban_len / sizeof iban_len[0]; i++)
    if (iban_len[i].cc[0] == cc[0] && iban_len[i].cc[1] == cc[1]) return iban_len[i].len;
  return 0;
}

/* Returns the byte length of the prefix of s[0..n) holding the country's
 * number of characters, ending at a group boundary, or 0 if it is no IBAN. */
static size_t iban_prefix(const char *s, size_t n) {
  char c[34];
  size_t nc = 0, i = 0;
  if (n < 4) return 0;
  size_t want = iban_country_len(s);
  if (!want) return 0;
  for (; i < n && nc < want; i++) {
    if (s[i] == ' ') continue;
    if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i])) return 0;
    c[nc++] = s[i];
  }
  /* the regex may have run on into a following word ("... 7034 AND") */
  if (nc != want || (i < n && s[i] != ' ')) return 0;
  unsigned r = 0;
  for (size_t k = 0; k < nc; k++) {
    char ch = c[(k + 4) % nc]; /* country code and check digits move to the end */
    if (ch >= '0' && ch <= '9') r = (r * 10 + (unsigned)(ch - '0')) % 97;
    else r = (r * 100 + (unsigned)(ch - 'A' + 10)) % 97;
  }
  return r == 1 ? i : 0;
}

bool sy__scrub_iban_ok(const char *s, size_t n) { return iban_prefix(s, n) == n; }

bool sy__chk_iban(const char *in, size_t *st, size_t *en) {
  size_t p = iban_prefix(in + *st, *en - *st);
  if (!p) return false;
  *en = *st + p;
  return true;
}

bool sy__chk_card(const char *in, size_t *st, size_t *en) {
  return sy__scrub_card_ok(in + *st, *en - *st);
}

bool sy__chk_ssn(const char *in, size_t *st, size_t *en) {
  return sy__scrub_ssn_ok(in + *st, *en - *st);
}

bool sy__chk_ipv4(const char *in, size_t *st, size_t *en) {
  return sy__scrub_ipv4_ok(in + *st, *en - *st);
}

bool sy__chk_ipv6(const char *in, size_t *st, size_t *en) {
  return sy__scrub_ipv6_ok(in + *st, *en - *st);
}

/* "icon@2x.png" is an asset name, not an address. */
bool sy__chk_email(const char *in, size_t *st, size_t *en) {
  const char *at = memchr(in + *st, '@', *en - *st);
  if (!at) return false;
  const char *p = at + 1;
  while (p < in + *en && isdigit((unsigned char)*p)) p++;
  return !(p > at + 1 && p + 1 < in + *en && p[0] == 'x' && p[1] == '.');
}

/* A number reached through a keyword may be a date ("call on 2024-03-15 10
 * am"): reject when its first space-free token is YYYY-MM-DD or DD.MM.YYYY
 * (any one of - . / as the separator). */
static bool starts_with_date(const char *s, size_t n) {
  int g[3] = {0}, ng = 0;
  char sep = 0;
  for (size_t i = 0; i < n && s[i] != ' '; i++) {
    if (isdigit((unsigned char)s[i])) {
      g[ng]++;
    } else {
      if (!strchr("-./", s[i]) || ng == 2 || (sep && s[i] != sep)) return false;
      sep = s[i];
      ng++;
    }
  }
  if (ng != 2) return false;
  return (g[0] == 4 && g[1] == 2 && g[2] == 2) || (g[0] == 2 && g[1] == 2 && g[2] == 4);
}

static bool has_sep(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strchr(" .-/()", s[i])) return true;
  return false;
}

/* Country codes 1 (NANP) and 7 are one digit followed by exactly ten: "+1 2024
 * 2025" or "0012-3456-7890" are not numbers anyone can dial. `d` counts the
 * digits after the international prefix. */
static bool cc_ok(const char *s, size_t n, size_t d) {
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) continue;
    return (s[i] != '1' && s[i] != '7') || d == 11;
  }
  return false;
}

bool sy__chk_phone_plus(const char *in, size_t *st, size_t *en) {
  size_t n = *en - *st, d = count_digits(in + *st, n);
  return d >= 8 && d <= 15 && cc_ok(in + *st, n, d);
}

bool sy__chk_phone_00(const char *in, size_t *st, size_t *en) {
  size_t n = *en - *st, d = count_digits(in + *st, n);
  if (d < 10 || d > 17 || !has_sep(in + *st, n)) return false;
  const char *p = memchr(in + *st, '0', n); /* skip the "00" prefix */
  p = memchr(p + 1, '0', n - (size_t)(p + 1 - (in + *st)));
  return cc_ok(p + 1, n - (size_t)(p + 1 - (in + *st)), d - 2);
}

bool sy__chk_phone_kw(const char *in, size_t *st, size_t *en) {
  size_t n = *en - *st, d = count_digits(in + *st, n);
  return d >= 7 && d <= 15 && !starts_with_date(in + *st, n);
}

bool sy__chk_phone_nat(const char *in, size_t *st, size_t *en) {
  size_t n = *en - *st, d = count_digits(in + *st, n);
  return d >= 9 && d <= 12 && has_sep(in + *st, n) && !starts_with_date(in + *st, n);
}

/* Token-ish: a digit, a symbol, or mixed case. Keeps "bearer instruments" and
 * "Basic authentication" readable. A sentence's final '.' is not the token's. */
bool sy__chk_token(const char *in, size_t *st, size_t *en) {
  while (*en > *st && in[*en - 1] == '.') (*en)--;
  bool dig = false, sym = false, up = false, lo = false;
  for (size_t i = *st; i < *en; i++) {
    unsigned char c = (unsigned char)in[i];
    dig |= isdigit(c) != 0;
    up |= isupper(c) != 0;
    lo |= islower(c) != 0;
    sym |= strchr("._~+/=!@#$%^&*?", c) != NULL && c != 0;
  }
  return *en - *st >= 6 && (dig || sym || (up && lo));
}

bool sy__chk_sk(const char *in, size_t *st, size_t *en) {
  bool dig = false, up = false, lo = false;
  for (size_t i = *st + 3; i < *en; i++) {
    unsigned char c = (unsigned char)in[i];
    dig |= isdigit(c) != 0;
    up |= isupper(c) != 0;
    lo |= islower(c) != 0;
  }
  return dig || (up && lo);
}

