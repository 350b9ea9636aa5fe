#include "ctl/timearg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sy_ctl_time_arg(const char *s, uint64_t now_us, uint64_t *out_us) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  int digits = s[0] >= '0' && s[0] <= '9';
  if (digits && !errno && *end == '\0') { /* unix seconds */
    if (v > 4102444800ull) return -1;      /* past 2100: a typo, or microseconds */
    *out_us = (uint64_t)v * 1000000u;
    return 0;
  }
  if (digits && !errno && end != s && end[1] == '\0') { /* an age */
    uint64_t mult = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600
                  : end[0] == 'd' ? 86400 : 0;
    if (!mult || v > 36500ull * 86400) return -1;
    uint64_t age = (uint64_t)v * mult * 1000000u;
    *out_us = age < now_us ? now_us - age : 0;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(s, "%Y-%m-%d", &tm);
  if (!rest) return -1;
  if (*rest == 'T' || *rest == ' ') {
    const char *r2 = strptime(rest + 1, "%H:%M:%S", &tm);
    if (!r2) r2 = strptime(rest + 1, "%H:%M", &tm);
    if (!r2) return -1;
    rest = r2;
  }
  if (*rest == 'Z') rest++;
  if (*rest) return -1;
  time_t t = timegm(&tm);
  if (t < 0) return -1;
  *out_us = (uint64_t)t * 1000000u;
  return 0;
}
