#ifndef SY_CTL_TIMEARG_H
#define SY_CTL_TIMEARG_H

#include <stdint.h>

/* A time option (--since, --until): unix seconds, YYYY-MM-DD[THH:MM[:SS]][Z]
 * (UTC), or an age (30s, 30m, 12h, 7d) before now_us. Sets microseconds since
 * the epoch. 0, or -1 for anything else. Shared by the offline export and
 * the admin commands. */
int sy_ctl_time_arg(const char *s, uint64_t now_us, uint64_t *out_us);

#endif
